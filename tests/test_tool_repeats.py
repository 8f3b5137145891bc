"""A tool call repeating an earlier one of the same run is answered from the run's memory and marked as a
repeat; write tools and transient errors are never remembered."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from agents import FunctionTool
from agents.tool_context import ToolContext
from pydantic import BaseModel

from incidentfox.agents.approvals.gate import Action
from incidentfox.agents.approvals.models import ActionRequest
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent, ToolEnd
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.call_memory import looks_transient
from incidentfox.agents.toolsets.function_tools import invoke_tool, toolset_function_tools


class Pods(BaseModel):
    namespace: str
    label_selector: str | None = None


class Restart(BaseModel):
    name: str


class World:
    """A fake toolset that counts how often each tool really ran and answers from a script."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.answers: dict[str, list[ToolResult]] = {}

    def answer(self, tool: str) -> ToolResult:
        self.ran.append(tool)
        script = self.answers.get(tool)
        return script.pop(0) if script else ToolResult.ok([{"pod": "checkout-7d9f8b6c5-x2k4q"}])

    def toolset(self) -> Toolset:
        async def list_pods(client: object, params: Pods) -> ToolResult:
            return self.answer("list_pods")

        async def restart(client: object, params: Restart) -> ToolResult:
            return self.answer("restart")

        async def connect(config: object) -> object:
            return object()

        return Toolset(
            name="fake",
            description="",
            instructions="",
            tools=(
                Tool("list_pods", "", Pods, list_pods),  # type: ignore[arg-type]
                Tool("restart", "", Restart, restart, writes=True),  # type: ignore[arg-type]
            ),
            connect=connect,
        )


class AlwaysApprove:
    async def run_when_approved(
        self, request: ActionRequest, action: Action, *, deadline: asyncio.Timeout | None = None
    ) -> ToolResult:
        return await action()


@pytest.fixture
def world() -> World:
    return World()


def _context(events: list[ProgressEvent]) -> InvestigationContext:
    return InvestigationContext(
        run_id="run-r",
        org_id="acme",
        team_node_id="sre",
        config={},
        emit=events.append,
        approvals=AlwaysApprove(),
    )


async def _call(
    ctx: InvestigationContext, tools: dict[str, FunctionTool], name: str, raw: str
) -> dict[str, Any]:
    wrapper = ToolContext(
        ctx, tool_name=name, tool_call_id=f"id-{len(ctx.scratch.answered)}", tool_arguments=raw
    )
    out = await tools[name].on_invoke_tool(wrapper, raw)
    assert isinstance(out, str)
    body: dict[str, Any] = json.loads(out)
    return body


def _tools(world: World) -> dict[str, FunctionTool]:
    return {t.name: t for t in toolset_function_tools(world.toolset(), agent="kubernetes")}


async def test_second_identical_call_is_marked_repeat_and_not_run_again(world: World) -> None:
    events: list[ProgressEvent] = []
    ctx, tools = _context(events), _tools(world)

    first = await _call(ctx, tools, "list_pods", '{"namespace": "prod", "label_selector": null}')
    again = await _call(ctx, tools, "list_pods", '{"label_selector": null,  "namespace":"prod"}')

    assert world.ran == ["list_pods"]
    assert "repeat_of" not in first
    assert again["repeat_of"] == 1
    assert "already have it" in again["repeat_note"]
    assert again["data"] == first["data"]
    end = events[-1]
    assert isinstance(end, ToolEnd) and end.summary == "1 item · repeat of call 1, from the run's memory"


async def test_different_arguments_are_a_new_call(world: World) -> None:
    ctx, tools = _context([]), _tools(world)
    await _call(ctx, tools, "list_pods", '{"namespace": "prod", "label_selector": null}')
    other = await _call(ctx, tools, "list_pods", '{"namespace": "prod", "label_selector": "app=checkout"}')
    assert world.ran == ["list_pods", "list_pods"]
    assert "repeat_of" not in other


async def test_write_tools_are_never_remembered_and_make_reads_fresh_again(world: World) -> None:
    ctx, tools = _context([]), _tools(world)
    pods = '{"namespace": "prod", "label_selector": null}'
    await _call(ctx, tools, "list_pods", pods)
    first = await _call(ctx, tools, "restart", '{"name": "checkout"}')
    second = await _call(ctx, tools, "restart", '{"name": "checkout"}')
    after = await _call(ctx, tools, "list_pods", pods)

    assert world.ran == ["list_pods", "restart", "restart", "list_pods"]
    assert "repeat_of" not in first and "repeat_of" not in second
    assert "repeat_of" not in after, "a write ran in between: the earlier read may be stale"


@pytest.mark.parametrize(
    "error",
    [
        "Kubernetes API at https://k8s is unreachable (timed out after 10 s)",
        "GitHub answered 503 Service Unavailable",
        "PagerDuty rate limit reached (429 Too Many Requests); try again in 30 s",
        "list_pods failed unexpectedly (ConnectionResetError); try again or another tool.",
    ],
)
async def test_transient_errors_are_not_remembered(world: World, error: str) -> None:
    world.answers["list_pods"] = [ToolResult.failed(error)]
    ctx, tools = _context([]), _tools(world)
    pods = '{"namespace": "prod", "label_selector": null}'
    failed = await _call(ctx, tools, "list_pods", pods)
    retried = await _call(ctx, tools, "list_pods", pods)
    assert failed["status"] == "error"
    assert retried["status"] == "ok" and "repeat_of" not in retried
    assert world.ran == ["list_pods", "list_pods"]


async def test_a_lasting_error_is_remembered(world: World) -> None:
    world.answers["list_pods"] = [ToolResult.failed("namespace 'prdo' not found (404)")]
    ctx, tools = _context([]), _tools(world)
    pods = '{"namespace": "prdo", "label_selector": null}'
    await _call(ctx, tools, "list_pods", pods)
    again = await _call(ctx, tools, "list_pods", pods)
    assert again["status"] == "error" and again["repeat_of"] == 1
    assert world.ran == ["list_pods"]


async def test_invalid_arguments_are_not_remembered(world: World) -> None:
    ctx, tools = _context([]), _tools(world)
    await _call(ctx, tools, "list_pods", '{"label_selector": null}')
    again = await _call(ctx, tools, "list_pods", '{"label_selector": null}')
    assert again["status"] == "error" and "repeat_of" not in again


async def test_calls_outside_the_agents_adapter_are_not_deduplicated(world: World) -> None:
    """``invoke_tool`` without ``dedupe`` (the SRE agent's team tools) always runs the tool."""
    toolset = world.toolset()
    ctx = _context([])
    for call_id in ("a", "b"):
        await invoke_tool(
            ctx, toolset, toolset.tools[0], '{"namespace": "prod"}', call_id=call_id, agent="sre"
        )
    assert world.ran == ["list_pods", "list_pods"]


def test_transient_error_shapes() -> None:
    assert looks_transient("upstream answered 502 Bad Gateway")
    assert looks_transient("deadline exceeded while reading events")
    assert not looks_transient("pod checkout-7d9 not found")
    assert not looks_transient("401 Unauthorized: the token was rejected")
