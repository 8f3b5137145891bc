"""A run's events folded into human-readable steps, shared by the live message and the session modal.

A tool call is one step from its ``ToolStart`` until its ``ToolEnd`` (paired by ``call_id``); a
sub-agent delegation is one step from its ``SubagentStart`` until the matching ``SubagentEnd``.
Every step's text is safe mrkdwn: untrusted text is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from incidentfox.agents.events import (
    Answer,
    ApprovalDecided,
    ApprovalRequest,
    Error,
    Interrupted,
    ProgressEvent,
    Question,
    Result,
    Resumed,
    Started,
    SubagentEnd,
    SubagentStart,
    Thought,
    ToolEnd,
    ToolStart,
)
from incidentfox.blocks.approval import approval_text, decision_icon, decision_text
from incidentfox.blocks.components import code, user_ref
from incidentfox.blocks.limits import mrkdwn, one_line

RunState = Literal["running", "interrupted", "done", "failed"]

PLANNER = "planner"
RUNNING = "…"
TOOL_STATUS_ICONS = {"ok": "✓", "error": "✗", "no_data": "○", "approval_required": "🔐"}

_TOOL_LIMIT = 60
_ARGS_LIMIT = 100
_SUMMARY_LIMIT = 200
_TEXT_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Step:
    """One line of a timeline: when it began, a status icon and safe mrkdwn text."""

    at: float
    icon: str
    text: str
    nested: bool = False

    def line(self) -> str:
        prefix = "↳ " if self.nested else ""
        return f"{prefix}{self.icon} {self.text}"


def _args(args: dict[str, Any]) -> str:
    if not args:
        return ""
    rendered = ", ".join(f"{key}={value}" for key, value in args.items())
    return " " + mrkdwn(one_line(rendered), _ARGS_LIMIT)


def _tool_text(tool: str, args: dict[str, Any], status: str | None, summary: str) -> str:
    text = code(tool, _TOOL_LIMIT) + _args(args)
    if status == "no_data":
        text += " — no data"
    elif status == "approval_required":
        text += " — waiting for approval"
    if summary.strip():
        text += " — " + mrkdwn(one_line(summary), _SUMMARY_LIMIT)
    return text


def _agent_text(agent: str, detail: str) -> str:
    text = f"*{mrkdwn(one_line(agent), _TOOL_LIMIT)}* agent"
    if detail.strip():
        text += ": " + mrkdwn(one_line(detail), _SUMMARY_LIMIT)
    return text


class _Builder:
    """Accumulates steps while remembering which open step each tool call or sub-agent owns."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.calls: dict[str, tuple[int, dict[str, Any]]] = {}
        self.agents: dict[str, list[int]] = {}
        self.approvals: dict[str, tuple[int, ApprovalRequest]] = {}

    def add(self, step: Step) -> int:
        self.steps.append(step)
        return len(self.steps) - 1

    def tool_start(self, event: ToolStart) -> None:
        index = self.add(
            Step(event.at, RUNNING, _tool_text(event.tool, event.args, None, ""), event.agent != PLANNER)
        )
        self.calls[event.call_id] = (index, event.args)

    def tool_end(self, event: ToolEnd) -> None:
        icon = TOOL_STATUS_ICONS.get(event.status, "✗")
        opened = self.calls.pop(event.call_id, None)
        args = opened[1] if opened else {}
        text = _tool_text(event.tool, args, event.status, event.summary)
        if opened is None:
            self.add(Step(event.at, icon, text, event.agent != PLANNER))
        else:
            self.steps[opened[0]] = replace(self.steps[opened[0]], icon=icon, text=text)

    def approval_request(self, event: ApprovalRequest) -> None:
        index = self.add(Step(event.at, "🔐", "Approval requested: " + approval_text(event)))
        self.approvals[event.approval_id] = (index, event)

    def approval_decided(self, event: ApprovalDecided) -> None:
        """The request's step now reads how it ended (the request stays in the text)."""
        opened = self.approvals.get(event.approval_id)
        step = Step(event.at, decision_icon(event), decision_text(event, opened[1] if opened else None))
        if opened is None:
            self.add(step)
        else:
            self.steps[opened[0]] = replace(step, at=self.steps[opened[0]].at)

    def subagent_start(self, event: SubagentStart) -> None:
        index = self.add(Step(event.at, RUNNING, "🤖 " + _agent_text(event.agent, event.task)))
        self.agents.setdefault(event.agent, []).append(index)

    def subagent_end(self, event: SubagentEnd) -> None:
        open_steps = self.agents.get(event.agent)
        text = "🤖 " + _agent_text(event.agent, event.summary)
        if open_steps:
            index = open_steps.pop()
            if not event.summary.strip():
                text = self.steps[index].text
            self.steps[index] = replace(self.steps[index], icon="✓", text=text)
        else:
            self.add(Step(event.at, "✓", text))


def build_steps(events: Sequence[ProgressEvent]) -> list[Step]:
    """The timeline of ``events`` in order; ``Started`` is the run's header, not a step."""
    builder = _Builder()
    for event in events:
        match event:
            case Started():
                pass
            case Thought(text=text):
                builder.add(Step(event.at, "💭", mrkdwn(one_line(text), _TEXT_LIMIT), event.agent != PLANNER))
            case ToolStart():
                builder.tool_start(event)
            case ToolEnd():
                builder.tool_end(event)
            case SubagentStart():
                builder.subagent_start(event)
            case SubagentEnd():
                builder.subagent_end(event)
            case Question(text=text):
                builder.add(Step(event.at, "❓", "Asked: " + mrkdwn(one_line(text), _TEXT_LIMIT)))
            case ApprovalRequest():
                builder.approval_request(event)
            case ApprovalDecided():
                builder.approval_decided(event)
            case Interrupted(by=by):
                builder.add(Step(event.at, "⏸️", f"Interrupted by {user_ref(by)}"))
            case Resumed(by=by):
                builder.add(Step(event.at, "▶️", f"Resumed by {user_ref(by)}"))
            case Result(rca=rca):
                builder.add(
                    Step(event.at, "🏁", "Root cause found: " + mrkdwn(one_line(rca.summary), _TEXT_LIMIT))
                )
            case Answer(text=text):
                builder.add(Step(event.at, "🏁", "Answered: " + mrkdwn(one_line(text), _TEXT_LIMIT)))
            case Error(message=message):
                builder.add(Step(event.at, "✗", "Failed: " + mrkdwn(one_line(message), _TEXT_LIMIT)))
    return builder.steps


def started(events: Sequence[ProgressEvent]) -> Started | None:
    """The run's ``Started`` event, if it has one."""
    return next((e for e in events if isinstance(e, Started)), None)


def run_seconds(events: Sequence[ProgressEvent], now: float | None) -> float:
    """Seconds from the first event to ``now`` (default: the last event), so rendering stays pure."""
    if not events:
        return 0.0
    end = now if now is not None else events[-1].at
    return end - events[0].at


def derive_state(events: Sequence[ProgressEvent]) -> RunState:
    """The run's state as its events tell it: the last terminal event, else the last interrupt/resume."""
    for event in reversed(events):
        if isinstance(event, Result | Answer):
            return "done"
        if isinstance(event, Error):
            return "failed"
    for event in reversed(events):
        if isinstance(event, Interrupted):
            return "interrupted"
        if isinstance(event, Resumed):
            return "running"
    return "running"
