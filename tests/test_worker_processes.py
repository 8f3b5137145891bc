"""``incidentfox serve --workers 2`` as real processes on PostgreSQL and Redis, through the Slack
emulator: the bot acks and queues, two worker processes investigate; a worker SIGKILLed in the middle
of a run is started again and the run is finished exactly once; SIGTERM stops everything."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.serve_process import ServeProcess, alive, seed_checkout_team
from incidentfox.agents.runs.service import RunStore
from incidentfox.bot.runtime import build_runtime
from incidentfox.bot.worker_processes import settings_environment
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.slack import SlackEmulator
from tests.conftest import make_settings
from tests.slack_world import CHANNEL, SIGNING_SECRET, USER, forget_namespace, signed_headers

MENTIONS = 6


@pytest.fixture
async def world(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> AsyncIterator[tuple[SlackEmulator, KubernetesEmulator, ServeProcess, RunStore]]:
    namespace = f"ifx-test-{os.getpid()}-{int(time.time() * 1000)}"
    async with SlackEmulator() as slack, KubernetesEmulator("crashloop") as k8s:
        settings = make_settings(
            postgres_url,
            tmp_path,
            redis_url=redis_url,
            redis_namespace=namespace,
            slack_bot_token=slack.bot_token,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.api_url,
            port=0,
            worker_processes=2,
            run_lease_s=3.0,
        )
        runtime = await build_runtime(settings, migrate=True)
        await seed_checkout_team(
            runtime.config,
            workspace_id=slack.team_id,
            channel=CHANNEL,
            kubernetes_url=k8s.api_url,
            kubernetes_token=k8s.token,
        )
        env = {**os.environ, **settings_environment(settings), "PYTHONUNBUFFERED": "1"}
        serve = ServeProcess(env, tmp_path / "serve.log")
        try:
            await serve.start()
            yield slack, k8s, serve, runtime.runs
        finally:
            serve.kill()
            await runtime.close()
            await forget_namespace(redis_url, namespace)


async def _until(check: Any, timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting: {what}")


def _rcas_by_message(slack: SlackEmulator) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in slack.calls("chat.update"):
        if call.ok and "Root-cause analysis" in json.dumps(call.args):
            ts = str(call.args.get("ts"))
            counts[ts] = counts.get(ts, 0) + 1
    return counts


async def test_two_worker_processes_finish_every_run_once_through_a_sigkill(
    world: tuple[SlackEmulator, KubernetesEmulator, ServeProcess, RunStore],
) -> None:
    slack, k8s, serve, runs = world
    workers = await _until(
        lambda: len(serve.children()) == 2 and serve.children(), what="two worker processes"
    )
    host = socket.gethostname()
    assert sorted(workers) == [f"{host}-worker-1", f"{host}-worker-2"], "stable names, one per process"
    k8s.latency_s = 0.4
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{serve.port}/slack/events"
        for n in range(MENTIONS):
            event = slack.make_app_mention(CHANNEL, USER, f"why is checkout crashing? ({n})")
            body = json.dumps(slack.make_event_callback(event, event_id=f"EvProc{n}"))
            async with http.post(url, data=body, headers=signed_headers(body)) as response:
                assert response.status == 200

    async def running_claim() -> str | None:
        for run in await runs.unfinished():
            if run.status == "running" and run.claimed_by:
                return run.claimed_by
        return None

    victim = await _until(running_claim, what="a run in the middle of its investigation")
    killed_pid = serve.children()[victim]
    os.kill(killed_pid, signal.SIGKILL)
    restarted = await _until(
        lambda: serve.children().get(victim, killed_pid) != killed_pid, what="the killed worker restarted"
    )
    assert restarted
    k8s.latency_s = 0.0

    async def all_finished() -> bool:
        return not await runs.unfinished()

    await _until(all_finished, timeout=90, what="every run finished")
    await asyncio.sleep(1.0)
    by_message = _rcas_by_message(slack)
    assert len(by_message) == MENTIONS, f"one RCA per mention: {by_message}"
    assert set(by_message.values()) == {1}, "no run was answered twice"
    posts = [str(c.args.get("thread_ts")) for c in slack.calls("chat.postMessage") if c.ok]
    assert len(posts) == len(set(posts)) == MENTIONS, "a resumed run takes over its message, posts no second"
    pids = set(serve.children().values())
    assert await serve.stop() == 0, "SIGTERM stops the bot and its workers cleanly"
    assert not [pid for pid in pids if alive(pid)], "no worker process is left behind"
    log = serve.log_text()
    assert "exited with -9; starting it again" in log
    assert "Traceback" not in log
    assert "will be unused" not in log and "will be ignored" not in log, "Bolt's token notices are dropped"
