"""P-6: ``serve --role bot`` plus worker processes drain a queue of runs on PostgreSQL and Redis, with
one worker SIGKILLed mid-way and started again; none lost, none answered twice.

    .venv/bin/python -m bench.drain [--runs 10000] [--workers 2] [--kill-at 0.5] [--restart-after 1]
                                    [--send-concurrency 50] [--timeout 1800] [--keep DIR]

Everything runs on 127.0.0.1. This process runs the load client and the Slack and Kubernetes
(scenario "crashloop") emulators; the bot and each worker are ``incidentfox serve`` child processes
(``bench/serve_process.py``) on a fresh PostgreSQL database (``TEST_DATABASE_URL``'s server) and a
fresh Redis namespace (``TEST_REDIS_URL``). Runs use no model: the no-LLM analyzers investigate with
the Kubernetes toolset, so the measure is the run engine's, not a model's.

Phases: the bot queues ``--runs`` signed ``app_mention`` events (distinct threads and event ids);
then the workers start and drain the queue; when ``--kill-at`` of the runs have finished, worker 1
is SIGKILLed and started again ``--restart-after`` seconds later under the same ``WORKER_ID``.

Reported: runs/s overall and per worker (from each worker's "run finished" log lines), the takeover
time (kill → every run the killed worker held is delivered again or finished), the recovery time
(kill → every one of them is finished), lost runs (not finished, or a final
message still pending) and duplicated runs (a thread with two progress messages, or a message given
two different RCAs), read from the Slack emulator's call log. A final shown again unchanged (its
worker died after showing it, before noting so; the pending-finals task sends it once more) is
counted apart: the user sees the same message, marked edited.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bench.harness import CHANNEL, SIGNING_SECRET, USER, signed_headers
from bench.scratch_stores import forget_namespace, redis_server_url, scratch_database
from bench.serve_process import ServeProcess, seed_checkout_team
from incidentfox.agents.runs.models import Run
from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.bot.settings import Settings
from incidentfox.bot.worker_processes import settings_environment
from incidentfox.db.base import utcnow
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.slack import SlackEmulator

FINAL = ("succeeded", "failed", "interrupted")
RCA_MARKER = "Root-cause analysis"
FINISHED_LINE = re.compile(r"^(\S+ \S+) .*run finished run_id=(\S+)", re.MULTILINE)


def _stamp(text: str) -> float:
    return (
        time.mktime(time.strptime(text.split(",")[0], "%Y-%m-%d %H:%M:%S")) + int(text.split(",")[1]) / 1000
    )


async def _send(
    http: aiohttp.ClientSession, slack: SlackEmulator, url: str, runs: int, concurrency: int
) -> int:
    """Queue ``runs`` mentions through the bot; how many it acked with 200."""
    numbers = iter(range(runs))
    acked = 0

    async def sender() -> None:
        nonlocal acked
        for n in numbers:
            event = slack.make_app_mention(CHANNEL, USER, f"why is checkout crashlooping? [drain-{n}]")
            body = json.dumps(slack.make_event_callback(event, event_id=f"EvDRAIN{n:07d}"))
            async with http.post(url, data=body, headers=signed_headers(body)) as response:
                await response.read()
                acked += response.status == 200

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return acked


async def _counts(runtime: Runtime) -> dict[str, int]:
    async with runtime.sessions() as session:
        rows = (await session.execute(select(Run.status, func.count()).group_by(Run.status))).all()
    return {str(status): int(count) for status, count in rows}


async def _held_by(runtime: Runtime, worker_id: str) -> set[str]:
    async with runtime.sessions() as session:
        query = select(Run.run_id).where(Run.claimed_by == worker_id, Run.status.in_(("queued", "running")))
        return set((await session.scalars(query)).all())


async def _unfinished(runtime: Runtime, run_ids: set[str]) -> int:
    if not run_ids:
        return 0
    async with runtime.sessions() as session:
        query = select(func.count()).where(Run.run_id.in_(run_ids), Run.status.not_in(FINAL))
        return int((await session.execute(query)).scalar_one())


async def _not_taken_over(runtime: Runtime, run_ids: set[str]) -> int:
    """Of ``run_ids``, those neither finished nor delivered again (a redelivery counts an attempt)."""
    if not run_ids:
        return 0
    async with runtime.sessions() as session:
        query = select(func.count()).where(
            Run.run_id.in_(run_ids),
            Run.status.not_in(FINAL),
            Run.attempts < 2,
        )
        return int((await session.execute(query)).scalar_one())


async def _pending_finals(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int(
            (await session.execute(select(func.count()).where(Run.final_next_at.is_not(None)))).scalar_one()
        )


def _slack_tally(slack: SlackEmulator) -> dict[str, int]:
    """Per thread: progress messages posted; per message: RCA finals shown."""
    posts: Counter[str] = Counter()
    finals: dict[str, list[str]] = {}
    for call in slack.calls():
        if not call.ok:
            continue
        if call.method == "chat.postMessage" and call.args.get("thread_ts"):
            posts[str(call.args["thread_ts"])] += 1
        elif call.method == "chat.update" and RCA_MARKER in (
            blocks := json.dumps(call.args.get("blocks") or [])
        ):
            finals.setdefault(str(call.args.get("ts")), []).append(blocks)
    return {
        "threads_with_a_progress_message": len(posts),
        "threads_with_two_or_more_messages": sum(1 for n in posts.values() if n > 1),
        "messages_with_an_rca": len(finals),
        "messages_given_two_different_rcas": sum(1 for shown in finals.values() if len(set(shown)) > 1),
        "messages_given_the_same_rca_again": sum(
            1 for shown in finals.values() if len(shown) > 1 and len(set(shown)) == 1
        ),
    }


def _per_worker(log: str) -> dict[str, float]:
    stamps = [_stamp(m.group(1)) for m in FINISHED_LINE.finditer(log)]
    if len(stamps) < 2:
        return {"finished": len(stamps), "runs_per_s": 0.0}
    span = max(stamps) - min(stamps)
    return {"finished": len(stamps), "runs_per_s": round(len(stamps) / span, 1) if span > 0 else 0.0}


async def drain(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    redis_url = redis_server_url()
    namespace = f"ifx-drain-{secrets.token_hex(4)}"
    result: dict[str, Any] = {"runs": args.runs, "workers": args.workers}
    async with (
        scratch_database("ifx_drain_") as database_url,
        SlackEmulator() as slack,
        KubernetesEmulator("crashloop") as k8s,
    ):
        values: dict[str, Any] = {
            "database_url": database_url,
            "redis_url": redis_url,
            "redis_namespace": namespace,
            "admin_token": "bench-admin-" + "a" * 40,
            "incidentfox_secret_key": "bench-secret-key-" + "k" * 32,
            "INCIDENTFOX_DATA_DIR": tmp / "data",
            "slack_bot_token": slack.bot_token,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": slack.api_url,
            "egress_allow_private": True,
            "local_workspace": False,
            "port": 0,
            "run_lease_s": args.lease,
        }
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        runtime = await build_runtime(settings, migrate=True)
        env = {**os.environ, **settings_environment(settings), "PYTHONUNBUFFERED": "1"}
        bot = ServeProcess(env, tmp / "bot.log", ["--role", "bot"])
        workers = [
            ServeProcess(
                {**env, "WORKER_ID": f"drain-worker-{n + 1}"},
                tmp / f"worker-{n + 1}.log",
                ["--role", "worker"],
            )
            for n in range(args.workers)
        ]
        try:
            await seed_checkout_team(
                runtime.config,
                workspace_id=slack.team_id,
                channel=CHANNEL,
                kubernetes_url=k8s.api_url,
                kubernetes_token=k8s.token,
            )
            await bot.start()
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=args.send_concurrency)
            ) as http:
                started = time.monotonic()
                acked = await _send(
                    http, slack, f"http://127.0.0.1:{bot.port}/slack/events", args.runs, args.send_concurrency
                )
                result["queue_s"] = round(time.monotonic() - started, 1)
                result["acked"] = acked
            print(f"queued {acked} runs in {result['queue_s']} s", flush=True)
            drain_started = time.monotonic()
            await asyncio.gather(*(worker.start() for worker in workers))
            result.update(await _watch(args, runtime, workers, drain_started))
            result["statuses"] = await _counts(runtime)
            result["pending_finals"] = await _pending_finals(runtime)
            result["slack"] = _slack_tally(slack)
            result["per_worker"] = {w.log.stem: _per_worker(w.log_text()) for w in workers}
            lost = args.runs - sum(result["statuses"].get(status, 0) for status in FINAL)
            result["lost"] = lost + result["pending_finals"]
            tally = result["slack"]
            result["duplicated"] = (
                tally["threads_with_two_or_more_messages"] + tally["messages_given_two_different_rcas"]
            )
        finally:
            for process in (*workers, bot):
                if process.process is not None:
                    with contextlib.suppress(RuntimeError):
                        await process.stop(timeout=30)
            await runtime.close()
            await forget_namespace(redis_url, namespace)
    return result


async def _watch(
    args: argparse.Namespace, runtime: Runtime, workers: list[ServeProcess], started: float
) -> dict[str, Any]:
    victim = workers[0]
    killed_at: float | None = None
    held: set[str] = set()
    recovered_s: float | None = None
    taken_over_s: float | None = None
    killed_wall: datetime | None = None
    deadline = started + args.timeout
    finished = 0
    while time.monotonic() < deadline:
        counts = await _counts(runtime)
        finished = sum(counts.get(status, 0) for status in FINAL)
        if killed_at is None and finished >= args.kill_at * args.runs:
            held = await _held_by(runtime, "drain-worker-1")
            victim.kill()
            killed_at, killed_wall = time.monotonic(), utcnow().replace(tzinfo=None)
            print(f"SIGKILLed worker 1 at {finished} finished, holding {len(held)} runs", flush=True)
            await asyncio.sleep(args.restart_after)
            await victim.start()
            print(f"worker 1 started again after {time.monotonic() - killed_at:.1f} s", flush=True)
        if killed_at is not None and taken_over_s is None and await _not_taken_over(runtime, held) == 0:
            taken_over_s = round(time.monotonic() - killed_at, 1)
            print(f"every run worker 1 held is taken over, {taken_over_s} s after the kill", flush=True)
        if killed_at is not None and recovered_s is None and await _unfinished(runtime, held) == 0:
            recovered_s = round(time.monotonic() - killed_at, 1)
            print(f"every run worker 1 held is finished, {recovered_s} s after the kill", flush=True)
        if finished >= args.runs and await _pending_finals(runtime) == 0:
            break
        await asyncio.sleep(0.5)
    drain_s = time.monotonic() - started
    if killed_wall is not None and held:
        async with runtime.sessions() as session:
            query = select(Run.finished_at).where(Run.run_id.in_(held), Run.finished_at.is_not(None))
            ends = [at for at in await session.scalars(query) if at is not None]
        after = sorted((at.replace(tzinfo=None) - killed_wall).total_seconds() for at in ends)
        if after:
            print(
                f"the held runs finished {after[0]:.1f} s to {after[-1]:.1f} s after the kill "
                f"(median {after[len(after) // 2]:.1f} s)",
                flush=True,
            )
    return {
        "drain_s": round(drain_s, 1),
        "runs_per_s": round(finished / drain_s, 1),
        "killed_holding": len(held),
        "taken_over_s": taken_over_s,
        "recovery_s": recovered_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-at", type=float, default=0.5)
    parser.add_argument("--restart-after", type=float, default=1.0)
    parser.add_argument("--lease", type=float, default=30.0, help="RUN_LEASE_S of the processes")
    parser.add_argument("--send-concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--keep", type=Path, help="keep the process logs in this directory")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ifx-drain-"))
    try:
        result = asyncio.run(drain(args, tmp))
    finally:
        if args.keep is not None:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True, ignore=shutil.ignore_patterns("data"))
        shutil.rmtree(tmp, ignore_errors=True)
    result["machine"] = f"{os.cpu_count()} cores"
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
