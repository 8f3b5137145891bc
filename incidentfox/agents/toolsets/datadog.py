"""The datadog toolset: metric queries and metric discovery, log search and counts, monitors in alert,
an APM summary of a service, its errored traces, events (deploys, config changes) and hosts, read
through the official ``datadog-api-client``. The log tools live in ``datadog_logs``, the parameters in
``datadog_params``.

Every tool takes the run's ``DatadogClient`` (``datadog_api.connect``) and returns a compact
``ToolResult`` (rows from ``datadog_views``): times in RFC3339, long lists capped with a count of what
was left out, the question asked as ``invocation`` and, when the web app's address is known, a link to
the same view in Datadog as ``url``. Failures are one plain sentence (``DatadogError``): Datadog's own
words for a query it rejected, which key or scope to check for 403, when to retry after 429. An empty
answer is ``no_data``. Tool names start with ``dd_`` because every toolset's tools share one list.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from datadog_api_client import ApiClient
from datadog_api_client.model_utils import unset
from datadog_api_client.v1.api.events_api import EventsApi
from datadog_api_client.v1.api.hosts_api import HostsApi
from datadog_api_client.v1.api.metrics_api import MetricsApi
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v2.api.spans_api import SpansApi
from datadog_api_client.v2.model.spans_aggregate_data import SpansAggregateData
from datadog_api_client.v2.model.spans_aggregate_request import SpansAggregateRequest
from datadog_api_client.v2.model.spans_aggregate_request_attributes import SpansAggregateRequestAttributes
from datadog_api_client.v2.model.spans_aggregate_request_type import SpansAggregateRequestType
from datadog_api_client.v2.model.spans_aggregation_function import SpansAggregationFunction
from datadog_api_client.v2.model.spans_compute import SpansCompute
from datadog_api_client.v2.model.spans_group_by import SpansGroupBy
from datadog_api_client.v2.model.spans_list_request import SpansListRequest
from datadog_api_client.v2.model.spans_list_request_attributes import SpansListRequestAttributes
from datadog_api_client.v2.model.spans_list_request_data import SpansListRequestData
from datadog_api_client.v2.model.spans_list_request_page import SpansListRequestPage
from datadog_api_client.v2.model.spans_list_request_type import SpansListRequestType
from datadog_api_client.v2.model.spans_query_filter import SpansQueryFilter
from datadog_api_client.v2.model.spans_sort import SpansSort

from incidentfox.agents.toolsets.base import ToolResult, Toolset
from incidentfox.agents.toolsets.datadog_api import (
    DatadogClient,
    DatadogError,
    connect,
    health,
    ms,
    window_s,
)
from incidentfox.agents.toolsets.datadog_logs import LOG_TOOLS
from incidentfox.agents.toolsets.datadog_params import (
    ErrorTracesParams,
    EventsParams,
    HostsParams,
    MetricQueryParams,
    MonitorsParams,
    SearchMetricsParams,
    ServiceParams,
)
from incidentfox.agents.toolsets.datadog_views import (
    event_row,
    has_more,
    hosts_data,
    link,
    metric_data,
    monitors_data,
    service_summary,
    span_text,
    traces_data,
)
from incidentfox.agents.toolsets.prometheus_views import capped, iso
from incidentfox.agents.toolsets.query_tools import invalid_params, query_window, typed_tool

MAX_SERIES = 20
MAX_POINTS = 100
MAX_METRIC_NAMES = 200
MAX_MONITORS = 50
MAX_RESOURCES = 50
MAX_EVENTS = 50
ALERTING: tuple[str, ...] = ("Alert", "Warn", "No Data")


def _spans_filter(query: str, start: datetime, end: datetime) -> SpansQueryFilter:
    return SpansQueryFilter(query=query, _from=iso(start), to=iso(end))


async def metric_query(client: DatadogClient, params: MetricQueryParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    invocation = f"Datadog metric query {span_text(start, end)}: {params.query}"
    first, last = window_s(start, end)

    def ask(api: ApiClient) -> Any:
        return MetricsApi(api).query_metrics(_from=first, to=last, query=params.query)

    try:
        answer = await client.call(ask, doing="query the metric", scope="timeseries_query")
    except DatadogError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    if answer.get("status") == "error" or answer.get("error"):
        reason = " ".join(str(answer.get("error") or "no reason given").split())[:300]
        return ToolResult.failed(f"Datadog could not run the query: {reason}.", invocation=invocation)
    if not answer.get("series"):
        return ToolResult.no_data(
            f"No data for {params.query} {span_text(start, end)}: the metric may not exist or nothing "
            "matched the scope. Check the name with dd_search_metrics and the scope's tags.",
            invocation=invocation,
        )
    data = metric_data(answer, max_series=MAX_SERIES, max_points=MAX_POINTS)
    url = link(client.app_url, "/metric/explorer", exp_query=params.query, from_ts=ms(start), to_ts=ms(end))
    return ToolResult.ok(data, invocation=invocation, url=url)


async def search_metrics(client: DatadogClient, params: SearchMetricsParams) -> ToolResult:
    try:
        start, _ = query_window(params.start, None)
    except ValueError as exc:
        return invalid_params(exc)
    tagged = f" with tags {params.tag_filter}" if params.tag_filter else ""
    invocation = f"metrics starting with {params.prefix}{tagged} reported since {iso(start)}"

    def ask(api: ApiClient) -> Any:
        since = int(start.timestamp())
        return MetricsApi(api).list_active_metrics(_from=since, tag_filter=params.tag_filter or unset)

    try:
        answer = await client.call(ask, doing="list active metrics", scope="metrics_read")
    except DatadogError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    wanted = params.prefix.lower()
    names = sorted(str(n) for n in answer.get("metrics") or [] if str(n).lower().startswith(wanted))
    if not names:
        return ToolResult.no_data(
            f"No metric starting with {params.prefix}{tagged} reported since {iso(start)}: try a shorter "
            "prefix or an earlier start.",
            invocation=invocation,
        )
    data = capped({"count": len(names)}, "metrics", names, MAX_METRIC_NAMES, "give a longer prefix")
    return ToolResult.ok(data, invocation=invocation)


async def monitors_alerting(client: DatadogClient, params: MonitorsParams) -> ToolResult:
    states = list(dict.fromkeys(params.states or ALERTING))
    filters = [
        f"tags {params.tags}" if params.tags else "",
        f"name containing {params.name!r}" if params.name else "",
    ]
    where = " with " + " and ".join(f for f in filters if f) if any(filters) else ""
    invocation = f"Datadog monitors in {', '.join(states)}{where}"

    def ask(api: ApiClient) -> Any:
        return MonitorsApi(api).list_monitors(
            group_states=",".join(s.lower() for s in states),
            monitor_tags=params.tags or unset,
            name=params.name or unset,
            page_size=1000,
        )

    try:
        monitors = await client.call(ask, doing="list monitors", scope="monitors_read")
    except DatadogError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    data = monitors_data(monitors or [], states, client.app_url, max_monitors=MAX_MONITORS)
    if not data["monitors"]:
        return ToolResult.no_data(
            f"No monitor{where} is in {' or '.join(states)} ({data['monitors_checked']} monitors checked).",
            invocation=invocation,
        )
    url = link(client.app_url, "/monitors/manage", q="status:(" + " OR ".join(f'"{s}"' for s in states) + ")")
    return ToolResult.ok(data, invocation=invocation, url=url)


def _service_query(service: str, env: str | None) -> str:
    return f"service:{service}" + (f" env:{env}" if env else "")


def _aggregate_spans(query: str, start: datetime, end: datetime, with_p95: bool) -> SpansAggregateRequest:
    compute = [SpansCompute(aggregation=SpansAggregationFunction("count"))]
    if with_p95:
        compute.append(SpansCompute(aggregation=SpansAggregationFunction("pc95"), metric="@duration"))
    attributes = SpansAggregateRequestAttributes(
        filter=_spans_filter(query, start, end),
        compute=compute,
        group_by=[SpansGroupBy(facet="resource_name", limit=MAX_RESOURCES)],
    )
    return SpansAggregateRequest(
        data=SpansAggregateData(attributes=attributes, type=SpansAggregateRequestType("aggregate_request"))
    )


async def apm_service_summary(client: DatadogClient, params: ServiceParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    query = _service_query(params.service, params.env)
    invocation = (
        f"Datadog APM spans of {query} {span_text(start, end)} by resource_name: count and p95 @duration, "
        f"and count of {query} status:error"
    )
    every = _aggregate_spans(query, start, end, with_p95=True)
    errored = _aggregate_spans(f"{query} status:error", start, end, with_p95=False)
    try:
        spans = await client.call(
            lambda api: SpansApi(api).aggregate_spans(body=every), doing="aggregate spans", scope="apm_read"
        )
        errors = await client.call(
            lambda api: SpansApi(api).aggregate_spans(body=errored),
            doing="count errored spans",
            scope="apm_read",
        )
    except DatadogError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    if not spans.get("data"):
        return ToolResult.no_data(
            f"No spans for {query} {span_text(start, end)}: check the service and env names (they are the "
            "service: and env: tags of its traces) or widen the window.",
            invocation=invocation,
        )
    summary = service_summary(spans.get("data") or [], errors.get("data") or [])
    data = {"service": params.service, "env": params.env, "start": iso(start), "end": iso(end), **summary}
    url = link(client.app_url, "/apm/traces", query=query, start=ms(start), end=ms(end))
    return ToolResult.ok(data, invocation=invocation, url=url)


async def error_traces(client: DatadogClient, params: ErrorTracesParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    query = f"{_service_query(params.service, params.env)} status:error" + (
        f" {params.query.strip()}" if params.query and params.query.strip() else ""
    )
    limit = params.limit or 20
    invocation = f"Datadog errored spans {span_text(start, end)} (newest {limit}): {query}"
    attributes = SpansListRequestAttributes(
        filter=_spans_filter(query, start, end),
        sort=SpansSort("-timestamp"),
        page=SpansListRequestPage(limit=limit),
    )
    body = SpansListRequest(
        data=SpansListRequestData(attributes=attributes, type=SpansListRequestType("search_request"))
    )
    try:
        answer = await client.call(
            lambda api: SpansApi(api).list_spans(body=body), doing="search errored spans", scope="apm_read"
        )
    except DatadogError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    found = answer.get("data") or []
    if not found:
        return ToolResult.no_data(
            f"No errored spans match {query} {span_text(start, end)}; dd_apm_service_summary shows whether "
            "the service has spans at all.",
            invocation=invocation,
        )
    data = {"start": iso(start), "end": iso(end), **traces_data(found, limit=limit, more=has_more(answer))}
    url = link(client.app_url, "/apm/traces", query=query, start=ms(start), end=ms(end))
    return ToolResult.ok(data, invocation=invocation, url=url)


async def events(client: DatadogClient, params: EventsParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    filters = [
        f"sources {params.sources}" if params.sources else "",
        f"tags {params.tags}" if params.tags else "",
    ]
    where = " with " + " and ".join(f for f in filters if f) if any(filters) else ""
    invocation = f"Datadog events{where} {span_text(start, end)}"
    first, last = window_s(start, end)

    def ask(api: ApiClient) -> Any:
        return EventsApi(api).list_events(
            start=first,
            end=last,
            sources=params.sources or unset,
            tags=params.tags or unset,
            unaggregated=True,
        )

    try:
        answer = await client.call(ask, doing="list events", scope="events_read")
    except DatadogError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    rows = [event_row(e, client.app_url) for e in answer.get("events") or [] if isinstance(e, Mapping)]
    if not rows:
        return ToolResult.no_data(
            f"No events{where} {span_text(start, end)}: deploys and config changes may be older, widen the "
            "window.",
            invocation=invocation,
        )
    rows.sort(key=lambda r: str(r["time"]), reverse=True)
    data = capped(
        {"start": iso(start), "end": iso(end), "count": len(rows)},
        "events",
        rows,
        MAX_EVENTS,
        "narrow by tags",
    )
    tags = [t.strip() for t in (params.tags or "").split(",") if t.strip()]
    sources = [f"source:{s.strip()}" for s in (params.sources or "").split(",") if s.strip()]
    query = " ".join(tags + sources) or None
    url = link(client.app_url, "/event/explorer", query=query, from_ts=ms(start), to_ts=ms(end))
    return ToolResult.ok(data, invocation=invocation, url=url)


async def hosts(client: DatadogClient, params: HostsParams) -> ToolResult:
    limit = params.limit or 50
    where = f" matching {params.filter!r}" if params.filter else ""
    invocation = f"Datadog hosts{where} (at most {limit})"

    def ask(api: ApiClient) -> Any:
        return HostsApi(api).list_hosts(filter=params.filter or unset, count=limit, sort_field="name")

    try:
        answer = await client.call(ask, doing="list hosts", scope="hosts_read")
    except DatadogError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    if not answer.get("host_list"):
        return ToolResult.no_data(f"No hosts{where} report to Datadog.", invocation=invocation)
    url = link(client.app_url, "/infrastructure", filter=params.filter)
    return ToolResult.ok(hosts_data(answer, limit=limit), invocation=invocation, url=url)


INSTRUCTIONS = """You read the team's Datadog: monitors, metrics, APM traces, logs, events and hosts.
Start with dd_monitors_alerting (what is in Alert or Warn, since when, and the monitor's query) and
dd_events over the last hours (deploys and config changes shortly before the start are prime suspects).
For a service, dd_apm_service_summary gives requests, errors, error rate and p95 latency per endpoint,
and dd_error_traces the newest errored spans with their error type and message. Use dd_metric_query for
a metric's shape over a window (sum:trace.http.request.errors{service:checkout,env:prod}.as_count(), by
{resource_name} to split it), and dd_search_metrics to find metric names instead of guessing. For logs,
dd_logs_aggregate counts by service, status or @http.status_code (with interval to see when it began),
then dd_logs_search shows the lines. dd_hosts shows hosts that stopped reporting. Queries use Datadog's
search syntax (service:x status:error env:prod @http.status_code:>=500 "text"). Times are RFC3339, unix
seconds, now, or relative like -30m; keep windows short and compare with a window before the incident.
As evidence, quote the monitor, log line, span error or event exactly, with its time and the url. An
empty result means nothing matched, not that all is well; a 403 naming a scope means the application
key cannot read that data: say so."""

DATADOG = Toolset(
    name="datadog",
    description="Datadog: monitors in alert, metric queries, APM service summaries and errored traces, "
    "log search and counts, events such as deploys, and hosts.",
    instructions=INSTRUCTIONS,
    connect=connect,
    prerequisites=("integrations.datadog.api_key", "integrations.datadog.app_key"),
    health_check=health,
    tools=(
        typed_tool(
            "dd_monitors_alerting",
            "Datadog monitors in Alert, Warn or No Data: name, state and since when, query, tags, the "
            "groups affected and the message. Start here.",
            MonitorsParams,
            monitors_alerting,
        ),
        typed_tool(
            "dd_events",
            "Datadog events over a window (default the last hour), newest first: deploys, config changes, "
            "alerts, with time, title, source, tags and text.",
            EventsParams,
            events,
        ),
        typed_tool(
            "dd_apm_service_summary",
            "One APM service's endpoints (resource_name) over a window: requests, errors, error rate and "
            "p95 latency, the most errors first.",
            ServiceParams,
            apm_service_summary,
        ),
        typed_tool(
            "dd_error_traces",
            "A service's newest errored spans: time, trace_id, resource, error type and message, duration "
            "and HTTP status.",
            ErrorTracesParams,
            error_traces,
        ),
        typed_tool(
            "dd_metric_query",
            "Run a Datadog metric query over a window (default the last hour): each series' scope, "
            f"min/max/avg/last and at most {MAX_POINTS} values.",
            MetricQueryParams,
            metric_query,
        ),
        typed_tool(
            "dd_search_metrics",
            "List the metric names starting with a prefix that reported recently, optionally only those "
            "with given tags.",
            SearchMetricsParams,
            search_metrics,
        ),
        typed_tool(
            "dd_hosts",
            "Hosts reporting to Datadog, the ones not reporting first: up, last reported, CPU, iowait, "
            "load, apps and tags.",
            HostsParams,
            hosts,
        ),
        *LOG_TOOLS,
    ),
)
