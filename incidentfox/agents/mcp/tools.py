"""An MCP server's tools as openai-agents ``FunctionTool`` objects that go through the toolset adapter.

Each MCP tool becomes a ``toolsets.base.Tool`` of a per-server ``Toolset`` (``mcp_{id}``) and is run
by ``function_tools.call_tool``, the adapter every toolset tool goes through: progress events (one
timeline line per call), the approval gate for tools that declare themselves destructive, scrubbing
with the team's secrets, the output budget with spill to the run's scratch space, the repeat memory
and metrics. Before that, the server's own ``env`` and ``headers`` values are replaced in its answer
(whatever their names), and each call is cut off at the server's ``call_timeout_s``.

Tool names are ``mcp_{id}_{tool}``, reduced to ``[A-Za-z0-9_-]`` and at most 64 characters (a hash
keeps two long names apart). The model sees the MCP tool's own JSON schema, not a strict one: MCP
schemas often have optional fields that strict mode would make required.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import mcp_types
from agents import FunctionTool
from agents.mcp import MCPServer
from agents.tool_context import ToolContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ConfigDict

from incidentfox.agents.mcp.connection import StartedServer
from incidentfox.agents.mcp.servers import McpServerSpec
from incidentfox.agents.redaction import REDACTED
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.function_tools import call_tool, context_of

MAX_TOOL_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_ERROR_CHARS = 300


class McpArguments(BaseModel):
    """Whatever the model passed; the MCP server validates its own arguments against its schema."""

    model_config = ConfigDict(extra="allow")


def tool_name(server_id: str, tool: str) -> str:
    """``mcp_{id}_{tool}`` with unsafe characters replaced; a long name is cut and given a short hash."""
    name = _UNSAFE.sub("_", f"mcp_{server_id}_{tool}")
    if len(name) <= MAX_TOOL_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_TOOL_NAME - 9]}_{digest}"


def server_toolset(started: StartedServer) -> Toolset:
    """The server as a ``Toolset`` named ``mcp_{id}``: its client is the connected server itself."""
    spec = started.spec
    server = started.server

    async def connected(_config: Mapping[str, Any]) -> MCPServer:
        return server

    return Toolset(
        name=_UNSAFE.sub("_", f"mcp_{spec.server_id}"),
        description=spec.description or f"The team's MCP server {spec.server_id}.",
        instructions="",
        tools=tuple(_tool(spec, mcp_tool) for mcp_tool in started.tools),
        connect=connected,
    )


def function_tools(started: StartedServer, toolset: Toolset, *, agent: str) -> list[FunctionTool]:
    """The server's tools for the agent named ``agent``."""
    schemas = {tool_name(started.spec.server_id, t.name): t for t in started.tools}
    return [
        _function_tool(started.server, toolset, tool, schemas[tool.name], agent=agent)
        for tool in toolset.tools
    ]


def _tool(spec: McpServerSpec, mcp_tool: mcp_types.Tool) -> Tool:
    annotations = mcp_tool.annotations
    destructive = annotations is not None and annotations.destructive_hint is True
    read_only = annotations is not None and annotations.read_only_hint is True
    run = _runner(spec, mcp_tool.name)
    description = (mcp_tool.description or mcp_tool.title or mcp_tool.name).strip()
    return Tool(
        name=tool_name(spec.server_id, mcp_tool.name),
        description=f"{description}\n(MCP server {spec.server_id}, tool {mcp_tool.name})",
        params=McpArguments,
        run=run,
        writes=destructive and not read_only,
    )


def _runner(spec: McpServerSpec, name: str) -> Any:
    own = spec.own_secrets()

    async def run(server: MCPServer, params: McpArguments) -> ToolResult:
        arguments = params.model_dump(mode="json")
        invocation = f"{spec.server_id}: {name} {json.dumps(arguments, sort_keys=True, default=str)}"
        try:
            async with asyncio.timeout(spec.call_timeout_s):
                answer = await server.call_tool(name, arguments)
        except TimeoutError:
            result = ToolResult.failed(
                f"The MCP server {spec.server_id} did not answer {name} within "
                f"{spec.call_timeout_s:g} s and the call was cut off; "
                "try a narrower request or another tool.",
                invocation=invocation,
            )
        except MCPError as exc:
            result = ToolResult.failed(
                f"The MCP server {spec.server_id} refused {name}: {_clip(str(exc))}", invocation=invocation
            )
        except Exception as exc:
            result = ToolResult.failed(
                f"Calling {name} on the MCP server {spec.server_id} failed ({type(exc).__name__}).",
                invocation=invocation,
            )
        else:
            result = tool_result(answer, invocation=invocation)
        return _without(result, own)

    return run


def _without(result: ToolResult, values: list[str]) -> ToolResult:
    """``result`` with the server's own ``env``/``headers`` values replaced; the adapter then scrubs
    (and counts) the team's secrets and anything that looks like a credential."""
    if not values:
        return result
    ordered = sorted(values, key=len, reverse=True)

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for secret in ordered:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, list):
            return [clean(item) for item in value]
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        return value

    return ToolResult(
        status=result.status,
        data=clean(result.data),
        error=clean(result.error),
        url=clean(result.url),
        invocation=clean(result.invocation),
    )


def tool_result(answer: mcp_types.CallToolResult, *, invocation: str) -> ToolResult:
    """An MCP answer as a ``ToolResult``: structured content when given (unwrapped from the SDK's
    ``{"result": …}`` for a non-object return), else the text parts (JSON text parsed); images and
    embedded resources are named, not inlined."""
    texts: list[Any] = []
    for part in answer.content:
        if isinstance(part, mcp_types.TextContent):
            texts.append(_maybe_json(part.text))
        else:
            texts.append(f"[{part.type} content omitted]")
    if answer.is_error:
        message = " ".join(str(t) for t in texts) or "the tool reported an error"
        return ToolResult.failed(_clip(message), invocation=invocation)
    structured = answer.structured_content
    if structured:
        wrapped = set(structured) == {"result"}
        return ToolResult.ok(structured["result"] if wrapped else structured, invocation=invocation)
    if not texts or all(t in ("", None, [], {}) for t in texts):
        return ToolResult.no_data("the MCP tool returned nothing", invocation=invocation)
    return ToolResult.ok(texts[0] if len(texts) == 1 else texts, invocation=invocation)


def _maybe_json(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except ValueError:
            return text
    return text


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def _function_tool(
    server: MCPServer, toolset: Toolset, tool: Tool, mcp_tool: mcp_types.Tool, *, agent: str
) -> FunctionTool:
    annotations = mcp_tool.annotations
    dedupe = not (annotations is not None and annotations.read_only_hint is False)

    async def on_invoke(wrapper: ToolContext[Any], raw_args: str) -> str:
        outcome = await call_tool(
            context_of(wrapper),
            toolset,
            tool,
            raw_args,
            call_id=wrapper.tool_call_id,
            agent=agent,
            spill=True,
            dedupe=dedupe,
            client=server,
        )
        return outcome.text

    return FunctionTool(
        name=tool.name,
        description=tool.description,
        params_json_schema=_schema(mcp_tool.input_schema),
        on_invoke_tool=on_invoke,
        strict_json_schema=False,
    )


def _schema(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    result = dict(schema or {})
    result["type"] = "object"
    result.setdefault("properties", {})
    return result
