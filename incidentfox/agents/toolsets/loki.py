"""The loki toolset: LogQL log and metric queries, label and stream discovery, and an error summary of a
service's logs, from Grafana Loki (or anything serving its HTTP API, such as Grafana Cloud Logs).

Every tool takes the run's ``LokiClient`` (``loki_api.connect``) and returns a compact ``ToolResult``
(rows from ``loki_views``): log lines in one timeline with their RFC3339 time and stream selector, a
metric query's series summarised as the prometheus toolset summarises them, long lists capped with a
count of what was left out. Tool names start with ``loki_`` because every toolset's tools share one
flat list in the SRE agent. Every result carries the LogQL and window as ``invocation`` and, when
``integrations.loki.grafana_url`` is set, a Grafana Explore link as ``url``. Failures are one plain
sentence (``LokiError``), with Loki's own message for a query it rejected; an empty answer is
``no_data``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from incidentfox.agents.toolsets.base import ToolResult, Toolset, ToolsetHealth
from incidentfox.agents.toolsets.loki_api import LokiClient, LokiError, check_health, connect, to_ns
from incidentfox.agents.toolsets.loki_views import (
    ERROR_FILTER,
    ERROR_WORDS,
    explore_url,
    log_data,
    stream_counts,
    stream_name,
    top_messages,
)
from incidentfox.agents.toolsets.prometheus_views import (
    Row,
    capped,
    choose_step,
    format_duration,
    iso,
    range_data,
)
from incidentfox.agents.toolsets.query_tools import (
    StrictParams,
    checked_query,
    end_field,
    invalid_params,
    query_window,
    start_field,
    typed_tool,
)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_POINTS = 100
MAX_SERIES = 20
MAX_SHOWN_VALUES = 600
MAX_LABELS = 200
MAX_STREAMS = 100
ERROR_SAMPLE = 1000
"""How many of the newest matching lines the error summary reads for its top messages."""
TOP_MESSAGES = 10
HEALTH_TIMEOUT_S = 5.0
QUERY_PATH = "/loki/api/v1/query_range"


def _check_selector(text: str) -> str:
    text = checked_query(text)
    if not text.startswith("{"):
        raise ValueError('give a stream selector such as {app="checkout"}, optionally with line filters')
    return text


def _check_limit(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    return value


LogQL = Annotated[str, AfterValidator(checked_query)]
StreamSelector = Annotated[str, AfterValidator(_check_selector)]


class QueryParams(StrictParams):
    query: LogQL = Field(
        description='LogQL: a log query such as {app="checkout"} |= "timeout" or a metric query such as '
        'sum by (level) (count_over_time({app="checkout"}[5m])).'
    )
    start: str | None = start_field()
    end: str | None = end_field()
    limit: Annotated[int | None, AfterValidator(_check_limit)] = Field(
        default=None, description=f"Most log lines to return, 1 to {MAX_LIMIT}; null for {DEFAULT_LIMIT}."
    )
    direction: Literal["backward", "forward"] | None = Field(
        default=None, description="backward (newest first, the default) or forward (oldest first)."
    )


class WindowParams(StrictParams):
    start: str | None = start_field()
    end: str | None = end_field()


class LabelValuesParams(StrictParams):
    label: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", description="A label name: app, namespace, pod…")
    query: StreamSelector | None = Field(
        default=None,
        description='Only streams matching this selector, e.g. {namespace="prod"}; null for all.',
    )
    start: str | None = start_field()
    end: str | None = end_field()


class SeriesParams(StrictParams):
    match: StreamSelector = Field(description='A stream selector, e.g. {namespace="prod",app=~"checkout.*"}.')
    start: str | None = start_field()
    end: str | None = end_field()


class ErrorSummaryParams(StrictParams):
    selector: StreamSelector = Field(
        description='The service\'s streams, e.g. {app="checkout"} or {namespace="prod"} |= "payment".'
    )
    start: str | None = start_field()
    end: str | None = end_field()


def _span(start: datetime, end: datetime) -> str:
    return f"from {iso(start)} to {iso(end)}"


def _url(client: LokiClient, expr: str, start: datetime, end: datetime) -> str | None:
    return explore_url(client.grafana_url, client.grafana_datasource, expr, start, end)


async def query(client: LokiClient, params: QueryParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    limit = params.limit or DEFAULT_LIMIT
    direction = params.direction or "backward"
    span = (end - start).total_seconds()
    step = choose_step(span, None, max_points=MAX_POINTS)
    if params.query.startswith("{"):
        invocation = f"LogQL {_span(start, end)} (limit {limit}, {direction}): {params.query}"
    else:
        invocation = f"LogQL metric query {_span(start, end)} step {format_duration(step)}: {params.query}"
    request = {
        "query": params.query,
        "start": to_ns(start),
        "end": to_ns(end),
        "limit": limit,
        "direction": direction,
        "step": str(int(step)),
    }
    try:
        result = await client.get(QUERY_PATH, request, doing="run the query")
    except LokiError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    found = (result or {}).get("result") or []
    if not found:
        return ToolResult.no_data(
            f"Nothing matched {params.query} {_span(start, end)}. A selector or filter that matches nothing "
            "is not an error in LogQL: check label names and values with loki_labels and loki_label_values.",
            invocation=invocation,
        )
    url = _url(client, params.query, start, end)
    if (result or {}).get("resultType") == "streams":
        data = log_data(
            found, newest_first=direction == "backward", limit=limit, start=iso(start), end=iso(end)
        )
        return ToolResult.ok(data, invocation=invocation, url=url)
    count = math.floor(span / step) + 1
    data = range_data(found, start, step, count, max_series=MAX_SERIES, max_values=MAX_SHOWN_VALUES)
    return ToolResult.ok(data, invocation=invocation, url=url)


async def labels(client: LokiClient, params: WindowParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    invocation = f"label names {_span(start, end)}"
    window = {"start": to_ns(start), "end": to_ns(end)}
    try:
        found = await client.get("/loki/api/v1/labels", window, doing="list label names")
    except LokiError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    names = sorted(str(n) for n in found or [])
    if not names:
        return ToolResult.no_data(f"Loki received no logs {_span(start, end)}.", invocation=invocation)
    data = capped({"count": len(names)}, "labels", names, MAX_LABELS, "use loki_label_values on one")
    return ToolResult.ok(data, invocation=invocation)


async def label_values(client: LokiClient, params: LabelValuesParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    where = f" on streams matching {params.query}" if params.query else ""
    invocation = f"values of label {params.label}{where} {_span(start, end)}"
    request: Row = {"start": to_ns(start), "end": to_ns(end)}
    if params.query:
        request["query"] = params.query
    try:
        found = await client.get(
            f"/loki/api/v1/label/{params.label}/values", request, doing="list label values"
        )
    except LokiError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    values = sorted(str(v) for v in found or [])
    if not values:
        return ToolResult.no_data(
            f"No streams with label {params.label}{where} {_span(start, end)}.", invocation=invocation
        )
    data = capped({"label": params.label, "count": len(values)}, "values", values, MAX_LABELS, "pass query")
    return ToolResult.ok(data, invocation=invocation)


async def series(client: LokiClient, params: SeriesParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    invocation = f"streams matching {params.match} {_span(start, end)}"
    request = {"match[]": params.match, "start": to_ns(start), "end": to_ns(end)}
    try:
        found = await client.get("/loki/api/v1/series", request, doing="list streams")
    except LokiError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    names = sorted(stream_name(s) for s in found or [] if isinstance(s, Mapping))
    if not names:
        return ToolResult.no_data(
            f"No streams match {params.match} {_span(start, end)}.", invocation=invocation
        )
    data = capped({"count": len(names)}, "streams", names, MAX_STREAMS, "add label matchers to narrow it")
    return ToolResult.ok(data, invocation=invocation, url=_url(client, params.match, start, end))


async def error_summary(client: LokiClient, params: ErrorSummaryParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    errors = f"{params.selector} {ERROR_FILTER}"
    span = (end - start).total_seconds()
    step = choose_step(span, None, max_points=MAX_POINTS)
    counting = f"count_over_time({errors} [{format_duration(step)}])"
    invocation = (
        f"error lines {_span(start, end)}: {counting}; top messages of the newest {ERROR_SAMPLE}: {errors}"
    )
    window = {"start": to_ns(start), "end": to_ns(end)}
    first_step = to_ns(start + timedelta(seconds=step))
    try:
        counts = await client.get(
            QUERY_PATH,
            {"query": counting, "start": first_step, "end": window["end"], "step": str(int(step))},
            doing="count error lines",
        )
        lines = await client.get(
            QUERY_PATH,
            {"query": errors, **window, "limit": ERROR_SAMPLE, "direction": "backward"},
            doing="read error lines",
        )
        found = (lines or {}).get("result") or []
        if not found:
            anything = await client.get(
                QUERY_PATH, {"query": params.selector, **window, "limit": 1}, doing="read any line"
            )
            return _no_errors(params.selector, bool((anything or {}).get("result")), start, end, invocation)
    except LokiError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    data = stream_counts((counts or {}).get("result") or [], max_streams=MAX_STREAMS)
    data = {"start": iso(start), "end": iso(end), "step": format_duration(step), **data}
    sampled = sum(len(s.get("values") or []) for s in found)
    data["top_messages"] = top_messages(found, TOP_MESSAGES)
    if sampled >= ERROR_SAMPLE:
        data["note"] = f"top_messages are counted over the newest {ERROR_SAMPLE} error lines only."
    return ToolResult.ok(data, invocation=invocation, url=_url(client, errors, start, end))


def _no_errors(selector: str, any_logs: bool, start: datetime, end: datetime, invocation: str) -> ToolResult:
    words = ", ".join(ERROR_WORDS)
    if any_logs:
        reason = (
            f"No lines containing {words} in {selector} {_span(start, end)}, though it has logs: if this "
            "service spells errors differently (level=E, severity=ERR), use loki_query with | json or "
            "| logfmt and a level filter."
        )
    else:
        reason = (
            f"{selector} matched no logs at all {_span(start, end)}: check label names and values with "
            "loki_labels and loki_label_values."
        )
    return ToolResult.no_data(reason, invocation=invocation)


async def health(config: Mapping[str, Any]) -> ToolsetHealth:
    return await check_health(config, timeout_s=HEALTH_TIMEOUT_S)


INSTRUCTIONS = """You read logs from Grafana Loki with LogQL. Start with loki_error_summary over the
service's stream selector ({app="checkout"} or {namespace="prod",app="checkout"}): it counts lines with
error, exception, fatal or panic per stream and gives the most frequent messages. If you do not know the
labels, find them with loki_labels, loki_label_values and loki_series instead of guessing. Then narrow
with loki_query: add line filters (|= "timeout", != "healthcheck", |~ "5\\d\\d") and, for structured
logs, | json or | logfmt with a label filter (| level="error"). Keep windows short (15-60 minutes around
the incident) and compare with a window before it; for how often something happens use a metric query
such as sum by (pod) (count_over_time({app="checkout"} |= "timeout" [5m])). Times are RFC3339, unix
seconds, now, or relative like -30m. As evidence, quote the exact log line with its time and stream
selector, and give the url when there is one. An empty result means nothing matched, not that all is
well: check the selector."""

LOKI = Toolset(
    name="loki",
    description="Grafana Loki logs: LogQL queries, label and stream discovery, and an error summary of a "
    "service's logs.",
    instructions=INSTRUCTIONS,
    connect=connect,
    prerequisites=("integrations.loki.url",),
    health_check=health,
    tools=(
        typed_tool(
            "loki_error_summary",
            "Errors in a service's logs over a window: lines with error, exception, fatal or panic per "
            f"stream, and the {TOP_MESSAGES} most frequent messages (numbers and ids stripped) with an "
            "example line. Start here.",
            ErrorSummaryParams,
            error_summary,
        ),
        typed_tool(
            "loki_query",
            "Run a LogQL query over a window (default the last hour): log lines with their time and stream "
            f"(newest first, at most {MAX_LIMIT}), or for a metric query each series' min/max/avg/last and "
            "its values.",
            QueryParams,
            query,
        ),
        typed_tool(
            "loki_labels",
            "List the label names of the streams that have logs in a window.",
            WindowParams,
            labels,
        ),
        typed_tool(
            "loki_label_values",
            "List the values of one label (app, namespace, pod), optionally only on streams matching a "
            "selector.",
            LabelValuesParams,
            label_values,
        ),
        typed_tool(
            "loki_series", "List the streams (label sets) matching a stream selector.", SeriesParams, series
        ),
    ),
)
