"""Pure functions for the prometheus toolset: the times, steps and links a question is asked with, and
Prometheus' answers as the compact rows the tools return.

A series is shown as the PromQL selector that names it (``http_requests_total{code="500",service="x"}``),
so a model can quote it as evidence and paste it back into a query.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

Row = dict[str, Any]
Value = float | str | None
"""A sample value: a rounded float, ``NaN``/``+Inf`` as text, ``None`` for a step without a sample."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
NICE_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
TIME_HELP = "use RFC3339 (2026-01-31T14:05:00Z), unix seconds, `now`, or a relative time like -1h"
TEXT_MAX = 300
NARROW = "aggregate (sum by, topk) or add label matchers"


def parse_duration(text: str) -> float | None:
    """Seconds in ``90s``, ``5m``, ``1h30m`` or a bare number of seconds; ``None`` if unreadable."""
    text = text.strip().replace(" ", "")
    try:
        seconds = float(text)
    except ValueError:
        if not text or _DURATION_PART.sub("", text):
            return None
        return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(text))
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_time(text: str | None, *, now: datetime, default: datetime) -> datetime:
    """``now``, ``now-1h``, ``-1h``, ``1h ago``, RFC3339 or unix seconds; ``default`` when empty.

    Raises ``ValueError`` with a message that says which forms work.
    """
    if text is None or not text.strip():
        return default
    value = text.strip().lower()
    if value == "now":
        return now
    relative = value.removeprefix("now").strip()
    if relative.startswith("-") or relative.endswith("ago"):
        seconds = parse_duration(relative.removeprefix("-").removesuffix("ago"))
        if seconds is not None:
            return now - timedelta(seconds=seconds)
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"cannot read the time {text!r}: {TIME_HELP}") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def choose_step(span_s: float, requested_s: float | None, *, max_points: int = 100) -> float:
    """A step that gives each series at most ``max_points`` points over ``span_s``: the requested step
    when it is coarse enough, else the smallest nice step (15s, 1m, 5m, …) that is."""
    needed = max(span_s / (max_points - 1), 1.0)
    if requested_s is not None and requested_s >= needed:
        return requested_s
    for nice in NICE_STEPS_S:
        if nice >= needed:
            return float(nice)
    return float(math.ceil(needed / 86400) * 86400)


def format_duration(seconds: float) -> str:
    """``90`` → ``1m30s``; ``7200`` → ``2h``: the form PromQL and the Prometheus UI read."""
    remaining = round(seconds)
    if remaining <= 0:
        return f"{seconds:g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def iso(at: datetime | float) -> str:
    moment = datetime.fromtimestamp(at, UTC) if isinstance(at, int | float) else at.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_url(
    base: str, expr: str, *, at: datetime | None = None, end: datetime | None = None, span_s: float = 0
) -> str:
    """The Prometheus UI's page for ``expr``: a graph over ``span_s`` up to ``end``, else a table at
    ``at`` (or now)."""
    params = {"g0.expr": expr}
    if end is not None:
        params["g0.tab"] = "0"
        params["g0.range_input"] = format_duration(span_s)
        params["g0.end_input"] = end.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    else:
        params["g0.tab"] = "1"
        if at is not None:
            params["g0.moment_input"] = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{base}/graph?{urlencode(params, quote_via=quote)}"


