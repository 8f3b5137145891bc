"""Reading the process-wide metrics in tests: every test in the process shares them, so a test reads a
sample before and after what it does and asserts the difference."""

from __future__ import annotations

import asyncio
import time

from prometheus_client.parser import text_string_to_metric_families

from incidentfox.observability.metrics import PROCESS_METRICS


def sample(name: str, **labels: str) -> float:
    """The sample's value now (0 when it does not exist yet)."""
    return PROCESS_METRICS.registry.get_sample_value(name, labels) or 0.0


async def sample_reaches(name: str, target: float, timeout: float = 5.0, **labels: str) -> float:
    """Wait until the sample is at least ``target`` (an ack is recorded just after it is sent)."""
    deadline = time.monotonic() + timeout
    while (value := sample(name, **labels)) < target:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} stayed at {value}, expected at least {target}")
        await asyncio.sleep(0.02)
    return value


def scraped_families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A ``/metrics`` page parsed: family name → its samples (labels, value)."""
    return {
        family.name: [(dict(s.labels), s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }
