"""Fault trials: IncidentFox SIGKILLed at each step of a run, Postgres restarted mid-run, a Slack 429 storm.

    .venv/bin/python -m bench.faults [--trials 100] [--storm-seconds 300] [--databases sqlite,postgres]
                                     [--steps before_first_post,mid_tool,mid_model,before_final_edit]
                                     [--phases kill,pg-restart,storm] [--pg-restart-trials 10]
                                     [--storm-runs 20] [--deadline-minutes 0] [--json FILE] [--logs DIR]

Everything runs on 127.0.0.1. This process runs the Slack, Kubernetes (scenario "crashloop") and
OpenAI emulators, so they outlive every kill; IncidentFox runs in a child process
(``python -m bench.faults --child SPEC``, ``role="all"``, production retry settings) on a database
that survives it: a SQLite file in a temp dir, or a Postgres database created on 127.0.0.1:5432 for
this run (migrated with ``upgrade_to_head``, dropped at the end).

**Kill trials.** Each trial sends one signed ``app_mention`` on a new thread and SIGKILLs the child at
one step of that run, detected where the child's request arrives (Slack and Kubernetes calls go
through a small forwarding proxy here; model calls reach the OpenAI emulator's responder):

- ``before_first_post``: the "Investigating…" ``chat.postMessage`` arrives; killed before Slack takes it;
- ``mid_tool``: the sub-agent's ``pod_logs`` request reaches the Kubernetes API; killed before it answers;
- ``mid_model``: a model request arrives (the four calls of a run in turn); killed before it answers;
- ``before_final_edit``: the final ``chat.update`` (RCA) arrives; killed before Slack applies it;
- extra steps (``--steps``): ``after_first_post`` and ``after_final_edit``, killed right after Slack
  applied the call but before the child read the answer (the windows between Slack and the database).

Then a new child starts on the same database (and resumes the run), and the trial waits until the
run is final in the database with no final message pending. A thread passes with exactly one final
message of the bot in it (an RCA or a plain failure), read from the Slack emulator's stored messages.

**Postgres restarted mid-run** (``pg-restart``): the shared server on :5432 is never restarted. A
private cluster is created with ``initdb`` in a temp dir (as the ``postgres`` user when root) on a
free port; each trial holds a model call for ``--pg-hold`` seconds and restarts that cluster
(``pg_ctl restart -m fast``) meanwhile. Skipped, with the reason in the report, when that is not possible.

**Slack 429 storm** (``storm``, SQLite): some runs are in flight when Slack starts answering 429
(``Retry-After: --storm-retry-after``) to every ``chat.postMessage`` and ``chat.update`` for
``--storm-seconds``, others arrive during it; with ``--storm-kill`` (default) the child is also
SIGKILLed halfway and restarted. Every thread must end with exactly one final message after the storm.

Children are killed on any exit of this process (and by ``PR_SET_PDEATHSIG`` if it dies).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from bench.faults_postgres import PrivatePostgres, postgres_database
from bench.faults_processes import (
    ADMIN_PG,
    EXTRA_STEPS,
    FINAL_STATES,
    KILL_STEPS,
    POLL_S,
    QUIET_S,
    SETTLE_TIMEOUT_S,
    TRAP_TIMEOUT_S,
    ChildSpec,
    FaultModel,
    FoxProcess,
    RunRow,
    TapProxy,
    Trap,
    Verdict,
    serve_child,
    slack_args,
)
from bench.faults_report import Report, Trial, render, thread_outcome, to_json
from bench.harness import CHANNEL, USER, signed_headers
from bench.worker import PLANNER_ASK, PLANNER_RCA, STEPS, SUBAGENT_ANSWER
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.openai_api import OpenAIEmulator
from incidentfox.emulators.slack import RecordedCall, SlackEmulator

# -- the child: one IncidentFox process --------------------------------------------------------------


@dataclass
class World:
    slack: SlackEmulator
    k8s: KubernetesEmulator
    model: OpenAIEmulator
    responder: FaultModel
    trap: Trap
    slack_proxy: TapProxy
    k8s_proxy: TapProxy
    http: aiohttp.ClientSession
    database: str
    database_url: str
    data_dir: Path
    log_path: Path
    threads: list[str] = field(default_factory=list)
    standby: FoxProcess | None = None
    _next: int = 0

    def spec(self, *, setup: bool = False) -> ChildSpec:
        return ChildSpec(
            slack_api_url=self.slack_proxy.url + "/api/",
            slack_bot_token=self.slack.bot_token,
            workspace_id=self.slack.team_id,
            database_url=self.database_url,
            data_dir=str(self.data_dir),
            kubernetes_api_url=self.k8s_proxy.url,
            kubernetes_token=self.k8s.token,
            openai_base_url=self.model.base_url,
            openai_api_key=self.model.api_key,
            setup=setup,
        )

    async def start_fox(self, *, setup: bool = False) -> FoxProcess:
        """IncidentFox in the spawned standby child; a new standby starts importing meanwhile."""
        fox = self.standby or await FoxProcess.spawn(self.log_path)
        self.standby = await FoxProcess.spawn(self.log_path)
        await fox.go(self.spec(setup=setup))
        return fox

    def new_mention(self) -> tuple[str, str]:
        """A new thread's mention: (thread ts, signed body)."""
        self._next += 1
        text = f"why is checkout crashlooping? [bench-run-{self._next}]"
        event = self.slack.make_app_mention(CHANNEL, USER, text)
        body = self.slack.make_event_callback(event, event_id=f"EvFAULT{secrets.token_hex(6)}")
        self.threads.append(str(event["ts"]))
        return str(event["ts"]), json.dumps(body)

    async def send(self, fox: FoxProcess, body: str) -> int:
        """POST the event; 0 when the connection failed (the child may be killed while answering)."""
        try:
            async with self.http.post(fox.events_url, data=body, headers=signed_headers(body)) as answer:
                await answer.read()
                return answer.status
        except (aiohttp.ClientError, TimeoutError):
            return 0


