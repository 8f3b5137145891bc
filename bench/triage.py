"""Instant triage: time from a mention to the first finding in its thread, while a slow model works.

    .venv/bin/python -m bench.triage [--mentions 50] [--model-delay 10] [--spacing 0.2] [--timeout 180]

Everything runs on 127.0.0.1. This process runs the load client and the Slack, Kubernetes (scenario
"crashloop") and OpenAI emulators; IncidentFox runs in a child process of its own (``bench/harness.py``,
``role="all"``, ``update_interval=1.0`` as in production: at most one ``chat.update`` per second per
message) with the model pointed at the OpenAI emulator. The model is ``bench.worker``'s scripted
conversation (planner → kubernetes sub-agent → its tool → RCA), every answer after ``--model-delay``
seconds, so a run takes four model turns and the model is still working long after the first finding.

A mention is timed from sending its signed ``app_mention`` to the Slack emulator receiving the first
``chat.update`` of its thread's message that shows the first finding ("First finding", the crash-looping
pod and its decisive log line). Whether it came before the model's first answer is checked per run
against the arrival of that run's first model request plus ``--model-delay``.

Phases, on one IncidentFox process after two warm-up mentions (not counted):

1. spaced: ``--mentions`` mentions, one every ``--spacing`` seconds, so they overlap (every run lasts
   four model turns) as during an incident when people keep asking;
2. burst: ``--mentions`` mentions sent at once.

Each phase waits for its runs' final RCAs before the next starts. The team's cluster scans are
shared by runs that start together (``SharedScans``), as in production; how many scans each phase
made is printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.harness import ServerProcess, incidentfox_server
from bench.slack_threads import ThreadWatch
from bench.worker import LOG_LINE, POD, RCA_MARKER, Client, Mention, ScriptedModel
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.openai_api import DEFAULT_MODEL, OpenAIEmulator
from incidentfox.emulators.slack import RecordedCall, SlackEmulator

GOAL_P95_S = 2.0
WARMUP_MENTIONS = 2
FIRST_FINDING = "First finding"
POLL_S = 0.05


@dataclass
class Thread:
    """What the Slack emulator saw of one mention's run."""

    mention: Mention
    message_ts: str | None = None
    posted_at: float | None = None
    first_finding_at: float | None = None
    final_at: float | None = None
    shows_evidence: bool = False

    @property
    def latency_s(self) -> float | None:
        return None if self.first_finding_at is None else self.first_finding_at - self.mention.sent

    @property
    def after_post_s(self) -> float | None:
        """From "Investigating…" in the thread to the first finding on it."""
        if self.first_finding_at is None or self.posted_at is None:
            return None
        return self.first_finding_at - self.posted_at


@dataclass
class Phase:
    name: str
    threads: list[Thread]
    pods_scans: int
    wall_s: float
    before_model: int = 0
    notes: list[str] = field(default_factory=list)


