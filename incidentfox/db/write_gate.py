"""One writer at a time on SQLite, in the order that keeps Slack acks fast.

SQLite has a single write lock. Left to its busy handler, hundreds of concurrent writers poll for it
with growing sleeps: unfair, and under a burst some give up after the busy timeout ("database is
locked"). ``WriteGate`` queues writers in the process instead, FIFO, with one exception: the ack
path's writes (``urgent``) go ahead of worker bookkeeping, because Slack retries an event it has not
seen acknowledged within 3 seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class WriteGate:
    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @contextlib.asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()
            else:
                queue.remove(turn)
            raise

    def _release(self) -> None:
        """Hand the gate to the next waiter (urgent first); the gate stays held during the hand-over."""
        for queue in (self._urgent, self._normal):
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._held = False
