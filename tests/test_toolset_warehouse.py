"""The warehouse toolset against real PostgreSQL and MariaDB servers: what a query returns, that
nothing it is asked can write (refused by the guard, and failing read-only when a write gets past
it), that slow queries are cut, and that failures are one sentence without the password."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent
from incidentfox.agents.toolsets import warehouse_db
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.function_tools import invoke_tool, toolset_function_tools
from incidentfox.agents.toolsets.warehouse import WAREHOUSE, health, json_value
from incidentfox.agents.toolsets.warehouse_db import Warehouse, connect
from incidentfox.agents.toolsets.warehouse_settings import (
    MAX_ROW_LIMIT,
    WarehouseFailure,
    WarehouseNotConfigured,
    warehouse_settings,
)
from incidentfox.egress import EgressPolicy, install_policy
from tests.conftest import PostgresServer, run_in_fresh_loop

PASSWORD = "Tr0ub4dor-and-3"
ORDERS = 300
FAILED = ORDERS // 5
DEFAULT_MARIADB = "mysql+asyncmy://root@127.0.0.1:3306/test"

PG_SCHEMA = [
    "CREATE TABLE orders (id serial PRIMARY KEY, created_at timestamptz NOT NULL, status text NOT NULL, "
    "amount numeric(10, 2) NOT NULL, receipt bytea, note text)",
    "CREATE INDEX orders_created_at ON orders (created_at)",
    "CREATE UNIQUE INDEX orders_note ON orders (note)",
    "INSERT INTO orders (created_at, status, amount, receipt) SELECT timestamptz '2026-12-04 12:00:00+00' "
    "- g * interval '1 minute', CASE WHEN g % 5 = 0 THEN 'failed' ELSE 'paid' END, g * 1.25, "
    "decode(repeat('ab', 40), 'hex') FROM generate_series(1, 300) g",
    "CREATE VIEW failed_payments AS SELECT id, created_at FROM orders WHERE status = 'failed'",
]
MARIADB_SCHEMA = [
    "CREATE TABLE orders (id int AUTO_INCREMENT PRIMARY KEY, created_at datetime(6) NOT NULL, "
    "status varchar(20) NOT NULL, amount decimal(10, 2) NOT NULL, receipt blob, note varchar(200), "
    "KEY orders_created_at (created_at), UNIQUE KEY orders_note (note))",
    "INSERT INTO orders (created_at, status, amount, receipt) SELECT timestamp '2026-12-04 12:00:00' "
    "- interval seq minute, IF(seq % 5 = 0, 'failed', 'paid'), seq * 1.25, unhex(repeat('ab', 40)) "
    "FROM seq_1_to_300",
    "CREATE VIEW failed_payments AS SELECT id, created_at FROM orders WHERE status = 'failed'",
]


def _plain(url: str, **changes: Any) -> str:
    return make_url(url).set(**changes).render_as_string(hide_password=False)


async def _create_pg(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(_plain(admin_url, drivername="postgresql"), timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    shop = await asyncpg.connect(_plain(admin_url, drivername="postgresql", database=name), timeout=5)
    try:
        for statement in PG_SCHEMA:
            await shop.execute(statement)
    finally:
        await shop.close()


async def _drop_pg(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(_plain(admin_url, drivername="postgresql"), timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def pg_shop(postgres_server: PostgresServer) -> Iterator[str]:
    """A scratch PostgreSQL database with an ``orders`` table and a view, dropped afterwards."""
    if postgres_server.url is None:
        pytest.skip(postgres_server.reason)
    admin_url = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    name = "ifx_wh_" + secrets.token_hex(4)
    run_in_fresh_loop(_create_pg(admin_url, name))
    yield _plain(admin_url, drivername="postgresql+asyncpg", database=name)
    run_in_fresh_loop(_drop_pg(admin_url, name))


async def _mariadb(url: str, statements: list[str], database: str | None = None) -> None:
    import asyncmy

    parts = make_url(url)
    connection = await asyncmy.connect(
        host=parts.host,
        port=parts.port or 3306,
        user=parts.username,
        password=parts.password or "",
        database=database,
        connect_timeout=3,
        autocommit=True,
    )
    try:
        async with connection.cursor() as cursor:
            for statement in statements:
                await cursor.execute(statement)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def mariadb_shop() -> Iterator[str]:
    """A scratch MariaDB database (``TEST_MARIADB_URL``, default root on 127.0.0.1:3306) with the same
    ``orders``; skipped when no server answers, unless INCIDENTFOX_REQUIRE_MARIADB=1."""
    admin_url = os.environ.get("TEST_MARIADB_URL", DEFAULT_MARIADB)
    name = "ifx_wh_" + secrets.token_hex(4)
    try:
        run_in_fresh_loop(_mariadb(admin_url, [f"CREATE DATABASE {name}"]))
    except Exception as exc:
        reason = f"MariaDB unreachable at {make_url(admin_url).host}: {type(exc).__name__}: {exc}"
        if os.environ.get("INCIDENTFOX_REQUIRE_MARIADB") == "1":
            pytest.fail(reason + " (INCIDENTFOX_REQUIRE_MARIADB=1)")
        pytest.skip(reason)
    try:
        run_in_fresh_loop(_mariadb(admin_url, MARIADB_SCHEMA, database=name))
        yield _plain(admin_url, database=name)
    finally:
        run_in_fresh_loop(_mariadb(admin_url, [f"DROP DATABASE IF EXISTS {name}"]))


@pytest.fixture(params=["postgres", "mariadb"])
def shop_url(request: pytest.FixtureRequest) -> str:
    fixture = "pg_shop" if request.param == "postgres" else "mariadb_shop"
    url: str = request.getfixturevalue(fixture)
    return url


def _config(url: str, **settings: Any) -> dict[str, Any]:
    return {"integrations": {"warehouse": {"url": url, **settings}}}


def _with_password(url: str, password: str = PASSWORD, **changes: Any) -> str:
    return _plain(url, password=password, **changes)


def _accepted_login(url: str, **changes: Any) -> str:
    """The shop's URL with a password the server accepts: any for PostgreSQL (trust on loopback), none
    for MariaDB's root."""
    if url.startswith("postgresql"):
        return _with_password(url, **changes)
    return _plain(url, **changes)


