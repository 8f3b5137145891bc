"""Workers on the Redis Streams run queue, against the real Redis and the database: a worker that dies
holding a run (no ack, no release) loses it to another worker, which finishes it exactly once; a
finished run delivered again is dropped; a run that keeps killing its workers is parked with a
message."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Result, Started
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.agents.progress_marker import run_metadata
from incidentfox.agents.queue import QueuedRun
from incidentfox.agents.rca import RootCauseAnalysis
from incidentfox.agents.resilience import Resilience
from incidentfox.agents.runs.claims import RunClaims
from incidentfox.agents.runs.service import RunFinish, RunStore
from incidentfox.agents.stream_queue import StreamRunQueue
from incidentfox.agents.worker import Worker
from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.config.permissions import Principal
from incidentfox.emulators.slack import SlackEmulator
from incidentfox.handlers.trigger import ThreadRef
from tests.accepted_runs import accept_run
from tests.conftest import make_settings

VISIBILITY_S = 0.6
TUNING = Resilience(lease_s=1.2, claim_retry_s=0.05)


class Investigations:
    """Answers at once, except questions containing ``hang``, which never return."""

    def __init__(self) -> None:
        self.answered: list[str] = []
        self.started: list[str] = []

    async def investigate(
        self, context: InvestigationContext, question: str, history: list[dict[str, Any]]
    ) -> InvestigationOutcome:
        self.started.append(question)
        context.emit(Started(summary=question))
        if "hang" in question:
            await asyncio.Event().wait()
        self.answered.append(question)
        rca = RootCauseAnalysis(summary=f"answered {question}", root_cause="-")
        context.emit(Result(rca=rca))
        return InvestigationOutcome(rca=rca)


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    built = await build_runtime(make_settings(database_url, tmp_path), migrate=True)
    async with built.sessions.begin() as session:
        await built.config.create_org(session, org_id="acme", name="acme", actor="test")
    await built.config.create_node(
        Principal(kind="admin"), "acme", {"node_id": "t", "parent_id": "acme", "kind": "team"}
    )
    try:
        yield built
    finally:
        await built.close()


async def _accept(runtime: Runtime, n: int, text: str) -> QueuedRun:
    thread = ThreadRef(channel_id="C0STREAM", thread_ts=f"1700000000.{n:06d}", workspace_id="T1")
    return await accept_run(runtime, text, thread)


def _worker(
    runtime: Runtime, queue: StreamRunQueue, name: str, slack: SlackEmulator, investigator: Investigations
) -> Worker:
    return Worker(
        queue=queue,
        runs=RunStore(runtime.sessions),
        config=runtime.config,
        slack=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
        investigator=investigator,
        update_interval=0.05,
        resilience=TUNING,
        claims=RunClaims(runtime.sessions, name),
    )


def _queue(redis_url: str, namespace: str, name: str) -> StreamRunQueue:
    return StreamRunQueue.connect(
        redis_url, namespace=namespace, consumer=name, visibility_timeout_s=VISIBILITY_S
    )


async def _until(check: Any, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting")


async def test_a_dead_workers_run_is_finished_once_by_another(
    runtime: Runtime, redis_url: str, namespace: str, slack: SlackEmulator
) -> None:
    producer = _queue(redis_url, namespace, "bot")
    doomed_queue, survivor_queue = _queue(redis_url, namespace, "a"), _queue(redis_url, namespace, "b")
    doomed_answers, survivor_answers = Investigations(), Investigations()
    doomed = _worker(runtime, doomed_queue, "worker-a", slack, doomed_answers)
    survivor = _worker(runtime, survivor_queue, "worker-b", slack, survivor_answers)
    stuck = await _accept(runtime, 1, "please hang")
    await producer.put(stuck)
    doomed_task = asyncio.create_task(doomed.run_forever())
    survivor_task: asyncio.Task[None] | None = None
    try:
        await _until(lambda: doomed_answers.started == ["please hang"])
        survivor_task = asyncio.create_task(survivor.run_forever())
        doomed_task.cancel()
        await asyncio.gather(doomed_task, return_exceptions=True)
        for task in list(doomed._tasks):
            task.cancel()
        await doomed_queue.streams.stop()
        survivor_answers.started.clear()
        await _until(lambda: survivor_answers.started == ["please hang"], timeout=30)
        fresh = await _accept(runtime, 2, "all good")
        await producer.put(fresh)
        await _until(lambda: survivor_answers.answered == ["all good"])
        run = await runtime.runs.get(stuck.run_id)
        assert run is not None and run.claimed_by == "worker-b" and run.status == "running"
    finally:
        if survivor_task is not None:
            survivor_task.cancel()
            await asyncio.gather(survivor_task, return_exceptions=True)
        for task in list(survivor._tasks):
            task.cancel()
        for queue in (producer, doomed_queue, survivor_queue):
            await queue.close()
    assert doomed_answers.answered == [], "the dead worker never finished it"


async def test_a_finished_run_delivered_again_is_dropped(
    runtime: Runtime, redis_url: str, namespace: str, slack: SlackEmulator
) -> None:
    producer, consumer = _queue(redis_url, namespace, "bot"), _queue(redis_url, namespace, "a")
    answers = Investigations()
    worker = _worker(runtime, consumer, "worker-a", slack, answers)
    done = await _accept(runtime, 3, "already answered")
    await runtime.runs.finish(done.run_id, RunFinish(status="succeeded", events=[]))
    await producer.put(done)
    later = await _accept(runtime, 4, "a new question")
    await producer.put(later)
    task = asyncio.create_task(worker.run_forever())
    try:
        await _until(lambda: answers.answered == ["a new question"])
        await worker.drain()
        depth = await producer.depth()
        assert (depth.waiting, depth.pending) == (0, 0), "both deliveries were acknowledged"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.close()
        await consumer.close()
    assert answers.started == ["a new question"]


async def test_a_run_that_keeps_killing_its_workers_is_parked(
    runtime: Runtime, redis_url: str, namespace: str, slack: SlackEmulator
) -> None:
    producer = _queue(redis_url, namespace, "bot")
    poison = await _accept(runtime, 5, "poison question")
    await producer.put(poison)
    reader = _queue(redis_url, namespace, "reader")
    try:
        for _ in range(3):
            delivery = await reader.get()
            assert delivery.run_id == poison.run_id
            await reader.streams.stop()
            await asyncio.sleep(VISIBILITY_S + 0.2)
        answers = Investigations()
        worker = _worker(runtime, reader, "worker-z", slack, answers)
        task = asyncio.create_task(worker.run_forever())
        try:
            await _until(lambda: _finished(runtime, poison.run_id), timeout=20)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        run = await runtime.runs.get(poison.run_id)
        assert run is not None and run.status == "failed"
        assert "stopped working on this question" in (run.error or "")
        assert answers.started == [], "a parked run is not investigated again"
    finally:
        await producer.close()
        await reader.close()


async def _finished(runtime: Runtime, run_id: str) -> bool:
    run = await runtime.runs.get(run_id)
    return run is not None and run.status not in ("queued", "running")


async def test_a_run_redelivered_after_its_worker_died_takes_over_the_message_it_posted(
    runtime: Runtime, redis_url: str, namespace: str, slack: SlackEmulator
) -> None:
    """The worker died between posting "Investigating…" and saving the message's ts: the next worker
    finds the marked message in the thread and edits it, rather than posting a second one."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    root = await client.chat_postMessage(channel="C0STREAM", text="why is checkout down?")
    thread = ThreadRef(channel_id="C0STREAM", thread_ts=str(root["ts"]), workspace_id="T1")
    queued = await accept_run(runtime, "why is checkout down?", thread)
    posted = await client.chat_postMessage(
        channel="C0STREAM",
        thread_ts=thread.thread_ts,
        text="Investigating…",
        metadata=run_metadata(queued.run_id),
    )
    producer, reader = _queue(redis_url, namespace, "bot"), _queue(redis_url, namespace, "dead")
    await producer.put(queued)
    assert (await reader.get()).run_id == queued.run_id
    await reader.streams.stop()  # died holding it
    await asyncio.sleep(VISIBILITY_S + 0.2)
    answers = Investigations()
    heir_queue = _queue(redis_url, namespace, "heir")
    worker = _worker(runtime, heir_queue, "worker-heir", slack, answers)
    task = asyncio.create_task(worker.run_forever())
    try:
        await _until(lambda: _finished(runtime, queued.run_id))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for queue in (producer, reader, heir_queue):
            await queue.close()
    in_thread = [c for c in slack.calls("chat.postMessage") if c.args.get("thread_ts") == thread.thread_ts]
    assert len(in_thread) == 1, "no second progress message"
    run = await runtime.runs.get(queued.run_id)
    assert run is not None and run.message_ts == posted["ts"] and run.attempts == 2
