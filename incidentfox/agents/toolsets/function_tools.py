"""The adapter from a declarative ``Toolset`` to openai-agents ``FunctionTool`` objects.

This is where tool policy is applied, once for every toolset:

1. arguments are validated against the tool's params model; bad arguments become an error result
   the model can read and correct, never an exception;
2. ``ToolStart``/``ToolEnd`` progress events are emitted through the run's ``InvestigationContext``
   (calls made inside sub-agents are visible too);
3. write tools go through the run's approval gate (``context.approvals``): the exact action is shown
   in Slack with Approve and Deny, and the tool runs once if approved, or tells the model why not;
4. the toolset's client is connected once per run and cached in ``context.clients``;
5. the result is scrubbed of secrets (patterns, high-entropy tokens and the team's own secret
   values); how many were scrubbed is added to the call's ``ToolEnd`` summary;
6. the result is fitted to the output budget: for the agents' function tools an over-budget result
   is kept whole in the run's scratch space and summarised (``spill``; see ``output_budget``),
   elsewhere its head is shown with an instruction to narrow the query;
7. for the agents' function tools, a call repeating an earlier call of the run (same tool, same
   canonical arguments) is answered from the run's memory and marked ``repeat_of`` (``dedupe``;
   see ``call_memory``);
8. every call is counted by toolset, tool and result status, and the tool's own run time (its client's
   connection included, a wait for approval not) is observed per toolset (``PROCESS_METRICS``).
"""

from __future__ import annotations

import asyncio
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
from incidentfox.agents.output_budget import OutputBudget, apply_budget, serialize_result, spill_summary
from incidentfox.agents.output_shape import mentions, result_lines, size_in_bytes
from incidentfox.agents.redaction import (
    scrub_json,
    scrub_json_counted,
    scrub_text,
    scrub_text_counted,
    secret_values,
)
from incidentfox.agents.run_budgets import tool_budget_spent
from incidentfox.agents.scratch_outputs import CachedCall
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.call_memory import call_key, repeat_marker, worth_remembering
from incidentfox.observability.metrics import PROCESS_METRICS

log = logging.getLogger(__name__)
_SUMMARY_CHARS = 140


async def close_clients(context: InvestigationContext) -> None:
    """Release the per-run toolset clients (connection pools) and the run's scratch space once the
    investigation is over."""
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
    context.scratch.clear()


def scrub_result(result: ToolResult, known_values: list[str]) -> ToolResult:
    """A copy of ``result`` with secrets removed from every field a model or a human will read."""
    return scrub_result_counted(result, known_values)[0]


def scrub_result_counted(result: ToolResult, known_values: list[str]) -> tuple[ToolResult, int]:
    """``scrub_result`` and how many secrets it replaced. ``call_tool`` runs it in a worker thread: a
    5 MB result takes a few hundred milliseconds, which the event loop's other runs should not wait."""
    data, in_data = scrub_json_counted(result.data, known_values)
    error, in_error = scrub_text_counted(result.error, known_values) if result.error else (None, 0)
    url, in_url = scrub_text_counted(result.url, known_values) if result.url else (None, 0)
    invocation, in_invocation = scrub_text_counted(result.invocation, known_values)
    scrubbed = ToolResult(status=result.status, data=data, error=error, url=url, invocation=invocation)
    return scrubbed, in_data + in_error + in_url + in_invocation


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
    spill: bool = False,
    dedupe: bool = False,
) -> str:
    """Run one tool call end to end and return exactly the text the model will see."""
    outcome = await call_tool(
        ctx, toolset, tool, raw_args, call_id=call_id, agent=agent, budget=budget, spill=spill, dedupe=dedupe
    )
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
    spill: bool = False,
    dedupe: bool = False,
    client: Any = None,
) -> ToolCallOutcome:
    """``invoke_tool`` that also returns the scrubbed result (its status, for callers that report it).

    ``spill`` keeps an over-budget result in the run's scratch space and shows its summary (the caller
    offers ``search_output``/``read_output``); without it the result's head is shown. ``dedupe``
    answers a repeat of an earlier call of the run from memory. ``client``, when given, is used instead
    of connecting the toolset (the output tools read the run's scratch space).
    """
    scratch = ctx.scratch
    number = scratch.next_call()
    secrets = secret_values(ctx.config)
    args, params, invalid = _parse(tool, raw_args)
    ctx.emit(ToolStart(call_id=call_id, tool=tool.name, args=scrub_json(args, secrets), agent=agent))
    limit = (budget or OutputBudget.from_config(ctx.config)).limit_for(tool.name)
    key = call_key(toolset, tool, params) if dedupe and params is not None and not tool.writes else None
    earlier = scratch.answered.get(key) if key is not None else None
    if earlier is not None:
        return await _repeat(
            ctx, toolset.name, tool.name, earlier, limit, spill=spill, call_id=call_id, agent=agent
        )
    if params is None:
        result = ToolResult.failed(invalid or "invalid arguments")
    elif scratch.max_calls is not None and number > scratch.max_calls:
        result = ToolResult.failed(tool_budget_spent(scratch.max_calls))
    elif tool.writes:
        scratch.answered.clear()
        request = action_request(toolset, tool, params, scrub_json(args, secrets), secrets)
        result = await _run_when_approved(ctx, request, lambda: _run(ctx, toolset, tool, params, client))
    else:
        result = await _run(ctx, toolset, tool, params, client)
    result, scrubbed = await asyncio.to_thread(scrub_result_counted, result, secrets)
    scratch.secrets_scrubbed += scrubbed
    PROCESS_METRICS.tool_call(toolset.name, tool.name, result.status)
    text, ref = await _fitted(ctx, tool.name, result, limit, spill=spill)
    summary = summarize(result) + (f" · kept as {ref}" if ref else "")
    if key is not None and worth_remembering(result):
        scratch.answered[key] = CachedCall(number, result, ref, summary)
    if scrubbed:
        summary += f" · {scrubbed} secret{'s' if scrubbed != 1 else ''} scrubbed from the output"
    ctx.emit(ToolEnd(call_id=call_id, tool=tool.name, status=result.status, summary=summary, agent=agent))
    return ToolCallOutcome(result, text)


