"""Redis unreachable when a trigger arrives: the run is saved and acked as degraded, no worker can
claim it while it is not on the queue, and the stranded-run sweep queues it once Redis is back."""

from __future__ import annotations

import pytest

from incidentfox.agents.investigation import config_problems
from incidentfox.agents.runs.claims import Claim, RunClaims
from incidentfox.agents.runs.entries import QueueEntries
from incidentfox.agents.runs.intake import RunIntake
from incidentfox.agents.runs.recovery import requeue_stranded
from incidentfox.agents.stream_queue import StreamRunQueue
from incidentfox.bot.runtime import Runtime
from incidentfox.config.permissions import Principal
from incidentfox.handlers.pipeline import Accepted, TriggerPipeline
from incidentfox.handlers.trigger import RoutingKey, ThreadRef, Trigger

CHANNEL = "C0STRAND"


async def test_a_run_saved_while_redis_was_down_is_queued_once_it_is_back(
    runtime: Runtime, redis_url: str, namespace: str
) -> None:
    admin = Principal(kind="admin")
    async with runtime.sessions.begin() as session:
        await runtime.config.create_org(session, org_id="acme", name="acme", actor="test")
    await runtime.config.create_node(admin, "acme", {"node_id": "t", "parent_id": "acme", "kind": "team"})
    team = {
        "integrations": {"kubernetes": {"api_url": "http://127.0.0.1:9", "token": "t"}},
        "routing": {"slack_channel_ids": [CHANNEL]},
    }
    await runtime.config.write_config(admin, "acme", "t", team, operation="put")
    dead = StreamRunQueue.connect("redis://127.0.0.1:1/0", namespace=namespace, consumer="bot")
    live = StreamRunQueue.connect(redis_url, namespace=namespace, consumer="worker")
    pipeline = TriggerPipeline(
        routing=runtime.config.routing,
        config=runtime.config,
        intake=RunIntake(runtime.engine, runtime.sessions),
        runs=runtime.runs,
        queue=dead,
        check_config=config_problems,
    )
    trigger = Trigger(
        source="slack",
        kind="mention",
        routing_key=RoutingKey(slack_channel_id=CHANNEL),
        text="why is checkout down?",
        thread_ref=ThreadRef(CHANNEL, "1700000000.000100", "T1"),
        requester="U1",
        delivery_id="slack:EvStranded1",
    )
    try:
        outcome = await pipeline.submit(trigger)

        assert isinstance(outcome, Accepted) and outcome.degraded
        claims = RunClaims(runtime.sessions, "worker")
        assert await claims.claim(outcome.run_id, lease_s=30) is Claim.WAITING, "not claimable off the queue"
        with pytest.raises(ConnectionError):
            await requeue_stranded(runtime.runs, dead, QueueEntries(runtime.config))
        assert await requeue_stranded(runtime.runs, live, QueueEntries(runtime.config)) == 1
        assert await requeue_stranded(runtime.runs, live, QueueEntries(runtime.config)) == 0, (
            "queued once, not on every sweep"
        )
        delivered = await live.get()
        assert delivered.run_id == outcome.run_id
        assert await claims.claim(outcome.run_id, lease_s=30) is Claim.CLAIMED
    finally:
        await dead.close()
        await live.close()
