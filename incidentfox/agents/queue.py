"""The run queue: how accepted runs reach workers, in the order they were accepted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A run id with its thread, so a worker can take the thread's turn before any I/O: runs of one
    thread then start in the order they were queued."""

    run_id: str
    thread_key: str | None


class RunQueue(Protocol):
    async def put(self, item: QueuedRun) -> None: ...

    async def get(self) -> QueuedRun: ...


class InProcessRunQueue:
    """An unbounded asyncio queue: the bot and the workers share one process."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[QueuedRun] = asyncio.Queue()

    async def put(self, item: QueuedRun) -> None:
        self._queue.put_nowait(item)

    async def get(self) -> QueuedRun:
        return await self._queue.get()

    def qsize(self) -> int:
        return self._queue.qsize()
