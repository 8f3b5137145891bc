"""One world of the fault trials: emulators, proxies, a database, and how a thread is settled."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.faults_processes import (
    FINAL_STATES,
    POLL_S,
    QUIET_S,
    SETTLE_TIMEOUT_S,
    ChildSpec,
    FoxProcess,
    RunRow,
)
from bench.faults_report import Report, Trial, finals_showing, thread_outcome
from bench.faults_trap import Catch, FaultModel, TapProxy, Trap, slack_args
from bench.harness import CHANNEL, USER, signed_headers
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.openai_api import OpenAIEmulator
from incidentfox.emulators.slack import SlackEmulator


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
    run_of: dict[str, int] = field(default_factory=dict)
    """Thread ts → the ``[bench-run-N]`` number its question carries (model calls name their run)."""
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
        self.run_of[str(event["ts"])] = self._next
        return str(event["ts"]), json.dumps(body)

    async def send(self, fox: FoxProcess, body: str) -> int:
        """POST the event; 0 when the connection failed (the child may be killed while answering)."""
        try:
            async with self.http.post(fox.events_url, data=body, headers=signed_headers(body)) as answer:
                await answer.read()
                return answer.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    def message_thread(self, channel: str, ts: str) -> str | None:
        """The thread a bot message (e.g. the one a final ``chat.update`` edits) was posted in."""
        for message in self.slack.messages(channel):
            if message.ts == ts:
                return message.thread_ts
        return None


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

        def on_slack(method: str, path: str, body: bytes, content_type: str) -> Catch | None:
            return trap.slack(path.rsplit("/", 1)[-1], slack_args(body, content_type))

        def on_k8s(method: str, path: str, body: bytes, content_type: str) -> Catch | None:
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
        trap.message_thread = w.message_thread
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
        if finals_showing(w.slack, CHANNEL, thread_ts) >= 1:
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


async def final_recount(w: World, report: Report, phase: str) -> None:
    """After the last child stopped: read every thread of this phase again (a late duplicate counts)."""
    for trial in report.trials:
        if trial.phase == phase and trial.database == w.database:
            trial.outcome = thread_outcome(w.slack, CHANNEL, trial.thread_ts)
