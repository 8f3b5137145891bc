"""Slack ack latency of IncidentFox against a bare Bolt app, the webhooks' answer latency beside it,
and time to the first "Investigating…" message.

    .venv/bin/python -m bench.ack [--concurrency 200] [--requests 2000] [--sequential 300]
                                  [--rounds 4] [--mentions 50] [--burst 100] [--webhook-rounds 10]

Everything runs on 127.0.0.1. This process runs the load client (aiohttp, one ClientSession) and the
Slack and Kubernetes emulators; IncidentFox and the bare Bolt app each run in a process of their own
(``bench/harness.py``). Both servers get the same client, load and ``app_mention`` event shape, with
a unique ``event_id`` and thread per request; the measurements alternate between them in rounds
(A B, then B A, ...) and pool the rounds, so noise on the machine hits both alike.

1. Ack, concurrent: ``--requests`` signed ``event_callback`` requests per server with ``--concurrency``
   in flight, timed from send to the end of the response body.
2. Ack, sequential: ``--sequential`` requests per server, one at a time.
3. Webhooks (``bench/ack_webhooks.py``), after 1 and 2 on the same IncidentFox process: alternating
   bursts of ``--burst`` concurrent deliveries of one source each (a Slack ``app_mention``, a signed
   PagerDuty V3 ``incident.triggered``, a signed GitHub ``workflow_run`` failure on a pull request),
   ``--webhook-rounds`` bursts per source; GitHub is skipped if the route is not served.
4. Time to first message: IncidentFox with its worker, ``--mentions`` mentions one at a time on
   distinct threads, from sending the request to the Slack emulator receiving the ``chat.postMessage``.

For 1 to 3 IncidentFox runs as ``role="bot"``: it dedupes, routes, checks the team's config, persists
the run and enqueues it before answering, but no worker consumes the queue, so hundreds of
investigations (the webhooks' included) do not compete with the answers for the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.ack_webhooks import (
    WARMUP_BURSTS,
    WebhookResults,
    measure_webhooks,
    report_webhooks,
    webhook_goal_rows,
)
from bench.harness import CHANNEL, USER, ServerProcess, ServerSpec, incidentfox_server, signed_headers
from bench.scratch_stores import redis_server_url, scratch_database
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.slack import RecordedCall, SlackEmulator
from incidentfox.emulators.slack.payloads import build_event_callback, build_message_event

FOX = "IncidentFox"
BARE = "bare Bolt"
CONCURRENT_RATIO_GOAL = 1.5
SEQUENTIAL_P99_GOAL_MS = 25.0
FIRST_MESSAGE_P95_GOAL_MS = 150.0
WARMUP_SEQUENTIAL = 20
WARMUP_MENTIONS = 3
FIRST_MESSAGE_TIMEOUT_S = 10.0


@dataclass
class Batch:
    """Latencies (seconds) of successful requests, failures, and wall time of one or more runs of a load."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    wall_s: float = 0.0

    def extend(self, other: Batch) -> None:
        self.latencies.extend(other.latencies)
        self.failures += other.failures
        self.wall_s += other.wall_s

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall_s if self.wall_s else 0.0


def percentile_ms(samples: list[float], pct: int) -> float:
    """The ``pct``-th percentile (inclusive interpolation) in milliseconds."""
    if len(samples) < 2:
        return samples[0] * 1000 if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1] * 1000


class Mentions:
    """``app_mention`` bodies, each with its own ``event_id`` and message ``ts`` (so its own thread)."""

    def __init__(self, slack: SlackEmulator) -> None:
        self._slack = slack
        self._count = itertools.count()
        self._epoch = int(time.time()) - 86_400

    def next_body(self) -> str:
        i = next(self._count)
        ts = f"{self._epoch + i // 1_000_000}.{i % 1_000_000:06d}"
        event = build_message_event(
            event_type="app_mention",
            channel=CHANNEL,
            user=USER,
            text=f"<@{self._slack.bot_user_id}> why is checkout returning 502s? ({i})",
            ts=ts,
            team_id=self._slack.team_id,
        )
        identity = self._slack.identity
        payload = build_event_callback(
            event,
            team_id=identity.team_id,
            api_app_id=identity.app_id,
            bot_user_id=identity.bot_user_id,
            event_id=f"EvBENCH{i:09d}",
        )
        return json.dumps(payload)


