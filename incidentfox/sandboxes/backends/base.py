"""The one interface every sandbox backend implements, and the types it speaks.

A sandbox is where the SRE agent's Claude Code CLI and every command it runs are confined: a
bubblewrap jail on the IncidentFox host (``local``), a hardened pod (``kubernetes``), or, for teams
that opt in, a plain directory (``unsafe-local``). A backend creates one per session from a
``SandboxSpec``, runs short commands in it (``exec``), turns a long-running program such as the CLI
into a host command line whose stdin and stdout are the program's (``wrap``), records activity for
the TTL (``touch``) and removes it with everything it holds (``destroy``).

The sandbox reaches the network only through the model proxy named in ``SandboxSpec.proxy``;
``Sandbox.proxy_url`` is that proxy as seen from inside.
"""

from __future__ import annotations

import os
import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from incidentfox.errors import UserFacingError

GIB = 1024**3
MIB = 1024**2
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SandboxError(UserFacingError):
    """A sandbox problem whose message is written for the person in the Slack thread."""

    status = 503
    code = "sandbox_error"


class SandboxUnavailable(SandboxError):
    """A sandbox cannot be created or used here: bubblewrap missing, user namespaces forbidden, a pod
    that cannot be scheduled. The message says what happened and what to do about it."""

    code = "sandbox_unavailable"


class SandboxLimitExceeded(SandboxError):
    """The sandbox went over one of its team's limits (its files' total size, for example)."""

    status = 409
    code = "sandbox_limit_exceeded"


@dataclass(frozen=True, slots=True)
class ProxyEndpoint:
    """The model proxy served by IncidentFox: the one place a sandbox may connect to.

    The local backend wants ``unix_socket`` (bound into the sandbox and relayed to
    ``127.0.0.1:sandbox_port`` inside it); given only ``host``/``port`` it relays a socket of its own
    to them. The kubernetes backend wants ``host``/``port`` as pods reach them, and selects the
    proxy's pods for its NetworkPolicy with ``pod_labels`` in ``namespace`` (or, with no labels and an
    IP ``host``, with an ipBlock of that one address).
    """

    unix_socket: Path | None = None
    host: str | None = None
    port: int | None = None
    sandbox_port: int = 8787
    """The loopback port inside a local sandbox where the proxy appears."""
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What to create: whose sandbox it is, its limits, where it may connect, and its environment.

    ``env`` is the whole environment the sandbox's programs get on top of a few neutral variables
    (``HOME``, ``PATH``, ``LANG``, ``TMPDIR``): nothing of the IncidentFox process's own environment
    ever enters a sandbox.
    """

    session_id: str
    org_id: str
    team_id: str
    run_id: str
    thread_key: str
    proxy: ProxyEndpoint | None = None
    """``None``: no network at all."""
    env: Mapping[str, str] = field(default_factory=dict)
    workdir_bytes: int = 2 * GIB
    tmp_bytes: int = 256 * MIB
    memory_bytes: int = 4 * GIB
    cpus: float = 1.0
    pids: int = 256
    runtime_class: str | None = None
    """Kubernetes ``runtimeClassName`` (gVisor's ``gvisor``, Kata's ``kata``); other backends ignore it."""


@dataclass(slots=True)
class Sandbox:
    """One created sandbox. ``details`` holds the backend's own handles (state directory, pod name…),
    enough for ``destroy`` after an IncidentFox restart."""

    id: str
    backend: str
    workdir: str
    """The workdir as IncidentFox sees it: a host path (local) or the pod's volume mount path."""
    cwd: str
    """The workdir as the sandboxed programs see it; every command starts there."""
    created_at: datetime
    last_active_at: datetime
    labels: dict[str, str]
    spec: SandboxSpec
    proxy_url: str | None = None
    """The model proxy's base URL from inside the sandbox (what ``ANTHROPIC_BASE_URL`` should be)."""
    details: dict[str, str] = field(default_factory=dict)
    confined: bool = True
    """False only for ``unsafe-local``: every message of such a session must say so."""


