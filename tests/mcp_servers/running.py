"""How tests run the MCP servers in this folder: a stdio server's config entry, and the HTTP server
started as its own process on 127.0.0.1 (a free port it reports), stopped afterwards."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
INCIDENT_TOOLS = str(HERE / "incident_tools.py")
SILENT = str(HERE / "silent.py")
TOOL_NAMES = ("recent_deploys", "error_budget", "service_config", "slow_report", "rollback")


def stdio_entry(
    script: str = INCIDENT_TOOLS, *, env: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """``mcp_servers.{id}`` for a script of this folder run with this interpreter over stdio."""
    args = [script, "stdio"] if script == INCIDENT_TOOLS else [script]
    return {"command": sys.executable, "args": args, "env": env or {}, **extra}


@asynccontextmanager
async def http_server(token: str, *, env: dict[str, str] | None = None) -> AsyncIterator[str]:
    """``incident_tools.py`` over streamable HTTP; yields its URL (``http://127.0.0.1:PORT/mcp``)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        INCIDENT_TOOLS,
        "http",
        token,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        port = int((await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip())
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return True


async def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while pid_alive(pid):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def last_pid(pid_file: Path) -> int:
    """The pid of the latest start recorded in ``MCP_PID_FILE``."""
    return int(pid_file.read_text().split()[-1])
