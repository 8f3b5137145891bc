"""One cluster scan shared by the runs of a team that ask at nearly the same time.

During an incident many people ask at once, and every run starts with the same deterministic scan
of the same scope. ``SharedScans`` runs it once (single flight) and hands the findings to the runs
that join while it is in flight or within ``fresh_s`` (a couple of seconds) of its start. Up to
``ttl_s`` it is reused only when ``unchanged`` confirms that nothing it read has changed (the
cluster's ``resourceVersion`` is the one the scan recorded); otherwise the run scans again. A
confirmation is itself shared: the runs that arrive together wait for one check, and a scan
confirmed unchanged counts as fresh again for ``fresh_s`` from that check. Each run still ranks the
findings against its own question. Results are immutable, so sharing them is safe; a failed scan is
shared too, for ``fresh_s`` only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

ScanKey = tuple[str, str, str]
T = TypeVar("T")


@dataclass(slots=True)
class _Scan:
    started: float
    task: asyncio.Task[Any]
    confirmed: float = 0.0
    """When ``unchanged`` last confirmed the result (the check's start); 0 before any check."""
    check: asyncio.Task[bool] | None = None
    """The confirmation in flight, awaited by every run that arrives while it runs."""


class SharedScans:
    def __init__(
        self,
        *,
        ttl_s: float = 10.0,
        fresh_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._fresh_s = min(fresh_s, ttl_s)
        self._clock = clock
        self._scans: dict[ScanKey, _Scan] = {}

    async def get(
        self,
        key: ScanKey,
        scan: Callable[[], Awaitable[T]],
        *,
        unchanged: Callable[[T], Awaitable[bool]] | None = None,
    ) -> T:
        """The shared result for ``key``: joined while in flight, reused while fresh or provably
        unchanged, otherwise scanned again. A key is always scanned by the same kind of ``scan``."""
        now = self._clock()
        self._forget_older_than(now - self._ttl_s)
        current = self._scans.get(key)
        stale = current is not None and not await self._reusable(current, now, unchanged)
        if stale and self._scans.get(key) is current:
            del self._scans[key]
        current = self._scans.get(key)
        if current is None:
            current = self._scans[key] = _Scan(started=now, task=asyncio.ensure_future(scan()))
        return cast(T, await asyncio.shield(current.task))

    async def _reusable(
        self, current: _Scan, now: float, unchanged: Callable[[T], Awaitable[bool]] | None
    ) -> bool:
        if not current.task.done() or now - max(current.started, current.confirmed) <= self._fresh_s:
            return True
        if unchanged is None or current.task.cancelled() or current.task.exception() is not None:
            return False
        if current.check is None or (current.check.done() and now - current.confirmed > self._fresh_s):
            current.check = asyncio.ensure_future(self._confirm(current, now, unchanged))
        return await asyncio.shield(current.check)

    @staticmethod
    async def _confirm(current: _Scan, now: float, unchanged: Callable[[Any], Awaitable[bool]]) -> bool:
        same = await unchanged(current.task.result())
        if same:
            current.confirmed = now
        return same

    def _forget_older_than(self, cutoff: float) -> None:
        for key in [k for k, s in self._scans.items() if s.started < cutoff and s.task.done()]:
            del self._scans[key]
