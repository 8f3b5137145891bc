"""A session's sandbox between the database and a backend: what is stored about it, how it is rebuilt
after a restart (to use it again, or to destroy it), and whether it still works.

``sandbox_details`` holds the backend's own handles plus a few ``ifx_*`` keys of ours (the sandbox
id, its workdir and cwd, the proxy URL inside it, whether it is confined): with the spec, which is
rebuilt from the session's place and limits, that is a whole ``Sandbox`` again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from incidentfox.sandboxes.backends.base import (
    GIB,
    MIB,
    ProxyEndpoint,
    Sandbox,
    SandboxBackend,
    SandboxError,
    SandboxSpec,
)
from incidentfox.sandboxes.models import SandboxSession
from incidentfox.sandboxes.store import SandboxStore

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 30.0
_ID, _WORKDIR, _CWD, _PROXY_URL, _CONFINED = (
    "ifx_id",
    "ifx_workdir",
    "ifx_cwd",
    "ifx_proxy_url",
    "ifx_confined",
)
_POD_PREFIX = "incidentfox-"


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """The team's ``sandbox.*`` settings that shape a session's sandbox."""

    backend: str = "local"
    ttl_s: int = 3600
    runtime_class: str | None = None


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Per-team bounds on SRE-agent sessions (issue 10, item 7)."""

    max_concurrent_per_team: int = 3
    """Sessions of one team working at the same time, across every worker process when they share Redis."""
    max_turns: int = 50
    """Messages a session answers before it ends."""
    wall_time_s: float = 15 * 60
    """How long one message may keep the agent busy."""
    max_agent_steps: int = 40
    """The CLI's own ``max_turns``: model calls within one message."""
    idle_client_s: float = 10 * 60
    """``close_idle`` stops a thread's CLI after this long without a message (its files stay)."""
    workdir_bytes: int = 2 * GIB
    tmp_bytes: int = 256 * MIB
    memory_bytes: int = 4 * GIB
    cpus: float = 1.0
    pids: int = 256


def proxy_endpoint(proxy_url: str) -> ProxyEndpoint:
    """Where sandboxes find a started ``ModelProxy`` (``unix:/path`` or ``http://host:port``)."""
    if proxy_url.startswith("unix:"):
        return ProxyEndpoint(unix_socket=Path(proxy_url.removeprefix("unix:")))
    host, _, port = proxy_url.removeprefix("http://").rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"the model proxy is not started (its url is {proxy_url!r})")
    return ProxyEndpoint(host=host, port=int(port))


def sandbox_spec(
    row: SandboxSession, settings: SandboxSettings, limits: SessionLimits, proxy: ProxyEndpoint | None
) -> SandboxSpec:
    return SandboxSpec(
        session_id=row.session_id,
        org_id=row.org_id,
        team_id=row.team_node_id,
        run_id=row.session_id,
        thread_key=row.thread_key,
        proxy=proxy,
        workdir_bytes=limits.workdir_bytes,
        tmp_bytes=limits.tmp_bytes,
        memory_bytes=limits.memory_bytes,
        cpus=limits.cpus,
        pids=limits.pids,
        runtime_class=settings.runtime_class,
    )


def sandbox_ref(sandbox: Sandbox) -> str:
    """The inventory's ``sandbox_ref``: ``namespace/pod`` for a pod, else the workdir path."""
    if "pod" in sandbox.details and "namespace" in sandbox.details:
        return f"{sandbox.details['namespace']}/{sandbox.details['pod']}"
    return sandbox.workdir


def stored_details(sandbox: Sandbox) -> dict[str, str]:
    ours = {_ID: sandbox.id, _WORKDIR: sandbox.workdir, _CWD: sandbox.cwd}
    ours[_CONFINED] = "1" if sandbox.confined else "0"
    if sandbox.proxy_url:
        ours[_PROXY_URL] = sandbox.proxy_url
    return {**sandbox.details, **ours}


def _sandbox_id(row: SandboxSession) -> str:
    details = row.sandbox_details or {}
    if details.get(_ID):
        return details[_ID]
    if "state_dir" in details:
        return Path(details["state_dir"]).name
    if "pod" in details:
        return details["pod"].removeprefix(_POD_PREFIX)
    return row.session_id


def sandbox_from_row(row: SandboxSession, spec: SandboxSpec) -> Sandbox:
    """The row's sandbox, rebuilt: enough for every backend's ``destroy``, and for ``exec``/``wrap``
    when ``spec`` is the one it was created with."""
    details = dict(row.sandbox_details or {})
    workdir = details.get(_WORKDIR) or row.sandbox_ref or ""
    at: datetime = row.last_active_at
    return Sandbox(
        id=_sandbox_id(row),
        backend=row.backend,
        workdir=workdir,
        cwd=details.get(_CWD) or workdir,
        created_at=row.created_at,
        last_active_at=at,
        labels={"org": row.org_id, "team": row.team_node_id, "session": row.session_id},
        spec=spec,
        proxy_url=details.get(_PROXY_URL),
        details={k: v for k, v in details.items() if not k.startswith("ifx_")},
        confined=details.get(_CONFINED, "1") == "1",
    )


async def still_works(backend: SandboxBackend, sandbox: Sandbox) -> bool:
    """Whether the handles still reach a live sandbox: a trivial command runs in it."""
    if not sandbox.details:
        return False
    try:
        done = await backend.exec(sandbox, ["true"], timeout_s=PROBE_TIMEOUT_S)
    except (SandboxError, OSError, KeyError, ValueError) as exc:
        log.info(
            "sandbox session: stored sandbox unusable sandbox=%s error=%s", sandbox.id, type(exc).__name__
        )
        return False
    return done.exit_code == 0 and not done.timed_out


async def attach_first_sandbox(store: SandboxStore, session_id: str, sandbox: Sandbox) -> None:
    """Record the first sandbox of a session opened without one."""
    await store.attach(
        session_id, backend=sandbox.backend, sandbox_ref=sandbox_ref(sandbox), details=stored_details(sandbox)
    )