async def _run(warehouse: Warehouse, name: str, /, **args: Any) -> ToolResult:
    tool = next(t for t in WAREHOUSE.tools if t.name == name)
    return await tool.run(warehouse, tool.params.model_validate(args))


async def _count(url: str) -> int:
    warehouse = await connect(_config(url))
    try:
        rows = await warehouse.rows("SELECT count(*) FROM orders", 1)
    finally:
        await warehouse.close()
    return int(rows.rows[0][0])


async def test_a_select_returns_columns_and_json_safe_rows(shop_url: str) -> None:
    warehouse = await connect(_config(shop_url))
    sql = "SELECT id, created_at, status, amount, receipt, note FROM orders WHERE id <= 2 ORDER BY id"
    result = await _run(warehouse, "run_query", sql=sql)
    await warehouse.close()
    assert result.status == "ok", result.error
    assert result.invocation == sql
    assert result.data["columns"] == ["id", "created_at", "status", "amount", "receipt", "note"]
    assert result.data["row_count"] == 2 and result.data["truncated"] is False
    first = result.data["rows"][0]
    assert first[0] == 1
    assert first[1].startswith("2026-12-04T11:59:00")
    assert first[2:4] == ["paid", "1.25"]
    assert first[4] == "0x" + "ab" * 32 + "… (40 bytes)"
    assert first[5] is None
    json.dumps(result.data)


async def test_the_row_limit_stops_the_rows_and_says_there_are_more(shop_url: str) -> None:
    warehouse = await connect(_config(shop_url, row_limit=50))
    asked_for_less = await _run(warehouse, "run_query", sql="SELECT id FROM orders ORDER BY id", limit=7)
    capped = await _run(warehouse, "run_query", sql="SELECT id FROM orders ORDER BY id", limit=1000)
    whole = await _run(warehouse, "run_query", sql="SELECT status, count(*) AS n FROM orders GROUP BY status")
    await warehouse.close()
    assert [row[0] for row in asked_for_less.data["rows"]] == list(range(1, 8))
    assert asked_for_less.data["truncated"] is True
    assert asked_for_less.data["summary"] == "7 rows, stopped at the limit of 7; there are more"
    assert "Aggregate" in asked_for_less.data["note"]
    assert capped.data["row_count"] == 50 and capped.data["truncated"] is True
    assert whole.data["truncated"] is False
    assert {row[0]: int(row[1]) for row in whole.data["rows"]} == {"paid": ORDERS - FAILED, "failed": FAILED}


