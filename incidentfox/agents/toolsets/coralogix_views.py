"""Pure functions for the coralogix toolset: the DataPrime it sends, and Coralogix's answers as the compact
rows the tools return.

A log row is ``{"time", "level", "service", "application", "message", "fields"}``: ``service`` is the
subsystem name (Coralogix's per-service label), ``level`` the severity in lower case, ``message`` the
log's message field (or its text, or its JSON when it has neither) and ``fields`` a few other scalar
fields of the log, flattened and trimmed. The error summary's top messages are normalised by
``loki_views`` and counted by ``elasticsearch_views``, as the other log toolsets do.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from incidentfox.agents.toolsets.loki_views import clipped, stamp
from incidentfox.agents.toolsets.prometheus_views import Row, capped, iso

LEVELS = ("debug", "verbose", "info", "warning", "error", "critical")
"""Coralogix severities 1 to 6."""
MESSAGE_KEYS = ("message", "msg", "text", "log", "body", "logRecord.body", "error", "err", "exception")
MAX_FIELDS = 12
FIELD_MAX = 200
ERRORS = "($m.severity == ERROR || $m.severity == CRITICAL)"


def literal(text: str) -> str:
    """``text`` as a single-quoted DataPrime string."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def scope_filter(application: str | None, subsystem: str | None) -> str | None:
    """The DataPrime condition selecting an application and/or subsystem; ``None`` for everything."""
    parts = []
    if application:
        parts.append(f"$l.applicationname == {literal(application)}")
    if subsystem:
        parts.append(f"$l.subsystemname == {literal(subsystem)}")
    return " && ".join(parts) or None


def pairs(items: Any) -> dict[str, Any]:
    """``[{"key": k, "value": v}, …]`` as ``{k: v}``."""
    if not isinstance(items, list):
        return {}
    return {str(i["key"]): i.get("value") for i in items if isinstance(i, Mapping) and "key" in i}


def user_data(result: Mapping[str, Any]) -> Any:
    raw = result.get("userData")
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def is_aggregate(results: list[dict[str, Any]]) -> bool:
    """Rows of ``groupby``/``aggregate``/``choose`` carry only ``userData``."""
    return all(not r.get("metadata") and not r.get("labels") for r in results)


def parse_time(value: Any) -> datetime | None:
    """A Coralogix time: RFC3339 text or unix seconds, milliseconds, microseconds or nanoseconds."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        number = float(value)
        for scale in (1, 1e3, 1e6, 1e9):
            if number / scale < 1e11:
                return datetime.fromtimestamp(number / scale, UTC)
        return None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def rfc3339(at: datetime) -> str:
    """With milliseconds, as log lines are quoted elsewhere: ``2026-01-31T14:05:00.123Z``."""
    return stamp((at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000)


def level(raw: Any) -> str | None:
    text = str(raw).strip().lower() if raw is not None else ""
    if text.isdigit() and 1 <= int(text) <= len(LEVELS):
        return LEVELS[int(text) - 1]
    return {"warn": "warning", "fatal": "critical"}.get(text, text) or None


def _flat(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, Mapping):
        return [item for k, v in node.items() for item in _flat(v, f"{prefix}{k}.")]
    if isinstance(node, list):
        return [(prefix[:-1], json.dumps(node)[:FIELD_MAX])]
    return [(prefix[:-1], node)]


def log_row(result: Mapping[str, Any]) -> Row:
    metadata, labels, data = pairs(result.get("metadata")), pairs(result.get("labels")), user_data(result)
    flat = dict(_flat(data)) if isinstance(data, Mapping) else {}
    message_key = next((k for k in MESSAGE_KEYS if isinstance(flat.get(k), str) and flat[k]), None)
    if message_key:
        message = str(flat.pop(message_key))
    else:
        message = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    at = parse_time(metadata.get("timestamp"))
    row: Row = {
        "time": rfc3339(at) if at else None,
        "level": level(metadata.get("severity")),
        "service": labels.get("subsystemname"),
        "application": labels.get("applicationname"),
        "message": clipped(message),
    }
    fields = {k: clipped(str(v), FIELD_MAX) if isinstance(v, str) else v for k, v in flat.items() if k}
    if fields:
        row["fields"] = dict(list(fields.items())[:MAX_FIELDS])
        if len(fields) > MAX_FIELDS:
            row["fields_omitted"] = len(fields) - MAX_FIELDS
    return row


def query_data(
    results: list[dict[str, Any]], warnings: list[str], *, limit: int, start: datetime, end: datetime
) -> Row:
    """A query's answer: log rows newest first with counts per service, or aggregation rows."""
    data: Row = {"start": iso(start), "end": iso(end)}
    if results and is_aggregate(results):
        rows = [user_data(r) for r in results]
        data["kind"] = "aggregation"
        capped(data, "rows", rows, limit, "add a limit or narrow the groupby")
    else:
        rows = sorted((log_row(r) for r in results), key=lambda r: r["time"] or "", reverse=True)
        per_service = Counter(f"{r['application']}/{r['service']}" for r in rows)
        data.update(
            kind="logs",
            lines=len(rows),
            order="newest first",
            lines_by_application_subsystem=dict(per_service.most_common(20)),
            entries=rows,
        )
        if len(rows) >= limit:
            data["note"] = (
                f"Stopped at the limit of {limit} lines; older lines of the window are not shown. Narrow "
                "with a filter or a shorter window."
            )
    if warnings:
        data["warnings"] = [clipped(w, 300) for w in warnings[:5]]
    return data


