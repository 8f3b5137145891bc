"""Over-budget tool output is kept, not cut: the model gets a summary with a ref, and finds the rest
with ``search_output`` and ``read_output``, every answer within the budget."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agents import FunctionTool, OpenAIChatCompletionsModel
from agents.tool_context import ToolContext
from openai import AsyncOpenAI
from pydantic import BaseModel

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent, ToolEnd
from incidentfox.agents.output_budget import DEFAULT_BUDGET_CHARS, OutputBudget
from incidentfox.agents.planner import build_planner
from incidentfox.agents.scratch_outputs import RunScratch, ScratchSpace
from incidentfox.agents.specialists import available_specialists
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.function_tools import call_tool, close_clients, toolset_function_tools
from incidentfox.agents.toolsets.outputs import nested_repeat, output_function_tools

DEEP_LINE = 70_000
DEEP_TEXT = "ERROR payment gateway returned 502 for order ord-424242"


def big_log() -> str:
    lines = [
        f"2026-12-04T10:{i // 60 % 60:02d}:{i % 60:02d}Z INFO checkout request {i} served in {i % 97} ms"
        for i in range(90_000)
    ]
    lines[DEEP_LINE] = f"2026-12-04T11:00:00Z {DEEP_TEXT}"
    lines[80_000] = "2026-12-04T11:10:00Z WARN retrying payment gateway"
    return "\n".join(lines)


def series(count: int = 50_000) -> list[dict[str, Any]]:
    return [
        {
            "metric": {"__name__": "http_requests_total", "pod": f"checkout-{i}", "code": "200"},
            "value": [1733300000, str(i)],
        }
        for i in range(count)
    ]


class NoParams(BaseModel):
    pass


class Window(BaseModel):
    since_seconds: int = 3600


LOG = big_log()
SERIES = series()


async def _connect(config: object) -> object:
    return object()


async def _logs(client: object, params: Window) -> ToolResult:
    return ToolResult.ok({"log": LOG, "lines": LOG.count("\n") + 1}, invocation="kubectl logs checkout")


async def _metrics(client: object, params: NoParams) -> ToolResult:
    return ToolResult.ok(SERIES, invocation="promql: http_requests_total")


BIG = Toolset(
    name="big",
    description="",
    instructions="",
    tools=(
        Tool("pod_logs", "5 MB of logs", Window, _logs),  # type: ignore[arg-type]
        Tool("query_metrics", "50,000 series", NoParams, _metrics),  # type: ignore[arg-type]
    ),
    connect=_connect,
)


def _context(events: list[ProgressEvent], scratch: RunScratch | None = None) -> InvestigationContext:
    return InvestigationContext(
        run_id="run-spill",
        org_id="acme",
        team_node_id="sre",
        config={},
        emit=events.append,
        scratch=scratch or RunScratch(),
    )


def _tools(budget: OutputBudget | None = None) -> dict[str, FunctionTool]:
    tools = [*toolset_function_tools(BIG, agent="kubernetes", budget=budget), *output_function_tools(budget)]
    return {tool.name: tool for tool in tools}


async def _call(ctx: InvestigationContext, tool: FunctionTool, **args: Any) -> str:
    raw = json.dumps(args)
    wrapper = ToolContext(ctx, tool_name=tool.name, tool_call_id=f"c-{tool.name}", tool_arguments=raw)
    out = await tool.on_invoke_tool(wrapper, raw)
    assert isinstance(out, str)
    return out


async def test_a_5_mb_log_becomes_a_summary_and_its_deep_line_is_found_and_read() -> None:
    events: list[ProgressEvent] = []
    ctx, tools = _context(events), _tools()

    summary_text = await _call(ctx, tools["pod_logs"], since_seconds=3600)

    assert len(LOG) > 5_000_000
    assert len(summary_text) <= DEFAULT_BUDGET_CHARS
    summary = json.loads(summary_text)
    assert summary["kept_as"] == "out-1"
    assert summary["status"] == "ok"
    assert summary["size"]["lines"] == 90_000 + 2, "a header line for the log and one for its count"
    assert summary["size"]["bytes"] > 5_000_000
    assert summary["shape"]["keys"] == {"log": "text, 90,000 lines", "lines": "number"}
    assert summary["lines_mentioning"] == {"error": 1, "warn": 1}
    assert summary["first_lines"][0] == "0: --- log (90,000 lines) ---"
    assert summary["last_lines"][-1] == "90001: lines: 90000"
    assert 'search_output(ref="out-1"' in summary["note"]
    assert "since_seconds" in summary["note"], "the narrowing hint is kept"
    assert summary["invocation"] == "kubectl logs checkout"
    end = events[-1]
    assert isinstance(end, ToolEnd) and "kept as out-1" in end.summary

    found = json.loads(
        await _call(ctx, tools["search_output"], ref="out-1", pattern=r"gateway returned 5\d\d")
    )
    assert found["data"]["matches"] == 1
    assert found["data"]["lines"] == [f"{DEEP_LINE + 1}: 2026-12-04T11:00:00Z {DEEP_TEXT}"]

    page = await _call(ctx, tools["read_output"], ref="out-1", offset=DEEP_LINE, limit=5)
    assert len(page) <= DEFAULT_BUDGET_CHARS
    lines = json.loads(page)["data"]["lines"]
    assert [line.split(":")[0] for line in lines] == [str(n) for n in range(DEEP_LINE, DEEP_LINE + 5)]
    assert lines[1].endswith(DEEP_TEXT)


async def test_read_output_pages_within_the_budget_and_says_where_to_go_on() -> None:
    ctx, tools = _context([]), _tools()
    await _call(ctx, tools["pod_logs"], since_seconds=3600)

    first = await _call(ctx, tools["read_output"], ref="out-1", offset=0, limit=200)
    body = json.loads(first)["data"]
    assert len(first) <= DEFAULT_BUDGET_CHARS
    shown = len(body["lines"])
    assert 50 < shown < 200, "as many lines as fit, not the 200 asked for"
    assert body["next"] == f'read_output(ref="out-1", offset={shown}, limit=200)'

    second = json.loads(await _call(ctx, tools["read_output"], ref="out-1", offset=shown, limit=200))["data"]
    assert second["lines"][0].startswith(f"{shown}: ")

    last = json.loads(await _call(ctx, tools["read_output"], ref="out-1", offset=90_000, limit=200))["data"]
    assert last["lines"] == [f"90000: {LOG.rsplit(chr(10), 1)[1]}", "90001: lines: 90000"]
    assert last["end"] == "This is the last line."

    past = json.loads(await _call(ctx, tools["read_output"], ref="out-1", offset=90_002, limit=10))
    assert past["status"] == "error" and "past its end" in past["error"]


async def test_a_50000_item_json_result_is_summarised_by_shape_and_searchable() -> None:
    ctx, tools = _context([]), _tools()

    text = await _call(ctx, tools["query_metrics"])

    assert len(text) <= DEFAULT_BUDGET_CHARS
    summary = json.loads(text)
    assert summary["size"]["items"] == 50_000
    assert summary["shape"]["type"] == "array" and summary["shape"]["items"] == 50_000
    assert json.loads(summary["shape"]["sample_item"]) == SERIES[0]
    assert summary["first_lines"][0] == "0: " + json.dumps(SERIES[0], separators=(",", ":"))
    found = json.loads(await _call(ctx, tools["search_output"], ref="out-1", pattern='"checkout-49999"'))
    assert found["data"]["matches"] == 1
    assert found["data"]["lines"][0].startswith('49999: {"metric":')

    many = await _call(ctx, tools["search_output"], ref="out-1", pattern="checkout-4", max_matches=200)
    body = json.loads(many)["data"]
    assert len(many) <= DEFAULT_BUDGET_CHARS
    assert body["matches"] == 11_111
    assert body["shown"] == len(body["lines"]) < 200
    assert body["more"].startswith(f"Showing {body['shown']} of 11,111 matching lines; the next is line")


async def test_search_context_lines_and_case() -> None:
    ctx, tools = _context([]), _tools()
    await _call(ctx, tools["pod_logs"], since_seconds=3600)

    around = json.loads(
        await _call(ctx, tools["search_output"], ref="out-1", pattern="payment gateway", context_lines=1)
    )["data"]
    assert around["matches"] == 2
    assert [line.split(" ")[0] for line in around["lines"]] == [
        f"{DEEP_LINE}-",
        f"{DEEP_LINE + 1}:",
        f"{DEEP_LINE + 2}-",
        "--",
        "80000-",
        "80001:",
        "80002-",
    ]
    exact = await _call(
        ctx, tools["search_output"], ref="out-1", pattern="error PAYMENT", case_sensitive=True
    )
    assert json.loads(exact)["status"] == "no_data"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"ref": "out-9", "pattern": "x"}, "There is no output 'out-9'"),
        ({"ref": "out-1", "pattern": "gateway (returned"}, "not a valid regular expression"),
        ({"ref": "out-1", "pattern": "(a+)+$"}, "exponential time"),
    ],
)
async def test_output_tools_answer_mistakes_in_plain_words(args: dict[str, Any], expected: str) -> None:
    ctx, tools = _context([]), _tools()
    await _call(ctx, tools["pod_logs"], since_seconds=3600)
    body = json.loads(await _call(ctx, tools["search_output"], **args))
    assert body["status"] == "error"
    assert expected in body["error"]


def test_nested_repeats_are_recognised() -> None:
    assert [nested_repeat(p) for p in ["(a+)+", r"(\w+\s?)*$", "(a|aa)+", "((ab)*c)*", "(x){2,}"]] == [
        True,
        True,
        True,
        True,
        False,
    ]
    assert not any(
        nested_repeat(p) for p in ["error|warn", "(OOM|exit 137)", r"\(a+\)+", "[(]a+[)]+", ".*x.*y"]
    )


async def test_oldest_output_is_evicted_and_its_ref_says_so() -> None:
    ctx = _context([], RunScratch(outputs=ScratchSpace(capacity_bytes=12 * 1024 * 1024)))
    tools = _tools()
    for since in (60, 120, 180):
        assert (
            json.loads(await _call(ctx, tools["pod_logs"], since_seconds=since))["kept_as"]
            == f"out-{since // 60}"
        )

    gone = json.loads(await _call(ctx, tools["read_output"], ref="out-1", offset=0, limit=5))
    assert gone["status"] == "error"
    assert gone["error"].startswith("out-1 (pod_logs, 5.")
    assert "was evicted" in gone["error"] and "12.0 MB" in gone["error"]
    kept = json.loads(await _call(ctx, tools["read_output"], ref="out-3", offset=0, limit=5))
    assert kept["status"] == "ok"
    assert ctx.scratch.outputs.used_bytes <= 12 * 1024 * 1024


async def test_an_output_larger_than_the_scratch_space_is_summarised_and_says_it_was_not_kept() -> None:
    ctx = _context([], RunScratch(outputs=ScratchSpace(capacity_bytes=1024 * 1024)))
    summary = json.loads(await _call(ctx, _tools()["pod_logs"], since_seconds=60))
    assert "kept_as" not in summary
    assert "only this summary of it exists" in summary["note"]
    assert summary["first_lines"], "the summary still shows the head"


async def test_a_tiny_budget_still_gets_the_ref_and_the_instructions() -> None:
    budget = OutputBudget(default=8000, per_tool={"pod_logs": 700})
    summary_text = await _call(_context([]), _tools(budget)["pod_logs"], since_seconds=60)
    assert len(summary_text) <= 700
    summary = json.loads(summary_text)
    assert summary["kept_as"] == "out-1"
    assert "read_output" in summary["note"]


async def test_the_stored_output_is_the_scrubbed_one() -> None:
    async def leaky(client: object, params: NoParams) -> ToolResult:
        lines = [f"line {i} ok" for i in range(5_000)]
        lines[4_000] = "token=ghp_" + "Z9" * 18 + " used"
        return ToolResult.ok("\n".join(lines))

    toolset = Toolset("leaky", "", "", (Tool("dump", "", NoParams, leaky),), _connect)  # type: ignore[arg-type]
    ctx = _context([])
    (tool,) = toolset_function_tools(toolset, agent="kubernetes")
    await _call(ctx, tool)
    stored = ctx.scratch.outputs.get("out-1")
    assert stored.lines[4_000] == "token=[REDACTED] used"
    assert not any("ghp_" in line for line in stored.lines)


async def test_without_spill_the_head_is_shown_with_a_narrowing_notice() -> None:
    """The SRE agent's team tools have no scratch space: they keep the old behaviour."""
    ctx = _context([])
    logs = BIG.tools[0]
    outcome = await call_tool(ctx, BIG, logs, '{"since_seconds": 60}', call_id="c1", agent="sre")
    assert len(outcome.text) <= DEFAULT_BUDGET_CHARS
    assert "OUTPUT TRUNCATED" in outcome.text
    assert ctx.scratch.outputs.used_bytes == 0


