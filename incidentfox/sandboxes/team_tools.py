"""The team's integrations for the SRE agent: an in-process SDK MCP server named ``incidentfox``.

Integration credentials never enter the sandbox. The CLI inside it sees only tool names and schemas;
every call travels over the SDK's control protocol (the CLI's stdin/stdout, which the launcher passes
through) to this process, where the real tool function runs with the team's config. Nothing
network-wise is opened for the sandbox.

* The tools are the **read-only** tools of the team's available toolsets (``configured_toolsets``,
  the planner's own rule). Write tools (``Tool.writes``) are not offered at all: a session has no
  approval gate in v1, so nothing here can restart, scale, comment or page.
* Each call goes through the planner's adapter (``function_tools.call_tool``): arguments validated
  against the params model, the toolset's client connected once per ``TeamTools`` and cached, the
  result scrubbed of secrets (patterns and the team's own secret values), and an over-budget result
  kept whole for the session and summarised, with ``search_output`` and ``read_output`` offered to dig
  into it (nothing is silently cut). The text is exactly what a planner sub-agent would see; a result
  with status ``error`` is marked ``is_error``.
* ``share_file`` (offered only with a ``share`` callback and a workdir on this host) attaches a file
  of the workdir to the Slack thread: paths are resolved inside the workdir (symlinks followed, ``..``
  refused), only regular files up to ``MAX_SHARE_BYTES``, never the CLI's own home; the bytes are
  copied out of the sandbox before the callback sees them, so the sandbox cannot swap the file.

Progress needs nothing extra: the session's ``TurnReader`` already turns the CLI's ``ToolUseBlock`` /
``ToolResultBlock`` of any tool, these included, into ``ToolStart``/``ToolEnd`` events (the tool named
``mcp__incidentfox__<tool>``), so the context here emits nothing, and nothing is shown twice.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypedDict

from claude_agent_sdk import (
    McpSdkServerConfig,
    McpServerConfig,
    SdkMcpTool,
    ToolAnnotations,
    create_sdk_mcp_server,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent
from incidentfox.agents.output_budget import OutputBudget
from incidentfox.agents.redaction import scrub_text, secret_values
from incidentfox.agents.specialists import configured_toolsets
from incidentfox.agents.toolsets.base import Tool, Toolset
from incidentfox.agents.toolsets.function_tools import call_tool, close_clients
from incidentfox.agents.toolsets.outputs import OUTPUTS, ScratchReader
from incidentfox.sandboxes.agent_cli import CLI_HOME
from incidentfox.sandboxes.backends.base import MIB, Sandbox
from incidentfox.sandboxes.backends.local import BubblewrapBackend
from incidentfox.sandboxes.backends.unsafe_local import UnsafeLocalBackend
from incidentfox.sandboxes.session_stream import AGENT

log = logging.getLogger(__name__)

SERVER_NAME = "incidentfox"
SHARE_FILE = "share_file"
MAX_SHARE_BYTES = 5 * MIB
HOST_WORKDIR_BACKENDS = frozenset({BubblewrapBackend.name, UnsafeLocalBackend.name})
"""Backends whose ``Sandbox.workdir`` is a directory on this host (a pod's volume is not)."""
_NOTICE_ROOM = 1_000
"""Room above a tool's budget for the truncation notice, so the CLI keeps results inline."""
_COMMENT_CHARS = 1_000
SHARE_USAGE = "share_file needs a path (a file in the workdir) and an optional comment."

ShareFile = Callable[[Path, str, str], Awaitable[str]]
"""``async def share(path, filename, comment) -> confirmation``: upload a copy of the file to the
thread. ``path`` is a private copy outside the sandbox, removed once the callback returns."""


class ShareRefused(Exception):
    """Why a file cannot be shared, in plain words for the model."""


class ShareFileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="The file's path, relative to the workdir (or absolute under it).")
    comment: str = Field(default="", description="A short note posted with the file.")


class McpOptions(TypedDict):
    """The ``sandboxed_cli_options`` keywords that give the CLI the ``incidentfox`` server."""

    mcp_servers: dict[str, McpServerConfig]
    allowed_tools: list[str]


@dataclass(slots=True)
class TeamTools:
    """One CLI connection's ``incidentfox`` server. ``close`` releases the toolsets' clients."""

    server: McpSdkServerConfig
    tool_names: tuple[str, ...]
    context: InvestigationContext

    @property
    def allowed_tools(self) -> list[str]:
        return [mcp_tool_name(name) for name in self.tool_names]

    async def close(self) -> None:
        await close_clients(self.context)


