"""The elasticsearch toolset: log search, an error summary per service, top field values, a histogram,
the indices of a pattern and the fields of an index, from Elasticsearch or OpenSearch.

Every tool takes the run's ``EsClient`` (``elasticsearch_api.connect``) and returns a compact
``ToolResult`` (rows from ``elasticsearch_views``): hits newest first with their time, message, index
and a few key fields, aggregations as values with counts. Tool names start with ``es_`` because every
toolset's tools share one flat list in the SRE agent. Every result carries the query, window and index
as ``invocation`` and, when ``integrations.elasticsearch.kibana_url`` is set, a Kibana Discover link as
``url``. Failures are one plain sentence (``EsError``) with Elasticsearch's own reason for a query it
rejected; an empty answer is ``no_data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from incidentfox.agents.toolsets import elasticsearch_catalog as catalog
from incidentfox.agents.toolsets.base import ToolResult, Toolset, ToolsetHealth
from incidentfox.agents.toolsets.elasticsearch_api import EsClient, EsError, check_health, connect
from incidentfox.agents.toolsets.elasticsearch_catalog import FieldMappingParams, Index, IndicesParams
from incidentfox.agents.toolsets.elasticsearch_views import (
    ERROR_LEVELS,
    ERROR_WORDS,
    buckets,
    discover_url,
    error_query,
    histogram_data,
    hit_row,
    search_filter,
    top_messages,
    total,
)
from incidentfox.agents.toolsets.prometheus_views import Row, capped, choose_step, format_duration, iso
from incidentfox.agents.toolsets.query_tools import (
    StrictParams,
    checked_query,
    end_field,
    invalid_params,
    query_window,
    start_field,
    typed_tool,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_SIZE = 100
MAX_BUCKETS = 100
MAX_SERVICES = 50
ERROR_SAMPLE = 500
"""How many of the newest error documents the error summary reads for its top messages."""
TOP_MESSAGES = 10
HEALTH_TIMEOUT_S = 5.0
QUERY_MAX_ES = 1500


def _check_length(text: str | None) -> str | None:
    """Searches travel in the URL (``?source=``), and ES reads a request line of 4 KB by default."""
    if text is not None and len(text) > QUERY_MAX_ES:
        raise ValueError(f"keep the query under {QUERY_MAX_ES} characters")
    return text


def _check_range(low: int, high: int, name: str) -> Any:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low} and {high}")
        return value

    return AfterValidator(check)


Query = Annotated[str, AfterValidator(checked_query), AfterValidator(_check_length)]
QUERY_HELP = (
    'Lucene query_string, e.g. service.name:checkout AND "upstream timeout" or log.level:error AND '
    "NOT message:health*"
)
INDEX_HELP = "Index name or pattern (logs-*, comma lists allowed); null for the configured default."


class SearchParams(StrictParams):
    query: Query = Field(description=QUERY_HELP + ". Use * for everything.")
    index: Index = Field(default=None, description=INDEX_HELP)
    start: str | None = start_field()
    end: str | None = end_field()
    limit: Annotated[int, _check_range(1, MAX_LIMIT, "limit")] = Field(
        default=DEFAULT_LIMIT, description=f"Most documents to return, 1 to {MAX_LIMIT}."
    )


class WindowQueryParams(StrictParams):
    query: Query | None = Field(default=None, description=QUERY_HELP + "; null for everything.")
    index: Index = Field(default=None, description=INDEX_HELP)
    start: str | None = start_field()
    end: str | None = end_field()


class FieldValuesParams(WindowQueryParams):
    field: str = Field(
        pattern=r"^[A-Za-z0-9_@][A-Za-z0-9_.@-]*$",
        description="A keyword field: service.name, log.level, host.name, http.response.status_code…",
    )
    size: Annotated[int, _check_range(1, MAX_SIZE, "size")] = Field(
        default=10, description=f"How many top values, 1 to {MAX_SIZE}."
    )


@dataclass(frozen=True, slots=True)
class Scope:
    """What one tool call asks about: the index pattern, the query and the window."""

    client: EsClient
    index: str
    query: str | None
    start: datetime
    end: datetime

    @property
    def where(self) -> str:
        return f"index {self.index} from {iso(self.start)} to {iso(self.end)}, query: {self.query or '*'}"

    @property
    def url(self) -> str | None:
        return discover_url(self.client.kibana_url, self.index, self.query or "*", self.start, self.end)

    def filtered(self, **body: Any) -> Row:
        """A search body over the scope (the window and the query as filters) with ``body`` added."""
        clauses = search_filter(self.query, self.client.timestamp_field, self.start, self.end)
        return {"query": {"bool": {"filter": clauses}}, "track_total_hits": True, **body}

    def no_match(self, invocation: str) -> ToolResult:
        return ToolResult.no_data(
            f"No documents in {self.index} match {self.query or '*'} from {iso(self.start)} to "
            f"{iso(self.end)}. That is not an error: check the index pattern and field names with "
            "es_field_values, or widen the window.",
            invocation=invocation,
        )


def _scope(client: EsClient, params: WindowQueryParams | SearchParams) -> Scope:
    """Raises ``ValueError`` for an unreadable or empty window."""
    start, end = query_window(params.start, params.end)
    return Scope(client, params.index or client.index, params.query, start, end)


async def _asked(scope: Scope, body: Row, doing: str, invocation: str) -> Row | ToolResult:
    """ES's answer, or the failed ``ToolResult`` saying why there is none."""
    try:
        return await scope.client.search(scope.index, body, doing=doing)
    except EsError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)


