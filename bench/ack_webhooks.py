"""The webhook phase of ``bench/ack.py``: how fast IncidentFox answers PagerDuty and GitHub deliveries
under 100 concurrent ones, beside a Slack event burst of the same size, on the same server process.

Each burst sends ``burst`` deliveries of one source at once (one client task each) and times each
from send to the end of the answer's body. Bursts of the sources alternate (Slack, PagerDuty,
GitHub, then the next round), so every burst is one source only and noise on the machine hits them
alike. Every delivery is new and signed as its sender signs it:

- PagerDuty: a V3 ``incident.triggered`` event (its own event id and incident) for the service the
  team claims, signed ``X-PagerDuty-Signature: v1=…`` with the team's webhook secret;
- GitHub: a ``workflow_run`` ``completed`` with conclusion ``failure`` on a pull request of the repo
  the team claims, with its own ``X-GitHub-Delivery`` and ``X-Hub-Signature-256``;
- Slack: an ``app_mention`` ``event_callback`` on its own thread, as in the Slack ack phase.

Each one is answered only after its trigger is deduped, routed, config-checked and persisted as a run
(and, for the webhooks, its incident row), so a burst leaves ``burst`` queued runs behind; the server
runs ``role="bot"`` (no worker), so none of them competes with the answers being measured.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench.harness import (
    GITHUB_REPO,
    GITHUB_WEBHOOK_SECRET,
    PAGERDUTY_SERVICE,
    PAGERDUTY_WEBHOOK_SECRET,
    signed_headers,
)
from incidentfox.emulators.github_webhooks import signature_256
from incidentfox.emulators.pagerduty_webhooks import pagerduty_signature

SLACK = "Slack event (app_mention)"
PAGERDUTY = "PagerDuty incident.triggered"
GITHUB = "GitHub workflow_run failure"
PAGERDUTY_WINDOW_MS = 5_000.0
GITHUB_WINDOW_MS = 10_000.0
WARMUP_BURSTS = 1

Delivery = tuple[str, bytes, dict[str, str]]
"""Path, body and headers of one request."""


@dataclass
class SourceBatch:
    """Latencies (seconds) of one source's deliveries, their statuses and the bursts' wall time."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall_s if self.wall_s else 0.0

    @property
    def failed(self) -> int:
        """Deliveries not answered with the status that means "accepted, run persisted"."""
        return sum(n for status, n in self.statuses.items() if status not in ("200", "202"))


@dataclass
class WebhookResults:
    burst: int
    rounds: int
    batches: dict[str, SourceBatch]
    skipped: dict[str, str]
    """Sources not measured, and why."""

    @property
    def measured(self) -> int:
        return sum(sum(batch.statuses.values()) for batch in self.batches.values())


class Deliveries:
    """New, signed deliveries of each source; ``slack_body`` makes the Slack event bodies."""

    def __init__(self, slack_body: Callable[[], str]) -> None:
        self._slack_body = slack_body
        self._count = itertools.count()

    def slack(self) -> Delivery:
        body = self._slack_body()
        return "/slack/events", body.encode(), signed_headers(body)

    def pagerduty(self) -> Delivery:
        i = next(self._count)
        incident = f"QBENCH{i:08d}"
        occurred = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        event = {
            "id": str(uuid.uuid4()),
            "event_type": "incident.triggered",
            "resource_type": "incident",
            "occurred_at": occurred,
            "agent": {"id": PAGERDUTY_SERVICE, "type": "service_reference", "summary": "checkout-api"},
            "client": {"name": "Monitoring"},
            "data": {
                "id": incident,
                "type": "incident",
                "number": 1000 + i,
                "status": "triggered",
                "title": f"checkout-api 5xx error rate above 5% ({i})",
                "urgency": "high",
                "html_url": f"https://acme.pagerduty.com/incidents/{incident}",
                "service": {"id": PAGERDUTY_SERVICE, "type": "service_reference", "summary": "checkout-api"},
                "assignees": [{"id": "PALICE1", "type": "user_reference", "summary": "Alice Ng"}],
                "priority": {"id": "PP1", "type": "priority", "summary": "P1"},
            },
        }
        body = json.dumps({"event": event}, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "PagerDuty-Webhook/V3.0",
            "X-Webhook-Id": str(uuid.uuid4()),
            "X-PagerDuty-Signature": pagerduty_signature(body, PAGERDUTY_WEBHOOK_SECRET),
        }
        return "/webhooks/pagerduty", body, headers

    def github(self, event: str = "workflow_run") -> Delivery:
        i = next(self._count)
        owner, name = GITHUB_REPO.split("/")
        sha = f"{i:040x}"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        run: dict[str, Any] = {
            "id": 9_000_000 + i,
            "name": "CI",
            "head_branch": f"feature-{i}",
            "head_sha": sha,
            "display_title": f"Make checkout faster ({i})",
            "run_number": i,
            "event": "pull_request",
            "status": "completed",
            "conclusion": "failure",
            "html_url": f"https://github.com/{GITHUB_REPO}/actions/runs/{9_000_000 + i}",
            "run_attempt": 1,
            "pull_requests": [{"number": 100 + i, "head": {"ref": f"feature-{i}", "sha": sha}}],
            "created_at": now,
            "updated_at": now,
        }
        payload: dict[str, Any] = {
            "action": "completed",
            "workflow_run": run,
            "workflow": {"id": 161335, "name": "CI", "path": ".github/workflows/ci.yml"},
            "repository": {
                "id": 1296269,
                "name": name,
                "full_name": GITHUB_REPO,
                "owner": {"login": owner, "type": "Organization"},
                "html_url": f"https://github.com/{GITHUB_REPO}",
            },
            "sender": {"login": "alice", "id": 1, "type": "User"},
        }
        if event == "ping":
            payload = {"zen": "Keep it logically awesome.", "hook_id": 1, "repository": payload["repository"]}
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/bench",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature_256(GITHUB_WEBHOOK_SECRET, body),
        }
        return "/webhooks/github", body, headers


