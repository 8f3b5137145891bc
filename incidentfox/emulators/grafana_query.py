"""The data behind the Grafana emulator's ``POST /api/ds/query``: seeded series answered for a PromQL or
LogQL metric expression, as data frames.

This is not a query engine. An expression is checked as Prometheus' parser would reject it (unbalanced
brackets, a ``$`` left unsubstituted), its first selector picks seeded series by metric name and label
matchers (``=``, ``!=``, ``=~``, ``!~``), ``by (...)`` groups them and an outer aggregation (``sum``,
``avg``, ``max``, ``histogram_quantile``) combines them. Each series' value is its baseline with a
small deterministic wave (from the expression, the labels and the time), times its spike factor from
``spike_at`` on: the same question always gets the same numbers.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Labels = dict[str, str]
_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)?\{([^{}]*)\}")
_MATCHER = re.compile(r'\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_ESCAPE = re.compile(r"\\(.)")
"""A backslash escape in a PromQL string: the backslash and the character it escapes."""
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_OPEN = {"(": ")", "{": "}", "[": "]"}


class QueryError(Exception):
    """An expression the data source rejects: ``str(exc)`` is its message, as Grafana relays it."""


@dataclass(frozen=True, slots=True)
class SeededSeries:
    """One series of a data source: ``metric`` is empty for a Loki stream."""

    datasource: str
    metric: str
    labels: Mapping[str, str]
    baseline: float
    spike: float = 1.0
    """What the value is multiplied by from the emulator's ``spike_at`` on."""


@dataclass(slots=True)
class Answer:
    """Series found for an expression: each group's labels and values on the grid."""

    times_ms: list[int]
    series: list[tuple[Labels, list[float]]] = field(default_factory=list)


def check_syntax(expr: str) -> None:
    """Raise ``QueryError`` with Prometheus' words for what its parser rejects first."""
    if not expr.strip():
        raise QueryError(
            'bad_data: invalid parameter "query": 1:1: parse error: no expression found in input'
        )
    stack: list[tuple[str, int]] = []
    quoted = ""
    for col, char in enumerate(expr, start=1):
        if quoted:
            quoted = "" if char == quoted else quoted
            continue
        if char in "\"'`":
            quoted = char
        elif char == "$":
            raise QueryError(
                f"bad_data: invalid parameter \"query\": 1:{col}: parse error: unexpected character: '$'"
            )
        elif char in _OPEN:
            stack.append((char, col))
        elif char in _OPEN.values():
            if not stack or _OPEN[stack[-1][0]] != char:
                raise QueryError(
                    f'bad_data: invalid parameter "query": 1:{col}: parse error: unexpected right '
                    f"{'parenthesis' if char == ')' else 'bracket'} '{char}'"
                )
            stack.pop()
    if stack:
        what = {"(": "left parenthesis", "{": "left brace", "[": "left bracket"}[stack[-1][0]]
        raise QueryError(
            f'bad_data: invalid parameter "query": 1:{stack[-1][1]}: parse error: unclosed {what}'
        )


def _matchers(text: str) -> list[tuple[str, str, str]]:
    found = []
    rest = text.strip()
    while rest:
        match = _MATCHER.match(rest)
        if not match:
            raise QueryError(
                'bad_data: invalid parameter "query": parse error: unexpected '
                f'"{rest[:20]}" in label matching'
            )
        found.append((match.group(1), match.group(2), _ESCAPE.sub(r"\1", match.group(3))))
        rest = rest[match.end() :].strip()
    return found


def _matches(labels: Mapping[str, str], matchers: Iterable[tuple[str, str, str]]) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        try:
            hit = have == value if op in ("=", "!=") else re.fullmatch(value, have) is not None
        except re.error as exc:
            raise QueryError(f'bad_data: invalid parameter "query": error parsing regexp: {exc}') from exc
        if hit == op.startswith("!"):
            return False
    return True