async def search(client: EsClient, params: SearchParams) -> ToolResult:
    try:
        scope = _scope(client, params)
    except ValueError as exc:
        return invalid_params(exc)
    invocation = f"search {scope.where} (newest {params.limit})"
    newest = [{client.timestamp_field: {"order": "desc"}}]
    answer = await _asked(
        scope, scope.filtered(sort=newest, size=params.limit), "search the logs", invocation
    )
    if isinstance(answer, ToolResult):
        return answer
    hits = (answer.get("hits") or {}).get("hits") or []
    if not hits:
        return scope.no_match(invocation)
    rows = [hit_row(h, client.timestamp_field, client.message_field) for h in hits]
    matched = total(answer)
    data: Row = {
        "start": iso(scope.start),
        "end": iso(scope.end),
        "matched": matched,
        "order": "newest first",
    }
    data["hits"] = rows
    if matched > len(rows):
        data["note"] = f"Showing the newest {len(rows)} of {matched} matches; narrow the query or the window."
    return ToolResult.ok(data, invocation=invocation, url=scope.url)


async def error_summary(client: EsClient, params: WindowQueryParams) -> ToolResult:
    try:
        scope = _scope(client, params)
    except ValueError as exc:
        return invalid_params(exc)
    invocation = (
        f"errors (level {'/'.join(ERROR_LEVELS[:2])} or message with {ERROR_WORDS}) per "
        f"{client.service_field} in {scope.where}"
    )
    body = {
        "query": error_query(
            scope.query, client.timestamp_field, client.message_field, scope.start, scope.end
        ),
        "sort": [{client.timestamp_field: {"order": "desc"}}],
        "size": ERROR_SAMPLE,
        "track_total_hits": True,
        "aggs": {"services": {"terms": {"field": client.service_field, "size": MAX_SERVICES}}},
    }
    answer = await _asked(scope, body, "count errors", invocation)
    if isinstance(answer, ToolResult):
        return answer
    hits = (answer.get("hits") or {}).get("hits") or []
    if not hits:
        anything = await _asked(scope, scope.filtered(size=0), "count documents", invocation)
        return (
            anything if isinstance(anything, ToolResult) else _no_errors(scope, total(anything), invocation)
        )
    rows = [hit_row(h, client.timestamp_field, client.message_field) for h in hits]
    services = [
        {"service": b.get("key"), "errors": b.get("doc_count", 0)} for b in buckets(answer, "services")
    ]
    data: Row = {"start": iso(scope.start), "end": iso(scope.end), "errors": total(answer)}
    data = capped(data, "by_service", services, MAX_SERVICES, f"narrow the query by {client.service_field}")
    data["top_messages"] = top_messages(rows, TOP_MESSAGES)
    if total(answer) > len(rows):
        data["note"] = f"top_messages are counted over the newest {len(rows)} errors only."
    return ToolResult.ok(data, invocation=invocation, url=scope.url)


def _no_errors(scope: Scope, documents: int, invocation: str) -> ToolResult:
    if not documents:
        return scope.no_match(invocation)
    return ToolResult.no_data(
        f"No errors among {documents} documents in {scope.index} matching {scope.query or '*'} from "
        f"{iso(scope.start)} to {iso(scope.end)}: no level error/fatal and no message with {ERROR_WORDS}. "
        "If this service spells errors differently, use es_field_values on its level field and es_search.",
        invocation=invocation,
    )