@asynccontextmanager
async def world(
    database: str, database_url: str, tmp: Path, scenario: str = "crashloop"
) -> AsyncIterator[World]:
    trap = Trap()
    responder = FaultModel(trap)
    data_dir = tmp / f"data-{database}-{secrets.token_hex(3)}"
    data_dir.mkdir()
    url = database_url or f"sqlite+aiosqlite:///{data_dir / 'incidentfox.db'}"
    async with (
        SlackEmulator() as slack,
        KubernetesEmulator(scenario) as k8s,
        OpenAIEmulator(responder=responder) as model,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):

        def on_slack(method: str, path: str, body: bytes, content_type: str) -> Verdict:
            return trap.slack(path.rsplit("/", 1)[-1], slack_args(body, content_type))

        def on_k8s(method: str, path: str, body: bytes, content_type: str) -> Verdict:
            return trap.kubernetes(method, path)

        slack_proxy = await TapProxy(slack.api_url.removesuffix("api/"), on_slack, trap).start()
        k8s_proxy = await TapProxy(k8s.api_url, on_k8s, trap).start()
        w = World(
            slack=slack,
            k8s=k8s,
            model=model,
            responder=responder,
            trap=trap,
            slack_proxy=slack_proxy,
            k8s_proxy=k8s_proxy,
            http=http,
            database=database,
            database_url=url,
            data_dir=data_dir,
            log_path=tmp / f"incidentfox-{database}.log",
        )
        try:
            yield w
        finally:
            FoxProcess.kill_all()
            if w.standby is not None:
                await w.standby.reap(kill=True)
            await slack_proxy.stop()
            await k8s_proxy.stop()


