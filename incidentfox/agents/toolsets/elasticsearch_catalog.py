"""The catalog tools of the elasticsearch toolset: which indices match a pattern (with their health,
document count and size) and which fields an index pattern has (with their types), so that the model
searches the right index with the right field names instead of guessing.

``es_indices`` reads ``GET /_cat/indices/{pattern}?format=json&bytes=b`` (data streams show as their
``.ds-…`` backing indices); ``es_field_mapping`` reads ``GET /{index}/_field_caps?fields=…``, which
merges the mappings of every index the pattern matches and says where a field's type differs.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from pydantic import AfterValidator, Field

from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.elasticsearch_api import EsClient, EsError
from incidentfox.agents.toolsets.elasticsearch_views import HEALTH_ORDER, byte_size, field_rows, index_row
from incidentfox.agents.toolsets.prometheus_views import Row, capped
from incidentfox.agents.toolsets.query_tools import StrictParams

MAX_INDICES = 50
MAX_FIELDS = 200
INDEX_COLUMNS = "health,status,index,pri,rep,docs.count,store.size"


def check_index(text: str | None) -> str | None:
    """An index name, pattern or comma list as the model gives it; nothing that changes the URL path."""
    if text is None:
        return None
    text = text.strip()
    if not text or any(c in text for c in ' "\\/?#<>|'):
        raise ValueError("give an index name or pattern such as logs-* or logs-a,logs-b")
    return text


Index = Annotated[str | None, AfterValidator(check_index)]


class IndicesParams(StrictParams):
    pattern: Index = Field(
        default=None,
        description="Index name or pattern (logs-*, *checkout*, comma lists allowed); null for the "
        "configured default.",
    )


class FieldMappingParams(StrictParams):
    index: Index = Field(
        default=None, description="Index name or pattern (logs-*); null for the configured default."
    )
    contains: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.@-]+$",
        description="Only fields whose name contains this, e.g. service, status, trace; null for all.",
    )


def _path(base: str, pattern: str, params: dict[str, str]) -> str:
    return f"{base.format(index=quote(pattern, safe=',*'))}?{urlencode(params, safe=',*:')}"


async def indices(client: EsClient, params: IndicesParams) -> ToolResult:
    pattern = params.pattern or client.index
    query = {"format": "json", "bytes": "b", "h": INDEX_COLUMNS, "s": "index"}
    path = f"/_cat/indices/{quote(pattern, safe=',*')}"
    invocation = f"GET {_path('/_cat/indices/{index}', pattern, query)}"
    try:
        found = await client.read(path, query, index=pattern, doing="list the indices", shape=list)
    except EsError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    rows = [index_row(r) for r in found if isinstance(r, dict)]
    if not rows:
        return ToolResult.no_data(
            f"No index matches {pattern}. That is not an error: try a wider pattern, or * to see every "
            "index.",
            invocation=invocation,
        )
    rows.sort(key=lambda r: (HEALTH_ORDER.get(str(r.get("health")), 2), str(r.get("index"))))
    by_health = Counter(str(r.get("health")) for r in rows)
    data: Row = {
        "pattern": pattern,
        "indices": len(rows),
        "by_health": dict(by_health),
        "documents": sum(int(r.get("docs") or 0) for r in rows),
        "size": byte_size(sum(int(r.get("size_bytes") or 0) for r in rows)),
    }
    if by_health.get("red"):
        data["warning"] = (
            "Red indices have unassigned primary shards: searches over them miss documents or fail."
        )
    data = capped(data, "index_list", rows, MAX_INDICES, "unhealthy first, then by name; narrow the pattern")
    return ToolResult.ok(data, invocation=invocation, url=_management_url(client))


def _management_url(client: EsClient) -> str | None:
    if not client.kibana_url:
        return None
    return f"{client.kibana_url}/app/management/data/index_management/indices"


async def field_mapping(client: EsClient, params: FieldMappingParams) -> ToolResult:
    index = params.index or client.index
    query = {"fields": f"*{params.contains}*" if params.contains else "*"}
    path = f"/{quote(index, safe=',*')}/_field_caps"
    invocation = f"GET {_path('/{index}/_field_caps', index, query)}"
    try:
        answer = await client.read(path, query, index=index, doing="read the field types", shape=dict)
    except EsError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    rows, conflicts = field_rows(answer.get("fields") or {})
    matched: list[Any] = answer.get("indices") or []
    if not rows:
        which = f" whose name contains {params.contains}" if params.contains else ""
        where = f"the {len(matched)} indices matching {index}" if matched else f"{index} (no index matches)"
        return ToolResult.no_data(f"No fields{which} in {where}.", invocation=invocation)
    data: Row = {"index": index, "indices": len(matched), "field_count": len(rows)}
    if conflicts:
        data["type_conflicts"] = conflicts[:20]
        data["conflict_note"] = (
            "These fields have different types in different indices: a query or aggregation on them may "
            "fail or miss documents in some indices."
        )
    data = capped(data, "fields", rows, MAX_FIELDS, "pass contains to narrow")
    data["hint"] = (
        "Filter and aggregate (es_field_values) on aggregatable fields: for a text field, its .keyword "
        "sub-field."
    )
    return ToolResult.ok(data, invocation=invocation, url=_management_url(client))
