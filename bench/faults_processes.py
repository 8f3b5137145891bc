"""The fault trials' processes: the IncidentFox child, and the proxies and model that trap a step."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, ClassVar, Literal
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from bench.faults_report import is_final_text
from bench.harness import CHANNEL, MARKER, ORG, SIGNING_SECRET, TEAM
from bench.worker import SUBAGENT_TOOL, ScriptedModel
from incidentfox.emulators.openai_api import DEFAULT_MODEL, RecordedRequest, ScriptStep

KILL_STEPS = ("before_first_post", "mid_tool", "mid_model", "before_final_edit")
EXTRA_STEPS = ("after_first_post", "after_final_edit")
FINAL_STATES = ("succeeded", "failed", "interrupted")
ADMIN_PG = os.environ.get("FAULTS_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_TIMEOUT_S = 60.0
TRAP_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 120.0
QUIET_S = 0.5
"""After a run settles, how long to keep watching its thread for a late duplicate."""
POLL_S = 0.05

Verdict = Literal["pass", "kill_before", "kill_after"]


@dataclass(frozen=True, slots=True)
class ChildSpec:
    slack_api_url: str
    slack_bot_token: str
    workspace_id: str
    database_url: str
    data_dir: str
    kubernetes_api_url: str
    kubernetes_token: str
    openai_base_url: str
    openai_api_key: str
    setup: bool = False
    """Create the org (owning the workspace) and the team that claims ``CHANNEL``: first start only."""


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()


async def serve_child() -> None:
    """Import everything, say ``ready``, then read the spec line from stdin and start IncidentFox."""
    from sqlalchemy import select

    from incidentfox.agents.runs.models import Run
    from incidentfox.bot.assembly import IncidentFox
    from incidentfox.bot.settings import Settings
    from incidentfox.config.permissions import Principal

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    _say({"ready": True})
    line = (await reader.readline()).decode().strip()
    if not line:
        return
    spec = ChildSpec(**json.loads(line))
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "database_url": spec.database_url,
        "redis_url": None,
        "admin_token": "faults-admin-" + "a" * 40,
        "incidentfox_secret_key": "faults-secret-key-" + "k" * 32,
        "INCIDENTFOX_DATA_DIR": Path(spec.data_dir),
        "slack_bot_token": spec.slack_bot_token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_app_token": None,
        "slack_api_url": spec.slack_api_url,
        "openai_api_key": spec.openai_api_key,
        "openai_base_url": spec.openai_base_url,
        "incidentfox_model": DEFAULT_MODEL,
        "anthropic_api_key": None,
        "kubeconfig": None,
        "egress_allow_private": True,
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    fox = IncidentFox(settings, role="all", update_interval=1.0)
    await fox.start()
    assert fox.runtime is not None
    if spec.setup:
        config, admin = fox.runtime.config, Principal(kind="admin")
        async with config.sessions.begin() as session:
            await config.create_org(session, org_id=ORG, name="Acme", actor="faults")
        await config.create_node(admin, ORG, {"node_id": TEAM, "parent_id": ORG, "kind": "team"})
        ownership = {"slack": {"workspace_ids": [spec.workspace_id]}}
        await config.write_config(admin, ORG, ORG, ownership, operation="put")
        kubernetes = {"api_url": spec.kubernetes_api_url, "token": spec.kubernetes_token, "namespace": "prod"}
        document = {"routing": {"slack_channel_ids": [CHANNEL]}, "integrations": {"kubernetes": kubernetes}}
        await config.write_config(admin, ORG, TEAM, document, operation="put")
    _say({"port": fox.port})
    while True:
        command = (await reader.readline()).decode().strip()
        if command == "runs":
            columns = (Run.thread_ts, Run.status, Run.attempts, Run.final_message.is_not(None))
            async with fox.runtime.sessions() as session:
                rows = (await session.execute(select(*columns))).all()
            _say({"runs": [[str(t), str(s), int(a), bool(p)] for t, s, a, p in rows]})
        elif command in ("stop", ""):
            await fox.stop()
            with contextlib.suppress(BrokenPipeError):
                _say({})
            return


def die_with_parent() -> None:
    """In the child, before exec: SIGKILL it if the benchmark process dies (PR_SET_PDEATHSIG = 1)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class RunRow:
    status: str
    attempts: int
    pending_final: bool


