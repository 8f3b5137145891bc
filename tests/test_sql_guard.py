"""The warehouse's statement allow-list, case by case in each dialect: what may run, and for what is
refused, that the reason says so in plain words."""

from __future__ import annotations

import pytest

from incidentfox.agents.toolsets.sql_guard import ALLOWED, check_statement, sqlglot_dialect

PG, MY, SF = "postgres", "mysql", "snowflake"

ALLOWED_CASES = [
    (PG, "SELECT * FROM orders WHERE created_at > now() - interval '1 hour' LIMIT 50", "SELECT"),
    (PG, "select status, count(*) from orders group by status order by 2 desc limit 10", "SELECT"),
    (
        PG,
        "SELECT date_trunc('minute', created_at) AS minute, count(*) FROM orders "
        "WHERE created_at > now() - interval '2 hours' GROUP BY 1 ORDER BY 1 LIMIT 120",
        "SELECT",
    ),
    (
        PG,
        "WITH failed AS (SELECT * FROM payments WHERE status = 'failed') SELECT count(*) FROM failed",
        "SELECT",
    ),
    (
        PG,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT * FROM n",
        "SELECT",
    ),
    (PG, "SELECT 1 UNION ALL SELECT 2", "SELECT"),
    (PG, "(SELECT id FROM orders LIMIT 1)", "SELECT"),
    (PG, "SELECT 1;", "SELECT"),
    (PG, "SELECT 'DELETE FROM orders; DROP TABLE orders' AS quoted", "SELECT"),
    (PG, "SELECT $$;DROP TABLE orders$$ AS dollar_quoted", "SELECT"),
    (PG, "SELECT 1 /* ; DROP TABLE orders */", "SELECT"),
    (PG, "SELECT 1 -- ; DROP TABLE orders", "SELECT"),
    (PG, "SELECT status FROM orders WHERE note LIKE '%update%'", "SELECT"),
    (PG, "SHOW search_path", "SHOW"),
    (PG, "SHOW statement_timeout", "SHOW"),
    (PG, "EXPLAIN SELECT * FROM orders WHERE status = 'failed'", "EXPLAIN"),
    (PG, "EXPLAIN (FORMAT JSON, COSTS) SELECT * FROM orders", "EXPLAIN"),
    (MY, "SELECT * FROM orders ORDER BY created_at DESC LIMIT 20", "SELECT"),
    (
        MY,
        "SELECT DATE_FORMAT(created_at, '%Y-%m-%d %H:%i') AS m, COUNT(*) FROM orders GROUP BY m LIMIT 60",
        "SELECT",
    ),
    (
        MY,
        "SELECT REPLACE(status, '_', ' '), TRUNCATE(amount, 0), INSERT('abc', 1, 1, 'x') FROM orders",
        "SELECT",
    ),
    (MY, "SELECT 1 # a comment; DROP TABLE orders", "SELECT"),
    (MY, "SHOW TABLES", "SHOW"),
    (MY, "SHOW FULL PROCESSLIST", "SHOW"),
    (MY, "SHOW CREATE TABLE orders", "SHOW"),
    (MY, "DESCRIBE orders", "DESCRIBE"),
    (MY, "DESC shop.orders", "DESCRIBE"),
    (MY, "EXPLAIN orders", "DESCRIBE"),
    (MY, "EXPLAIN SELECT * FROM orders WHERE id = 1", "EXPLAIN"),
    (MY, "EXPLAIN FORMAT=JSON SELECT * FROM orders", "EXPLAIN"),
    (SF, "SELECT * FROM orders LIMIT 5", "SELECT"),
    (SF, "SELECT * FROM orders AT(OFFSET => -3600) LIMIT 5", "SELECT"),
    (SF, "SHOW TABLES", "SHOW"),
    (SF, "DESCRIBE TABLE orders", "DESCRIBE"),
    (SF, "EXPLAIN USING TEXT SELECT * FROM orders", "EXPLAIN"),
]


@pytest.mark.parametrize(("dialect", "sql", "kind"), ALLOWED_CASES)
def test_read_only_statements_are_allowed(dialect: str, sql: str, kind: str) -> None:
    verdict = check_statement(sql, dialect)
    assert verdict.allowed, verdict.reason
    assert verdict.kind == kind


NOT_ALLOWED = f"{ALLOWED}; this is"

