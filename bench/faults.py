"""Fault trials: IncidentFox SIGKILLed at each step of a run, Postgres restarted mid-run, a Slack 429 storm.

    .venv/bin/python -m bench.faults [--trials 100] [--batch 10] [--storm-seconds 300]
                                     [--databases sqlite,postgres]
                                     [--steps before_first_post,mid_tool,mid_model,before_final_edit]
                                     [--phases kill,pg-restart,storm] [--pg-restart-trials 10]
                                     [--storm-runs 20] [--deadline-minutes 0] [--json FILE] [--logs DIR]

Everything runs on 127.0.0.1. This process runs the Slack, Kubernetes (scenario "crashloop") and
OpenAI emulators, so they outlive every kill; IncidentFox runs in a child process
(``python -m bench.faults --child SPEC``, ``role="all"``, production retry settings) on a database
that survives it: a SQLite file in a temp dir, or a Postgres database created on 127.0.0.1:5432 for
this run (migrated with ``upgrade_to_head``, dropped at the end).

**Kill trials** (``bench/faults_kill.py``, ``bench/faults_trap.py``). A kill sends ``--batch`` signed
``app_mention`` events at once, each on a new thread, to the same child, and SIGKILLs the child once
every one of those runs is *held* at one step. Requests are caught where they arrive: Slack and
Kubernetes calls go through a small forwarding proxy here, model calls reach the OpenAI emulator's
responder. A caught request is held (the proxy does not forward it, the model delays its answer)
until the kill:

- ``before_first_post``: the "Investigating…" ``chat.postMessage`` arrives; held before Slack takes it;
- ``mid_tool``: the sub-agent's ``pod_logs`` request reaches the Kubernetes API; held unanswered;
- ``mid_model``: a model request arrives; held unanswered. All runs of one kill are held at the same
  model call, and the call rotates per kill through the four calls of a run;
- ``before_final_edit``: the final ``chat.update`` (RCA) arrives; held before Slack applies it;
- extra steps (``--steps``): ``after_first_post`` and ``after_final_edit``: the call is forwarded and
  Slack applies it, and its answer is held, so the child dies before reading it (the windows between
  Slack and the database).

If not every run is held within ``TRAP_TIMEOUT_S`` of the send (or ``HOLD_MAX_S`` after the first
was held), the child is killed anyway and the runs that were not held are reported as not killed at
the step (a failure). Then a new child starts on the same database and resumes the runs, and each
thread is settled, concurrently: it waits until its run is final in the database with no final
message pending. A thread passes with exactly one final message of the bot in it (an RCA or a plain
failure), read from the Slack emulator's stored messages. Each run counts as one trial:
``--trials 100 --batch 10`` is 100 runs killed at each step, in 10 kills. With ``--batch 1`` each
trial is one run and one kill, and the child dies the moment that run's request arrives.

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
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg

from bench.faults_kill import Budget, kill_trials
from bench.faults_postgres import PrivatePostgres, postgres_database
from bench.faults_processes import ADMIN_PG, EXTRA_STEPS, KILL_STEPS, TRAP_TIMEOUT_S, FoxProcess, serve_child
from bench.faults_report import Report, Trial, render, to_json
from bench.faults_world import World, final_recount, settle, world
from bench.worker import PLANNER_ASK, PLANNER_RCA, SUBAGENT_ANSWER
from incidentfox.emulators.slack import RecordedCall

# -- phases ---------------------------------------------------------------------------------------------


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
    trial = Trial("pg-restart", "postgres (private)", "restart mid-run", index, thread_ts, kill=index)
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
                            await kill_trials(
                                w, args.steps, args.trials, args.batch, report, budget, args.progress
                            )
                    else:
                        try:
                            async with postgres_database(ADMIN_PG) as url, world("postgres", url, tmp) as w:
                                await kill_trials(
                                    w, args.steps, args.trials, args.batch, report, budget, args.progress
                                )
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
    parser.add_argument("--trials", type=int, default=100, help="kill trials (runs) per step per database")
    parser.add_argument("--batch", type=int, default=10, help="runs held at the step per kill of the child")
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
    if args.batch < 1:
        parser.error("--batch must be at least 1")
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
