"""The prometheus toolset: PromQL (instant and range), series and label discovery, active alerts, rules,
scrape targets that are down and metric metadata, from Prometheus or any server with its HTTP API
(Thanos, Mimir, VictoriaMetrics).

Every tool takes the run's ``PrometheusClient`` (``prometheus_api.connect``) and returns a compact
``ToolResult`` (rows from ``prometheus_views``): each series as the selector that names it, values
rounded, long lists capped with a count of what was left out. A range query's step is chosen so that no
series has more than ``MAX_POINTS`` points, and each series comes back as min/max/avg/first/last plus
its values on that grid. Every result carries the question as ``invocation`` and, where there is one,
a link to the Prometheus UI as ``url``. Failures are one plain sentence (``PrometheusError``), with
Prometheus' own message for a query it rejected; an empty answer is ``no_data``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from incidentfox.agents.toolsets.base import ToolResult, Toolset, ToolsetHealth
from incidentfox.agents.toolsets.prometheus_api import (
    PrometheusClient,
    PrometheusError,
    check_health,
    connect,
)
from incidentfox.agents.toolsets.prometheus_views import (
    Row,
    alerts_data,
    capped,
    choose_step,
    format_duration,
    graph_url,
    instant_data,
    iso,
    metadata_rows,
    number,
    parse_duration,
    parse_time,
    range_data,
    rules_data,
    selector,
    targets_down_data,
    with_warnings,
)
from incidentfox.agents.toolsets.query_tools import (
    TIME_FORMATS,
    StrictParams,
    checked_query,
    end_field,
    invalid_params,
    query_window,
    start_field,
    typed_tool,
)

MAX_POINTS = 100
MAX_INSTANT_SERIES = 50
MAX_RANGE_SERIES = 20
MAX_SHOWN_VALUES = 600
"""Values shown across all series of a range result: the more series, the fewer values each."""
MAX_SERIES_LISTED = 100
MAX_LABEL_VALUES = 200
MAX_ALERTS = 50
MAX_RULES = 100
MAX_TARGETS = 50
MAX_METADATA = 50
HEALTH_TIMEOUT_S = 5.0
NO_SERIES = (
    "A selector that matches nothing is not an error in PromQL: check the metric and label names with "
    "series or label_values."
)


PromQL = Annotated[str, AfterValidator(checked_query)]


class InstantParams(StrictParams):
    query: PromQL = Field(
        description='PromQL, e.g. sum by (code) (rate(http_requests_total{job="api"}[5m])).'
    )
    time: str | None = Field(default=None, description=f"When to evaluate: {TIME_FORMATS}. Null for now.")


class RangeParams(StrictParams):
    query: PromQL = Field(
        description="PromQL, e.g. sum by (pod) (rate(container_cpu_usage_seconds_total[5m]))."
    )
    start: str | None = start_field()
    end: str | None = end_field()
    step: str | None = Field(
        default=None,
        description=f"Resolution such as 30s or 5m; null to choose. Raised when needed so that each series "
        f"has at most {MAX_POINTS} points.",
    )


class SeriesParams(StrictParams):
    match: PromQL = Field(description='A series selector, e.g. up{job="checkout"} or {__name__=~"http_.*"}.')
    start: str | None = start_field()
    end: str | None = end_field()


class LabelValuesParams(StrictParams):
    label: str = Field(
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        description="A label name (service, namespace, job, pod); __name__ lists metric names.",
    )
    match: PromQL | None = Field(
        default=None, description="Only series matching this selector; null for all."
    )
    start: str | None = start_field()
    end: str | None = end_field()


class NoParams(StrictParams):
    pass


class RulesParams(StrictParams):
    type: Literal["alert", "record"] | None = Field(
        default=None, description="alert for alerting rules, record for recording rules, null for both."
    )


class MetadataParams(StrictParams):
    metric: str | None = Field(
        default=None,
        pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
        description="A metric name, e.g. http_requests_total; null for any.",
    )


async def query_instant(client: PrometheusClient, params: InstantParams) -> ToolResult:
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        at = parse_time(params.time, now=now, default=now)
    except ValueError as exc:
        return invalid_params(exc)
    invocation = f"instant query at {iso(at)}: {params.query}"
    query = {"query": params.query, "time": at.timestamp(), "timeout": client.query_timeout}
    try:
        result, warnings = await client.get_with_warnings("/api/v1/query", query, doing="run the query")
    except PrometheusError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    kind = str((result or {}).get("resultType"))
    found = (result or {}).get("result")
    url = graph_url(client.url, params.query, at=at)
    if kind in ("scalar", "string"):
        value = number(found[1]) if isinstance(found, list) and len(found) == 2 else found
        return ToolResult.ok(
            {"at": iso(at), "result_type": kind, "value": value}, invocation=invocation, url=url
        )
    if not found:
        return ToolResult.no_data(
            f"The query returned no series at {iso(at)}. {NO_SERIES}", invocation=invocation
        )
    data = instant_data(found, kind, at, max_series=MAX_INSTANT_SERIES)
    return ToolResult.ok(with_warnings(data, warnings), invocation=invocation, url=url)


async def query_range(client: PrometheusClient, params: RangeParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
        requested = parse_duration(params.step) if params.step else None
        if params.step and not requested:
            raise ValueError(f"cannot read the step {params.step!r}: use 15s, 1m, 5m or 1h")
    except ValueError as exc:
        return invalid_params(exc)
    span = (end - start).total_seconds()
    step = choose_step(span, requested, max_points=MAX_POINTS)
    count = math.floor(span / step) + 1
    start = end - timedelta(seconds=(count - 1) * step)
    invocation = f"range query {iso(start)} to {iso(end)} step {format_duration(step)}: {params.query}"
    query = {
        "query": params.query,
        "start": start.timestamp(),
        "end": end.timestamp(),
        "step": step,
        "timeout": client.query_timeout,
    }
    try:
        result, warnings = await client.get_with_warnings("/api/v1/query_range", query, doing="run the query")
    except PrometheusError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    found = (result or {}).get("result") or []
    if not found:
        return ToolResult.no_data(
            f"The query returned no series between {iso(start)} and {iso(end)}. {NO_SERIES}",
            invocation=invocation,
        )
    data = range_data(found, start, step, count, max_series=MAX_RANGE_SERIES, max_values=MAX_SHOWN_VALUES)
    if requested and step > requested:
        data["step_note"] = (
            f"Step raised from {format_duration(requested)} to {format_duration(step)} so that each series "
            f"has at most {MAX_POINTS} points; ask for a shorter window for finer detail."
        )
    url = graph_url(client.url, params.query, end=end, span_s=span)
    return ToolResult.ok(with_warnings(data, warnings), invocation=invocation, url=url)


async def series(client: PrometheusClient, params: SeriesParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    invocation = f"series matching {params.match} from {iso(start)} to {iso(end)}"
    query = {"match[]": params.match, "start": start.timestamp(), "end": end.timestamp()}
    try:
        found = await client.get("/api/v1/series", query, doing="list series")
    except PrometheusError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    names = sorted(selector(labels) for labels in found or [] if isinstance(labels, Mapping))
    if not names:
        return ToolResult.no_data(
            f"No series match {params.match} between {iso(start)} and {iso(end)}.", invocation=invocation
        )
    metrics = Counter(name.split("{", 1)[0] for name in names)
    data: Row = {"series_count": len(names), "by_metric": dict(metrics.most_common(20))}
    data = capped(data, "series", names, MAX_SERIES_LISTED, "add label matchers to narrow it")
    return ToolResult.ok(data, invocation=invocation, url=graph_url(client.url, params.match))


async def label_values(client: PrometheusClient, params: LabelValuesParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    where = f" on series matching {params.match}" if params.match else ""
    invocation = f"values of label {params.label}{where} from {iso(start)} to {iso(end)}"
    query: Row = {"start": start.timestamp(), "end": end.timestamp()}
    if params.match:
        query["match[]"] = params.match
    try:
        found = await client.get(f"/api/v1/label/{params.label}/values", query, doing="list label values")
    except PrometheusError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    values = sorted(str(v) for v in found or [])
    if not values:
        return ToolResult.no_data(
            f"No series with label {params.label}{where} between {iso(start)} and {iso(end)}.",
            invocation=invocation,
        )
    data = capped(
        {"label": params.label, "count": len(values)}, "values", values, MAX_LABEL_VALUES, "pass match"
    )
    every_series = "{" + params.label + '!=""}'
    url = graph_url(client.url, f"count by ({params.label}) ({params.match or every_series})")
    return ToolResult.ok(data, invocation=invocation, url=url)


async def alerts(client: PrometheusClient, params: NoParams) -> ToolResult:
    invocation = "GET /api/v1/alerts"
    try:
        found = await client.get("/api/v1/alerts", None, doing="list alerts")
    except PrometheusError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    data = alerts_data(found, max_alerts=MAX_ALERTS)
    if data is None:
        return ToolResult.no_data(
            "No alerts are firing or pending on this server now.", invocation=invocation
        )
    return ToolResult.ok(data, invocation=invocation, url=f"{client.url}/alerts")


async def rules(client: PrometheusClient, params: RulesParams) -> ToolResult:
    query = {"type": params.type} if params.type else {}
    invocation = "GET /api/v1/rules" + (f"?type={params.type}" if params.type else "")
    try:
        found = await client.get("/api/v1/rules", query, doing="list rules")
    except PrometheusError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    data = rules_data(found, max_rules=MAX_RULES)
    if data is None:
        kind = {"alert": "alerting ", "record": "recording "}.get(params.type or "", "")
        return ToolResult.no_data(f"This server has no {kind}rules loaded.", invocation=invocation)
    return ToolResult.ok(data, invocation=invocation, url=f"{client.url}/rules")


async def targets_down(client: PrometheusClient, params: NoParams) -> ToolResult:
    invocation = "GET /api/v1/targets?state=active"
    try:
        found = await client.get("/api/v1/targets", {"state": "active"}, doing="list scrape targets")
    except PrometheusError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    data = targets_down_data(found, max_targets=MAX_TARGETS)
    if "targets" not in data:
        total = data["targets_total"]
        reason = f"All {total} scrape targets are up." if total else "This server has no scrape targets."
        return ToolResult.no_data(reason, invocation=invocation)
    return ToolResult.ok(data, invocation=invocation, url=f"{client.url}/targets")


async def metric_metadata(client: PrometheusClient, params: MetadataParams) -> ToolResult:
    query: Row = {"metric": params.metric} if params.metric else {"limit": MAX_METADATA + 1}
    invocation = "GET /api/v1/metadata" + (f"?metric={params.metric}" if params.metric else "")
    try:
        found = await client.get("/api/v1/metadata", query, doing="read metric metadata")
    except PrometheusError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    rows = metadata_rows(found if isinstance(found, Mapping) else {})
    if not rows:
        return ToolResult.no_data(
            f"No metadata for {params.metric or 'any metric'}: metadata comes from scrapes, so recording "
            "rules, remote-written series and some backends have none (by convention a _total metric is a "
            "counter, _bucket a histogram).",
            invocation=invocation,
        )
    data = capped({}, "metrics", rows, MAX_METADATA, "pass metric for one")
    url = graph_url(client.url, params.metric) if params.metric else None
    return ToolResult.ok(data, invocation=invocation, url=url)


async def health(config: Mapping[str, Any]) -> ToolsetHealth:
    return await check_health(config, timeout_s=HEALTH_TIMEOUT_S)


INSTRUCTIONS = """You read metrics with PromQL from Prometheus (or Thanos, Mimir, VictoriaMetrics, which speak
the same API). Start with alerts (what is firing or pending, and since when) and targets_down (a target
that is not scraped has no fresh metrics, which is a finding in itself). Find metric and label names
with series, label_values and metric_metadata instead of guessing them. For counters (names ending in
_total, _count, _sum) use rate(x[5m]) or increase(x[1h]), never the raw value; aggregate with
sum by (service) (...) or topk(5, ...). Use query_instant for now and query_range for the shape over
time: keep ranges short (1-3 hours around the incident) and compare with a window before it. Times are
RFC3339, unix seconds, now, or relative like -2h. As evidence, quote series exactly as returned
(metric{label="value"}) with the value and time, and give the url. An empty result means nothing
matched, not zero."""

PROMETHEUS = Toolset(
    name="prometheus",
    description="Prometheus-compatible metrics: PromQL queries, series and labels, alerts, rules and "
    "scrape targets.",
    instructions=INSTRUCTIONS,
    connect=connect,
    prerequisites=("integrations.prometheus.url",),
    health_check=health,
    tools=(
        typed_tool(
            "query_instant",
            "Run a PromQL query at one instant (default now): each series with its labels and value.",
            InstantParams,
            query_instant,
        ),
        typed_tool(
            "query_range",
            "Run a PromQL query over a window (default the last hour): per series min/max/avg/first/last and "
            f"its values, at a step chosen for at most {MAX_POINTS} points.",
            RangeParams,
            query_range,
        ),
        typed_tool(
            "series", "List the series (metric and labels) matching a selector.", SeriesParams, series
        ),
        typed_tool(
            "label_values",
            "List the values of one label (service, namespace; __name__ for metric names), optionally only "
            "on series matching a selector.",
            LabelValuesParams,
            label_values,
        ),
        typed_tool(
            "alerts",
            "Active alerts (firing and pending) with their labels, annotations and since when.",
            NoParams,
            alerts,
        ),
        typed_tool(
            "rules",
            "Alerting and recording rules with their health, last error and alert state.",
            RulesParams,
            rules,
        ),
        typed_tool(
            "targets_down",
            "Scrape targets that are not up, with their last scrape error.",
            NoParams,
            targets_down,
        ),
        typed_tool(
            "metric_metadata",
            "The type (counter, gauge, histogram), help text and unit of a metric.",
            MetadataParams,
            metric_metadata,
        ),
    ),
)