REFUSED_CASES = [
    # writes and DDL, named in the reason
    (PG, "UPDATE orders SET status = 'paid'", f"{NOT_ALLOWED} an UPDATE."),
    (PG, "update orders set status = 'paid' where id = 1", f"{NOT_ALLOWED} an UPDATE."),
    (PG, "DELETE FROM orders", f"{NOT_ALLOWED} a DELETE."),
    (PG, "INSERT INTO orders (status) VALUES ('x')", f"{NOT_ALLOWED} an INSERT."),
    (PG, "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", f"{NOT_ALLOWED} a MERGE."),
    (PG, "DROP TABLE orders", f"{NOT_ALLOWED} a DROP."),
    (PG, "CREATE TABLE x (a int)", f"{NOT_ALLOWED} a CREATE."),
    (PG, "ALTER TABLE orders ADD COLUMN x int", f"{NOT_ALLOWED} an ALTER."),
    (PG, "TRUNCATE orders", f"{NOT_ALLOWED} a TRUNCATE."),
    (PG, "GRANT ALL ON orders TO public", f"{NOT_ALLOWED} a GRANT."),
    (PG, "COPY orders TO '/tmp/orders.csv'", f"{NOT_ALLOWED} a COPY."),
    (PG, "CALL refresh_rollups()", f"{NOT_ALLOWED} a CALL."),
    (PG, "SET statement_timeout = 0", f"{NOT_ALLOWED} a SET."),
    (PG, "LOCK TABLE orders", f"{NOT_ALLOWED} a LOCK."),
    (PG, "BEGIN", f"{NOT_ALLOWED} a BEGIN."),
    (PG, "VACUUM orders", f"{NOT_ALLOWED} a VACUUM."),
    (PG, "DO $$ BEGIN DELETE FROM orders; END $$", f"{NOT_ALLOWED} a DO."),
    (MY, "REPLACE INTO orders VALUES (1)", f"{NOT_ALLOWED} a REPLACE."),
    (MY, "LOCK TABLES orders READ", f"{NOT_ALLOWED} a LOCK TABLES."),
    (MY, "SET GLOBAL read_only = 0", f"{NOT_ALLOWED} a SET."),
    (MY, "USE mysql", f"{NOT_ALLOWED} a USE."),
    (MY, "HANDLER orders OPEN", f"{NOT_ALLOWED} a HANDLER."),
    (MY, "LOAD DATA INFILE '/tmp/x' INTO TABLE orders", f"{NOT_ALLOWED} a LOAD."),
    (MY, "ANALYZE SELECT * FROM orders", f"{NOT_ALLOWED} an ANALYZE."),
    (SF, "COPY INTO orders FROM @stage", f"{NOT_ALLOWED} a COPY."),
    (SF, "PUT file:///tmp/x @stage", f"{NOT_ALLOWED} a PUT."),
    # more than one statement
    (PG, "SELECT 1; DROP TABLE orders", "exactly one statement per query; this has 2"),
    (PG, "select 1;explain select 2", "exactly one statement per query; this has 2"),
    (PG, "SHOW search_path; DELETE FROM orders", "exactly one statement per query; this has 2"),
    (MY, "SELECT 1; SELECT 2; SELECT 3", "exactly one statement per query; this has 3"),
    # data-modifying WITH
    (PG, "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone", "contains a DELETE"),
    (PG, "WITH up AS (UPDATE orders SET status = 'x' RETURNING id) SELECT * FROM up", "contains an UPDATE"),
    (PG, "WITH x AS (SELECT 1) DELETE FROM orders", f"{NOT_ALLOWED} a DELETE."),
    # SELECT that writes or locks
    (PG, "SELECT * INTO orders_copy FROM orders", "SELECT … INTO writes the result"),
    (MY, "SELECT * INTO OUTFILE '/tmp/orders' FROM orders", "SELECT … INTO writes the result"),
    (MY, "SELECT 1 INTO @v", "SELECT … INTO writes the result"),
    (PG, "SELECT * FROM orders FOR UPDATE", "FOR UPDATE/SHARE locks rows"),
    (PG, "SELECT * FROM orders FOR NO KEY UPDATE SKIP LOCKED", "FOR UPDATE/SHARE locks rows"),
    (PG, "SELECT * FROM orders FOR SHARE", "FOR UPDATE/SHARE locks rows"),
    (MY, "SELECT * FROM orders FOR UPDATE", "FOR UPDATE/SHARE locks rows"),
    (MY, "SELECT * FROM orders LOCK IN SHARE MODE", "FOR UPDATE/SHARE locks rows"),
    # EXPLAIN that runs the statement, or explains a write
    (PG, "EXPLAIN ANALYZE SELECT * FROM orders", "EXPLAIN ANALYZE runs the statement"),
    (PG, "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM orders", "EXPLAIN ANALYZE runs the statement"),
    (PG, "explain analyse select 1", "EXPLAIN ANALYZE runs the statement"),
    (PG, "/* plan */ EXPLAIN ANALYZE DELETE FROM orders", "EXPLAIN ANALYZE runs the statement"),
    (MY, "EXPLAIN ANALYZE SELECT * FROM orders", "EXPLAIN ANALYZE runs the statement"),
    (MY, "DESCRIBE ANALYZE SELECT * FROM orders", "DESCRIBE ANALYZE runs the statement"),
    (PG, "EXPLAIN UPDATE orders SET status = 'x'", "EXPLAIN may only explain a read-only SELECT"),
    (PG, "EXPLAIN EXECUTE stmt", "EXPLAIN may only explain a read-only SELECT"),
    # functions that sleep, write or reach outside
    (PG, "SELECT pg_sleep(10)", "pg_sleep() is not allowed"),
    (PG, "SELECT pg_catalog.pg_sleep(10)", "pg_sleep() is not allowed"),
    (PG, 'SELECT "pg_sleep"(10)', "pg_sleep() is not allowed"),
    (PG, "SELECT pg_sleep_for('5 minutes')", "pg_sleep_for() is not allowed"),
    (PG, "SELECT lo_import('/etc/passwd')", "lo_import() is not allowed"),
    (PG, "SELECT pg_read_file('/etc/passwd')", "pg_read_file() is not allowed"),
    (PG, "SELECT * FROM dblink('host=db', 'DELETE FROM orders') AS t(a int)", "dblink() is not allowed"),
    (PG, "SELECT pg_advisory_lock(1)", "pg_advisory_lock() is not allowed"),
    (PG, "SELECT nextval('orders_id_seq')", "nextval() is not allowed"),
    (PG, "SELECT set_config('default_transaction_read_only', 'off', false)", "set_config() is not allowed"),
    (PG, "SELECT query_to_xml('DELETE FROM orders', true, true, '')", "query_to_xml() is not allowed"),
    (PG, "EXPLAIN SELECT pg_sleep(10)", "pg_sleep() is not allowed"),
    (MY, "SELECT SLEEP(5)", "sleep() is not allowed"),
    (MY, "SELECT BENCHMARK(100000000, MD5('a'))", "benchmark() is not allowed"),
    (MY, "SELECT LOAD_FILE('/etc/passwd')", "load_file() is not allowed"),
    (MY, "SELECT GET_LOCK('deploy', 10)", "get_lock() is not allowed"),
    (MY, "SHOW TABLES WHERE SLEEP(1)", "sleep() is not allowed"),
    (SF, "SELECT SYSTEM$WAIT(10)", "system$wait() is not allowed"),
    # what MySQL runs but a parser reads as a comment
    (MY, "SELECT 1 /*!, SLEEP(5) */", "MySQL executable comments"),
    (MY, "SELECT 1 /*M!, SLEEP(5) */", "MySQL executable comments"),
    (MY, "SELECT /*+ MAX_EXECUTION_TIME(0) */ * FROM orders", "optimizer hints"),
    (MY, "SELECT 1 --1 ; SELECT 2", "exactly one statement"),
    (MY, "SELECT 1 --x", "-- starts a comment only when a space follows"),
    # not SQL at all
    (PG, "", "The statement is empty."),
    (PG, "  ;  ", "exactly one statement per query; this has 0"),
    (PG, "SELECT 'unterminated", "could not be read as postgres SQL"),
    (PG, "SELECT FROM WHERE (", "could not be parsed as postgres SQL"),
    (PG, "DESCRIBE (SELECT 1)", "DESCRIBE takes a table name or a SELECT"),
]


@pytest.mark.parametrize(("dialect", "sql", "reason"), REFUSED_CASES)
def test_everything_else_is_refused_with_the_reason(dialect: str, sql: str, reason: str) -> None:
    verdict = check_statement(sql, dialect)
    assert not verdict.allowed
    assert reason in verdict.reason


def test_the_refusal_reads_as_one_plain_sentence() -> None:
    verdict = check_statement("UPDATE orders SET status = 'paid' WHERE id = 7", "postgres")
    assert verdict.reason == "Only SELECT, WITH, SHOW, DESCRIBE and EXPLAIN are allowed; this is an UPDATE."


def test_backends_map_to_sqlglot_dialects() -> None:
    assert [sqlglot_dialect(b) for b in ("postgresql", "mysql", "snowflake")] == [PG, MY, SF]
