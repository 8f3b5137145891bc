"""The team's toolsets for the SRE agent, served by IncidentFox's in-process SDK MCP server.

Unit: only the read-only tools of the team's available toolsets are listed, with their params' schemas;
``share_file`` never reads outside the workdir. End to end: the real bundled CLI in a real bubblewrap
sandbox calls ``mcp__incidentfox__list_pods`` (scripted by the Anthropic emulator); the tool runs here
against the Kubernetes emulator with the team's token, its result reaches the model, and the token is
nowhere in the sandbox nor in what the CLI sent to the model."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import ClaudeSDKClient, Message, ResultMessage
from mcp import Client

from incidentfox.agents.events import ToolEnd, ToolStart
from incidentfox.agents.toolsets.kubernetes import KUBERNETES, ListPodsParams
from incidentfox.emulators.anthropic_api import AnthropicEmulator, RoutedScript, ScriptStep
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.loki import LokiEmulator
from incidentfox.sandboxes.agent_cli import sandboxed_cli_options
from incidentfox.sandboxes.backends.base import MIB, Sandbox, SandboxSpec, now_utc
from incidentfox.sandboxes.backends.local import BubblewrapBackend
from incidentfox.sandboxes.session_stream import TurnReader
from incidentfox.sandboxes.session_tokens import SessionTokens
from incidentfox.sandboxes.team_tools import (
    MAX_SHARE_BYTES,
    SERVER_NAME,
    TeamTools,
    build_team_tools,
    mcp_tool_name,
    team_mcp_options,
)
from tests.test_sandbox_agent_cli import _require_bubblewrap, proxied_sandbox

POD = "checkout-7d9f8b6c5-x2k4q"
K8S_READS = {t.name for t in KUBERNETES.tools if not t.writes}
OUTPUT_TOOLS = {"search_output", "read_output"}
SPEC = SandboxSpec(session_id="sbx_test", org_id="acme", team_id="payments", run_id="r", thread_key="T:C:1")
TURN_TIMEOUT_S = 90.0


def _k8s_config(api_url: str = "http://127.0.0.1:9", token: str = "team-k8s-token-0001") -> dict[str, Any]:
    return {"integrations": {"kubernetes": {"api_url": api_url, "token": token}}}


def _tools(config: dict[str, Any], **kwargs: Any) -> TeamTools:
    return build_team_tools(config, org_id="acme", team_node_id="payments", session_id="sbx_test", **kwargs)


def _host_sandbox(workdir: Path, backend: str = "local") -> Sandbox:
    now = now_utc()
    return Sandbox("sbx-1", backend, str(workdir), "/work", now, now, {}, SPEC)


async def _listed(tools: TeamTools) -> dict[str, dict[str, Any]]:
    async with Client(tools.server["instance"]) as client:
        listed = await client.list_tools()
    return {t.name: t.model_dump(by_alias=True) for t in listed.tools}


async def _call(tools: TeamTools, name: str, args: dict[str, Any]) -> tuple[str, bool]:
    async with Client(tools.server["instance"]) as client:
        result = await client.call_tool(name, args)
    return "".join(getattr(part, "text", "") for part in result.content), bool(result.is_error)


async def test_only_the_read_only_tools_of_configured_toolsets_are_listed_with_their_schemas() -> None:
    tools = _tools(_k8s_config())

    listed = await _listed(tools)

    assert set(listed) == K8S_READS | OUTPUT_TOOLS and "list_pods" in listed
    assert "rollout_restart" not in listed and "delete_pod" not in listed, "write tools are never offered"
    assert "recent_changes" not in listed, "GitHub is not configured for this team"
    assert "share_file" not in listed, "no share callback, no share_file"
    assert listed["list_pods"]["inputSchema"] == ListPodsParams.model_json_schema()
    assert listed["list_pods"]["annotations"]["readOnlyHint"] is True
    options = team_mcp_options(tools)
    assert options["mcp_servers"] == {SERVER_NAME: tools.server}
    assert sorted(options["allowed_tools"]) == sorted(
        f"mcp__incidentfox__{name}" for name in K8S_READS | OUTPUT_TOOLS
    )

    with_github = await _listed(_tools({**_k8s_config(), "integrations": {"github": {"token": "ghp_x" * 5}}}))
    assert "recent_changes" in with_github and "comment" not in with_github and "list_pods" not in with_github


async def test_a_turned_off_or_missing_integration_offers_nothing() -> None:
    off = _tools({"integrations": {"kubernetes": {"api_url": "http://127.0.0.1:9", "enabled": False}}})
    none = _tools({})
    assert await _listed(off) == {} and await _listed(none) == {}
    assert team_mcp_options(none) == {"mcp_servers": {}, "allowed_tools": []}


async def test_a_tool_call_runs_here_with_the_team_config_and_reports_failures_as_errors() -> None:
    token = "team-k8s-" + secrets.token_hex(8)
    async with KubernetesEmulator("crashloop", token=token) as k8s:
        tools = _tools(_k8s_config(k8s.api_url, token))
        text, is_error = await _call(tools, "list_pods", {"namespace": "prod"})
        assert not is_error and POD in text and json.loads(text)["status"] == "ok"
        assert ("GET", "/api/v1/namespaces/prod/pods") in k8s.requests
        assert "kubernetes" in tools.context.clients, "connected once, cached for the next call"
        await tools.close()
        assert tools.context.clients == {}

        refused = _tools(_k8s_config(k8s.api_url, "wrong-token-123456"))
        text, is_error = await _call(refused, "list_pods", {"namespace": "prod"})
        assert is_error and json.loads(text)["status"] == "error"
        await refused.close()


async def test_an_over_budget_result_is_kept_for_the_session_and_searched_not_cut() -> None:
    async with LokiEmulator() as loki:
        now = datetime.now(UTC)
        lines = [
            (now - timedelta(seconds=i), f"INFO request {i} served in {i % 90} ms") for i in range(1, 900)
        ]
        lines[450] = (now - timedelta(seconds=451), "ERROR payment gateway returned 502 for order ord-4242")
        loki.push({"app": "checkout"}, lines)
        tools = _tools({"integrations": {"loki": loki.integration_config()}})
        try:
            summary, is_error = await _call(
                tools, "loki_query", {"query": '{app="checkout"}', "start": "-30m", "limit": 1000}
            )
            assert not is_error and '"kept_as": "out-1"' in summary.replace('":"', '": "')
            assert "ord-4242" not in summary, "the summary fits the budget; the line is kept, not shown"
            found, is_error = await _call(
                tools, "search_output", {"ref": "out-1", "pattern": "gateway returned 5\\d\\d"}
            )
            assert not is_error and "ERROR payment gateway returned 502 for order ord-4242" in found
        finally:
            await tools.close()


@dataclass
class Shares:
    calls: list[tuple[Path, str, str, bytes]] = field(default_factory=list)

    async def __call__(self, path: Path, filename: str, comment: str) -> str:
        self.calls.append((path, filename, comment, await asyncio.to_thread(path.read_bytes)))
        return f"Shared {filename} in the thread."


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / ".claude-home").mkdir()
    (work / ".claude-home" / "settings.json").write_text("{}")
    (work / "report.md").write_text("# Incident report\n")
    (tmp_path / "outside.txt").write_text("host secret")
    return work


async def test_share_file_refuses_anything_outside_the_workdir_directories_and_large_files(
    workdir: Path, tmp_path: Path
) -> None:
    shares = Shares()
    tools = _tools({}, sandbox=_host_sandbox(workdir), share=shares)
    (workdir / "escape").symlink_to(tmp_path / "outside.txt")
    with (workdir / "huge.bin").open("wb") as huge:
        huge.truncate(MAX_SHARE_BYTES + 1)

    refusals = {
        "../outside.txt": "outside the workdir",
        "/work/../outside.txt": "outside the workdir",
        str(tmp_path / "outside.txt"): "outside the workdir",
        "/etc/passwd": "outside the workdir",
        "escape": "outside the workdir",
        "sub": "is a directory",
        "huge.bin": f"larger than {MAX_SHARE_BYTES // MIB} MB",
        "missing.txt": "no file",
        ".claude-home/settings.json": "cannot be shared",
    }
    for path, reason in refusals.items():
        text, is_error = await _call(tools, "share_file", {"path": path})
        assert is_error and reason in text, (path, text)
    assert shares.calls == []


async def test_share_file_hands_a_copy_of_a_workdir_file_to_the_callback(workdir: Path) -> None:
    shares = Shares()
    tools = _tools({}, sandbox=_host_sandbox(workdir), share=shares)
    assert set(await _listed(tools)) == {"share_file"}
    assert tools.allowed_tools == [mcp_tool_name("share_file")]
    (workdir / "sub" / "graph.txt").write_text("cpu 99%")

    text, is_error = await _call(tools, "share_file", {"path": "report.md", "comment": "the report"})
    again, _ = await _call(tools, "share_file", {"path": "/work/sub/graph.txt"})

    assert (text, is_error, again) == (
        "Shared report.md in the thread.",
        False,
        "Shared graph.txt in the thread.",
    )
    [(path, name, comment, data), (_, name2, comment2, data2)] = shares.calls
    assert (name, comment, data) == ("report.md", "the report", b"# Incident report\n")
    assert (name2, comment2, data2) == ("graph.txt", "", b"cpu 99%")
    assert not path.is_relative_to(workdir) and not path.exists(), "a private copy, removed afterwards"


async def test_share_file_is_not_offered_without_a_workdir_on_this_host(workdir: Path) -> None:
    pod = _tools({}, sandbox=_host_sandbox(workdir, backend="kubernetes"), share=Shares())
    assert await _listed(pod) == {}


@dataclass
class Confined:
    emu: AnthropicEmulator
    k8s: KubernetesEmulator
    tokens: SessionTokens
    backend: BubblewrapBackend
    sandbox: Sandbox
    launcher_dir: Path


@pytest.fixture
async def confined(tmp_path: Path) -> AsyncIterator[Confined]:
    _require_bubblewrap()
    tokens = SessionTokens()
    token = "team-k8s-token-" + secrets.token_hex(12)
    async with (
        AnthropicEmulator() as emu,
        KubernetesEmulator("crashloop", token=token) as k8s,
        proxied_sandbox(tmp_path, emu, tokens) as (_proxy, backend, sandbox),
    ):
        yield Confined(emu, k8s, tokens, backend, sandbox, tmp_path / "launchers")


async def _turn(confined: Confined, tools: TeamTools, prompt: str) -> list[Message]:
    options = await sandboxed_cli_options(
        confined.backend,
        confined.sandbox,
        session_token=confined.tokens.issue("sbx_test"),
        launcher_dir=confined.launcher_dir,
        max_turns=4,
        **team_mcp_options(tools),
    )
    async with ClaudeSDKClient(options=options) as client:
        await client.query(prompt)
        async with asyncio.timeout(TURN_TIMEOUT_S):
            messages = [message async for message in client.receive_response()]
    return messages


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


async def test_the_confined_cli_calls_a_team_tool_that_runs_outside_with_the_teams_credentials(
    confined: Confined,
) -> None:
    token = confined.k8s.token
    list_pods = mcp_tool_name("list_pods")
    confined.emu.responder = (
        RoutedScript()
        .when_tool_result([ScriptStep.text("checkout is crash-looping.")])
        .when_user_says(
            "which pods", [ScriptStep.tool_use(list_pods, {"namespace": "prod"}, text="Looking.")]
        )
    )
    tools = _tools(_k8s_config(confined.k8s.api_url, token), sandbox=confined.sandbox)
    try:
        turn = await _turn(confined, tools, "which pods are failing in prod?")
    finally:
        await tools.close()

    assert isinstance(turn[-1], ResultMessage) and turn[-1].subtype == "success", turn
    first, second = confined.emu.requests
    assert list_pods in first.tool_names and "Bash" in first.tool_names, "the CLI's own tools stay"
    assert mcp_tool_name("rollout_restart") not in first.tool_names
    [result] = second.tool_results
    assert POD in result.text and not result.is_error and json.loads(result.text)["status"] == "ok"
    assert ("GET", "/api/v1/namespaces/prod/pods") in confined.k8s.requests, "ran here, with the token"
    for request in confined.emu.requests:
        assert token not in json.dumps(request.body) and token not in json.dumps(dict(request.headers))
    assert _files_containing(Path(confined.sandbox.workdir), token.encode()) == []
    assert _files_containing(confined.launcher_dir, token.encode()) == []
    reader = TurnReader()
    events = [event for message in turn for event in reader.read(message).events]
    [start] = [e for e in events if isinstance(e, ToolStart)]
    [end] = [e for e in events if isinstance(e, ToolEnd)]
    assert (start.tool, start.args, end.status) == ("list_pods", {"namespace": "prod"}, "ok")


async def test_the_confined_cli_shares_a_file_it_wrote(confined: Confined) -> None:
    shares = Shares()
    write = {"command": "printf 'root cause: OOM\\n' > /work/rca.md", "description": "write the report"}
    confined.emu.responder = (
        RoutedScript()
        .when_tool_result(
            [
                ScriptStep.tool_use(mcp_tool_name("share_file"), {"path": "/work/rca.md", "comment": "RCA"}),
                ScriptStep.text("Shared the report."),
            ]
        )
        .when_user_says("write and share", [ScriptStep.tool_use("Bash", write)])
    )
    tools = _tools({}, sandbox=confined.sandbox, share=shares)

    turn = await _turn(confined, tools, "write and share the report")

    assert isinstance(turn[-1], ResultMessage) and turn[-1].subtype == "success", turn
    [(_, name, comment, data)] = shares.calls
    assert (name, comment, data) == ("rca.md", "RCA", b"root cause: OOM\n")
    assert "Shared rca.md in the thread." in confined.emu.requests[-1].tool_results[0].text