def short(text: Any, limit: int = TEXT_MAX) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _escaped(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def selector(labels: Mapping[str, Any]) -> str:
    """``{"__name__": "up", "job": "api"}`` → ``up{job="api"}``, labels sorted, values escaped."""
    name = str(labels.get("__name__", ""))
    pairs = ",".join(f'{k}="{_escaped(v)}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{pairs}}}" if pairs or not name else name


def number(raw: Any, digits: int = 6) -> float | str:
    """A sample value as a float rounded to ``digits`` significant digits; NaN and ±Inf stay text (JSON
    has no such numbers)."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return str(raw)
    return float(f"{value:.{digits}g}") if math.isfinite(value) else str(raw)


def brief(value: Value) -> Value:
    """A value as shown in a range series' ``values``: 4 significant digits are enough to see shape."""
    return number(value, 4) if isinstance(value, float) else value


def summarize_values(values: list[Value]) -> Row:
    """min/max/avg/first/last of a series' finite values and how many there were."""
    finite = [v for v in values if isinstance(v, float)]
    if not finite:
        return {"samples": 0}
    return {
        "min": number(min(finite)),
        "max": number(max(finite)),
        "avg": number(sum(finite) / len(finite)),
        "first": finite[0],
        "last": finite[-1],
        "samples": len(finite),
    }


def peak(values: list[Value]) -> float:
    return max((v for v in values if isinstance(v, float)), default=-math.inf)


def grid_values(points: list[Any], start_s: float, step_s: float, count: int) -> list[Value]:
    """A range series' ``[timestamp, "value"]`` points placed on the query's grid of ``count`` steps
    from ``start_s``."""
    slots: list[Value] = [None] * count
    for point in points:
        index = round((float(point[0]) - start_s) / step_s)
        if 0 <= index < count:
            slots[index] = number(point[1])
    return slots


def every_nth(count: int, n: int) -> list[int]:
    """Indices of every ``n``-th of ``count`` values, counted back from the last (always kept)."""
    return list(range(count - 1, -1, -n))[::-1]


def capped(data: Row, key: str, rows: list[Any], cap: int, hint: str) -> Row:
    """``data`` with ``rows[:cap]`` under ``key`` and, when some were left out, how many and what to do."""
    data[key] = rows[:cap]
    if len(rows) > cap:
        data[f"{key}_omitted"] = len(rows) - cap
        data["note"] = f"Showing {cap} of {len(rows)}; {hint}."
    return data


def with_warnings(data: Row, warnings: list[str]) -> Row:
    if warnings:
        data["warnings"] = [short(w) for w in warnings[:5]]
    return data


def instant_data(found: list[Any], kind: str, at: datetime, *, max_series: int) -> Row:
    """An instant query's vector (or matrix, for a range selector such as ``up[5m]``) result: each series
    with its value (or a summary of its samples); over ``max_series``, the highest values."""
    if kind == "matrix":
        rows = [
            {
                "series": selector(r.get("metric") or {}),
                **summarize_values([number(v) for _, v in r["values"]]),
            }
            for r in found
        ]
    else:
        rows = [{"series": selector(r.get("metric") or {}), "value": number(r["value"][1])} for r in found]
        if len(rows) > max_series:
            rows.sort(key=lambda r: r["value"] if isinstance(r["value"], float) else -math.inf, reverse=True)
    data: Row = {"at": iso(at), "result_type": kind, "series_count": len(rows)}
    return capped(data, "series", rows, max_series, f"these have the highest values; {NARROW}")


def range_data(
    found: list[Any], start: datetime, step: float, count: int, *, max_series: int, max_values: int
) -> Row:
    """A range query's matrix on its grid of ``count`` steps from ``start``: per series a summary and its
    values, every n-th step when the series are many (``max_values`` across all of them); over
    ``max_series``, the series that peak highest."""
    series = [
        (selector(r.get("metric") or {}), grid_values(r.get("values") or [], start.timestamp(), step, count))
        for r in found
    ]
    if len(series) > max_series:
        series.sort(key=lambda s: peak(s[1]), reverse=True)
    shown = series[:max_series]
    every = max(1, math.ceil(count * len(shown) / max_values))
    picked = every_nth(count, every)
    data: Row = {
        "start": iso(start),
        "end": iso(start + timedelta(seconds=(count - 1) * step)),
        "step": format_duration(step),
        "series_count": len(series),
        "values_from": iso(start + timedelta(seconds=picked[0] * step)),
        "values_every": format_duration(step * every),
        "series": [
            {"series": name, **summarize_values(values), "values": [brief(values[i]) for i in picked]}
            for name, values in shown
        ],
    }
    if len(series) > len(shown):
        data["series_omitted"] = len(series) - len(shown)
        data["note"] = f"Showing the {len(shown)} series with the highest max of {len(series)}; {NARROW}."
    return data


def alert_row(alert: Mapping[str, Any]) -> Row:
    labels = dict(alert.get("labels") or {})
    annotations = alert.get("annotations") or {}
    return {
        "alertname": labels.pop("alertname", None),
        "state": alert.get("state"),
        "active_at": alert.get("activeAt"),
        "value": number(alert["value"]) if alert.get("value") is not None else None,
        "labels": labels,
        "annotations": {str(k): short(v) for k, v in annotations.items()},
    }


def alerts_data(found: Any, *, max_alerts: int) -> Row | None:
    """``/api/v1/alerts``: firing alerts first, oldest first; ``None`` when there are none."""
    rows = [alert_row(a) for a in (found or {}).get("alerts") or [] if isinstance(a, Mapping)]
    if not rows:
        return None
    rows.sort(key=lambda r: (r["state"] != "firing", str(r["active_at"] or "")))
    data: Row = {"by_state": dict(Counter(str(r["state"]) for r in rows))}
    return capped(data, "alerts", rows, max_alerts, "firing alerts come first")


def rule_row(group: str, rule: Mapping[str, Any]) -> Row:
    row: Row = {
        "group": group,
        "name": rule.get("name"),
        "type": rule.get("type"),
        "health": rule.get("health"),
        "query": short(rule.get("query")),
    }
    if rule.get("lastError"):
        row["last_error"] = short(rule.get("lastError"))
    if rule.get("type") == "alerting":
        row["state"] = rule.get("state")
        row["for"] = format_duration(float(rule.get("duration") or 0))
        row["active_alerts"] = len(rule.get("alerts") or [])
    row["last_evaluation"] = rule.get("lastEvaluation")
    return row


_RULE_STATE_ORDER = {"firing": 1, "pending": 2}


def rule_order(row: Row) -> tuple[bool, int, str]:
    """Unhealthy rules first, then firing and pending alerting rules, then by name."""
    return row["health"] == "ok", _RULE_STATE_ORDER.get(str(row.get("state")), 3), str(row["name"])


def rules_data(found: Any, *, max_rules: int) -> Row | None:
    """``/api/v1/rules`` flattened across groups, the rules that need attention first; ``None`` if empty."""
    rows = [
        rule_row(str(group.get("name")), rule)
        for group in (found or {}).get("groups") or []
        for rule in group.get("rules") or []
    ]
    if not rows:
        return None
    rows.sort(key=rule_order)
    data: Row = {
        "by_health": dict(Counter(str(r["health"]) for r in rows)),
        "alerting_by_state": dict(Counter(str(r["state"]) for r in rows if "state" in r)),
    }
    return capped(data, "rules", rows, max_rules, "unhealthy and firing rules come first")


def target_row(target: Mapping[str, Any]) -> Row:
    labels = target.get("labels") or {}
    return {
        "job": target.get("scrapePool"),
        "instance": labels.get("instance"),
        "health": target.get("health"),
        "last_error": short(target.get("lastError")),
        "last_scrape": target.get("lastScrape"),
        "scrape_url": target.get("scrapeUrl"),
        "labels": labels,
    }


def targets_down_data(found: Any, *, max_targets: int) -> Row:
    """``/api/v1/targets``: how many targets there are and, when some are not up, which (``targets``)."""
    targets = [t for t in (found or {}).get("activeTargets") or [] if isinstance(t, Mapping)]
    down = [target_row(t) for t in targets if t.get("health") != "up"]
    data: Row = {"targets_total": len(targets)}
    if not down:
        return data
    data["down"] = len(down)
    data["down_by_job"] = dict(Counter(str(t["job"]) for t in down))
    return capped(data, "targets", down, max_targets, "see down_by_job for the rest")


def metadata_rows(found: Mapping[str, Any]) -> list[Row]:
    return [
        {"metric": name, "type": m.get("type"), "help": short(m.get("help")), "unit": m.get("unit") or None}
        for name, entries in sorted(found.items())
        for m in (entries or [])[:1]
        if isinstance(m, Mapping)
    ]
