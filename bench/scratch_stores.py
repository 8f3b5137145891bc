"""A PostgreSQL database and a Redis namespace of a benchmark's own, removed when it ends.

The servers are ``TEST_DATABASE_URL``'s and ``TEST_REDIS_URL``'s (the local defaults otherwise), as
for the tests; nothing a benchmark writes outlives it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as redis

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def admin_database_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


def redis_server_url() -> str:
    return os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@contextlib.asynccontextmanager
async def scratch_database(prefix: str = "ifx_bench_") -> AsyncIterator[str]:
    """A new, empty database; yields its SQLAlchemy URL and drops it afterwards."""
    admin_url, name = admin_database_url(), prefix + secrets.token_hex(4)
    connection = await asyncpg.connect(_dsn(admin_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        connection = await asyncpg.connect(_dsn(admin_url))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


async def forget_namespace(url: str, namespace: str) -> None:
    """Delete every key of ``namespace`` (run streams, counters, slots)."""
    client = redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()