class FoxProcess:
    """The parent's handle on one child; every live child is killed by ``kill_all``."""

    live: ClassVar[set[FoxProcess]] = set()

    def __init__(self, process: asyncio.subprocess.Process, log: IO[bytes]) -> None:
        self.process = process
        self.port = 0
        self._log = log
        self._ready: asyncio.Task[dict[str, Any]] | None = None
        FoxProcess.live.add(self)

    @classmethod
    async def spawn(cls, log_path: Path) -> FoxProcess:
        """A child that imports IncidentFox and waits for ``go``: restarts then cost only the start-up
        of IncidentFox itself (database, recovery, Slack auth), not ~8 s of imports on 2 cores."""
        log = log_path.open("ab")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.faults",
            "--child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            preexec_fn=die_with_parent,
        )
        fox = cls(process, log)
        fox._ready = asyncio.create_task(fox._reply())
        return fox

    async def go(self, spec: ChildSpec) -> None:
        """Start IncidentFox in this (spawned) child on ``spec``."""
        try:
            assert self._ready is not None
            await asyncio.wait_for(self._ready, START_TIMEOUT_S)
            reply = await self._command(json.dumps(asdict(spec)), timeout=START_TIMEOUT_S)
            self.port = int(reply["port"])
        except BaseException:
            await self.reap(kill=True)
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def reap(self, *, kill: bool = False) -> None:
        if kill:
            self.kill()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.kill()
            await self.process.wait()
        if self._ready is not None:
            if not self._ready.done():
                self._ready.cancel()
            with contextlib.suppress(BaseException):
                await self._ready
        self._log.close()
        FoxProcess.live.discard(self)

    async def runs(self) -> dict[str, RunRow]:
        reply = await self._command("runs")
        return {t: RunRow(s, a, p) for t, s, a, p in reply.get("runs", [])}

    async def stop(self) -> None:
        """Let running investigations finish (the child's own grace), then exit; killed if it hangs."""
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            await self._command("stop", timeout=30)
        await self.reap()

    async def _command(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{name}\n".encode())
        await self.process.stdin.drain()
        return await asyncio.wait_for(self._reply(), timeout)

    async def _reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                raise RuntimeError("the IncidentFox child exited")
            text = line.decode(errors="replace")
            if text.startswith(MARKER):
                reply: dict[str, Any] = json.loads(text[len(MARKER) :])
                return reply

    @classmethod
    def kill_all(cls) -> None:
        for fox in list(cls.live):
            fox.kill()


# -- where the child is killed ---------------------------------------------------------------------


class Trap:
    """Armed for one step of one run; SIGKILLs the child the moment that step's request arrives."""

    def __init__(self) -> None:
        self.step: str | None = None
        self.pid = 0
        self.thread_ts = ""
        self.model_step = ""
        self.tool_requested = False
        self.detail = ""
        self.fired = asyncio.Event()

    def arm(self, step: str, pid: int, thread_ts: str, model_step: str = "") -> None:
        self.step, self.pid, self.thread_ts, self.model_step = step, pid, thread_ts, model_step
        self.tool_requested = False
        self.detail = ""
        self.fired.clear()

    def disarm(self) -> None:
        self.step = None

    def fire(self, detail: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.detail = detail
        self.step = None
        self.fired.set()

    def slack(self, method: str, args: dict[str, Any]) -> Verdict:
        text = str(args.get("text") or "")
        if self.step in ("before_first_post", "after_first_post"):
            if method == "chat.postMessage" and args.get("thread_ts") == self.thread_ts:
                return "kill_before" if self.step == "before_first_post" else "kill_after"
        elif self.step in ("before_final_edit", "after_final_edit") and (
            method == "chat.update" and is_final_text(text)
        ):
            return "kill_before" if self.step == "before_final_edit" else "kill_after"
        return "pass"

    def kubernetes(self, method: str, path: str) -> Verdict:
        if self.step == "mid_tool" and self.tool_requested and "/log" in path:
            return "kill_before"
        return "pass"

    def model(self, step_name: str) -> bool:
        """Whether this model call is the one to die in (then the child is already dead)."""
        if step_name == SUBAGENT_TOOL and self.step == "mid_tool":
            self.tool_requested = True
        if self.step == "mid_model" and step_name == self.model_step:
            self.fire(f"model call {step_name} arrived")
            return True
        return False


class FaultModel(ScriptedModel):
    """``bench.worker``'s scripted four-call conversation, with the trap, optional delays and a hold.

    ``delay`` delays every answer; ``hold_step`` delays only that call, once per request, by
    ``hold_s`` and sets ``holding`` (the Postgres restart happens meanwhile)."""

    def __init__(self, trap: Trap) -> None:
        super().__init__(delay=0.0)
        self.trap = trap
        self.hold_step = ""
        self.hold_s = 0.0
        self.holding = asyncio.Event()
        self._waited: set[int] = set()

    def __call__(self, request: RecordedRequest) -> ScriptStep | None:
        step_name, step = self._answer(request)
        if self.trap.model(step_name):
            return ScriptStep.http_error(503, "the client was killed")
        wait = self.hold_s if step_name == self.hold_step else self.delay
        if wait > 0 and request.index not in self._waited:
            self._waited.add(request.index)
            if step_name == self.hold_step:
                self.holding.set()
            return ScriptStep.delay(wait)
        self._waited.discard(request.index)
        self.served[step_name] += 1
        return step


class TapProxy:
    """Forwards every request to ``target`` unchanged, asking ``decide`` first whether to kill the child
    before forwarding it (the request is then dropped) or after the target answered it."""

    def __init__(self, target: str, decide: Callable[[str, str, bytes, str], Verdict], trap: Trap) -> None:
        self._target = target.rstrip("/")
        self._decide = decide
        self._trap = trap
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> TapProxy:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application(client_max_size=16 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        body = await request.read()
        verdict = self._decide(request.method, request.path_qs, body, request.content_type)
        if verdict == "kill_before":
            self._trap.fire(f"{request.method} {request.path} arrived (not forwarded)")
            return web.Response(status=503)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with self._http.request(
            request.method, self._target + request.path_qs, data=body, headers=headers
        ) as answer:
            payload = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "retry-after")}
            status = answer.status
        if verdict == "kill_after":
            self._trap.fire(f"{request.method} {request.path} applied, answer not delivered")
        return web.Response(status=status, body=payload, headers=kept)


def slack_args(body: bytes, content_type: str) -> dict[str, Any]:
    if not body:
        return {}
    try:
        if "json" in content_type:
            parsed = json.loads(body)
            return parsed if isinstance(parsed, dict) else {}
        return dict(parse_qsl(body.decode()))
    except (ValueError, UnicodeDecodeError):
        return {}


# -- one world: emulators, proxies, a database --------------------------------------------------------
