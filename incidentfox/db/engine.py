"""The async engine and session factory, tuned per backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

READ_ONLY = "incidentfox_read_only"


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """Create the engine. SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` write transactions.

    ``BEGIN IMMEDIATE`` takes the write lock at the start of a write transaction, so two writers queue
    on the busy timeout instead of one failing with "database is locked" when it upgrades a read
    lock. Read-only sessions (see ``SessionFactory``) begin deferred: with WAL they never block, and
    are never blocked by, a writer.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, **kwargs)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **kwargs)
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class SessionFactory(async_sessionmaker[AsyncSession]):
    """``factory()`` opens a read-only session; ``factory.begin()`` a write transaction.

    Every service reads with ``async with sessions() as s`` and writes with
    ``async with sessions.begin() as s``, so on SQLite reads stay off the write lock.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
        self._writer = async_sessionmaker(engine, expire_on_commit=False)

    def begin(self) -> Any:
        return self._writer.begin()


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return SessionFactory(engine)
