"""One cluster scan shared by the runs of a team that start within a few seconds of each other.

During an incident many people ask at once, and every run starts with the same deterministic scan
of the same namespace. ``SharedScans`` runs it once (single flight) and hands the findings to every
run that starts within ``ttl_s``; each run still ranks them against its own question. Findings are
immutable, so sharing them is safe; a failed scan is shared too, for the same short time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from incidentfox.agents.analyzers.findings import Finding

ScanKey = tuple[str, str, str]
ScanResult = list[Finding] | str


@dataclass(slots=True)
class _Scan:
    started: float
    task: asyncio.Task[ScanResult]


class SharedScans:
    def __init__(self, *, ttl_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._scans: dict[ScanKey, _Scan] = {}

    async def get(self, key: ScanKey, scan: Callable[[], Awaitable[ScanResult]]) -> ScanResult:
        now = self._clock()
        self._forget_older_than(now - self._ttl_s)
        current = self._scans.get(key)
        if current is None:
            current = self._scans[key] = _Scan(started=now, task=asyncio.ensure_future(scan()))
        return await asyncio.shield(current.task)

    def _forget_older_than(self, cutoff: float) -> None:
        for key in [k for k, s in self._scans.items() if s.started < cutoff and s.task.done()]:
            del self._scans[key]
