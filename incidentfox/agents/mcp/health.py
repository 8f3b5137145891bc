"""MCP server health for the App Home: start each declared server, list its tools, stop it.

One ``HealthLine`` per server in ``mcp_servers`` (``enabled: false`` ones shown as off), named
``mcp: {id}``: ``ok, 12 tools``, or failing with the reason in plain words (a misconfigured entry,
a refused URL, a command that does not exist, a server cut off at its ``timeout_s``). As with the
integrations (``toolsets.health``), results are cached per team, server and settings for ``ttl_s``
seconds, and concurrent callers for the same key share one check.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from incidentfox.agents.mcp.connection import McpStartFailed, start_server, stop_server
from incidentfox.agents.mcp.servers import McpServerSpec, declared_servers
from incidentfox.agents.redaction import scrub_text, secret_values
from incidentfox.agents.toolsets.health import TURNED_OFF, HealthLine

_Key = tuple[str, str, str, str]
_MAX_ENTRIES = 4096


def line_name(server_id: str) -> str:
    return f"mcp: {server_id}"


class McpHealth:
    """Checks and caches the health of teams' MCP servers."""

    def __init__(self, *, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[_Key, tuple[float, HealthLine]] = {}
        self._in_flight: dict[_Key, asyncio.Task[HealthLine]] = {}

    async def check(self, org_id: str, team_id: str, config: Mapping[str, Any]) -> list[HealthLine]:
        """A line per declared server, sorted by id; the servers are checked concurrently."""
        declared = declared_servers(config)
        raw = config.get("mcp_servers")
        entries: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        secrets = secret_values(config)
        lines: dict[str, HealthLine | asyncio.Future[HealthLine]] = {}
        for key in entries:
            server_id = str(key)
            if server_id in declared.problems:
                message = scrub_text(declared.problems[server_id].message, secrets)
                lines[server_id] = HealthLine(line_name(server_id), "failing", message)
            elif server_id in declared.servers:
                spec = declared.servers[server_id]
                lines[server_id] = asyncio.ensure_future(
                    self._cached(org_id, team_id, spec, entries[key], secrets)
                )
            else:
                lines[server_id] = HealthLine(line_name(server_id), "off", TURNED_OFF)
        return [await _settled(lines[i]) for i in sorted(lines)]

    async def _cached(
        self, org_id: str, team_id: str, spec: McpServerSpec, entry: Any, secrets: list[str]
    ) -> HealthLine:
        key = (org_id, team_id, spec.server_id, _fingerprint(entry))
        hit = self._cache.get(key)
        if hit is not None and self._clock() - hit[0] < self._ttl_s:
            return hit[1]
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.create_task(_check(spec, secrets))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(task)

    def _settle(self, key: _Key, task: asyncio.Task[HealthLine]) -> None:
        self._in_flight.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return
        now = self._clock()
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[key] = (now, task.result())


async def _settled(line: HealthLine | asyncio.Future[HealthLine]) -> HealthLine:
    return line if isinstance(line, HealthLine) else await line


async def _check(spec: McpServerSpec, secrets: list[str]) -> HealthLine:
    name = line_name(spec.server_id)
    try:
        started = await start_server(spec)
    except McpStartFailed as exc:
        return HealthLine(name, "failing", scrub_text(str(exc), [*secrets, *spec.own_secrets()]))
    except Exception as exc:
        return HealthLine(name, "failing", f"the check failed unexpectedly ({type(exc).__name__})")
    await stop_server(started.server)
    count = len(started.tools)
    return HealthLine(name, "ok", f"ok, {count} tool{'s' if count != 1 else ''}")


def _fingerprint(entry: Any) -> str:
    """A digest of the server's settings (secrets included, never stored): an edit is checked at once."""
    raw = json.dumps(entry, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()
