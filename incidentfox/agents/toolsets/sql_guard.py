"""The allow-list for SQL a model may run against a warehouse: exactly one statement that only reads.

Allowed: SELECT (and UNION/INTERSECT/EXCEPT of SELECTs), WITH … SELECT whose every CTE only reads,
SHOW, DESCRIBE/DESC, and EXPLAIN of such a SELECT without ANALYZE (EXPLAIN ANALYZE runs the
statement). Refused, with the reason in plain words: everything else (INSERT, UPDATE, DELETE, MERGE,
DDL, GRANT, COPY, CALL, SET, LOCK, …), SELECT … INTO, SELECT … FOR UPDATE/SHARE, and functions that
write, sleep, read server files or reach other servers (``pg_sleep``, ``benchmark``, ``lo_*``,
``pg_read_file``, ``dblink``, …).

The statement is tokenized and parsed with sqlglot in the warehouse's dialect. Checks run on both the
tokens (so a clause the parser folds away, a hidden second statement or a MySQL executable comment
``/*! … */`` is still seen) and the syntax tree. This is the first of two walls: the statement then
runs in a read-only transaction (``warehouse_db``), which stops a write that got past the parser.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

ALLOWED = "Only SELECT, WITH, SHOW, DESCRIBE and EXPLAIN are allowed"

DENIED_FUNCTIONS = frozenset(
    {
        # sleeping or burning CPU
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "sleep",
        "benchmark",
        # server files and other servers
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "load_file",
        # writing, signalling or changing the server
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "pg_switch_wal",
        "pg_notify",
        "pg_logical_emit_message",
        "set_config",
        "nextval",
        "setval",
        "get_lock",
        "release_lock",
        "release_all_locks",
        "master_pos_wait",
        "source_pos_wait",
        "sys_exec",
        "sys_eval",
        # running a statement given as text
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
    }
)
DENIED_PREFIXES = (
    "lo_",
    "dblink",
    "pg_advisory",
    "pg_try_advisory",
    "pg_file_",
    "pg_read_",
    "pg_ls_",
    "pg_create_",
    "pg_drop_",
    "pg_replication_",
    "pg_stat_reset",
    "system$",
)
"""Large objects, dblink, advisory locks, server files, replication slots and Snowflake's
``SYSTEM$…`` functions (``SYSTEM$WAIT`` sleeps, others cancel queries or change the account)."""

_DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "snowflake": "snowflake"}
_EXPLAIN_WORDS = frozenset({"EXPLAIN", "DESCRIBE", "DESC"})
_EXECUTING_OPTIONS = frozenset({"ANALYZE", "ANALYSE"})
_STATEMENT_WORDS = frozenset(
    {
        "SELECT",
        "WITH",
        "VALUES",
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "REPLACE",
        "UPSERT",
        "CREATE",
        "DROP",
        "ALTER",
        "DECLARE",
        "EXECUTE",
        "CALL",
    }
)
"""Words that start the statement an EXPLAIN (or MySQL's DESCRIBE) is about."""
_WRITING_NODES: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Insert, "INSERT"),
    (exp.Update, "UPDATE"),
    (exp.Delete, "DELETE"),
    (exp.Merge, "MERGE"),
    (exp.Create, "CREATE"),
    (exp.Drop, "DROP"),
    (exp.Alter, "ALTER"),
    (exp.TruncateTable, "TRUNCATE"),
    (exp.Copy, "COPY"),
    (exp.Grant, "GRANT"),
    (exp.Revoke, "REVOKE"),
    (exp.Set, "SET"),
    (exp.LoadData, "LOAD DATA"),
    (exp.Command, "command"),
)
_MYSQL_HIDDEN_CODE = re.compile(r"/\*(?:!|M!|\+)")
_MYSQL_NOT_A_COMMENT = re.compile(r"--(?=[^\s])")
"""sqlglot reads ``--1`` as a comment; MySQL reads it as two minus signs and runs what follows."""
_NAME_TOKENS = frozenset(
    {TokenType.VAR, TokenType.IDENTIFIER, TokenType.DOT, TokenType.TABLE, TokenType.VIEW, TokenType.STRING}
)
"""What may follow DESCRIBE when it describes a table: ``orders``, ``shop.orders``, ``TABLE orders``."""
_WRITING_TOKENS = frozenset(
    {
        TokenType.INSERT,
        TokenType.DELETE,
        TokenType.MERGE,
        TokenType.CREATE,
        TokenType.DROP,
        TokenType.ALTER,
        TokenType.TRUNCATE,
        TokenType.GRANT,
        TokenType.REVOKE,
        TokenType.COPY,
        TokenType.REPLACE,
    }
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a statement may run; ``reason`` says why not in one or two plain sentences."""

    allowed: bool
    reason: str = ""
    kind: str = ""
    """SELECT, SHOW, DESCRIBE or EXPLAIN when allowed."""


def _refuse(reason: str) -> Verdict:
    return Verdict(allowed=False, reason=reason)


def sqlglot_dialect(backend: str) -> str:
    """sqlglot's name for a warehouse backend (``postgresql`` → ``postgres``)."""
    return _DIALECTS.get(backend, backend)


def _article(word: str) -> str:
    return "an" if word[:1] in "AEIOU" and word not in ("USE", "UNION") else "a"


def _not_allowed(kind: str) -> Verdict:
    return _refuse(f"{ALLOWED}; this is {_article(kind)} {kind}.")


def check_statement(sql: str, dialect: str) -> Verdict:
    """The verdict on ``sql`` for a warehouse speaking ``dialect`` (sqlglot's name: ``postgres``,
    ``mysql``, ``snowflake``)."""
    try:
        tokens = _tokenize(sql, dialect)
        if not tokens:
            return _refuse("The statement is empty.")
        # sqlglot keeps the rest of a statement that starts with a command word (EXPLAIN, SHOW, CALL…)
        # as one raw string; tokenizing that rest again lets every check below see inside it.
        rest = sql[tokens[0].end + 1 :]
        rest_tokens = _tokenize(rest, dialect)
    except (TokenError, ParseError) as exc:
        return _refuse(f"The statement could not be read as {dialect} SQL: {_first_line(exc)}")
    problem = _token_problem(sql, [tokens[0], *rest_tokens], dialect)
    if problem:
        return _refuse(problem)
    first = tokens[0].text.upper()
    if first == "SHOW":
        return Verdict(allowed=True, kind="SHOW")
    if first in _EXPLAIN_WORDS:
        return _check_explain(first, rest, rest_tokens, dialect)
    if first in ("SELECT", "WITH", "("):
        return _check_query(sql, tokens, dialect)
    return _not_allowed(first)


def _tokenize(sql: str, dialect: str) -> list[Token]:
    return list(sqlglot.Dialect.get_or_raise(dialect).tokenize(sql))


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= 200 else line[:199] + "…"


def _statements(tokens: list[Token]) -> int:
    count, open_statement = 0, False
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            open_statement = False
        elif not open_statement:
            count, open_statement = count + 1, True
    return count


def _token_problem(sql: str, tokens: list[Token], dialect: str) -> str | None:
    """What the text and tokens alone show: several statements, a MySQL executable comment or
    optimizer hint (MySQL runs what is inside ``/*! … */``; sqlglot reads both as comments), a denied
    function."""
    statements = _statements(tokens)
    if statements != 1:
        return f"Send exactly one statement per query; this has {statements}."
    if dialect == "mysql" and _MYSQL_HIDDEN_CODE.search(sql):
        return (
            "MySQL executable comments and optimizer hints (/*! … */, /*+ … */) are not allowed; remove them."
        )
    if dialect == "mysql" and _MYSQL_NOT_A_COMMENT.search(sql):
        return (
            "In MySQL, -- starts a comment only when a space follows it; write '-- ' for a comment "
            "or '- -' for two minus signs."
        )
    for token, following in itertools.pairwise(tokens):
        if following.token_type == TokenType.L_PAREN and _denied(token.text):
            return _denied_reason(token.text)
    return None


def _denied(name: str) -> bool:
    lowered = name.lower().strip('"`[]')
    return lowered in DENIED_FUNCTIONS or lowered.startswith(DENIED_PREFIXES)


def _denied_reason(name: str) -> str:
    return (
        f"The function {name.lower()}() is not allowed: it sleeps, writes, reads server files or "
        "reaches another server."
    )


def _check_explain(word: str, rest: str, tokens: list[Token], dialect: str) -> Verdict:
    """EXPLAIN/DESCRIBE/DESC of a SELECT (no ANALYZE), or DESCRIBE of a table."""
    depth = 0
    for token in tokens:
        text = token.text.upper()
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        elif text in _EXECUTING_OPTIONS:
            return _refuse(f"{word} ANALYZE runs the statement it explains; use {word} without ANALYZE.")
        elif depth == 0 and text in _STATEMENT_WORDS:
            inner_sql = rest[token.start :]
            inner = _check_query(inner_sql, _tokenize(inner_sql, dialect), dialect)
            if inner.allowed:
                return Verdict(allowed=True, kind="EXPLAIN")
            return _refuse(f"{word} may only explain a read-only SELECT. {inner.reason}")
    names_only = all(token.token_type in _NAME_TOKENS for token in tokens)
    if (word == "EXPLAIN" and dialect != "mysql") or not tokens or not names_only or len(tokens) > 5:
        return _refuse(f"{word} takes a table name or a SELECT to explain.")
    return Verdict(allowed=True, kind="DESCRIBE")


def _check_query(sql: str, tokens: list[Token], dialect: str) -> Verdict:
    """A SELECT, a set operation of SELECTs or a WITH … SELECT, on its syntax tree and its tokens."""
    if any(token.token_type == TokenType.INTO for token in tokens):
        return _refuse(_INTO)
    try:
        parsed = [statement for statement in sqlglot.parse(sql, read=dialect) if statement is not None]
    except (ParseError, TokenError) as exc:
        return _refuse(f"The statement could not be parsed as {dialect} SQL: {_first_line(exc)}")
    if len(parsed) != 1:
        return _refuse(f"Send exactly one statement per query; this has {len(parsed)}.")
    statement = parsed[0]
    for node_type, kind in _WRITING_NODES:
        if isinstance(statement, node_type):
            return _not_allowed(_kind_of(statement, kind))
    if not isinstance(statement, exp.Query):
        return _not_allowed(statement.key.upper())
    verdict = _check_tree(statement)
    if not verdict.allowed:
        return verdict
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        calls_function = following is not None and following.token_type == TokenType.L_PAREN
        if token.token_type in _WRITING_TOKENS and not calls_function:
            return _refuse(f"{ALLOWED}; this query contains the keyword {token.text.upper()}.")
    return verdict


def _kind_of(statement: exp.Expr, kind: str) -> str:
    if isinstance(statement, exp.Command):
        return str(statement.this).upper()
    return kind


def _check_tree(statement: exp.Expr) -> Verdict:
    for node in statement.walk():
        for node_type, kind in _WRITING_NODES:
            if isinstance(node, node_type):
                kind = _kind_of(node, kind)
                return _refuse(
                    f"{ALLOWED}; this query contains {_article(kind)} {kind} (a data-modifying WITH or "
                    "subquery)."
                )
        if isinstance(node, exp.Into):
            return _refuse(_INTO)
        if isinstance(node, exp.Lock):
            return _refuse("SELECT … FOR UPDATE/SHARE locks rows; leave out the locking clause to only read.")
        if isinstance(node, exp.Func):
            for name in _function_names(node):
                if _denied(name):
                    return _refuse(_denied_reason(name))
    return Verdict(allowed=True, kind="SELECT")


_INTO = "SELECT … INTO writes the result into a table, a variable or a file; use a plain SELECT."


def _function_names(node: exp.Func) -> Iterable[str]:
    if isinstance(node, exp.Anonymous):
        return [node.name]
    return [node.sql_name(), *type(node).sql_names()]
