"""The two query languages of the Datadog emulator: the search syntax of logs, spans and events
(``service:checkout status:error -env:staging @http.status_code:>=500 "upstream timeout"``) and the
metric query of ``/api/v1/query`` (``sum:trace.http.request.errors{service:checkout,env:prod} by
{resource_name}.as_count()``).

Search syntax, as Datadog reads it: terms are ANDed; ``OR`` between terms makes alternatives; ``-`` or
``NOT`` negates a term; ``key:value`` matches a reserved field (``service``, ``status``, ``host``,
``env``, ``resource_name``, ``trace_id``, ``source``), else a tag (``team:payments``); ``@path:value``
matches an attribute (``@http.status_code``); values may hold ``*`` wildcards, be quoted, be a group
``(a OR b)`` or a comparison (``>=500``); a bare word or a quoted phrase is searched in the message.
Malformed queries raise ``SearchError`` with Datadog's wording.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

RESERVED = ("service", "status", "host", "env", "resource_name", "trace_id", "source", "operation_name")
_TOKEN = re.compile(r'\s*(-?"[^"]*"|-?[^\s"():]*:(?:\([^()]*\)|"[^"]*"|[^\s()"]*)|-?[^\s"()]+|\(|\))')
_COMPARISON = re.compile(r"^(>=|<=|>|<)(-?\d+(?:\.\d+)?)$")

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]


class SearchError(Exception):
    """A query Datadog would answer with 400; the message is Datadog's."""


def _lookup(record: Record, path: str) -> Any:
    node: Any = record.get("attributes") or {}
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _value_matches(actual: Any, wanted: str) -> bool:
    if actual is None:
        return False
    if isinstance(actual, list):
        return any(_value_matches(a, wanted) for a in actual)
    comparison = _COMPARISON.match(wanted)
    if comparison:
        try:
            number = float(actual)
        except (TypeError, ValueError):
            return False
        op, bound = comparison.group(1), float(comparison.group(2))
        return {">": number > bound, ">=": number >= bound, "<": number < bound, "<=": number <= bound}[op]
    return fnmatch.fnmatchcase(str(actual).lower(), wanted.lower())


def _tag_values(record: Record, key: str) -> list[str]:
    prefix = f"{key}:"
    return [t[len(prefix) :] for t in record.get("tags") or [] if str(t).startswith(prefix)]


def _field(key: str, values: list[str]) -> Predicate:
    def matches(record: Record) -> bool:
        if key.startswith("@"):
            actual: Any = _lookup(record, key[1:])
        elif key in RESERVED and record.get(key) is not None:
            actual = record.get(key)
        else:
            actual = _tag_values(record, key)
        return any(_value_matches(actual, v) for v in values)

    return matches


def _text(words: str) -> Predicate:
    wanted = words.lower()
    return lambda record: wanted in str(record.get("message") or "").lower()


def _values(raw: str, query: str) -> list[str]:
    if raw.startswith("(") and raw.endswith(")"):
        parts = [p.strip().strip('"') for p in re.split(r"\s+OR\s+", raw[1:-1].strip())]
        if not all(parts):
            raise SearchError(f"Invalid query: empty value in {raw!r} of {query!r}")
        return parts
    if not raw:
        raise SearchError(f"Invalid query: missing value after ':' in {query!r}")
    return [raw.strip('"')]


def _term(token: str, query: str) -> Predicate:
    if token.startswith('"'):
        return _text(token.strip('"'))
    key, colon, raw = token.partition(":")
    if not colon:
        return _text(token)
    if not key or key == "@":
        raise SearchError(f"Invalid query: missing field name before ':' in {query!r}")
    return _field(key, _values(raw, query))


def _tokens(query: str) -> list[str]:
    if query.count('"') % 2:
        raise SearchError(f"Invalid query: unterminated quoted string in {query!r}")
    tokens: list[str] = []
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if not match or match.end() == position:
            break
        tokens.append(match.group(1))
        position = match.end()
    if query[position:].strip():
        raise SearchError(f"Invalid query: unexpected {query[position:].strip()!r} in {query!r}")
    depth = 0
    for token in tokens:
        depth += {"(": 1, ")": -1}.get(token, 0)
        if depth < 0:
            raise SearchError(f"Invalid query: unbalanced parentheses in {query!r}")
    if depth:
        raise SearchError(f"Invalid query: unbalanced parentheses in {query!r}")
    return [t for t in tokens if t not in ("(", ")", "AND")]