async def field_values(client: EsClient, params: FieldValuesParams) -> ToolResult:
    try:
        scope = _scope(client, params)
    except ValueError as exc:
        return invalid_params(exc)
    invocation = f"top {params.size} values of {params.field} in {scope.where}"
    aggs = {"values": {"terms": {"field": params.field, "size": params.size}}}
    answer = await _asked(
        scope, scope.filtered(size=0, aggs=aggs), f"count the values of {params.field}", invocation
    )
    if isinstance(answer, ToolResult):
        return answer
    found = buckets(answer, "values")
    if not found and not total(answer):
        return scope.no_match(invocation)
    if not found:
        return ToolResult.no_data(
            f"None of the {total(answer)} matching documents has a value in {params.field}: "
            "check the field name (a text field may need .keyword).",
            invocation=invocation,
        )
    other = ((answer.get("aggregations") or {}).get("values") or {}).get("sum_other_doc_count", 0)
    data = {
        "field": params.field,
        "documents": total(answer),
        "values": [{"value": b.get("key"), "count": b.get("doc_count", 0)} for b in found],
        "other_values_count": other,
    }
    return ToolResult.ok(data, invocation=invocation, url=scope.url)


async def histogram(client: EsClient, params: WindowQueryParams) -> ToolResult:
    try:
        scope = _scope(client, params)
    except ValueError as exc:
        return invalid_params(exc)
    step = choose_step((scope.end - scope.start).total_seconds(), None, max_points=MAX_BUCKETS)
    invocation = f"histogram every {format_duration(step)} of {scope.where}"
    over_time = {"date_histogram": {"field": client.timestamp_field, "fixed_interval": f"{int(step)}s"}}
    body = scope.filtered(size=0, aggs={"over_time": over_time})
    answer = await _asked(scope, body, "count documents over time", invocation)
    if isinstance(answer, ToolResult):
        return answer
    found = buckets(answer, "over_time")
    if not found:
        return scope.no_match(invocation)
    data = histogram_data(found, format_duration(step), total(answer))
    return ToolResult.ok(data, invocation=invocation, url=scope.url)


async def health(config: Mapping[str, Any]) -> ToolsetHealth:
    return await check_health(config, timeout_s=HEALTH_TIMEOUT_S)


INSTRUCTIONS = """You read logs from Elasticsearch or OpenSearch. Start with es_error_summary over the
incident window: it counts errors (level error or fatal, or a message with error, exception or fatal)
per service and gives the most frequent messages with an example. Then narrow with es_search, by service
and time, in Lucene query_string syntax: service.name:checkout AND "upstream timeout", log.level:error
AND NOT message:health*. If you do not know which index holds a service's logs, list them with
es_indices (a pattern such as *checkout*; it also shows red or yellow indices, whose searches may miss
documents); if you do not know a field's name or type, read es_field_mapping (contains=status) instead
of guessing: aggregate and filter exactly on keyword fields (a text field's .keyword). Use
es_field_values to learn which services, hosts or levels exist, and es_histogram to see when something
started or peaked. Keep windows short (15-60 minutes around the incident) and compare with a window
before it. Times are RFC3339, unix seconds, now, or relative like -30m. As evidence, quote the exact
message with its timestamp and index, and give the url when there is one. An empty result means
nothing matched, not that all is well: check the index and the field names."""

ELASTICSEARCH = Toolset(
    name="elasticsearch",
    description="Elasticsearch or OpenSearch logs: search, an error summary per service, top field values, "
    "a histogram over time, the indices and the fields there are.",
    instructions=INSTRUCTIONS,
    connect=connect,
    prerequisites=("integrations.elasticsearch.url",),
    health_check=health,
    tools=(
        typed_tool(
            "es_error_summary",
            "Errors in the logs over a window: documents at level error/fatal or whose message says error, "
            f"exception or fatal, counted per service, and the {TOP_MESSAGES} most frequent messages "
            "(numbers and ids stripped) with the newest example. Start here.",
            WindowQueryParams,
            error_summary,
        ),
        typed_tool(
            "es_search",
            "Search log documents with a Lucene query over a window (default the last hour), newest first: "
            "each with its time, message, index, service, level, host and trace.id when present.",
            SearchParams,
            search,
        ),
        typed_tool(
            "es_field_values",
            "The most frequent values of one field (service.name, log.level, host.name) with their counts.",
            FieldValuesParams,
            field_values,
        ),
        typed_tool(
            "es_histogram",
            f"How many documents match a query over time, in at most {MAX_BUCKETS} buckets, with the peak.",
            WindowQueryParams,
            histogram,
        ),
        typed_tool(
            "es_indices",
            "Indices matching a pattern (data streams as their .ds- backing indices) with health, "
            "document count and size, unhealthy ones first.",
            IndicesParams,
            catalog.indices,
        ),
        typed_tool(
            "es_field_mapping",
            "The fields of an index pattern with their types, which are aggregatable, and those whose type "
            "differs between indices.",
            FieldMappingParams,
            catalog.field_mapping,
        ),
    ),
)
