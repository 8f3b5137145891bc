"""The connection half of the warehouse toolset: the engine and read-only execution.

``connect`` builds the run's ``Warehouse`` from the team's ``integrations.warehouse`` (see
``warehouse_settings``). The URL's host passes the egress policy (``incidentfox.egress``) and, unless
TLS hostname verification is asked for, the connection goes to exactly the address that was checked.

Every statement runs in a session that cannot write, whatever got past ``sql_guard``:

* PostgreSQL: the connection defaults to ``default_transaction_read_only``, the transaction is begun
  ``READ ONLY``, ``SET LOCAL statement_timeout`` bounds it, and it is rolled back;
* MySQL/MariaDB: the session is ``READ ONLY`` from its first command and runs one statement per call
  (multi-statements are switched off), ``START TRANSACTION READ ONLY`` opens the transaction,
  ``max_execution_time`` (MySQL) or ``max_statement_time`` (MariaDB) bounds it, and it is rolled back;
* Snowflake (a synchronous driver, run in a worker thread) has no read-only transaction: only the guard
  and the role in the URL stand between the model and a write, so give it a read-only role.

An asyncio deadline a little longer than the server's own backs up the statement timeout. At most
``limit + 1`` rows are fetched from a server-side cursor, so a query without a LIMIT costs no memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, Inspector
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import await_

from incidentfox.agents.toolsets.warehouse_errors import describe_failure
from incidentfox.agents.toolsets.warehouse_settings import (
    CONNECT_TIMEOUT_S,
    DEADLINE_GRACE_S,
    DEFAULT_PORTS,
    MAX_TIMEOUT_S,
    URL_SETTING,
    WarehouseFailure,
    WarehouseNotConfigured,
    WarehouseSettings,
    WarehouseUnreachable,
    driver_missing,
    warehouse_settings,
)
from incidentfox.egress import (
    EgressRefused,
    check_addresses,
    current_policy,
    refuse_metadata_name,
    resolve_host,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rows:
    """What a statement returned: the column names, at most ``limit`` rows, and whether there were more."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


@dataclass(slots=True)
class Warehouse:
    """The per-run connection to the team's warehouse (a ``NullPool`` engine: a connection per call)."""

    settings: WarehouseSettings
    engine: AsyncEngine | Engine

    async def rows(self, sql: str, limit: int, *, timeout_s: float | None = None) -> Rows:
        """Run one statement read-only (see the module docstring). ``sql`` is not checked here: callers
        pass it through ``sql_guard`` first."""

        def fetch(connection: Connection) -> Rows:
            result = connection.execution_options(no_parameters=True, stream_results=True).exec_driver_sql(
                sql
            )
            if not result.returns_rows:
                result.close()
                return Rows(columns=[], rows=[], truncated=False)
            columns = list(result.keys())
            fetched = [tuple(row) for row in result.fetchmany(limit + 1)]
            truncated = len(fetched) > limit
            if truncated and self.settings.backend == "mysql":
                # Closing an unbuffered MySQL result reads every remaining row first; dropping the
                # connection instead ends the statement (and its read-only transaction) at once.
                connection.invalidate()
            else:
                result.close()
            return Rows(columns=columns, rows=fetched[:limit], truncated=truncated)

        return await self.session(fetch, timeout_s=timeout_s)

    async def inspect(self, look: Callable[[Inspector], T], *, timeout_s: float | None = None) -> T:
        """Run SQLAlchemy inspector calls inside the same read-only, time-limited session."""
        return await self.session(lambda connection: look(inspect(connection)), timeout_s=timeout_s)

    async def session(self, work: Callable[[Connection], T], *, timeout_s: float | None = None) -> T:
        """Run ``work`` with a read-only, time-limited connection that is rolled back afterwards.

        Raises ``WarehouseFailure`` (one plain sentence, no password) for anything that goes wrong.
        """
        timeout = min(timeout_s or self.settings.timeout_s, MAX_TIMEOUT_S)
        connected: list[bool] = []

        def read_only(connection: Connection) -> T:
            connected.append(True)
            return self._read_only(connection, work, timeout)

        try:
            async with asyncio.timeout(timeout + DEADLINE_GRACE_S):
                if isinstance(self.engine, AsyncEngine):
                    async with self.engine.connect() as connection:
                        return await connection.run_sync(read_only)
                return await asyncio.to_thread(self._in_thread, self.engine, read_only)
        except Exception as exc:
            sentence = describe_failure(exc, self.settings, timeout_s=timeout, connected=bool(connected))
            raise WarehouseFailure(self.settings.mask(sentence)) from exc

    @staticmethod
    def _in_thread(engine: Engine, work: Callable[[Connection], T]) -> T:
        with engine.connect() as connection:
            return work(connection)

    def _read_only(self, connection: Connection, work: Callable[[Connection], T], timeout_s: float) -> T:
        backend = self.settings.backend
        if backend == "postgresql":
            connection = connection.execution_options(postgresql_readonly=True)
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {round(timeout_s * 1000)}")
            try:
                return work(connection)
            finally:
                if not connection.invalidated:
                    connection.rollback()
        if backend == "mysql":
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            if getattr(connection.dialect, "is_mariadb", False):
                connection.exec_driver_sql(f"SET SESSION max_statement_time = {timeout_s:g}")
            else:
                connection.exec_driver_sql(f"SET SESSION max_execution_time = {round(timeout_s * 1000)}")
            connection.exec_driver_sql("START TRANSACTION READ ONLY")
            try:
                return work(connection)
            finally:
                if not connection.invalidated:
                    connection.exec_driver_sql("ROLLBACK")
        connection.exec_driver_sql(
            f"ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = {max(1, round(timeout_s))}"
        )
        try:
            return work(connection)
        finally:
            if not connection.invalidated:
                connection.rollback()

    async def close(self) -> None:
        if isinstance(self.engine, AsyncEngine):
            await self.engine.dispose()
        else:
            await asyncio.to_thread(self.engine.dispose)


