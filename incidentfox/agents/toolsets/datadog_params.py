"""The parameters of the datadog toolset's tools, as the model fills them in. Lengths and ranges are
checked by validators, not by JSON schema keywords (strict tool schemas reject them)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from incidentfox.agents.toolsets.query_tools import StrictParams, checked_query, end_field, start_field

MAX_LOGS = 500
MAX_GROUPS = 50
MAX_TRACES = 100
MAX_HOSTS = 200
_METRIC_PREFIX = re.compile(r"^[A-Za-z][\w.]*$")
_INTERVAL = re.compile(r"^\d+[mhd]$")


def _limit(maximum: int) -> AfterValidator:
    def check(value: int | None) -> int | None:
        if value is not None and not 1 <= value <= maximum:
            raise ValueError(f"limit must be between 1 and {maximum}")
        return value

    return AfterValidator(check)


def _metric_prefix(text: str) -> str:
    text = text.strip()
    if not _METRIC_PREFIX.match(text):
        raise ValueError("give the start of a metric name, such as trace.http or checkout.")
    return text


def _interval(text: str | None) -> str | None:
    if text is not None and not _INTERVAL.match(text.strip()):
        raise ValueError("interval must be a duration such as 1m, 5m or 1h")
    return text.strip() if text else None


Query = Annotated[str, AfterValidator(checked_query)]
SEARCH_SYNTAX = (
    'Datadog search syntax: service:checkout status:error env:prod @http.status_code:>=500 "upstream '
    'timeout" -host:canary-*'
)


class MetricQueryParams(StrictParams):
    query: Query = Field(
        description="A Datadog metric query: aggregation:metric{scope} [by {tags}], e.g. "
        "sum:trace.http.request.errors{service:checkout,env:prod} by {resource_name}.as_count() or "
        "avg:system.cpu.user{host:web-1}."
    )
    start: str | None = start_field()
    end: str | None = end_field()


class SearchMetricsParams(StrictParams):
    prefix: Annotated[str, AfterValidator(_metric_prefix)] = Field(
        description="The start of the metric names, e.g. trace.http, checkout. or system.cpu."
    )
    tag_filter: str | None = Field(
        default=None,
        description="Only metrics reported with these tags, e.g. env:prod AND service:checkout; null for "
        "any.",
    )
    start: str | None = Field(
        default=None, description="Reported since: RFC3339, unix seconds or -2h; null for 1 hour ago."
    )


class LogsSearchParams(StrictParams):
    query: Query = Field(description=f"Which logs, in {SEARCH_SYNTAX}. * for all.")
    start: str | None = start_field()
    end: str | None = end_field()
    limit: Annotated[int | None, _limit(MAX_LOGS)] = Field(
        default=None, description=f"Most logs to return, 1 to {MAX_LOGS}; null for 50."
    )
    order: Literal["newest", "oldest"] | None = Field(
        default=None, description="newest first (the default) or oldest first."
    )


class LogsAggregateParams(StrictParams):
    query: Query = Field(description=f"Which logs to count, in {SEARCH_SYNTAX}. * for all.")
    group_by: str | None = Field(
        default=None,
        pattern=r"^@?[A-Za-z_][\w.\-]*$",
        description="The facet to count by: service, status, host, env or an attribute such as "
        "@http.status_code; null for service.",
    )
    interval: Annotated[str | None, AfterValidator(_interval)] = Field(
        default=None,
        description="Give counts per interval (1m, 5m, 1h) for each group, to see when it started; null "
        "for totals only.",
    )
    limit: Annotated[int | None, _limit(MAX_GROUPS)] = Field(
        default=None, description=f"Most groups, the largest first, 1 to {MAX_GROUPS}; null for 10."
    )
    start: str | None = start_field()
    end: str | None = end_field()


MonitorState = Literal["Alert", "Warn", "No Data"]


class MonitorsParams(StrictParams):
    states: list[MonitorState] | None = Field(
        default=None, description="Which states to list; null for Alert, Warn and No Data."
    )
    tags: str | None = Field(
        default=None,
        description="Only monitors carrying all these tags, comma-separated, e.g. service:checkout,env:prod.",
    )
    name: str | None = Field(default=None, description="Only monitors whose name contains this text.")


class ServiceParams(StrictParams):
    service: str = Field(pattern=r"^[\w.\-/]+$", description="The APM service name, e.g. checkout.")
    env: str | None = Field(
        default=None, pattern=r"^[\w.\-]+$", description="The env, e.g. prod; null for all."
    )
    start: str | None = start_field()
    end: str | None = end_field()


class ErrorTracesParams(ServiceParams):
    query: str | None = Field(
        default=None,
        description='More span filters in Datadog search syntax, e.g. resource_name:"POST /api/checkout" '
        "or @http.status_code:502; null for none.",
    )
    limit: Annotated[int | None, _limit(MAX_TRACES)] = Field(
        default=None, description=f"Most errored spans, newest first, 1 to {MAX_TRACES}; null for 20."
    )


class EventsParams(StrictParams):
    sources: str | None = Field(
        default=None,
        description="Only events from these sources, comma-separated, e.g. github,kubernetes,jenkins; "
        "null for all.",
    )
    tags: str | None = Field(
        default=None, description="Only events with all these tags, comma-separated, e.g. service:checkout."
    )
    start: str | None = start_field()
    end: str | None = end_field()


class HostsParams(StrictParams):
    filter: str | None = Field(
        default=None,
        description="Only hosts whose name, alias or a tag contains this, e.g. checkout or env:prod; null "
        "for all.",
    )
    limit: Annotated[int | None, _limit(MAX_HOSTS)] = Field(
        default=None, description=f"Most hosts, the ones not reporting first, 1 to {MAX_HOSTS}; null for 50."
    )
