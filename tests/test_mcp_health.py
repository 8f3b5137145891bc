"""MCP server health for the App Home: each declared server started, listed and stopped, within its
timeout, cached per team and settings."""

from __future__ import annotations

from pathlib import Path

from incidentfox.agents.mcp.health import McpHealth
from incidentfox.agents.toolsets.health import TURNED_OFF, HealthLine
from tests.mcp_servers.running import SILENT, http_server, last_pid, stdio_entry, wait_gone

TOKEN = "health-token-4Lw9Hn2Xc"


async def test_each_server_gets_a_line_ok_with_its_tool_count_or_failing_with_the_reason(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    async with http_server(TOKEN) as url:
        config = {
            "mcp_servers": {
                "deploys": stdio_entry(env={"MCP_PID_FILE": str(pid_file)}),
                "tracker": {"url": url, "headers": {"Authorization": f"Bearer {TOKEN}"}},
                "ghost": {"command": "/opt/nowhere/grafana-mcp"},
                "stuck": stdio_entry(SILENT, timeout_s=1),
                "typo": {"comand": "grafana-mcp"},
                "retired": {"url": "https://old.example/mcp", "enabled": False},
            }
        }
        lines = await McpHealth().check("acme", "checkout", config)
    assert lines == [
        HealthLine("mcp: deploys", "ok", "ok, 5 tools"),
        HealthLine(
            "mcp: ghost",
            "failing",
            "its command `/opt/nowhere/grafana-mcp` was not found on the IncidentFox host",
        ),
        HealthLine("mcp: retired", "off", TURNED_OFF),
        HealthLine("mcp: stuck", "failing", "it did not start and list its tools within 1 s and was cut off"),
        HealthLine("mcp: tracker", "ok", "ok, 5 tools"),
        HealthLine(
            "mcp: typo",
            "failing",
            "`mcp_servers.typo.comand` is not a known setting; an MCP server takes `command`, `args`, `env` "
            "(stdio) or `url`, `headers` (streamable HTTP), and `timeout_s`, `call_timeout_s`.",
        ),
    ]
    assert await wait_gone(last_pid(pid_file)), "the checked server is stopped again"


async def test_checks_are_cached_per_team_and_settings(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    now = [0.0]
    health = McpHealth(ttl_s=60, clock=lambda: now[0])
    entry = stdio_entry(env={"MCP_PID_FILE": str(pid_file)})
    config = {"mcp_servers": {"deploys": entry}}
    first = await health.check("acme", "checkout", config)
    again = await health.check("acme", "checkout", config)
    assert first == again == [HealthLine("mcp: deploys", "ok", "ok, 5 tools")]
    assert len(pid_file.read_text().split()) == 1, "the second look was answered from the cache"
    await health.check("acme", "search", config)
    edited = {"mcp_servers": {"deploys": {**entry, "timeout_s": 9}}}
    await health.check("acme", "checkout", edited)
    now[0] = 61.0
    await health.check("acme", "checkout", config)
    assert len(pid_file.read_text().split()) == 4, "another team, an edit and an expired entry start it"


async def test_a_team_without_mcp_servers_has_no_lines() -> None:
    assert await McpHealth().check("acme", "checkout", {"integrations": {}}) == []
