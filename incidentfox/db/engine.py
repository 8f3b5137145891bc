"""The async engine and session factory, tuned per backend."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from incidentfox.db.write_gate import WriteGate

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
    ``async with sessions.begin() as s``, so on SQLite reads stay off the write lock, and writes take
    turns at the process's ``WriteGate`` instead of polling SQLite's lock.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
        self._writer = async_sessionmaker(engine, expire_on_commit=False)
        self.gate = WriteGate() if engine.dialect.name == "sqlite" else None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:  # type: ignore[override]
        async with self.writing(), self._writer.begin() as session:
            yield session

    @contextlib.asynccontextmanager
    async def writing(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """Take this process's turn to write (SQLite); a no-op where the database handles concurrency."""
        if self.gate is None:
            yield
            return
        async with self.gate.hold(urgent=urgent):
            yield


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return SessionFactory(engine)
