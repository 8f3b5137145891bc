"""The part of LogQL the Loki emulator understands, parsed and evaluated as Loki does.

Log queries: a stream selector (``{app="checkout",env=~"prod|staging"}`` with ``=``, ``!=``, ``=~``,
``!~``; regexes fully anchored) and a pipeline of line filters (``|= "x"``, ``!= "x"``, ``|~ "re"``,
``!~ "re"``; regexes unanchored), parsers (``| json``, ``| logfmt``) and label filters
(``| level="error"``). Metric queries: ``count_over_time(<log query>[5m])``, ``rate(...)`` and the
vector aggregations ``sum``, ``count``, ``min``, ``max``, ``avg`` with ``by (...)`` or ``without (...)``
before or after their argument. Anything else is a ``LogQLError`` whose text is what Loki answers
with 400: ``parse error at line 1, col 22: syntax error: unexpected ...``.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Labels = dict[str, str]
Entry = tuple[int, str]
"""A log entry: unix nanoseconds and the line."""

RANGE_FUNCTIONS = ("count_over_time", "rate")
VECTOR_FUNCTIONS = ("sum", "count", "min", "max", "avg")
EMPTY_COMPATIBLE = (
    "queries require at least one regexp or equality matcher that does not have an empty-compatible "
    'value. For instance, app=~".*" does not meet this requirement, but app=~".+" will'
)
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
    |(?P<op>\|=|\|~|!=|!~|=~|=|\||[{}()\[\],])
    |(?P<duration>(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+)
    |(?P<number>\d+(?:\.\d+)?)
    |(?P<ident>[a-zA-Z_][a-zA-Z0-9_]*)""",
    re.X,
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_LOGFMT = re.compile(r'([a-zA-Z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')


class LogQLError(Exception):
    """A query Loki would reject; ``str(exc)`` is Loki's plain-text 400 body."""


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Labels) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True, slots=True)
class LineFilter:
    op: str
    value: str

    def keeps(self, line: str) -> bool:
        if self.op == "|=":
            return self.value in line
        if self.op == "!=":
            return self.value not in line
        found = re.search(self.value, line) is not None
        return found if self.op == "|~" else not found


@dataclass(frozen=True, slots=True)
class Parser:
    kind: str

    def extract(self, line: str) -> Labels:
        if self.kind == "logfmt":
            return {
                k.replace(".", "_"): _unquote(v) if v.startswith('"') else v for k, v in _LOGFMT.findall(line)
            }
        try:
            body = json.loads(line)
        except ValueError:
            return {"__error__": "JSONParserErr"}
        if not isinstance(body, dict):
            return {"__error__": "JSONParserErr"}
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}


@dataclass(frozen=True, slots=True)
class LogQuery:
    matchers: tuple[Matcher, ...]
    stages: tuple[LineFilter | Parser | Matcher, ...] = ()

    def selects(self, labels: Labels) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def process(self, labels: Labels, line: str) -> Labels | None:
        """The entry's labels after the pipeline, or ``None`` when a filter drops it."""
        current = dict(labels)
        for stage in self.stages:
            if isinstance(stage, LineFilter):
                if not stage.keeps(line):
                    return None
            elif isinstance(stage, Parser):
                for key, value in stage.extract(line).items():
                    current[f"{key}_extracted" if key in labels else key] = value
            elif not stage.matches(current):
                return None
        return current


@dataclass(frozen=True, slots=True)
class RangeAggregation:
    function: str
    log: LogQuery
    range_s: float


@dataclass(frozen=True, slots=True)
class VectorAggregation:
    function: str
    inner: RangeAggregation | VectorAggregation
    grouping: tuple[str, ...] | None = None
    without: bool = False


MetricQuery = RangeAggregation | VectorAggregation
Query = LogQuery | MetricQuery
Series = tuple[Labels, dict[int, float]]


def parse(text: str) -> Query:
    """The query in ``text``; raises ``LogQLError`` with Loki's message."""
    return _Parser(text).parse()


def _unquote(raw: str) -> str:
    if raw.startswith("`"):
        return raw[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m[1], m[1]), raw[1:-1])


