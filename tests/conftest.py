"""Shared fixtures: real SQLite and PostgreSQL databases, the assembled runtime, and a loopback API client."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.bot.server import create_app
from incidentfox.bot.settings import Settings
from incidentfox.db.engine import create_engine
from incidentfox.db.migrate import upgrade_to_head
from incidentfox.db.models_registry import metadata
from incidentfox.egress import EgressPolicy, current_policy, install_policy
from incidentfox.emulators.slack import SlackEmulator

ADMIN_TOKEN = "test-admin-" + "a" * 40
T = TypeVar("T")
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def run_in_fresh_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a new event loop in its own thread (safe inside a running loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@dataclass
class PostgresServer:
    url: str | None
    reason: str = ""


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _create_database(admin_url: str, name: str) -> str:
    connection = await asyncpg.connect(_plain_dsn(admin_url), timeout=5)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    await upgrade_to_head(engine)
    await engine.dispose()
    return url


async def _drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(_plain_dsn(admin_url), timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One migrated database per test session, dropped at the end. Tests truncate tables between them."""
    admin_url = os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)
    name = "ifx_test_" + secrets.token_hex(4)
    try:
        url = run_in_fresh_loop(_create_database(admin_url, name))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL unreachable at {make_url(admin_url).host}: {type(exc).__name__}: {exc}"
        if os.environ.get("INCIDENTFOX_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (INCIDENTFOX_REQUIRE_POSTGRES=1)")
        yield PostgresServer(url=None, reason=reason)
        return
    yield PostgresServer(url=url)
    run_in_fresh_loop(_drop_database(admin_url, name))


async def truncate_all(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/incidentfox.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    if server.url is None:
        pytest.skip(server.reason)
    run_in_fresh_loop(truncate_all(server.url))
    return server.url


@pytest.fixture
async def redis_url() -> str:
    """A reachable Redis (``TEST_REDIS_URL``); skipped when there is none, unless CI requires it."""
    import redis.asyncio as redis
    from redis.exceptions import RedisError

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        reason = f"Redis unreachable at {url}: {type(exc).__name__}"
        if os.environ.get("INCIDENTFOX_REQUIRE_REDIS") == "1":
            pytest.fail(reason + " (INCIDENTFOX_REQUIRE_REDIS=1)")
        pytest.skip(reason)
    finally:
        await client.aclose()
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/incidentfox.db"


TEST_WATCHDOG_S = 240.0
"""No test comes near this; one that does is hung. The slowest take about 30 s."""


@pytest.fixture(autouse=True)
async def hung_test_watchdog() -> AsyncIterator[None]:
    """Turn a hung async test into a failure that shows where it waits, instead of a CI run that
    stalls until its own limit: after ``TEST_WATCHDOG_S`` every task's stack is printed and every
    other task is cancelled (the test's await raises ``CancelledError``)."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()

    def fire() -> None:
        tasks = [task for task in asyncio.all_tasks(loop) if task is not me and not task.done()]
        print(
            f"\nTEST WATCHDOG: still running after {TEST_WATCHDOG_S:.0f} s; {len(tasks)} tasks:",
            file=sys.stderr,
        )
        for task in tasks:
            task.print_stack(limit=12, file=sys.stderr)
        for task in tasks:
            task.cancel()

    handle = loop.call_later(TEST_WATCHDOG_S, fire)
    try:
        yield
    finally:
        handle.cancel()


@pytest.fixture(autouse=True)
def loopback_egress_allowed() -> Iterator[None]:
    """Every emulator listens on 127.0.0.1, so tests run with private egress allowed, stated here
    (tests of the refusal install their own policy)."""
    previous = current_policy()
    install_policy(EgressPolicy(allow_private=True))
    yield
    install_policy(previous)


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Test settings. ``EGRESS_ALLOW_PRIVATE`` is stated explicitly: every emulator listens on 127.0.0.1.
    The local workspace is off unless a test asks for it (``local_workspace=True``)."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "incidentfox_secret_key": "test-secret-key-" + "k" * 32,
        "INCIDENTFOX_DATA_DIR": data_dir,
        "egress_allow_private": True,
        "local_workspace": False,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = await build_runtime(make_settings(database_url, tmp_path), migrate=True)
    yield rt
    await rt.close()


class Api:
    """A loopback HTTP client for the config API that remembers which token to send."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = ADMIN_TOKEN,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        response = await self.client.request(method, path, json=json, data=data, headers=all_headers)
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body

    async def ok(self, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, **kwargs)
        assert status == expect, (status, body)
        return body

    async def create_org(self, org_id: str = "acme") -> str:
        body = await self.ok(
            "POST", "/api/v1/orgs", json={"org_id": org_id, "name": org_id.title()}, expect=201
        )
        token: str = body["admin_token"]
        return token

    async def create_node(self, org: str, node_id: str, parent_id: str, kind: str, token: str) -> Any:
        return await self.ok(
            "POST",
            f"/api/v1/orgs/{org}/nodes",
            token=token,
            expect=201,
            json={"node_id": node_id, "parent_id": parent_id, "kind": kind, "name": node_id},
        )

    async def team_token(self, org: str, team: str, token: str, **body: Any) -> str:
        result = await self.ok(
            "POST", f"/api/v1/orgs/{org}/nodes/{team}/tokens", token=token, json=body, expect=201
        )
        value: str = result["token"]
        return value


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[Api]:
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(runtime), host="127.0.0.1"))
    await client.start_server()
    yield Api(client)
    await client.close()


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


@pytest.fixture
async def namespace(redis_url: str) -> AsyncIterator[str]:
    """A Redis key prefix of the test's own; its keys are deleted afterwards."""
    from bench.scratch_stores import forget_namespace

    name = f"ifx-test-{secrets.token_hex(4)}"
    yield name
    await forget_namespace(redis_url, name)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session's PostgreSQL database, emptied for this test (skipped without PostgreSQL)."""
    if postgres_server.url is None:
        pytest.skip(postgres_server.reason)
    run_in_fresh_loop(truncate_all(postgres_server.url))
    return postgres_server.url
