"""The real bundled Claude Code CLI, confined in a bubblewrap sandbox and reaching the (emulated) model
only through IncidentFox's proxy: a scripted Bash tool use cannot read a host canary file or a host
canary variable, the real API key never enters the sandbox, and the model sees only what the proxy
forwards. This is the SRE agent's security claim, end to end."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from claude_agent_sdk import ClaudeSDKClient, Message, ResultMessage

from incidentfox.emulators.anthropic_api import AnthropicEmulator, RoutedScript, ScriptStep
from incidentfox.sandboxes.agent_cli import sandboxed_cli_options
from incidentfox.sandboxes.backends.base import ProxyEndpoint, Sandbox, SandboxSpec
from incidentfox.sandboxes.backends.local import BWRAP_MISSING, BubblewrapBackend, bubblewrap_problem
from incidentfox.sandboxes.model_proxy import ModelProxy
from incidentfox.sandboxes.session_tokens import SessionTokens

TURN_TIMEOUT_S = 90.0


@dataclass
class Confined:
    emu: AnthropicEmulator
    proxy: ModelProxy
    tokens: SessionTokens
    backend: BubblewrapBackend
    sandbox: Sandbox
    launcher_dir: Path


def _require_bubblewrap() -> None:
    problem = bubblewrap_problem()
    if problem is None:
        return
    environment_limit = problem == BWRAP_MISSING or problem.startswith(
        "the kernel forbids unprivileged user namespaces"
    )
    if os.environ.get("INCIDENTFOX_REQUIRE_SANDBOX") == "1" or not environment_limit:
        pytest.fail(f"bubblewrap sandboxes are required but cannot run here: {problem}")
    pytest.skip(f"bubblewrap sandboxes cannot run here: {problem}")


@asynccontextmanager
async def proxied_sandbox(
    tmp_path: Path, emu: AnthropicEmulator, tokens: SessionTokens
) -> AsyncIterator[tuple[ModelProxy, BubblewrapBackend, Sandbox]]:
    """A bubblewrap sandbox whose only way out is a model proxy (on a Unix socket) to ``emu``."""
    proxy = ModelProxy(tokens, api_key=emu.api_key, upstream=emu.base_url)
    socket_path = tmp_path / "proxy.sock"
    await proxy.start(unix_path=socket_path)
    backend = BubblewrapBackend(tmp_path / "sandboxes")
    spec = SandboxSpec(
        session_id="sbx_test",
        org_id="acme",
        team_id="payments",
        run_id="run_test",
        thread_key="T1:C1:1.000100",
        proxy=ProxyEndpoint(unix_socket=socket_path),
    )
    sandbox = await backend.create(spec)
    try:
        yield proxy, backend, sandbox
    finally:
        await backend.destroy(sandbox)
        await proxy.stop()


@pytest.fixture
async def confined(tmp_path: Path) -> AsyncIterator[Confined]:
    _require_bubblewrap()
    tokens = SessionTokens()
    async with (
        AnthropicEmulator() as emu,
        proxied_sandbox(tmp_path, emu, tokens) as (proxy, backend, sandbox),
    ):
        yield Confined(emu, proxy, tokens, backend, sandbox, tmp_path / "launchers")


async def _turn(client: ClaudeSDKClient, prompt: str) -> list[Message]:
    await client.query(prompt)
    async with asyncio.timeout(TURN_TIMEOUT_S):
        return [message async for message in client.receive_response()]


async def test_the_agent_runs_confined_and_cannot_reach_host_secrets(
    confined: Confined, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_secret = "file-canary-" + secrets.token_hex(8)
    env_secret = "env-canary-" + secrets.token_hex(8)
    canary = tmp_path / "host-canary.txt"
    canary.write_text(file_secret, encoding="utf-8")
    monkeypatch.setenv("INCIDENTFOX_HOST_CANARY", env_secret)
    probe = {
        "command": f"cat {canary} 2>&1; echo ENV=$INCIDENTFOX_HOST_CANARY; env; echo hi > made.txt; pwd",
        "description": "probe the sandbox",
    }
    confined.emu.responder = (
        RoutedScript()
        .when_tool_result([ScriptStep.text("Probed.")])
        .when_user_says("probe", [ScriptStep.tool_use("Bash", probe, text="Probing.")])
    )
    token = confined.tokens.issue("sbx_test")
    options = await sandboxed_cli_options(
        confined.backend,
        confined.sandbox,
        session_token=token,
        launcher_dir=confined.launcher_dir,
        max_turns=4,
    )
    async with ClaudeSDKClient(options=options) as client:
        turn = await _turn(client, "probe the sandbox")

    assert isinstance(turn[-1], ResultMessage) and turn[-1].subtype == "success", turn
    first, second = confined.emu.requests
    [result] = second.tool_results
    seen_inside = result.text
    assert file_secret not in seen_inside and "No such file" in seen_inside
    assert env_secret not in seen_inside and "ENV=\n" in seen_inside + "\n"
    assert confined.emu.api_key not in seen_inside, "the real API key is not in the sandbox's environment"
    assert token in seen_inside, "the sandbox holds only its session token"
    assert "/work" in seen_inside
    assert (Path(confined.sandbox.workdir) / "made.txt").read_text() == "hi\n"
    for request in (first, second):
        assert request.headers["x-api-key"] == confined.emu.api_key, "the proxy swapped in the real key"
        assert token not in json.dumps(request.headers)
    assert confined.proxy.requests_by_session == {"sbx_test": 2}
    launcher_text = next(confined.launcher_dir.iterdir()).read_text()
    assert confined.emu.api_key not in launcher_text and env_secret not in launcher_text


async def test_a_revoked_session_token_stops_the_agent_at_the_proxy(confined: Confined) -> None:
    confined.emu.responder = RoutedScript().when_user_says("hello", [ScriptStep.text("hi")])
    token = confined.tokens.issue("sbx_test")
    options = await sandboxed_cli_options(
        confined.backend,
        confined.sandbox,
        session_token=token,
        launcher_dir=confined.launcher_dir,
        max_turns=2,
    )
    confined.tokens.revoke("sbx_test")
    async with ClaudeSDKClient(options=options) as client:
        turn = await _turn(client, "hello")
    assert isinstance(turn[-1], ResultMessage) and turn[-1].is_error
    assert confined.emu.requests == [], "nothing reached the model without a live session token"