def mcp_tool_name(tool: str) -> str:
    """The name the CLI (and the model) uses for one of this server's tools."""
    return f"mcp__{SERVER_NAME}__{tool}"


def team_mcp_options(tools: TeamTools) -> McpOptions:
    """``mcp_servers`` and ``allowed_tools`` for ``sandboxed_cli_options``; empty without any tool."""
    if not tools.tool_names:
        return McpOptions(mcp_servers={}, allowed_tools=[])
    return McpOptions(mcp_servers={SERVER_NAME: tools.server}, allowed_tools=tools.allowed_tools)


def _silent(event: ProgressEvent) -> None:
    """Tool progress is read from the CLI's own stream (``TurnReader``); see the module docstring."""


def _text(text: str, *, is_error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "is_error": is_error}


def read_only_tools(config: Mapping[str, Any]) -> list[tuple[Toolset, Tool]]:
    """The tools offered: the read-only tools of the toolsets the team's config makes available."""
    offered: dict[str, tuple[Toolset, Tool]] = {}
    for toolset in configured_toolsets(config):
        for tool in toolset.tools:
            if not tool.writes and tool.name != SHARE_FILE:
                offered.setdefault(tool.name, (toolset, tool))
    return list(offered.values())


def build_team_tools(
    config: Mapping[str, Any],
    *,
    org_id: str,
    team_node_id: str,
    session_id: str,
    sandbox: Sandbox | None = None,
    share: ShareFile | None = None,
) -> TeamTools:
    """The ``incidentfox`` server for one CLI connection of ``session_id``.

    ``config`` is the team's effective config with secrets (it stays in this process). ``share_file``
    is offered when ``share`` is given and ``sandbox``'s workdir is on this host."""
    context = InvestigationContext(
        run_id=session_id, org_id=org_id, team_node_id=team_node_id, config=config, emit=_silent
    )
    budget = OutputBudget.from_config(config)
    tools = [_team_tool(context, toolset, tool, budget) for toolset, tool in read_only_tools(config)]
    if tools:
        tools.extend(_output_tool(context, tool, budget) for tool in OUTPUTS.tools)
    workdir = host_workdir(sandbox) if sandbox is not None else None
    if share is not None and sandbox is not None and workdir is not None:
        tools.append(_share_tool(workdir, sandbox.cwd, share, secret_values(config)))
    server = create_sdk_mcp_server(SERVER_NAME, tools=tools)
    return TeamTools(server, tuple(t.name for t in tools), context)


def _team_tool(
    context: InvestigationContext, toolset: Toolset, tool: Tool, budget: OutputBudget
) -> SdkMcpTool[Any]:
    calls = itertools.count(1)

    async def handler(args: dict[str, Any]) -> dict[str, Any]:
        call_id = f"{SERVER_NAME}-{tool.name}-{next(calls)}"
        outcome = await call_tool(
            context, toolset, tool, json.dumps(args), call_id=call_id, agent=AGENT, budget=budget, spill=True
        )
        return _text(outcome.text, is_error=outcome.result.status == "error")

    annotations = ToolAnnotations(
        readOnlyHint=True, maxResultSizeChars=budget.limit_for(tool.name) + _NOTICE_ROOM
    )
    schema = tool.params.model_json_schema()
    return SdkMcpTool(tool.name, tool.description, schema, handler, annotations)


def _output_tool(context: InvestigationContext, tool: Tool, budget: OutputBudget) -> SdkMcpTool[Any]:
    """``search_output`` / ``read_output`` over the outputs this session's team tools kept."""
    calls = itertools.count(1)

    async def handler(args: dict[str, Any]) -> dict[str, Any]:
        reader = ScratchReader(context.scratch.outputs, budget.limit_for(tool.name))
        call_id = f"{SERVER_NAME}-{tool.name}-{next(calls)}"
        outcome = await call_tool(
            context,
            OUTPUTS,
            tool,
            json.dumps(args),
            call_id=call_id,
            agent=AGENT,
            budget=budget,
            client=reader,
        )
        return _text(outcome.text, is_error=outcome.result.status == "error")

    annotations = ToolAnnotations(
        readOnlyHint=True, maxResultSizeChars=budget.limit_for(tool.name) + _NOTICE_ROOM
    )
    return SdkMcpTool(tool.name, tool.description, tool.params.model_json_schema(), handler, annotations)


