"""The coralogix toolset: DataPrime (or Lucene) log queries, an error summary of an application or
subsystem, counts by field, and the alert definitions that triggered recently, from Coralogix.

Every tool takes the run's ``CxClient`` (``coralogix_api.connect``) and returns a compact ``ToolResult``
(rows from ``coralogix_views``): log lines newest first with time, level, service (subsystem),
application, message and a few trimmed fields; aggregations as their rows; long lists capped with a
count of what was left out. Tool names start with ``cx_`` because every toolset's tools share one flat
list in the SRE agent. Every result carries the query and window as ``invocation``. Failures are one
plain sentence (``CxError``), with Coralogix's own message for a query it rejected; an empty answer is
``no_data``. ``fetch_log_lines`` serves the unified log tool with the same rows as ``cx_query``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from incidentfox.agents.toolsets.base import ToolResult, Toolset, ToolsetHealth
from incidentfox.agents.toolsets.coralogix_api import CxClient, CxError, check_health, connect
from incidentfox.agents.toolsets.coralogix_views import (
    ERRORS,
    alerts_data,
    error_counts,
    literal,
    log_row,
    query_data,
    scope_filter,
    user_data,
)
from incidentfox.agents.toolsets.elasticsearch_views import top_messages
from incidentfox.agents.toolsets.prometheus_views import Row, choose_step, format_duration, iso, parse_time
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
MAX_VALUES = 100
MAX_ALERTS = 50
MAX_POINTS = 60
ERROR_SAMPLE = 500
"""How many of the newest error logs the error summary reads for its top messages."""
TOP_MESSAGES = 10
HEALTH_TIMEOUT_S = 5.0
ALERTS_WINDOW = timedelta(hours=24)
_SYNTAX = {"dataprime": "QUERY_SYNTAX_DATAPRIME", "lucene": "QUERY_SYNTAX_LUCENE"}
_SYNTAX_NAME = {"dataprime": "DataPrime", "lucene": "Lucene"}
_TIER = {"frequent": "TIER_FREQUENT_SEARCH", "archive": "TIER_ARCHIVE"}


def _check_limit(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    return value


def _check_size(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= MAX_VALUES:
        raise ValueError(f"size must be between 1 and {MAX_VALUES}")
    return value


def _check_keypath(text: str) -> str:
    text = text.strip()
    head, _, rest = text.partition(".")
    parts = rest.split(".") if head in ("$m", "$l", "$d") else text.split(".")
    if (not rest and head.startswith("$")) or not all(p.isidentifier() for p in parts):
        raise ValueError("give a field such as $l.subsystemname, $m.severity or $d.kubernetes.pod_name")
    return text if head.startswith("$") else f"$d.{text}"


def _check_condition(text: str | None) -> str | None:
    return None if text is None or not text.strip() else checked_query(text)


Query = Annotated[str, AfterValidator(checked_query)]
Condition = Annotated[str | None, AfterValidator(_check_condition)]
Limit = Annotated[int | None, AfterValidator(_check_limit)]


class QueryParams(StrictParams):
    query: Query = Field(
        description="DataPrime, e.g. source logs | filter $l.subsystemname == 'checkout' && $m.severity == "
        "ERROR | limit 50, or source logs | groupby $l.subsystemname aggregate count() as n; with "
        "syntax lucene, a Lucene query such as coralogix.metadata.subsystemName:checkout AND timeout."
    )
    syntax: Literal["dataprime", "lucene"] | None = Field(default=None, description="Null for dataprime.")
    tier: Literal["frequent", "archive"] | None = Field(
        default=None,
        description="frequent (the default: recent, indexed logs) or archive (long-term, slower).",
    )
    start: str | None = start_field()
    end: str | None = end_field()
    limit: Limit = Field(default=None, description=f"Most rows, 1 to {MAX_LIMIT}; null for {DEFAULT_LIMIT}.")


class ScopeParams(StrictParams):
    application: str | None = Field(
        default=None, description="Application name ($l.applicationname); null for all."
    )
    subsystem: str | None = Field(
        default=None, description="Subsystem (service) name ($l.subsystemname); null for all."
    )
    start: str | None = start_field()
    end: str | None = end_field()


class FieldValuesParams(StrictParams):
    field: Annotated[str, AfterValidator(_check_keypath)] = Field(
        description="The field to count by: $l.subsystemname, $l.applicationname, $m.severity or a log field "
        "such as $d.http.status (a bare name means $d.name)."
    )
    filter: Condition = Field(
        default=None,
        description="A DataPrime condition, e.g. $l.subsystemname == 'checkout' && $m.severity == ERROR; "
        "null for all logs.",
    )
    start: str | None = start_field()
    end: str | None = end_field()
    size: Annotated[int | None, AfterValidator(_check_size)] = Field(
        default=None, description=f"How many top values, 1 to {MAX_VALUES}; null for 10."
    )


class AlertsParams(StrictParams):
    since: str | None = Field(
        default=None, description="Alerts that triggered since then (RFC3339 or -6h); null for 24 hours ago."
    )
    name: str | None = Field(default=None, description="Only alerts whose name contains this; null for all.")


def _span(start: datetime, end: datetime) -> str:
    return f"from {iso(start)} to {iso(end)}"


def _pipeline(condition: str | None, *commands: str) -> str:
    parts = ["source logs", *([f"filter {condition}"] if condition else []), *commands]
    return " | ".join(parts)


async def _logs(
    client: CxClient,
    query: str,
    start: datetime,
    end: datetime,
    limit: int,
    *,
    syntax: str = "dataprime",
    tier: str = "frequent",
) -> ToolResult:
    """Run ``query`` and shape its answer; the body of ``cx_query`` and ``fetch_log_lines``."""
    invocation = f"{_SYNTAX_NAME[syntax]} on the {tier} tier {_span(start, end)} (limit {limit}): {query}"
    try:
        answer = await client.query(
            query,
            start=start,
            end=end,
            limit=limit,
            doing="run the query",
            syntax=_SYNTAX[syntax],
            tier=_TIER[tier],
        )
    except CxError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    if not answer.results:
        return ToolResult.no_data(
            f"Nothing matched {query} {_span(start, end)}. A filter that matches nothing is not an error in "
            "DataPrime: check application and subsystem names with cx_field_values, or widen the window"
            + (" (older logs may be on the archive tier)." if tier == "frequent" else "."),
            invocation=invocation,
        )
    data = query_data(answer.results, answer.warnings, limit=limit, start=start, end=end)
    return ToolResult.ok(data, invocation=invocation)


async def query(client: CxClient, params: QueryParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    limit = params.limit or DEFAULT_LIMIT
    return await _logs(
        client,
        params.query,
        start,
        end,
        limit,
        syntax=params.syntax or "dataprime",
        tier=params.tier or "frequent",
    )


async def fetch_log_lines(
    client: CxClient, query: str, start: datetime, end: datetime, limit: int
) -> ToolResult:
    """Log lines for the unified log tool, as ``cx_query`` returns them (``entries`` of ``time``, ``level``,
    ``service``, ``message``, plus ``application`` and ``fields``). ``query`` is DataPrime starting with
    ``source``; other text is searched as free text in the logs (``$d ~~ '…'``), and empty text reads
    every log."""
    text = query.strip()
    if not text:
        text = "source logs"
    elif not text.lower().startswith("source "):
        text = _pipeline(f"$d ~~ {literal(text)}")
    return await _logs(client, text, start, end, max(1, min(limit, MAX_LIMIT)))


async def error_summary(client: CxClient, params: ScopeParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    scope = scope_filter(params.application, params.subsystem)
    errors = f"{scope} && {ERRORS}" if scope else ERRORS
    step = choose_step((end - start).total_seconds(), None, max_points=MAX_POINTS)
    counting = _pipeline(
        errors,
        "groupby $l.applicationname as application, $l.subsystemname as subsystem, $m.severity as severity, "
        f"roundTime($m.timestamp, {format_duration(step)}) as bucket aggregate count() as errors",
    )
    sampling = _pipeline(errors, f"limit {ERROR_SAMPLE}")
    invocation = (
        f"error and critical logs {_span(start, end)}: {counting}; top messages of the newest: {sampling}"
    )
    try:
        counts = await client.query(counting, start=start, end=end, limit=5000, doing="count error logs")
        sample = await client.query(
            sampling, start=start, end=end, limit=ERROR_SAMPLE, doing="read error logs"
        )
        if not sample.results:
            anything = await client.query(
                _pipeline(scope, "limit 1"), start=start, end=end, limit=1, doing="read any log"
            )
            return _no_errors(scope, bool(anything.results), start, end, invocation)
    except CxError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    data: Row = {"start": iso(start), "end": iso(end), "step": format_duration(step)}
    data.update(error_counts([user_data(r) for r in counts.results], start=start, end=end, step_s=step))
    rows = sorted((log_row(r) for r in sample.results), key=lambda r: r["time"] or "", reverse=True)
    for row in rows:
        row.pop("fields", None)
        row.pop("fields_omitted", None)
    data["top_messages"] = top_messages(rows, TOP_MESSAGES)
    if len(rows) >= ERROR_SAMPLE:
        data["note"] = f"top_messages are counted over the newest {ERROR_SAMPLE} error logs only."
    return ToolResult.ok(data, invocation=invocation)


def _no_errors(
    scope: str | None, any_logs: bool, start: datetime, end: datetime, invocation: str
) -> ToolResult:
    where = f"logs matching {scope}" if scope else "the logs"
    if any_logs:
        reason = (
            f"No error or critical logs in {where} {_span(start, end)}, though there are logs: if this "
            "service logs errors at another severity, look with cx_query and a text filter "
            "($d ~~ 'exception')."
        )
    else:
        reason = (
            f"No logs at all in {where} {_span(start, end)}: check the application and subsystem names with "
            "cx_field_values on $l.applicationname and $l.subsystemname."
        )
    return ToolResult.no_data(reason, invocation=invocation)


async def field_values(client: CxClient, params: FieldValuesParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    size = params.size or 10
    counting = _pipeline(
        params.filter,
        f"groupby {params.field} as value aggregate count() as logs",
        "orderby logs desc",
        f"limit {size}",
    )
    total = _pipeline(params.filter, "aggregate count() as logs")
    invocation = f"top {size} values of {params.field} {_span(start, end)}: {counting}"
    try:
        found = await client.query(
            counting, start=start, end=end, limit=size, doing=f"count by {params.field}"
        )
        overall = await client.query(total, start=start, end=end, limit=1, doing="count the logs")
    except CxError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    rows = [r for r in (user_data(x) for x in found.results) if isinstance(r, Mapping)]
    totals = [user_data(x) for x in overall.results]
    logs = sum(int(t.get("logs") or 0) for t in totals if isinstance(t, Mapping))
    if not logs:
        where = f" matching {params.filter}" if params.filter else ""
        return ToolResult.no_data(f"No logs{where} {_span(start, end)}.", invocation=invocation)
    values: list[Row] = [{"value": r.get("value"), "logs": int(r.get("logs") or 0)} for r in rows]
    shown = sum(int(v["logs"]) for v in values)
    data = {"field": params.field, "logs": logs, "values": values, "other_values_logs": max(logs - shown, 0)}
    return ToolResult.ok(data, invocation=invocation)


async def alerts(client: CxClient, params: AlertsParams) -> ToolResult:
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        since = parse_time(params.since, now=now, default=now - ALERTS_WINDOW)
    except ValueError as exc:
        return invalid_params(exc)
    named = f" named like {params.name!r}" if params.name else ""
    invocation = f"alert definitions{named} that triggered since {iso(since)}"
    try:
        definitions = await client.alert_defs()
    except CxError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    data = alerts_data(definitions, since, params.name, MAX_ALERTS)
    if not data["triggered"]:
        return ToolResult.no_data(
            f"None of the {data['definitions']} alert definitions{named} ({data['enabled']} enabled) "
            f"triggered since {iso(since)}.",
            invocation=invocation,
        )
    return ToolResult.ok(data, invocation=invocation)


async def health(config: Mapping[str, Any]) -> ToolsetHealth:
    return await check_health(config, timeout_s=HEALTH_TIMEOUT_S)


INSTRUCTIONS = """You read logs and alerts from Coralogix. Start with cx_alerts to see which alert
definitions triggered, and cx_error_summary for the application or subsystem (service) in question: it
counts error and critical logs over time per application/subsystem and gives the most frequent
messages. If you do not know the names, list them with cx_field_values on $l.applicationname or
$l.subsystemname instead of guessing. Then narrow with cx_query in DataPrime: source logs | filter
$l.subsystemname == 'checkout' && $m.severity == ERROR | limit 50; text search with $d.message ~
'timeout' or $d ~~ 'timeout'; counts with groupby ... aggregate count() as n. Keep windows short (15-60
minutes around the incident) and compare with a window before it; use tier archive only for logs older
than the frequent-search retention. Times are RFC3339, unix seconds, now, or relative like -30m. As
evidence, quote the exact message with its time, application and subsystem. An empty result means
nothing matched, not that all is well: check the names."""

CORALOGIX = Toolset(
    name="coralogix",
    description="Coralogix logs and alerts: DataPrime or Lucene queries, an error summary per application "
    "and subsystem, counts by field, and recently triggered alert definitions.",
    instructions=INSTRUCTIONS,
    connect=connect,
    prerequisites=("integrations.coralogix.api_key",),
    health_check=health,
    tools=(
        typed_tool(
            "cx_error_summary",
            "Error and critical logs of an application and/or subsystem over a window: counts over time and "
            f"per application/subsystem, and the {TOP_MESSAGES} most frequent messages (numbers and ids "
            "stripped) with the newest example. Start here.",
            ScopeParams,
            error_summary,
        ),
        typed_tool(
            "cx_query",
            "Run a DataPrime (or Lucene) query over a window (default the last hour): log lines newest first "
            f"with time, level, service, application, message and key fields (at most {MAX_LIMIT}), or the "
            "rows of a groupby/aggregate/choose.",
            QueryParams,
            query,
        ),
        typed_tool(
            "cx_field_values",
            "Count logs by one field ($l.subsystemname, $l.applicationname, $m.severity, $d.http.status), "
            "the most frequent values first, optionally under a DataPrime condition.",
            FieldValuesParams,
            field_values,
        ),
        typed_tool(
            "cx_alerts",
            "Coralogix alert definitions that triggered recently (default the last 24 hours), newest first: "
            "name, priority, type, query, application/subsystem scope and when they last triggered.",
            AlertsParams,
            alerts,
        ),
    ),
)
