"""An offline Coralogix on 127.0.0.1: the Direct Query HTTP API (DataPrime and Lucene over logs) and the
alert definitions of the Alerts API v3, in Coralogix's shapes.

    async with CoralogixEmulator() as cx:
        seed_checkout_incident(cx, datetime.now(UTC))
        config = {"integrations": {"coralogix": cx.integration_config()}}

Endpoints (one host serves both, as ``integrations.coralogix.url`` makes the toolset ask):

- ``POST /api/v1/dataprime/query`` with ``{"query": ..., "metadata": {"tier", "syntax", "startDate",
  "endDate", "defaultSource", "limit"}}`` (``Authorization: Bearer <key>``) answers NDJSON: a
  ``{"queryId": {"queryId": ...}}`` line, ``{"result": {"results": [...]}}`` batches of at most
  ``batch_size`` rows (log rows carry ``metadata`` and ``labels`` as ``[{key, value}]`` and ``userData``
  as a JSON string; aggregation rows carry only ``userData``) and a
  ``{"warning": {"numberOfResultsLimitWarning": {"numberOfResultsLimit": N}}}`` line when the metadata
  limit cut the results. The window defaults to the last 15 minutes, the limit to 2000.
  ``TIER_ARCHIVE`` reads the same logs.
- ``GET /mgmt/openapi/latest/alerts/alerts-general/v3`` answers ``{"alertDefs": [...]}``: each with
  ``id``, ``alertVersionId``, ``createdTime``, ``updatedTime``, ``lastTriggeredTime`` and
  ``alertDefProperties`` (``name``, ``description``, ``enabled``, ``priority``, ``type`` and the
  type's ``logsFilter.simpleFilter``), as the Coralogix CLI reads them.

Errors are answered with gRPC-gateway bodies (``{"code": n, "message": ...}``): 401 without a known
key, 403 for a key without the permission (``logs`` for queries, ``alerts`` for alert definitions),
400 ``Compilation errors: …`` for a query that does not compile and for unreadable metadata, and 429
with ``Retry-After`` while ``rate_limited``. ``runtime_error`` makes a compiled query fail mid-stream
with a ``{"error": {"message": ...}}`` line after a 200, as a scan that runs out of quota does.
Every request is kept in ``calls``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from incidentfox.emulators.coralogix_dataprime import (
    DEFAULT_WINDOW,
    SEVERITIES,
    DataPrimeError,
    LogRecord,
    lucene,
    parse,
    render,
    window_filter,
)
from incidentfox.emulators.served import LoopbackEmulator

QUERY_PATH = "/api/v1/dataprime/query"
ALERTS_PATH = "/mgmt/openapi/latest/alerts/alerts-general/v3"
DEFAULT_LIMIT = 2000
MAX_LIMIT = 50_000
API_KEY = "cxtp_emulatorKey0123456789abcdef"
RETRY_AFTER_S = 30


@dataclass(frozen=True, slots=True)
class CoralogixCall:
    method: str
    path: str
    body: dict[str, Any] | None
    status: int


@dataclass(slots=True)
class AlertDef:
    """An alert definition and when it last triggered (``None``: never)."""

    name: str
    priority: str = "P3"
    kind: str = "LOGS_THRESHOLD"
    lucene_query: str = ""
    applications: list[str] = field(default_factory=list)
    subsystems: list[str] = field(default_factory=list)
    description: str = ""
    enabled: bool = True
    last_triggered: datetime | None = None
    alert_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 30, tzinfo=UTC))

    def as_json(self) -> dict[str, Any]:
        """The ``AlertDef`` of the Alerts API v3 in its JSON (camelCase) form."""
        type_key = "".join(w.capitalize() for w in self.kind.lower().split("_"))
        type_key = type_key[0].lower() + type_key[1:]
        label_filters = {
            "applicationName": [
                {"value": a, "operation": "LOG_FILTER_OPERATION_TYPE_IS"} for a in self.applications
            ],
            "subsystemName": [
                {"value": s, "operation": "LOG_FILTER_OPERATION_TYPE_IS"} for s in self.subsystems
            ],
            "severities": [],
        }
        properties: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "priority": f"ALERT_DEF_PRIORITY_{self.priority}",
            "type": f"ALERT_DEF_TYPE_{self.kind}",
            type_key: {
                "logsFilter": {
                    "simpleFilter": {"luceneQuery": self.lucene_query, "labelFilters": label_filters}
                }
            },
        }
        found: dict[str, Any] = {
            "id": self.alert_id,
            "alertVersionId": str(uuid.uuid5(uuid.NAMESPACE_URL, self.alert_id)),
            "alertDefProperties": properties,
            "createdTime": render(self.created),
            "updatedTime": render(self.created),
        }
        if self.last_triggered is not None:
            found["lastTriggeredTime"] = render(self.last_triggered)
        return found


class _Refused(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class CoralogixEmulator(LoopbackEmulator):
    """Coralogix's query and alert definition APIs on 127.0.0.1. Start with ``async with``."""

    display_name = "Coralogix"

    def __init__(
        self,
        *,
        api_keys: Mapping[str, Iterable[str]] | None = None,
        batch_size: int = 500,
        host: str = "127.0.0.1",
    ) -> None:
        self.api_keys = {k: set(v) for k, v in (api_keys or {API_KEY: ("logs", "alerts")}).items()}
        """Key → permissions (``logs``, ``alerts``)."""
        self.batch_size = batch_size
        super().__init__(host)
        self.rate_limited = False
        """While true, every request answers 429."""
        self.runtime_error: str | None = None
        """While set, compiled queries fail mid-stream with this message."""
        self.logs: list[LogRecord] = []
        self.alerts: list[AlertDef] = []
        self.calls: list[CoralogixCall] = []

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(QUERY_PATH, self._query)
        app.router.add_get(ALERTS_PATH, self._alert_defs)
        return app

    def integration_config(self, **overrides: Any) -> dict[str, Any]:
        """The team config section ``integrations.coralogix`` that points the toolset here."""
        return {"url": self.url, "api_key": next(iter(self.api_keys)), **overrides}

    def log(
        self,
        at: datetime,
        severity: str,
        application: str,
        subsystem: str,
        data: Mapping[str, Any] | str,
        **labels: str,
    ) -> None:
        """Store one log (``severity`` by name: ``error``); a ``str`` is stored as ``{"text": ...}``."""
        body = {"text": data} if isinstance(data, str) else dict(data)
        names = {"applicationname": application, "subsystemname": subsystem, **labels}
        level = SEVERITIES.index(severity.upper()) + 1
        self.logs.append(LogRecord(at, level, names, body, str(uuid.uuid4())))

    async def _query(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] | None = None
        try:
            self._admit(request, "logs")
            try:
                loaded = json.loads(await request.read())
            except ValueError as exc:
                raise _Refused(400, 3, f"invalid JSON body: {exc}") from exc
            body = loaded if isinstance(loaded, dict) else None
            if body is None or not isinstance(body.get("query"), str):
                raise _Refused(400, 3, "query is required")
            response = await self._answer(body)
        except _Refused as exc:
            response = _refusal(exc)
        self.calls.append(CoralogixCall(request.method, request.path, body, response.status))
        return response

    async def _answer(self, body: dict[str, Any]) -> web.StreamResponse:
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise _Refused(400, 3, "metadata must be an object")
        end = _date(metadata.get("endDate"), "endDate", datetime.now(UTC))
        start = _date(metadata.get("startDate"), "startDate", end - DEFAULT_WINDOW)
        if start >= end:
            raise _Refused(400, 3, "startDate must be before endDate")
        limit = metadata.get("limit", DEFAULT_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise _Refused(400, 3, f"limit must be between 1 and {MAX_LIMIT}")
        syntax = metadata.get("syntax") or "QUERY_SYNTAX_DATAPRIME"
        try:
            if syntax == "QUERY_SYNTAX_LUCENE":
                query = lucene(body["query"])
            elif syntax == "QUERY_SYNTAX_DATAPRIME":
                query = parse(body["query"], str(metadata.get("defaultSource") or "logs"))
            else:
                raise _Refused(400, 3, f"unknown syntax {syntax}")
            outcome = query.run(window_filter(self.logs, start, end))
        except DataPrimeError as exc:
            raise _Refused(400, 3, str(exc)) from exc
        lines: list[dict[str, Any]] = [{"queryId": {"queryId": str(uuid.uuid4())}}]
        if self.runtime_error:
            lines.append({"error": {"message": self.runtime_error, "code": {"rateLimitReached": {}}}})
            return _ndjson(lines)
        rows = outcome.rows[:limit]
        results = [_result(row) for row in rows]
        for at in range(0, len(results), self.batch_size):
            lines.append({"result": {"results": results[at : at + self.batch_size]}})
        if len(outcome.rows) > limit:
            lines.append({"warning": {"numberOfResultsLimitWarning": {"numberOfResultsLimit": limit}}})
        return _ndjson(lines)

    async def _alert_defs(self, request: web.Request) -> web.Response:
        try:
            self._admit(request, "alerts")
            response = web.json_response({"alertDefs": [a.as_json() for a in self.alerts]})
        except _Refused as exc:
            response = _refusal(exc)
        self.calls.append(CoralogixCall(request.method, request.path, None, response.status))
        return response

    def _admit(self, request: web.Request, permission: str) -> None:
        if self.rate_limited:
            raise _Refused(429, 8, "Too many requests, please try again later")
        header = request.headers.get("Authorization", "")
        key = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if key not in self.api_keys:
            raise _Refused(401, 16, "Unauthenticated: invalid or missing API key")
        if permission not in self.api_keys[key]:
            raise _Refused(403, 7, f"Permission denied: the API key lacks {permission} read permission")


def _date(raw: Any, name: str, default: datetime) -> datetime:
    if raw is None:
        return default
    try:
        at = datetime.fromisoformat(str(raw))
    except ValueError as exc:
        raise _Refused(400, 3, f"invalid {name}: {raw!r} is not an RFC3339 timestamp") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _result(row: LogRecord | dict[str, Any]) -> dict[str, Any]:
    if not isinstance(row, LogRecord):
        return {"metadata": [], "labels": [], "userData": json.dumps(row)}
    metadata = {"timestamp": render(row.timestamp), "severity": str(row.severity), "logid": row.log_id}
    return {
        "metadata": [{"key": k, "value": v} for k, v in metadata.items()],
        "labels": [{"key": k, "value": v} for k, v in row.labels.items()],
        "userData": json.dumps(row.data),
    }


def _ndjson(lines: list[dict[str, Any]]) -> web.Response:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    return web.Response(text=text, content_type="application/x-ndjson")


def _refusal(exc: _Refused) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.status == 429 else {}
    return web.json_response(
        {"code": exc.code, "message": str(exc), "details": []}, status=exc.status, headers=headers
    )


def seed_checkout_incident(cx: CoralogixEmulator, now: datetime) -> None:
    """Thirty minutes of a checkout incident in the application ``shop-prod``: checkout's payment calls
    time out (36 errors) and it panics twice (critical), database connections are refused (6 errors),
    checkout keeps serving other requests (info) and payments is quiet; one alert definition fired 4
    minutes ago, one never fired and one is disabled."""
    ago = lambda seconds: now - timedelta(seconds=seconds)  # noqa: E731
    pod = {"computername": "checkout-7d9f8-x2k4p"}
    for i in range(36):
        message = f"payment declined for order ord_{1000 + i}: upstream timeout after {3000 + i}ms"
        data = {
            "message": message,
            "order_id": f"ord_{1000 + i}",
            "http": {"status": 504},
            "trace_id": f"{i:032x}",
        }
        cx.log(ago(20 + 45 * i), "error", "shop-prod", "checkout", data, **pod)
    for i in range(2):
        cx.log(
            ago(70 + 600 * i),
            "critical",
            "shop-prod",
            "checkout",
            "panic: nil pointer dereference in cart.Total",
            **pod,
        )
    for i in range(6):
        data = {"msg": f"db connection refused to 10.0.3.{i}:5432", "db": "orders"}
        cx.log(ago(50 + 250 * i), "error", "shop-prod", "checkout", data, **pod)
    for i in range(60):
        data = {"message": f"GET /api/cart 200 {i}ms", "http": {"status": 200}}
        cx.log(ago(15 + 25 * i), "info", "shop-prod", "checkout", data, **pod)
    for i in range(20):
        cx.log(ago(60 * i + 5), "info", "shop-prod", "payments", {"message": f"charge ok ch_{i}"})
    cx.alerts.extend(
        [
            AlertDef(
                "Checkout errors above 10 in 5m",
                priority="P1",
                lucene_query="upstream timeout",
                applications=["shop-prod"],
                subsystems=["checkout"],
                description="Payment calls from checkout are failing.",
                last_triggered=now - timedelta(minutes=4),
            ),
            AlertDef(
                "Payments latency", priority="P2", subsystems=["payments"], lucene_query="latency_ms:>2000"
            ),
            AlertDef("Legacy cart warnings", priority="P4", kind="LOGS_IMMEDIATE", enabled=False),
        ]
    )