def host_workdir(sandbox: Sandbox) -> Path | None:
    """The sandbox's workdir as a directory on this host, or ``None`` (a pod's volume)."""
    return Path(sandbox.workdir) if sandbox.backend in HOST_WORKDIR_BACKENDS else None


def resolve_shared(workdir: Path, cwd: str, raw: str) -> Path:
    """The host path of the workdir file ``raw`` names (relative, or absolute under ``cwd``, the
    workdir as the sandbox sees it), symlinks resolved; ``ShareRefused`` when it is not inside."""
    text = raw.strip()
    if not text or "\0" in text:
        raise ShareRefused("Give the path of a file in the workdir.")
    path = PurePosixPath(text)
    if path.is_absolute():
        if not path.is_relative_to(PurePosixPath(cwd)):
            raise ShareRefused(f"{raw} is outside the workdir ({cwd}); only files in it can be shared.")
        path = path.relative_to(PurePosixPath(cwd))
    root = workdir.resolve(strict=True)
    try:
        target = (root / path).resolve(strict=True)
    except (OSError, RuntimeError):
        raise ShareRefused(f"There is no file {raw} in the workdir.") from None
    if target == root or not target.is_relative_to(root):
        raise ShareRefused(f"{raw} is outside the workdir ({cwd}); only files in it can be shared.")
    if target.is_relative_to(root / CLI_HOME):
        raise ShareRefused(f"{raw} belongs to the agent's own settings and cannot be shared.")
    return target


def copy_out(target: Path, root: Path, into: Path, limit: int = MAX_SHARE_BYTES) -> Path:
    """Copy the regular file ``target`` (at most ``limit`` bytes) into ``into``, reading the file that
    was actually opened: a path swapped for a symlink or a directory after ``resolve_shared`` is
    refused."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(target, flags)
    except OSError:
        raise ShareRefused(f"{target.name} could not be opened for sharing.") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ShareRefused(f"{target.name} is a directory; share one file (make an archive first).")
        if not stat.S_ISREG(info.st_mode):
            raise ShareRefused(f"{target.name} is not a regular file.")
        if info.st_size > limit:
            raise ShareRefused(_too_large(target.name, limit))
        if not _opened_inside(fd, info, target, root.resolve()):
            raise ShareRefused(f"{target.name} moved out of the workdir while it was being shared.")
        with os.fdopen(os.dup(fd), "rb") as opened:
            data = opened.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ShareRefused(_too_large(target.name, limit))
    copy = into / target.name
    copy.write_bytes(data)
    return copy


def _too_large(name: str, limit: int) -> str:
    return f"{name} is larger than {limit // MIB} MB, the most that can be shared; share a smaller file."


def _opened_inside(fd: int, info: os.stat_result, target: Path, root: Path) -> bool:
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}")).is_relative_to(root)
    except OSError:
        now = os.stat(target, follow_symlinks=False)
        return (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino)


def _share_tool(workdir: Path, cwd: str, share: ShareFile, secrets: list[str]) -> SdkMcpTool[Any]:
    async def handler(args: dict[str, Any]) -> dict[str, Any]:
        try:
            params = ShareFileParams.model_validate(args)
        except ValidationError:
            return _text(
                "share_file needs a path (a file in the workdir) and an optional comment.", is_error=True
            )
        comment = scrub_text(params.comment, secrets)[:_COMMENT_CHARS]
        scratch = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="incidentfox-share-"))
        try:
            target = await asyncio.to_thread(resolve_shared, workdir, cwd, params.path)
            copy = await asyncio.to_thread(copy_out, target, workdir, scratch)
            return _text(await share(copy, target.name, comment))
        except ShareRefused as refused:
            return _text(str(refused), is_error=True)
        except Exception as exc:
            log.warning("share_file failed error=%s", type(exc).__name__)
            return _text(f"Sharing the file failed ({type(exc).__name__}); try again later.", is_error=True)
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    description = (
        "Attach a file from the workdir to the Slack thread (a report, a graph, a log excerpt). "
        f"Regular files up to {MAX_SHARE_BYTES // MIB} MB; give its path relative to the workdir."
    )
    return SdkMcpTool(SHARE_FILE, description, ShareFileParams.model_json_schema(), handler)