async def _repeat(
    ctx: InvestigationContext,
    toolset: str,
    tool: str,
    earlier: CachedCall,
    limit: int,
    *,
    spill: bool,
    call_id: str,
    agent: str,
) -> ToolCallOutcome:
    """Answer a repeated call with the earlier call's result, marked ``repeat_of``; nothing runs."""
    PROCESS_METRICS.tool_call(toolset, tool, earlier.result.status)
    extra = repeat_marker(earlier.call, tool)
    text, _ = await _fitted(ctx, tool, earlier.result, limit, spill=spill, extra=extra, ref=earlier.ref)
    summary = f"{earlier.summary} · repeat of call {earlier.call}, from the run's memory"
    ctx.emit(ToolEnd(call_id=call_id, tool=tool, status=earlier.result.status, summary=summary, agent=agent))
    return ToolCallOutcome(earlier.result, text)


async def _fitted(
    ctx: InvestigationContext,
    tool: str,
    result: ToolResult,
    limit: int,
    *,
    spill: bool,
    extra: dict[str, Any] | None = None,
    ref: str | None = None,
) -> tuple[str, str | None]:
    """The text the model sees and, when the result was over budget and kept, its ref.

    A repeat passes its first answer's ``ref``: the kept output is reused while it is still there.
    """
    text = serialize_result(result, extra)
    if len(text) <= limit:
        return text, None
    if not spill:
        return apply_budget(text, limit, tool=tool), None
    outputs = ctx.scratch.outputs
    stored = outputs.find(ref) if ref else None
    if stored is None:
        lines, counted = await asyncio.to_thread(_lines_and_mentions, result)
        stored = outputs.keep(tool, lines, size_in_bytes(lines))
    else:
        lines, counted = stored.lines, None
    summary = spill_summary(
        result,
        lines,
        stored,
        tool=tool,
        total_chars=len(text),
        limit=limit,
        extra=extra,
        counted=counted,
        capacity_bytes=outputs.capacity_bytes,
    )
    return summary, stored.ref if stored is not None else None


def _lines_and_mentions(result: ToolResult) -> tuple[list[str], dict[str, int]]:
    lines = result_lines(result)
    return lines, mentions(lines)


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


async def _run(
    ctx: InvestigationContext, toolset: Toolset, tool: Tool, params: BaseModel, client: Any = None
) -> ToolResult:
    started = time.perf_counter()
    try:
        return await _connected_run(ctx, toolset, tool, params, client)
    finally:
        PROCESS_METRICS.tool_seconds(toolset.name, time.perf_counter() - started)


async def _connected_run(
    ctx: InvestigationContext, toolset: Toolset, tool: Tool, params: BaseModel, client: Any = None
) -> ToolResult:
    if client is None:
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


def context_of(wrapper: RunContextWrapper[Any]) -> InvestigationContext:
    ctx = wrapper.context
    if not isinstance(ctx, InvestigationContext):
        raise TypeError("toolset function tools need an InvestigationContext as the run context")
    return ctx


def function_tool_for(
    toolset: Toolset, tool: Tool, *, agent: str, budget: OutputBudget | None = None, prefix: str = ""
) -> FunctionTool:
    """One openai-agents ``FunctionTool`` with a strict JSON schema from the tool's params model; its
    over-budget results are kept in the run's scratch space, its repeats answered from memory."""

    async def on_invoke(wrapper: ToolContext[Any], raw_args: str) -> str:
        return await invoke_tool(
            context_of(wrapper),
            toolset,
            tool,
            raw_args,
            call_id=wrapper.tool_call_id,
            agent=agent,
            budget=budget,
            spill=True,
            dedupe=True,
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