async def test_a_big_table_without_a_limit_costs_only_the_rows_shown(mariadb_shop: str) -> None:
    warehouse = await connect(_config(mariadb_shop, timeout_s=5))
    started = time.monotonic()
    result = await _run(warehouse, "run_query", sql="SELECT seq FROM seq_1_to_50000000", limit=3)
    await warehouse.close()
    assert result.data["rows"] == [[1], [2], [3]] and result.data["truncated"] is True
    assert time.monotonic() - started < 2


async def test_a_query_without_rows_is_no_data(shop_url: str) -> None:
    warehouse = await connect(_config(shop_url))
    result = await _run(warehouse, "run_query", sql="SELECT id, status FROM orders WHERE status = 'refunded'")
    await warehouse.close()
    assert result.status == "no_data"
    assert result.data == "The query returned no rows (columns: id, status)."


REFUSED = [
    ("UPDATE orders SET status = 'refunded'", "this is an UPDATE"),
    ("DELETE FROM orders", "this is a DELETE"),
    ("DROP TABLE orders", "this is a DROP"),
    ("SELECT 1; DELETE FROM orders", "exactly one statement"),
    ("SELECT * FROM orders FOR UPDATE", "locks rows"),
    ("EXPLAIN ANALYZE SELECT * FROM orders", "EXPLAIN ANALYZE runs the statement"),
]


@pytest.mark.parametrize(("sql", "reason"), REFUSED)
async def test_writes_are_refused_before_they_reach_the_warehouse(
    shop_url: str, sql: str, reason: str
) -> None:
    warehouse = await connect(_config(shop_url))
    result = await _run(warehouse, "run_query", sql=sql)
    await warehouse.close()
    assert result.status == "error"
    assert result.error is not None and result.error.startswith("Refused: ") and reason in result.error
    assert result.invocation == sql
    assert await _count(shop_url) == ORDERS


async def test_postgres_refuses_a_data_modifying_with_and_pg_sleep(pg_shop: str) -> None:
    warehouse = await connect(_config(pg_shop))
    deleting = await _run(
        warehouse, "run_query", sql="WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone"
    )
    sleeping = await _run(warehouse, "run_query", sql="SELECT pg_sleep(30)")
    await warehouse.close()
    assert deleting.error is not None and "contains a DELETE" in deleting.error
    assert sleeping.error is not None and "pg_sleep() is not allowed" in sleeping.error
    assert await _count(pg_shop) == ORDERS


async def test_a_write_past_the_guard_fails_because_the_session_is_read_only(shop_url: str) -> None:
    warehouse = await connect(_config(shop_url))
    insert = "INSERT INTO orders (created_at, status, amount) VALUES ('2026-12-04 12:00:00', 'x', 1)"
    with pytest.raises(WarehouseFailure, match=r"refused to write: the session is read-only"):
        await warehouse.rows(insert, 10)

    def commit_then_delete(connection: Connection) -> None:
        connection.exec_driver_sql("COMMIT")
        connection.exec_driver_sql("DELETE FROM orders")

    with pytest.raises(WarehouseFailure, match=r"read-only"):
        await warehouse.session(commit_then_delete)
    await warehouse.close()
    assert await _count(shop_url) == ORDERS


async def test_mysql_runs_one_statement_per_call_even_past_the_guard(mariadb_shop: str) -> None:
    """asyncmy asks for multi-statements; the session switches them off, so ``COMMIT; SET SESSION
    TRANSACTION READ WRITE; DELETE`` cannot ride along behind a SELECT."""
    warehouse = await connect(_config(mariadb_shop))
    sneaky = "SELECT 1; COMMIT; SET SESSION TRANSACTION READ WRITE; DELETE FROM orders"
    with pytest.raises(WarehouseFailure, match=r"SQL syntax"):
        await warehouse.rows(sneaky, 10)
    await warehouse.close()
    assert await _count(mariadb_shop) == ORDERS


SLOW = {
    "postgres": "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
    "mariadb": "SELECT sum(a.seq * b.seq) FROM seq_1_to_1000000 a, seq_1_to_1000000 b",
}


async def test_a_slow_query_is_stopped_at_the_time_limit(shop_url: str) -> None:
    warehouse = await connect(_config(shop_url, timeout_s=1))
    sql = SLOW["postgres" if shop_url.startswith("postgresql") else "mariadb"]
    started = time.monotonic()
    result = await _run(warehouse, "run_query", sql=sql)
    elapsed = time.monotonic() - started
    await warehouse.close()
    assert result.status == "error"
    assert result.error is not None and result.error.startswith("The query was stopped after 1 s")
    assert elapsed < 2.5


