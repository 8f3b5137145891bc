"""Reading ``mcp_servers`` and ``agents.*.mcp_servers``: valid servers, and plain words naming the key
for every entry that is wrong, without spoiling the others."""

from __future__ import annotations

from typing import Any

import mcp_types
import pytest

from incidentfox.agents.investigation import config_problems
from incidentfox.agents.mcp.servers import (
    DEFAULT_CALL_TIMEOUT_S,
    DEFAULT_START_TIMEOUT_S,
    McpServerSpec,
    ServerProblem,
    declared_servers,
    has_attached_servers,
    parse_server,
)
from incidentfox.agents.mcp.tools import tool_result
from incidentfox.agents.toolsets.base import ToolResult


def test_a_stdio_and_an_http_server_with_defaults_and_their_own_secrets() -> None:
    stdio = parse_server(
        "grafana-mcp", {"command": "npx", "args": ["-y", "grafana"], "env": {"KEY": "k-1234"}}
    )
    http = parse_server(
        "tracker",
        {
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "Bearer tok-5678"},
            "timeout_s": 3,
        },
    )
    assert stdio == McpServerSpec(
        "grafana-mcp", "stdio", command="npx", args=("-y", "grafana"), env={"KEY": "k-1234"}
    )
    assert (stdio.timeout_s, stdio.call_timeout_s) == (DEFAULT_START_TIMEOUT_S, DEFAULT_CALL_TIMEOUT_S)
    assert isinstance(http, McpServerSpec) and http.transport == "http" and http.timeout_s == 3
    assert stdio.own_secrets() == ["k-1234"]
    assert http.own_secrets() == ["Bearer tok-5678", "tok-5678"]
    assert http.setting == "mcp_servers.tracker.url"


def test_env_values_that_cannot_be_secrets_are_not_blanked_out_of_answers() -> None:
    env = {
        "PORT": "8080",
        "DEBUG": "1",
        "GRAFANA_URL": "https://grafana.internal:3000",
        "DB": "postgres://app:pw-Secret-1@db/x",
        "LOGIN": "vendor-login",
    }
    spec = parse_server("s", {"command": "server", "env": env})
    assert isinstance(spec, McpServerSpec)
    assert spec.own_secrets() == ["postgres://app:pw-Secret-1@db/x", "vendor-login"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("npx grafana", "`mcp_servers.s` must be an object with `command` or `url`."),
        ({}, "`mcp_servers.s` needs `command` (a stdio server started on the IncidentFox host) or `url`"),
        ({"command": "x", "url": "https://a"}, "`mcp_servers.s` sets both `command` and `url`"),
        ({"command": ""}, "`mcp_servers.s.command` must be a non-empty string."),
        ({"command": "x", "args": "--port 1"}, "`mcp_servers.s.args` must be a list of strings"),
        ({"command": "x", "env": {"A": 1}}, "`mcp_servers.s.env` must be an object of string values."),
        ({"command": "x", "headers": {"A": "b"}}, "`mcp_servers.s.headers` is for HTTP servers"),
        ({"url": "https://a", "args": ["x"]}, "`mcp_servers.s.args` and `.env` are for stdio servers"),
        ({"url": "grafana:8080"}, "`mcp_servers.s.url` must be an http:// or https:// URL."),
        ({"url": "https://a", "timeout_s": 0}, "`mcp_servers.s.timeout_s` must be a number of seconds"),
        ({"url": "https://a", "call_timeout_s": "30"}, "`mcp_servers.s.call_timeout_s` must be a number"),
        ({"url": "https://a", "cwd": "/tmp"}, "`mcp_servers.s.cwd` is not a known setting"),
    ],
)
def test_a_wrong_entry_is_a_problem_naming_its_key(entry: Any, message: str) -> None:
    problem = parse_server("s", entry)
    assert isinstance(problem, ServerProblem)
    assert message in problem.message


def test_attachments_keep_order_skip_turned_off_servers_and_name_unknown_ids() -> None:
    config = {
        "mcp_servers": {
            "a": {"url": "https://a.example/mcp"},
            "b": {"command": "b-server"},
            "off": {"command": "c", "enabled": False},
            "bad": {"url": 42},
        },
        "agents": {
            "planner": {"mcp_servers": ["b", "a", "b"]},
            "metrics": {"mcp_servers": ["off", "bad", "ghost"]},
            "logs": {"enabled": False, "mcp_servers": ["a"]},
            "github": {"enabled": True},
        },
    }
    declared = declared_servers(config)
    assert declared.for_agent("planner") == ("b", "a")
    assert declared.for_agent("metrics") == ("bad",)
    assert declared.for_agent("logs") == ()
    assert declared.unknown == {"metrics": ("ghost",)}
    assert sorted(declared.servers) == ["a", "b"] and list(declared.problems) == ["bad"]
    assert declared.needed() == ("b", "a", "bad")


def test_a_team_with_only_mcp_servers_attached_can_be_investigated() -> None:
    only_declared = {"mcp_servers": {"a": {"url": "https://a.example/mcp"}}}
    attached = {**only_declared, "agents": {"grafana": {"mcp_servers": ["a"]}}}
    assert not has_attached_servers(only_declared)
    assert has_attached_servers(attached)
    assert config_problems(only_declared) != []
    assert config_problems(attached) == []


def _answer(*parts: mcp_types.ContentBlock, error: bool = False, structured: Any = None) -> ToolResult:
    answer = mcp_types.CallToolResult(content=list(parts), is_error=error, structured_content=structured)
    return tool_result(answer, invocation="s: t {}")


def test_mcp_answers_become_tool_results() -> None:
    text = mcp_types.TextContent(type="text", text='{"pods": 3}')
    image = mcp_types.ImageContent(type="image", data="aGk=", mime_type="image/png")
    assert _answer(text) == ToolResult.ok({"pods": 3}, invocation="s: t {}")
    assert _answer(text, structured={"result": "3 pods"}).data == "3 pods", "the SDK's wrapper is unwrapped"
    assert _answer(text, image).data == [{"pods": 3}, "[image content omitted]"]
    assert _answer() == ToolResult.no_data("the MCP tool returned nothing", invocation="s: t {}")
    failed = _answer(mcp_types.TextContent(type="text", text="unknown dashboard 'x'"), error=True)
    assert failed == ToolResult.failed("unknown dashboard 'x'", invocation="s: t {}")
