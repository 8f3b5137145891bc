"""Two workers that both receive every run (as a redelivering queue may hand them out): each run is
investigated exactly once, and the runs of one thread in the order they arrived."""

from __future__ import annotations

import asyncio
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.queue import InProcessRunQueue
from incidentfox.agents.resilience import Resilience
from incidentfox.agents.runs.claims import RunClaims
from incidentfox.agents.runs.service import RunStore
from incidentfox.agents.worker import Worker
from incidentfox.bot.runtime import build_runtime
from incidentfox.config.permissions import Principal
from incidentfox.emulators.slack import SlackEmulator
from incidentfox.handlers.trigger import ThreadRef
from tests.accepted_runs import accept_run
from tests.conftest import make_settings
from tests.test_worker_order import RecordingInvestigator

THREAD = ThreadRef(channel_id="C0CLAIMS", thread_ts="1700000000.000100", workspace_id="T1")
OTHER = ThreadRef(channel_id="C0CLAIMS", thread_ts="1700000000.000900", workspace_id="T1")


async def test_each_run_once_and_a_threads_runs_in_order(tmp_path: Path, slack: SlackEmulator) -> None:
    runtime = await build_runtime(
        make_settings(f"sqlite+aiosqlite:///{tmp_path}/w.db", tmp_path), migrate=True
    )
    async with runtime.sessions.begin() as session:
        await runtime.config.create_org(session, org_id="acme", name="acme", actor="test")
    await runtime.config.create_node(
        Principal(kind="admin"), "acme", {"node_id": "t", "parent_id": "acme", "kind": "team"}
    )
    asked = [("first", THREAD), ("other thread", OTHER), ("follow-up", THREAD), ("third", THREAD)]
    items = [await accept_run(runtime, text, thread) for text, thread in asked]
    investigator = RecordingInvestigator()
    workers, tasks = [], []
    for name, order in (("worker-a", items), ("worker-b", list(reversed(items)))):
        queue = InProcessRunQueue()
        for item in order:
            await queue.put(item)
        worker = Worker(
            queue=queue,
            runs=RunStore(runtime.sessions),
            config=runtime.config,
            slack=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
            investigator=investigator,
            update_interval=0.05,
            resilience=Resilience(claim_retry_s=0.05),
            claims=RunClaims(runtime.sessions, name),
        )
        workers.append(worker)
        tasks.append(asyncio.create_task(worker.run_forever()))
    try:
        for _ in range(300):
            if len(investigator.order) >= len(items):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        for worker in workers:
            await worker.drain()
    finally:
        for task in tasks:
            task.cancel()
        await runtime.close()
    assert sorted(investigator.order) == sorted(text for text, _ in asked), "each run exactly once"
    in_thread = [q for q in investigator.order if q != "other thread"]
    assert in_thread == ["first", "follow-up", "third"]
