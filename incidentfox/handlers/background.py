"""Work a listener starts after its ack (a reply, a modal, a Home publish), owned so shutdown can wait.

Bolt answers Slack only when the listener returns (``process_before_response``), so anything slow is
spawned here instead of awaited; ``drain`` lets ``IncidentFox.stop`` finish it before the HTTP
session closes. A reference is kept to every task, or the event loop could collect it mid-flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every spawned task, including tasks spawned while waiting."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
