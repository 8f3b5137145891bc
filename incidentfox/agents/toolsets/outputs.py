"""``search_output`` and ``read_output``: how a model gets at an output kept in the run's scratch space.

An over-budget tool result is kept whole (scrubbed) under a ref such as ``out-3`` and the model sees a
summary (``output_budget.spill_summary``). These two tools search and page through what was kept.
They go through the same adapter as every toolset (``call_tool``: validation, progress events,
metrics), with the run's scratch space as their client, and their answers are built to fit the
output budget: they show as many lines as fit and say where to go on from.

Model-written patterns run in this process, so a pattern that nests repeats (``(a+)+``, which can take
exponential time on one line) is refused, and a search stops after ``SEARCH_SECONDS``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agents import FunctionTool
from agents import Tool as AgentTool
from agents.strict_schema import ensure_strict_json_schema
from agents.tool_context import ToolContext
from pydantic import BaseModel, Field

from incidentfox.agents.output_budget import OutputBudget, serialize_result
from incidentfox.agents.output_shape import clip, compact
from incidentfox.agents.scratch_outputs import OutputUnavailable, ScratchSpace
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.function_tools import call_tool, context_of

MAX_MATCHES = 200
MAX_CONTEXT_LINES = 10
MAX_READ_LINES = 1_000
SEARCH_SECONDS = 2.0
_WINDOW = 300
"""Characters of a long matching line shown around its first match."""


class SearchOutputParams(BaseModel):
    ref: str = Field(description="The ref of a kept output, e.g. out-3.")
    pattern: str = Field(
        description="A regular expression (Python syntax), e.g. 'OOMKilled|exit code 137'. To find "
        "text that contains ( ) [ ] . * + ? escape those with a backslash."
    )
    max_matches: int = Field(
        default=50, ge=1, description=f"At most this many matching lines (≤ {MAX_MATCHES})."
    )
    context_lines: int = Field(
        default=0, ge=0, description=f"Lines shown before and after each match (≤ {MAX_CONTEXT_LINES})."
    )
    case_sensitive: bool = Field(default=False, description="Match case exactly (default: ignore case).")


class ReadOutputParams(BaseModel):
    ref: str = Field(description="The ref of a kept output, e.g. out-3.")
    offset: int = Field(default=0, ge=0, description="The first line to show (0 = the start).")
    limit: int = Field(default=200, ge=1, description=f"At most this many lines (≤ {MAX_READ_LINES}).")


@dataclass(frozen=True, slots=True)
class ScratchReader:
    """The output tools' client: the run's scratch space and how many characters an answer may take."""

    outputs: ScratchSpace
    budget_chars: int


def nested_repeat(pattern: str) -> bool:
    """Whether a repeated group holds a repeat or an alternation (``(a+)+``, ``(\\w*)*``, ``(a|aa)+``)."""
    stack: list[bool] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i = _class_end(pattern, i)
            if stack and _quantified(pattern, i):
                stack[-1] = True
            continue
        if ch == "(":
            stack.append(False)
        elif ch == ")" and stack:
            inner = stack.pop()
            if _quantified(pattern, i + 1):
                if inner:
                    return True
                inner = True
            if inner and stack:
                stack[-1] = True
        elif ch in "|*+{" and stack:
            stack[-1] = True
        i += 1
    return False


def _class_end(pattern: str, i: int) -> int:
    """The index just past the character class opening at ``i``."""
    i += 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def _quantified(pattern: str, i: int) -> bool:
    return i < len(pattern) and pattern[i] in "*+{"


def _fitted(reader: ScratchReader, make: Callable[[int], ToolResult], lines: list[str]) -> ToolResult:
    """``make(n)`` for the largest ``n`` (at least 1 when there are lines) whose serialised result fits
    the budget: an estimate from the line lengths, then one line fewer until it fits."""
    room = reader.budget_chars - len(serialize_result(make(0)))
    count = 0
    for line in lines:
        room -= len(compact(line)) + 1
        if room < 0:
            break
        count += 1
    count = max(count, min(len(lines), 1))
    result = make(count)
    while count > 1 and len(serialize_result(result)) > reader.budget_chars:
        count -= 1
        result = make(count)
    return result


def _around(line: str, match: re.Match[str] | None) -> str:
    if len(line) <= _WINDOW or match is None:
        return clip(line, _WINDOW)
    start = max(match.start() - _WINDOW // 3, 0)
    shown = line[start : start + _WINDOW]
    before, after = start, len(line) - start - len(shown)
    return (f"…[{before:,} chars]" if before else "") + shown + (f"…[+{after:,} chars]" if after else "")


def _search_lines(lines: list[str], rx: re.Pattern[str]) -> tuple[list[int], int]:
    """The numbers of the matching lines and how many lines were searched before ``SEARCH_SECONDS``."""
    deadline = time.monotonic() + SEARCH_SECONDS
    found: list[int] = []
    for start in range(0, len(lines), 2_000):
        found.extend(i for i in range(start, min(start + 2_000, len(lines))) if rx.search(lines[i]))
        if time.monotonic() > deadline:
            return found, min(start + 2_000, len(lines))
    return found, len(lines)


async def search_output(reader: ScratchReader, params: SearchOutputParams) -> ToolResult:
    invocation = f"search_output {params.ref} /{params.pattern}/"
    try:
        stored = reader.outputs.get(params.ref)
    except OutputUnavailable as missing:
        return ToolResult.failed(str(missing), invocation=invocation)
    if nested_repeat(params.pattern):
        return ToolResult.failed(
            f"The pattern {params.pattern!r} repeats a group that itself repeats, which can take "
            "exponential time; write it without the nesting (e.g. 'a+' instead of '(a+)+').",
            invocation=invocation,
        )
    try:
        rx = re.compile(params.pattern, 0 if params.case_sensitive else re.IGNORECASE)
    except re.error as exc:
        return ToolResult.failed(
            f"The pattern {params.pattern!r} is not a valid regular expression ({exc}). Escape "
            "( ) [ ] . * + ? with a backslash to search for them as text.",
            invocation=invocation,
        )
    lines = stored.lines
    found, searched = await asyncio.to_thread(_search_lines, lines, rx)
    stopped = (
        "" if searched == len(lines) else f" (stopped after {searched:,} lines: the search took too long)"
    )
    if not found:
        return ToolResult.no_data(
            f"No line of {stored.ref} matches {params.pattern!r} ({searched:,} of {len(lines):,} lines "
            f"searched{stopped}).",
            invocation=invocation,
        )
    context = min(params.context_lines, MAX_CONTEXT_LINES)
    rendered = _render_matches(lines, rx, found[: min(params.max_matches, MAX_MATCHES)], context)
    ref = stored.ref

    def answer(count: int) -> ToolResult:
        shown = sum(1 for line in rendered[:count] if _is_match(line))
        data: dict[str, Any] = {"ref": ref, "pattern": params.pattern, "matches": len(found), "shown": shown}
        data["lines"] = rendered[:count]
        if shown < len(found) or stopped:
            more = found[shown] if shown < len(found) else searched
            data["more"] = (
                f"Showing {shown} of {len(found):,} matching lines{stopped}; the next is line {more:,}: "
                f'narrow the pattern, or read_output(ref="{ref}", offset={more}).'
            )
        return ToolResult.ok(data, invocation=invocation)

    return _fitted(reader, answer, rendered)


def _is_match(rendered: str) -> bool:
    number, _, _ = rendered.partition(":")
    return number.isdigit()


def _render_matches(lines: list[str], rx: re.Pattern[str], matches: list[int], context: int) -> list[str]:
    """``12: line`` for a match, ``11- line`` for a context line, ``--`` between separate groups."""
    rendered: list[str] = []
    wanted = set(matches)
    last = -2
    for number in matches:
        first = max(number - context, last + 1)
        if context and rendered and first > last + 1:
            rendered.append("--")
        for i in range(first, min(number + context, len(lines) - 1) + 1):
            if i <= last:
                continue
            sep = ":" if i in wanted else "-"
            rendered.append(f"{i}{sep} {_around(lines[i], rx.search(lines[i]))}")
            last = i
    return rendered


async def read_output(reader: ScratchReader, params: ReadOutputParams) -> ToolResult:
    invocation = f"read_output {params.ref} offset={params.offset} limit={params.limit}"
    try:
        stored = reader.outputs.get(params.ref)
    except OutputUnavailable as missing:
        return ToolResult.failed(str(missing), invocation=invocation)
    total = len(stored.lines)
    if params.offset >= total:
        return ToolResult.failed(
            f"{stored.ref} has {total:,} lines (offsets 0 to {total - 1:,}); offset {params.offset:,} is "
            "past its end.",
            invocation=invocation,
        )
    end = min(params.offset + min(params.limit, MAX_READ_LINES), total)
    numbered = [f"{i}: {stored.lines[i]}" for i in range(params.offset, end)]
    if len(compact(numbered[0])) > reader.budget_chars // 2:
        numbered[0] = clip(numbered[0], max(reader.budget_chars // 2, 80))

    def answer(count: int) -> ToolResult:
        data: dict[str, Any] = {"ref": stored.ref, "total_lines": total, "offset": params.offset}
        data["lines"] = numbered[:count]
        after = params.offset + count
        if after < total:
            data["next"] = f'read_output(ref="{stored.ref}", offset={after}, limit={params.limit})'
        else:
            data["end"] = "This is the last line."
        return ToolResult.ok(data, invocation=invocation)

    return _fitted(reader, answer, numbered)


async def _no_connection(config: Any) -> None:
    raise RuntimeError("the output tools read the run's scratch space; call them through their FunctionTool")


OUTPUTS = Toolset(
    name="outputs",
    description="Tool outputs this investigation kept because they were over the output budget.",
    instructions="",
    tools=(
        Tool(
            "search_output",
            "Search an over-budget tool output kept by this investigation (its ref, e.g. out-3, is in the "
            "tool's summary) for a regular expression, case-insensitive by default. Returns the matching "
            "lines with their line numbers and the total count of matches.",
            SearchOutputParams,
            search_output,  # type: ignore[arg-type]
        ),
        Tool(
            "read_output",
            "Read lines of an over-budget tool output kept by this investigation (ref such as out-3), "
            "from a line offset (0 = the start; search_output shows line numbers).",
            ReadOutputParams,
            read_output,  # type: ignore[arg-type]
        ),
    ),
    connect=_no_connection,
)
OUTPUT_TOOL_NAMES = frozenset(tool.name for tool in OUTPUTS.tools)


def _function_tool(tool: Tool, budget: OutputBudget | None) -> FunctionTool:
    async def on_invoke(wrapper: ToolContext[Any], raw_args: str) -> str:
        ctx = context_of(wrapper)
        limit = (budget or OutputBudget.from_config(ctx.config)).limit_for(tool.name)
        agent = wrapper.agent.name if wrapper.agent is not None else "planner"
        outcome = await call_tool(
            ctx,
            OUTPUTS,
            tool,
            raw_args,
            call_id=wrapper.tool_call_id,
            agent=agent,
            budget=budget,
            client=ScratchReader(ctx.scratch.outputs, limit),
        )
        return outcome.text

    return FunctionTool(
        name=tool.name,
        description=tool.description,
        params_json_schema=ensure_strict_json_schema(tool.params.model_json_schema()),
        on_invoke_tool=on_invoke,
        strict_json_schema=True,
    )


def output_function_tools(budget: OutputBudget | None = None) -> list[FunctionTool]:
    """``search_output`` and ``read_output`` for an agent whose tools may keep over-budget outputs."""
    return [_function_tool(tool, budget) for tool in OUTPUTS.tools]


def offers_output_tools(tools: Sequence[AgentTool]) -> bool:
    """Whether ``tools`` include the output tools (then the planner above them gets them too)."""
    return any(getattr(tool, "name", None) in OUTPUT_TOOL_NAMES for tool in tools)
