"""The query DSL subset of the Elasticsearch emulator, evaluated over stored documents: ``bool``
(``must``, ``filter``, ``must_not``, ``should`` with ``minimum_should_match``), ``match``,
``match_phrase``, ``term``, ``terms``, ``range`` (``gte``/``gt``/``lte``/``lt``, ISO times, epoch
millis, date math ``now-1h``), ``match_all`` and ``query_string`` (terms, ``field:value``, quoted
phrases, ``*`` wildcards, ``AND``/``OR``/``NOT``, parentheses); sort on a field, ``size``; ``aggs``
``terms`` (``field``, ``size``) and ``date_histogram`` (``field``, ``fixed_interval``)."""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TOKEN = re.compile(r'"[^"]*"|\(|\)|[^\s()"]+(?:"[^"]*")?')
Doc = tuple[str, dict[str, Any]]


class SearchError(Exception):
    """Answered as ES answers a bad search: 400 with its error type and reason."""

    def __init__(self, kind: str, reason: str, outer: str | None = None) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.outer = kind, reason, outer

    def body(self) -> dict[str, Any]:
        """ES's 400 body; a failure on the shards is wrapped in ``search_phase_execution_exception``."""
        cause = {"type": self.kind, "reason": self.reason}
        outer = {"type": self.outer, "reason": "all shards failed", "phase": "query"} if self.outer else cause
        return {"error": {"root_cause": [cause], **outer}, "status": 400}


def field_values(source: Mapping[str, Any], field: str) -> list[Any]:
    """The values at a dotted ``field``: nested objects or a flat dotted key; ``.keyword`` is the field."""
    field = field.removesuffix(".keyword")
    if field in source:
        found = source[field]
    else:
        head, _, rest = field.partition(".")
        inner = source.get(head)
        return field_values(inner, rest) if rest and isinstance(inner, Mapping) else []
    return list(found) if isinstance(found, list) else [found]


def _tokens(value: Any) -> list[str]:
    return re.findall(r"\w+", str(value).lower())


def parse_time(value: Any, now: datetime | None = None) -> float:
    """Epoch millis of an ISO time, epoch millis or date math (``now-1h``, ``now``)."""
    now = now or datetime.now(UTC)
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    if text.startswith("now"):
        at = now
        for sign, amount, unit in re.findall(r"([+-])(\d+)([smhdw]|ms)", text[3:]):
            delta = timedelta(seconds=int(amount) * _UNITS[unit])
            at = at + delta if sign == "+" else at - delta
        return at.timestamp() * 1000
    if text.isdigit():
        return float(text)
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SearchError(
            "parse_exception", f"failed to parse date field [{text}]", "search_phase_execution_exception"
        ) from exc
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000


