"""An offline Grafana on 127.0.0.1: the parts of Grafana's HTTP API that the ``grafana`` toolset uses, in
Grafana's shapes, over a seeded checkout incident (``grafana_seed``).

    async with GrafanaEmulator() as grafana:
        config = {"integrations": {"grafana": grafana.integration_config()}}

Endpoints: ``GET /api/health`` (no credentials needed), ``GET /api/search`` (``query``, ``tag``
(repeatable, all must match), ``type`` ``dash-db``/``dash-folder``, ``limit``), ``GET
/api/dashboards/uid/{uid}`` (``{"dashboard", "meta"}``), ``GET /api/datasources``, ``GET
/api/annotations`` (``from``/``to`` in epoch ms, ``tags`` (all must match), ``dashboardUID``, ``type``
``annotation``/``alert``, ``limit``, newest first), ``GET /api/alertmanager/grafana/api/v2/alerts``
(``active``, ``silenced``, ``inhibited``, ``filter`` matchers) and ``POST /api/ds/query`` (``from``,
``to`` as epoch ms or ``now-1h``; per query ``refId``, ``datasource.uid``, ``expr``, ``intervalMs``),
which answers data frames from the seeded series (``grafana_query``).

Errors are Grafana's JSON bodies: 401 ``Unauthorized`` without a token and ``Invalid API key`` with a
wrong one, 403 ``Access denied`` for the ``viewer_token`` on ``/api/datasources`` (Viewers lack
``datasources:read``), 404 ``Dashboard not found`` and ``Data source not found``, 400 with the data
source's message under ``results.{refId}.error`` for a query it rejects, and 429 with ``Retry-After``
while ``rate_limited``. Every request is kept in ``calls``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from incidentfox.emulators.grafana_query import QueryError, evaluate, frames, log_frame
from incidentfox.emulators.grafana_seed import GrafanaWorld, seeded_world
from incidentfox.emulators.served import LoopbackEmulator

VERSION = "11.3.0"
DEFAULT_TOKEN = "glsa_emulator_0123456789abcdef_1a2b3c4d"
ALERTS_PATH = "/api/alertmanager/grafana/api/v2/alerts"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_RELATIVE = re.compile(r"^now(?:-(\d+)([smhd]))?$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_FILTER = re.compile(r'^\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"?([^"]*)"?\s*$')


@dataclass(frozen=True, slots=True)
class GrafanaCall:
    method: str
    path: str
    query: list[tuple[str, str]]
    body: Any
    org_id: str | None
    status: int


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"message": message, **extra}, status=status)


def _unauthorized(message: str, message_id: str) -> web.Response:
    body = {"extra": None, "message": message, "messageId": message_id, "statusCode": 401, "traceID": ""}
    return web.json_response(body, status=401)


class GrafanaEmulator(LoopbackEmulator):
    """Grafana's read API and its query endpoint on 127.0.0.1. Start with ``async with`` or ``start()``."""

    display_name = "Grafana"

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        viewer_token: str | None = None,
        now: datetime | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token
        self.viewer_token = viewer_token
        super().__init__(host)
        self.world: GrafanaWorld = seeded_world(now or datetime.now(UTC))
        self.rate_limited = False
        """While true, every API call answers 429 with ``Retry-After: retry_after``."""
        self.retry_after = 30
        self.database = "ok"
        self.calls: list[GrafanaCall] = []

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/api/health", self._health)
        app.router.add_get("/api/search", self._search)
        app.router.add_get("/api/dashboards/uid/{uid}", self._dashboard)
        app.router.add_get("/api/datasources", self._datasources)
        app.router.add_get("/api/annotations", self._annotations)
        app.router.add_get(ALERTS_PATH, self._alerts)
        app.router.add_post("/api/ds/query", self._query)
        return app

    def integration_config(self, **overrides: Any) -> dict[str, Any]:
        """The team config section ``integrations.grafana`` that points the toolset here."""
        return {"url": self.url, "api_key": self.token, **overrides}

    @web.middleware
    async def _gate(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        response = await self._answer(request, handler)
        org = request.headers.get("X-Grafana-Org-Id")
        self.calls.append(
            GrafanaCall(request.method, request.path, list(request.query.items()), body, org, response.status)
        )
        return response

    async def _answer(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path == "/api/health":
            return await handler(request)
        if self.rate_limited:
            response = _error(429, "Too Many Requests")
            response.headers["Retry-After"] = str(self.retry_after)
            return response
        header = request.headers.get("Authorization", "")
        if not header:
            return _unauthorized("Unauthorized", "auth.unauthorized")
        if header == f"Bearer {self.viewer_token}" and self.viewer_token:
            if request.path == "/api/datasources":
                return web.json_response(
                    {
                        "accessErrorId": "ACE4011290341",
                        "message": "You'll need additional permissions to perform this action. "
                        "Permissions needed: datasources:read",
                        "title": "Access denied",
                    },
                    status=403,
                )
            return await handler(request)
        if header != f"Bearer {self.token}":
            return _unauthorized("Invalid API key", "api-key.invalid")
        return await handler(request)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"commit": "e0f9a5b", "database": self.database, "version": VERSION})

    async def _search(self, request: web.Request) -> web.Response:
        words = request.query.get("query", "").lower()
        tags = set(request.query.getall("tag", []))
        kind = request.query.get("type")
        limit = _int(request.query.get("limit"), 1000)
        hits: list[dict[str, Any]] = []
        if kind in (None, "dash-folder") and not tags:
            hits += [
                {**f, "type": "dash-folder", "tags": [], "isStarred": False, "uri": f"db/{f['uid']}"}
                for f in self.world.folders
                if words in f["title"].lower()
            ]
        if kind in (None, "dash-db"):
            for found in self.world.dashboards.values():
                model, meta = found["dashboard"], found["meta"]
                if words not in model["title"].lower() or not tags <= set(model.get("tags") or []):
                    continue
                hits.append(
                    {
                        "id": model["id"],
                        "uid": model["uid"],
                        "title": model["title"],
                        "uri": f"db/{meta['slug']}",
                        "url": meta["url"],
                        "slug": meta["slug"],
                        "type": "dash-db",
                        "tags": model.get("tags") or [],
                        "isStarred": False,
                        "folderId": meta["folderId"],
                        "folderUid": meta["folderUid"],
                        "folderTitle": meta["folderTitle"],
                        "folderUrl": meta["folderUrl"],
                        "sortMeta": 0,
                    }
                )
        hits.sort(key=lambda h: (h["type"] != "dash-folder", h["title"].lower()))
        return web.json_response(hits[:limit])

    async def _dashboard(self, request: web.Request) -> web.Response:
        found = self.world.dashboards.get(request.match_info["uid"])
        if found is None:
            return _error(404, "Dashboard not found")
        return web.json_response(found)

    async def _datasources(self, request: web.Request) -> web.Response:
        return web.json_response(self.world.datasources)

    async def _annotations(self, request: web.Request) -> web.Response:
        query = request.query
        start = _int(query.get("from"), 0)
        end = _int(query.get("to"), 2**62)
        tags = set(query.getall("tags", []))
        kind = query.get("type")
        uid = query.get("dashboardUID")
        found = [
            a
            for a in self.world.annotations
            if a["time"] <= end
            and (a.get("timeEnd") or a["time"]) >= start
            and tags <= set(a.get("tags") or [])
            and (not uid or a.get("dashboardUID") == uid)
            and (kind != "annotation" or not a.get("alertId"))
            and (kind != "alert" or a.get("alertId"))
        ]
        found.sort(key=lambda a: a["time"], reverse=True)
        return web.json_response(found[: _int(query.get("limit"), 100)])

    async def _alerts(self, request: web.Request) -> web.Response:
        query = request.query
        wanted = {
            "active": query.get("active", "true") == "true",
            "suppressed": query.get("silenced", "true") == "true" or query.get("inhibited", "true") == "true",
        }
        matchers = []
        for text in query.getall("filter", []):
            match = _FILTER.match(text)
            if not match:
                return _error(400, f"bad matcher format: {text}")
            matchers.append(match.groups())
        found = [
            a
            for a in self.world.alerts
            if wanted.get(a["status"]["state"], False) and all(_matches(a["labels"], m) for m in matchers)
        ]
        return web.json_response(found)

    async def _query(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            queries = list(body.get("queries") or [])
            start = _when(body.get("from"), default=_now_ms() - 3_600_000)
            end = _when(body.get("to"), default=_now_ms())
        except (ValueError, AttributeError, TypeError):
            return _error(400, "bad request data")
        if not queries:
            return web.json_response(
                {
                    "message": "No queries found",
                    "messageId": "query.noQueries",
                    "statusCode": 400,
                    "traceID": "",
                },
                status=400,
            )
        sources = {d["uid"]: d for d in self.world.datasources}
        results: dict[str, Any] = {}
        for query in queries:
            uid = (query.get("datasource") or {}).get("uid")
            source = sources.get(uid) if uid else next(d for d in self.world.datasources if d["isDefault"])
            if source is None:
                return _error(404, "Data source not found", traceID="")
            ref = str(query.get("refId") or "A")
            results[ref] = self._run(query, source, ref, start, end)
        status = 400 if any("error" in r for r in results.values()) else 200
        return web.json_response({"results": results}, status=status)

    def _run(
        self, query: dict[str, Any], source: dict[str, Any], ref: str, start: int, end: int
    ) -> dict[str, Any]:
        expr = str(query.get("expr") or "")
        minimum = _int(str((source.get("jsonData") or {}).get("timeInterval") or "").rstrip("s"), 1) * 1000
        step = max(_int(str(query.get("intervalMs") or ""), 1000), minimum, (end - start) // 11_000)
        step = max(step // 1000 * 1000, 1000)
        if source["type"] == "loki" and expr.lstrip().startswith("{"):
            return {"status": 200, "frames": [log_frame(ref)]}
        expr = (
            expr.replace("$__rate_interval", f"{max(step // 1000 + 15, 60)}s")
            .replace("$__interval", f"{step // 1000}s")
            .replace("$__range", f"{(end - start) // 1000}s")
        )
        try:
            answer = evaluate(
                expr,
                source["uid"],
                self.world.series,
                start_ms=start,
                end_ms=end,
                step_ms=step,
                spike_at_s=self.world.deploy_at.timestamp(),
            )
        except QueryError as exc:
            return {"error": str(exc), "errorSource": "downstream", "status": 400}
        return {"status": 200, "frames": frames(ref, expr, answer, step)}


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _when(raw: Any, *, default: int) -> int:
    """``from``/``to`` of ``/api/ds/query``: epoch milliseconds (number or text) or ``now``, ``now-1h``."""
    if raw is None or raw == "":
        return default
    text = str(raw).strip()
    if text.isdigit():
        return int(text)
    match = _RELATIVE.match(text)
    if not match:
        raise ValueError(text)
    amount, unit = match.groups()
    return _now_ms() - (int(amount) * _UNIT_MS[unit] if amount else 0)


def _matches(labels: dict[str, str], matcher: tuple[str, ...]) -> bool:
    name, op, value = matcher
    have = labels.get(name, "")
    hit = have == value if op in ("=", "!=") else re.fullmatch(value, have) is not None
    return hit != op.startswith("!")
