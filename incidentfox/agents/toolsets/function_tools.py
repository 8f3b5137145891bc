"""The adapter from a declarative ``Toolset`` to openai-agents ``FunctionTool`` objects.

This is where tool policy is applied, once for every toolset:

1. arguments are validated against the tool's params model; bad arguments become an error result
   the model can read and correct, never an exception;
2. ``ToolStart``/``ToolEnd`` progress events are emitted through the run's ``InvestigationContext``
   (calls made inside sub-agents are visible too);
3. write tools go through the run's approval gate (``context.approvals``): the exact action is shown
   in Slack with Approve and Deny, and the tool runs once if approved, or tells the model why not;
4. the toolset's client is connected once per run and cached in ``context.clients``;
5. the result is scrubbed of secrets (patterns plus the team's own secret values) and then fitted to
   the output budget;
6. every call is counted by toolset, tool and result status, and the tool's own run time (its client's
   connection included, a wait for approval not) is observed per toolset (``PROCESS_METRICS``).
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agents import FunctionTool, RunContextWrapper
from agents.strict_schema import ensure_strict_json_schema
from agents.tool_context import ToolContext
from pydantic import BaseModel, ValidationError

from incidentfox.agents.approvals.models import ActionDescription, ActionRequest, DescribesAction
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ToolEnd, ToolStart
from incidentfox.agents.output_budget import OutputBudget, apply_budget, serialize_result
from incidentfox.agents.redaction import scrub_json, scrub_text, secret_values
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.observability.metrics import PROCESS_METRICS

log = logging.getLogger(__name__)
_SUMMARY_CHARS = 140


async def close_clients(context: InvestigationContext) -> None:
    """Release the per-run toolset clients (connection pools) once the investigation is over."""
    for name, client in context.clients.items():
        close = getattr(client, "close", None)
        if callable(close):
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.warning("closing the %s client failed run_id=%s", name, context.run_id)
    context.clients.clear()


def scrub_result(result: ToolResult, known_values: list[str]) -> ToolResult:
    """A copy of ``result`` with secrets removed from every field a model or a human will read."""
    return ToolResult(
        status=result.status,
        data=scrub_json(result.data, known_values),
        error=scrub_text(result.error, known_values) if result.error else None,
        url=scrub_text(result.url, known_values) if result.url else None,
        invocation=scrub_text(result.invocation, known_values),
    )


def summarize(result: ToolResult) -> str:
    """A short line for the live progress message: ``3 items``, ``42 log lines``, or the error."""
    if result.status == "error":
        text = result.error or "failed"
    elif result.status == "no_data":
        text = str(result.data or "no data")
    elif result.status == "approval_required":
        text = "waiting for approval"
    elif isinstance(result.data, list):
        text = f"{len(result.data)} item{'s' if len(result.data) != 1 else ''}"
    elif isinstance(result.data, Mapping) and isinstance(result.data.get("lines"), int):
        text = f"{result.data['lines']} log lines"
    elif isinstance(result.data, Mapping) and isinstance(result.data.get("summary"), str):
        text = str(result.data["summary"])
    else:
        text = "ok"
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "…"


def _validation_message(tool: Tool, exc: ValidationError | ValueError) -> str:
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5]
        )
    else:
        problems = f"arguments are not valid JSON ({exc})"
    fields = ", ".join(tool.params.model_fields)
    return f"Invalid arguments for {tool.name}: {problems}. Expected fields: {fields}."


def _parse(tool: Tool, raw_args: str) -> tuple[dict[str, Any], BaseModel | None, str | None]:
    try:
        loaded = json.loads(raw_args or "{}")
        if not isinstance(loaded, dict):
            raise ValueError("expected a JSON object")
        return loaded, tool.params.model_validate(loaded), None
    except ValidationError as exc:
        return loaded, None, _validation_message(tool, exc)
    except ValueError as exc:
        return {"raw": raw_args[:200]}, None, _validation_message(tool, exc)


async def _client(ctx: InvestigationContext, toolset: Toolset) -> tuple[Any, str | None]:
    """The toolset's client for this run (connected once), or a plain-words reason it is unavailable."""
    if toolset.name in ctx.clients:
        return ctx.clients[toolset.name], None
    try:
        client = await toolset.connect(ctx.config)
    except Exception as exc:
        log.warning(
            "toolset_connect_failed run_id=%s toolset=%s error=%s",
            ctx.run_id,
            toolset.name,
            type(exc).__name__,
        )
        return None, f"The {toolset.name} integration is not available: {exc}"
    ctx.clients[toolset.name] = client
    return client, None


@dataclass(frozen=True, slots=True)
class ToolCallOutcome:
    """One finished tool call: its result scrubbed of secrets, and exactly the text the model sees."""

    result: ToolResult
    text: str


async def invoke_tool(
    ctx: InvestigationContext,
    toolset: Toolset,
    tool: Tool,
    raw_args: str,
    *,
    call_id: str,
    agent: str,
    budget: OutputBudget | None = None,
) -> str:
    """Run one tool call end to end and return exactly the text the model will see."""
    outcome = await call_tool(ctx, toolset, tool, raw_args, call_id=call_id, agent=agent, budget=budget)
    return outcome.text


