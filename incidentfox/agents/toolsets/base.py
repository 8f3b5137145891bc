"""Declarative toolsets: the unit in which integrations are given to agents.

A toolset is one module that declares a ``Toolset``: its name, what it is for, the config keys it
needs, instructions for the model and its tools. Every tool returns a ``ToolResult``. How much of a
result a model may see and how secrets are scrubbed is policy applied in one place (the function-tool
adapter), never inside individual tools.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

ToolStatus = Literal["ok", "error", "no_data", "approval_required"]


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What every tool returns.

    ``data`` is JSON-serialisable; ``error`` is a plain-words reason when ``status`` is ``error``;
    ``url`` links to the source (a dashboard, a PR); ``invocation`` records what was asked, e.g.
    ``kubectl logs -n prod checkout-7d9 --previous``.
    """

    status: ToolStatus
    data: Any = None
    error: str | None = None
    url: str | None = None
    invocation: str = ""

    @classmethod
    def ok(cls, data: Any, *, invocation: str = "", url: str | None = None) -> ToolResult:
        return cls(status="ok", data=data, invocation=invocation, url=url)

    @classmethod
    def no_data(cls, reason: str, *, invocation: str = "") -> ToolResult:
        return cls(status="no_data", data=reason, invocation=invocation)

    @classmethod
    def failed(cls, error: str, *, invocation: str = "") -> ToolResult:
        return cls(status="error", error=error, invocation=invocation)


ToolFunction = Callable[[Any, BaseModel], Awaitable[ToolResult]]
"""``async def tool(toolset_client, params) -> ToolResult``; the first argument is what the toolset's
``connect`` returned for this run (an API client, for example)."""


@dataclass(frozen=True, slots=True)
class Tool:
    """One tool: a name the model calls, a description, a pydantic model of its parameters."""

    name: str
    description: str
    params: type[BaseModel]
    run: ToolFunction
    writes: bool = False
    """Write actions (restart, scale, comment) return ``approval_required`` until approved in Slack."""


@dataclass(frozen=True, slots=True)
class ToolsetHealth:
    """The outcome of a toolset's health check.

    ``configured`` is false when the team gives the toolset nothing to connect with (then nothing was
    checked). ``reason`` says in one plain sentence why an unhealthy toolset failed, with no secrets.
    """

    configured: bool
    healthy: bool = False
    reason: str = ""

    @classmethod
    def ok(cls) -> ToolsetHealth:
        return cls(configured=True, healthy=True)

    @classmethod
    def failing(cls, reason: str) -> ToolsetHealth:
        return cls(configured=True, healthy=False, reason=reason)


HealthCheck = Callable[[Mapping[str, Any]], Awaitable[ToolsetHealth]]
"""``async def check(effective_config) -> ToolsetHealth``: one cheap call that proves the toolset's
prerequisites hold (credentials accepted, endpoint reachable)."""


@dataclass(frozen=True, slots=True)
class Toolset:
    """A self-describing integration: name, purpose, prerequisites, model instructions and tools.

    ``prerequisites`` are dotted config keys (``integrations.kubernetes.enabled``); a toolset whose
    prerequisites are missing is not offered. ``connect`` builds the per-run client from the team's
    effective config and the installation settings.
    """

    name: str
    description: str
    instructions: str
    tools: tuple[Tool, ...]
    connect: Callable[[Mapping[str, Any]], Awaitable[Any]]
    prerequisites: tuple[str, ...] = field(default=())
    health_check: HealthCheck | None = None
    """Optional; ``None`` means the toolset cannot say whether it works before it is used."""

    def missing_prerequisites(self, config: Mapping[str, Any]) -> list[str]:
        """The dotted keys this toolset needs that ``config`` lacks."""
        return [key for key in self.prerequisites if lookup_dotted(config, key) is None]


def lookup_dotted(config: Mapping[str, Any], dotted: str) -> Any:
    """``lookup_dotted({"a": {"b": 1}}, "a.b") == 1``; ``None`` when any segment is missing."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
