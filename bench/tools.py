"""What an over-budget tool result costs the model: kept and summarised (spill) vs. plain truncation.

    .venv/bin/python -m bench.tools [--repeats N]

Two results go through the tool adapter (``call_tool``: scrubbing, serialising, budgeting) in the same
process: a 5 MB log and a 50,000-series metric result. For each path the table gives the tokens the
model is sent (characters / 4) and the median wall time of the call; for the spill path also one
``search_output`` for a line deep inside and one ``read_output`` page, which is what the model pays to
get at what truncation would have cut.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.output_budget import OutputBudget, serialize_result
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.function_tools import call_tool
from incidentfox.agents.toolsets.outputs import OUTPUTS, ScratchReader

DEEP = "ERROR payment gateway returned 502 for order ord-424242"


class NoParams(BaseModel):
    pass


def log_result() -> ToolResult:
    lines = [
        f"2026-12-04T10:{i // 60 % 60:02d}:{i % 60:02d}Z INFO checkout request {i} served in {i % 97} ms "
        f"trace={i * 7919 % 1_000_003:08x}"
        for i in range(62_000)
    ]
    lines[60_000] = f"2026-12-04T11:00:00Z {DEEP}"
    text = "\n".join(lines)
    return ToolResult.ok({"log": text, "lines": len(lines)}, invocation="kubectl logs checkout")


def metric_result() -> ToolResult:
    series = [
        {
            "metric": {"__name__": "http_requests_total", "pod": f"checkout-{i}", "code": "200"},
            "value": [1733300000, str(i)],
        }
        for i in range(50_000)
    ]
    return ToolResult.ok(series, invocation="promql: sum by (pod, code) (http_requests_total)")


def tokens(text: str) -> int:
    return len(text) // 4


async def _connect(config: object) -> object:
    return object()


def _toolset(result: ToolResult) -> tuple[Toolset, Tool]:
    async def run(client: object, params: NoParams) -> ToolResult:
        return result

    tool = Tool("pod_logs", "", NoParams, run)  # type: ignore[arg-type]
    return Toolset("bench", "", "", (tool,), _connect), tool


def _context() -> InvestigationContext:
    return InvestigationContext(
        run_id="bench", org_id="bench", team_node_id="bench", config={}, emit=lambda e: None
    )


async def _timed(call: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, last = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        last = await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, last


async def _output_tool(ctx: InvestigationContext, name: str, args: dict[str, Any]) -> str:
    tool = next(t for t in OUTPUTS.tools if t.name == name)
    reader = ScratchReader(ctx.scratch.outputs, OutputBudget().limit_for(name))
    outcome = await call_tool(ctx, OUTPUTS, tool, json.dumps(args), call_id="b", agent="bench", client=reader)
    return outcome.text


async def measure(name: str, result: ToolResult, pattern: str, repeats: int) -> list[str]:
    toolset, tool = _toolset(result)
    whole = serialize_result(result)

    async def call(spill: bool) -> str:
        outcome = await call_tool(_context(), toolset, tool, "{}", call_id="b", agent="bench", spill=spill)
        return outcome.text

    cut_ms, cut = await _timed(lambda: call(False), repeats)
    spill_ms, spilled = await _timed(lambda: call(True), repeats)
    ctx = _context()
    await call_tool(ctx, toolset, tool, "{}", call_id="b", agent="bench", spill=True)
    search_ms, found = await _timed(
        lambda: _output_tool(ctx, "search_output", {"ref": "out-1", "pattern": pattern}), repeats
    )
    read_ms, page = await _timed(
        lambda: _output_tool(ctx, "read_output", {"ref": "out-1", "offset": 1000, "limit": 200}), repeats
    )
    assert json.loads(found)["data"]["matches"] >= 1, found[:300]
    label = f"{name} ({len(whole) / 1e6:.1f} MB, {tokens(whole):,} tokens whole)"
    return [
        f"| {label} | truncation | {tokens(cut):,} | {cut_ms:.0f} ms |",
        f"| | spill: summary | {tokens(spilled):,} | {spill_ms:.0f} ms |",
        f"| | spill: + one search_output | {tokens(found):,} | {search_ms:.0f} ms |",
        f"| | spill: + one read_output page | {tokens(page):,} | {read_ms:.0f} ms |",
    ]


async def main(repeats: int) -> None:
    rows = [
        "| result | path | tokens sent | median wall time |",
        "|---|---|---:|---:|",
        *await measure("log", log_result(), r"gateway returned 5\d\d", repeats),
        *await measure("metrics, 50,000 series", metric_result(), '"checkout-49999"', repeats),
    ]
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {repeats} repeats, budget 8,000 chars"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    asyncio.run(main(parser.parse_args().repeats))
