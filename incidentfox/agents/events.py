"""Typed progress events: the closed set that flows from the run engine to the renderers.

The agent runner maps SDK stream events onto these; `blocks/` renders a run's list of events;
the run store persists them as JSON (``event_to_dict`` / ``event_from_dict``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from incidentfox.agents.rca import RootCauseAnalysis

EventKind = Literal[
    "started",
    "thought",
    "tool_start",
    "tool_end",
    "subagent_start",
    "subagent_end",
    "first_finding",
    "question",
    "approval_request",
    "approval_decided",
    "interrupted",
    "resumed",
    "result",
    "error",
]


def _now() -> float:
    return time.time()


@dataclass(frozen=True, slots=True)
class Started:
    """The run began; ``summary`` is the user's ask as the agent understood it."""

    summary: str
    kind: Literal["started"] = "started"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class Thought:
    """A short piece of the agent's visible reasoning (not raw tokens)."""

    text: str
    agent: str = "planner"
    kind: Literal["thought"] = "thought"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class ToolStart:
    """A tool call began. ``call_id`` pairs it with its ``ToolEnd``."""

    call_id: str
    tool: str
    args: dict[str, Any]
    agent: str = "planner"
    kind: Literal["tool_start"] = "tool_start"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class ToolEnd:
    """A tool call finished with a ``ToolResult`` status (ok, error, no_data, approval_required)."""

    call_id: str
    tool: str
    status: str
    summary: str = ""
    agent: str = "planner"
    kind: Literal["tool_end"] = "tool_end"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class SubagentStart:
    """The planner delegated to a sub-agent (kubernetes, logs, metrics, github, incident-history)."""

    agent: str
    task: str = ""
    kind: Literal["subagent_start"] = "subagent_start"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class SubagentEnd:
    """A sub-agent returned to the planner."""

    agent: str
    summary: str = ""
    kind: Literal["subagent_end"] = "subagent_end"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class FirstFinding:
    """The deterministic checks' top finding, shown at the top of the live message while the model
    works: the affected ``resource``, its ``symptom``, and the decisive ``evidence`` line with its
    ``source`` (and ``url`` when the source has one). ``agent`` names the checks that found it."""

    resource: str
    symptom: str
    evidence: str = ""
    source: str = ""
    url: str | None = None
    agent: str = "kubernetes"
    kind: Literal["first_finding"] = "first_finding"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class SimilarIncidents:
    """The team's past incidents closest to this run's question, found in its knowledge base when the
    run starts: ``text`` is the Slack mrkdwn line ("Similar: <link|title> (👍 2 👎 0), …"), already
    escaped by ``knowledge.similar.similar_line``."""

    text: str
    kind: Literal["similar_incidents"] = "similar_incidents"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class Question:
    """The agent needs a human answer before it can go on."""

    text: str
    kind: Literal["question"] = "question"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A write action (restart, scale, comment) waits for an authorized Approve in Slack."""

    approval_id: str
    action: str
    target: str
    reason: str = ""
    kind: Literal["approval_request"] = "approval_request"
    at: float = field(default_factory=_now)


ApprovalOutcome = Literal["approved", "denied", "expired", "cancelled"]


@dataclass(frozen=True, slots=True)
class ApprovalDecided:
    """An ``ApprovalRequest`` was settled: approved (and then run), denied, expired unanswered, or
    cancelled because the run stopped. ``by`` is the deciding Slack user id; ``outcome`` says in a few
    words what running the approved action did (or why it failed)."""

    approval_id: str
    decision: ApprovalOutcome
    by: str = ""
    outcome: str = ""
    kind: Literal["approval_decided"] = "approval_decided"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class Interrupted:
    """Someone pressed Interrupt; ``by`` is the Slack user id."""

    by: str
    kind: Literal["interrupted"] = "interrupted"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class Resumed:
    """Someone pressed Resume."""

    by: str
    kind: Literal["resumed"] = "resumed"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class Result:
    """The run ended with a root-cause analysis."""

    rca: RootCauseAnalysis
    kind: Literal["result"] = "result"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class Answer:
    """The run ended with the SRE agent's own answer (not an RCA), as shown in the thread."""

    text: str
    kind: Literal["answer"] = "answer"
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class Error:
    """The run ended in failure. ``message`` is plain words for humans; never a stack trace."""

    message: str
    kind: Literal["error"] = "error"
    at: float = field(default_factory=_now)


ProgressEvent = (
    Started
    | Thought
    | ToolStart
    | ToolEnd
    | SubagentStart
    | SubagentEnd
    | FirstFinding
    | SimilarIncidents
    | Question
    | ApprovalRequest
    | ApprovalDecided
    | Interrupted
    | Resumed
    | Result
    | Answer
    | Error
)

_BY_KIND: dict[str, type[Any]] = {
    "started": Started,
    "thought": Thought,
    "tool_start": ToolStart,
    "tool_end": ToolEnd,
    "subagent_start": SubagentStart,
    "subagent_end": SubagentEnd,
    "first_finding": FirstFinding,
    "similar_incidents": SimilarIncidents,
    "question": Question,
    "approval_request": ApprovalRequest,
    "approval_decided": ApprovalDecided,
    "interrupted": Interrupted,
    "resumed": Resumed,
    "result": Result,
    "answer": Answer,
    "error": Error,
}

TERMINAL_KINDS: frozenset[str] = frozenset({"result", "answer", "error"})


def event_to_dict(event: ProgressEvent) -> dict[str, Any]:
    """A JSON-safe dict for persisting an event."""
    return dataclasses.asdict(event)


def event_from_dict(data: dict[str, Any]) -> ProgressEvent:
    """Rebuild an event persisted with ``event_to_dict``; raises ``ValueError`` on an unknown kind."""
    kind = data.get("kind")
    cls = _BY_KIND.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown progress event kind: {kind!r}")
    fields = {k: v for k, v in data.items() if k != "kind"}
    if cls is Result:
        fields["rca"] = RootCauseAnalysis.from_dict(fields["rca"])
    event: ProgressEvent = cls(**fields)
    return event