async def _pinned_url(settings: WarehouseSettings) -> URL:
    """The URL to connect to: its host checked against the egress policy and, unless TLS must verify
    the host name, replaced by the exact address checked (so a changed DNS answer cannot redirect)."""
    url = settings.url
    host = str(url.host)
    if settings.backend == "snowflake":
        host = f"{host}.snowflakecomputing.com"  # the driver takes no other host from the URL
    port = url.port or DEFAULT_PORTS[settings.backend]
    policy = current_policy()
    try:
        refuse_metadata_name(host, URL_SETTING)
        addresses = await resolve_host(host, port)
        if not addresses:
            raise WarehouseUnreachable(
                f"The warehouse host {host} was not found (DNS); check the host in {URL_SETTING}."
            )
        check_addresses(addresses, private_allowed=await policy.private_allowed(), setting=URL_SETTING)
    except EgressRefused as exc:
        raise WarehouseNotConfigured(f"Refused to connect: {exc}") from None
    if settings.backend == "snowflake" or _verifies_host_name(url):
        return url
    return url.set(host=str(addresses[0]))


def _verifies_host_name(url: URL) -> bool:
    query = {key.lower(): str(value).lower() for key, value in url.query.items()}
    return (
        query.get("sslmode") == "verify-full"
        or query.get("ssl") == "verify-full"
        or (query.get("ssl_check_hostname") in ("true", "1", "yes"))
    )


def _engine(settings: WarehouseSettings, url: URL) -> AsyncEngine | Engine:
    timeout = settings.timeout_s
    try:
        if settings.backend == "postgresql":
            return create_async_engine(
                url,
                poolclass=NullPool,
                connect_args={
                    "timeout": CONNECT_TIMEOUT_S,
                    "command_timeout": timeout + DEADLINE_GRACE_S,
                    "server_settings": {
                        "default_transaction_read_only": "on",
                        "application_name": "incidentfox-warehouse",
                    },
                },
            )
        if settings.backend == "mysql":
            engine = create_async_engine(
                url,
                poolclass=NullPool,
                connect_args={
                    "connect_timeout": CONNECT_TIMEOUT_S,
                    "init_command": "SET SESSION TRANSACTION READ ONLY",
                },
            )
            event.listen(engine.sync_engine, "connect", _single_statements_only)
            return engine
        return create_engine(
            url, poolclass=NullPool, connect_args={"login_timeout": max(1, round(CONNECT_TIMEOUT_S))}
        )
    except (ImportError, NoSuchModuleError):
        raise WarehouseNotConfigured(driver_missing(url.drivername)) from None
    except ArgumentError as exc:
        reason = settings.mask(str(exc).splitlines()[0] if str(exc) else "")
        raise WarehouseNotConfigured(f"The {url.drivername} driver refused {URL_SETTING}: {reason}") from None


def _require_driver(url: URL) -> None:
    """Say that a driver is missing before anything else (no DNS look-up, no connection)."""
    try:
        url.get_dialect().import_dbapi()
    except (ImportError, NoSuchModuleError):
        raise WarehouseNotConfigured(driver_missing(url.drivername)) from None


COM_SET_OPTION = 0x1B
MULTI_STATEMENTS_OFF = b"\x01\x00"


def _single_statements_only(dbapi_connection: Any, _record: Any) -> None:
    """asyncmy and aiomysql always ask the server for CLIENT_MULTI_STATEMENTS, so ``SELECT 1; COMMIT;
    SET SESSION TRANSACTION READ WRITE; DELETE …`` would run whole if a statement ever slipped past
    the guard. ``COM_SET_OPTION MYSQL_OPTION_MULTI_STATEMENTS_OFF`` turns that off for the session
    (both drivers' ``_execute_command`` and packet reader, which they have kept for years)."""
    driver = dbapi_connection.driver_connection
    read = getattr(driver, "read_packet", None) or driver._read_packet
    await_(driver._execute_command(COM_SET_OPTION, MULTI_STATEMENTS_OFF))
    await_(read())


async def connect(config: Mapping[str, Any]) -> Warehouse:
    """The run's warehouse: settings checked, host checked, engine built. No connection is opened here.

    Raises ``WarehouseNotConfigured`` (what to set) or ``WarehouseUnreachable`` (host not found).
    """
    settings = warehouse_settings(config)
    _require_driver(settings.url)
    url = await _pinned_url(settings)
    return Warehouse(settings=settings, engine=_engine(settings, url))
