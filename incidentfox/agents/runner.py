"""Run one investigation with the planner and turn the SDK's stream into progress events.

Event mapping (``context.emit``), in order:

* ``Started`` first, always.
* The planner's message text that precedes its tool calls (``"Let me check the pods."``) becomes a
  ``Thought``. The planner's last message is its answer (the structured RCA), so a message becomes a
  thought only once a tool call follows it; no token-level events are emitted.
* The planner calling a sub-agent tool (``ToolOrigin.AGENT_AS_TOOL``) becomes ``SubagentStart`` with
  the task; the tool's output becomes ``SubagentEnd`` with a short summary.
* **Rule:** calls to ordinary function tools are *not* emitted here. The function-tool adapter emits
  ``ToolStart``/``ToolEnd`` itself through ``ctx.context.emit``, which is the only way calls made
  inside sub-agents (whose runs are not streamed to us) become visible; emitting them here too would
  duplicate the planner's own calls.
* Every model-written text in an event (thoughts, tasks, summaries, the RCA) is passed through
  ``redaction.scrub_text`` with the team's secret values first: events end up in Slack and the DB.
* ``Result(rca)`` or ``Error(message)`` last. ``message`` is plain words for the user: no stack trace,
  no exception repr, no secret. The details go to the log with the run id.

Ordering: the SDK streams a tool-call item before it executes the tool, and a sub-agent must call
the model (real I/O) before any of its tools run, so ``SubagentStart`` always precedes the
adapter's ``ToolStart`` events from inside that sub-agent.

Cancellation (``asyncio.CancelledError``) is not an outcome: the SDK run is stopped and the
cancellation propagates; the worker decides what to tell the user.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import openai
from agents import (
    Agent,
    AgentsException,
    MaxTurnsExceeded,
    ModelBehaviorError,
    RunConfig,
    Runner,
    TResponseInputItem,
)
from agents.items import ItemHelpers, MessageOutputItem, ToolCallItem, ToolCallOutputItem
from agents.result import RunResultStreaming
from agents.stream_events import RunItemStreamEvent, StreamEvent
from agents.tool import ToolOriginType
from agents.usage import Usage

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Error, Result, Started, SubagentEnd, SubagentStart, Thought
from incidentfox.agents.planner import RcaOutput
from incidentfox.agents.rca import RootCauseAnalysis
from incidentfox.agents.redaction import scrub_json, scrub_rca, scrub_text, secret_values

logger = logging.getLogger(__name__)

THOUGHT_MAX_CHARS = 280
SUMMARY_MAX_CHARS = 300


@dataclass(frozen=True, slots=True)
class RunUsage:
    """Model usage over the whole run, sub-agents included."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended. Exactly one of ``rca`` and ``error`` is set.

    ``history`` is the thread's conversation to persist for follow-ups. After a failure it is the
    earlier history plus the question only: a half-finished turn (a tool call without its output)
    would make the next request invalid.
    """

    rca: RootCauseAnalysis | None
    error: str | None
    history: list[TResponseInputItem]
    usage: RunUsage
    duration_s: float


async def run_investigation(
    *,
    planner: Agent[InvestigationContext],
    context: InvestigationContext,
    question: str,
    history: Sequence[TResponseInputItem] | Sequence[dict[str, Any]],
    timeout_s: float,
    max_turns: int,
    tracing: bool = False,
    announce: bool = True,
) -> RunOutcome:
    """Run the planner on ``question`` after ``history``, emitting progress events as it goes.

    ``history`` is a previous outcome's ``history``, as persisted (plain JSON dicts are accepted).
    ``announce=False`` skips the ``Started`` event, for callers that emitted it before earlier steps.
    """
    started = time.monotonic()
    mapper = _EventMapper(context)
    question = mapper.clean_json(question)
    earlier = cast(Sequence[TResponseInputItem], mapper.clean_json(list(history)))
    base_input: list[TResponseInputItem] = [*earlier, {"role": "user", "content": question}]
    if announce:
        context.emit(Started(summary=mapper.clean(question, SUMMARY_MAX_CHARS)))
    deadline = asyncio.timeout(timeout_s)
    context.deadline = deadline
    result: RunResultStreaming | None = None
    try:
        result = Runner.run_streamed(
            planner,
            base_input,
            context=context,
            max_turns=max_turns,
            run_config=RunConfig(tracing_disabled=not tracing, workflow_name="incidentfox investigation"),
        )
        async with deadline:
            async for event in result.stream_events():
                mapper.handle(event)
        rca = mapper.clean_rca(_to_rca(result.final_output))
    except asyncio.CancelledError:
        if result is not None:
            result.cancel()
        raise
    except Exception as exc:
        if result is not None:
            result.cancel()
        failure: BaseException = _RunTimedOut() if deadline.expired() else exc
        message = describe_failure(failure, timeout_s=timeout_s, max_turns=max_turns, run_id=context.run_id)
        _log_failure(context, exc)
        context.emit(Error(message=message))
        return RunOutcome(None, message, base_input, _usage(result), time.monotonic() - started)
    context.emit(Result(rca=rca))
    return RunOutcome(rca, None, result.to_input_list(), _usage(result), time.monotonic() - started)


class _NoAnalysis(Exception):
    """The planner finished without a root-cause analysis (e.g. an agent without ``output_type``)."""


class _RunTimedOut(Exception):
    """The run's own deadline passed (as opposed to a ``TimeoutError`` raised by some tool)."""


