"""Back-pressure: a bot whose run queue is over ``QUEUE_MAX_DEPTH`` still acks at once, and tells the
user how many runs wait ahead and, from the queue's recent pace, about how long."""

from __future__ import annotations

import secrets
from pathlib import Path

from incidentfox.agents.queue import Backlog, InProcessRunQueue, QueuedRun
from incidentfox.agents.stream_queue import StreamRunQueue
from incidentfox.handlers.slack.notices import backlog_text
from tests.slack_world import forget_namespace, world


def test_the_wait_is_told_from_the_recent_pace() -> None:
    slow = backlog_text(Backlog(ahead=30, finished=3))
    assert "30 investigations are waiting ahead of yours" in slow
    assert "about 50 minutes" in slow, "3 finished in 5 minutes: 30 ahead take 50"
    assert "within about a minute" in backlog_text(Backlog(ahead=1, finished=100))
    stalled = backlog_text(Backlog(ahead=1, finished=0))
    assert "1 investigation is waiting" in stalled and "can't say when" in stalled
    assert "you don't need to ask again" in stalled


async def test_the_in_process_queue_counts_waiting_runs_and_its_pace() -> None:
    queue = InProcessRunQueue()
    assert await queue.put(QueuedRun("r1", None)) == 1
    assert await queue.put(QueuedRun("r2", None)) == 2
    await queue.ack(await queue.get())
    assert await queue.finished_recently() == 1


async def test_the_redis_queue_counts_waiting_runs_and_every_workers_acks(redis_url: str) -> None:
    namespace = f"ifx-test-{secrets.token_hex(4)}"
    bot = StreamRunQueue.connect(redis_url, namespace=namespace, consumer="bot")
    workers = [StreamRunQueue.connect(redis_url, namespace=namespace, consumer=f"w{n}") for n in (1, 2)]
    try:
        assert [await bot.put(QueuedRun(f"r{n}", None)) for n in range(4)] == [1, 2, 3, 4]
        for worker in workers:
            await worker.ack(await worker.get())
        assert await bot.put(QueuedRun("r9", None)) == 3, "delivered runs are not waiting"
        assert await bot.finished_recently() == 2, "the pace counts the acks of every worker"
    finally:
        for queue in (bot, *workers):
            await queue.close()
        await forget_namespace(redis_url, namespace)


async def test_a_mention_over_the_depth_limit_is_acked_and_told_the_wait(
    tmp_path: Path, redis_url: str
) -> None:
    async with world(tmp_path, redis_url=redis_url, role="bot", settings={"queue_max_depth": 2}) as w:
        for n in range(3):
            response = await w.post_event(
                w.slack.make_event_callback(w.mention(f"why is checkout slow? ({n})"), event_id=f"EvDeep{n}")
            )
            assert response.status == 200, "over the limit the bot still acks"
        assert w.fox.slack is not None
        await w.fox.slack.notices.drain()
        told = [c.args.get("text", "") for c in w.slack.calls("chat.postEphemeral")]
        assert len(told) == 1, "only the run past the limit hears about the wait"
        assert "2 investigations are waiting ahead of yours" in told[0]
        assert "no investigation has finished in the last 5 minutes" in told[0]
        assert w.fox.runtime is not None
        runs = await w.fox.runtime.runs.unfinished()
        assert len(runs) == 3 and all(r.status == "queued" for r in runs), "every request was saved"
