"""An MCP server (stdio) offering a HolmesGPT fixture's recorded tool outputs as tools.

``python -m incidentfox.evals.holmes_tools FIXTURE_DIR``: one read-only tool per recorded call, named
after HolmesGPT's tool (a suffix tells apart several calls of one tool), described with the recorded
parameters, answering the recorded output. The eval harness attaches it to the planner of a HolmesGPT
case's team through ``mcp_servers``, as a team would attach any MCP server.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from incidentfox.evals.holmes import read_mocks


def tool_names(mocks: tuple[Mapping[str, Any], ...]) -> list[str]:
    """A unique, MCP-safe name per recorded call: ``kubectl_logs``, ``kubectl_logs_2``, …"""
    names: list[str] = []
    for mock in mocks:
        base = re.sub(r"[^A-Za-z0-9_-]+", "_", str(mock["tool"]))[:50] or "tool"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


def _answer(output: str) -> Callable[[], str]:
    def recorded() -> str:
        return output

    return recorded


def build_server(directory: Path) -> MCPServer:
    mocks = read_mocks(directory)
    server = MCPServer("holmes-fixture", instructions="Recorded outputs of the tools of one investigation.")
    for name, mock in zip(tool_names(mocks), mocks, strict=True):
        params = json.dumps(mock["params"], sort_keys=True)
        server.add_tool(
            _answer(str(mock["output"])),
            name=name,
            description=f"{mock['tool']} ({mock['toolset']}) called with {params}: returns its output.",
            annotations=ToolAnnotations(read_only_hint=True),
        )
    return server


if __name__ == "__main__":
    build_server(Path(sys.argv[1])).run("stdio")