def _clauses(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


def _single(body: Any, kind: str) -> tuple[str, Any]:
    if not isinstance(body, Mapping) or len(body) != 1:
        raise SearchError("parsing_exception", f"[{kind}] query malformed, no start_object after query name")
    return next(iter(body.items()))


def matches(query: Mapping[str, Any], source: Mapping[str, Any]) -> bool:
    kind, body = _single(query, "query")
    if kind == "match_all":
        return True
    if kind == "bool":
        return _bool(body, source)
    if kind in ("match", "match_phrase"):
        field, value = _single(body, kind)
        text = value.get("query") if isinstance(value, Mapping) else value
        values = field_values(source, field)
        if kind == "match_phrase":
            return any(" ".join(_tokens(text)) in " ".join(_tokens(v)) for v in values)
        wanted = set(_tokens(text))
        return any(wanted & set(_tokens(v)) for v in values)
    if kind == "term":
        field, value = _single(body, kind)
        value = value.get("value") if isinstance(value, Mapping) else value
        return value in field_values(source, field)
    if kind == "terms":
        field, wanted = _single(body, kind)
        return any(v in wanted for v in field_values(source, field))
    if kind == "range":
        field, bounds = _single(body, kind)
        return any(_in_range(v, bounds) for v in field_values(source, field))
    if kind == "query_string":
        return QueryString(str(body.get("query", "")), body.get("default_operator", "OR")).matches(source)
    raise SearchError("parsing_exception", f"unknown query [{kind}]")


def _bool(body: Mapping[str, Any], source: Mapping[str, Any]) -> bool:
    unknown = set(body) - {"must", "filter", "must_not", "should", "minimum_should_match", "boost"}
    if unknown:
        raise SearchError("x_content_parse_exception", f"[bool] unknown field [{sorted(unknown)[0]}]")
    required = _clauses(body.get("must")) + _clauses(body.get("filter"))
    if not all(matches(q, source) for q in required):
        return False
    if any(matches(q, source) for q in _clauses(body.get("must_not"))):
        return False
    should = _clauses(body.get("should"))
    least = int(body.get("minimum_should_match", 0 if required else 1 if should else 0))
    return sum(matches(q, source) for q in should) >= least


def _in_range(value: Any, bounds: Mapping[str, Any]) -> bool:
    at = parse_time(value)
    checks = {"gte": at.__ge__, "gt": at.__gt__, "lte": at.__le__, "lt": at.__lt__}
    return all(checks[op](parse_time(edge)) for op, edge in bounds.items() if op in checks)


class QueryString:
    """The Lucene syntax subset; a syntax error is ES's ``query_shard_exception``."""

    def __init__(self, text: str, default_operator: str = "OR") -> None:
        self.text = text
        self.default = default_operator.upper()
        if text.count('"') % 2 or text.count("(") != text.count(")"):
            raise self._error("Cannot parse '" + text + '\': Encountered "<EOF>"')
        self.tokens = _TOKEN.findall(text)
        self.at = 0
        self.tree = self._or() if self.tokens else ("all",)
        if self.at < len(self.tokens):
            raise self._error(f"Cannot parse '{text}': Encountered \"{self.tokens[self.at]}\"")

    def _error(self, reason: str) -> SearchError:
        return SearchError(
            "query_shard_exception",
            f"Failed to parse query [{self.text}]: {reason}",
            "search_phase_execution_exception",
        )

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _or(self) -> tuple[Any, ...]:
        parts = [self._and()]
        while self._peek() == "OR":
            self.at += 1
            parts.append(self._and())
        return ("or", *parts) if len(parts) > 1 else parts[0]

    def _and(self) -> tuple[Any, ...]:
        parts = [self._not()]
        while self._peek() not in (None, ")", "OR"):
            if self._peek() == "AND":
                self.at += 1
            elif self.default == "OR":
                break
            parts.append(self._not())
        return ("and", *parts) if len(parts) > 1 else parts[0]

    def _not(self) -> tuple[Any, ...]:
        token = self._peek()
        if token in ("NOT", "-"):
            self.at += 1
            return ("not", self._not())
        if token is None or token in (")", "AND", "OR"):
            raise self._error(f'Encountered "{token or "<EOF>"}"')
        self.at += 1
        if token == "(":
            inner = self._or()
            self.at += 1
            return inner
        field, colon, value = token.partition(":") if not token.startswith('"') else ("", "", token)
        return ("term", field if colon else None, value if colon else token)

    def matches(self, source: Mapping[str, Any]) -> bool:
        return self._eval(self.tree, source)

    def _eval(self, node: tuple[Any, ...], source: Mapping[str, Any]) -> bool:
        kind = node[0]
        if kind == "all":
            return True
        if kind == "or":
            return any(self._eval(n, source) for n in node[1:])
        if kind == "and":
            return all(self._eval(n, source) for n in node[1:])
        if kind == "not":
            return not self._eval(node[1], source)
        field, value = node[1], str(node[2])
        values = field_values(source, field) if field else list(_strings(source))
        if value == "*":
            return bool(values)
        if value.startswith('"'):
            phrase = " ".join(_tokens(value))
            return any(phrase in " ".join(_tokens(v)) for v in values)
        if "*" in value or "?" in value:
            pattern = value.lower()
            return any(fnmatch.fnmatchcase(t, pattern) for v in values for t in [str(v).lower(), *_tokens(v)])
        wanted = _tokens(value)
        return any(wanted and all(w in _tokens(v) for w in wanted) for v in values)


def _strings(source: Any) -> list[Any]:
    if isinstance(source, Mapping):
        return [s for v in source.values() for s in _strings(v)]
    if isinstance(source, list):
        return [s for v in source for s in _strings(v)]
    return [source]


def _sort_key(source: Mapping[str, Any], field: str) -> float:
    values = field_values(source, field)
    if not values:
        return float("-inf")
    try:
        return parse_time(values[0])
    except SearchError:
        return float("-inf")


def search(body: Mapping[str, Any], documents: list[Doc]) -> dict[str, Any]:
    """ES's search answer for ``body`` over ``documents`` (``(index, {"_id", "_source"})``)."""
    query = body.get("query") or {"match_all": {}}
    found = [(index, doc) for index, doc in documents if matches(query, doc["_source"])]
    sort_field, descending = _sort(body.get("sort"))
    if sort_field:
        found.sort(key=lambda d: _sort_key(d[1]["_source"], sort_field), reverse=descending)
    size = int(body.get("size", 10))
    if size < 0 or size > 10_000:
        raise SearchError(
            "illegal_argument_exception",
            "Result window is too large, from + size must be less than or equal to: [10000] but was "
            f"[{size}].",
        )
    hits = [
        {
            "_index": index,
            "_id": doc["_id"],
            "_score": None if sort_field else 1.0,
            "_source": doc["_source"],
            **({"sort": [_sort_key(doc["_source"], sort_field)]} if sort_field else {}),
        }
        for index, doc in found[:size]
    ]
    total = {"value": min(len(found), 10_000), "relation": "eq" if len(found) <= 10_000 else "gte"}
    answer: dict[str, Any] = {
        "took": 1,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"total": total, "max_score": None, "hits": hits},
    }
    aggs = body.get("aggs") or body.get("aggregations")
    if aggs:
        sources = [doc["_source"] for _, doc in found]
        answer["aggregations"] = {name: _aggregate(name, spec, sources) for name, spec in aggs.items()}
    return answer