async def settle(
    w: World, fox: FoxProcess, thread_ts: str, trial: Trial, *, timeout: float = SETTLE_TIMEOUT_S
) -> None:
    """Wait until the thread shows a final message and its run is final with nothing pending, then a
    little longer for a late duplicate; record the outcome in ``trial``."""
    started = time.monotonic()
    deadline = started + timeout
    row: RunRow | None = None
    while time.monotonic() < deadline:
        if thread_outcome(w.slack, CHANNEL, thread_ts).finals >= 1:
            row = (await fox.runs()).get(thread_ts)
            if row is not None and row.status in FINAL_STATES and not row.pending_final:
                trial.restart_to_final_s = time.monotonic() - started
                break
        await asyncio.sleep(POLL_S * 4)
    else:
        row = (await fox.runs()).get(thread_ts)
        trial.note = f"not settled within {timeout:.0f} s"
    await asyncio.sleep(QUIET_S)
    trial.outcome = thread_outcome(w.slack, CHANNEL, thread_ts)
    if row is not None:
        trial.run_status, trial.run_attempts, trial.pending_final = (
            row.status,
            row.attempts,
            row.pending_final,
        )


# -- phases ---------------------------------------------------------------------------------------------


@dataclass
class Budget:
    deadline: float | None

    def spent(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline


async def kill_trials(
    w: World, steps: list[str], trials: int, report: Report, budget: Budget, progress: bool
) -> None:
    fox = await w.start_fox(setup=True)
    try:
        for step in steps:
            for index in range(trials):
                if budget.spent():
                    report.notes.append(f"deadline reached: {w.database}/{step} stopped after {index} trials")
                    break
                fox = await kill_trial(w, fox, step, index, report)
                if progress:
                    last = report.trials[-1]
                    print(
                        f"  {w.database} {step} #{index}: {last.verdict} killed={last.killed} "
                        f"{last.trial_s:.1f}s",
                        file=sys.stderr,
                        flush=True,
                    )
            else:
                continue
            break
    finally:
        await fox.stop()
    await final_recount(w, report, "kill")


async def kill_trial(w: World, fox: FoxProcess, step: str, index: int, report: Report) -> FoxProcess:
    started = time.monotonic()
    thread_ts, body = w.new_mention()
    trial = Trial(phase="kill", database=w.database, step=step, index=index, thread_ts=thread_ts)
    report.trials.append(trial)
    model_step = STEPS[index % len(STEPS)] if step == "mid_model" else ""
    w.trap.arm(step, fox.pid, thread_ts, model_step)
    sending = asyncio.create_task(w.send(fox, body))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(w.trap.fired.wait(), TRAP_TIMEOUT_S)
    w.trap.disarm()
    status = await sending
    trial.killed = w.trap.fired.is_set()
    trial.kill_detail = w.trap.detail + (f" (model {model_step})" if model_step else "") + f"; ack {status}"
    if trial.killed:
        await fox.reap()
        fox = await w.start_fox()
    await settle(w, fox, thread_ts, trial)
    trial.trial_s = time.monotonic() - started
    return fox


async def final_recount(w: World, report: Report, phase: str) -> None:
    """After the last child stopped: read every thread of this phase again (a late duplicate counts)."""
    for trial in report.trials:
        if trial.phase == phase and trial.database == w.database:
            trial.outcome = thread_outcome(w.slack, CHANNEL, trial.thread_ts)


async def storm_phase(w: World, args: argparse.Namespace, report: Report) -> None:
    storm_s: float = args.storm_seconds
    w.responder.delay = args.storm_model_delay
    fox = await w.start_fox(setup=True)
    trials: list[Trial] = []
    try:
        before = args.storm_runs // 2
        for i in range(before):
            thread_ts, body = w.new_mention()
            trials.append(Trial("storm", w.database, "in flight at storm start", i, thread_ts))
            await w.send(fox, body)
        for thread_ts in w.threads[-before:] if before else []:
            with contextlib.suppress(TimeoutError):
                await w.slack.wait_for("chat.postMessage", posted_in(thread_ts), 10)
        for method in ("chat.postMessage", "chat.update"):
            w.slack.fail_next(method, 429, retry_after=args.storm_retry_after, times=10**9)
        storm_started = time.monotonic()
        during = args.storm_runs - before
        spread = storm_s / 2
        for i in range(during):
            thread_ts, body = w.new_mention()
            trials.append(Trial("storm", w.database, "arrived during storm", i, thread_ts))
            await w.send(fox, body)
            await asyncio.sleep(spread / max(1, during))
        if args.storm_kill:
            await asyncio.sleep(max(0.0, storm_started + storm_s / 2 - time.monotonic()))
            fox.kill()
            await fox.reap()
            report.notes.append(
                f"storm: child SIGKILLed {time.monotonic() - storm_started:.0f} s into the storm"
            )
            fox = await w.start_fox()
        await asyncio.sleep(max(0.0, storm_started + storm_s - time.monotonic()))
        w.slack.clear_faults()
        storm_ended = time.monotonic()
        rejected = len(w.slack.calls(ok=False))
        report.notes.append(f"storm: {storm_s:.0f} s, {rejected} Slack calls answered 429")
        report.trials.extend(trials)
        limit = 300 + 120 + args.storm_model_delay * 8
        last_final = storm_ended
        for trial in trials:
            remaining = max(5.0, storm_ended + limit - time.monotonic())
            await settle(w, fox, trial.thread_ts, trial, timeout=remaining)
            if trial.restart_to_final_s is not None:
                last_final = max(last_final, time.monotonic())
        report.notes.append(
            f"storm: every final settled {last_final - storm_ended:.0f} s after the storm ended"
        )
    finally:
        await fox.stop()
    await final_recount(w, report, "storm")


def posted_in(thread_ts: str) -> Callable[[RecordedCall], bool]:
    def matches(call: RecordedCall) -> bool:
        return call.ok and call.args.get("thread_ts") == thread_ts

    return matches


async def pg_restart_phase(tmp: Path, args: argparse.Namespace, report: Report, budget: Budget) -> None:
    try:
        server = PrivatePostgres()
    except (RuntimeError, KeyError, OSError) as exc:
        report.notes.append(f"pg-restart skipped: {exc}")
        return
    try:
        try:
            await server.start()
        except (RuntimeError, OSError, TimeoutError) as exc:
            report.notes.append(f"pg-restart skipped: the private cluster did not start: {exc}")
            return
        async with postgres_database(server.admin_url) as url, world("postgres-private", url, tmp) as w:
            w.responder.hold_s = args.pg_hold
            fox = await w.start_fox(setup=True)
            try:
                for index in range(args.pg_restart_trials):
                    if budget.spent():
                        report.notes.append(f"deadline reached: pg-restart stopped after {index} trials")
                        break
                    fox = await pg_restart_trial(w, fox, server, index, report)
                    if args.progress:
                        last = report.trials[-1]
                        print(f"  pg-restart #{index}: {last.verdict} {last.trial_s:.1f}s", file=sys.stderr)
            finally:
                await fox.stop()
            await final_recount(w, report, "pg-restart")
        report.notes.append(
            f"pg-restart: private cluster {server.bin.parent.name} on 127.0.0.1:{server.port}, "
            f"restarted with `pg_ctl restart -m fast` while a model call was held {args.pg_hold:.0f} s"
        )
    finally:
        await server.stop()


async def pg_restart_trial(
    w: World, fox: FoxProcess, server: PrivatePostgres, index: int, report: Report
) -> FoxProcess:
    started = time.monotonic()
    held = (PLANNER_ASK, SUBAGENT_ANSWER, PLANNER_RCA)[index % 3]
    w.responder.hold_step = held
    w.responder.holding.clear()
    thread_ts, body = w.new_mention()
    trial = Trial("pg-restart", "postgres (private)", "restart mid-run", index, thread_ts)
    report.trials.append(trial)
    await w.send(fox, body)
    try:
        await asyncio.wait_for(w.responder.holding.wait(), TRAP_TIMEOUT_S)
        await server.restart()
        trial.kill_detail = f"postgres restarted while model call {held} was held"
    except (TimeoutError, RuntimeError) as exc:
        trial.note = f"restart not done: {type(exc).__name__} {exc}"
    w.responder.hold_step = ""
    await settle(w, fox, thread_ts, trial)
    trial.killed = bool(trial.kill_detail)
    trial.trial_s = time.monotonic() - started
    return fox


async def run(args: argparse.Namespace) -> Report:
    report = Report(command=" ".join(["python -m bench.faults", *sys.argv[1:]]))
    budget = Budget(time.monotonic() + args.deadline_minutes * 60 if args.deadline_minutes else None)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="incidentfox-faults-") as directory:
        tmp = Path(directory)
        try:
            if "kill" in args.phases:
                for database in args.databases:
                    phase_started = time.monotonic()
                    if database == "sqlite":
                        async with world("sqlite", "", tmp) as w:
                            await kill_trials(w, args.steps, args.trials, report, budget, args.progress)
                    else:
                        try:
                            async with postgres_database(ADMIN_PG) as url, world("postgres", url, tmp) as w:
                                await kill_trials(w, args.steps, args.trials, report, budget, args.progress)
                        except (OSError, asyncpg.PostgresError) as exc:
                            report.notes.append(f"postgres kill trials skipped: {type(exc).__name__}: {exc}")
                    report.phase_s[f"kill/{database}"] = time.monotonic() - phase_started
            if "pg-restart" in args.phases:
                phase_started = time.monotonic()
                await pg_restart_phase(tmp, args, report, budget)
                report.phase_s["pg-restart"] = time.monotonic() - phase_started
            if "storm" in args.phases:
                phase_started = time.monotonic()
                async with world("sqlite", "", tmp) as w:
                    await storm_phase(w, args, report)
                report.phase_s["storm"] = time.monotonic() - phase_started
        finally:
            FoxProcess.kill_all()
            if args.logs:
                await asyncio.to_thread(copy_logs, tmp, args.logs)
    report.total_s = time.monotonic() - started
    return report


