"""Pure functions for the datadog toolset: Datadog's answers (the JSON it sent, as ``data_to_dict`` gives
it) as the compact rows the tools return, and links into the Datadog web app.

A metric series is shown as ``metric{scope}`` (``trace.http.request.errors{service:checkout}``), so a
model can quote it and paste the scope back into a query. Times are RFC3339 in UTC.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from incidentfox.agents.toolsets.loki_views import clipped
from incidentfox.agents.toolsets.prometheus_views import (
    Row,
    Value,
    brief,
    capped,
    every_nth,
    format_duration,
    iso,
    number,
    short,
    summarize_values,
)

MESSAGE_MAX = 1000
MAX_ATTRIBUTES = 12
STATE_ORDER = {"Alert": 0, "Warn": 1, "No Data": 2}


def span_text(start: datetime, end: datetime) -> str:
    return f"from {iso(start)} to {iso(end)}"


def has_more(answer: Mapping[str, Any]) -> bool:
    """Whether a search answer has a next page (``meta.page.after``)."""
    return bool(((answer.get("meta") or {}).get("page") or {}).get("after"))


def link(app_url: str | None, path: str, **params: Any) -> str | None:
    """A page of the Datadog web app; ``None`` when where the app lives is unknown."""
    if not app_url:
        return None
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{app_url}{path}{'?' + query if query else ''}"


def moment(raw: Any) -> str | None:
    """A Datadog time (RFC3339 text, or unix seconds) as RFC3339 UTC with milliseconds."""
    if raw is None or raw == "":
        return None
    try:
        at = (
            datetime.fromtimestamp(float(raw), UTC)
            if isinstance(raw, int | float)
            else datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        )
    except (ValueError, OverflowError, OSError):
        return str(raw)
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def flat_attributes(attributes: Mapping[str, Any], *, max_keys: int = MAX_ATTRIBUTES) -> Row:
    """Nested log attributes as ``{"http.status_code": 502, …}``, values shortened, at most
    ``max_keys`` of them (the rest counted under ``…omitted``)."""
    flat: Row = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        elif isinstance(node, int | float | bool) or node is None:
            flat[prefix] = node
        else:
            flat[prefix] = short(node, 200)

    walk("", attributes)
    kept = dict(list(flat.items())[:max_keys])
    if len(flat) > max_keys:
        kept["…omitted"] = len(flat) - max_keys
    return kept


def _series_row(series: Mapping[str, Any], max_points: int) -> tuple[Row, float]:
    points = [p for p in series.get("pointlist") or [] if isinstance(p, list) and len(p) == 2]
    values: list[Value] = [number(v) if v is not None else None for _, v in points]
    every = max(1, math.ceil(len(values) / max_points))
    picked = every_nth(len(values), every)
    interval = float(series.get("interval") or 0)
    scope = str(series.get("scope") or "*")
    row: Row = {
        "series": f"{series.get('metric')}{{{scope}}}",
        "interval": format_duration(interval) if interval else None,
        **summarize_values(values),
    }
    if picked:
        row["values_from"] = iso(float(points[picked[0]][0]) / 1000)
        row["values_every"] = format_duration(interval * every) if interval else None
        row["values"] = [brief(values[i]) for i in picked]
    peak = max((v for v in values if isinstance(v, float)), default=-math.inf)
    return row, peak


def metric_data(answer: Mapping[str, Any], *, max_series: int, max_points: int) -> Row:
    """``/api/v1/query``: per series its scope, summary and at most ``max_points`` values (every n-th,
    the last always kept); over ``max_series``, the series that peak highest."""
    rows = [_series_row(s, max_points) for s in answer.get("series") or [] if isinstance(s, Mapping)]
    if len(rows) > max_series:
        rows.sort(key=lambda r: r[1], reverse=True)
    data: Row = {
        "start": iso(float(answer.get("from_date") or 0) / 1000),
        "end": iso(float(answer.get("to_date") or 0) / 1000),
        "series_count": len(rows),
    }
    hint = "these peak highest; narrow the scope or group by fewer tags"
    return capped(data, "series", [r for r, _ in rows], max_series, hint)


def log_row(log: Mapping[str, Any]) -> Row:
    attributes = log.get("attributes") or {}
    return {
        "time": moment(attributes.get("timestamp")),
        "service": attributes.get("service"),
        "status": attributes.get("status"),
        "host": attributes.get("host"),
        "message": clipped(str(attributes.get("message") or ""), MESSAGE_MAX),
        "attributes": flat_attributes(attributes.get("attributes") or {}),
    }


def log_data(found: list[Any], *, newest_first: bool, limit: int, more: bool, start: str, end: str) -> Row:
    rows = [log_row(log) for log in found if isinstance(log, Mapping)]
    data: Row = {
        "start": start,
        "end": end,
        "logs": len(rows),
        "order": "newest first" if newest_first else "oldest first",
        "by_service_status": dict(Counter(f"{r['service']}:{r['status']}" for r in rows).most_common(10)),
        "entries": rows,
    }
    if more or len(rows) >= limit:
        edge = "older" if newest_first else "newer"
        data["note"] = (
            f"Stopped at {limit} logs; {edge} matching logs are not shown. Narrow the query, or count with "
            "dd_logs_aggregate."
        )
    return data


def _count(value: Any) -> int:
    try:
        return round(float(value or 0))
    except (TypeError, ValueError):
        return 0


def aggregate_data(buckets: list[Any], facet: str, *, timeseries: bool) -> Row:
    """Log counts per value of ``facet``, largest first; with ``timeseries`` each value's counts per
    interval with its peak."""
    rows: list[Row] = []
    for bucket in buckets:
        if not isinstance(bucket, Mapping):
            continue
        value = (bucket.get("by") or {}).get(facet)
        computed = (bucket.get("computes") or {}).get("c0")
        if timeseries and isinstance(computed, list):
            counts = [(p.get("time"), float(p.get("value") or 0)) for p in computed if isinstance(p, Mapping)]
            peak_at, peak = max(counts, key=lambda c: c[1], default=(None, 0.0))
            rows.append(
                {
                    facet: value,
                    "count": round(sum(c for _, c in counts)),
                    "peak": round(peak),
                    "peak_at": moment(peak_at),
                    "counts": [round(c) for _, c in counts],
                    "first_interval": moment(counts[0][0]) if counts else None,
                }
            )
        else:
            rows.append({facet: value, "count": _count(computed)})
    rows.sort(key=lambda r: int(r["count"]), reverse=True)
    total = sum(int(r["count"]) for r in rows)
    return {"group_by": facet, "total": total, "groups": rows}


def _since(monitor: Mapping[str, Any], state: str) -> str | None:
    """When the monitor's groups in ``state`` last entered it (``last_triggered_ts``, or
    ``last_nodata_ts`` for No Data): the latest of them."""
    key = "last_nodata_ts" if state == "No Data" else "last_triggered_ts"
    groups = ((monitor.get("state") or {}).get("groups") or {}).values()
    stamps = [int(g.get(key) or 0) for g in groups if isinstance(g, Mapping) and g.get("status") == state]
    latest = max((s for s in stamps if s > 0), default=None)
    return iso(latest) if latest else None


def monitor_row(monitor: Mapping[str, Any], app_url: str | None) -> Row:
    state = str(monitor.get("overall_state") or "")
    groups = ((monitor.get("state") or {}).get("groups") or {}).values()
    in_state = sorted(
        str(g.get("name")) for g in groups if isinstance(g, Mapping) and g.get("status") == state
    )
    row: Row = {
        "id": monitor.get("id"),
        "name": monitor.get("name"),
        "state": state,
        "since": _since(monitor, state),
        "type": monitor.get("type"),
        "query": short(monitor.get("query")),
        "tags": list(monitor.get("tags") or []),
        "priority": monitor.get("priority"),
        "message": short(monitor.get("message"), 400),
        "url": link(app_url, f"/monitors/{monitor.get('id')}"),
    }
    if in_state and in_state != ["*"]:
        row["groups"] = in_state[:10]
        if len(in_state) > 10:
            row["groups_omitted"] = len(in_state) - 10
    return row


def monitors_data(monitors: list[Any], states: list[str], app_url: str | None, *, max_monitors: int) -> Row:
    """Monitors in one of ``states``: Alert first, then Warn and No Data, the most recent first."""
    listed = [m for m in monitors if isinstance(m, Mapping)]
    rows = [monitor_row(m, app_url) for m in listed if m.get("overall_state") in states]
    rows.sort(key=lambda r: str(r["since"] or ""), reverse=True)
    rows.sort(key=lambda r: STATE_ORDER.get(str(r["state"]), 9))
    data: Row = {
        "monitors_checked": len(listed),
        "by_state": dict(Counter(str(r["state"]) for r in rows)),
    }
    return capped(data, "monitors", rows, max_monitors, "Alert comes first; filter by tags or name")


def _computed(bucket: Mapping[str, Any], key: str) -> float:
    attributes = bucket.get("attributes") or {}
    value = (attributes.get("computes") or attributes.get("compute") or {}).get(key)
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _resource(bucket: Mapping[str, Any]) -> str:
    return str(((bucket.get("attributes") or {}).get("by") or {}).get("resource_name"))


def service_summary(all_spans: list[Any], errors: list[Any]) -> Row:
    """Per resource: requests (spans), errors, error rate and p95 duration, the most errors first;
    ``all_spans`` computed ``c0`` count and ``c1`` pc95(@duration) in ns, ``errors`` a count."""
    error_counts = {_resource(b): _computed(b, "c0") for b in errors if isinstance(b, Mapping)}
    rows: list[Row] = []
    for bucket in all_spans:
        if not isinstance(bucket, Mapping):
            continue
        resource = _resource(bucket)
        requests = round(_computed(bucket, "c0"))
        failed = round(error_counts.get(resource, 0.0))
        rows.append(
            {
                "resource": resource,
                "requests": requests,
                "errors": failed,
                "error_rate_pct": round(100 * failed / requests, 2) if requests else None,
                "p95_ms": number(_computed(bucket, "c1") / 1e6, 4),
            }
        )
    rows.sort(key=lambda r: (r["errors"], r["requests"]), reverse=True)
    requests = sum(r["requests"] for r in rows)
    failed = sum(r["errors"] for r in rows)
    return {
        "requests": requests,
        "errors": failed,
        "error_rate_pct": round(100 * failed / requests, 2) if requests else None,
        "resources": rows,
    }


def span_row(span: Mapping[str, Any]) -> Row:
    attributes = span.get("attributes") or {}
    custom = attributes.get("custom") or {}
    error: Mapping[str, Any] = custom["error"] if isinstance(custom.get("error"), Mapping) else {}
    duration = custom.get("duration")
    return {
        "time": moment(attributes.get("start_timestamp")),
        "trace_id": attributes.get("trace_id"),
        "span_id": attributes.get("span_id"),
        "service": attributes.get("service"),
        "resource": attributes.get("resource_name"),
        "error_type": error.get("type"),
        "error_message": short(error.get("message"), 300) if error.get("message") else None,
        "duration_ms": number(float(duration) / 1e6, 4) if isinstance(duration, int | float) else None,
        "http_status": (custom.get("http") or {}).get("status_code"),
        "host": attributes.get("host"),
    }


def traces_data(found: list[Any], *, limit: int, more: bool) -> Row:
    rows = [span_row(s) for s in found if isinstance(s, Mapping)]
    data: Row = {
        "spans": len(rows),
        "by_error_type": dict(Counter(str(r["error_type"]) for r in rows).most_common(10)),
        "by_resource": dict(Counter(str(r["resource"]) for r in rows).most_common(10)),
        "entries": rows,
    }
    if more or len(rows) >= limit:
        data["note"] = (
            f"Showing the newest {limit}; more errored spans match. Narrow with query or a shorter window."
        )
    return data


def event_row(event: Mapping[str, Any], app_url: str | None) -> Row:
    url = event.get("url")
    return {
        "time": moment(event.get("date_happened")),
        "title": short(event.get("title"), 200),
        "source": event.get("source_type_name"),
        "tags": list(event.get("tags") or [])[:15],
        "text": short(event.get("text"), 300),
        "alert_type": event.get("alert_type"),
        "host": event.get("host"),
        "url": f"{app_url}{url}" if app_url and isinstance(url, str) and url.startswith("/") else None,
    }


def host_row(host: Mapping[str, Any]) -> Row:
    tags = [t for source in (host.get("tags_by_source") or {}).values() for t in source or []]
    metrics = host.get("metrics") or {}
    return {
        "name": host.get("name"),
        "up": host.get("up"),
        "last_reported": moment(host.get("last_reported_time")),
        "muted": host.get("is_muted"),
        "cpu_pct": metrics.get("cpu"),
        "iowait_pct": metrics.get("iowait"),
        "load": metrics.get("load"),
        "apps": list(host.get("apps") or [])[:10],
        "tags": sorted(set(tags))[:15],
    }


def hosts_data(answer: Mapping[str, Any], *, limit: int) -> Row:
    """Hosts not reporting (``up`` false) first, the longest silent first; then the rest by name."""
    rows = [host_row(h) for h in answer.get("host_list") or [] if isinstance(h, Mapping)]
    rows.sort(key=lambda r: (r["up"] is not False, str(r["last_reported"] or "") if r["up"] is False else ""))
    data: Row = {
        "total_matching": answer.get("total_matching", len(rows)),
        "not_reporting": sum(1 for r in rows if r["up"] is False),
        "hosts": rows,
    }
    if int(answer.get("total_matching") or 0) > len(rows) or len(rows) >= limit:
        data["note"] = (
            f"Showing {len(rows)} hosts; narrow with filter (a name or tag such as service:checkout)."
        )
    return data