async def _post(http: aiohttp.ClientSession, url: str, body: str) -> float | None:
    """Send one signed request; its latency in seconds, or None when it was not answered 200."""
    headers = signed_headers(body)
    started = time.perf_counter()
    try:
        async with http.post(url, data=body, headers=headers) as response:
            await response.read()
            ok = response.status == 200
    except aiohttp.ClientError:
        return None
    elapsed = time.perf_counter() - started
    return elapsed if ok else None


async def concurrent_load(
    http: aiohttp.ClientSession, url: str, mentions: Mentions, requests: int, concurrency: int
) -> Batch:
    batch = Batch()
    bodies: Iterator[str] = (mentions.next_body() for _ in range(requests))

    async def client() -> None:
        for body in bodies:
            latency = await _post(http, url, body)
            if latency is None:
                batch.failures += 1
            else:
                batch.latencies.append(latency)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(min(concurrency, requests))))
    batch.wall_s = time.perf_counter() - started
    return batch


async def sequential_load(http: aiohttp.ClientSession, url: str, mentions: Mentions, requests: int) -> Batch:
    batch = Batch()
    started = time.perf_counter()
    for _ in range(requests):
        latency = await _post(http, url, mentions.next_body())
        if latency is None:
            batch.failures += 1
        else:
            batch.latencies.append(latency)
    batch.wall_s = time.perf_counter() - started
    return batch


@dataclass
class AckResults:
    concurrent: dict[str, Batch]
    sequential: dict[str, Batch]
    round_p99_ratios: list[float]
    fox_requests: int
    fox_stats: dict[str, Any]
    notes: list[str]
    webhooks: WebhookResults


def _fox_for_acks(
    slack: SlackEmulator, k8s: KubernetesEmulator, tmp: Path, args: argparse.Namespace, database_url: str
) -> ServerProcess:
    """``bot``: acks only, nothing investigates. ``serve``: the default installation with Redis, role all
    with worker processes beside the bot, investigating every acked mention while later ones arrive."""
    if args.installation == "serve":
        return incidentfox_server(
            slack,
            tmp,
            "fox-serve",
            role="all",
            k8s=k8s,
            redis_url=args.redis_url,
            worker_processes=args.workers,
            database_url=database_url,
        )
    return incidentfox_server(slack, tmp, "fox-bot", role="bot")


