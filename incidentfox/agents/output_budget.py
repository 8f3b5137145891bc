"""The output budget: how much of a tool's result a model may see, decided in one place.

A result is serialised to compact JSON. When it is longer than the tool's budget, the head is kept
(cut at a line boundary where one is near) and an instruction is appended telling the model how
much it missed and how to ask a narrower question. Nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incidentfox.agents.toolsets.base import ToolResult

DEFAULT_BUDGET_CHARS = 8_000
_MIN_HEAD_CHARS = 200

NARROWING_HINTS: dict[str, str] = {
    "list_pods": "pass a namespace or a label_selector (e.g. app=checkout)",
    "get_events": "pass a namespace, an involved_object, warnings_only=true or a smaller limit",
    "pod_logs": "pass a smaller tail_lines, a since_seconds window or a single container",
    "list_deployments": "pass a namespace or a label_selector",
    "services_and_endpoints": "pass a namespace or a single service name",
    "list_pvcs": "pass a namespace or a label_selector",
    "list_nodes": "pass a label_selector",
}
GENERIC_HINT = "narrow the query: a namespace, a label selector, a smaller tail_lines or a since window"


@dataclass(frozen=True, slots=True)
class OutputBudget:
    """Character budgets: ``default`` for every tool, ``per_tool`` overrides by tool name."""

    default: int = DEFAULT_BUDGET_CHARS
    per_tool: Mapping[str, int] = field(default_factory=dict)

    def limit_for(self, tool: str) -> int:
        return int(self.per_tool.get(tool, self.default))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OutputBudget:
        """Read ``agents.output_budget: {default: 8000, per_tool: {pod_logs: 12000}}`` if present."""
        agents = config.get("agents") if isinstance(config.get("agents"), Mapping) else {}
        raw = agents.get("output_budget") if isinstance(agents, Mapping) else None
        if not isinstance(raw, Mapping):
            return cls()
        per_tool = raw.get("per_tool") if isinstance(raw.get("per_tool"), Mapping) else {}
        return cls(
            default=_chars(raw.get("default"), DEFAULT_BUDGET_CHARS),
            per_tool={
                str(tool): _chars(limit, DEFAULT_BUDGET_CHARS) for tool, limit in (per_tool or {}).items()
            },
        )


def _chars(value: Any, fallback: int) -> int:
    """A positive character count from team config; anything else falls back instead of failing a run."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return fallback


def serialize_result(result: ToolResult) -> str:
    """The model-facing text of a result: compact JSON without empty fields."""
    body: dict[str, Any] = {"status": result.status}
    if result.error:
        body["error"] = result.error
    if result.data is not None:
        body["data"] = result.data
    if result.invocation:
        body["invocation"] = result.invocation
    if result.url:
        body["url"] = result.url
    return json.dumps(body, ensure_ascii=False, default=str, separators=(",", ":"))


def over_budget_notice(tool: str, shown: int, total: int) -> str:
    hint = NARROWING_HINTS.get(tool, GENERIC_HINT)
    return (
        f"\n[OUTPUT TRUNCATED: showing the first {shown} of {total} characters from {tool}. "
        f"Do not ask for the rest; ask a narrower question instead: {hint}.]"
    )


def apply_budget(text: str, limit: int, *, tool: str) -> str:
    """``text`` if it fits in ``limit`` characters, else its head plus the narrowing instruction.

    The returned string never exceeds ``limit`` unless ``limit`` is smaller than the notice itself.
    """
    if len(text) <= limit:
        return text
    notice_len = len(over_budget_notice(tool, limit, len(text)))
    room = max(limit - notice_len, _MIN_HEAD_CHARS)
    head = text[:room]
    newline = head.rfind("\n")
    if newline > room * 0.8:
        head = head[:newline]
    return head + over_budget_notice(tool, len(head), len(text))


def budget_result(result: ToolResult, *, tool: str, budget: OutputBudget | None = None) -> str:
    """Serialise and budget a result in one step (scrub first; see ``function_tools``)."""
    budget = budget or OutputBudget()
    return apply_budget(serialize_result(result), budget.limit_for(tool), tool=tool)
