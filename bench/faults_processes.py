"""The fault trials' IncidentFox child: what it runs, and the parent's handle on it."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

from bench.harness import CHANNEL, MARKER, ORG, SIGNING_SECRET, TEAM
from incidentfox.emulators.openai_api import DEFAULT_MODEL

KILL_STEPS = ("before_first_post", "mid_tool", "mid_model", "before_final_edit")
EXTRA_STEPS = ("after_first_post", "after_final_edit")
FINAL_STATES = ("succeeded", "failed", "interrupted")
ADMIN_PG = os.environ.get("FAULTS_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_TIMEOUT_S = 60.0
TRAP_TIMEOUT_S = 30.0
"""How long after a kill trial's mentions were sent its runs may take to reach the step."""
HOLD_MAX_S = 20.0
"""How long the first run held at the step waits for the rest of its batch before the kill comes anyway:
below the child's 30 s Slack and Kubernetes read timeouts, so a held call is still held at the kill."""
SETTLE_TIMEOUT_S = 120.0
QUIET_S = 0.5
"""After a run settles, how long to keep watching its thread for a late duplicate."""
POLL_S = 0.05


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
        self._lock = asyncio.Lock()
        """One command at a time: the batch's threads are settled concurrently."""
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
        async with self._lock:
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
