"""Starting and stopping one MCP server with openai-agents' ``MCPServerStdio``/``MCPServerStreamableHttp``.

``start_server`` connects and lists the tools within the server's ``timeout_s``; anything that goes
wrong (a command that does not exist, a URL the egress policy refuses, a server that never answers,
an HTTP 401) becomes ``McpStartFailed`` with one plain sentence and the half-started server stopped.
``stop_server`` never raises and never waits long: a stdio process is terminated by the SDK.

A stdio server gets the MCP SDK's minimal default environment (``PATH``, ``HOME``…) plus its own
``env``: none of the IncidentFox process's own variables (model keys, tokens) reach it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import mcp_types
from agents.exceptions import UserError
from agents.mcp import MCPServer, MCPServerStdio, MCPServerStreamableHttp
from mcp.shared.exceptions import MCPError

from incidentfox.agents.mcp.servers import McpServerSpec
from incidentfox.agents.redaction import scrub_text
from incidentfox.egress import EgressRefused, current_policy

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 5.0


class McpStartFailed(Exception):
    """A server could not be started or listed; ``str()`` is plain words for a user, with no secret."""


@dataclass(frozen=True, slots=True)
class StartedServer:
    spec: McpServerSpec
    server: MCPServer
    tools: tuple[mcp_types.Tool, ...]


def build_server(spec: McpServerSpec) -> MCPServer:
    """The SDK's server object for ``spec`` (not connected). Its own timeouts are the per-call one;
    IncidentFox bounds start and calls itself, so the SDK retries nothing."""
    if spec.transport == "stdio":
        return MCPServerStdio(
            {"command": spec.command, "args": list(spec.args), "env": dict(spec.env)},
            name=spec.server_id,
            client_session_timeout_seconds=spec.call_timeout_s,
        )
    return MCPServerStreamableHttp(
        {
            "url": spec.url,
            "headers": dict(spec.headers),
            "timeout": spec.timeout_s,
            "sse_read_timeout": spec.call_timeout_s,
        },
        name=spec.server_id,
        client_session_timeout_seconds=spec.call_timeout_s,
    )


async def start_server(spec: McpServerSpec) -> StartedServer:
    """Connect to ``spec`` and list its tools within ``spec.timeout_s``, or raise ``McpStartFailed``."""
    if spec.transport == "http":
        try:
            await current_policy().check_url(spec.url, setting=spec.setting)
        except EgressRefused as exc:
            raise McpStartFailed(f"refused to connect: {exc}") from None
    server = build_server(spec)
    try:
        async with asyncio.timeout(spec.timeout_s):
            await server.connect()
            tools = await server.list_tools()
    except TimeoutError:
        await stop_server(server)
        raise McpStartFailed(
            f"it did not start and list its tools within {spec.timeout_s:g} s and was cut off"
        ) from None
    except Exception as exc:
        await stop_server(server)
        reason = describe_start_error(spec, exc)
        log.warning("mcp_server_start_failed server=%s error=%s", spec.server_id, type(exc).__name__)
        raise McpStartFailed(scrub_text(reason, spec.own_secrets())) from None
    return StartedServer(spec, server, tuple(tools))


async def stop_server(server: MCPServer) -> None:
    """Shut the server down (a stdio process is terminated); never raises, gives up after a few seconds."""
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await server.cleanup()
    except (Exception, asyncio.CancelledError) as exc:
        if isinstance(exc, asyncio.CancelledError) and _being_cancelled():
            raise
        log.warning("mcp_server_stop_failed server=%s error=%s", server.name, type(exc).__name__)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def describe_start_error(spec: McpServerSpec, exc: BaseException) -> str:
    """Plain words for a failed start. The SDK's ``UserError`` texts are built to be shown (they name
    the server and the HTTP status, never a credential); other exceptions give only their kind."""
    leaf = _leaf(exc)
    if isinstance(leaf, FileNotFoundError) and spec.transport == "stdio":
        return f"its command `{spec.command}` was not found on the IncidentFox host"
    if isinstance(leaf, PermissionError) and spec.transport == "stdio":
        return f"its command `{spec.command}` could not be run (permission denied)"
    if isinstance(leaf, UserError):
        return str(leaf)
    if isinstance(leaf, MCPError) and spec.transport == "http":
        return (
            f"its URL answered with an error ({_short(str(leaf))}); check `mcp_servers.{spec.server_id}.url` "
            "and the credentials in its `headers`"
        )
    if isinstance(leaf, MCPError):
        return f"it answered with an MCP error ({_short(str(leaf))})"
    if spec.transport == "stdio":
        return f"its process exited or broke the MCP handshake ({type(leaf).__name__})"
    return f"its URL did not answer the MCP handshake ({type(leaf).__name__})"


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside exception groups (anyio task groups wrap them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
