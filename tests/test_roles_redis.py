"""``serve --role bot`` plus two ``--role worker`` processes' worth of IncidentFox, on PostgreSQL and the
real Redis, through the Slack emulator: the bot acks and queues, the workers investigate, and every
mention gets exactly one RCA; a dedicated team's runs reach only its own worker."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from incidentfox.agents.queue import QueuedRun
from incidentfox.agents.redis_queue import QueueUnavailable
from incidentfox.agents.stream_queue import StreamRunQueue
from incidentfox.bot.assembly import IncidentFox
from tests.slack_world import ADMIN, CHANNEL, World, world

MENTIONS = 12


@asynccontextmanager
async def workers(
    w: World, *names: str, team: tuple[str, str] | None = None
) -> AsyncIterator[list[IncidentFox]]:
    started = []
    try:
        for name in names:
            settings = w.fox.settings.model_copy(update={"worker_id": name, "port": 0})
            fox = IncidentFox(settings, role="worker", update_interval=0.2, team=team)
            await fox.start()
            started.append(fox)
        yield started
    finally:
        for fox in started:
            await fox.stop()


async def _rca_count(w: World) -> int:
    return len(
        [c for c in w.slack.calls("chat.update") if c.ok and "Root-cause analysis" in json.dumps(c.args)]
    )


async def test_a_bot_and_two_workers_answer_every_mention_once(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    async with world(tmp_path, database_url=postgres_url, redis_url=redis_url, role="bot") as w:
        assert w.fox.worker is None, "the bot investigates nothing itself"
        async with workers(w, "worker-1", "worker-2") as pool:
            for n in range(MENTIONS):
                mention = w.mention(f"why is checkout crashing? ({n})")
                response = await w.post_event(w.slack.make_event_callback(mention, event_id=f"EvRole{n}"))
                assert response.status == 200
            runs = await w.wait_runs_finished(MENTIONS, timeout=90)
            assert [r.status for r in runs] == ["succeeded"] * MENTIONS
            assert all(r.claimed_by is None for r in runs), "claims were let go as runs finished"
            await asyncio.sleep(0.5)
            assert await _rca_count(w) == MENTIONS, "one RCA per mention, none twice"
            assert all(fox.worker is not None for fox in pool)
            async with w.http.get(f"http://127.0.0.1:{w.fox.port}/metrics") as scraped:
                metrics = await scraped.text()
            assert 'incidentfox_queue_waiting{stream="shared"} 0.0' in metrics
            assert 'incidentfox_queue_pending{stream="shared"} 0.0' in metrics


async def test_a_dedicated_teams_runs_reach_only_its_own_worker(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    async with world(tmp_path, database_url=postgres_url, redis_url=redis_url, role="bot") as w:
        assert w.fox.runtime is not None
        current = await w.fox.runtime.config.effective_config_shared("acme", "checkout")
        document = {
            "integrations": current["integrations"],
            "routing": {"slack_channel_ids": [CHANNEL]},
            "tenancy": {"mode": "dedicated"},
        }
        await w.fox.runtime.config.write_config(ADMIN, "acme", "checkout", document, operation="put")
        async with workers(w, "shared-1"):
            mention = w.mention("why is checkout crashing?")
            await w.post_event(w.slack.make_event_callback(mention, event_id="EvDedicated1"))
            await asyncio.sleep(2.0)
            [run] = await w.fox.runtime.runs.unfinished()
            assert run.status == "queued", "a shared worker never takes a dedicated team's run"
            async with workers(w, "checkout-1", team=("acme", "checkout")):
                finished = await w.wait_runs_finished(1, timeout=60)
                assert [r.status for r in finished] == ["succeeded"]


class PrivateRedis:
    """A redis-server of the test's own, keeping nothing on disk, that the test can restart empty."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *options: str) -> None:
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.dir), *options]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


async def test_runs_queued_when_redis_restarts_empty_are_all_investigated_once(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        async with world(tmp_path, redis_url=server.url, role="bot") as w:
            for n in range(3):
                mention = w.mention(f"why is checkout crashing? (before {n})")
                await w.post_event(w.slack.make_event_callback(mention, event_id=f"EvBefore{n}"))
            server.stop()
            server.start()
            mention = w.mention("why is checkout crashing? (after)")
            response = await w.post_event(w.slack.make_event_callback(mention, event_id="EvAfter"))
            assert response.status == 200
            async with workers(w, "worker-1"):
                runs = await w.wait_runs_finished(4, timeout=60)
                assert [r.status for r in runs] == ["succeeded"] * 4
                await asyncio.sleep(0.5)
                assert await _rca_count(w) == 4, (
                    "each run answered once: lost entries queued again, kept ones not"
                )
    finally:
        server.stop()


async def test_a_put_redis_refuses_is_not_counted_as_queued(tmp_path: Path) -> None:
    """Redis out of memory refuses the XADD but still answers XLEN: the put must fail (the pipeline
    then keeps the run for the stranded sweep) rather than report a queue depth."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start("--maxmemory", "1", "--maxmemory-policy", "noeviction")
    queue = StreamRunQueue.connect(server.url, namespace="ifx-oom", consumer="bot")
    try:
        with pytest.raises(QueueUnavailable, match=r"OutOfMemoryError|ResponseError"):
            await queue.put(QueuedRun("run-1", None))
    finally:
        await queue.close()
        server.stop()
