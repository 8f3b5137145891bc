"""Retrying one step of a run (a database read or write, a config load) with exponential backoff.

A worker step that fails once (a dropped connection, a locked SQLite file, a failover) usually
works a moment later; one that keeps failing is reported to the caller, which ends the run with a
plain message instead of leaving it ``queued``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """``attempts`` tries in all, waiting ``base_s`` × 2ⁿ (at most ``cap_s``) between them."""

    attempts: int = 4
    base_s: float = 0.25
    cap_s: float = 5.0

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1-based)."""
        return min(self.cap_s, self.base_s * 2 ** max(0, failures - 1))


class StepFailed(Exception):
    """A step kept failing after every retry; ``user_message`` says so in plain words."""

    def __init__(self, step: str, user_message: str) -> None:
        super().__init__(step)
        self.step = step
        self.user_message = user_message


async def retried(
    step: str,
    call: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    user_message: str,
    run_id: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``await call()``, retried on any ``Exception``; ``StepFailed`` once ``backoff.attempts`` are spent."""
    failures = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            failures += 1
            if failures >= backoff.attempts:
                log.error(
                    "run step failed for good step=%s run_id=%s attempts=%d error=%s",
                    step,
                    run_id,
                    failures,
                    type(exc).__name__,
                )
                raise StepFailed(step, user_message) from exc
            delay = backoff.delay(failures)
            log.warning(
                "run step failed, retrying step=%s run_id=%s attempt=%d retry_in_s=%.2f error=%s",
                step,
                run_id,
                failures,
                delay,
                type(exc).__name__,
            )
            await sleep(delay)
