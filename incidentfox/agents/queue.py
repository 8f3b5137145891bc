"""The run queue: how accepted runs reach workers, in the order they were accepted.

Two kinds behind one protocol: ``InProcessRunQueue`` (the embedded default: bot and worker share one
process) and ``stream_queue.StreamRunQueue`` (``REDIS_URL``: Redis Streams shared by bot and worker
processes). A worker ``ack``s a delivery once the run is handled (finished, dropped as a duplicate, or
queued again); a delivery it never acks (the worker died) is delivered again to another worker.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

SHARED_STREAM = "shared"
FINISH_WINDOW_MIN = 5
"""Minutes of finished runs a queue's pace is measured over (for the wait a bot tells a user)."""
PACE_SAMPLES = 100_000


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
    team: str | None = None
    """``org/team``, for the team's concurrency limit; ``None`` on entries queued before it was kept."""
    receipt: Any = field(default=None, compare=False)
    deliveries: int = 1


@dataclass(frozen=True, slots=True)
class Backlog:
    """A queue over its depth limit: runs waiting ahead of a new one, and the runs every worker
    finished over the last ``window_min`` minutes (``None`` when that could not be read)."""

    ahead: int
    finished: int | None
    window_min: int = FINISH_WINDOW_MIN

    def wait_minutes(self) -> float | None:
        """The expected wait at the recent pace; ``None`` when nothing finished lately."""
        if not self.finished:
            return None
        return self.ahead / (self.finished / self.window_min)


class RunQueue(Protocol):
    async def put(self, item: QueuedRun) -> int | None:
        """Queue ``item``; returns how many runs wait undelivered in its queue, itself included, when
        the queue knows it cheaply."""
        ...

    async def finished_recently(self) -> int:
        """Runs acked in the last ``FINISH_WINDOW_MIN`` minutes: the queue's pace."""
        ...

    async def get(self) -> QueuedRun: ...

    async def ack(self, item: QueuedRun) -> None: ...


class InProcessRunQueue:
    """An unbounded asyncio queue: the bot and the workers share one process."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[QueuedRun] = asyncio.Queue()
        self._finished: deque[float] = deque()

    async def put(self, item: QueuedRun) -> int:
        self._queue.put_nowait(item)
        return self._queue.qsize()

    async def get(self) -> QueuedRun:
        return await self._queue.get()

    async def ack(self, item: QueuedRun) -> None:
        """A run taken from this queue is gone from it already; the ack only counts towards the pace."""
        self._finished.append(time.monotonic())
        if len(self._finished) > PACE_SAMPLES:
            self._finished.popleft()

    async def finished_recently(self) -> int:
        since = time.monotonic() - FINISH_WINDOW_MIN * 60
        while self._finished and self._finished[0] < since:
            self._finished.popleft()
        return len(self._finished)

    def qsize(self) -> int:
        return self._queue.qsize()
