"""An offline Grafana Loki on 127.0.0.1: the parts of Loki's HTTP API that the ``loki`` toolset uses,
in Loki's shapes (Loki itself is in neither Debian nor PyPI).

    async with LokiEmulator() as loki:
        loki.push({"app": "checkout", "level": "error"}, [(datetime.now(UTC), "payment declined")])
        config = {"integrations": {"loki": loki.integration_config()}}

Endpoints: ``POST /loki/api/v1/push`` (the JSON body ``{"streams": [{"stream": {...}, "values":
[["<unix ns>", "<line>"], ...]}]}``, 204), ``GET /loki/api/v1/query_range`` (``query``, ``start``,
``end``, ``limit`` (default 100, at most ``max_entries_limit``), ``direction`` (``backward``),
``step``; times as unix ns, unix seconds or RFC3339, as Loki reads them) answering ``streams`` for a
log query and ``matrix`` for a metric query (the LogQL of ``loki_logql``), ``GET /loki/api/v1/labels``,
``GET /loki/api/v1/label/{name}/values`` (optional ``query``), ``GET /loki/api/v1/series``
(``match[]``) and ``GET /ready``.

Errors are Loki's: plain text with 400 for a query it cannot parse or parameters it rejects, ``no org
id`` with 401 when ``auth_enabled`` (multi-tenant) and ``X-Scope-OrgID`` is missing, and ``too many
outstanding requests`` with 429 while ``overloaded``. ``bearer_token`` or ``basic_auth`` puts an auth
gateway in front (401 ``Unauthorized``). Without ``auth_enabled`` every stream belongs to the tenant
``fake``, as in single-tenant Loki. Every request is kept in ``calls``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import encode_basic_auth, web

from incidentfox.emulators.loki_logql import (
    Entry,
    Labels,
    LogQLError,
    LogQuery,
    evaluate,
    parse,
    parse_duration,
    select,
)
from incidentfox.emulators.served import LoopbackEmulator

SINGLE_TENANT = "fake"
MAX_POINTS = 11_000
DEFAULT_LIMIT = 100
_TENANT = web.RequestKey("tenant", str)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class LokiCall:
    method: str
    path: str
    query: dict[str, str]
    tenant: str | None
    status: int


class _BadRequest(Exception):
    """Answered as Loki answers: 400 with the message as plain text."""


def to_ns(at: datetime | int | float) -> int:
    if isinstance(at, datetime):
        moment = at if at.tzinfo else at.replace(tzinfo=UTC)
        return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    return int(at) if isinstance(at, int) else int(at * 1e9)


def parse_timestamp(value: str | None, default: int) -> int:
    """Loki's ``parseTimestamp``: float seconds when there is a dot, else an integer (seconds up to 10
    digits, nanoseconds beyond), else RFC3339."""
    if not value:
        return default
    if "." in value:
        try:
            return int(float(value) * 1e9)
        except ValueError:
            pass
    try:
        number = int(value)
    except ValueError:
        try:
            return to_ns(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError as exc:
            raise _BadRequest(f'cannot parse "{value}" to a valid timestamp') from exc
    return number * 10**9 if len(value) <= 10 else number


def _step_ns(value: str | None, start: int, end: int) -> int:
    if not value:
        return max(math.floor((end - start) / 1e9 / 250), 1) * 10**9
    try:
        return int(float(value) * 1e9)
    except ValueError:
        pass
    seconds = parse_duration(value)
    if seconds <= 0:
        raise _BadRequest(f'cannot parse "{value}" to a valid duration')
    return int(seconds * 1e9)


def _number(value: float) -> str:
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


class LokiEmulator(LoopbackEmulator):
    """Loki's read API and push endpoint on 127.0.0.1. Start with ``async with`` or ``start()``."""

    display_name = "Loki"

    def __init__(
        self,
        *,
        auth_enabled: bool = False,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        max_entries_limit: int = 5000,
        host: str = "127.0.0.1",
    ) -> None:
        self.auth_enabled = auth_enabled
        self.bearer_token = bearer_token
        self.basic_auth = basic_auth
        self.max_entries_limit = max_entries_limit
        super().__init__(host)
        self.overloaded = False
        """While true, every read answers 429 ``too many outstanding requests``."""
        self.calls: list[LokiCall] = []
        self.streams: dict[str, dict[tuple[tuple[str, str], ...], list[Entry]]] = {}

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/ready", self._ready)
        app.router.add_post("/loki/api/v1/push", self._push)
        app.router.add_get("/loki/api/v1/query_range", self._query_range)
        app.router.add_get("/loki/api/v1/labels", self._labels)
        app.router.add_get("/loki/api/v1/label/{name}/values", self._label_values)
        app.router.add_get("/loki/api/v1/series", self._series)
        return app

    def integration_config(self, **overrides: Any) -> dict[str, Any]:
        """The team config section ``integrations.loki`` that points the toolset here."""
        settings: dict[str, Any] = {"url": self.url}
        if self.bearer_token:
            settings["headers"] = {"Authorization": f"Bearer {self.bearer_token}"}
        return {**settings, **overrides}

    def push(
        self,
        labels: Mapping[str, str],
        entries: Iterable[tuple[datetime | int, str]],
        *,
        tenant: str | None = None,
    ) -> None:
        """Store log lines as ``POST /loki/api/v1/push`` would (``int`` times are unix nanoseconds)."""
        key = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
        stored = self.streams.setdefault(tenant or SINGLE_TENANT, {}).setdefault(key, [])
        stored.extend((to_ns(at), line) for at, line in entries)
        stored.sort()

    def _tenant_streams(self, tenant: str) -> list[tuple[Labels, list[Entry]]]:
        return [(dict(key), entries) for key, entries in self.streams.get(tenant, {}).items()]

    @web.middleware
    async def _gate(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        tenant = request.headers.get("X-Scope-OrgID")
        try:
            response = await self._answer(request, handler, tenant)
        except _BadRequest as exc:
            response = web.Response(status=400, text=str(exc))
        self.calls.append(
            LokiCall(request.method, request.path, dict(request.query), tenant, response.status)
        )
        return response

    async def _answer(
        self, request: web.Request, handler: _Handler, tenant: str | None
    ) -> web.StreamResponse:
        if not self._authorized(request.headers.get("Authorization")):
            return web.Response(status=401, text="Unauthorized")
        if request.path == "/ready":
            return await handler(request)
        if self.overloaded and request.method == "GET":
            return web.Response(status=429, text="too many outstanding requests")
        if self.auth_enabled and not tenant:
            return web.Response(status=401, text="no org id")
        request[_TENANT] = tenant if self.auth_enabled and tenant else SINGLE_TENANT
        return await handler(request)

    def _authorized(self, header: str | None) -> bool:
        if self.bearer_token is not None:
            return header == f"Bearer {self.bearer_token}"
        if self.basic_auth is not None:
            return header == encode_basic_auth(*self.basic_auth)
        return True

    async def _ready(self, request: web.Request) -> web.Response:
        return web.Response(text="ready\n")

    async def _push(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            streams = body["streams"]
            for stream in streams:
                values = [(int(ns), str(line)) for ns, line, *_ in stream["values"]]
                self.push(stream["stream"], values, tenant=request[_TENANT])
        except (ValueError, KeyError, TypeError) as exc:
            raise _BadRequest(f"loghttp.PushRequest: {type(exc).__name__}: {exc}") from exc
        return web.Response(status=204)

    def _window(self, request: web.Request, default_span: timedelta) -> tuple[int, int]:
        end = parse_timestamp(request.query.get("end"), time.time_ns())
        start = parse_timestamp(
            request.query.get("start"), end - default_span // timedelta(microseconds=1) * 1000
        )
        if end < start:
            raise _BadRequest("end timestamp must not be before or equal to start time")
        return start, end

    async def _query_range(self, request: web.Request) -> web.Response:
        query = self._parsed(request.query.get("query", ""))
        start, end = self._window(request, timedelta(hours=1))
        streams = self._tenant_streams(request[_TENANT])
        if isinstance(query, LogQuery):
            return self._log_answer(request, query, streams, start, end)
        step = _step_ns(request.query.get("step"), start, end)
        if step <= 0:
            raise _BadRequest(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
            )
        if (end - start) / step > MAX_POINTS:
            raise _BadRequest(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
                "resolution (?step=XX)"
            )
        steps = list(range(start, end + 1, step))
        result = [
            {"metric": labels, "values": [[ns / 1e9, _number(points[ns])] for ns in sorted(points)]}
            for labels, points in evaluate(query, streams, steps)
        ]
        return _success({"resultType": "matrix", "result": result, "stats": {}})

    def _log_answer(
        self,
        request: web.Request,
        query: LogQuery,
        streams: list[tuple[Labels, list[Entry]]],
        start: int,
        end: int,
    ) -> web.Response:
        try:
            limit = int(request.query.get("limit") or DEFAULT_LIMIT)
        except ValueError as exc:
            raise _BadRequest(f"invalid limit: {request.query['limit']}") from exc
        if limit <= 0:
            raise _BadRequest("limit must be a positive value")
        if limit > self.max_entries_limit:
            raise _BadRequest(
                f"max entries limit per query exceeded, limit > max_entries_limit ({limit} > "
                f"{self.max_entries_limit})"
            )
        direction = (request.query.get("direction") or "backward").lower()
        if direction not in ("backward", "forward"):
            raise _BadRequest(f"invalid direction '{request.query['direction']}'")
        backward = direction == "backward"
        found = select(query, streams, start, end)
        every = sorted(
            ((ns, i) for i, (_, entries) in enumerate(found) for ns, _ in entries), reverse=backward
        )
        cutoff = every[limit - 1][0] if len(every) > limit else None
        result = []
        for labels, entries in found:
            kept = [e for e in entries if cutoff is None or (e[0] >= cutoff if backward else e[0] <= cutoff)]
            kept = sorted(kept, reverse=backward)
            if kept:
                result.append({"stream": labels, "values": [[str(ns), line] for ns, line in kept]})
        total = sum(len(s["values"]) for s in result)
        if total > limit:  # ties at the cutoff
            result = _trimmed(result, limit)
        stats = {"summary": {"totalEntriesReturned": min(total, limit)}}
        return _success({"resultType": "streams", "result": result, "stats": stats})

    def _parsed(self, text: str) -> Any:
        try:
            return parse(text)
        except LogQLError as exc:
            raise _BadRequest(str(exc)) from exc

    def _matching_streams(self, request: web.Request, selectors: list[str]) -> list[Labels]:
        start, end = self._window(request, timedelta(hours=6))
        queries = [self._selector(s) for s in selectors]
        return [
            labels
            for labels, entries in self._tenant_streams(request[_TENANT])
            if any(start <= ns < end for ns, _ in entries)
            and (not queries or any(q.selects(labels) for q in queries))
        ]

    def _selector(self, text: str) -> LogQuery:
        query = self._parsed(text)
        if not isinstance(query, LogQuery):
            raise _BadRequest("only stream selectors are accepted here")
        return query

    async def _labels(self, request: web.Request) -> web.Response:
        query = request.query.get("query")
        streams = self._matching_streams(request, [query] if query else [])
        return _success(sorted({name for labels in streams for name in labels}))

    async def _label_values(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        query = request.query.get("query")
        streams = self._matching_streams(request, [query] if query else [])
        return _success(sorted({labels[name] for labels in streams if name in labels}))

    async def _series(self, request: web.Request) -> web.Response:
        selectors = request.query.getall("match[]", []) or request.query.getall("match", [])
        if not selectors:
            raise _BadRequest("0 matchers provided, at least 1 is required")
        return _success(self._matching_streams(request, selectors))


def _trimmed(result: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    left = limit
    for stream in result:
        if left <= 0:
            break
        kept.append({**stream, "values": stream["values"][:left]})
        left -= len(kept[-1]["values"])
    return kept


def _success(data: Any) -> web.Response:
    return web.json_response({"status": "success", "data": data})
