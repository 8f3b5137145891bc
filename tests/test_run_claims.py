"""Run claims on SQLite and PostgreSQL: one worker at a time holds a run, a dead worker's lease runs
out, a finished run is never taken again, and a thread's runs are taken one at a time in order."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from incidentfox.agents.runs.claims import Claim, RunClaims
from incidentfox.agents.runs.intake import RunIntake
from incidentfox.agents.runs.service import RunFinish
from incidentfox.bot.runtime import Runtime
from incidentfox.db.base import utcnow
from incidentfox.handlers.trigger import RoutingKey, ThreadRef, Trigger

LEASE_S = 30.0


async def _run(runtime: Runtime, n: int, *, thread: str = "1700000000.000100") -> str:
    trigger = Trigger(
        source="slack",
        kind="mention",
        routing_key=RoutingKey(slack_channel_id="C0CLAIM"),
        text=f"question {n}",
        thread_ref=ThreadRef("C0CLAIM", thread, "T1"),
        requester="U1",
        delivery_id=f"slack:EvClaim{n}",
    )
    intake = RunIntake(runtime.engine, runtime.sessions)
    run_id: str = await intake.accept(trigger, org_id="acme", team_node_id="t")
    return run_id


async def test_one_worker_holds_a_run_until_its_lease_runs_out(runtime: Runtime) -> None:
    run_id = await _run(runtime, 1)
    first, second = RunClaims(runtime.sessions, "worker-a"), RunClaims(runtime.sessions, "worker-b")

    results = await asyncio.gather(*(claims.claim(run_id, lease_s=LEASE_S) for claims in [first, second] * 5))

    holders = {("a", "b")[i % 2] for i, result in enumerate(results) if result is Claim.CLAIMED}
    assert len(holders) == 1, results
    assert results.count(Claim.HELD) == 5
    winner, loser = (first, second) if holders == {"a"} else (second, first)
    assert await loser.claim(run_id, lease_s=LEASE_S) is Claim.HELD
    assert await winner.claim(run_id, lease_s=LEASE_S) is Claim.CLAIMED, "a claimant may claim again"
    assert not await loser.renew(run_id, lease_s=LEASE_S)
    assert await winner.renew(run_id, lease_s=LEASE_S)
    later = utcnow() + timedelta(seconds=LEASE_S + 1)
    assert await loser.claim(run_id, lease_s=LEASE_S, now=later) is Claim.CLAIMED, "the lease ran out"
    assert not await winner.renew(run_id, lease_s=LEASE_S), "the old holder learns it lost the run"


async def test_a_finished_run_is_never_taken_again(runtime: Runtime) -> None:
    run_id = await _run(runtime, 2)
    claims = RunClaims(runtime.sessions, "worker-a")
    assert await claims.claim(run_id, lease_s=LEASE_S) is Claim.CLAIMED
    await runtime.runs.finish(run_id, RunFinish(status="succeeded", events=[]))
    assert await RunClaims(runtime.sessions, "worker-b").claim(run_id, lease_s=LEASE_S) is Claim.FINISHED
    assert await claims.claim("run_missing", lease_s=LEASE_S) is Claim.FINISHED


async def test_a_threads_runs_are_taken_one_at_a_time_in_order(runtime: Runtime) -> None:
    first, follow_up = await _run(runtime, 3), await _run(runtime, 4)
    elsewhere = await _run(runtime, 5, thread="1700000000.000999")
    a, b = RunClaims(runtime.sessions, "worker-a"), RunClaims(runtime.sessions, "worker-b")

    assert await b.claim(follow_up, lease_s=LEASE_S) is Claim.WAITING
    assert await b.claim(elsewhere, lease_s=LEASE_S) is Claim.CLAIMED
    assert await a.claim(first, lease_s=LEASE_S) is Claim.CLAIMED
    assert await b.claim(follow_up, lease_s=LEASE_S) is Claim.WAITING
    await runtime.runs.finish(first, RunFinish(status="succeeded", events=[]))
    await a.release(first)
    assert await b.claim(follow_up, lease_s=LEASE_S) is Claim.CLAIMED
