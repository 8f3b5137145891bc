"""Sandbox backends behind one interface (``base.SandboxBackend``): ``local`` (bubblewrap),
``kubernetes`` (a hardened pod) and ``unsafe-local`` (no confinement, opt-in only).

The backend modules are imported where they are chosen, so that ``kubernetes`` is only loaded by
installations that use it.
"""

from incidentfox.sandboxes.backends.base import (
    ExecResult,
    LaunchCommand,
    ProxyEndpoint,
    Sandbox,
    SandboxBackend,
    SandboxError,
    SandboxLimitExceeded,
    SandboxSpec,
    SandboxUnavailable,
)

__all__ = [
    "ExecResult",
    "LaunchCommand",
    "ProxyEndpoint",
    "Sandbox",
    "SandboxBackend",
    "SandboxError",
    "SandboxLimitExceeded",
    "SandboxSpec",
    "SandboxUnavailable",
]
