"""The Interrupt button across processes, on the real Redis: the bot announces the interrupt and the
worker process holding the run stops it; a press nobody holds is answered "not running"."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from incidentfox.agents.events import ProgressEvent
from incidentfox.agents.run_control import InterruptListener, LocalRunControl, RedisRunControl


class Holder:
    """A worker holding some runs: interrupting one of them succeeds once."""

    def __init__(self, *held: str) -> None:
        self.held = set(held)
        self.interrupted: list[tuple[str, str]] = []

    def interrupt(self, run_id: str, by: str) -> bool:
        if run_id not in self.held:
            return False
        self.held.discard(run_id)
        self.interrupted.append((run_id, by))
        return True

    def live_events(self, run_id: str) -> list[ProgressEvent] | None:
        return [] if run_id in self.held else None


async def _until(check: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


async def test_an_interrupt_reaches_the_worker_process_that_holds_the_run(
    redis_url: str, namespace: str
) -> None:
    bot_redis, worker_redis, other_redis = (Redis.from_url(redis_url) for _ in range(3))
    holder, bystander = Holder("run-1"), Holder()
    listeners = [
        InterruptListener(worker_redis, namespace=namespace, worker=holder),
        InterruptListener(other_redis, namespace=namespace, worker=bystander),
    ]
    control = RedisRunControl(bot_redis, namespace=namespace)
    try:
        for listener in listeners:
            await listener.start()
        assert await control.interrupt("run-1", "U0BOB")
        await _until(lambda: holder.interrupted == [("run-1", "U0BOB")])
        assert bystander.interrupted == []
        assert control.live_events("run-1") is None, "the bot shows persisted events, not live ones"
    finally:
        for listener in listeners:
            await listener.close()
        for client in (bot_redis, worker_redis, other_redis):
            await client.aclose()


async def test_with_no_worker_listening_the_press_is_not_running(redis_url: str, namespace: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        assert not await RedisRunControl(client, namespace=namespace).interrupt("run-9", "U0BOB")
        local = Holder("run-2")
        both = RedisRunControl(client, namespace=namespace, local=local)
        assert await both.interrupt("run-2", "U0BOB"), "this process's own worker is asked first"
        assert both.live_events("run-3") is None
    finally:
        await client.aclose()


async def test_in_one_process_the_worker_is_asked_directly() -> None:
    worker = Holder("run-1")
    control = LocalRunControl(worker)
    assert await control.interrupt("run-1", "U1") and not await control.interrupt("run-1", "U1")
    assert control.live_events("run-2") is None
