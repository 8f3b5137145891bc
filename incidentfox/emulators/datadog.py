"""An offline Datadog API on 127.0.0.1: the endpoints the ``datadog`` toolset reads, answering in the
JSON shapes of Datadog's API that ``datadog-api-client`` deserialises.

    async with DatadogEmulator() as dd:
        seed_checkout_incident(dd.store, datetime.now(UTC))
        config = {"integrations": {"datadog": dd.integration_config()}}

Endpoints: ``GET /api/v1/validate``, ``GET /api/v1/query`` (``from``, ``to``, ``query``),
``GET /api/v1/metrics`` (``from``, ``host``, ``tag_filter``), ``GET /api/v1/monitor``
(``group_states``, ``name``, ``tags``, ``monitor_tags``, ``page``, ``page_size``),
``GET /api/v1/events`` (``start``, ``end``, ``sources``, ``tags``), ``GET /api/v1/hosts`` (``filter``,
``from``, ``start``, ``count``), ``POST /api/v2/logs/events/search``,
``POST /api/v2/logs/analytics/aggregate``, ``POST /api/v2/spans/events/search`` and
``POST /api/v2/spans/analytics/aggregate``. The metric and search query languages are in
``datadog_search``; what is stored (metrics, logs, spans, monitors, events) in ``datadog_store``; a
checkout incident to fill it with in ``datadog_seed``.

Errors are Datadog's: 404 ``{"errors": ["Not found"]}`` for an unknown path, 403
``{"errors": ["Forbidden"]}`` for a wrong or missing ``DD-API-KEY`` or ``DD-APPLICATION-KEY``
(``/api/v1/validate`` needs only the API key), 400 ``{"errors": [...]}`` for a query it cannot parse,
and, while ``rate_limited``, 429 ``{"errors": ["Too many requests"]}`` with the
``X-RateLimit-Limit``/``-Period``/``-Remaining``/``-Reset``/``-Name`` headers. ``delay_s`` slows every
answer. Every request is kept in ``calls``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from incidentfox.emulators.datadog_search import SearchError
from incidentfox.emulators.datadog_store import DatadogStore, parse_dd_time
from incidentfox.emulators.served import LoopbackEmulator

API_KEY = "0123456789abcdef0123456789abcdef"
APP_KEY = "0123456789abcdef0123456789abcdef01234567"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_RATE_LIMIT_NAMES = {
    "/api/v1/query": "query",
    "/api/v2/logs/events/search": "logs_list",
    "/api/v2/logs/analytics/aggregate": "logs_aggregate",
    "/api/v2/spans/events/search": "spans_list",
    "/api/v2/spans/analytics/aggregate": "spans_aggregate",
}


@dataclass(frozen=True, slots=True)
class DatadogCall:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int


class _BadRequest(Exception):
    """Answered as Datadog answers: 400 with ``{"errors": [message]}``."""


def _errors(status: int, *messages: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"errors": list(messages)}, status=status, headers=headers)


class DatadogEmulator(LoopbackEmulator):
    """Datadog's read API on 127.0.0.1. Start with ``async with`` or ``start()``; fill ``store``."""

    display_name = "Datadog"

    def __init__(self, *, api_key: str = API_KEY, app_key: str = APP_KEY, host: str = "127.0.0.1") -> None:
        self.api_key = api_key
        self.app_key = app_key
        super().__init__(host)
        self.store = DatadogStore()
        self.rate_limited = False
        """While true, every request answers 429 with Datadog's rate-limit headers."""
        self.rate_limit_reset_s = 37
        self.delay_s = 0.0
        self.calls: list[DatadogCall] = []

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/api/v1/validate", self._validate)
        app.router.add_get("/api/v1/query", self._query)
        app.router.add_get("/api/v1/metrics", self._active_metrics)
        app.router.add_get("/api/v1/monitor", self._monitors)
        app.router.add_get("/api/v1/events", self._events)
        app.router.add_get("/api/v1/hosts", self._hosts)
        app.router.add_post("/api/v2/logs/events/search", self._logs_search)
        app.router.add_post("/api/v2/logs/analytics/aggregate", self._logs_aggregate)
        app.router.add_post("/api/v2/spans/events/search", self._spans_search)
        app.router.add_post("/api/v2/spans/analytics/aggregate", self._spans_aggregate)
        return app

    def integration_config(self, **overrides: Any) -> dict[str, Any]:
        """The team config section ``integrations.datadog`` that points the toolset here."""
        return {"url": self.url, "api_key": self.api_key, "app_key": self.app_key, **overrides}

    @web.middleware
    async def _gate(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            try:
                body = json.loads(await request.read())
            except ValueError:
                body = None
        try:
            response = await self._answer(request, handler)
        except (_BadRequest, SearchError) as exc:
            response = _errors(400, str(exc))
        self.calls.append(
            DatadogCall(request.method, request.path, dict(request.query), body, response.status)
        )
        return response

    async def _answer(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.match_info.http_exception is not None:
            return _errors(404, "Not found")
        if request.headers.get("DD-API-KEY") != self.api_key:
            return _errors(403, "Forbidden")
        if request.path != "/api/v1/validate" and request.headers.get("DD-APPLICATION-KEY") != self.app_key:
            return _errors(403, "Forbidden")
        if self.rate_limited:
            headers = {
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Period": "3600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(self.rate_limit_reset_s),
                "X-RateLimit-Name": _RATE_LIMIT_NAMES.get(request.path, "default"),
            }
            return _errors(429, "Too many requests", headers=headers)
        return await handler(request)

    async def _validate(self, request: web.Request) -> web.Response:
        return web.json_response({"valid": True})

    async def _query(self, request: web.Request) -> web.Response:
        try:
            start, end = int(request.query["from"]), int(request.query["to"])
            query = request.query["query"]
        except (KeyError, ValueError) as exc:
            raise _BadRequest("The parameters 'from', 'to' and 'query' are required") from exc
        if end <= start:
            raise _BadRequest("The 'to' parameter must be after 'from'")
        return web.json_response(self.store.query_metrics(query, start, end))

    async def _active_metrics(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query["from"])
        except (KeyError, ValueError) as exc:
            raise _BadRequest("The parameter 'from' is required (seconds since the epoch)") from exc
        names = self.store.active_metrics(
            since, host=request.query.get("host"), tag_filter=request.query.get("tag_filter")
        )
        return web.json_response({"from": str(since), "metrics": names})

    async def _monitors(self, request: web.Request) -> web.Response:
        try:
            page = int(request.query.get("page", "0"))
            page_size = int(request.query.get("page_size", "100"))
        except ValueError as exc:
            raise _BadRequest("page and page_size must be integers") from exc
        if not 1 <= page_size <= 1000:
            raise _BadRequest("page_size must be between 1 and 1000")
        found = self.store.list_monitors(
            group_states=request.query.get("group_states"),
            name=request.query.get("name"),
            scope_tags=request.query.get("tags"),
            monitor_tags=request.query.get("monitor_tags"),
        )
        return web.json_response(found[page * page_size : (page + 1) * page_size])

    async def _events(self, request: web.Request) -> web.Response:
        try:
            start, end = int(request.query["start"]), int(request.query["end"])
        except (KeyError, ValueError) as exc:
            raise _BadRequest("The parameters 'start' and 'end' are required integers") from exc
        events = self.store.list_events(
            start, end, sources=request.query.get("sources"), tags=request.query.get("tags")
        )
        return web.json_response({"events": events, "status": "ok"})

    async def _hosts(self, request: web.Request) -> web.Response:
        try:
            start = int(request.query.get("start", "0"))
            count = int(request.query.get("count", "100"))
            since = int(request.query["from"]) if "from" in request.query else None
        except ValueError as exc:
            raise _BadRequest("start, count and from must be integers") from exc
        if not 1 <= count <= 1000:
            raise _BadRequest("count must be between 1 and 1000")
        found = self.store.list_hosts(request.query.get("filter"), since)
        page = found[start : start + count]
        return web.json_response(
            {"host_list": page, "total_matching": len(found), "total_returned": len(page)}
        )

    async def _logs_search(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        page = body.get("page") or {}
        limit = _limit(page.get("limit"), default=10, maximum=5000)
        found, after = self.store.search_logs(
            (body.get("filter") or {}).get("query"),
            *_window(body.get("filter") or {}),
            sort=str(body.get("sort") or "timestamp"),
            limit=limit,
            cursor=page.get("cursor"),
        )
        return web.json_response(_listing(found, after, self.url + request.path))

    async def _logs_aggregate(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        buckets = self.store.aggregate(
            "logs",
            (body.get("filter") or {}).get("query"),
            *_window(body.get("filter") or {}),
            compute=body.get("compute") or [{"aggregation": "count"}],
            group_by=body.get("group_by") or [],
        )
        rows = [{"by": by, "computes": computes} for by, computes in buckets]
        return web.json_response({"data": {"buckets": rows}, "meta": _meta()})

    async def _spans_search(self, request: web.Request) -> web.Response:
        attributes = _request_attributes(await _json_body(request), "search_request")
        page = attributes.get("page") or {}
        limit = _limit(page.get("limit"), default=10, maximum=1000)
        found, after = self.store.search_spans(
            (attributes.get("filter") or {}).get("query"),
            *_window(attributes.get("filter") or {}),
            sort=str(attributes.get("sort") or "timestamp"),
            limit=limit,
            cursor=page.get("cursor"),
        )
        return web.json_response(_listing(found, after, self.url + request.path))

    async def _spans_aggregate(self, request: web.Request) -> web.Response:
        attributes = _request_attributes(await _json_body(request), "aggregate_request")
        buckets = self.store.aggregate(
            "spans",
            (attributes.get("filter") or {}).get("query"),
            *_window(attributes.get("filter") or {}),
            compute=attributes.get("compute") or [{"aggregation": "count"}],
            group_by=attributes.get("group_by") or [],
        )
        data = [
            {
                "type": "bucket",
                "id": f"bucket-{i}",
                "attributes": {"by": by, "compute": computes, "computes": computes},
            }
            for i, (by, computes) in enumerate(buckets)
        ]
        return web.json_response({"data": data, "meta": _meta()})


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise _BadRequest("Malformed JSON body") from exc
    if not isinstance(body, dict):
        raise _BadRequest("The request body must be a JSON object")
    return body


def _request_attributes(body: dict[str, Any], kind: str) -> dict[str, Any]:
    data = body.get("data") or {}
    if data.get("type") != kind:
        raise _BadRequest(f"data.type must be {kind}")
    return dict(data.get("attributes") or {})


def _window(query_filter: dict[str, Any]) -> tuple[float, float]:
    end = parse_dd_time(query_filter.get("to"), default="now")
    start = parse_dd_time(query_filter.get("from"), default="now-15m")
    if start >= end:
        raise _BadRequest("The time range is empty: 'from' must be before 'to'")
    return start, end


def _limit(raw: Any, *, default: int, maximum: int) -> int:
    limit = default if raw is None else raw
    if not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise _BadRequest(f"page[limit] must be between 1 and {maximum}")
    return limit


def _meta(after: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"elapsed": 12, "request_id": "pddv1ChZlbXVsYXRvcg", "status": "done"}
    if after:
        meta["page"] = {"after": after}
    return meta


def _listing(found: list[dict[str, Any]], after: str | None, url: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"data": found, "meta": _meta(after)}
    if after:
        answer["links"] = {"next": f"{url}?page[cursor]={after}"}
    return answer
