"""A run's MCP servers against real servers written with the ``mcp`` SDK, over stdio and streamable HTTP:
their tools are listed and called through the toolset adapter, a server that cannot start is reported
and skipped, a hanging one is cut off at its timeout, and every server is stopped when the run ends."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from agents import FunctionTool
from agents.tool_context import ToolContext

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent, Thought, ToolEnd, ToolStart
from incidentfox.agents.mcp.attach import AttachedMcp, attached_mcp
from incidentfox.agents.mcp.tools import tool_name
from incidentfox.agents.planner import SubagentSpec
from incidentfox.egress import EgressPolicy, install_policy
from tests.mcp_servers.running import (
    SILENT,
    TOOL_NAMES,
    http_server,
    last_pid,
    pid_alive,
    stdio_entry,
    wait_gone,
)

HTTP_TOKEN = "mcp-http-token-7Gq2Wm9Kx4"
VENDOR_LOGIN = "vendor-login-Zr8Lq3Vn6"


def _context(config: dict[str, Any], events: list[ProgressEvent]) -> InvestigationContext:
    return InvestigationContext(
        run_id="run-mcp", org_id="acme", team_node_id="checkout", config=config, emit=events.append
    )


async def _call(ctx: InvestigationContext, tool: FunctionTool, **args: Any) -> dict[str, Any]:
    raw = json.dumps(args)
    wrapper = ToolContext(ctx, tool_name=tool.name, tool_call_id=f"c-{tool.name}", tool_arguments=raw)
    out = await tool.on_invoke_tool(wrapper, raw)
    parsed: dict[str, Any] = json.loads(out)
    return parsed


def _tools(mcp: AttachedMcp, agent: str) -> dict[str, FunctionTool]:
    return {tool.name: tool for tool in mcp.tools_for(agent)}


async def test_a_stdio_server_s_tools_are_offered_prefixed_and_called_through_the_adapter(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    config = {
        "mcp_servers": {
            "deploys": stdio_entry(env={"VENDOR_LOGIN": VENDOR_LOGIN, "MCP_PID_FILE": str(pid_file)})
        },
        "agents": {"github": {"mcp_servers": ["deploys"]}},
    }
    events: list[ProgressEvent] = []
    ctx = _context(config, events)
    async with attached_mcp(ctx) as mcp:
        tools = _tools(mcp, "github")
        assert sorted(tools) == sorted(f"mcp_deploys_{name}" for name in TOOL_NAMES)
        assert mcp.tools_for("planner") == [] and mcp.problems == []
        deploys = await _call(ctx, tools["mcp_deploys_recent_deploys"], service="checkout")
        budget = await _call(ctx, tools["mcp_deploys_error_budget"], service="checkout")
        leaky = await _call(ctx, tools["mcp_deploys_service_config"], service="checkout")
        pid = last_pid(pid_file)
        assert pid_alive(pid)
    assert await wait_gone(pid), "the stdio server's process is stopped when the run ends"

    assert deploys["status"] == "ok"
    assert "v2.31.0 deployed by alice: enable new-pricing flag" in deploys["data"]
    assert deploys["invocation"] == 'deploys: recent_deploys {"service": "checkout"}'
    assert budget["data"] == {
        "service": "checkout",
        "remaining": 0.12,
        "burn_rate_1h": 14.4,
        "slo": "99.9% availability",
    }
    assert VENDOR_LOGIN not in json.dumps(leaky), "the server's own env values are scrubbed"
    assert "ghp_McpCanary" not in json.dumps(leaky), "and so are secrets by pattern"
    assert "replicas=6" in leaky["data"]
    starts = [e for e in events if isinstance(e, ToolStart)]
    ends = [e for e in events if isinstance(e, ToolEnd)]
    assert [e.tool for e in starts] == [
        "mcp_deploys_recent_deploys",
        "mcp_deploys_error_budget",
        "mcp_deploys_service_config",
    ]
    assert {e.agent for e in starts} == {"github"}
    assert [e.status for e in ends] == ["ok", "ok", "ok"]
    assert ends[-1].summary == "ok · 1 secret scrubbed from the output", "the token found by its pattern"


async def test_a_streamable_http_server_gets_its_headers_and_answers_through_the_adapter() -> None:
    async with http_server(HTTP_TOKEN) as url:
        config = {
            "mcp_servers": {"tracker": {"url": url, "headers": {"Authorization": f"Bearer {HTTP_TOKEN}"}}},
            "agents": {"planner": {"mcp_servers": ["tracker"]}},
        }
        events: list[ProgressEvent] = []
        ctx = _context(config, events)
        async with attached_mcp(ctx) as mcp:
            tools = _tools(mcp, "planner")
            assert mcp.problems == []
            assert sorted(tools) == sorted(f"mcp_tracker_{name}" for name in TOOL_NAMES)
            planner_tools = [t.name for t in mcp.planner_tools([])]
            assert planner_tools[-2:] == ["search_output", "read_output"], "big answers are kept"
            deploys = await _call(ctx, tools["mcp_tracker_recent_deploys"], service="checkout")
            again = await _call(ctx, tools["mcp_tracker_recent_deploys"], service="checkout")
            leaky = await _call(ctx, tools["mcp_tracker_service_config"], service="checkout")
    assert deploys["status"] == "ok" and "v2.31.0" in deploys["data"]
    assert again["repeat_of"] == 1, "a repeated read is answered from the run's memory"
    assert "seen_authorization=[REDACTED]" in leaky["data"], "the header reached the server, not the model"
    assert HTTP_TOKEN not in json.dumps(leaky)
    assert [e.agent for e in events if isinstance(e, ToolStart)] == ["planner"] * 3


async def test_wrong_credentials_and_a_missing_command_are_reported_and_skipped_and_the_rest_works() -> None:
    async with http_server(HTTP_TOKEN) as url:
        config = {
            "mcp_servers": {
                "tracker": {"url": url, "headers": {"Authorization": "Bearer wrong-token-123"}},
                "ghost": {"command": "/opt/nowhere/grafana-mcp", "args": ["--stdio"]},
                "broken": {"url": "ftp://example.com"},
                "deploys": stdio_entry(),
            },
            "agents": {
                "metrics": {"mcp_servers": ["tracker", "ghost", "broken", "deploys", "nobody"]},
            },
        }
        events: list[ProgressEvent] = []
        ctx = _context(config, events)
        async with attached_mcp(ctx) as mcp:
            assert sorted(_tools(mcp, "metrics")) == sorted(f"mcp_deploys_{n}" for n in TOOL_NAMES)
            result = await _call(ctx, _tools(mcp, "metrics")["mcp_deploys_recent_deploys"], service="x")
            assert result["data"] == "no deploys of x in the last 7 days"
    thoughts = [e.text for e in events if isinstance(e, Thought)]
    assert len(thoughts) == 4, thoughts
    assert any(
        "MCP server ghost could not start: its command `/opt/nowhere/grafana-mcp` was not found on the "
        "IncidentFox host" in t
        for t in thoughts
    )
    assert (
        "MCP server tracker could not start: its URL answered with an error (Server returned an error "
        "response); check `mcp_servers.tracker.url` and the credentials in its `headers`. Carrying on "
        "without it." in thoughts
    ), thoughts
    assert any("`mcp_servers.broken.url` must be an http:// or https:// URL" in t for t in thoughts)
    assert any("`agents.metrics.mcp_servers` but `mcp_servers` does not declare it" in t for t in thoughts)
    assert "wrong-token-123" not in json.dumps(thoughts)
    assert "ghost" in mcp.planner_note() and "tracker" in mcp.planner_note()


async def test_a_server_that_never_answers_is_cut_off_at_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    config = {
        "mcp_servers": {
            "stuck": stdio_entry(SILENT, env={"MCP_PID_FILE": str(pid_file)}, timeout_s=1.5),
            "deploys": stdio_entry(),
        },
        "agents": {"logs": {"mcp_servers": ["stuck", "deploys"]}},
    }
    events: list[ProgressEvent] = []
    started = time.monotonic()
    async with attached_mcp(_context(config, events)) as mcp:
        elapsed = time.monotonic() - started
        assert list(mcp.started) == ["deploys"]
    assert 1.4 < elapsed < 8, elapsed
    [line] = [e.text for e in events if isinstance(e, Thought)]
    assert line == (
        "MCP server stuck could not start: it did not start and list its tools within 1.5 s and was cut "
        "off. Carrying on without it."
    )
    assert await wait_gone(last_pid(pid_file)), "the stuck process is stopped"


async def test_a_tool_call_that_hangs_is_cut_off_and_the_server_keeps_answering() -> None:
    config = {
        "mcp_servers": {"deploys": stdio_entry(call_timeout_s=1)},
        "agents": {"logs": {"mcp_servers": ["deploys"]}},
    }
    events: list[ProgressEvent] = []
    ctx = _context(config, events)
    async with attached_mcp(ctx) as mcp:
        tools = _tools(mcp, "logs")
        started = time.monotonic()
        slow = await _call(ctx, tools["mcp_deploys_slow_report"], seconds=60)
        elapsed = time.monotonic() - started
        after = await _call(ctx, tools["mcp_deploys_recent_deploys"], service="checkout")
    assert elapsed < 5
    assert slow["status"] == "error"
    assert slow["error"] == (
        "The MCP server deploys did not answer slow_report within 1 s and the call was cut off; "
        "try a narrower request or another tool."
    )
    assert after["status"] == "ok"


async def test_a_destructive_tool_waits_for_approval_and_does_not_run_without_it(tmp_path: Path) -> None:
    marker = tmp_path / "rollbacks"
    config = {
        "mcp_servers": {"deploys": stdio_entry(env={"MCP_ROLLBACK_FILE": str(marker)})},
        "agents": {"kubernetes": {"mcp_servers": ["deploys"]}},
    }
    ctx = _context(config, [])
    async with attached_mcp(ctx) as mcp:
        result = await _call(ctx, _tools(mcp, "kubernetes")["mcp_deploys_rollback"], service="checkout")
    assert result["status"] == "approval_required"
    assert result["data"]["note"] == "Not run: an authorized user must approve it."
    assert not marker.exists(), "nobody approved, so the server never ran it"


async def test_http_urls_pass_the_egress_policy() -> None:
    install_policy(EgressPolicy(allow_private=False))
    config = {
        "mcp_servers": {"tracker": {"url": "http://127.0.0.1:9/mcp"}},
        "agents": {"planner": {"mcp_servers": ["tracker"]}},
    }
    events: list[ProgressEvent] = []
    async with attached_mcp(_context(config, events)) as mcp:
        assert mcp.started == {}
    [line] = [e.text for e in events if isinstance(e, Thought)]
    assert "refused to connect" in line and "private or loopback address" in line
    assert "`mcp_servers.tracker.url`" in line


async def test_a_sub_agent_with_only_mcp_servers_is_offered_and_others_get_the_tools_added() -> None:
    config = {
        "mcp_servers": {"deploys": stdio_entry()},
        "agents": {"grafana": {"mcp_servers": ["deploys"]}, "kubernetes": {"mcp_servers": ["deploys"]}},
    }
    kubernetes = SubagentSpec(name="kubernetes", description="k8s", instructions="Read pods.", tools=[])
    async with attached_mcp(_context(config, [])) as mcp:
        specs = {spec.name: spec for spec in mcp.subagents([kubernetes])}
    assert sorted(specs) == ["grafana", "kubernetes"]
    assert [t.name for t in specs["kubernetes"].tools] == [f"mcp_deploys_{n}" for n in TOOL_NAMES]
    grafana = specs["grafana"]
    assert "MCP server(s) deploys" in grafana.description
    assert "mcp_deploys_recent_deploys" in grafana.description
    assert [t.name for t in grafana.tools][-2:] == ["search_output", "read_output"]


async def test_cancelling_the_run_stops_its_servers(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    config = {
        "mcp_servers": {"deploys": stdio_entry(env={"MCP_PID_FILE": str(pid_file)})},
        "agents": {"planner": {"mcp_servers": ["deploys"]}},
    }
    entered = asyncio.Event()

    async def run() -> None:
        async with attached_mcp(_context(config, [])):
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(run())
    await asyncio.wait_for(entered.wait(), 30)
    pid = last_pid(pid_file)
    assert pid_alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(pid)


def test_tool_names_are_sanitised_and_at_most_64_characters() -> None:
    assert tool_name("grafana-mcp", "query.range") == "mcp_grafana-mcp_query_range"
    long_a = tool_name("observability-platform", "x" * 80 + "a")
    long_b = tool_name("observability-platform", "x" * 80 + "b")
    assert len(long_a) == len(long_b) == 64 and long_a != long_b


async def test_cancelling_while_servers_start_stops_those_already_running(tmp_path: Path) -> None:
    fast, stuck = tmp_path / "fast", tmp_path / "stuck"
    config = {
        "mcp_servers": {
            "deploys": stdio_entry(env={"MCP_PID_FILE": str(fast)}),
            "stuck": stdio_entry(SILENT, env={"MCP_PID_FILE": str(stuck)}, timeout_s=60),
        },
        "agents": {"planner": {"mcp_servers": ["deploys", "stuck"]}},
    }
    events: list[ProgressEvent] = []

    async def run() -> None:
        async with attached_mcp(_context(config, events)):
            raise AssertionError("the stuck server holds the start for a minute")

    task = asyncio.create_task(run())
    for _ in range(600):
        if fast.exists() and stuck.exists():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(last_pid(fast)) and await wait_gone(last_pid(stuck))
    assert events == []
