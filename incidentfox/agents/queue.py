"""The run queue: how accepted runs reach workers. In-process by default; Redis when configured."""

from __future__ import annotations

import asyncio
from typing import Protocol


class RunQueue(Protocol):
    async def put(self, run_id: str) -> None: ...

    async def get(self) -> str: ...


class InProcessRunQueue:
    """An unbounded asyncio queue: the bot and the workers share one process."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def put(self, run_id: str) -> None:
        self._queue.put_nowait(run_id)

    async def get(self) -> str:
        return await self._queue.get()

    def qsize(self) -> int:
        return self._queue.qsize()