def error_counts(rows: list[Any], *, start: datetime, end: datetime, step_s: float) -> Row:
    """``groupby subsystem, severity, bucket aggregate count() as errors`` rows as totals per
    application/subsystem and severity, and a series on the window's grid with its peak."""
    per_service: Counter[str] = Counter()
    per_level: Counter[str] = Counter()
    per_bucket: Counter[int] = Counter()
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        count = int(row.get("errors") or 0)
        per_service[f"{row.get('application')}/{row.get('subsystem')}"] += count
        per_level[level(row.get("severity")) or "unknown"] += count
        at = parse_time(row.get("bucket"))
        if at is not None:
            per_bucket[int(at.timestamp() // step_s * step_s)] += count
    first = int(start.timestamp() // step_s * step_s)
    grid = range(first, int(end.timestamp()) + 1, int(step_s))
    series: list[Row] = [{"time": iso(t), "errors": per_bucket.get(t, 0)} for t in grid]
    data: Row = {"errors": sum(per_service.values()), "by_level": dict(per_level.most_common())}
    services = [{"service": name, "errors": n} for name, n in per_service.most_common()]
    capped(data, "by_application_subsystem", services, 30, "pass an application or subsystem")
    if series:
        peak = max(series, key=lambda r: r["errors"])
        data["peak"] = peak
        data["series"] = series
    return data


def _type_body(properties: Mapping[str, Any]) -> Mapping[str, Any]:
    kind = str(properties.get("type") or "").removeprefix("ALERT_DEF_TYPE_")
    key = "".join(w.capitalize() for w in kind.lower().split("_"))
    body = properties.get(key[:1].lower() + key[1:]) if key else None
    return body if isinstance(body, Mapping) else {}


def alert_row(definition: Mapping[str, Any]) -> Row:
    """An ``AlertDef`` as name, priority, type, query, scope and when it last triggered."""
    properties = definition.get("alertDefProperties") or {}
    simple = ((_type_body(properties).get("logsFilter") or {}).get("simpleFilter")) or {}
    labels = simple.get("labelFilters") or {}
    row: Row = {
        "name": properties.get("name") or definition.get("name"),
        "priority": str(properties.get("priority") or "").removeprefix("ALERT_DEF_PRIORITY_") or None,
        "type": str(properties.get("type") or "").removeprefix("ALERT_DEF_TYPE_").lower() or None,
        "enabled": properties.get("enabled", True),
        "query": simple.get("luceneQuery") or None,
        "id": definition.get("id"),
    }
    for key, name in (("applicationName", "applications"), ("subsystemName", "subsystems")):
        values = [f.get("value") for f in labels.get(key) or [] if isinstance(f, Mapping)]
        if values:
            row[name] = values
    if properties.get("description"):
        row["description"] = clipped(str(properties["description"]), 300)
    at = parse_time(definition.get("lastTriggeredTime"))
    row["last_triggered"] = iso(at) if at else None
    return row


def alerts_data(definitions: list[dict[str, Any]], since: datetime, name: str | None, cap: int) -> Row:
    """The definitions that triggered since ``since`` (newest first), and how many there are in all."""
    rows = [alert_row(d) for d in definitions]
    if name:
        rows = [r for r in rows if name.lower() in str(r["name"] or "").lower()]
    fired = [r for r in rows if r["last_triggered"] and r["last_triggered"] >= iso(since)]
    fired.sort(key=lambda r: (r["last_triggered"], r["priority"] or ""), reverse=True)
    data: Row = {
        "since": iso(since),
        "definitions": len(rows),
        "enabled": sum(1 for r in rows if r["enabled"]),
        "triggered": len(fired),
    }
    return capped(data, "alerts", fired, cap, "pass a name to narrow it")
