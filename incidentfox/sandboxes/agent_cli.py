"""How the SRE agent's Claude Code CLI is started: inside the session's sandbox, through the proxy.

claude-agent-sdk spawns its bundled CLI itself and speaks to it over stdin/stdout; ``cli_path`` may
name any executable. We hand it a launcher script that runs the CLI inside the sandbox (the
backend's ``wrap``) with exactly the offline environment of ``cli_env.offline_cli_env``: the model
proxy as ``ANTHROPIC_BASE_URL`` and the session's token as the key, never the real one. The launcher
drops the environment the SDK merges in, so nothing of the IncidentFox process reaches the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

from claude_agent_sdk import ClaudeAgentOptions, McpServerConfig
from claude_agent_sdk.types import SystemPromptPreset

from incidentfox.sandboxes.backends.base import Sandbox, SandboxBackend, SandboxUnavailable
from incidentfox.sandboxes.backends.local import bundled_cli_dir
from incidentfox.sandboxes.cli_env import offline_cli_env

CLI_HOME = ".claude-home"
"""The CLI's private home, inside the sandbox's workdir (so it lives and expires with the files)."""

CLI_MISSING = (
    "The SRE agent cannot start: claude-agent-sdk's bundled Claude Code CLI is not installed with "
    "IncidentFox. Reinstall IncidentFox with its dependencies."
)


def launcher_path(launcher_dir: Path, sandbox: Sandbox) -> Path:
    """The sandbox's launcher script (it holds the session token: removed when the CLI stops)."""
    return launcher_dir / f"claude-{sandbox.id}"


async def sandboxed_cli_options(
    backend: SandboxBackend,
    sandbox: Sandbox,
    *,
    session_token: str,
    launcher_dir: Path,
    resume: str | None = None,
    system_prompt: str | SystemPromptPreset | None = None,
    max_turns: int | None = None,
    mcp_servers: Mapping[str, McpServerConfig] | None = None,
    allowed_tools: Sequence[str] | None = None,
) -> ClaudeAgentOptions:
    """``ClaudeAgentOptions`` whose CLI runs confined in ``sandbox``.

    ``launcher_dir`` is a host directory only IncidentFox reads: the launcher holds the session token
    (short-lived, useless outside the proxy) in its text. ``resume`` continues the CLI's own session
    while the sandbox (and so the CLI's transcript under its home) still exists. ``mcp_servers`` and
    ``allowed_tools`` (``team_tools.team_mcp_options``) give the CLI IncidentFox's in-process SDK MCP
    server: it runs here, reached over the CLI's stdin/stdout, so no credential enters the sandbox.
    """
    cli = backend.cli_path()
    if cli is None:
        cli_dir = bundled_cli_dir()
        if cli_dir is None:
            raise SandboxUnavailable(CLI_MISSING)
        cli = str(cli_dir / "claude")
    if sandbox.proxy_url is None:
        raise SandboxUnavailable("This sandbox has no route to the model proxy, so the agent cannot run.")
    home = Path(sandbox.cwd) / CLI_HOME
    env = offline_cli_env(home, sandbox.proxy_url, session_token)
    command = await backend.wrap(sandbox, [cli], env)
    await asyncio.to_thread(launcher_dir.mkdir, parents=True, exist_ok=True, mode=0o700)
    launcher = command.write_launcher(launcher_path(launcher_dir, sandbox))
    return ClaudeAgentOptions(
        cli_path=str(launcher),
        cwd=str(launcher_dir),
        permission_mode="bypassPermissions",
        setting_sources=[],
        resume=resume,
        system_prompt=system_prompt,
        max_turns=max_turns,
        mcp_servers=dict(mcp_servers or {}),
        allowed_tools=list(allowed_tools or []),
    )
