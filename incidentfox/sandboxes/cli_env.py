"""The environment the bundled Claude Code CLI runs with: offline, quiet, and with nothing of the host.

Checked against the CLI claude-agent-sdk bundles (``claude_agent_sdk/_bundled/claude``, Claude Code
2.1.332): with this environment, ``strace`` of a turn shows no DNS query and no connection except to
``ANTHROPIC_BASE_URL``, and the CLI creates no file outside ``home`` and its working directory.
"""

from __future__ import annotations

from pathlib import Path

SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

BLANKED = (
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)
"""Set to ``""`` (the CLI reads an empty value as unset). claude-agent-sdk merges ``options.env`` over
the parent's ``os.environ``, so where the CLI is spawned straight from the IncidentFox process these
would otherwise leak in: a host bearer token sent to the model proxy, a switch to Bedrock or Vertex,
or a proxy that routes around the model proxy."""


def offline_cli_env(home: Path, base_url: str, api_key: str) -> dict[str, str]:
    """The complete environment for one CLI process; launch it with exactly this (``bwrap
    --clearenv``), or pass it as ``ClaudeAgentOptions(env=...)``.

    * ``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_API_KEY``: the model proxy (or the emulator) and the
      per-session token, sent as ``x-api-key``. Never the real key.
    * ``HOME`` / ``CLAUDE_CONFIG_DIR``: the CLI keeps ``.claude.json``, settings, the session
      transcripts (``projects/<cwd>/<session>.jsonl``), backups and plugin state there; a private
      directory means it neither reads the host user's settings, hooks and credentials nor writes
      beside them.
    * ``TMPDIR`` / ``CLAUDE_CODE_TMPDIR``: ``home/tmp`` (the CLI creates it). Otherwise the CLI puts
      its scratch (``/tmp/claude-<uid>``, ``/tmp/cc-socks/<pid>.sock``) in the shared ``/tmp``.
    * ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1``: the master switch. Without it the CLI sends a
      ``HEAD /api/hello`` to the base URL, asks the model for a session title (an extra
      ``/v1/messages`` without tools, billed like any other), resolves ``api.anthropic.com`` for
      telemetry, feature flags, release notes and update checks, and leaves
      ``telemetry/1p_failed_events.*`` files.
    * ``DISABLE_TELEMETRY`` / ``DISABLE_ERROR_REPORTING`` / ``DISABLE_AUTOUPDATER`` /
      ``DO_NOT_TRACK``: the single switches the master switch implies today, set on their own too so
      that a CLI release narrowing its meaning (it already exempts some update mirrors) stays quiet.
    * ``ENABLE_TOOL_SEARCH=false``: MCP tools (IncidentFox's own toolsets) are sent inline in
      ``tools`` instead of deferred behind ``ToolSearch``, so the model sees them on the first turn
      and the proxy need not forward ``tool_reference`` blocks.
    * ``IS_SANDBOX=1``: tells the CLI it runs in a sandbox IncidentFox made. As uid 0 (a bubblewrap
      sandbox mapping root, a CI machine) it otherwise refuses ``permission_mode="bypassPermissions"``
      ("cannot be used with root/sudo privileges") and exits.
    * ``PATH`` / ``SHELL`` / ``LANG``: what the Bash tool needs in a cleared environment.
    * the ``BLANKED`` variables, as empty strings (see there).
    """
    config_dir = home / ".claude"
    scratch = home / "tmp"
    env = dict.fromkeys(BLANKED, "")
    env.update(
        {
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": api_key,
            "HOME": str(home),
            "CLAUDE_CONFIG_DIR": str(config_dir),
            "TMPDIR": str(scratch),
            "CLAUDE_CODE_TMPDIR": str(scratch),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DO_NOT_TRACK": "1",
            "ENABLE_TOOL_SEARCH": "false",
            "IS_SANDBOX": "1",
            "PATH": SANDBOX_PATH,
            "SHELL": "/bin/bash",
            "LANG": "C.UTF-8",
        }
    )
    return env
