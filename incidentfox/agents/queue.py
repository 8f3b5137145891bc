"""The run queue: how accepted runs reach workers, in the order they were accepted.

Two kinds behind one protocol: ``InProcessRunQueue`` (the embedded default: bot and worker share one
process) and ``stream_queue.StreamRunQueue`` (``REDIS_URL``: Redis Streams shared by bot and worker
processes). A worker ``ack``s a delivery once the run is handled (finished, dropped as a duplicate, or
queued again); a delivery it never acks (the worker died) is delivered again to another worker.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

SHARED_STREAM = "shared"


def team_stream(org_id: str, team_node_id: str) -> str:
    """The stream of a team with ``tenancy.mode: dedicated``, which only its own workers read."""
    return f"team:{org_id}/{team_node_id}"


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A run id with its thread, so a worker can take the thread's turn before any I/O: runs of one
    thread then start in the order they were queued. ``stream`` is where it is queued; ``receipt``
    and ``deliveries`` are the queue's, for ``ack`` and for parking a run that keeps failing."""

    run_id: str
    thread_key: str | None
    stream: str = SHARED_STREAM
    receipt: Any = field(default=None, compare=False)
    deliveries: int = 1


class RunQueue(Protocol):
    async def put(self, item: QueuedRun) -> None: ...

    async def get(self) -> QueuedRun: ...

    async def ack(self, item: QueuedRun) -> None: ...


class InProcessRunQueue:
    """An unbounded asyncio queue: the bot and the workers share one process."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[QueuedRun] = asyncio.Queue()

    async def put(self, item: QueuedRun) -> None:
        self._queue.put_nowait(item)

    async def get(self) -> QueuedRun:
        return await self._queue.get()

    async def ack(self, item: QueuedRun) -> None:
        """Nothing to do: a run taken from this queue is gone from it."""

    def qsize(self) -> int:
        return self._queue.qsize()
