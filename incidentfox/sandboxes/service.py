"""The SRE agent as one process part: its model proxy, session tokens, sessions, reaper and the
task that stops idle CLIs.

``IncidentFox`` starts it only when ``ANTHROPIC_API_KEY`` is set. The proxy listens on a Unix socket
under ``data_dir/run`` (ADR-038); local sandboxes live under ``data_dir/sandboxes``. Stopping it
stops the CLIs first (their sandboxes stay for the reaper), then the reaper, then the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.team_slots import TeamSlots
from incidentfox.sandboxes.backends.base import SandboxBackend, SandboxUnavailable
from incidentfox.sandboxes.backends.local import BubblewrapBackend
from incidentfox.sandboxes.backends.unsafe_local import UnsafeLocalBackend
from incidentfox.sandboxes.investigator import SreInvestigator
from incidentfox.sandboxes.kubernetes_setup import KUBERNETES_OFF, KubernetesSandboxes
from incidentfox.sandboxes.model_proxy import ModelProxy
from incidentfox.sandboxes.reaper import SandboxReaper
from incidentfox.sandboxes.session import SreSessions
from incidentfox.sandboxes.session_tokens import SessionTokens
from incidentfox.sandboxes.store import SandboxStore

log = logging.getLogger(__name__)

UNKNOWN_BACKEND = (
    "This team's `sandbox.backend` is `{name}`, which IncidentFox does not know. Use `local` (bubblewrap), "
    "or `unsafe-local` to run unconfined."
)
PROXY_SOCKET = "model-proxy.sock"
IDLE_POLL_S = 60.0


class SreAgent:
    """Everything the SRE agent needs in one process; ``investigator`` is what the worker calls."""

    def __init__(
        self,
        store: SandboxStore,
        data_dir: Path,
        *,
        api_key: str,
        upstream: str | None = None,
        kubernetes: KubernetesSandboxes | None = None,
        slack: AsyncWebClient | None = None,
        run_dir: Path | None = None,
        team_slots: TeamSlots | None = None,
    ) -> None:
        """``kubernetes``: the installation's pod backend (``kubernetes_setup``); without it a team
        asking for ``sandbox.backend: kubernetes`` is told in plain words what is missing.
        ``run_dir``: this process's sockets and launchers (worker processes on one host need their
        own); ``team_slots``: where each team's working sessions are counted."""
        self.run_dir = run_dir or data_dir / "run"
        self.tokens = SessionTokens()
        self.proxy = ModelProxy(self.tokens, api_key=api_key, upstream=upstream)
        self._local = BubblewrapBackend(data_dir / "sandboxes")
        self._unsafe = UnsafeLocalBackend(data_dir / "sandboxes-unsafe")
        self._kubernetes = kubernetes
        endpoints = {"kubernetes": kubernetes.endpoint} if kubernetes is not None else {}
        self.sessions = SreSessions(
            store,
            self.backend_for,
            self.proxy,
            self.tokens,
            self.run_dir,
            endpoints=endpoints,
            team_slots=team_slots,
        )
        self.reaper = SandboxReaper(store, self.sessions.destroy_row)
        self.investigator = SreInvestigator(self.sessions, slack)
        self._tasks: list[asyncio.Task[None]] = []

    def backend_for(self, name: str) -> SandboxBackend:
        """The backend a team's ``sandbox.backend`` names; a plain refusal for any other."""
        if name == "local":
            return self._local
        if name == "unsafe-local":
            return self._unsafe
        if name == "kubernetes":
            if self._kubernetes is None:
                raise SandboxUnavailable(KUBERNETES_OFF)
            return self._kubernetes.backend
        raise SandboxUnavailable(UNKNOWN_BACKEND.format(name=name))

    async def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        socket = self.run_dir / PROXY_SOCKET
        socket.unlink(missing_ok=True)
        await self.proxy.start(unix_path=socket)
        if self._kubernetes is not None:
            await self.proxy.also_listen(host="0.0.0.0", port=self._kubernetes.listen_port)
        self._tasks = [
            asyncio.create_task(self.reaper.run_forever()),
            asyncio.create_task(self._close_idle_forever()),
        ]
        log.info("SRE agent on: model proxy at %s", self.proxy.url)

    async def stop(self) -> None:
        await self.sessions.shutdown()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.proxy.stop()

    async def _close_idle_forever(self) -> None:
        """Stop the CLIs of quiet threads (their sandboxes stay; the next message resumes them)."""
        while True:
            await asyncio.sleep(IDLE_POLL_S)
            try:
                await self.sessions.close_idle()
            except Exception:
                log.exception("closing idle SRE agent CLIs failed; trying again in %ss", IDLE_POLL_S)
