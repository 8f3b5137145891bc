"""Several processes on one database: a config write in one drops the others' cached copies (Redis)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.config.change_bus import ConfigChange
from incidentfox.config.permissions import Principal
from incidentfox.config.routing import RouteTarget
from tests.conftest import make_settings

ADMIN = Principal(kind="admin")


@pytest.fixture
async def two_processes(
    database_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Runtime, Runtime]]:
    namespace = "ifx-test-" + secrets.token_hex(4)
    settings = make_settings(database_url, tmp_path, redis_url=redis_url, redis_namespace=namespace)
    first = await build_runtime(settings, migrate=True)
    second = await build_runtime(settings, migrate=False)
    yield first, second
    await second.close()
    await first.close()


async def _eventually(check: Callable[[], Awaitable[Any]], expected: Any) -> Any:
    for _ in range(100):
        value = await check()
        if value == expected:
            return value
        await asyncio.sleep(0.02)
    return await check()


async def test_a_write_in_one_process_refreshes_the_others_caches(
    two_processes: tuple[Runtime, Runtime],
) -> None:
    writer, reader = two_processes
    async with writer.config.sessions.begin() as session:
        await writer.config.create_org(session, org_id="acme", name="Acme", actor="test")
    await writer.config.create_node(
        ADMIN, "acme", {"node_id": "checkout", "parent_id": "acme", "kind": "team"}
    )
    await writer.config.write_config(ADMIN, "acme", "acme", {"agent": {"timeout_s": 300}}, operation="put")

    assert (await reader.config.effective_config("acme", "checkout"))["agent"] == {"timeout_s": 300}
    assert await reader.config.routing.lookup(slack_channel_id="C0CHECKOUT") is None

    await writer.config.write_config(ADMIN, "acme", "acme", {"agent": {"timeout_s": 900}}, operation="put")
    await writer.config.write_config(
        ADMIN, "acme", "checkout", {"routing": {"slack_channel_ids": ["C0CHECKOUT"]}}, operation="put"
    )

    async def timeout_seen() -> Any:
        return (await reader.config.effective_config("acme", "checkout"))["agent"]["timeout_s"]

    assert await _eventually(timeout_seen, 900) == 900

    async def route_seen() -> Any:
        return await reader.config.routing.lookup(slack_channel_id="C0CHECKOUT")

    assert await _eventually(route_seen, RouteTarget("acme", "checkout")) == RouteTarget("acme", "checkout")


async def test_a_lost_subscription_clears_every_cache(two_processes: tuple[Runtime, Runtime]) -> None:
    _, reader = two_processes
    async with reader.config.sessions.begin() as session:
        await reader.config.create_org(session, org_id="acme", name="Acme", actor="test")
    await reader.config.effective_config("acme", "acme")
    assert len(reader.config.cache) == 1
    reader.config.apply_change(ConfigChange(org_id="", node_id=None))
    assert len(reader.config.cache) == 0