@dataclass(frozen=True, slots=True)
class ExecResult:
    """How a command ended. Output beyond the backend's cap is dropped and ``truncated`` is set."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class LaunchCommand:
    """A host command line that runs a program inside a sandbox with stdin, stdout and stderr piped
    straight through. Start ``argv`` with exactly ``env`` (never the host's environment merged in)."""

    argv: tuple[str, ...]
    env: Mapping[str, str]

    def launcher_script(self) -> str:
        """A ``/bin/sh`` script that starts this command with exactly ``env`` and appends its own
        arguments: usable as claude-agent-sdk's ``cli_path``, which runs it with the host environment
        and its CLI flags. The script holds ``env``'s values, so keep it where only IncidentFox reads."""
        assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(self.env.items()))
        command = " ".join(shlex.quote(a) for a in self.argv)
        return f'#!/bin/sh\nexec /usr/bin/env -i {assignments} {command} "$@"\n'

    def write_launcher(self, path: Path) -> Path:
        """Write ``launcher_script`` to ``path``, readable and executable by its owner only."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
        with os.fdopen(fd, "w", encoding="utf-8") as script:
            script.write(self.launcher_script())
        os.chmod(path, 0o700)
        return path


def now_utc() -> datetime:
    return datetime.now(UTC)


def checked_env(*layers: Mapping[str, str] | None) -> dict[str, str]:
    """The layers merged left to right, refusing names a shell or ``env`` would misread."""
    merged: dict[str, str] = {}
    for layer in layers:
        for name, value in (layer or {}).items():
            if not _ENV_NAME.fullmatch(name) or "\0" in value:
                raise ValueError(f"{name!r} cannot be passed into a sandbox as an environment variable")
            merged[name] = value
    return merged


class SandboxBackend(ABC):
    """Creates, runs commands in, and destroys sandboxes of one kind."""

    name: str
    """The ``sandbox.backend`` value that selects it: ``local``, ``kubernetes``, ``unsafe-local``."""
    files_on_host: bool = True
    """The workdir is a host directory (``Sandbox.workdir``) IncidentFox may write into directly; a pod's
    is not, and is reached through ``exec``."""

    async def adopt(self, sandbox: Sandbox) -> None:
        """Make a sandbox rebuilt from the inventory usable by this process (after a restart): give it
        back what lived only in the process that created it. Nothing, for most backends."""
        return None

    def cli_path(self) -> str | None:
        """The Claude Code CLI inside the sandbox; ``None``: the host's bundled CLI, which the backend
        makes visible inside (read-only) at the same path."""
        return None

    @abstractmethod
    async def create(self, spec: SandboxSpec) -> Sandbox:
        """A ready sandbox, or ``SandboxUnavailable`` saying why there cannot be one (nothing is left
        behind in that case)."""

    @abstractmethod
    async def exec(
        self,
        sandbox: Sandbox,
        argv: Sequence[str],
        *,
        timeout_s: float,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run ``argv`` in the workdir and wait for it. At ``timeout_s`` the command and everything it
        started are killed and ``timed_out`` is set. ``env`` adds to the spec's environment."""

    @abstractmethod
    async def wrap(
        self, sandbox: Sandbox, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> LaunchCommand:
        """The host command that runs ``argv`` inside the sandbox for as long as it likes, its stdio
        being the command's stdio. ``env`` adds to the spec's environment (the proxy URL and the
        session's proxy token, typically)."""

    @abstractmethod
    async def touch(self, sandbox: Sandbox) -> None:
        """Record activity now: the TTL counts from ``sandbox.last_active_at``."""

    @abstractmethod
    async def destroy(self, sandbox: Sandbox) -> None:
        """Stop everything running in the sandbox and delete its files. Destroying a sandbox that is
        already gone is not an error."""
