"""One worker holding hundreds of concurrent LLM investigations against a scripted, slow model.

    .venv/bin/python -m bench.worker [--runs 500] [--model-delay 1.0] [--ideal-runs 3]
                                     [--send-concurrency 100] [--timeout 90] [--log FILE]

Everything runs on 127.0.0.1. This process runs the load client and the Slack, Kubernetes
(scenario "crashloop") and OpenAI emulators; IncidentFox runs in a child process of its own
(``bench/harness.py``, ``role="all"``, ``worker_concurrency=--runs``, ``update_interval=1.0`` as in
production) with the model pointed at the OpenAI emulator, so its memory (``VmHWM`` in
``/proc/<pid>/status``) and CPU are its own.

Every run is the same realistic conversation, four model calls on its critical path, each answered
after ``--model-delay`` seconds:

1. planner: calls ``ask_kubernetes`` (the analyzers' findings already ran and ground its prompt);
2. kubernetes sub-agent: calls ``pod_logs`` (previous logs of the crash-looping pod);
3. kubernetes sub-agent: answers in text with the decisive log line;
4. planner: answers with the RCA (structured JSON).

All runs share one emulator, so the responder picks the answer from the request itself: which
tools are offered (planner: ``ask_kubernetes``; sub-agent: ``pod_logs``) and whether the last
message is a tool result. Each question carries a ``[bench-run-N]`` token that the planner passes
on to the sub-agent, so every model request can be attributed to its run.

Phases: one warm-up run (not counted); ``--ideal-runs`` single runs one at a time, whose median
send → final RCA time is the ideal wall time; then the burst: ``--runs`` signed ``app_mention``
events on distinct threads with unique event ids, sent at once (``--send-concurrency`` connections),
timed from the first send to the last final RCA ``chat.update`` the Slack emulator receives.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import CHANNEL, USER, ServerProcess, incidentfox_server, signed_headers
from bench.scratch_stores import redis_server_url, scratch_database
from bench.serve_process import child_pids
from bench.slack_threads import ThreadWatch
from bench.worker_report import log_notes, report
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.openai_api import (
    DEFAULT_MODEL,
    OpenAIEmulator,
    RecordedRequest,
    ScriptExhausted,
    ScriptStep,
)
from incidentfox.emulators.slack import RecordedCall, SlackEmulator

"""Arrival-time tolerance when counting edits per second: the emulator stamps a ``chat.update`` when
its handler runs, so two edits sent 1.0 s apart can be stamped a few ms closer under load."""
SINGLE_RUN_TIMEOUT_S = 60.0
STATS_EVERY_S = 1.0
POLL_EVERY_S = 0.1
RSS_SAMPLE_EVERY_S = 0.2
FINAL_STATES = ("succeeded", "failed", "interrupted")

POD = "checkout-7d9f8b6c5-x2k4q"
LOG_LINE = "Error: Environment variable DEPLOY_ENV is undefined"
RCA_MARKER = "DEPLOY_ENV is not set"
RCA: dict[str, Any] = {
    "summary": f"checkout crashes at start-up because {RCA_MARKER}.",
    "root_cause": f"The checkout deployment's pods exit with '{LOG_LINE}'.",
    "evidence": [{"quote": LOG_LINE, "source": f"pod prod/{POD} (previous logs)", "url": None}],
    "confidence": {"level": "high", "why": "the fatal log line states the cause"},
    "immediate_actions": ["Set DEPLOY_ENV on the checkout deployment and roll it out."],
    "follow_up_actions": ["Validate required env vars in CI."],
    "caveats": [],
}
RUN_TOKEN = re.compile(r"\[bench-run-(\d+)\]")

# The four model calls of a run, in order.
PLANNER_ASK, SUBAGENT_TOOL, SUBAGENT_ANSWER, PLANNER_RCA = (
    "planner→ask",
    "sub→tool",
    "sub→answer",
    "planner→rca",
)
STEPS = (PLANNER_ASK, SUBAGENT_TOOL, SUBAGENT_ANSWER, PLANNER_RCA)


def token(run: int) -> str:
    return f"[bench-run-{run}]"


class ScriptedModel:
    """The responder: answers each request by what it offers and ends with, after ``delay`` seconds.

    Records when each step's request arrived, per run, and counts unexpected requests.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrivals: dict[int, dict[str, float]] = {}
        self.served: dict[str, int] = dict.fromkeys(STEPS, 0)
        self.unexpected = 0
        self._delayed: set[int] = set()

    def __call__(self, request: RecordedRequest) -> ScriptStep | None:
        if self.delay > 0 and request.index not in self._delayed:
            self._delayed.add(request.index)
            return ScriptStep.delay(self.delay)
        self._delayed.discard(request.index)
        step_name, step = self._answer(request)
        self.served[step_name] += 1
        match = RUN_TOKEN.search(request.text())
        if match is not None:
            self.arrivals.setdefault(int(match.group(1)), {}).setdefault(step_name, request.at)
        return step

    def _answer(self, request: RecordedRequest) -> tuple[str, ScriptStep]:
        after_tool = bool(request.roles) and request.roles[-1] == "tool"
        if "ask_kubernetes" in request.tool_names:
            if after_tool:
                return PLANNER_RCA, ScriptStep.json(RCA)
            match = RUN_TOKEN.search(request.text())
            run = token(int(match.group(1))) if match else ""
            task = f"Why are the checkout pods in prod failing? Read the crashed container's logs. {run}"
            return PLANNER_ASK, ScriptStep.tool_calls(
                [("ask_kubernetes", {"input": task})], text="Checkout is failing; checking its pods."
            )
        if "pod_logs" in request.tool_names:
            if after_tool:
                return SUBAGENT_ANSWER, ScriptStep.text(f"prod/{POD} (previous logs): {LOG_LINE}")
            return SUBAGENT_TOOL, ScriptStep.tool_calls(
                [("pod_logs", {"name": POD, "namespace": "prod", "previous": True})]
            )
        self.unexpected += 1
        raise ScriptExhausted(f"unexpected request offering {request.tool_names}")


