"""What a worker keeps doing beside its runs: one lock per thread, its run leases kept alive, and the
runs that were saved while the queue was unreachable put on it once it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from incidentfox.agents.queue import RunQueue
from incidentfox.agents.runs.claims import RunClaims
from incidentfox.agents.runs.entries import QueueEntries
from incidentfox.agents.runs.recovery import requeue_orphans, requeue_stranded
from incidentfox.agents.runs.service import RunStore

log = logging.getLogger(__name__)

STRANDED_SWEEP_S = 30.0
"""How often a worker queues the runs saved while the run queue was unreachable."""
LOST_CHECK_S = 2.0
"""How often a worker looks whether the run queue lost its entries."""


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


async def _none_queued() -> set[str]:
    return set()


@dataclass(slots=True)
class QueueRecovery:
    """How a worker puts back on the queue the runs it lost: saved while it was unreachable, or held
    in entries Redis lost when it restarted empty (``entries_lost`` says so, once)."""

    runs: RunStore
    queue: RunQueue
    entries: QueueEntries
    max_age: timedelta
    entries_lost: Callable[[], bool] = field(default=lambda: False)
    queued_run_ids: Callable[[], Awaitable[set[str]]] = field(default=_none_queued)
    orphans_owed: bool = False

    async def sweep_forever(self) -> None:
        since_stranded = 0.0
        while True:
            await asyncio.sleep(LOST_CHECK_S)
            since_stranded += LOST_CHECK_S
            try:
                self.orphans_owed = self.orphans_owed or self.entries_lost()
                if self.orphans_owed:
                    queued = await self.queued_run_ids()
                    await requeue_orphans(
                        self.runs, self.queue, self.entries, queued=queued, max_age=self.max_age
                    )
                    self.orphans_owed = False
                if since_stranded >= STRANDED_SWEEP_S:
                    since_stranded = 0.0
                    await requeue_stranded(self.runs, self.queue, self.entries)
            except Exception as exc:
                log.warning("queueing lost runs failed error=%s; retrying", type(exc).__name__)