def compile_search(query: str | None) -> Predicate:
    """A predicate over records (``message``, reserved fields, ``tags``, ``attributes``) for ``query``;
    an empty query or ``*`` matches everything."""
    text = (query or "").strip()
    if text in ("", "*"):
        return lambda record: True
    alternatives: list[list[Predicate]] = [[]]
    negate = False
    for token in _tokens(text):
        if token == "OR":
            alternatives.append([])
            continue
        if token == "NOT":
            negate = True
            continue
        if token.startswith("-") and len(token) > 1:
            token, negate = token[1:], True
        predicate = _term(token, text)
        if negate:
            predicate = _negated(predicate)
        alternatives[-1].append(predicate)
        negate = False
    if not all(alternatives):
        raise SearchError(f"Invalid query: OR needs a term on each side in {text!r}")
    return lambda record: any(all(p(record) for p in terms) for terms in alternatives)


def _negated(predicate: Predicate) -> Predicate:
    return lambda record: not predicate(record)


def facet_value(record: Record, facet: str) -> Any:
    """The value a ``group_by`` facet takes on a record (``service``, ``@http.status_code``, a tag)."""
    if facet.startswith("@"):
        return _lookup(record, facet[1:])
    if facet in RESERVED and record.get(facet) is not None:
        return record.get(facet)
    values = _tag_values(record, facet)
    return values[0] if values else None


_METRIC_QUERY = re.compile(
    r"^(?:(?P<aggr>avg|sum|min|max):)?(?P<metric>[A-Za-z][\w.]*)"
    r"\{(?P<scope>[^{}]*)\}"
    r"(?:\s*by\s*\{(?P<by>[^{}]*)\})?"
    r"(?P<functions>(?:\.(?:as_count|as_rate)\(\)|\.rollup\(\s*(?:sum|avg|min|max|count)\s*(?:,\s*\d+)?\s*\))*)$"
)
_ROLLUP = re.compile(r"\.rollup\(\s*(sum|avg|min|max|count)\s*(?:,\s*(\d+))?\s*\)")


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """One parsed metric query: space aggregation, metric, scope filters, group-by tags and rollup."""

    aggregation: str
    metric: str
    scope: tuple[str, ...]
    by: tuple[str, ...]
    rollup: str
    rollup_s: int | None
    as_count: bool

    def scope_matches(self, tags: list[str]) -> bool:
        """Every filter of the scope holds for a series' tags (``!key:value`` excludes, ``*`` globs)."""
        for term in self.scope:
            excluded = term.startswith("!")
            wanted = term.lstrip("!")
            present = any(fnmatch.fnmatchcase(t, wanted) for t in tags)
            if present == excluded:
                return False
        return True

    def group(self, tags: list[str]) -> tuple[str, ...] | None:
        """The group-by values of a series' tags (``key:value`` each); ``None`` when one is missing."""
        found = []
        for key in self.by:
            value = next((t for t in tags if t.startswith(f"{key}:")), None)
            if value is None:
                return None
            found.append(value)
        return tuple(found)


def parse_metric_query(query: str) -> MetricQuery:
    match = _METRIC_QUERY.match(query.strip())
    if not match:
        raise SearchError(f"Error parsing query: \n unable to parse {query}: Rule 'scope_expr' didn't match")
    scope = tuple(s.strip() for s in (match.group("scope") or "").split(",") if s.strip() not in ("", "*"))
    by = tuple(b.strip() for b in (match.group("by") or "").split(",") if b.strip())
    functions = match.group("functions") or ""
    rollup = _ROLLUP.search(functions)
    return MetricQuery(
        aggregation=match.group("aggr") or "avg",
        metric=match.group("metric"),
        scope=scope,
        by=by,
        rollup=rollup.group(1) if rollup else ("sum" if ".as_count()" in functions else "avg"),
        rollup_s=int(rollup.group(2)) if rollup and rollup.group(2) else None,
        as_count=".as_count()" in functions,
    )


def aggregate(values: list[float], how: str) -> float:
    if how == "sum":
        return sum(values)
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    if how == "count":
        return float(len(values))
    return sum(values) / len(values)