class Watcher(ThreadWatch[Mention, Thread]):
    """Each mention's progress post, when its first finding showed (with the pod and log line) and
    when its RCA landed."""

    def __init__(self, slack: SlackEmulator) -> None:
        super().__init__(slack, Thread)

    def posted(self, watched: Thread, call: RecordedCall) -> bool:
        if watched.message_ts is not None:
            return False
        watched.message_ts = str(call.response.get("ts"))
        watched.posted_at = call.at
        return True

    def edited(self, watched: Thread, call: RecordedCall) -> None:
        if not call.ok:
            return
        blocks = json.dumps(call.args.get("blocks"))
        if watched.first_finding_at is None and FIRST_FINDING in blocks:
            watched.first_finding_at = call.at
            watched.shows_evidence = POD in blocks and LOG_LINE in blocks
        if watched.final_at is None and RCA_MARKER in str(call.args.get("text")):
            watched.final_at = call.at

    async def until_final(self, threads: Sequence[Thread], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.refresh()
            if all(t.final_at is not None for t in threads):
                return
            await asyncio.sleep(POLL_S)


def pods_scans(k8s: KubernetesEmulator, since: int) -> int:
    """Cluster-wide pod listings the analyzers made (one per scan of the namespace)."""
    return sum(1 for _, path in k8s.requests[since:] if path.rstrip("/").endswith("/pods"))


async def run_phase(
    name: str,
    client: Client,
    watcher: Watcher,
    k8s: KubernetesEmulator,
    scripted: ScriptedModel,
    args: argparse.Namespace,
) -> Phase:
    k8s_before = len(k8s.requests)
    started = time.monotonic()
    if name == "burst":
        mentions = list(await asyncio.gather(*(client.mention() for _ in range(args.mentions))))
    else:
        sends = []
        for _ in range(args.mentions):
            sends.append(asyncio.create_task(client.mention()))
            await asyncio.sleep(args.spacing)
        mentions = list(await asyncio.gather(*sends))
    threads = watcher.watch(mentions)
    await watcher.until_final(threads, args.timeout)
    phase = Phase(name, threads, pods_scans(k8s, k8s_before), time.monotonic() - started)
    for thread in threads:
        first_ask = scripted.arrivals.get(thread.mention.run, {}).get("planner→ask")
        if thread.first_finding_at is not None and first_ask is not None:
            phase.before_model += thread.first_finding_at < first_ask + args.model_delay
    missing = [t.mention.run for t in threads if t.first_finding_at is None]
    if missing:
        phase.notes.append(f"no first finding seen for {len(missing)} mention(s): runs {missing[:10]}")
    unacked = sum(1 for t in threads if t.mention.acked is None)
    if unacked:
        phase.notes.append(f"{unacked} mention(s) not acknowledged with 200")
    without_final = sum(1 for t in threads if t.final_at is None)
    if without_final:
        phase.notes.append(f"{without_final} run(s) without a final RCA within {args.timeout:g} s")
    return phase


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def report(phases: Sequence[Phase], args: argparse.Namespace, total_s: float) -> None:
    print(
        f"bench.triage  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform(terse=True)}"
    )
    print(
        f"{args.mentions} mentions per phase, model answers after {args.model_delay:g} s per turn "
        f"(4 turns per run), update_interval 1.0 s, spaced phase one mention every {args.spacing:g} s\n"
    )
    print(
        '| phase | mentions | first finding seen | p50 | p95 | max | "Investigating…" → first finding '
        "p50 / p95 | before the model's 1st answer | with pod + log line | pod scans | goal p95 ≤ 2 s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for phase in phases:
        latencies = [t.latency_s for t in phase.threads if t.latency_s is not None]
        shown = len(latencies)
        evidence = sum(1 for t in phase.threads if t.shows_evidence)
        if latencies:
            p50, p95, worst = statistics.median(latencies), percentile(latencies, 0.95), max(latencies)
            figures = f"{p50:.3f} s | {p95:.3f} s | {worst:.3f} s"
            met = "yes" if p95 <= GOAL_P95_S and shown == len(phase.threads) else "no"
        else:
            figures, met = "– | – | –", "no"
        after_post = [t.after_post_s for t in phase.threads if t.after_post_s is not None]
        split = (
            f"{statistics.median(after_post):.3f} s / {percentile(after_post, 0.95):.3f} s"
            if after_post
            else "–"
        )
        print(
            f"| {phase.name} | {len(phase.threads)} | {shown} | {figures} | {split} | {phase.before_model} | "
            f"{evidence} | {phase.pods_scans} | {met} |"
        )
    for phase in phases:
        for note in phase.notes:
            print(f"note ({phase.name}): {note}")
    print(f"\ntotal {total_s:.1f} s")


async def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    scripted = ScriptedModel(args.model_delay)
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=0)
    with tempfile.TemporaryDirectory(prefix="incidentfox-bench-triage-") as directory:
        async with (
            SlackEmulator() as slack,
            KubernetesEmulator("crashloop") as k8s,
            OpenAIEmulator(responder=scripted) as model,
            aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http,
        ):
            fox: ServerProcess = incidentfox_server(
                slack,
                Path(directory),
                "fox",
                role="all",
                k8s=k8s,
                openai_base_url=model.base_url,
                openai_api_key=model.api_key,
                model=DEFAULT_MODEL,
                worker_concurrency=4 * args.mentions,
                update_interval=1.0,
            )
            await fox.start()
            client, watcher = Client(http, slack, fox.events_url), Watcher(slack)
            try:
                warmup = watcher.watch([await client.mention() for _ in range(WARMUP_MENTIONS)])
                await watcher.until_final(warmup, args.timeout)
                phases = [
                    await run_phase(name, client, watcher, k8s, scripted, args)
                    for name in ("spaced", "burst")
                ]
            finally:
                await fox.stop(timeout=args.timeout)
    report(phases, args, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mentions", type=int, default=50, help="mentions per phase")
    parser.add_argument("--model-delay", type=float, default=10.0, help="seconds before each model answer")
    parser.add_argument("--spacing", type=float, default=0.2, help="seconds between mentions (spaced phase)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a phase's RCAs")
    args = parser.parse_args()
    if args.mentions < 1 or args.model_delay < 0 or args.spacing < 0 or args.timeout <= 0:
        parser.error("mentions must be at least 1, delays not negative and the timeout positive")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