def _sort(raw: Any) -> tuple[str | None, bool]:
    first = _clauses(raw)[0] if _clauses(raw) else None
    if isinstance(first, str):
        return first, False
    if isinstance(first, Mapping) and first:
        field, order = next(iter(first.items()))
        order = order.get("order", "asc") if isinstance(order, Mapping) else order
        return field, str(order) == "desc"
    return None, False


def _aggregate(name: str, spec: Mapping[str, Any], sources: list[Mapping[str, Any]]) -> dict[str, Any]:
    if "terms" in spec:
        terms = spec["terms"]
        counts = Counter(v for s in sources for v in dict.fromkeys(field_values(s, terms["field"])))
        top = counts.most_common(int(terms.get("size", 10)))
        return {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": sum(counts.values()) - sum(n for _, n in top),
            "buckets": [{"key": k, "doc_count": n} for k, n in top],
        }
    if "date_histogram" in spec:
        histogram = spec["date_histogram"]
        interval = _interval_ms(str(histogram.get("fixed_interval", "")))
        stamps = [parse_time(v) for s in sources for v in field_values(s, histogram["field"])[:1]]
        if not stamps:
            return {"buckets": []}
        first, last = (int(min(stamps) // interval * interval), int(max(stamps) // interval * interval))
        counts = Counter(int(t // interval * interval) for t in stamps)
        return {
            "buckets": [
                {"key_as_string": _iso(k), "key": k, "doc_count": counts.get(k, 0)}
                for k in range(first, last + 1, interval)
            ]
        }
    raise SearchError("parsing_exception", f"Unknown aggregation type in [{name}]")


def _interval_ms(text: str) -> int:
    found = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
    if not found or int(found.group(1)) <= 0:
        raise SearchError(
            "illegal_argument_exception",
            f"failed to parse setting [date_histogram.fixedInterval] with value [{text}] as a time value",
        )
    return int(int(found.group(1)) * _UNITS[found.group(2)] * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
