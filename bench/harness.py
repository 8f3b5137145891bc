"""Servers under test for the benchmarks, each in its own process on 127.0.0.1.

The benchmark process runs the load client and the Slack and Kubernetes emulators (they stand in for
remote services); each server under test runs in a child process started as
``python -m bench.harness SPEC_JSON`` so that it has an event loop (and a CPU) of its own:

- ``incidentfox``: the whole ``IncidentFox`` process (SQLite in a temp dir) with one org and one team
  whose config claims ``CHANNEL``, ``PAGERDUTY_SERVICE`` and ``GITHUB_REPO``, holds the PagerDuty and
  GitHub webhook secrets, and points at the Kubernetes emulator;
- ``bare_bolt``: a Bolt ``AsyncApp`` with an ``app_mention`` listener that does nothing, served by a
  minimal aiohttp app at ``/slack/events``; the baseline for the ack latency.

The child prints ``BENCH {"port": N}`` when it listens, then answers ``stats`` and ``stop`` commands,
one per line on stdin, with one ``BENCH {...}`` line each on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

if TYPE_CHECKING:
    from incidentfox.bot.assembly import IncidentFox

SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
CHANNEL = "C0CHECKOUT"
USER = "U0ALICE"
ORG = "acme"
TEAM = "checkout"
PAGERDUTY_SERVICE = "PBENCHSVC"
GITHUB_REPO = "acme/checkout"
PAGERDUTY_WEBHOOK_SECRET = "bench-pagerduty-webhook-secret-0123456789"
GITHUB_WEBHOOK_SECRET = "bench-github-webhook-secret-0123456789"
MARKER = "BENCH "

ServerKind = Literal["incidentfox", "bare_bolt"]


def signed_headers(body: str, *, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """The headers Slack sends with an Events API request, signed for ``body`` now."""
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": str(
            SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
        ),
    }


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """What a child process serves; every field after ``slack_bot_token`` applies to IncidentFox.

    ``openai_*``/``model`` configure the model (as OPENAI_API_KEY/OPENAI_BASE_URL/INCIDENTFOX_MODEL
    would; empty: no model, analyzers only); ``worker_concurrency`` 0 keeps the settings' default.
    """

    kind: ServerKind
    slack_api_url: str
    slack_bot_token: str
    data_dir: str = ""
    role: Literal["all", "bot"] = "bot"
    kubernetes_api_url: str = ""
    kubernetes_token: str = ""
    openai_base_url: str = ""
    openai_api_key: str = ""
    model: str = ""
    worker_concurrency: int = 0
    update_interval: float = 1.0
    redis_url: str = ""
    """With ``worker_processes``: the run queue the bot and its worker processes share."""
    worker_processes: int = 0
    """``role="all"`` with this many worker processes beside the bot, as ``serve`` runs with Redis."""
    database_url: str = ""
    """Empty: SQLite in ``data_dir``."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerSpec:
        return cls(**json.loads(text))


def incidentfox_server(
    slack: Any, tmp: Path, name: str, *, role: Literal["all", "bot"], k8s: Any = None, **extra: Any
) -> ServerProcess:
    """An IncidentFox child on ``slack`` (and ``k8s``); its data dir and log are named ``name`` in ``tmp``."""
    (tmp / name).mkdir()
    spec = ServerSpec(
        kind="incidentfox",
        slack_api_url=slack.api_url,
        slack_bot_token=slack.bot_token,
        data_dir=str(tmp / name),
        role=role,
        kubernetes_api_url=k8s.api_url if k8s else "",
        kubernetes_token=k8s.token if k8s else "",
        **extra,
    )
    return ServerProcess(spec, tmp / f"{name}.log")


