"""Per-team concurrency limits across worker processes, on the real Redis: a team's
``limits.max_concurrent_runs`` holds for two workers together, other teams are not held back, and a
slot whose worker died frees itself when its lease runs out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Result
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.agents.rca import RootCauseAnalysis
from incidentfox.agents.resilience import Resilience
from incidentfox.agents.runs.claims import RunClaims
from incidentfox.agents.runs.service import RunStore
from incidentfox.agents.stream_queue import StreamRunQueue
from incidentfox.agents.team_slots import LocalTeamSlots, RedisTeamSlots, team_run_limit
from incidentfox.agents.worker import Worker
from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.config.permissions import Principal
from incidentfox.emulators.slack import SlackEmulator
from incidentfox.handlers.trigger import ThreadRef
from tests.accepted_runs import accept_run
from tests.conftest import make_settings

TUNING = Resilience(lease_s=2.0, claim_retry_s=0.05, team_wait_s=0.1)
ADMIN = Principal(kind="admin")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    built = await build_runtime(make_settings(database_url, tmp_path), migrate=True)
    async with built.sessions.begin() as session:
        await built.config.create_org(session, org_id="acme", name="acme", actor="test")
    for team, limits in (("busy", {"max_concurrent_runs": 2}), ("calm", {})):
        await built.config.create_node(ADMIN, "acme", {"node_id": team, "parent_id": "acme", "kind": "team"})
        await built.config.write_config(ADMIN, "acme", team, {"limits": limits}, operation="put")
    try:
        yield built
    finally:
        await built.close()


class Gate:
    """Investigations that wait until released, counting how many of each team run at once."""

    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.release = asyncio.Event()
        self.answered = 0

    async def investigate(
        self, context: InvestigationContext, question: str, history: list[dict[str, Any]]
    ) -> InvestigationOutcome:
        team = context.team_node_id
        self.running[team] = self.running.get(team, 0) + 1
        self.most[team] = max(self.most.get(team, 0), self.running[team])
        try:
            await self.release.wait()
            await asyncio.sleep(0.05)
        finally:
            self.running[team] -= 1
        self.answered += 1
        rca = RootCauseAnalysis(summary="done", root_cause="-")
        context.emit(Result(rca=rca))
        return InvestigationOutcome(rca=rca)


async def _until(check: Any, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_the_limit_is_read_from_the_teams_config() -> None:
    assert team_run_limit({"limits": {"max_concurrent_runs": 4}}) == 4
    configs: tuple[dict[str, Any], ...] = (
        {},
        {"limits": {}},
        {"limits": {"max_concurrent_runs": 0}},
        {"limits": {"max_concurrent_runs": True}},
    )
    for config in configs:
        assert team_run_limit(config) is None


async def test_local_slots_count_holders_once() -> None:
    slots = LocalTeamSlots()
    assert await slots.take("acme/t", "a", 1)
    assert await slots.take("acme/t", "a", 1), "a holder keeps its slot"
    assert not await slots.take("acme/t", "b", 1)
    await slots.give_back("acme/t", "a")
    assert await slots.take("acme/t", "b", 1)


async def test_redis_slots_hold_across_processes_and_free_a_dead_holders_after_its_lease(
    redis: Redis, namespace: str
) -> None:
    first = RedisTeamSlots(redis, namespace=namespace, lease_s=0.6)
    second = RedisTeamSlots(Redis(connection_pool=redis.connection_pool), namespace=namespace, lease_s=0.6)
    try:
        assert await first.take("acme/t", "run-1", 2)
        assert await second.take("acme/t", "run-2", 2)
        assert not await second.take("acme/t", "run-3", 2), "two workers together hold the limit"
        await asyncio.sleep(1.0)
        assert not await second.take("acme/t", "run-3", 2), "live holders renew their slots"
        await first.close()
        first._held.clear()
        await asyncio.sleep(0.8)
        assert await second.take("acme/t", "run-3", 2), "the silent holder's slot ran out"
        await second.give_back("acme/t", "run-2")
        assert await second.take("acme/t", "run-4", 2)
    finally:
        await first.close()
        await second.close()


async def test_two_workers_keep_a_teams_limit_and_let_other_teams_through(
    runtime: Runtime, redis_url: str, namespace: str, slack: SlackEmulator, redis: Redis
) -> None:
    gate = Gate()
    queues = [
        StreamRunQueue.connect(redis_url, namespace=namespace, consumer=name, visibility_timeout_s=5)
        for name in ("bot", "a", "b")
    ]
    workers = [
        Worker(
            queue=queue,
            runs=RunStore(runtime.sessions),
            config=runtime.config,
            slack=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
            investigator=gate,
            update_interval=0.05,
            resilience=TUNING,
            claims=RunClaims(runtime.sessions, f"worker-{name}"),
            team_slots=RedisTeamSlots(queue.redis, namespace=namespace),
        )
        for name, queue in zip(("a", "b"), queues[1:], strict=True)
    ]
    for n in range(6):
        thread = ThreadRef(channel_id="C0LIMIT", thread_ts=f"1700000000.{n:06d}", workspace_id="T1")
        await queues[0].put(await accept_run(runtime, f"busy {n}", thread, team="busy"))
    for n in range(3):
        thread = ThreadRef(channel_id="C0LIMIT", thread_ts=f"1700000001.{n:06d}", workspace_id="T1")
        await queues[0].put(await accept_run(runtime, f"calm {n}", thread, team="calm"))
    tasks = [asyncio.create_task(worker.run_forever()) for worker in workers]
    try:
        await _until(lambda: gate.running.get("calm") == 3 and gate.running.get("busy") == 2)
        await asyncio.sleep(0.5)
        assert gate.running["busy"] == 2, "the busy team waits for its slots while workers have room"
        gate.release.set()
        await _until(lambda: gate.answered == 9)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in workers:
            await worker.shutdown(1.0)
        for queue in queues:
            await queue.close()
    assert gate.most == {"busy": 2, "calm": 3}
    assert await redis.zcard(f"{namespace}:team-slots:acme/busy") == 0, "every slot was given back"
