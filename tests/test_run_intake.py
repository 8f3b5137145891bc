"""Group commit of triggers: concurrent retries are one run, and one bad row fails only itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from incidentfox.agents.runs.intake import RunIntake
from incidentfox.agents.runs.models import Delivery, Run
from incidentfox.agents.runs.service import DuplicateDelivery
from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.handlers.trigger import RoutingKey, ThreadRef, Trigger
from tests.conftest import PostgresServer, make_settings, run_in_fresh_loop, truncate_all


def _trigger(n: int, *, delivery: str | None = None, requester: str = "U1") -> Trigger:
    return Trigger(
        source="slack",
        kind="mention",
        routing_key=RoutingKey(slack_channel_id="C0INTAKE"),
        text=f"question {n}",
        thread_ref=ThreadRef("C0INTAKE", f"1700000000.{n:06d}", "T1"),
        requester=requester,
        delivery_id=delivery or f"slack:Ev{n}",
    )


async def _count(runtime: Runtime, model: type[Run] | type[Delivery]) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_concurrent_retries_in_one_batch_make_one_run(runtime: Runtime) -> None:
    intake = RunIntake(runtime.engine, runtime.sessions)
    attempts = [
        intake.accept(_trigger(1, delivery="slack:EvSAME"), org_id="acme", team_node_id="t") for _ in range(5)
    ]
    attempts += [intake.accept(_trigger(n), org_id="acme", team_node_id="t") for n in range(2, 40)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    duplicates = [r for r in results[:5] if isinstance(r, DuplicateDelivery)]
    assert len(duplicates) == 4
    assert all(isinstance(r, str) for r in results[5:])
    assert await _count(runtime, Run) == 39
    assert await _count(runtime, Delivery) == 39
    with pytest.raises(DuplicateDelivery):
        await intake.accept(_trigger(1, delivery="slack:EvSAME"), org_id="acme", team_node_id="t")


@pytest.fixture
async def postgres_runtime(postgres_server: PostgresServer, tmp_path: Path) -> AsyncIterator[Runtime]:
    """PostgreSQL only: it enforces column lengths, which is how this test makes one row bad."""
    if postgres_server.url is None:
        pytest.skip(postgres_server.reason)
    run_in_fresh_loop(truncate_all(postgres_server.url))
    runtime = await build_runtime(make_settings(postgres_server.url, tmp_path), migrate=False)
    yield runtime
    await runtime.close()


async def test_a_row_the_database_rejects_fails_only_its_own_trigger(postgres_runtime: Runtime) -> None:
    runtime = postgres_runtime
    intake = RunIntake(runtime.engine, runtime.sessions)
    too_long = "U" * 1000
    results = await asyncio.gather(
        *(intake.accept(_trigger(n), org_id="acme", team_node_id="t") for n in range(10)),
        intake.accept(_trigger(99, requester=too_long), org_id="acme", team_node_id="t"),
        return_exceptions=True,
    )
    assert all(isinstance(r, str) for r in results[:10]), results
    assert isinstance(results[10], Exception)
    assert not isinstance(results[10], DuplicateDelivery)
    assert await _count(runtime, Run) == 10
