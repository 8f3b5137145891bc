"""A ceiling on audit rows for failed authentication, so a flood of bad tokens cannot flood the log
(or the database's write path) while every failure is still accounted for."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    started: float
    written: int = 0
    suppressed: int = 0


class FailureAuditLimiter:
    """At most ``per_window`` rows per org per ``window_s``; the next row written says how many
    failures were counted but not written in between."""

    def __init__(
        self, *, per_window: int = 20, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_window = per_window
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def admit(self, org_id: str) -> int | None:
        """``None``: do not write a row (counted). Otherwise write one and report this many suppressed."""
        now = self._clock()
        window = self._windows.get(org_id)
        if window is None or now - window.started >= self._window_s:
            if len(self._windows) > 10_000:
                self._windows.clear()
            carried = window.suppressed if window else 0
            window = self._windows[org_id] = _Window(started=now, suppressed=carried)
        if window.written >= self._per_window:
            window.suppressed += 1
            return None
        window.written += 1
        suppressed, window.suppressed = window.suppressed, 0
        return suppressed
