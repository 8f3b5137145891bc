"""What the Datadog emulator holds (metric series, logs, spans, monitors, events) and how it answers
questions about them in Datadog's JSON shapes: metric queries, searches with cursors, and aggregations
into buckets (counts, percentiles, timeseries) grouped by facets."""

from __future__ import annotations

import base64
import fnmatch
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from incidentfox.emulators.datadog_search import (
    SearchError,
    aggregate,
    compile_search,
    facet_value,
    parse_metric_query,
)

_RELATIVE = re.compile(r"^now(?:-(\d+)([smhdw]))?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INTERVAL = re.compile(r"^(\d+)([smhd])$")
Record = dict[str, Any]


def parse_dd_time(raw: Any, *, default: str) -> float:
    """A time as Datadog's search APIs read it: ``now``, ``now-15m``, RFC3339 or unix milliseconds."""
    text = str(default if raw is None or raw == "" else raw).strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = relative.groups()
        return time.time() - (int(amount) * _UNIT_S[unit] if amount else 0)
    if text.isdigit():
        return int(text) / 1000
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SearchError(f"Invalid time {text!r}: use now-15m, RFC3339 or unix milliseconds") from exc
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def iso_ms(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(at * 1000) % 1000:03d}Z"


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(str(cursor)).decode().removeprefix("offset:"))
    except ValueError as exc:
        raise SearchError("Invalid page cursor") from exc


def _percentile(values: list[float], pc: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pc / 100 * len(ordered)) - 1)]


def _compute(values: list[float], how: str) -> float:
    if how == "count":
        return float(len(values))
    if not values:
        return 0.0
    if how.startswith("pc"):
        return _percentile(values, float(how[2:]))
    if how == "median":
        return _percentile(values, 50)
    if how == "cardinality":
        return float(len(set(values)))
    return aggregate(values, how)


@dataclass(slots=True)
class MetricSeries:
    name: str
    tags: list[str]
    points: list[tuple[float, float]]


