"""Pure functions for the loki toolset: Loki's answers as the compact rows the tools return, the
normalized messages of the error summary, and links to Grafana Explore.

A stream is shown as the LogQL selector that names it (``{app="checkout",level="error"}``), so a model
can quote a line with its stream as evidence and paste the selector back into a query.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from incidentfox.agents.toolsets.prometheus_views import Row, capped, iso, selector

LINE_MAX = 1000
MESSAGE_MAX = 200
ERROR_WORDS = ("error", "exception", "fatal", "panic")
ERROR_FILTER = "|~ `(?i)(" + "|".join(ERROR_WORDS) + ")`"
_VOLATILE = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"\b[A-Za-z]+[-_]?\d[\w-]*\b"), "<id>"),
    (re.compile(r"(?<![A-Za-z<])\d+(?:\.\d+)?"), "<n>"),
)
_MESSAGE_KEYS = ("msg", "message", "error", "err", "exception")


def stamp(ns: int) -> str:
    """Unix nanoseconds as RFC3339 with milliseconds: ``2026-01-31T14:05:00.123Z``."""
    seconds, rest = divmod(ns, 10**9)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 10**6:03d}Z"


def stream_name(labels: Mapping[str, Any]) -> str:
    return selector({k: v for k, v in labels.items() if k != "__name__"})


def clipped(line: str, limit: int = LINE_MAX) -> str:
    line = line.rstrip("\n")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def entries(found: list[Any], *, newest_first: bool) -> list[Row]:
    """Every line of a ``streams`` result with its time and stream, in one timeline."""
    rows = [
        (int(ns), stream_name(stream.get("stream") or {}), str(line))
        for stream in found
        if isinstance(stream, Mapping)
        for ns, line, *_ in stream.get("values") or []
    ]
    rows.sort(key=lambda r: r[0], reverse=newest_first)
    return [{"time": stamp(ns), "stream": name, "line": clipped(line)} for ns, name, line in rows]


def log_data(found: list[Any], *, newest_first: bool, limit: int, start: str, end: str) -> Row:
    rows = entries(found, newest_first=newest_first)
    per_stream = Counter(row["stream"] for row in rows)
    data: Row = {
        "start": start,
        "end": end,
        "lines": len(rows),
        "order": "newest first" if newest_first else "oldest first",
        "lines_by_stream": dict(per_stream.most_common(20)),
        "entries": rows,
    }
    if len(rows) >= limit:
        edge = "oldest" if newest_first else "newest"
        data["note"] = (
            f"Stopped at the limit of {limit} lines; the {edge} lines of the window are not shown. "
            'Narrow with a line filter (|= "text") or a shorter window.'
        )
    return data


def normalized(line: str) -> str:
    """A line's message with volatile parts (numbers, ids, times, addresses) replaced, so that lines
    differing only in them count as one message. A JSON line is read for its message field."""
    text = line.strip()
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            text = next((str(body[k]) for k in _MESSAGE_KEYS if body.get(k)), text)
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return clipped(" ".join(text.split()), MESSAGE_MAX)


def top_messages(found: list[Any], count: int) -> list[Row]:
    """The ``count`` most frequent normalized messages of a ``streams`` result (newest first), each with
    its newest example line, the example's stream and time."""
    counts: Counter[str] = Counter()
    examples: dict[str, Row] = {}
    for row in entries(found, newest_first=True):
        message = normalized(row["line"])
        counts[message] += 1
        examples.setdefault(message, row)
    return [
        {
            "message": message,
            "count": n,
            "latest": examples[message]["time"],
            "example": clipped(examples[message]["line"], 500),
            "stream": examples[message]["stream"],
        }
        for message, n in counts.most_common(count)
    ]


def stream_counts(found: list[Any], *, max_streams: int) -> Row:
    """A ``matrix`` of per-step counts as totals per stream, the noisiest first, with the step in which
    each peaked."""
    rows: list[Row] = []
    for series in found:
        values = [(float(t), float(v)) for t, v in series.get("values") or []]
        if not values:
            continue
        peak_at, peak = max(values, key=lambda p: p[1])
        rows.append(
            {
                "stream": stream_name(series.get("metric") or {}),
                "error_lines": round(sum(v for _, v in values)),
                "peak_per_step": round(peak),
                "peak_step_end": iso(peak_at),
                "first_step_end": iso(values[0][0]),
            }
        )
    rows.sort(key=lambda r: r["error_lines"], reverse=True)
    data: Row = {"error_lines": sum(r["error_lines"] for r in rows), "streams_with_errors": len(rows)}
    return capped(data, "by_stream", rows, max_streams, "narrow the selector")


def explore_url(
    grafana_url: str | None, datasource: str, expr: str, start: datetime, end: datetime
) -> str | None:
    """Grafana Explore with ``expr`` on the Loki data source over the window; ``None`` without Grafana."""
    if not grafana_url:
        return None
    pane = {
        "datasource": datasource,
        "queries": [
            {
                "refId": "A",
                "expr": expr,
                "queryType": "range",
                "datasource": {"type": "loki", "uid": datasource},
            }
        ],
        "range": {"from": str(int(start.timestamp() * 1000)), "to": str(int(end.timestamp() * 1000))},
    }
    panes = json.dumps({"incidentfox": pane}, separators=(",", ":"))
    return f"{grafana_url}/explore?schemaVersion=1&orgId=1&panes={quote(panes, safe='')}"