def _selected(expr: str, datasource: str, seeded: Iterable[SeededSeries]) -> list[SeededSeries]:
    own = [s for s in seeded if s.datasource == datasource]
    names = {s.metric for s in own}
    for match in _SELECTOR.finditer(expr):
        name = match.group(1) or ""
        if name in names:
            matchers = _matchers(match.group(2))
            return [s for s in own if s.metric == name and _matches(s.labels, matchers)]
    bare = next((n for n in re.findall(r"[a-zA-Z_:][\w:]*", expr) if n and n in names), None)
    return [s for s in own if s.metric == bare] if bare else []


def _wave(key: str, at_s: float) -> float:
    """A deterministic ripple of ±5% around 1."""
    phase = zlib.crc32(key.encode()) % 628 / 100
    return 1 + 0.05 * math.sin(phase + at_s / 300)


def evaluate(
    expr: str,
    datasource: str,
    seeded: Iterable[SeededSeries],
    *,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    spike_at_s: float,
) -> Answer:
    """The series ``expr`` selects from ``seeded`` on the grid from ``start_ms`` to ``end_ms``."""
    check_syntax(expr)
    first = start_ms // step_ms * step_ms
    times = list(range(first, end_ms + 1, step_ms))
    answer = Answer(times)
    selected = _selected(expr, datasource, seeded)
    if not selected:
        return answer
    head = expr.lstrip().split("(", 1)[0].strip()
    by = _BY.search(expr)
    groups: dict[tuple[tuple[str, str], ...], list[SeededSeries]] = {}
    for series in selected:
        if by:
            keep = {n.strip() for n in by.group(1).split(",") if n.strip() and n.strip() != "le"}
            labels = {k: v for k, v in series.labels.items() if k in keep}
        elif head and head not in ("rate", "irate", "increase", "count_over_time", "rate_over_time"):
            labels = {}
        else:
            labels = dict(series.labels)
        groups.setdefault(tuple(sorted(labels.items())), []).append(series)
    combine = max if head == "max" else _mean if head in ("avg", "histogram_quantile") else sum
    for key, members in sorted(groups.items()):
        values = []
        for at in times:
            at_s = at / 1000
            each = [
                s.baseline
                * (s.spike if at_s >= spike_at_s else 1)
                * _wave(f"{expr}{sorted(s.labels.items())}", at_s)
                for s in members
            ]
            values.append(round(combine(each), 6))
        answer.series.append((dict(key), values))
    return answer


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def frames(ref_id: str, expr: str, answer: Answer, step_ms: int) -> list[dict[str, Any]]:
    """Grafana's data frames for a Prometheus-style answer: one ``timeseries-multi`` frame per series,
    a ``Time`` field and a ``Value`` field carrying the series' labels."""
    meta = {
        "type": "timeseries-multi",
        "typeVersion": [0, 1],
        "executedQueryString": f"Expr: {expr}\nStep: {step_ms // 1000}s",
    }
    return [
        {
            "schema": {
                "refId": ref_id,
                "meta": meta,
                "fields": [
                    {
                        "name": "Time",
                        "type": "time",
                        "typeInfo": {"frame": "time.Time"},
                        "config": {"interval": step_ms},
                    },
                    {
                        "name": "Value",
                        "type": "number",
                        "typeInfo": {"frame": "float64"},
                        "labels": labels,
                        "config": {
                            "displayNameFromDS": ",".join(f"{k}={v}" for k, v in labels.items()) or expr
                        },
                    },
                ],
            },
            "data": {"values": [answer.times_ms, values]},
        }
        for labels, values in answer.series
    ]


def log_frame(ref_id: str) -> dict[str, Any]:
    """The (here empty) ``log-lines`` frame a Loki log query answers with: lines, not numbers."""
    return {
        "schema": {
            "refId": ref_id,
            "meta": {"type": "log-lines", "typeVersion": [0, 0]},
            "fields": [
                {"name": "labels", "type": "other", "typeInfo": {"frame": "json.RawMessage"}},
                {"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}},
                {"name": "Line", "type": "string", "typeInfo": {"frame": "string"}},
            ],
        },
        "data": {"values": [[], [], []]},
    }
