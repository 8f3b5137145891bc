"""Rate limits and injected faults: the ways the emulator says "not now" to a Web API call.

Slack answers an over-limit call with HTTP 429, ``{"ok": false, "error": "ratelimited"}`` and a
``Retry-After`` header in whole seconds. Limits here are sliding windows per method (optionally per
channel, like ``chat.postMessage``'s one-per-second-per-channel rule).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Rejection:
    """The emulator's non-success answer: HTTP status, Slack error code, optional Retry-After seconds."""

    status: int
    error: str
    retry_after: int | None = None


@dataclass(slots=True)
class _Window:
    max_calls: int
    window: float
    per_channel: bool
    accepted: dict[str, deque[float]] = field(default_factory=dict)


class RateLimiter:
    """Sliding-window limits per method: at most ``burst`` accepted calls in ``burst / per_second`` s."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._rules: dict[str, _Window] = {}

    def set_limit(self, method: str, per_second: float, *, burst: int = 1, per_channel: bool = False) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("per_second must be > 0 and burst >= 1")
        self._rules[method] = _Window(max_calls=burst, window=burst / per_second, per_channel=per_channel)

    def clear(self, method: str | None = None) -> None:
        if method is None:
            self._rules.clear()
        else:
            self._rules.pop(method, None)

    def check(self, method: str, channel: str | None) -> Rejection | None:
        """Admit the call (and count it) or return a 429 rejection with a whole-second Retry-After."""
        rule = self._rules.get(method)
        if rule is None:
            return None
        key = (channel or "") if rule.per_channel else ""
        now = self._clock()
        accepted = rule.accepted.setdefault(key, deque())
        while accepted and now - accepted[0] >= rule.window:
            accepted.popleft()
        if len(accepted) >= rule.max_calls:
            wait = rule.window - (now - accepted[0])
            return Rejection(status=429, error="ratelimited", retry_after=max(1, math.ceil(wait)))
        accepted.append(now)
        return None


@dataclass(slots=True)
class _Fault:
    rejection: Rejection
    remaining: int


class FaultInjector:
    """Queued one-shot failures per method, consumed in order by the next matching calls."""

    def __init__(self) -> None:
        self._faults: dict[str, list[_Fault]] = {}

    def add(self, method: str, rejection: Rejection, times: int) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.setdefault(method, []).append(_Fault(rejection, times))

    def take(self, method: str) -> Rejection | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining == 0:
            queue.pop(0)
        return fault.rejection

    def clear(self) -> None:
        self._faults.clear()