def copy_logs(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for log in source.glob("*.log"):
        shutil.copyfile(log, target / log.name)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=100, help="kill trials per step per database")
    parser.add_argument("--steps", default=",".join(KILL_STEPS), help="comma-separated kill steps")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--phases", default="kill,pg-restart,storm", help="kill, pg-restart, storm")
    parser.add_argument("--pg-restart-trials", type=int, default=10, help="Postgres restarts mid-run")
    parser.add_argument("--pg-hold", type=float, default=3.0, help="seconds a model call is held per restart")
    parser.add_argument("--storm-seconds", type=float, default=300.0, help="length of the Slack 429 storm")
    parser.add_argument("--storm-retry-after", type=int, default=5, help="Retry-After of the storm's 429s")
    parser.add_argument("--storm-runs", type=int, default=20, help="runs in flight or arriving in the storm")
    parser.add_argument("--storm-model-delay", type=float, default=2.0, help="seconds per model answer")
    parser.add_argument("--storm-kill", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--deadline-minutes", type=float, default=0, help="start no trial after this")
    parser.add_argument("--json", type=Path, help="write every trial as JSON to this file")
    parser.add_argument("--logs", type=Path, help="copy the IncidentFox children's logs to this directory")
    parser.add_argument("--progress", action="store_true", help="one line per trial on stderr")
    args = parser.parse_args(argv)
    args.steps = [s for s in args.steps.split(",") if s]
    args.databases = [d for d in args.databases.split(",") if d]
    args.phases = [p for p in args.phases.split(",") if p]
    unknown = (
        set(args.steps) - set(KILL_STEPS + EXTRA_STEPS)
        | set(args.databases) - {"sqlite", "postgres"}
        | set(args.phases) - {"kill", "pg-restart", "storm"}
    )
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    if min(args.trials, args.pg_restart_trials, args.storm_runs) < 0 or args.storm_seconds < 0:
        parser.error("counts and durations must not be negative")
    return args


def main() -> None:
    if sys.argv[1:] == ["--child"]:
        import logging

        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        asyncio.run(serve_child())
        return
    args = parse_args(sys.argv[1:])
    try:
        report = asyncio.run(run(args))
    finally:
        FoxProcess.kill_all()
    print(render(report))
    if args.json:
        args.json.write_text(to_json(report))
    if report.failures():
        sys.exit(1)


if __name__ == "__main__":
    main()