def parse_duration(text: str) -> float:
    return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(text))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                tail = (
                    "literal not terminated" if text[position] in '"`' else f"unexpected {text[position]!r}"
                )
                raise self._error(position + 1, tail)
            if match.lastgroup != "ws":
                self.tokens.append((str(match.lastgroup), match.group(), position + 1))
            position = match.end()
        self.index = 0

    def _error(self, col: int, detail: str) -> LogQLError:
        return LogQLError(f"parse error at line 1, col {col}: {detail}")

    def _peek(self) -> tuple[str, str, int]:
        if self.index < len(self.tokens):
            return self.tokens[self.index]
        return ("end", "$end", len(self.text) + 1)

    def _take(self, kind: str, value: str | None = None, expecting: str = "") -> str:
        token_kind, token, col = self._peek()
        if token_kind != kind or (value is not None and token != value):
            shown = "$end" if token_kind == "end" else (token if token_kind == "op" else token_kind.upper())
            need = f", expecting {expecting or value or kind.upper()}"
            raise self._error(col, f"syntax error: unexpected {shown}{need}")
        self.index += 1
        return token

    def parse(self) -> Query:
        query = self._expression()
        self._take("end", expecting="$end")
        return query

    def _expression(self) -> Query:
        kind, token, _ = self._peek()
        if kind == "op" and token == "{":
            return self._log_query()
        if kind == "ident" and token in RANGE_FUNCTIONS:
            return self._range_aggregation()
        if kind == "ident" and token in VECTOR_FUNCTIONS:
            return self._vector_aggregation()
        shown = "$end" if kind == "end" else token
        raise self._error(self._peek()[2], f"syntax error: unexpected {shown}, expecting {{ or a function")

    def _metric(self) -> MetricQuery:
        query = self._expression()
        if isinstance(query, LogQuery):
            raise self._error(1, "syntax error: unexpected {, expecting a metric expression")
        return query

    def _matcher(self) -> Matcher:
        name = self._take("ident", expecting="IDENTIFIER")
        _, op, col = self._peek()
        if op not in ("=", "!=", "=~", "!~"):
            self._take("op", "=", expecting="= or != or =~ or !~")
        self.index += 1
        value = _unquote(self._take("string", expecting="STRING"))
        if op in ("=~", "!~"):
            self._check_regex(value, col)
        return Matcher(name, op, value)

    def _check_regex(self, pattern: str, col: int) -> None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise self._error(col, f"error parsing regexp: {exc.msg}: `{pattern}`") from exc

    def _log_query(self) -> LogQuery:
        start = self._peek()[2]
        self._take("op", "{")
        matchers = [self._matcher()]
        while self._peek()[1] == ",":
            self._take("op", ",")
            matchers.append(self._matcher())
        self._take("op", "}", expecting="} or ,")
        if not any(m.op in ("=", "=~") and not m.matches({}) for m in matchers):
            raise self._error(start, EMPTY_COMPATIBLE)
        stages: list[LineFilter | Parser | Matcher] = []
        while True:
            kind, token, col = self._peek()
            if kind == "op" and token in ("|=", "!=", "|~", "!~"):
                self.index += 1
                value = _unquote(self._take("string", expecting="STRING"))
                if token in ("|~", "!~"):
                    self._check_regex(value, col)
                stages.append(LineFilter(token, value))
            elif kind == "op" and token == "|":
                self.index += 1
                _, name, _ = self._peek()
                if name in ("json", "logfmt"):
                    self.index += 1
                    stages.append(Parser(name))
                else:
                    stages.append(self._matcher())
            else:
                return LogQuery(tuple(matchers), tuple(stages))

    def _range_aggregation(self) -> RangeAggregation:
        function = self._take("ident")
        self._take("op", "(")
        log = self._log_query()
        self._take("op", "[", expecting="[")
        duration = self._take("duration", expecting="DURATION")
        self._take("op", "]")
        self._take("op", ")")
        return RangeAggregation(function, log, parse_duration(duration))

    def _grouping(self) -> tuple[tuple[str, ...], bool] | None:
        _, token, _ = self._peek()
        if token not in ("by", "without"):
            return None
        self.index += 1
        self._take("op", "(")
        names: list[str] = []
        while self._peek()[1] != ")":
            names.append(self._take("ident", expecting="IDENTIFIER"))
            if self._peek()[1] == ",":
                self.index += 1
        self._take("op", ")")
        return tuple(names), token == "without"

    def _vector_aggregation(self) -> VectorAggregation:
        function = self._take("ident")
        grouping = self._grouping()
        self._take("op", "(")
        inner = self._metric()
        self._take("op", ")")
        grouping = grouping or self._grouping()
        names, without = grouping if grouping else (None, False)
        return VectorAggregation(function, inner, names, without)


def select(
    query: LogQuery, streams: Iterable[tuple[Labels, Sequence[Entry]]], start: int, end: int
) -> list[tuple[Labels, list[Entry]]]:
    """The entries in ``[start, end)`` that ``query`` keeps, grouped by their labels after the pipeline,
    oldest first."""
    grouped: dict[tuple[tuple[str, str], ...], tuple[Labels, list[Entry]]] = {}
    for labels, entries in streams:
        if not query.selects(labels):
            continue
        for ns, line in entries:
            if not start <= ns < end:
                continue
            final = query.process(labels, line)
            if final is not None:
                key = tuple(sorted(final.items()))
                grouped.setdefault(key, (final, []))[1].append((ns, line))
    for _, entries in grouped.values():
        entries.sort()
    return list(grouped.values())


_COMBINE: dict[str, Callable[[list[float]], float]] = {
    "sum": lambda v: float(sum(v)),
    "count": lambda v: float(len(v)),
    "min": min,
    "max": max,
    "avg": lambda v: sum(v) / len(v),
}


def evaluate(
    query: MetricQuery, streams: Sequence[tuple[Labels, Sequence[Entry]]], steps: Sequence[int]
) -> list[Series]:
    """``query`` at each of ``steps`` (unix ns): every series with its values where it has one."""
    if isinstance(query, RangeAggregation):
        range_ns = int(query.range_s * 1e9)
        found = select(query.log, streams, steps[0] - range_ns, steps[-1] + 1)
        series: list[Series] = []
        for labels, entries in found:
            times = [ns for ns, _ in entries]
            points: dict[int, float] = {}
            for step in steps:
                count = bisect.bisect_right(times, step) - bisect.bisect_right(times, step - range_ns)
                if count:
                    points[step] = count / query.range_s if query.function == "rate" else float(count)
            if points:
                series.append((labels, points))
        return series
    groups: dict[tuple[tuple[str, str], ...], tuple[Labels, dict[int, list[float]]]] = {}
    for labels, points in evaluate(query.inner, streams, steps):
        if query.grouping is None:
            kept: Labels = {}
        elif query.without:
            kept = {k: v for k, v in labels.items() if k not in query.grouping}
        else:
            kept = {k: v for k, v in labels.items() if k in query.grouping}
        group = groups.setdefault(tuple(sorted(kept.items())), (kept, {}))
        for step, value in points.items():
            group[1].setdefault(step, []).append(value)
    fn = _COMBINE[query.function]
    return [
        (labels, {step: float(fn(values)) for step, values in points.items()})
        for labels, points in groups.values()
    ]
