"""The CloudWatch tools of the aws toolset: alarms, one metric over a window, log groups, Logs Insights
and filter patterns. A metric's period is chosen so that it has at most ``MAX_POINTS`` points; a Logs Insights
query is polled until it completes, and stopped if it is still running after ``INSIGHTS_WAIT_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from incidentfox.agents.toolsets import aws_views as views
from incidentfox.agents.toolsets.aws_api import AwsClient, AwsError
from incidentfox.agents.toolsets.aws_params import (
    AlarmsParams,
    InsightsParams,
    LogGroupsParams,
    LogsFilterParams,
    MetricParams,
)
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.prometheus_views import capped, choose_step, format_duration, iso, parse_time

DEFAULT_WINDOW = timedelta(hours=1)
MAX_POINTS = 100
MAX_ROWS = 50
INSIGHTS_WAIT_S = 30.0
MAX_LOG_GROUPS = 1000


def time_window(
    start: str | None, end: str | None, default: timedelta = DEFAULT_WINDOW
) -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    end_at = parse_time(end, now=now, default=now)
    start_at = parse_time(start, now=now, default=end_at - default)
    if start_at >= end_at:
        raise ValueError(f"start ({iso(start_at)}) must be before end ({iso(end_at)})")
    return start_at, end_at


def invalid_arguments(exc: ValueError) -> ToolResult:
    text = str(exc)
    return ToolResult.failed(text[:1].upper() + text[1:] + ".")


def aws_failure(exc: AwsError, invocation: str, missing: str | None = None) -> ToolResult:
    if exc.not_found and missing:
        text = str(exc)
        return ToolResult.failed(f"{missing} was {text[:1].lower()}{text[1:]}", invocation=invocation)
    return ToolResult.failed(str(exc), invocation=invocation)


def choose_period(span_s: float, requested_s: int | None) -> int:
    """A CloudWatch period (a multiple of 60 s) that gives at most ``MAX_POINTS`` points."""
    step = choose_step(span_s, float(requested_s) if requested_s else None, max_points=MAX_POINTS)
    return max(60, math.ceil(step / 60) * 60)


async def cloudwatch_alarms(client: AwsClient, params: AlarmsParams) -> ToolResult:
    invocation = views.cli(
        "cloudwatch",
        "describe-alarms",
        client.region,
        state_value=params.state,
        alarm_name_prefix=params.prefix,
    )
    query: dict[str, Any] = {"AlarmTypes": ["MetricAlarm"]}
    if params.state:
        query["StateValue"] = params.state
    if params.prefix:
        query["AlarmNamePrefix"] = params.prefix
    try:
        found = await client.pages(
            "cloudwatch", "describe_alarms", "MetricAlarms", doing="list alarms", limit=500, **query
        )
    except AwsError as exc:
        return aws_failure(exc, invocation)
    if not found:
        which = f"in state {params.state}" if params.state else "at all"
        return ToolResult.no_data(f"No CloudWatch alarms {which} in {client.region}.", invocation=invocation)
    rows = sorted((views.alarm_row(a) for a in found), key=lambda r: str(r.get("since")), reverse=True)
    data = {"by_state": dict(Counter(str(r.get("state")) for r in rows))}
    data = capped(data, "alarms", rows, MAX_ROWS, "most recently changed first; pass prefix to narrow")
    url = views.console(client.region, "cloudwatch/home", "alarmsV2:")
    return ToolResult.ok(data, invocation=invocation, url=url)


async def cloudwatch_metric(client: AwsClient, params: MetricParams) -> ToolResult:
    try:
        start, end = time_window(params.start, params.end)
    except ValueError as exc:
        return invalid_arguments(exc)
    period = choose_period((end - start).total_seconds(), params.period)
    dims = [{"Name": d.name, "Value": d.value} for d in params.dimensions]
    invocation = views.cli(
        "cloudwatch",
        "get-metric-statistics",
        client.region,
        namespace=params.namespace,
        metric_name=params.metric,
        dimensions=" ".join(f"Name={d.name},Value={d.value}" for d in params.dimensions) or None,
        start_time=iso(start),
        end_time=iso(end),
        period=period,
        statistics=params.stat,
    )
    metric = {"Namespace": params.namespace, "MetricName": params.metric, "Dimensions": dims}
    query = {"Id": "m", "MetricStat": {"Metric": metric, "Period": period, "Stat": params.stat}}
    try:
        answer = await client.call(
            "cloudwatch",
            "get_metric_data",
            doing="read the metric",
            MetricDataQueries=[query],
            StartTime=start,
            EndTime=end,
            ScanBy="TimestampAscending",
        )
    except AwsError as exc:
        return aws_failure(exc, invocation)
    results = answer.get("MetricDataResults") or [{}]
    summary = views.metric_summary(results[0].get("Timestamps") or [], results[0].get("Values") or [])
    if not summary["points"]:
        return ToolResult.no_data(
            f"No datapoints for {params.namespace} {params.metric} with those dimensions between "
            f"{iso(start)} and {iso(end)}: CloudWatch matches dimensions exactly, so give all of the "
            "metric's dimensions and no others.",
            invocation=invocation,
        )
    data = {"stat": params.stat, "period": format_duration(period), "start": iso(start), "end": iso(end)}
    if params.period and period > params.period:
        data["period_note"] = (
            f"Period raised from {params.period}s to {period}s for at most {MAX_POINTS} points."
        )
    url = views.console(client.region, "cloudwatch/home", "metricsV2:")
    return ToolResult.ok({**data, **summary}, invocation=invocation, url=url)


async def cloudwatch_logs_insights(client: AwsClient, params: InsightsParams) -> ToolResult:
    try:
        start, end = time_window(params.start, params.end)
    except ValueError as exc:
        return invalid_arguments(exc)
    invocation = views.cli(
        "logs",
        "start-query",
        client.region,
        log_group_name=params.log_group,
        start_time=int(start.timestamp()),
        end_time=int(end.timestamp()),
        query_string=params.query,
        limit=params.limit,
    )
    try:
        started = await client.call(
            "logs",
            "start_query",
            doing="start the Logs Insights query",
            logGroupName=params.log_group,
            startTime=int(start.timestamp()),
            endTime=int(end.timestamp()),
            queryString=params.query,
            limit=params.limit,
        )
        answer = await _query_results(client, started["queryId"])
    except AwsError as exc:
        return aws_failure(exc, invocation, f"The log group {params.log_group}")
    status = answer.get("status")
    if status != "Complete":
        return ToolResult.failed(
            f"The Logs Insights query ended as {status}: narrow the window or the query and try again.",
            invocation=invocation,
        )
    rows = views.insights_rows(answer.get("results") or [])
    url = views.log_group_url(client.region, params.log_group)
    if not rows:
        return ToolResult.no_data(
            f"The query matched nothing in {params.log_group} between {iso(start)} and {iso(end)}.",
            invocation=invocation,
        )
    stats = answer.get("statistics") or {}
    data = {"rows": rows, "count": len(rows)}
    if stats.get("recordsScanned") is not None:
        data["records_scanned"] = stats["recordsScanned"]
    return ToolResult.ok(data, invocation=invocation, url=url)


async def _query_results(client: AwsClient, query_id: str) -> Mapping[str, Any]:
    """Poll until the query is done; one that is still running after ``INSIGHTS_WAIT_S`` is stopped."""
    deadline = time.monotonic() + INSIGHTS_WAIT_S
    delay = 0.2
    while True:
        answer: Mapping[str, Any] = await client.call(
            "logs", "get_query_results", doing="read the Logs Insights results", queryId=query_id
        )
        if answer.get("status") not in ("Scheduled", "Running") or time.monotonic() > deadline:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
    if answer.get("status") in ("Scheduled", "Running"):
        with contextlib.suppress(AwsError):
            await client.call("logs", "stop_query", doing="stop the query", queryId=query_id)
        return {"status": f"still running after {INSIGHTS_WAIT_S:g} s (stopped)"}
    return answer


async def cloudwatch_logs_filter(client: AwsClient, params: LogsFilterParams) -> ToolResult:
    try:
        start, end = time_window(params.start, params.end)
    except ValueError as exc:
        return invalid_arguments(exc)
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    invocation = views.cli(
        "logs",
        "filter-log-events",
        client.region,
        log_group_name=params.log_group,
        filter_pattern=params.pattern,
        start_time=start_ms,
        end_time=end_ms,
    )
    query: dict[str, Any] = {"logGroupName": params.log_group, "startTime": start_ms, "endTime": end_ms}
    if params.pattern:
        query["filterPattern"] = params.pattern
    try:
        found = await client.pages(
            "logs", "filter_log_events", "events", doing="filter log events", limit=params.limit, **query
        )
    except AwsError as exc:
        return aws_failure(exc, invocation, f"The log group {params.log_group}")
    if not found:
        what = f"matching {params.pattern!r} " if params.pattern else ""
        return ToolResult.no_data(
            f"No events {what}in {params.log_group} between {iso(start)} and {iso(end)}.",
            invocation=invocation,
        )
    events = sorted(found, key=lambda e: int(e.get("timestamp") or 0))[-params.limit :]
    data = {"lines": len(events), "events": [views.log_event_row(e) for e in events]}
    return ToolResult.ok(
        data, invocation=invocation, url=views.log_group_url(client.region, params.log_group)
    )


async def cloudwatch_log_groups(client: AwsClient, params: LogGroupsParams) -> ToolResult:
    """Log groups by name, so the model finds the one to query instead of guessing it."""
    invocation = views.cli("logs", "describe-log-groups", client.region, log_group_name_prefix=params.prefix)
    query = {"logGroupNamePrefix": params.prefix} if params.prefix else {}
    try:
        found = await client.pages(
            "logs", "describe_log_groups", "logGroups", doing="list log groups", limit=MAX_LOG_GROUPS, **query
        )
    except AwsError as exc:
        return aws_failure(exc, invocation)
    wanted = (params.contains or "").lower()
    rows = [views.log_group_row(g) for g in found if wanted in str(g.get("logGroupName")).lower()]
    if not rows:
        starting = f" starting with {params.prefix}" if params.prefix else ""
        containing = f" containing {params.contains!r}" if params.contains else ""
        return ToolResult.no_data(
            f"No log groups{starting}{containing} in {client.region}.", invocation=invocation
        )
    data: dict[str, Any] = {"count": len(rows)}
    if len(found) >= MAX_LOG_GROUPS:
        data["read_note"] = f"Only the first {MAX_LOG_GROUPS} log groups were read; pass a prefix to narrow."
    data = capped(data, "log_groups", rows, MAX_ROWS, "pass prefix or contains to narrow")
    url = views.console(client.region, "cloudwatch/home", "logsV2:log-groups")
    return ToolResult.ok(data, invocation=invocation, url=url)