async def test_closing_the_run_frees_its_scratch_space() -> None:
    ctx = _context([])
    await _call(ctx, _tools()["pod_logs"], since_seconds=60)
    assert ctx.scratch.outputs.used_bytes > 5_000_000
    await close_clients(ctx)
    assert ctx.scratch.outputs.used_bytes == 0
    assert ctx.scratch.answered == {}


async def test_a_repeated_over_budget_call_reuses_its_kept_output() -> None:
    ctx, tools = _context([]), _tools()
    first = json.loads(await _call(ctx, tools["pod_logs"], since_seconds=60))
    again_text = await _call(ctx, tools["pod_logs"], since_seconds=60)
    again = json.loads(again_text)
    assert len(again_text) <= DEFAULT_BUDGET_CHARS
    assert (first["kept_as"], again["kept_as"], again["repeat_of"]) == ("out-1", "out-1", 1)
    assert list(again)[:2] == ["repeat_of", "repeat_note"], "the model reads that it is a repeat first"
    assert ctx.scratch.outputs.used_bytes < 6 * 1024 * 1024, "kept once"


@pytest.mark.parametrize("budget_chars", [700, 2_000, 8_000])
async def test_every_answer_of_the_output_tools_fits_the_budget(budget_chars: int) -> None:
    budget = OutputBudget(default=budget_chars)
    ctx, tools = _context([]), _tools(budget)
    assert len(await _call(ctx, tools["pod_logs"], since_seconds=60)) <= budget_chars
    answers = [
        await _call(ctx, tools["read_output"], ref="out-1", offset=0, limit=1_000),
        await _call(ctx, tools["read_output"], ref="out-1", offset=89_999, limit=1_000),
        await _call(ctx, tools["search_output"], ref="out-1", pattern="request 1", max_matches=200),
        await _call(
            ctx,
            tools["search_output"],
            ref="out-1",
            pattern="served in 9 ms",
            max_matches=200,
            context_lines=10,
        ),
    ]
    assert [len(answer) <= budget_chars for answer in answers] == [True] * 4
    assert all(json.loads(answer)["data"]["lines"] for answer in answers), "at least one line each"


def test_every_specialist_and_the_planner_above_them_get_the_output_tools() -> None:
    specs = available_specialists({"integrations": {"github": {"token": "ghp_" + "x" * 36}}})
    assert [spec.name for spec in specs] == ["github"]
    assert [getattr(t, "name", "") for t in specs[0].tools][-2:] == ["search_output", "read_output"]
    planner = build_planner(model=OpenAIChatCompletionsModel("m", AsyncOpenAI(api_key="k")), subagents=specs)
    assert [t.name for t in planner.tools] == ["ask_github", "search_output", "read_output"]