async def test_the_asyncio_deadline_backs_up_the_servers_timeout(
    pg_shop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warehouse_db, "DEADLINE_GRACE_S", 0.5)
    warehouse = await connect(_config(pg_shop, timeout_s=0.5))

    def unbounded(connection: Connection) -> None:
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        connection.exec_driver_sql("SELECT pg_sleep(30)")

    started = time.monotonic()
    with pytest.raises(WarehouseFailure, match=r"stopped after 0.5 s"):
        await warehouse.session(unbounded)
    assert time.monotonic() - started < 3
    rows = await warehouse.rows("SELECT 1", 1)
    await warehouse.close()
    assert rows.rows == [(1,)]


async def test_rejected_credentials_are_named_without_the_password(shop_url: str) -> None:
    user = "root" if shop_url.startswith("mysql") else "no_such_reader"
    bad = _with_password(shop_url, username=user)
    warehouse = await connect(_config(bad))
    result = await _run(warehouse, "run_query", sql="SELECT count(*) FROM orders")
    checked = await health(_config(bad))
    await warehouse.close()
    assert result.error is not None
    assert "rejected the user or password (authentication failed)" in result.error
    assert not checked.healthy and "authentication failed" in checked.reason
    for text in (result.error, result.invocation, checked.reason, repr(warehouse)):
        assert PASSWORD not in text


async def test_an_unknown_database_and_a_closed_port_are_named(shop_url: str) -> None:
    missing = await connect(_config(_accepted_login(shop_url, database="no_such_shop")))
    closed = await connect(_config(_accepted_login(shop_url, port=1)))
    no_database = await _run(missing, "run_query", sql="SELECT 1")
    refused = await _run(closed, "run_query", sql="SELECT 1")
    await missing.close()
    await closed.close()
    assert no_database.error is not None
    assert "has no database 'no_such_shop' (unknown database)" in no_database.error
    assert refused.error is not None and "is unreachable (connection refused)" in refused.error
    assert PASSWORD not in no_database.error + refused.error


async def test_a_server_that_never_answers_is_unreachable_after_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(warehouse_db, "CONNECT_TIMEOUT_S", 0.5)
    warehouse = await connect(_config(f"postgresql+asyncpg://reader:{PASSWORD}@127.0.0.1:{port}/shop"))
    result = await _run(warehouse, "run_query", sql="SELECT 1")
    await warehouse.close()
    server.close()
    assert result.error is not None and "127.0.0.1" in result.error and "is unreachable" in result.error


async def test_explain_shows_the_plan_and_full_scans_without_running_the_query(shop_url: str) -> None:
    warehouse = await connect(_config(shop_url))
    scan = await _run(warehouse, "explain_query", sql="SELECT count(*) FROM orders WHERE status = 'failed';")
    by_key = await _run(warehouse, "explain_query", sql="SELECT id, amount FROM orders WHERE id = 7")
    started = time.monotonic()
    huge = await _run(
        warehouse, "explain_query", sql="SELECT count(*) FROM orders a, orders b, orders c, orders d"
    )
    elapsed = time.monotonic() - started
    await warehouse.close()
    assert scan.status == "ok", scan.error
    assert scan.invocation == "EXPLAIN SELECT count(*) FROM orders WHERE status = 'failed'"
    assert scan.data["full_scans"] == ["orders"] and "reads all of orders" in scan.data["summary"]
    assert "was not run" in scan.data["note"]
    assert by_key.status == "ok" and by_key.data["full_scans"] == []
    assert by_key.data["summary"].endswith("no full table scan")
    assert elapsed < 2, "a 300^4-row join is planned, never run"
    if shop_url.startswith("postgresql"):
        assert scan.data["dialect"] == "postgresql" and scan.data["estimated_cost"] > 0
        assert any(line.startswith("Aggregate") for line in scan.data["plan"])
        assert any("Seq Scan on orders" in line for line in scan.data["plan"])
        assert any("orders_pkey" in line for line in by_key.data["plan"])
        assert huge.data["largest_step_rows"] >= ORDERS**4
    else:
        assert scan.data["dialect"] == "mysql"
        [step] = scan.data["plan"]
        assert (step["table"], step["type"]) == ("orders", "ALL")
        assert by_key.data["plan"][0]["key"] == "PRIMARY"
        assert huge.data["rows_examined_estimate"] >= ORDERS**3, "the four steps' rows multiplied"


