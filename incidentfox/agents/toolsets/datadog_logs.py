"""The log tools of the datadog toolset: counts of logs by a facet (in total or per interval) and log
search, through the official ``datadog-api-client``'s v2 Logs API.

They belong to the ``datadog`` toolset (``DATADOG``) and are also offered on their own as
``DATADOG_LOGS`` for an agent that reads logs but not metrics or traces. ``DATADOG_LOGS`` is the same
integration under the same name (``datadog``): the same settings, health check and ``enabled`` switch,
and within a run the same client, so both agents' calls share one connection and one call memory.
"""

from __future__ import annotations

from datetime import datetime

from datadog_api_client.v2.api.logs_api import LogsApi
from datadog_api_client.v2.model.logs_aggregate_request import LogsAggregateRequest
from datadog_api_client.v2.model.logs_aggregate_sort import LogsAggregateSort
from datadog_api_client.v2.model.logs_aggregate_sort_type import LogsAggregateSortType
from datadog_api_client.v2.model.logs_aggregation_function import LogsAggregationFunction
from datadog_api_client.v2.model.logs_compute import LogsCompute
from datadog_api_client.v2.model.logs_compute_type import LogsComputeType
from datadog_api_client.v2.model.logs_group_by import LogsGroupBy
from datadog_api_client.v2.model.logs_list_request import LogsListRequest
from datadog_api_client.v2.model.logs_list_request_page import LogsListRequestPage
from datadog_api_client.v2.model.logs_query_filter import LogsQueryFilter
from datadog_api_client.v2.model.logs_sort import LogsSort
from datadog_api_client.v2.model.logs_sort_order import LogsSortOrder

from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.datadog_api import DatadogClient, DatadogError, connect, health, ms
from incidentfox.agents.toolsets.datadog_params import LogsAggregateParams, LogsSearchParams
from incidentfox.agents.toolsets.datadog_views import aggregate_data, has_more, link, log_data, span_text
from incidentfox.agents.toolsets.prometheus_views import choose_step, format_duration, iso, parse_duration
from incidentfox.agents.toolsets.query_tools import invalid_params, query_window, typed_tool

MAX_INTERVALS = 100


def _logs_filter(query: str, start: datetime, end: datetime) -> LogsQueryFilter:
    return LogsQueryFilter(query=query, _from=iso(start), to=iso(end))


def _interval(requested: str | None, start: datetime, end: datetime) -> str | None:
    """The requested interval, widened to a round one when the window would hold more than
    ``MAX_INTERVALS`` of it."""
    if not requested:
        return None
    seconds = parse_duration(requested) or 60.0
    step = choose_step((end - start).total_seconds(), seconds, max_points=MAX_INTERVALS)
    return requested if step == seconds else format_duration(step)


async def logs_search(client: DatadogClient, params: LogsSearchParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    limit = params.limit or 50
    newest_first = params.order != "oldest"
    order = f"{params.order or 'newest'} first"
    invocation = f"Datadog logs {span_text(start, end)} (limit {limit}, {order}): {params.query}"
    body = LogsListRequest(
        filter=_logs_filter(params.query, start, end),
        sort=LogsSort("-timestamp" if newest_first else "timestamp"),
        page=LogsListRequestPage(limit=limit),
    )
    try:
        answer = await client.call(
            lambda api: LogsApi(api).list_logs(body=body), doing="search logs", scope="logs_read_data"
        )
    except DatadogError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    found = answer.get("data") or []
    if not found:
        return ToolResult.no_data(
            f"No logs match {params.query} {span_text(start, end)}. Check the service name and facets with "
            "dd_logs_aggregate (grouped by service), or widen the window.",
            invocation=invocation,
        )
    data = log_data(
        found, newest_first=newest_first, limit=limit, more=has_more(answer), start=iso(start), end=iso(end)
    )
    url = link(client.app_url, "/logs", query=params.query, from_ts=ms(start), to_ts=ms(end), live="false")
    return ToolResult.ok(data, invocation=invocation, url=url)


async def logs_aggregate(client: DatadogClient, params: LogsAggregateParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    facet = params.group_by or "service"
    limit = params.limit or 10
    interval = _interval(params.interval, start, end)
    per = f" per {interval}" if interval else ""
    invocation = f"Datadog log counts by {facet}{per} {span_text(start, end)}: {params.query}"
    compute = LogsCompute(
        aggregation=LogsAggregationFunction("count"),
        type=LogsComputeType("timeseries" if interval else "total"),
        **({"interval": interval} if interval else {}),
    )
    order = LogsAggregateSort(
        aggregation=LogsAggregationFunction("count"),
        order=LogsSortOrder("desc"),
        type=LogsAggregateSortType("measure"),
    )
    body = LogsAggregateRequest(
        filter=_logs_filter(params.query, start, end),
        compute=[compute],
        group_by=[LogsGroupBy(facet=facet, limit=limit, sort=order)],
    )
    try:
        answer = await client.call(
            lambda api: LogsApi(api).aggregate_logs(body=body), doing="count logs", scope="logs_read_data"
        )
    except DatadogError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    buckets = (answer.get("data") or {}).get("buckets") or []
    if not buckets:
        return ToolResult.no_data(
            f"No logs match {params.query} {span_text(start, end)}, or none has a {facet} value.",
            invocation=invocation,
        )
    data = {
        "start": iso(start),
        "end": iso(end),
        **aggregate_data(buckets, facet, timeseries=bool(interval)),
    }
    if interval and interval != params.interval:
        data["interval"] = (
            f"{interval} (widened from {params.interval} to keep at most {MAX_INTERVALS} counts)"
        )
    if len(buckets) >= limit:
        data["note"] = f"Showing the {limit} largest groups; raise limit or narrow the query for the rest."
    url = link(client.app_url, "/logs", query=params.query, agg_q=facet, from_ts=ms(start), to_ts=ms(end))
    return ToolResult.ok(data, invocation=invocation, url=url)


LOG_TOOLS: tuple[Tool, ...] = (
    typed_tool(
        "dd_logs_aggregate",
        "Count logs matching a query by a facet (service, status, host, @http.status_code), in total or "
        "per interval to see when it started.",
        LogsAggregateParams,
        logs_aggregate,
    ),
    typed_tool(
        "dd_logs_search",
        "Search logs over a window: time, service, status, host, message and key attributes, newest first.",
        LogsSearchParams,
        logs_search,
    ),
)

LOGS_INSTRUCTIONS = """You read the team's logs in Datadog. Start with dd_logs_aggregate: count logs by
service, status or @http.status_code over the incident's window, with interval (1m, 5m) to see when
errors began; then dd_logs_search for the lines themselves, narrowed by service and status. Queries use
Datadog's search syntax: service:checkout status:error env:prod @http.status_code:>=500 "upstream
timeout" -host:canary-*. Times are RFC3339, unix seconds, now, or relative like -30m; keep windows short
and compare with a window before the incident. As evidence, quote the log line exactly with its time,
service and host, and give the url when there is one. An empty result means nothing matched, not that
all is well; a 403 naming logs_read_data means the application key cannot read logs: say so."""

DATADOG_LOGS = Toolset(
    name="datadog",
    description="Datadog logs: counts by service, status or any facet over time, and log search.",
    instructions=LOGS_INSTRUCTIONS,
    connect=connect,
    prerequisites=("integrations.datadog.api_key", "integrations.datadog.app_key"),
    health_check=health,
    tools=LOG_TOOLS,
)