def describe_failure(exc: BaseException, *, timeout_s: float, max_turns: int, run_id: str) -> str:
    """Plain words for a failed run. Never the exception text: it can quote endpoint responses."""
    if isinstance(exc, _RunTimedOut):
        return f"The investigation took longer than {timeout_s:g} s and was stopped."
    if isinstance(exc, openai.APIStatusError):
        where = _endpoint(exc.request)
        if exc.status_code in (401, 403):
            return (
                f"The model endpoint at {where} rejected the API key (HTTP {exc.status_code}). "
                "Check the model settings for this team."
            )
        if exc.status_code == 429:
            return (
                f"The model endpoint at {where} is rate limiting us (HTTP 429). Try again in a few minutes."
            )
        return f"The model endpoint at {where} returned HTTP {exc.status_code}. Try again shortly."
    if isinstance(exc, openai.APITimeoutError):
        return f"The model endpoint at {_endpoint(exc.request)} did not answer in time."
    if isinstance(exc, openai.APIConnectionError):
        return f"Could not reach the model endpoint at {_endpoint(exc.request)}. Check that it is running."
    if isinstance(exc, json.JSONDecodeError):
        return (
            "The model endpoint sent a response that is not valid JSON. Check that it is OpenAI-compatible."
        )
    if isinstance(exc, MaxTurnsExceeded):
        return f"The investigation used all {max_turns} turns without reaching a conclusion."
    if isinstance(exc, ModelBehaviorError | _NoAnalysis):
        return (
            "The model's answer could not be read as a root-cause analysis. "
            "Try again; if it keeps happening, check which model this team uses."
        )
    if isinstance(exc, AgentsException):
        return f"The agent stopped unexpectedly ({type(exc).__name__}). Details are logged for run {run_id}."
    return (
        f"The investigation failed unexpectedly ({type(exc).__name__}). Details are logged for run {run_id}."
    )


