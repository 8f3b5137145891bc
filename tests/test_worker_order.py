"""Runs of one thread start in the order they were queued, even when loading the first one is slower."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Result, Started
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.agents.queue import InProcessRunQueue, QueuedRun
from incidentfox.agents.rca import RootCauseAnalysis
from incidentfox.agents.runs.intake import RunIntake
from incidentfox.agents.runs.models import Run
from incidentfox.agents.runs.service import RunStore
from incidentfox.agents.worker import Worker
from incidentfox.bot.runtime import build_runtime
from incidentfox.config.permissions import Principal
from incidentfox.emulators.slack import SlackEmulator
from incidentfox.handlers.trigger import RoutingKey, ThreadRef, Trigger
from tests.conftest import make_settings


class SlowFirstLoad(RunStore):
    """Loading the first run of the thread takes longer than loading its follow-up."""

    slow_run_id = ""

    async def get(self, run_id: str) -> Run | None:
        if run_id == self.slow_run_id:
            await asyncio.sleep(0.3)
        return await super().get(run_id)


class RecordingInvestigator:
    def __init__(self) -> None:
        self.order: list[str] = []

    async def investigate(
        self, context: InvestigationContext, question: str, history: list[dict[str, Any]]
    ) -> InvestigationOutcome:
        self.order.append(question)
        context.emit(Started(summary=question))
        rca = RootCauseAnalysis(summary=f"answered {question}", root_cause="-")
        context.emit(Result(rca=rca))
        return InvestigationOutcome(rca=rca, history=[*history, {"role": "user", "content": question}])


async def test_a_follow_up_waits_for_the_run_queued_before_it(tmp_path: Path, slack: SlackEmulator) -> None:
    runtime = await build_runtime(
        make_settings(f"sqlite+aiosqlite:///{tmp_path}/w.db", tmp_path), migrate=True
    )
    store = SlowFirstLoad(runtime.sessions)
    queue = InProcessRunQueue()
    investigator = RecordingInvestigator()
    thread = ThreadRef(channel_id="C0ORDER", thread_ts="1700000000.000100", workspace_id="T1")
    intake = RunIntake(runtime.engine, runtime.sessions)
    run_ids = []
    for n, text in enumerate(["first question", "follow-up"]):
        trigger = Trigger(
            source="slack",
            kind="mention",
            routing_key=RoutingKey(slack_channel_id="C0ORDER"),
            text=text,
            thread_ref=thread,
            requester="U1",
            delivery_id=f"slack:EvO{n}",
        )
        run_ids.append(await intake.accept(trigger, org_id="acme", team_node_id="t"))
    store.slow_run_id = run_ids[0]
    for run_id in run_ids:
        await queue.put(QueuedRun(run_id, thread.key))
    async with runtime.sessions.begin() as session:
        await runtime.config.create_org(session, org_id="acme", name="acme", actor="test")
    await runtime.config.create_node(
        Principal(kind="admin"), "acme", {"node_id": "t", "parent_id": "acme", "kind": "team"}
    )
    worker = Worker(
        queue=queue,
        runs=store,
        config=runtime.config,
        slack=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
        investigator=investigator,
        update_interval=0.05,
    )
    loop_task = asyncio.create_task(worker.run_forever())
    try:
        for _ in range(200):
            if len(investigator.order) == 2:
                break
            await asyncio.sleep(0.02)
        await worker.drain()
    finally:
        loop_task.cancel()
        await runtime.close()
    assert investigator.order == ["first question", "follow-up"]
    second = await store.history(thread.key, org_id="acme", team_node_id="t")
    assert [m["content"] for m in second] == ["first question", "follow-up"]
