"""Naming what went wrong with a warehouse call in one plain sentence, without the password.

Drivers say it in codes: PostgreSQL's SQLSTATE (asyncpg), MySQL/MariaDB error numbers (asyncmy,
aiomysql) and Snowflake's errno. A timeout or a network error before a session was open means the
warehouse is unreachable; after, that the query was too slow.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from typing import Any

from sqlalchemy.exc import NoSuchModuleError

from incidentfox.agents.toolsets.warehouse_settings import (
    URL_SETTING,
    WarehouseNotConfigured,
    WarehouseSettings,
    WarehouseUnreachable,
    driver_missing,
)

_PG_AUTH = frozenset({"28P01", "28000"})
_PG_TIMEOUT = "57014"
_PG_READ_ONLY = "25006"
_PG_NO_DATABASE = "3D000"
_MYSQL_AUTH = frozenset({1044, 1045, 1698})
_MYSQL_NO_DATABASE = 1049
_MYSQL_TIMEOUT = frozenset({3024, 1969})
"""MySQL's ``max_execution_time`` and MariaDB's ``max_statement_time`` were exceeded."""
_MYSQL_READ_ONLY = frozenset({1792, 1290})
_MYSQL_UNREACHABLE = frozenset({2002, 2003, 2005, 2006, 2013})
_SNOWFLAKE_AUTH = frozenset({390100, 390144, 390318})
_SNOWFLAKE_TIMEOUT = frozenset({604, 630})
_SNOWFLAKE_UNREACHABLE = frozenset({250001, 250003})
_MAX_ERROR_TEXT = 300
_CLASS_PREFIX = re.compile(r"^<class '[\w.]+'>:\s*")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, the DBAPI error SQLAlchemy wrapped and their causes (each once)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend([getattr(item, "orig", None), item.__cause__, item.__context__])
    return seen


def _codes(chain: list[BaseException]) -> tuple[str | None, int | None]:
    """(PostgreSQL SQLSTATE, MySQL or Snowflake error number), the first of each found."""
    sqlstate: str | None = None
    number: int | None = None
    for item in chain:
        state = getattr(item, "sqlstate", None) or getattr(item, "pgcode", None)
        if sqlstate is None and isinstance(state, str):
            sqlstate = state
        code = getattr(item, "errno", None)
        args: tuple[Any, ...] = tuple(getattr(item, "args", ()))
        if number is None and isinstance(code, int) and code > 0:
            number = code
        elif number is None and args and isinstance(args[0], int) and not isinstance(args[0], bool):
            number = args[0]
    return sqlstate, number


def _server_message(chain: list[BaseException]) -> str:
    """The database's own words (``relation "x" does not exist``), without SQLAlchemy's decoration."""
    for item in chain:
        args: tuple[Any, ...] = tuple(getattr(item, "args", ()))
        if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
            text = args[1]
            break
        if item.__class__.__module__.startswith(("asyncpg", "aiomysql", "asyncmy", "pymysql", "snowflake")):
            text = str(item)
            break
    else:
        text = str(getattr(chain[0], "orig", None) or chain[0])
    text = _CLASS_PREFIX.sub("", text.strip()).splitlines()[0] if text.strip() else ""
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 1] + "…"


def _network_cause(chain: list[BaseException]) -> str:
    if any(isinstance(item, ssl.SSLError | ssl.CertificateError) for item in chain):
        return "TLS failed: the server's certificate or TLS settings were not accepted"
    errnos = {getattr(item, "errno", None) for item in chain}
    text = " ".join(str(item) for item in chain).lower()
    if any(isinstance(item, ConnectionRefusedError) for item in chain) or errno.ECONNREFUSED in errnos:
        return "connection refused"
    if errnos & {errno.ENETUNREACH, errno.EHOSTUNREACH}:
        return "no route to the host"
    if any(isinstance(item, socket.gaierror) for item in chain) or "name or service not known" in text:
        return "host name not found"
    if any(isinstance(item, TimeoutError) for item in chain) or "timed out" in text:
        return "no answer in time"
    return "the connection failed"


def describe_failure(
    exc: BaseException, settings: WarehouseSettings, *, timeout_s: float, connected: bool
) -> str:
    """One sentence for a failed warehouse call; ``connected`` says whether a session was open (a
    timeout before that is an unreachable host, after it a slow query)."""
    where = settings.where
    if isinstance(exc, WarehouseNotConfigured | WarehouseUnreachable):
        return str(exc)
    chain = _chain(exc)
    if any(isinstance(item, ImportError | NoSuchModuleError) for item in chain):
        return driver_missing(settings.url.drivername)
    sqlstate, number = _codes(chain)
    if sqlstate in _PG_AUTH or number in _MYSQL_AUTH or number in _SNOWFLAKE_AUTH:
        return (
            f"The warehouse at {where} rejected the user or password (authentication failed); "
            f"check the credentials in {URL_SETTING}."
        )
    if sqlstate == _PG_NO_DATABASE or number == _MYSQL_NO_DATABASE:
        return (
            f"The warehouse at {settings.url.host} has no database {settings.url.database!r} (unknown "
            f"database); check the database name in {URL_SETTING}."
        )
    if (
        sqlstate == _PG_TIMEOUT
        or number in _MYSQL_TIMEOUT
        or number in _SNOWFLAKE_TIMEOUT
        or (connected and any(isinstance(item, TimeoutError) for item in chain))
    ):
        return (
            f"The query was stopped after {timeout_s:g} s, the warehouse's time limit "
            "(integrations.warehouse.timeout_s). Narrow it: filter on a time column, aggregate, or add "
            "a LIMIT."
        )
    if sqlstate == _PG_READ_ONLY or number in _MYSQL_READ_ONLY:
        return f"The warehouse refused to write: the session is read-only ({_server_message(chain)})."
    if not connected and (
        number in _MYSQL_UNREACHABLE
        or number in _SNOWFLAKE_UNREACHABLE
        or any(isinstance(item, OSError | TimeoutError) for item in chain)
    ):
        return (
            f"The warehouse at {where} is unreachable ({_network_cause(chain)}); check the host and "
            f"port in {URL_SETTING} and that IncidentFox can reach it."
        )
    message = _server_message(chain)
    if not connected:
        return f"Could not connect to the warehouse at {where}: {message or type(exc).__name__}."
    return f"The warehouse answered with an error: {message or type(exc).__name__}."
