"""Pure functions for the elasticsearch toolset: the search bodies it sends, ES's answers as the compact
rows the tools return, and links to Kibana Discover."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from incidentfox.agents.toolsets.loki_views import clipped, normalized
from incidentfox.agents.toolsets.prometheus_views import Row, iso

KEY_FIELDS = {
    "service": ("service.name", "service"),
    "level": ("log.level", "level", "severity"),
    "host": ("host.name", "host.hostname", "host", "kubernetes.pod.name"),
    "trace.id": ("trace.id", "trace_id", "traceId"),
}
ERROR_LEVELS = ("error", "fatal", "ERROR", "FATAL", "Error", "Fatal", "critical", "CRITICAL")
ERROR_WORDS = "error exception fatal"


def value_at(source: Mapping[str, Any], field: str) -> Any:
    """A dotted field of ``_source``: a flat ``"log.level"`` key or nested objects."""
    if field in source:
        return source[field]
    head, _, rest = field.partition(".")
    inner = source.get(head)
    return value_at(inner, rest) if rest and isinstance(inner, Mapping) else None


def search_filter(query: str | None, timestamp_field: str, start: datetime, end: datetime) -> list[Row]:
    """The ``filter`` clauses of a window and an optional query_string."""
    clauses: list[Row] = [
        {
            "range": {
                timestamp_field: {"gte": iso(start), "lte": iso(end), "format": "strict_date_optional_time"}
            }
        }
    ]
    if query:
        clauses.append({"query_string": {"query": query, "default_operator": "AND"}})
    return clauses


def error_query(
    query: str | None, timestamp_field: str, message_field: str, start: datetime, end: datetime
) -> Row:
    """Documents at level error/fatal, or with error, exception or fatal in a word of the message
    (``NullPointerException`` too)."""
    should: list[Row] = [{"terms": {field: list(ERROR_LEVELS)}} for field in KEY_FIELDS["level"]]
    words = " OR ".join(f"{message_field}:*{word}*" for word in ERROR_WORDS.split())
    should.append({"query_string": {"query": words, "analyze_wildcard": True}})
    return {
        "bool": {
            "filter": search_filter(query, timestamp_field, start, end),
            "should": should,
            "minimum_should_match": 1,
        }
    }


def hit_row(hit: Mapping[str, Any], timestamp_field: str, message_field: str) -> Row:
    source = hit.get("_source") or {}
    row: Row = {"timestamp": value_at(source, timestamp_field), "index": hit.get("_index")}
    for name, fields in KEY_FIELDS.items():
        value = next((value_at(source, f) for f in fields if value_at(source, f) is not None), None)
        if value is not None and not isinstance(value, Mapping):
            row[name] = value
    message = value_at(source, message_field)
    row["message"] = clipped(str(message if message is not None else source))
    return row


def total(answer: Mapping[str, Any]) -> int:
    found = (answer.get("hits") or {}).get("total")
    return int(found.get("value", 0) if isinstance(found, Mapping) else found or 0)


def buckets(answer: Mapping[str, Any], name: str) -> list[Row]:
    return list(((answer.get("aggregations") or {}).get(name) or {}).get("buckets") or [])


def top_messages(rows: list[Row], count: int) -> list[Row]:
    """The most frequent normalized messages (loki_views' ``normalized``) with their newest example."""
    counts: Counter[str] = Counter()
    examples: dict[str, Row] = {}
    for row in rows:
        message = normalized(str(row["message"]))
        counts[message] += 1
        examples.setdefault(message, row)
    return [
        {"message": message, "count": n, "latest": examples[message]}
        for message, n in counts.most_common(count)
    ]


def histogram_data(found: list[Row], interval: str, hits: int) -> Row:
    rows = [
        {"time": b.get("key_as_string") or iso(b["key"] / 1000), "count": b.get("doc_count", 0)}
        for b in found
    ]
    data: Row = {"interval": interval, "documents": hits, "buckets": len(rows)}
    if rows:
        peak = max(rows, key=lambda r: r["count"])
        counts = sorted(r["count"] for r in rows)
        data["peak"] = {**peak, "median_per_bucket": counts[len(counts) // 2]}
    data["series"] = rows
    return data


def _rison(text: str) -> str:
    return "'" + text.replace("!", "!!").replace("'", "!'") + "'"


def discover_url(
    kibana_url: str | None, index: str, query: str, start: datetime, end: datetime
) -> str | None:
    """Kibana Discover with the query (Lucene) over the window; ``None`` without ``kibana_url``."""
    if not kibana_url:
        return None
    state_g = f"(time:(from:{_rison(iso(start))},to:{_rison(iso(end))}))"
    state_a = f"(index:{_rison(index)},query:(language:lucene,query:{_rison(query)}))"
    return f"{kibana_url}/app/discover#/?_g={quote(state_g, safe='():,!')}&_a={quote(state_a, safe='():,!')}"


HEALTH_ORDER = {"red": 0, "yellow": 1}


def _number(text: Any) -> int | None:
    return int(text) if isinstance(text, str) and text.isdigit() else None


def byte_size(size: int | None) -> str | None:
    """Bytes as ES's units say them: ``12.4mb``."""
    if size is None:
        return None
    for unit, scale in (("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}{unit}"
    return f"{size}b"


def index_row(row: Mapping[str, Any]) -> Row:
    """A ``_cat/indices?format=json&bytes=b`` row (every value a string) as numbers and words."""
    size = _number(row.get("store.size"))
    shown: Row = {
        "index": row.get("index"),
        "health": row.get("health"),
        "status": row.get("status"),
        "docs": _number(row.get("docs.count")),
        "size": byte_size(size),
        "size_bytes": size,
        "primaries": _number(row.get("pri")),
        "replicas": _number(row.get("rep")),
    }
    return {k: v for k, v in shown.items() if v is not None}


def field_rows(fields: Mapping[str, Any]) -> tuple[list[Row], list[Row]]:
    """``_field_caps``'s fields as rows (metadata fields and objects left out) and the fields whose type
    differs between indices, with the indices of each type."""
    rows: list[Row] = []
    conflicts: list[Row] = []
    for name, types in sorted(fields.items()):
        if not isinstance(types, Mapping):
            continue
        caps = [c for c in types.values() if isinstance(c, Mapping)]
        if not caps or any(c.get("metadata_field") for c in caps):
            continue
        kinds = [str(c.get("type")) for c in caps if c.get("type") != "object"]
        if not kinds:
            continue
        row: Row = {"field": name, "type": " | ".join(kinds)}
        if all(c.get("aggregatable") for c in caps):
            row["aggregatable"] = True
        rows.append(row)
        if len(caps) > 1:
            conflicts.append({"field": name, "types": {str(c.get("type")): c.get("indices") for c in caps}})
    return rows, conflicts