class _EventMapper:
    """Turns SDK stream events into progress events; see the module docstring for the rules."""

    def __init__(self, context: InvestigationContext) -> None:
        self._context = context
        self._secrets = secret_values(context.config)
        self._pending_thought: str | None = None
        self._subagent_calls: dict[str, str] = {}

    def clean(self, text: str, limit: int) -> str:
        """Scrubbed of secrets, then shortened (scrubbing first, so a cut never exposes half a secret)."""
        return _shorten(scrub_text(text, self._secrets), limit)

    def clean_json(self, value: Any) -> Any:
        """A conversation (or any JSON) with every string scrubbed, before it is sent to the model."""
        return scrub_json(value, self._secrets)

    def clean_rca(self, rca: RootCauseAnalysis) -> RootCauseAnalysis:
        return scrub_rca(rca, self._secrets)

    def handle(self, event: StreamEvent) -> None:
        if not isinstance(event, RunItemStreamEvent):
            return
        item = event.item
        if isinstance(item, MessageOutputItem):
            text = ItemHelpers.text_message_output(item).strip()
            self._pending_thought = text or None
        elif isinstance(item, ToolCallItem):
            self._flush_thought()
            self._on_tool_called(item)
        elif isinstance(item, ToolCallOutputItem):
            self._on_tool_output(item)

    def _flush_thought(self) -> None:
        if self._pending_thought:
            self._context.emit(Thought(text=self.clean(self._pending_thought, THOUGHT_MAX_CHARS)))
        self._pending_thought = None

    def _on_tool_called(self, item: ToolCallItem) -> None:
        origin = item.tool_origin
        if origin is None or origin.type != ToolOriginType.AGENT_AS_TOOL:
            return
        agent = origin.agent_name or origin.agent_tool_name or "sub-agent"
        call_id = _field(item.raw_item, "call_id")
        if call_id:
            self._subagent_calls[call_id] = agent
        task = _task_from_arguments(_field(item.raw_item, "arguments"))
        self._context.emit(SubagentStart(agent=agent, task=self.clean(task, SUMMARY_MAX_CHARS)))

    def _on_tool_output(self, item: ToolCallOutputItem) -> None:
        agent = self._subagent_calls.pop(_field(item.raw_item, "call_id"), None)
        if agent is None:
            return
        output = item.output if isinstance(item.output, str) else json.dumps(item.output, default=str)
        self._context.emit(SubagentEnd(agent=agent, summary=self.clean(output, SUMMARY_MAX_CHARS)))


def _to_rca(output: Any) -> RootCauseAnalysis:
    if isinstance(output, RcaOutput):
        return output.to_rca()
    if isinstance(output, RootCauseAnalysis):
        return output
    raise _NoAnalysis(f"final output was {type(output).__name__}")


def _field(raw: Any, name: str) -> str:
    value = raw.get(name) if isinstance(raw, Mapping) else getattr(raw, name, None)
    return value if isinstance(value, str) else ""


def _task_from_arguments(arguments: str) -> str:
    """``as_tool`` takes ``{"input": "<task>"}``; anything else is shown as given."""
    try:
        parsed = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get("input"), str):
        return str(parsed["input"])
    return arguments


def _shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a sentence or word boundary when one is near."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    for boundary in (". ", " "):
        at = cut.rfind(boundary)
        if at >= limit // 2:
            return cut[: at + 1].rstrip() + "…"
    return cut + "…"


def _endpoint(request: Any) -> str:
    """``scheme://host:port/path`` of a request, without credentials or query string."""
    try:
        parts = urlsplit(str(request.url))
    except (AttributeError, RuntimeError):
        return "the configured address"
    host = parts.hostname or "unknown host"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _usage(result: RunResultStreaming | None) -> RunUsage:
    if result is None:
        return RunUsage()
    usage: Usage = result.context_wrapper.usage
    return RunUsage(
        requests=usage.requests,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
    )


def _log_failure(context: InvestigationContext, exc: BaseException) -> None:
    """Structured failure log. Model API errors are logged without their text, which quotes the
    endpoint's response body (an endpoint may echo what it was sent); anything else gets a traceback."""
    fields = (context.run_id, context.org_id, context.team_node_id, type(exc).__name__)
    if isinstance(exc, openai.APIError):
        status = getattr(exc, "status_code", None)
        request = getattr(exc, "request", None)
        logger.warning(
            "investigation failed run_id=%s org_id=%s team=%s error_type=%s status=%s endpoint=%s",
            *fields,
            status,
            _endpoint(request) if request is not None else "unknown",
        )
        return
    logger.warning("investigation failed run_id=%s org_id=%s team=%s error_type=%s", *fields, exc_info=exc)
