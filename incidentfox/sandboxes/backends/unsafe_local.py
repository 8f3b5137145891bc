"""The ``unsafe-local`` sandbox: NO confinement. A directory and plain host processes.

For teams that set ``sandbox.backend: unsafe-local`` on purpose (a host without user namespaces, a
developer's laptop). What it still does: the command starts in the workdir with only the spec's
environment (nothing of the IncidentFox process's own, so no integration credential is handed over
by accident), ``HOME`` inside the workdir, and the timeout kills the command's whole process group.
What it does not do: anything else. The command runs as the IncidentFox user and can read every file
that user can (configuration, database, keys), write anywhere that user can, reach any address the
host can, and outlive its timeout by leaving its process group. ``Sandbox.confined`` is False, and
every message of such a session must say that it is unconfined.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from incidentfox.sandboxes.backends.base import (
    ExecResult,
    LaunchCommand,
    Sandbox,
    SandboxBackend,
    SandboxSpec,
    SandboxUnavailable,
    checked_env,
    now_utc,
)
from incidentfox.sandboxes.backends.local import remove_tree
from incidentfox.sandboxes.backends.local_relay import ProxyRelay, proxy_connector
from incidentfox.sandboxes.backends.processes import run_captured


class UnsafeLocalBackend(SandboxBackend):
    """Unconfined "sandboxes": ``state_root/<sandbox id>/work`` and host processes started there."""

    name = "unsafe-local"

    def __init__(self, state_root: Path) -> None:
        self.state_root = state_root
        self._relays: dict[str, ProxyRelay] = {}

    async def create(self, spec: SandboxSpec) -> Sandbox:
        sandbox_id = "usb-" + secrets.token_hex(6)
        state = self.state_root / sandbox_id
        try:
            (state / "work" / ".home").mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise SandboxUnavailable(f"the sandbox directory could not be created: {exc.strerror}") from exc
        now = now_utc()
        sandbox = Sandbox(
            id=sandbox_id,
            backend=self.name,
            workdir=str(state / "work"),
            cwd=str(state / "work"),
            created_at=now,
            last_active_at=now,
            labels={"org": spec.org_id, "team": spec.team_id, "run": spec.run_id, "session": spec.session_id},
            spec=spec,
            details={"state_dir": str(state)},
            confined=False,
        )
        sandbox.proxy_url = await self._proxy_url(sandbox)
        return sandbox

    async def _proxy_url(self, sandbox: Sandbox) -> str | None:
        proxy = sandbox.spec.proxy
        if proxy is None:
            return None
        if proxy.unix_socket is None and proxy.host and proxy.port:
            return f"http://{proxy.host}:{proxy.port}"
        relay = ProxyRelay(proxy_connector(proxy))
        port = await relay.listen_loopback()
        self._relays[sandbox.id] = relay
        return f"http://127.0.0.1:{port}"

    async def adopt(self, sandbox: Sandbox) -> None:
        """The relay to the proxy lived in the process that created the sandbox: open a new one (on a
        new port) when this process has none for it."""
        if sandbox.id not in self._relays:
            sandbox.proxy_url = await self._proxy_url(sandbox)

    def _env(self, sandbox: Sandbox, env: Mapping[str, str] | None) -> dict[str, str]:
        base = {"HOME": str(Path(sandbox.workdir) / ".home"), "PATH": "/usr/local/bin:/usr/bin:/bin"}
        return checked_env(base | {"LANG": "C.UTF-8"}, sandbox.spec.env, env)

    async def exec(
        self,
        sandbox: Sandbox,
        argv: Sequence[str],
        *,
        timeout_s: float,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        return await run_captured(
            list(argv), env=self._env(sandbox, env), cwd=sandbox.cwd, stdin=stdin, timeout_s=timeout_s
        )

    async def wrap(
        self, sandbox: Sandbox, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> LaunchCommand:
        command = ("/bin/sh", "-c", 'cd "$0" && exec "$@"', sandbox.cwd, *argv)
        return LaunchCommand(argv=command, env=self._env(sandbox, env))

    async def touch(self, sandbox: Sandbox) -> None:
        sandbox.last_active_at = now_utc()

    async def destroy(self, sandbox: Sandbox) -> None:
        relay = self._relays.pop(sandbox.id, None)
        if relay is not None:
            await relay.close()
        await asyncio.to_thread(remove_tree, Path(sandbox.details["state_dir"]))
