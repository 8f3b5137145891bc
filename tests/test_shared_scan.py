"""A team's runs that start together share one cluster scan; later runs scan again."""

from __future__ import annotations

import asyncio

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.shared_scan import SharedScans

FINDING = Finding(kind="healthy", severity="info", resource="namespace prod", summary="ok", root_cause="ok")


async def test_concurrent_runs_share_one_scan_and_a_later_run_scans_again() -> None:
    now = [0.0]
    scans = SharedScans(ttl_s=10, clock=lambda: now[0])
    calls = 0

    async def scan() -> list[Finding]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return [FINDING]

    results = await asyncio.gather(*(scans.get(("acme", "checkout", "k"), scan) for _ in range(50)))
    assert calls == 1
    assert all(r == [FINDING] for r in results)
    assert await scans.get(("acme", "search", "k"), scan) == [FINDING]
    assert calls == 2, "another team scans its own cluster"
    now[0] = 11.0
    await scans.get(("acme", "checkout", "k"), scan)
    assert calls == 3, "a run after the window sees a fresh scan"


async def test_a_cancelled_run_does_not_cancel_the_scan_others_wait_for() -> None:
    scans = SharedScans()
    started = asyncio.Event()

    async def scan() -> str:
        started.set()
        await asyncio.sleep(0.05)
        return "The Kubernetes integration is not available: unreachable"

    first = asyncio.create_task(scans.get(("a", "t", "k"), scan))
    await started.wait()
    second = asyncio.create_task(scans.get(("a", "t", "k"), scan))
    first.cancel()
    assert await second == "The Kubernetes integration is not available: unreachable"


async def test_a_finished_scan_is_reused_past_the_fresh_window_only_while_unchanged() -> None:
    now = [0.0]
    scans = SharedScans(ttl_s=10, fresh_s=2, clock=lambda: now[0])
    calls = 0
    revision = ["100"]

    async def scan() -> list[Finding]:
        nonlocal calls
        calls += 1
        return [FINDING]

    async def unchanged(_: list[Finding]) -> bool:
        return revision[0] == "100"

    key = ("acme", "checkout", "k")
    await scans.get(key, scan, unchanged=unchanged)
    now[0] = 1.0
    await scans.get(key, scan, unchanged=unchanged)
    assert calls == 1, "within the fresh window the scan is shared without asking"
    now[0] = 5.0
    await scans.get(key, scan, unchanged=unchanged)
    assert calls == 1, "the cluster's revision is the one scanned"
    now[0] = 7.5
    await scans.get(key, scan)
    assert calls == 2, "without a way to check for changes, only the fresh window is trusted"
    revision[0] = "101"
    now[0] = 10.0
    await scans.get(key, scan, unchanged=unchanged)
    assert calls == 3, "a write since the scan forces a new one"


async def test_runs_arriving_together_past_the_fresh_window_share_one_check() -> None:
    now = [0.0]
    scans = SharedScans(ttl_s=10, fresh_s=2, clock=lambda: now[0])
    scanned = checks = 0

    async def scan() -> list[Finding]:
        nonlocal scanned
        scanned += 1
        return [FINDING]

    async def unchanged(_: list[Finding]) -> bool:
        nonlocal checks
        checks += 1
        await asyncio.sleep(0.02)
        return True

    key = ("acme", "checkout", "k")
    await scans.get(key, scan, unchanged=unchanged)
    now[0] = 3.0
    await asyncio.gather(*(scans.get(key, scan, unchanged=unchanged) for _ in range(50)))
    assert (scanned, checks) == (1, 1), "fifty runs wait for one check of the cluster's revision"
    now[0] = 4.5
    await scans.get(key, scan, unchanged=unchanged)
    assert checks == 1, "a scan confirmed unchanged is fresh again for fresh_s from that check"
    now[0] = 5.5
    await scans.get(key, scan, unchanged=unchanged)
    assert (scanned, checks) == (1, 2), "past that, the revision is checked again"
