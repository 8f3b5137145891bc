"""A thread's conversation belongs to the team that had it: a claim that moves takes no history along."""

from __future__ import annotations

from pathlib import Path

from incidentfox.agents.runs.intake import RunIntake
from incidentfox.agents.runs.service import RunFinish
from incidentfox.bot.runtime import build_runtime
from incidentfox.handlers.trigger import RoutingKey, ThreadRef, Trigger
from tests.conftest import make_settings

THREAD = ThreadRef(channel_id="C0MOVED", thread_ts="1700000000.000100", workspace_id="T1")


def _trigger(n: int) -> Trigger:
    return Trigger(
        source="slack",
        kind="mention",
        routing_key=RoutingKey(slack_channel_id="C0MOVED"),
        text=f"question {n}",
        thread_ref=THREAD,
        requester="U1",
        delivery_id=f"slack:EvMoved{n}",
    )


async def test_history_of_a_thread_is_read_only_by_its_team(tmp_path: Path) -> None:
    runtime = await build_runtime(make_settings(f"sqlite+aiosqlite:///{tmp_path}/t.db", tmp_path))
    try:
        intake = RunIntake(runtime.engine, runtime.sessions)
        first = await intake.accept(_trigger(1), org_id="acme", team_node_id="checkout")
        said = [{"role": "user", "content": "why is the payments db password rejected?"}]
        await runtime.runs.finish(first, RunFinish(status="succeeded", events=[], history=said))
        assert await runtime.runs.history(THREAD.key, org_id="acme", team_node_id="checkout") == said
        assert await runtime.runs.history(THREAD.key, org_id="rival", team_node_id="checkout") == []
        assert await runtime.runs.history(THREAD.key, org_id="acme", team_node_id="ledger") == []

        second = await intake.accept(_trigger(2), org_id="rival", team_node_id="ops")
        theirs = [{"role": "user", "content": "question 2"}]
        await runtime.runs.finish(second, RunFinish(status="succeeded", events=[], history=theirs))
        assert await runtime.runs.history(THREAD.key, org_id="rival", team_node_id="ops") == theirs
        assert await runtime.runs.history(THREAD.key, org_id="acme", team_node_id="checkout") == []
    finally:
        await runtime.close()