async def measure_acks(
    http: aiohttp.ClientSession,
    slack: SlackEmulator,
    k8s: KubernetesEmulator,
    tmp: Path,
    args: argparse.Namespace,
    database_url: str,
) -> AckResults:
    servers = {
        FOX: _fox_for_acks(slack, k8s, tmp, args, database_url),
        BARE: ServerProcess(
            ServerSpec(kind="bare_bolt", slack_api_url=slack.api_url, slack_bot_token=slack.bot_token),
            tmp / "bare.log",
        ),
    }
    mentions = Mentions(slack)
    concurrent = {name: Batch() for name in servers}
    sequential = {name: Batch() for name in servers}
    round_ratios: list[float] = []
    fox_requests = 0
    await asyncio.gather(*(server.start() for server in servers.values()))
    try:
        per_round = max(1, args.requests // args.rounds)
        sequential_per_round = max(1, args.sequential // args.rounds)
        warmup = max(args.concurrency, per_round // 2)
        for server in servers.values():
            await concurrent_load(http, server.events_url, mentions, warmup, args.concurrency)
            await sequential_load(http, server.events_url, mentions, WARMUP_SEQUENTIAL)
        fox_requests += warmup + WARMUP_SEQUENTIAL
        for turn in range(args.rounds):
            order = [FOX, BARE] if turn % 2 == 0 else [BARE, FOX]
            round_p99: dict[str, float] = {}
            for name in order:
                batch = await concurrent_load(
                    http, servers[name].events_url, mentions, per_round, args.concurrency
                )
                round_p99[name] = percentile_ms(batch.latencies, 99)
                concurrent[name].extend(batch)
            round_ratios.append(round_p99[FOX] / round_p99[BARE])
        for turn in range(args.rounds):
            order = [FOX, BARE] if turn % 2 == 0 else [BARE, FOX]
            for name in order:
                batch = await sequential_load(http, servers[name].events_url, mentions, sequential_per_round)
                sequential[name].extend(batch)
        fox_requests += args.rounds * (per_round + sequential_per_round)
        webhooks = await measure_webhooks(
            http, servers[FOX].port, mentions.next_body, size=args.burst, rounds=args.webhook_rounds
        )
    finally:
        stopped = await asyncio.gather(*(server.stop() for server in servers.values()))
    fox_stats = stopped[0]
    notes = _log_notes(servers.values())
    return AckResults(concurrent, sequential, round_ratios, fox_requests, fox_stats, notes, webhooks)


@dataclass
class FirstMessageResults:
    first_message: list[float]
    acks: list[float]
    missing: int
    fox_stats: dict[str, Any]
    notes: list[str]


async def measure_first_message(
    http: aiohttp.ClientSession, slack: SlackEmulator, k8s: KubernetesEmulator, tmp: Path, mentions: int
) -> FirstMessageResults:
    fox = incidentfox_server(slack, tmp, "fox-all", role="all", k8s=k8s)
    await fox.start()
    first_message: list[float] = []
    acks: list[float] = []
    missing = 0
    try:
        for i in range(WARMUP_MENTIONS + mentions):
            event = slack.make_app_mention(CHANNEL, USER, f"why is checkout slow? (thread {i})")
            body = json.dumps(slack.make_event_callback(event))
            headers = signed_headers(body)
            thread_ts = event["ts"]
            sent = time.monotonic()
            async with http.post(fox.events_url, data=body, headers=headers) as response:
                await response.read()
            acked = time.monotonic()
            try:
                call = await slack.wait_for(
                    "chat.postMessage", _progress_post(thread_ts), timeout=FIRST_MESSAGE_TIMEOUT_S
                )
            except TimeoutError:
                missing += 1
                continue
            if i >= WARMUP_MENTIONS:
                first_message.append(call.at - sent)
                acks.append(acked - sent)
    finally:
        stats = await fox.stop(timeout=120)
    return FirstMessageResults(first_message, acks, missing, stats, _log_notes([fox]))


def _progress_post(thread_ts: str) -> Callable[[RecordedCall], bool]:
    def matches(call: RecordedCall) -> bool:
        return (
            call.ok
            and call.args.get("thread_ts") == thread_ts
            and "Investigating" in str(call.args.get("text"))
        )

    return matches


def _log_notes(servers: Iterable[ServerProcess]) -> list[str]:
    notes = []
    for server in servers:
        lines = server.log_lines()
        problems = [line for line in lines if "ERROR" in line or "Traceback" in line]
        if problems:
            notes.append(f"{server.spec.kind} ({server.spec.role}) logged {len(problems)} error line(s):")
            notes.extend(f"    {line[:200]}" for line in problems[:5])
    return notes


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def report(args: argparse.Namespace, acks: AckResults, first: FirstMessageResults, total_s: float) -> None:
    print(f"# Slack ack benchmark (`bench/ack.py`), {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print()
    print("| date | machine | nproc | Python | OS |")
    print("|---|---|---|---|---|")
    print(
        f"| {time.strftime('%Y-%m-%d')} | {platform.machine()} | {os.cpu_count()} | "
        f"{platform.python_version()} | {platform.platform(terse=True)} |"
    )
    print()
    print(
        "Setup: loopback; client (aiohttp, one ClientSession, connector limit "
        f"{args.concurrency}) and the Slack/Kubernetes emulators in one process, each server in its own. "
        'IncidentFox for the ack rows: `role="bot"` (no worker; each event is deduped, routed to a team '
        "claiming the channel, config-checked, persisted as a run in SQLite and enqueued before the ack). "
        "Bare Bolt: `AsyncApp(process_before_response=True)` with an empty `app_mention` listener. "
        f"{args.rounds} rounds alternating the servers (A B, B A, ...), pooled; warm-up not counted. "
        "Both servers log at WARNING; default asyncio event loop."
    )
    print()
    print(
        f"### Ack latency, {args.concurrency} concurrent, "
        f"{len(acks.concurrent[FOX].latencies) + acks.concurrent[FOX].failures} requests per server"
    )
    print()
    print("| server | p50 | p95 | p99 | max | req/s | failed |")
    print("|---|---|---|---|---|---|---|")
    for name in (FOX, BARE):
        _latency_row(name, acks.concurrent[name])
    c_fox, c_bare = acks.concurrent[FOX].latencies, acks.concurrent[BARE].latencies
    p50_ratio = percentile_ms(c_fox, 50) / percentile_ms(c_bare, 50)
    p99_ratio = percentile_ms(c_fox, 99) / percentile_ms(c_bare, 99)
    p95_ratio = percentile_ms(c_fox, 95) / percentile_ms(c_bare, 95)
    print(f"| ratio | {p50_ratio:.2f}× | {p95_ratio:.2f}× | {p99_ratio:.2f}× | | | |")
    print()
    rounds = ", ".join(f"{ratio:.2f}×" for ratio in acks.round_p99_ratios)
    print(f"p99 ratio per round: {rounds}")
    print()
    print(
        f"### Ack latency, sequential, "
        f"{len(acks.sequential[FOX].latencies) + acks.sequential[FOX].failures} requests per server"
    )
    print()
    print("| server | p50 | p95 | p99 | max | req/s | failed |")
    print("|---|---|---|---|---|---|---|")
    for name in (FOX, BARE):
        _latency_row(name, acks.sequential[name])
    s_fox, s_bare = acks.sequential[FOX].latencies, acks.sequential[BARE].latencies
    s_p50_ratio = percentile_ms(s_fox, 50) / percentile_ms(s_bare, 50)
    s_p99_ratio = percentile_ms(s_fox, 99) / percentile_ms(s_bare, 99)
    print(f"| ratio | {s_p50_ratio:.2f}× | | {s_p99_ratio:.2f}× | | | |")
    print()
    report_webhooks(acks.webhooks, percentile_ms)
    print(
        f"### Time to first message, {len(first.first_message)} mentions one at a time "
        f'(IncidentFox `role="all"`, worker on, Kubernetes scenario "healthy", no model: analyzers only)'
    )
    print()
    print("| measure | p50 | p95 | max |")
    print("|---|---|---|---|")
    for label, samples in (("request → chat.postMessage received", first.first_message), ("ack", first.acks)):
        print(
            f"| {label} | {_ms(percentile_ms(samples, 50))} | {_ms(percentile_ms(samples, 95))} | "
            f"{_ms(max(samples) * 1000) if samples else '-'} |"
        )
    print()
    seq_p99 = percentile_ms(s_fox, 99)
    first_p95 = percentile_ms(first.first_message, 95)
    print("### Goals (design §10)")
    print()
    print("| goal | measured | met |")
    print("|---|---|---|")
    print(
        f"| concurrent ack p99 ≤ 1.5× bare Bolt | {p99_ratio:.2f}× | "
        f"{_met(p99_ratio <= CONCURRENT_RATIO_GOAL)} |"
    )
    print(
        f"| concurrent ack p50 ≤ 1.5× bare Bolt | {p50_ratio:.2f}× | "
        f"{_met(p50_ratio <= CONCURRENT_RATIO_GOAL)} |"
    )
    print(f"| sequential ack p99 ≤ 25 ms | {_ms(seq_p99)} | {_met(seq_p99 <= SEQUENTIAL_P99_GOAL_MS)} |")
    print(
        f"| trigger → “Investigating…” p95 ≤ 150 ms | {_ms(first_p95)} | "
        f"{_met(first_p95 <= FIRST_MESSAGE_P95_GOAL_MS)} |"
    )
    for row in webhook_goal_rows(acks.webhooks, percentile_ms, _met):
        print(row)
    print()
    _checks(acks, first)
    print(f"total time {total_s:.0f} s")


def _latency_row(name: str, batch: Batch) -> None:
    samples = batch.latencies
    print(
        f"| {name} | {_ms(percentile_ms(samples, 50))} | {_ms(percentile_ms(samples, 95))} | "
        f"{_ms(percentile_ms(samples, 99))} | {_ms(max(samples) * 1000)} | {batch.rate:,.0f} | "
        f"{batch.failures} |"
    )


def _checks(acks: AckResults, first: FirstMessageResults) -> None:
    runs = acks.fox_stats.get("runs", {})
    persisted = sum(runs.values()) if isinstance(runs, dict) else 0
    hooks = acks.webhooks
    print(
        f"checks: ack phases sent {acks.fox_requests} Slack requests to IncidentFox, then the webhook phase "
        f"{hooks.measured} measured deliveries "
        f"(+{len(hooks.batches) * WARMUP_BURSTS} warm-up bursts of {hooks.burst}); "
        f"it persisted {persisted} runs {runs} and left {acks.fox_stats.get('queued')} in its queue "
        "(no worker)"
    )
    print(
        f"checks: first-message phase: {first.missing} mention(s) got no “Investigating…” within "
        f"{FIRST_MESSAGE_TIMEOUT_S:.0f} s; runs at shutdown {first.fox_stats.get('runs')}"
    )
    for note in acks.notes + first.notes:
        print(f"note: {note}")


async def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, 1), limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=30)
    with tempfile.TemporaryDirectory(prefix="incidentfox-bench-") as directory:
        tmp = Path(directory)
        async with (
            SlackEmulator() as slack,
            KubernetesEmulator("healthy") as k8s,
            aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
        ):
            if args.installation == "serve":
                async with scratch_database() as database_url:
                    acks = await measure_acks(http, slack, k8s, tmp, args, database_url)
            else:
                acks = await measure_acks(http, slack, k8s, tmp, args, "")
            first = await measure_first_message(http, slack, k8s, tmp, args.mentions)
    report(args, acks, first, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=200, help="requests in flight (default 200)")
    parser.add_argument("--requests", type=int, default=2000, help="concurrent requests per server")
    parser.add_argument("--sequential", type=int, default=300, help="sequential requests per server")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds to split the load into")
    parser.add_argument("--mentions", type=int, default=50, help="mentions for the time to first message")
    parser.add_argument("--burst", type=int, default=100, help="concurrent deliveries per webhook burst")
    parser.add_argument("--webhook-rounds", type=int, default=10, help="webhook bursts per source")
    parser.add_argument(
        "--installation",
        choices=["bot", "serve"],
        default="bot",
        help="bot: role bot, nothing investigates; serve: role all with --workers worker processes on "
        "REDIS_URL, investigating the acked mentions meanwhile",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (serve)")
    parser.add_argument("--redis-url", default=redis_server_url(), help="(serve)")
    args = parser.parse_args()
    counts = (args.concurrency, args.requests, args.sequential, args.rounds, args.mentions, args.burst)
    if min(*counts, args.webhook_rounds) < 1:
        parser.error("every count must be at least 1")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
