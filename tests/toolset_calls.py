"""Calling one tool of a toolset directly, as its own tests do (no adapter: no budget, no scrubbing)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from incidentfox.agents.toolsets.base import ToolResult, Toolset


async def run_tool(toolset: Toolset, client: Any, name: str, /, **args: Any) -> ToolResult:
    """``name``'s parameters validated as the model's would be, then the tool run on ``client``."""
    tool = next(t for t in toolset.tools if t.name == name)
    return await tool.run(client, tool.params.model_validate(args))


async def run_once(
    toolset: Toolset,
    connect: Callable[[Mapping[str, Any]], Awaitable[Any]],
    config: Mapping[str, Any],
    name: str,
    /,
    **args: Any,
) -> ToolResult:
    """One call on a client of its own, closed afterwards (for configs a test builds on the spot)."""
    client = await connect(config)
    try:
        return await run_tool(toolset, client, name, **args)
    finally:
        await client.close()