@dataclass
class Mention:
    run: int
    thread_ts: str
    sent: float
    acked: float | None = None


class Client:
    """Sends signed ``app_mention`` events, each on its own thread with a unique event id."""

    def __init__(self, http: aiohttp.ClientSession, slack: SlackEmulator, url: str) -> None:
        self._http = http
        self._slack = slack
        self._url = url
        self._runs = itertools.count()

    async def mention(self) -> Mention:
        run = next(self._runs)
        event = self._slack.make_app_mention(CHANNEL, USER, f"why is checkout crashlooping? {token(run)}")
        body = json.dumps(self._slack.make_event_callback(event, event_id=f"EvBENCHWORKER{run:07d}"))
        mention = Mention(run, str(event["ts"]), time.monotonic())
        try:
            async with self._http.post(self._url, data=body, headers=signed_headers(body)) as response:
                await response.read()
                if response.status == 200:
                    mention.acked = time.monotonic()
        except aiohttp.ClientError:
            pass
        return mention


@dataclass
class Outcome:
    """What the Slack emulator saw of one run: its progress post and its final RCA edit."""

    mention: Mention
    posted: RecordedCall | None = None
    final: RecordedCall | None = None
    edits: list[float] = field(default_factory=list)


class SlackView(ThreadWatch[Mention, Outcome]):
    """Each run's progress post, the times of its edits and its final RCA edit."""

    def __init__(self, slack: SlackEmulator) -> None:
        super().__init__(slack, Outcome)

    def posted(self, watched: Outcome, call: RecordedCall) -> bool:
        if watched.posted is not None:
            return False
        watched.posted = call
        return True

    def edited(self, watched: Outcome, call: RecordedCall) -> None:
        watched.edits.append(call.at)
        if watched.final is None and call.ok and RCA_MARKER in str(call.args.get("text")):
            watched.final = call