EXPLAIN_REFUSED = [
    ("DELETE FROM orders", "Refused: ", "this is a DELETE"),
    ("SELECT * FROM orders FOR UPDATE", "Refused: ", "locks rows"),
    ("EXPLAIN SELECT * FROM orders", "explain_query explains one SELECT", "this is EXPLAIN"),
    ("SHOW TABLES", "explain_query explains one SELECT", "run_query runs SHOW"),
]


@pytest.mark.parametrize(("sql", "start", "reason"), EXPLAIN_REFUSED)
async def test_explain_takes_only_a_read_only_select(
    shop_url: str, sql: str, start: str, reason: str
) -> None:
    warehouse = await connect(_config(shop_url))
    result = await _run(warehouse, "explain_query", sql=sql)
    await warehouse.close()
    assert result.status == "error" and result.error is not None
    assert result.error.startswith(start) and reason in result.error
    assert result.invocation == sql
    assert await _count(shop_url) == ORDERS


async def test_explaining_a_missing_table_fails_in_one_sentence(shop_url: str) -> None:
    warehouse = await connect(_config(_accepted_login(shop_url)))
    result = await _run(warehouse, "explain_query", sql="SELECT * FROM refunds WHERE id = 1")
    await warehouse.close()
    assert result.status == "error" and result.error is not None
    assert "refunds" in result.error and "\n" not in result.error and PASSWORD not in result.error
    assert result.invocation == "EXPLAIN SELECT * FROM refunds WHERE id = 1"


async def test_list_tables_shows_tables_views_and_the_dialect(shop_url: str) -> None:
    warehouse = await connect(_config(shop_url))
    result = await _run(warehouse, "list_tables")
    await warehouse.close()
    assert result.status == "ok", result.error
    [schema] = result.data["schemas"]
    assert schema["tables"] == ["orders"] and schema["views"] == ["failed_payments"]
    assert result.data["dialect"] == ("postgresql" if shop_url.startswith("postgresql") else "mysql")
    assert "information_schema" not in result.data["other_schemas"]


async def test_the_schemas_setting_limits_what_is_listed_and_described(pg_shop: str) -> None:
    warehouse = await connect(_config(pg_shop, schemas=["public"]))
    listed = await _run(warehouse, "list_tables")
    elsewhere = await _run(warehouse, "list_tables", schema="pg_catalog")
    described = await _run(warehouse, "describe_table", table="pg_catalog.pg_class")
    await warehouse.close()
    assert [s["schema"] for s in listed.data["schemas"]] == ["public"]
    assert "other_schemas" not in listed.data
    for refused in (elsewhere, described):
        assert refused.error is not None and "Schema pg_catalog is not one this team shares" in refused.error


async def test_describe_table_shows_columns_nullability_and_indexes(shop_url: str) -> None:
    warehouse = await connect(_config(shop_url))
    result = await _run(warehouse, "describe_table", table="orders")
    await warehouse.close()
    assert result.status == "ok", result.error
    columns = {c["name"]: c for c in result.data["columns"]}
    assert list(columns) == ["id", "created_at", "status", "amount", "receipt", "note"]
    assert columns["status"]["nullable"] is False and columns["note"]["nullable"] is True
    assert columns["amount"]["type"].upper() in ("NUMERIC(10, 2)", "DECIMAL(10, 2)")
    assert result.data["primary_key"] == ["id"]
    indexes = {i["name"]: i for i in result.data["indexes"]}
    assert indexes["orders_created_at"] == {
        "name": "orders_created_at",
        "columns": ["created_at"],
        "unique": False,
    }
    assert indexes["orders_note"]["unique"] is True


async def test_describing_a_missing_table_says_what_to_do(shop_url: str) -> None:
    warehouse = await connect(_config(shop_url))
    result = await _run(warehouse, "describe_table", table="payments")
    await warehouse.close()
    assert result.error == (
        "There is no table or view payments that this user can see; list_tables shows what there is."
    )


async def test_health_check_passes_fails_or_is_not_configured(shop_url: str) -> None:
    ok = await health(_config(shop_url))
    failing = await health(_config(_with_password(shop_url, port=1)))
    unconfigured = await health({"integrations": {}})
    assert ok.healthy
    assert not failing.healthy and "unreachable (connection refused)" in failing.reason
    assert PASSWORD not in failing.reason
    assert not unconfigured.configured


