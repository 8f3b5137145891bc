"""What a worker keeps doing beside its runs: one lock per thread, its run leases kept alive, and the
runs that were saved while the queue was unreachable put on it once it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from incidentfox.agents.queue import RunQueue
from incidentfox.agents.runs.claims import RunClaims
from incidentfox.agents.runs.recovery import requeue_stranded
from incidentfox.agents.runs.service import RunStore

log = logging.getLogger(__name__)

STRANDED_SWEEP_S = 30.0
"""How often a worker queues the runs saved while the run queue was unreachable."""


class ThreadLocks:
    """One lock per Slack thread, so a follow-up waits for the run before it (one run per thread)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


async def renew_leases_forever(claims: RunClaims, lease_s: float) -> None:
    """One statement renews every run the worker holds, every third of the lease."""
    while True:
        await asyncio.sleep(lease_s / 3)
        try:
            await claims.renew_all(lease_s=lease_s)
        except Exception as exc:
            log.warning("renewing run leases failed error=%s; retrying", type(exc).__name__)


async def sweep_stranded_forever(runs: RunStore, queue: RunQueue) -> None:
    """Queue again the runs saved while the queue was unreachable (the bot acked, but its put failed)."""
    while True:
        await asyncio.sleep(STRANDED_SWEEP_S)
        try:
            await requeue_stranded(runs, queue)
        except Exception as exc:
            log.warning("queueing stranded runs failed error=%s; retrying", type(exc).__name__)