def proc_status_kb(pid: int) -> dict[str, int]:
    """``VmRSS``/``VmHWM`` (kB) of a process from ``/proc/<pid>/status``."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processes_of(fox: ServerProcess) -> list[int]:
    """The IncidentFox child and its worker processes (``--workers``)."""
    return [fox.pid, *child_pids(fox.pid).values()]


def largest_rss_kb(pids: Sequence[int]) -> dict[str, int]:
    """``VmRSS``/``VmHWM`` of the process with the highest peak: the budget is per process."""
    return max((proc_status_kb(pid) for pid in pids), key=lambda kb: kb["VmHWM"])


class RssSampler:
    """Samples the largest ``VmRSS`` of the processes while the burst runs, to show when the peak happens."""

    def __init__(self, pids: Sequence[int]) -> None:
        self._pids = list(pids)
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            self.samples.append((time.monotonic(), largest_rss_kb(self._pids)["VmRSS"]))
            await asyncio.sleep(RSS_SAMPLE_EVERY_S)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def finished_runs(fox: ServerProcess) -> tuple[int, dict[str, int]]:
    stats = await fox.command("stats")
    runs: dict[str, int] = stats.get("runs", {})
    return sum(runs.get(state, 0) for state in FINAL_STATES), runs


async def settled_runs(fox: ServerProcess, expected_finished: int, timeout: float = 10.0) -> dict[str, int]:
    """The run rows by status once ``expected_finished`` runs are final (the row is written after the
    final Slack edit), or after ``timeout``."""
    deadline = time.monotonic() + timeout
    finished, runs = await finished_runs(fox)
    while finished < expected_finished and time.monotonic() < deadline:
        await asyncio.sleep(POLL_EVERY_S)
        finished, runs = await finished_runs(fox)
    return runs


FINAL_EDIT_GRACE_S = 3.0
"""A run's row is final before its last ``chat.update`` lands (that edit waits for the message's
one-a-second window), so the bench looks this much longer for the finals once the rows are done."""


async def _final_edits(view: SlackView, outcomes: Sequence[Outcome], until: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        view.refresh()
        if all(o.final is not None for o in outcomes):
            return
        await asyncio.sleep(POLL_EVERY_S)


async def wait_for_outcomes(
    fox: ServerProcess, view: SlackView, outcomes: Sequence[Outcome], expected_finished: int, timeout: float
) -> dict[str, int]:
    """Until every run shows its final RCA, or the child reports all runs final, or ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    next_stats = loop.time() + STATS_EVERY_S
    while loop.time() < deadline:
        view.refresh()
        if all(o.final is not None for o in outcomes):
            break
        if loop.time() >= next_stats:
            next_stats = loop.time() + STATS_EVERY_S
            finished, _ = await finished_runs(fox)
            if finished >= expected_finished:
                await _final_edits(view, outcomes, min(deadline, loop.time() + FINAL_EDIT_GRACE_S))
                break
        await asyncio.sleep(POLL_EVERY_S)
    return (await finished_runs(fox))[1]


@dataclass
class Results:
    args: argparse.Namespace
    ideal: list[Outcome]
    burst: list[Outcome]
    model: ScriptedModel
    model_requests_burst: int
    model_failures: int
    kubernetes_requests_burst: Counter[str]
    runs: dict[str, int]
    runs_before: dict[str, int]
    rss_before_kb: dict[str, int]
    rss_after_kb: dict[str, int]
    rss_samples: list[tuple[float, int]]
    burst_started: float
    child_cpu_s: float
    bench_cpu_s: float
    burst_s: float
    updates_total: int
    notes: list[str]
    total_s: float = 0.0


