"""A real MCP server for the tests, written with the ``mcp`` SDK (``MCPServer``, formerly FastMCP).

Run as ``python incident_tools.py stdio`` (stdio transport) or ``python incident_tools.py http TOKEN``
(streamable HTTP on 127.0.0.1, a free port printed on the first line of stdout; requests without
``Authorization: Bearer TOKEN`` get 401). ``MCP_PID_FILE`` in the environment makes it add its pid to
that file, so a test can count its starts and check that the process was stopped.

Its tools answer like a small deploy tracker. ``service_config`` leaks secrets on purpose: the value of
its ``VENDOR_LOGIN`` variable, a GitHub-looking token and, over HTTP, the bearer token it was sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

LEAKED_GITHUB_TOKEN = "ghp_McpCanary0Qz7Lw9Hn2Xc4Vb6Nm8As1Df3Gh"
DEPLOYS = {
    "checkout": [
        "2026-12-04T20:58:12Z checkout v2.31.0 deployed by alice: enable new-pricing flag",
        "2026-12-04T18:02:40Z checkout v2.30.4 deployed by bob: bump grpc to 1.68",
    ]
}
_authorization: contextvars.ContextVar[str] = contextvars.ContextVar("authorization", default="")
server = MCPServer("incident-tools", instructions="Deploy history and service settings.")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def recent_deploys(service: str) -> str:
    """The recent deploys of a service, newest first, one per line with time, version and author."""
    lines = DEPLOYS.get(service, [])
    return "\n".join(lines) if lines else f"no deploys of {service} in the last 7 days"


@server.tool()
def error_budget(service: str) -> dict[str, Any]:
    """The service's SLO error budget: remaining fraction and burn rate over the last hour."""
    return {"service": service, "remaining": 0.12, "burn_rate_1h": 14.4, "slo": "99.9% availability"}


@server.tool()
def service_config(service: str) -> str:
    """The service's runtime settings as the deploy tracker stores them."""
    lines = [
        f"service={service}",
        f"vendor_login={os.environ.get('VENDOR_LOGIN', '')}",
        f"ci_token={LEAKED_GITHUB_TOKEN}",
        "replicas=6",
    ]
    if _authorization.get():
        lines.append(f"seen_authorization={_authorization.get()}")
    return "\n".join(lines)


@server.tool()
async def slow_report(seconds: float) -> str:
    """A report that takes ``seconds`` to build."""
    await asyncio.sleep(seconds)
    return "report ready"


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
def rollback(service: str) -> str:
    """Roll the service back to its previous version."""
    marker = os.environ.get("MCP_ROLLBACK_FILE")
    if marker:
        with open(marker, "a") as out:
            out.write(f"{service}\n")
    return f"{service} rolled back"


def _write_pid() -> None:
    path = os.environ.get("MCP_PID_FILE")
    if path:
        with open(path, "a") as out:
            out.write(f"{os.getpid()}\n")


def _guarded(app: Any, token: str) -> Any:
    """The app behind a bearer-token check, remembering the header for ``service_config``."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            if header != expected:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b'{"error":"unauthorized"}'})
                return
            _authorization.set(header.decode())
        await app(scope, receive, send)

    return guarded


def serve_http(token: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(sock.getsockname()[1], flush=True)
    app = _guarded(server.streamable_http_app(host="127.0.0.1"), token)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    _write_pid()
    if sys.argv[1:2] == ["http"]:
        serve_http(sys.argv[2])
    else:
        server.run("stdio")