class ServerProcess:
    """A server under test in a child process; its stderr goes to ``log_path``."""

    def __init__(self, spec: ServerSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self._require().pid

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def start(self, timeout: float = 60.0) -> None:
        self._log = self.log_path.open("wb")
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.harness",
            self.spec.to_json(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
        )
        ready = await asyncio.wait_for(self._reply(), timeout)
        self.port = int(ready["port"])

    async def command(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        process = self._require()
        assert process.stdin is not None
        process.stdin.write(f"{name}\n".encode())
        await process.stdin.drain()
        return await asyncio.wait_for(self._reply(), timeout)

    async def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """Ask the child to finish its work and exit; kill it if it does not within ``timeout``."""
        process = self._require()
        try:
            return await self.command("stop", timeout)
        except (TimeoutError, ConnectionError, RuntimeError) as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
            if self._log is not None:
                self._log.close()

    def log_lines(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()

    def _require(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise RuntimeError("the server process is not started")
        return self._process

    async def _reply(self) -> dict[str, Any]:
        process = self._require()
        assert process.stdout is not None
        while True:
            line = await process.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.spec.kind} server exited; see {self.log_path}")
            text = line.decode(errors="replace")
            if text.startswith(MARKER):
                reply: dict[str, Any] = json.loads(text[len(MARKER) :])
                return reply


def build_bare_bolt_app(spec: ServerSpec) -> web.Application:
    """The baseline: Bolt verifies the signature, matches the listener, and acks."""
    bolt = AsyncApp(
        signing_secret=SIGNING_SECRET,
        client=AsyncWebClient(token=spec.slack_bot_token, base_url=spec.slack_api_url),
        process_before_response=True,
    )

    @bolt.event("app_mention")
    async def on_mention() -> None:
        return None

    async def events(request: web.Request) -> web.StreamResponse:
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    return app


class _Server:
    """The child's side: one server and its stats."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.port = 0
        self._fox: IncidentFox | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if self.spec.kind == "bare_bolt":
            self._runner = web.AppRunner(build_bare_bolt_app(self.spec), access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            self.port = int(self._runner.addresses[0][1])
        else:
            await self._start_incidentfox()

    async def _start_incidentfox(self) -> None:
        # Imported here so that the bare Bolt process does not carry IncidentFox's modules (and heap).
        from incidentfox.bot.assembly import IncidentFox
        from incidentfox.bot.settings import Settings
        from incidentfox.config.permissions import Principal

        data_dir = Path(self.spec.data_dir)
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "database_url": self.spec.database_url or f"sqlite+aiosqlite:///{data_dir / 'incidentfox.db'}",
            "redis_url": self.spec.redis_url or None,
            "redis_namespace": f"ifx-bench-{os.getpid()}",
            "worker_processes": self.spec.worker_processes,
            "admin_token": "bench-admin-" + "a" * 40,
            "incidentfox_secret_key": "bench-secret-key-" + "k" * 32,
            "INCIDENTFOX_DATA_DIR": data_dir,
            "slack_bot_token": self.spec.slack_bot_token,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_app_token": None,
            "slack_api_url": self.spec.slack_api_url,
            "openai_api_key": self.spec.openai_api_key or None,
            "anthropic_api_key": None,
            "kubeconfig": None,
        }
        if self.spec.openai_base_url:
            values["openai_base_url"] = self.spec.openai_base_url
        if self.spec.model:
            values["incidentfox_model"] = self.spec.model
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        if not settings.is_sqlite:
            from incidentfox.db.engine import create_engine
            from incidentfox.db.migrate import upgrade_to_head

            engine = create_engine(settings.database_url)
            await upgrade_to_head(engine)
            await engine.dispose()
        options: dict[str, Any] = {"role": self.spec.role, "update_interval": self.spec.update_interval}
        if self.spec.worker_concurrency:
            options["worker_concurrency"] = self.spec.worker_concurrency
        fox = IncidentFox(settings, **options)
        self._fox = fox
        await fox.start()
        assert fox.runtime is not None and fox.port is not None
        self.port = fox.port
        config = fox.runtime.config
        admin = Principal(kind="admin")
        async with config.sessions.begin() as session:
            await config.create_org(session, org_id=ORG, name="Acme", actor="bench")
        await config.create_node(admin, ORG, {"node_id": TEAM, "parent_id": ORG, "kind": "team"})
        assert fox.slack is not None
        workspace = str((await fox.slack.client.auth_test())["team_id"])
        ownership = {"slack": {"workspace_ids": [workspace]}}
        await config.write_config(admin, ORG, ORG, ownership, operation="put")
        document = {
            "routing": {
                "slack_channel_ids": [CHANNEL],
                "pagerduty_service_ids": [PAGERDUTY_SERVICE],
                "github_repos": [GITHUB_REPO],
            },
            "integrations": {
                "kubernetes": {
                    "api_url": self.spec.kubernetes_api_url or "http://127.0.0.1:9",
                    "token": self.spec.kubernetes_token or "unused",
                    "namespace": "prod",
                },
                "pagerduty": {"webhook_secret": PAGERDUTY_WEBHOOK_SECRET},
                "github": {"webhook_secret": GITHUB_WEBHOOK_SECRET},
            },
        }
        await config.write_config(admin, ORG, TEAM, document, operation="put")

    async def stats(self) -> dict[str, Any]:
        if self._fox is None:
            return {}
        from sqlalchemy import func, select

        from incidentfox.agents.runs.models import Run

        runtime = self._fox.runtime
        assert runtime is not None
        async with runtime.sessions() as session:
            rows = (await session.execute(select(Run.status, func.count()).group_by(Run.status))).all()
        return {"runs": {str(status): int(count) for status, count in rows}, "queued": _queued(runtime.queue)}

    async def stop(self) -> dict[str, Any]:
        """Let started investigations finish, then report and shut down."""
        if self._fox is not None and self._fox.worker is not None:
            await self._fox.worker.drain()
        stats = await self.stats()
        if self._fox is not None:
            await self._fox.stop()
            if self.spec.redis_url:
                from bench.scratch_stores import forget_namespace

                await forget_namespace(self.spec.redis_url, self._fox.settings.redis_namespace)
        if self._runner is not None:
            await self._runner.cleanup()
        return stats


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()


async def _child(spec: ServerSpec) -> None:
    server = _Server(spec)
    await server.start()
    _say({"port": server.port})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        command = (await reader.readline()).decode().strip()
        if command == "stats":
            _say(await server.stats())
        elif command in ("stop", ""):
            stats = await server.stop()
            with contextlib.suppress(BrokenPipeError):
                _say(stats)
            return
        else:
            _say({"error": f"unknown command {command!r}"})


def _queued(queue: object) -> int:
    """Runs waiting in an in-process queue (the benchmarks run one process; a stream queue says -1)."""
    from incidentfox.agents.queue import InProcessRunQueue

    return queue.qsize() if isinstance(queue, InProcessRunQueue) else -1


def main() -> None:
    """The child's entry point; ``BENCH_PROFILE=FILE`` writes a cProfile of the whole child to FILE."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    spec = ServerSpec.from_json(sys.argv[1])
    profile_path = os.environ.get("BENCH_PROFILE")
    if not profile_path:
        asyncio.run(_child(spec))
        return
    with cProfile.Profile() as profile:
        asyncio.run(_child(spec))
    profile.dump_stats(profile_path)


if __name__ == "__main__":
    main()