async def call_tool(
    ctx: InvestigationContext,
    toolset: Toolset,
    tool: Tool,
    raw_args: str,
    *,
    call_id: str,
    agent: str,
    budget: OutputBudget | None = None,
) -> ToolCallOutcome:
    """``invoke_tool`` that also returns the scrubbed result (its status, for callers that report it)."""
    secrets = secret_values(ctx.config)
    args, params, invalid = _parse(tool, raw_args)
    ctx.emit(ToolStart(call_id=call_id, tool=tool.name, args=scrub_json(args, secrets), agent=agent))
    if params is None:
        result = ToolResult.failed(invalid or "invalid arguments")
    elif tool.writes:
        request = action_request(toolset, tool, params, scrub_json(args, secrets), secrets)
        result = await _run_when_approved(ctx, request, lambda: _run(ctx, toolset, tool, params))
    else:
        result = await _run(ctx, toolset, tool, params)
    result = scrub_result(result, secrets)
    PROCESS_METRICS.tool_call(toolset.name, tool.name, result.status)
    ctx.emit(
        ToolEnd(call_id=call_id, tool=tool.name, status=result.status, summary=summarize(result), agent=agent)
    )
    budget = budget or OutputBudget.from_config(ctx.config)
    text = apply_budget(serialize_result(result), budget.limit_for(tool.name), tool=tool.name)
    return ToolCallOutcome(result, text)


def action_request(
    toolset: Toolset, tool: Tool, params: BaseModel, args: dict[str, Any], secrets: list[str]
) -> ActionRequest:
    """What the approver is shown: the params' own description when they have one (``describe_action``),
    else the tool name, its arguments and their ``reason`` if any. Everything is scrubbed of secrets."""
    if isinstance(params, DescribesAction):
        described = params.describe_action()
    else:
        target = ", ".join(f"{key}={value}" for key, value in args.items() if key != "reason")
        reason = args.get("reason")
        described = ActionDescription(
            action=tool.name.replace("_", " "),
            target=target,
            reason=reason if isinstance(reason, str) else "",
        )
    description = ActionDescription(
        action=scrub_text(described.action, secrets),
        target=scrub_text(described.target, secrets),
        reason=scrub_text(described.reason, secrets),
    )
    return ActionRequest(toolset=toolset.name, tool=tool.name, description=description, args=args)


async def _run_when_approved(
    ctx: InvestigationContext, request: ActionRequest, action: Callable[[], Awaitable[ToolResult]]
) -> ToolResult:
    """The approval gate's answer; a gate that breaks (its database is down) means "not run", never a
    crashed run."""
    try:
        return await ctx.approvals.run_when_approved(request, action, deadline=ctx.deadline)
    except Exception:
        log.exception("approval gate failed run_id=%s tool=%s", ctx.run_id, request.tool)
        return ToolResult.failed(
            f"{request.tool} was not run: asking for approval failed inside IncidentFox. "
            "Mention in your answer that the action is still needed."
        )


async def _run(ctx: InvestigationContext, toolset: Toolset, tool: Tool, params: BaseModel) -> ToolResult:
    started = time.perf_counter()
    try:
        return await _connected_run(ctx, toolset, tool, params)
    finally:
        PROCESS_METRICS.tool_seconds(toolset.name, time.perf_counter() - started)


async def _connected_run(
    ctx: InvestigationContext, toolset: Toolset, tool: Tool, params: BaseModel
) -> ToolResult:
    client, unavailable = await _client(ctx, toolset)
    if unavailable:
        return ToolResult.failed(unavailable)
    try:
        return await tool.run(client, params)
    except Exception as exc:
        log.exception("tool_crashed run_id=%s tool=%s", ctx.run_id, tool.name)
        return ToolResult.failed(
            f"{tool.name} failed unexpectedly ({type(exc).__name__}); try again or another tool."
        )


def _context_of(wrapper: RunContextWrapper[Any]) -> InvestigationContext:
    ctx = wrapper.context
    if not isinstance(ctx, InvestigationContext):
        raise TypeError("toolset function tools need an InvestigationContext as the run context")
    return ctx


def function_tool_for(
    toolset: Toolset, tool: Tool, *, agent: str, budget: OutputBudget | None = None, prefix: str = ""
) -> FunctionTool:
    """One openai-agents ``FunctionTool`` with a strict JSON schema from the tool's params model."""

    async def on_invoke(wrapper: ToolContext[Any], raw_args: str) -> str:
        return await invoke_tool(
            _context_of(wrapper),
            toolset,
            tool,
            raw_args,
            call_id=wrapper.tool_call_id,
            agent=agent,
            budget=budget,
        )

    return FunctionTool(
        name=f"{prefix}{tool.name}",
        description=tool.description,
        params_json_schema=ensure_strict_json_schema(tool.params.model_json_schema()),
        on_invoke_tool=on_invoke,
        strict_json_schema=True,
    )


def toolset_function_tools(
    toolset: Toolset, *, agent: str, budget: OutputBudget | None = None, prefix: str = ""
) -> list[FunctionTool]:
    """Every tool of ``toolset`` as a ``FunctionTool`` for the agent named ``agent``."""
    return [
        function_tool_for(toolset, tool, agent=agent, budget=budget, prefix=prefix) for tool in toolset.tools
    ]
