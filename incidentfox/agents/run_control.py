"""What the buttons on a run's message can do to a run: interrupt it, and show its events so far.

In one process the worker is right there (``LocalRunControl``). With bot and worker processes the run
may be in any worker, so an interrupt is announced on ``{namespace}:interrupts`` and every worker
checks whether it holds that run (``RedisRunControl`` and ``InterruptListener``).
"""

from __future__ import annotations

import json
import logging
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from incidentfox.agents.events import ProgressEvent
from incidentfox.pubsub import RedisSubscription

log = logging.getLogger(__name__)


class RunControl(Protocol):
    async def interrupt(self, run_id: str, by: str) -> bool:
        """Stop a queued or running run; ``False`` when no worker has it (finished, or never started)."""
        ...

    def live_events(self, run_id: str) -> list[ProgressEvent] | None:
        """The events so far of a run investigated in this process right now."""
        ...


class Interruptible(Protocol):
    def interrupt(self, run_id: str, by: str) -> bool: ...

    def live_events(self, run_id: str) -> list[ProgressEvent] | None: ...


def interrupts_channel(namespace: str) -> str:
    return f"{namespace}:interrupts"


class LocalRunControl:
    """The worker is in this process: no Redis needed."""

    def __init__(self, worker: Interruptible) -> None:
        self._worker = worker

    async def interrupt(self, run_id: str, by: str) -> bool:
        return self._worker.interrupt(run_id, by)

    def live_events(self, run_id: str) -> list[ProgressEvent] | None:
        return self._worker.live_events(run_id)


class RedisRunControl:
    """Interrupts reach every worker process; ``local`` is this process's own worker, if it has one."""

    def __init__(self, client: redis.Redis, *, namespace: str, local: Interruptible | None = None) -> None:
        self._client = client
        self._channel = interrupts_channel(namespace)
        self._local = local

    async def interrupt(self, run_id: str, by: str) -> bool:
        if self._local is not None and self._local.interrupt(run_id, by):
            return True
        try:
            listeners = await self._client.publish(self._channel, json.dumps({"run_id": run_id, "by": by}))
        except (RedisError, OSError) as exc:
            log.warning("interrupt not announced run_id=%s error=%s", run_id, type(exc).__name__)
            return False
        return bool(listeners)

    def live_events(self, run_id: str) -> list[ProgressEvent] | None:
        return self._local.live_events(run_id) if self._local is not None else None


class InterruptListener:
    """A worker process's ear for interrupts pressed in any bot process."""

    def __init__(self, client: redis.Redis, *, namespace: str, worker: Interruptible) -> None:
        self._worker = worker
        self._subscription = RedisSubscription(client, interrupts_channel(namespace), self._receive)

    async def start(self) -> None:
        await self._subscription.start()

    async def close(self) -> None:
        await self._subscription.close()

    def _receive(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            run_id, by = str(message["run_id"]), str(message["by"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed interrupt message")
            return
        if self._worker.interrupt(run_id, by):
            log.info("run interrupt received from another process run_id=%s by=%s", run_id, by)