async def _deliver(http: aiohttp.ClientSession, base: str, delivery: Delivery) -> tuple[str, float]:
    path, body, headers = delivery
    started = time.perf_counter()
    try:
        async with http.post(base + path, data=body, headers=headers) as response:
            await response.read()
            status = str(response.status)
    except aiohttp.ClientError as exc:
        status = type(exc).__name__
    return status, time.perf_counter() - started


async def burst(
    http: aiohttp.ClientSession, base: str, make: Callable[[], Delivery], size: int
) -> SourceBatch:
    """``size`` deliveries, all in flight at once (built and signed before the first is sent)."""
    deliveries = [make() for _ in range(size)]
    started = time.perf_counter()
    answers = await asyncio.gather(*(_deliver(http, base, d) for d in deliveries))
    batch = SourceBatch(wall_s=time.perf_counter() - started)
    for status, latency in answers:
        batch.statuses[status] += 1
        batch.latencies.append(latency)
    return batch


async def github_served(http: aiohttp.ClientSession, base: str, deliveries: Deliveries) -> bool:
    """Whether the server has ``POST /webhooks/github``: a signed ``ping`` gets anything but 404."""
    status, _ = await _deliver(http, base, deliveries.github("ping"))
    return status != "404"


async def measure_webhooks(
    http: aiohttp.ClientSession, port: int, slack_body: Callable[[], str], *, size: int, rounds: int
) -> WebhookResults:
    """The webhook phase against the IncidentFox on ``port`` (alternating bursts, warm-up first)."""
    base = f"http://127.0.0.1:{port}"
    deliveries = Deliveries(slack_body)
    sources: dict[str, Callable[[], Delivery]] = {SLACK: deliveries.slack, PAGERDUTY: deliveries.pagerduty}
    skipped: dict[str, str] = {}
    if await github_served(http, base, deliveries):
        sources[GITHUB] = deliveries.github
    else:
        skipped[GITHUB] = "POST /webhooks/github answers 404 (not served by this build)"
    for make in sources.values():
        for _ in range(WARMUP_BURSTS):
            await burst(http, base, make, size)
    batches = {name: SourceBatch() for name in sources}
    for _ in range(rounds):
        for name, make in sources.items():
            measured = await burst(http, base, make, size)
            total = batches[name]
            total.latencies.extend(measured.latencies)
            total.statuses.update(measured.statuses)
            total.wall_s += measured.wall_s
    return WebhookResults(size, rounds, batches, skipped)


def report_webhooks(results: WebhookResults, percentile_ms: Callable[[list[float], int], float]) -> None:
    """The phase's section of the report (markdown)."""
    print(
        f"### Answer latency by source, bursts of {results.burst} concurrent deliveries "
        f"({results.rounds} bursts per source, IncidentFox only)"
    )
    print()
    print("| source | p50 | p95 | p99 | max | deliveries/s | answers |")
    print("|---|---|---|---|---|---|---|")
    for name, batch in results.batches.items():
        samples = batch.latencies
        statuses = " · ".join(f"{status}: {n:,}" for status, n in sorted(batch.statuses.items()))
        print(
            f"| {name} | {percentile_ms(samples, 50):.1f} ms | {percentile_ms(samples, 95):.1f} ms | "
            f"{percentile_ms(samples, 99):.1f} ms | {max(samples) * 1000:.1f} ms | {batch.rate:,.0f} | "
            f"{statuses} |"
        )
    for name, why in results.skipped.items():
        print(f"| {name} | skipped: {why} | | | | | |")
    print()


def webhook_goal_rows(
    results: WebhookResults, percentile_ms: Callable[[list[float], int], float], met: Callable[[bool], str]
) -> list[str]:
    """Rows for the goals table: each source's p99 against its sender's delivery window."""
    rows = []
    for name, sender, window in (
        (PAGERDUTY, "PagerDuty", PAGERDUTY_WINDOW_MS),
        (GITHUB, "GitHub", GITHUB_WINDOW_MS),
    ):
        batch = results.batches.get(name)
        if batch is None:
            rows.append(f"| {sender}: answer p99 under {results.burst} concurrent | skipped | - |")
            continue
        p99 = percentile_ms(batch.latencies, 99)
        ok = p99 <= window and batch.failed == 0
        rows.append(
            f"| {sender}: answer p99 under {results.burst} concurrent, within {sender}'s "
            f"{window / 1000:.0f} s window, every delivery accepted | {p99:.1f} ms, "
            f"{batch.failed} not accepted | {met(ok)} |"
        )
    return rows
