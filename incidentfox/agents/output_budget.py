"""The output budget: how much of a tool's result a model may see, decided in one place.

A result is serialised to compact JSON. When it is longer than the tool's budget:

* for the planner and its sub-agents (``spill_summary``), the whole result, scrubbed, is kept in the
  run's scratch space (``scratch_outputs``) and the model gets a summary that fits the budget: the
  ref, the size, the shape, the first and last lines, how many lines mention errors or warnings, and
  how to use ``search_output``/``read_output`` on it or ask a narrower question;
* elsewhere (``apply_budget``: the SRE agent's team tools, which have no scratch space), the head is
  kept (cut at a line boundary where one is near) and an instruction is appended telling the model
  how much it missed and how to ask a narrower question.

Nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incidentfox.agents.output_shape import clip, describe, mentions, size_in_bytes
from incidentfox.agents.scratch_outputs import SCRATCH_CAPACITY_BYTES, StoredOutput, human_size
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
    "cluster_events": "pass a since window (e.g. 30m), types=[Warning] or a smaller limit",
    "resource_usage": "pass a pod_selector (e.g. app=checkout)",
    "hpa_status": "pass a namespace or a single HPA name",
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


def serialize_result(result: ToolResult, extra: Mapping[str, Any] | None = None) -> str:
    """The model-facing text of a result: compact JSON without empty fields, ``extra`` fields first."""
    body: dict[str, Any] = {**(extra or {}), "status": result.status}
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


_SUMMARY_STEPS: tuple[tuple[int, int, int], ...] = (
    (20, 200, 400),
    (20, 120, 200),
    (10, 120, 200),
    (5, 100, 120),
    (2, 80, 80),
    (0, 0, 0),
)
"""(first and last lines shown, characters per line, characters of the sample item), tried in turn
until the summary fits the budget."""
_ERROR_CHARS = 300


def spill_summary(
    result: ToolResult,
    lines: list[str],
    stored: StoredOutput | None,
    *,
    tool: str,
    total_chars: int,
    limit: int,
    extra: Mapping[str, Any] | None = None,
    counted: Mapping[str, int] | None = None,
    capacity_bytes: int = SCRATCH_CAPACITY_BYTES,
) -> str:
    """What the model sees instead of an over-budget result (``lines`` as kept under ``stored``).

    As much as fits in ``limit``: the first and last lines shrink, then go, before the ref and the
    instructions; only when ``limit`` is smaller than those alone is it exceeded. ``counted`` is
    ``mentions(lines)`` when the caller has it already.
    """
    base: dict[str, Any] = {**(extra or {}), "status": result.status}
    if result.error:
        base["error"] = clip(result.error, _ERROR_CHARS)
    if stored is not None:
        base["kept_as"] = stored.ref
    base["note"] = _spill_note(tool, lines, stored, total_chars, limit, capacity_bytes)
    base["size"] = _size(result, lines, stored)
    tail_fields = {k: v for k, v in (("invocation", result.invocation), ("url", result.url)) if v}
    counted = mentions(lines) if counted is None else counted
    text = ""
    for shown, width, sample in _SUMMARY_STEPS:
        body = dict(base)
        body["shape"] = describe(result.data, sample_chars=sample)
        if counted:
            body["lines_mentioning"] = counted
        if shown:
            body["first_lines"] = [f"{i}: {clip(line, width)}" for i, line in enumerate(lines[:shown])]
            start = max(shown, len(lines) - shown)
            body["last_lines"] = [f"{i}: {clip(lines[i], width)}" for i in range(start, len(lines))]
        text = _json({**body, **tail_fields})
        if len(text) <= limit:
            return text
    base["note"] = _spill_note(tool, lines, stored, total_chars, limit, capacity_bytes, short=True)
    for body in ({**base, **tail_fields}, base):
        text = _json(body)
        if len(text) <= limit:
            break
    return text


def _json(body: Mapping[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, default=str, separators=(",", ":"))


def _size(result: ToolResult, lines: list[str], stored: StoredOutput | None) -> dict[str, Any]:
    size: dict[str, Any] = {"lines": len(lines)}
    size["bytes"] = stored.size_bytes if stored is not None else size_in_bytes(lines)
    items = result.data if isinstance(result.data, list | tuple) else None
    if items is not None:
        size["items"] = len(items)
    return size


def _spill_note(
    tool: str,
    lines: list[str],
    stored: StoredOutput | None,
    total_chars: int,
    limit: int,
    capacity_bytes: int,
    *,
    short: bool = False,
) -> str:
    hint = NARROWING_HINTS.get(tool, GENERIC_HINT)
    over = f"This {tool} result is {total_chars:,} characters, over its {limit:,}-character budget"
    if stored is None:
        return (
            f"{over} and larger than the {human_size(capacity_bytes)} an investigation can keep, "
            f"so only this summary of it exists. Ask a narrower question: {hint}."
        )
    ref = stored.ref
    if short:
        return (
            f"Over budget ({total_chars:,} > {limit:,} chars): kept as {ref} ({len(lines):,} lines). Use "
            f"search_output or read_output on {ref}, or narrow the query: {hint}."
        )
    return (
        f"{over}, so it was kept whole as {ref} ({len(lines):,} lines) instead of being shown. "
        f'Find lines with search_output(ref="{ref}", pattern=...) and page with read_output(ref="{ref}", '
        f"offset=..., limit=...); the numbers before the lines below are read_output offsets. "
        f"Or ask a narrower question: {hint}."
    )