def test_settings_are_checked_capped_and_never_show_the_password() -> None:
    with pytest.raises(WarehouseNotConfigured, match=r"set integrations\.warehouse\.url"):
        warehouse_settings({"integrations": {"warehouse": {}}})
    with pytest.raises(WarehouseNotConfigured, match=r"turned off"):
        warehouse_settings(_config("postgresql://db/shop", enabled=False))
    with pytest.raises(WarehouseNotConfigured, match=r"uses oracle://, which the warehouse toolset does not"):
        warehouse_settings(_config(f"oracle://scott:{PASSWORD}@db/orcl"))
    with pytest.raises(WarehouseNotConfigured, match=r"row_limit must be a positive number"):
        warehouse_settings(_config("postgresql://db/shop", row_limit="many"))
    settings = warehouse_settings(
        _config(
            f"mysql://app:{PASSWORD}@db:3306/shop?client_flag=65536&init_command=SET+x%3D1&charset=utf8mb4",
            row_limit=1_000_000,
            timeout_s=3600,
            schemas=["shop"],
        )
    )
    assert settings.url.drivername == "mysql+asyncmy"
    assert dict(settings.url.query) == {"charset": "utf8mb4"}
    assert (settings.row_limit, settings.timeout_s, settings.schemas) == (MAX_ROW_LIMIT, 120.0, ("shop",))
    assert PASSWORD not in settings.display and "***" in settings.display
    assert settings.mask(f"failed for mysql://app:{PASSWORD}@db/shop") == "failed for mysql://app:***@db/shop"
    assert warehouse_settings(_config("postgres://db/shop")).url.drivername == "postgresql+asyncpg"


async def test_the_connection_goes_to_the_address_the_egress_policy_checked(pg_shop: str) -> None:
    warehouse = await connect(_config(_plain(pg_shop, host="localhost")))
    assert warehouse.engine.url.host in ("127.0.0.1", "::1")
    await warehouse.close()
    install_policy(EgressPolicy(allow_private=False))
    with pytest.raises(WarehouseNotConfigured, match=r"points at a private or loopback address"):
        await connect(_config(pg_shop))
    with pytest.raises(WarehouseNotConfigured, match=r"link-local or cloud metadata address"):
        await connect(_config(f"postgresql://reader:{PASSWORD}@169.254.169.254/shop"))


async def test_a_missing_driver_is_named_before_anything_is_looked_up() -> None:
    snowflake_installed = True
    try:
        import snowflake.sqlalchemy  # noqa: F401
    except ImportError:
        snowflake_installed = False
    if snowflake_installed:
        pytest.skip("snowflake-sqlalchemy is installed here")
    checked = await health(_config(f"snowflake://analyst:{PASSWORD}@acme-prod/shop?warehouse=wh"))
    assert checked.reason == (
        "The snowflake driver is not installed in this IncidentFox, so integrations.warehouse.url cannot be "
        "used; the installation's admin can add it (Python package snowflake-sqlalchemy)."
    )


def test_values_become_json() -> None:
    values = [
        Decimal("12.50"),
        datetime(2026, 12, 4, 12, 0, 1),
        date(2026, 12, 4),
        timedelta(minutes=90),
        b"\x00\xff",
        memoryview(b"a" * 40),
        uuid.UUID(int=1),
        float("nan"),
        {"k": [Decimal("1"), None]},
        (1, "x"),
    ]
    assert [json_value(v) for v in values] == [
        "12.50",
        "2026-12-04T12:00:01",
        "2026-12-04",
        "1:30:00",
        "0x00ff",
        "0x" + "61" * 32 + "… (40 bytes)",
        "00000000-0000-0000-0000-000000000001",
        "nan",
        {"k": ["1", None]},
        [1, "x"],
    ]


async def test_the_tools_reach_the_model_through_the_function_tool_adapter(pg_shop: str) -> None:
    assert [t.name for t in toolset_function_tools(WAREHOUSE, agent="data")] == [
        "run_query",
        "list_tables",
        "describe_table",
        "explain_query",
    ]
    events: list[ProgressEvent] = []
    config = _config(_with_password(pg_shop))
    ctx = InvestigationContext(run_id="r", org_id="o", team_node_id="t", config=config, emit=events.append)
    tool = next(t for t in WAREHOUSE.tools if t.name == "run_query")
    sql = "SELECT count(*) AS n FROM failed_payments"
    text = await invoke_tool(
        ctx, WAREHOUSE, tool, json.dumps({"sql": sql, "limit": None}), call_id="c", agent="data"
    )
    await ctx.clients["warehouse"].close()
    answer = json.loads(text)
    assert answer["status"] == "ok"
    assert answer["data"]["rows"] == [[FAILED]] and answer["invocation"] == sql
    assert PASSWORD not in text and PASSWORD not in repr(events)