@dataclass(slots=True)
class DatadogStore:
    """Everything the emulator answers from; the ``add_*`` methods take what an agent would have sent."""

    metrics: list[MetricSeries] = field(default_factory=list)
    logs: list[Record] = field(default_factory=list)
    spans: list[Record] = field(default_factory=list)
    monitors: list[Record] = field(default_factory=list)
    events: list[Record] = field(default_factory=list)
    hosts: list[Record] = field(default_factory=list)

    def add_metric(self, name: str, tags: Iterable[str], points: Iterable[tuple[datetime, float]]) -> None:
        self.metrics.append(MetricSeries(name, sorted(tags), sorted((p.timestamp(), v) for p, v in points)))

    def add_log(
        self,
        at: datetime,
        message: str,
        *,
        service: str,
        status: str = "info",
        host: str = "",
        tags: Iterable[str] = (),
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        record = {
            "id": f"AQAAAY{len(self.logs):012d}",
            "time": at.timestamp(),
            "message": message,
            "service": service,
            "status": status,
            "host": host,
            "tags": [f"service:{service}", *tags],
            "attributes": dict(attributes or {}),
        }
        self.logs.append(record)

    def add_span(
        self,
        at: datetime,
        *,
        service: str,
        resource_name: str,
        duration_ms: float,
        trace_id: str,
        env: str = "prod",
        host: str = "",
        error: Mapping[str, str] | None = None,
        http_status: int | None = None,
    ) -> None:
        custom: Record = {"duration": int(duration_ms * 1e6)}
        if error:
            custom["error"] = dict(error)
        if http_status is not None:
            custom["http"] = {"status_code": str(http_status)}
        span_id = f"{len(self.spans) + 1:019d}"
        self.spans.append(
            {
                "id": f"AAAAAZ{span_id}",
                "time": at.timestamp(),
                "service": service,
                "resource_name": resource_name,
                "env": env,
                "host": host,
                "trace_id": trace_id,
                "span_id": span_id,
                "status": "error" if error else "ok",
                "tags": [f"env:{env}", f"service:{service}"],
                "attributes": custom,
            }
        )

    def add_monitor(self, monitor: Mapping[str, Any], groups: Iterable[Mapping[str, Any]] = ()) -> None:
        """A monitor as ``GET /api/v1/monitor`` shows it, and its groups (``name``, ``status``,
        ``last_triggered_ts``, …) that ``group_states`` reveals."""
        self.monitors.append({**monitor, "_groups": [dict(g) for g in groups]})

    def add_event(self, event: Mapping[str, Any]) -> None:
        event_id = int(event.get("id") or 5_000_000_000 + len(self.events))
        self.events.append(
            {"id": event_id, "id_str": str(event_id), "url": f"/event/event?id={event_id}", **event}
        )

    def add_host(self, host: Mapping[str, Any]) -> None:
        """A host as ``GET /api/v1/hosts`` lists it (``name``, ``up``, ``last_reported_time``, …)."""
        self.hosts.append({"id": 1000 + len(self.hosts), "host_name": host["name"], **host})

    def list_hosts(self, text: str | None, since: int | None) -> list[Record]:
        """Hosts whose name, an alias or a tag contains ``text`` and that reported since ``since``."""
        wanted = (text or "").lower()

        def words(host: Record) -> list[str]:
            tags = [t for tags in (host.get("tags_by_source") or {}).values() for t in tags]
            return [str(host["name"]), *(host.get("aliases") or []), *tags]

        return [
            h
            for h in sorted(self.hosts, key=lambda h: str(h["name"]))
            if any(wanted in w.lower() for w in words(h))
            and int(h.get("last_reported_time") or 0) >= (since or 0)
        ]

    def query_metrics(self, query: str, start: int, end: int) -> Record:
        parsed = parse_metric_query(query)
        interval = max(parsed.rollup_s or 0, 60, math.ceil((end - start) / 300 / 60) * 60)
        groups: dict[tuple[str, ...], list[MetricSeries]] = {}
        for series in self.metrics:
            if series.name != parsed.metric or not parsed.scope_matches(series.tags):
                continue
            group = parsed.group(series.tags)
            if group is not None:
                groups.setdefault(group, []).append(series)
        answer: list[Record] = []
        for group, members in sorted(groups.items()):
            buckets: dict[int, list[float]] = {}
            for series in members:
                rolled: dict[int, list[float]] = {}
                for at, value in series.points:
                    if start <= at <= end:
                        rolled.setdefault(int(at // interval * interval), []).append(value)
                for bucket, values in rolled.items():
                    buckets.setdefault(bucket, []).append(aggregate(values, parsed.rollup))
            if not buckets:
                continue
            points = [[b * 1000.0, aggregate(v, parsed.aggregation)] for b, v in sorted(buckets.items())]
            scope = ",".join(group) if parsed.by else (",".join(parsed.scope) or "*")
            answer.append(
                {
                    "metric": parsed.metric,
                    "display_name": parsed.metric,
                    "aggr": parsed.aggregation,
                    "scope": scope,
                    "tag_set": list(group),
                    "expression": f"{parsed.aggregation}:{parsed.metric}{{{scope}}}",
                    "query_index": 0,
                    "interval": interval,
                    "length": len(points),
                    "start": int(points[0][0]),
                    "end": int(points[-1][0]) + interval * 1000 - 1,
                    "pointlist": points,
                }
            )
        return {
            "status": "ok",
            "res_type": "time_series",
            "query": query,
            "from_date": start * 1000,
            "to_date": end * 1000,
            "group_by": list(parsed.by),
            "message": "",
            "series": answer,
        }

    def active_metrics(self, since: int, *, host: str | None, tag_filter: str | None) -> list[str]:
        """Names of the metrics with a point since ``since`` on ``host`` and with every tag of
        ``tag_filter`` (``env:prod AND service:check*``)."""
        wanted = [t for t in re.split(r"\s+AND\s+|,", tag_filter or "") if t.strip()]
        if host:
            wanted.append(f"host:{host}")
        return sorted(
            {
                s.name
                for s in self.metrics
                if any(at >= since for at, _ in s.points)
                and all(any(fnmatch.fnmatchcase(t, w.strip()) for t in s.tags) for w in wanted)
            }
        )

    def list_monitors(
        self,
        *,
        group_states: str | None,
        name: str | None,
        scope_tags: str | None,
        monitor_tags: str | None,
    ) -> list[Record]:
        wanted_states = {s.strip().lower() for s in (group_states or "").split(",") if s.strip()}
        found = []
        for stored in sorted(self.monitors, key=lambda m: int(m["id"])):
            monitor = {k: v for k, v in stored.items() if k != "_groups"}
            if name and name.lower() not in str(monitor.get("name", "")).lower():
                continue
            tags = set(monitor.get("tags") or [])
            if monitor_tags and not {t.strip() for t in monitor_tags.split(",")} <= tags:
                continue
            if scope_tags and not all(t.strip() in str(monitor.get("query")) for t in scope_tags.split(",")):
                continue
            groups = {
                g["name"]: g
                for g in stored["_groups"]
                if "all" in wanted_states or str(g.get("status", "")).lower() in wanted_states
            }
            monitor["state"] = {"groups": groups} if wanted_states else {}
            found.append(monitor)
        return found

    def list_events(self, start: int, end: int, *, sources: str | None, tags: str | None) -> list[Record]:
        wanted_sources = {s.strip().lower() for s in (sources or "").split(",") if s.strip()}
        wanted_tags = {t.strip() for t in (tags or "").split(",") if t.strip()}
        found = [
            e
            for e in self.events
            if start <= int(e["date_happened"]) <= end
            and (not wanted_sources or str(e.get("source_type_name", "")).lower() in wanted_sources)
            and wanted_tags <= set(e.get("tags") or [])
        ]
        return sorted(found, key=lambda e: int(e["date_happened"]), reverse=True)

    def search_logs(
        self, query: str | None, start: float, end: float, *, sort: str, limit: int, cursor: Any
    ) -> tuple[list[Record], str | None]:
        page, after = self._page(self.logs, query, start, end, sort, limit, cursor)
        return [_log(r) for r in page], after

    def search_spans(
        self, query: str | None, start: float, end: float, *, sort: str, limit: int, cursor: Any
    ) -> tuple[list[Record], str | None]:
        page, after = self._page(self.spans, query, start, end, sort, limit, cursor)
        return [_span(r) for r in page], after

    def _page(
        self,
        records: list[Record],
        query: str | None,
        start: float,
        end: float,
        sort: str,
        limit: int,
        cursor: Any,
    ) -> tuple[list[Record], str | None]:
        if sort not in ("timestamp", "-timestamp"):
            raise SearchError(f"Invalid sort {sort!r}: use timestamp or -timestamp")
        matches = compile_search(query)
        found = sorted(
            (r for r in records if start <= r["time"] <= end and matches(r)),
            key=lambda r: r["time"],
            reverse=sort == "-timestamp",
        )
        offset = _offset(cursor)
        page = found[offset : offset + limit]
        return page, _cursor(offset + limit) if offset + limit < len(found) else None

    def aggregate(
        self,
        kind: str,
        query: str | None,
        start: float,
        end: float,
        *,
        compute: list[Record],
        group_by: list[Record],
    ) -> list[tuple[Record, Record]]:
        """Buckets ``(by, computes)``: records of ``kind`` matching ``query`` grouped by each
        ``group_by`` facet, with ``c0``, ``c1``… for each ``compute`` (a number or a timeseries), in the
        first group's ``sort`` order (alphabetical unless it names an aggregation or ``measure``)."""
        matches = compile_search(query)
        records = [r for r in (self.logs if kind == "logs" else self.spans) if start <= r["time"] <= end]
        records = [r for r in records if matches(r)]
        facets = [str(g.get("facet") or "") for g in group_by]
        if any(not f for f in facets):
            raise SearchError("Each group_by needs a facet")
        groups: dict[tuple[Any, ...], list[Record]] = {}
        for record in records:
            key = tuple(facet_value(record, f) for f in facets)
            if all(v is not None for v in key):
                groups.setdefault(key, []).append(record)
        buckets = [
            ({f: v for f, v in zip(facets, key, strict=True)}, self._computes(members, compute, start, end))
            for key, members in groups.items()
        ]
        first = group_by[0] if group_by else {}
        order = first.get("sort") or {}
        descending = order.get("order") == "desc"
        if order.get("type") == "measure" or (order.get("aggregation") and order.get("type") is None):
            buckets.sort(key=lambda b: _first_number(b[1]), reverse=descending)
        else:
            buckets.sort(key=lambda b: str(b[0].get(facets[0])), reverse=descending)
        limit = int(first.get("limit") or 10) if group_by else 1
        return buckets[:limit]

    def _computes(self, records: list[Record], compute: list[Record], start: float, end: float) -> Record:
        results: Record = {}
        for index, spec in enumerate(compute):
            how = str(spec.get("aggregation") or "count")
            metric = str(spec.get("metric") or "")
            if spec.get("type") == "timeseries":
                step = _interval_s(str(spec.get("interval") or "5m"))
                first = int(start // step * step)
                points = []
                for bucket in range(first, int(end) + 1, step):
                    inside = [r for r in records if bucket <= r["time"] < bucket + step]
                    points.append({"time": iso_ms(bucket), "value": _compute(_measures(inside, metric), how)})
                results[f"c{index}"] = points
            else:
                results[f"c{index}"] = _compute(_measures(records, metric), how)
        return results


def _measures(records: list[Record], metric: str) -> list[float]:
    if not metric:
        return [1.0] * len(records)
    found = []
    for record in records:
        value = facet_value(record, metric)
        try:
            found.append(float(value))
        except (TypeError, ValueError):
            continue
    return found


def _first_number(computes: Record) -> float:
    first = computes.get("c0")
    if isinstance(first, list):
        return sum(float(p["value"]) for p in first)
    return float(first or 0)


def _interval_s(text: str) -> int:
    match = _INTERVAL.match(text)
    if not match or int(match.group(1)) <= 0:
        raise SearchError(f"Invalid interval {text!r}: use a duration such as 1m or 5m")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def _log(record: Record) -> Record:
    return {
        "id": record["id"],
        "type": "log",
        "attributes": {
            "timestamp": iso_ms(record["time"]),
            "status": record["status"],
            "service": record["service"],
            "host": record["host"],
            "message": record["message"],
            "tags": record["tags"],
            "attributes": record["attributes"],
        },
    }


def _span(record: Record) -> Record:
    duration_s = record["attributes"]["duration"] / 1e9
    return {
        "id": record["id"],
        "type": "spans",
        "attributes": {
            "service": record["service"],
            "resource_name": record["resource_name"],
            "env": record["env"],
            "host": record["host"],
            "trace_id": record["trace_id"],
            "span_id": record["span_id"],
            "start_timestamp": iso_ms(record["time"]),
            "end_timestamp": iso_ms(record["time"] + duration_s),
            "type": "web",
            "tags": record["tags"],
            "custom": record["attributes"],
            "attributes": {"status": record["status"]},
        },
    }