def kubernetes_kind(path: str) -> str:
    """A request path without its namespace and object names: ``/api/v1/namespaces/*/pods/*/log``."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    named = {"namespaces", "pods", "nodes", "deployments", "replicasets", "services", "endpoints"}
    return "/" + "/".join("*" if i > 0 and parts[i - 1] in named else p for i, p in enumerate(parts))


async def measure(
    http: aiohttp.ClientSession,
    slack: SlackEmulator,
    k8s: KubernetesEmulator,
    model: OpenAIEmulator,
    scripted: ScriptedModel,
    tmp: Path,
    args: argparse.Namespace,
    database_url: str,
) -> Results:
    """``database_url`` empty: SQLite (one process); with ``--workers``, a scratch PostgreSQL database."""
    fox = incidentfox_server(
        slack,
        tmp,
        "fox",
        role="all",
        k8s=k8s,
        openai_base_url=model.base_url,
        openai_api_key=model.api_key,
        model=DEFAULT_MODEL,
        worker_concurrency=args.runs,
        update_interval=1.0,
        database_url=database_url,
        redis_url=args.redis_url if args.workers else "",
        worker_processes=args.workers,
    )
    await fox.start()
    client = Client(http, slack, fox.events_url)
    view = SlackView(slack)
    try:
        ideal: list[Outcome] = []
        for i in range(1 + args.ideal_runs):
            [outcome] = view.watch([await client.mention()])
            await wait_for_outcomes(fox, view, [outcome], i + 1, SINGLE_RUN_TIMEOUT_S)
            if i > 0:
                ideal.append(outcome)
        runs_before = await settled_runs(fox, 1 + args.ideal_runs)
        single_runs = 1 + args.ideal_runs
        pids = processes_of(fox)
        rss_before = largest_rss_kb(pids)
        sampler = RssSampler(pids)
        sampler.start()
        requests_before, failures_before = len(model.requests), len(model.failures)
        k8s_before = len(k8s.requests)
        updates_before = len(slack.calls("chat.update"))
        child_cpu, bench_cpu = sum(map(proc_cpu_s, pids)), time.process_time()
        burst_started = time.monotonic()
        mentions = await asyncio.gather(*(client.mention() for _ in range(args.runs)))
        burst = view.watch(mentions)
        runs = await wait_for_outcomes(fox, view, burst, single_runs + args.runs, args.timeout)
        burst_s = time.monotonic() - burst_started
        child_cpu, bench_cpu = sum(map(proc_cpu_s, pids)) - child_cpu, time.process_time() - bench_cpu
        await sampler.stop()
        rss_after = largest_rss_kb(pids)
    finally:
        stopped = await fox.stop(timeout=30)
        if args.log:
            shutil.copyfile(fox.log_path, args.log)
    return Results(
        args=args,
        ideal=ideal,
        burst=burst,
        model=scripted,
        model_requests_burst=len(model.requests) - requests_before,
        model_failures=len(model.failures) - failures_before,
        kubernetes_requests_burst=Counter(kubernetes_kind(path) for _, path in k8s.requests[k8s_before:]),
        runs=stopped.get("runs", runs),
        runs_before=runs_before,
        rss_before_kb=rss_before,
        rss_after_kb=rss_after,
        rss_samples=sampler.samples,
        burst_started=burst_started,
        child_cpu_s=child_cpu,
        bench_cpu_s=bench_cpu,
        burst_s=burst_s,
        updates_total=len(slack.calls("chat.update")) - updates_before,
        notes=log_notes(fox),
    )


async def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    scripted = ScriptedModel(args.model_delay)
    connector = aiohttp.TCPConnector(limit=args.send_concurrency, limit_per_host=0)
    with tempfile.TemporaryDirectory(prefix="incidentfox-bench-worker-") as directory:
        async with (
            SlackEmulator() as slack,
            KubernetesEmulator("crashloop") as k8s,
            OpenAIEmulator(responder=scripted) as model,
            aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http,
        ):
            if args.workers:
                async with scratch_database() as database_url:
                    results = await measure(
                        http, slack, k8s, model, scripted, Path(directory), args, database_url
                    )
            else:
                results = await measure(http, slack, k8s, model, scripted, Path(directory), args, "")
    results.total_s = time.perf_counter() - started
    report(results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=500, help="concurrent runs in the burst (default 500)")
    parser.add_argument("--model-delay", type=float, default=1.0, help="seconds before each model answer")
    parser.add_argument("--ideal-runs", type=int, default=3, help="single runs timed for the ideal")
    parser.add_argument("--send-concurrency", type=int, default=100, help="connections sending the burst")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the burst")
    parser.add_argument("--log", type=Path, help="copy IncidentFox's log (stderr) to this file")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes beside the bot (serve with REDIS_URL, on PostgreSQL); 0: one process, SQLite",
    )
    parser.add_argument("--redis-url", default=redis_server_url(), help="the run queue for --workers")
    args = parser.parse_args()
    if (
        min(args.runs, args.ideal_runs, args.send_concurrency) < 1
        or args.model_delay < 0
        or args.timeout <= 0
    ):
        parser.error("counts must be at least 1, the delay not negative and the timeout positive")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
