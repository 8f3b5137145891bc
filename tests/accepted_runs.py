"""Runs accepted straight through the intake, as the pipeline would persist them, for worker tests."""

from __future__ import annotations

import secrets

from incidentfox.agents.queue import QueuedRun
from incidentfox.agents.runs.intake import RunIntake
from incidentfox.bot.runtime import Runtime
from incidentfox.handlers.trigger import RoutingKey, ThreadRef, Trigger


async def accept_run(runtime: Runtime, text: str, thread: ThreadRef, *, team: str = "t") -> QueuedRun:
    """A mention in ``thread`` saved as a queued run of team ``acme/<team>``; what a worker is handed."""
    trigger = Trigger(
        source="slack",
        kind="mention",
        routing_key=RoutingKey(slack_channel_id=thread.channel_id),
        text=text,
        thread_ref=thread,
        requester="U1",
        delivery_id=f"slack:Ev{secrets.token_hex(6)}",
    )
    run_id = await RunIntake(runtime.engine, runtime.sessions).accept(
        trigger, org_id="acme", team_node_id=team
    )
    return QueuedRun(run_id, thread.key, team=f"acme/{team}")
