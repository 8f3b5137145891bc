"""The small subset of Coralogix DataPrime (and of its Lucene syntax) that the Coralogix emulator runs.

DataPrime: ``source logs`` then ``|``-separated commands: ``filter <expr>``, ``limit N``, ``groupby
<expr> [as a], … aggregate count() [as c], …``, ``aggregate count() as c``, ``countby <expr>``,
``orderby``/``sortby <expr> [asc|desc]`` and ``choose <expr> [as a], …``. Expressions read keypaths
(``$m.timestamp``, ``$m.severity``, ``$l.applicationname``, ``$l.subsystemname``, ``$d.a.b``, ``$d`` or a
bare ``a.b`` meaning ``$d.a.b``), strings, numbers, severity names (``ERROR``), ``==``, ``!=``, ``<``,
``<=``, ``>``, ``>=``, ``~`` (contains, case-insensitive), ``~~`` (free text), ``&&``, ``||``, ``!``,
parentheses and ``roundTime(<timestamp>, 5m)``. Lucene: ``field:value``, quoted phrases and bare words
joined by AND (or whitespace) and OR. Anything else is a ``DataPrimeError`` with a compile message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

SEVERITIES = ("DEBUG", "VERBOSE", "INFO", "WARNING", "ERROR", "CRITICAL")
"""Coralogix severities, numbered 1 to 6 in this order."""
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<dur>\d+(?:ms|s|m|h|d)\b)"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<path>\$[mld](?:\.[A-Za-z_][\w]*)*|[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)"
    r"|(?P<op>\|\||&&|==|!=|~~|>=|<=|[|~<>!(),]))"
)
_RESERVED = ("filter", "limit", "groupby", "aggregate", "countby", "orderby", "sortby", "choose", "as")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_COMMANDS = ("filter", "limit", "groupby", "aggregate", "countby", "orderby", "sortby", "choose")


class DataPrimeError(Exception):
    """A query that does not compile; ``str`` is the message Coralogix would give."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One stored log: its metadata (``$m``), labels (``$l``) and user data (``$d``)."""

    timestamp: datetime
    severity: int
    labels: dict[str, str]
    data: dict[str, Any]
    log_id: str


@dataclass(frozen=True, slots=True)
class Severity:
    level: int

    @property
    def name(self) -> str:
        return SEVERITIES[self.level - 1].capitalize()


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    at: int


Row = LogRecord | dict[str, Any]
Expr = Callable[[Row], Any]


@dataclass(slots=True)
class Outcome:
    """What a query produced: log records (``aggregated`` false) or output objects."""

    rows: list[Row] = field(default_factory=list)
    aggregated: bool = False


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while text[at:].strip():
        match = _TOKEN.match(text, at)
        if not match or match.end() == at:
            raise DataPrimeError(
                f"Compilation errors: 1:{at + 1}: unexpected character {text[at:].strip()[0]!r}"
            )
        kind = str(match.lastgroup)
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        at = match.end()
    return tokens


def duration_s(text: str) -> float:
    number = re.match(r"\d+", text)
    assert number is not None
    return int(number.group()) * _UNITS[text[number.end() :]]


def render(value: Any) -> Any:
    """A value as it appears in a result's ``userData``."""
    if isinstance(value, Severity):
        return value.name
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    return value


def _keypath(path: str) -> Expr:
    if path in ("$m", "$l"):
        raise DataPrimeError(f"Compilation errors: keypath {path} needs a field name")
    head, _, rest = path.partition(".")
    if head == "$m":
        return lambda row: _metadata(row, rest)
    if head == "$l":
        return lambda row: row.labels.get(rest.lower()) if isinstance(row, LogRecord) else _dig(row, rest)
    keys = rest if head == "$d" else path
    return lambda row: _dig(row.data if isinstance(row, LogRecord) else row, keys)


def _metadata(row: Row, name: str) -> Any:
    if not isinstance(row, LogRecord):
        return _dig(row, name)
    if name == "timestamp":
        return row.timestamp
    if name == "severity":
        return Severity(row.severity)
    if name == "logid":
        return row.log_id
    raise DataPrimeError(f"Compilation errors: unknown metadata field $m.{name}")


def _dig(node: Any, dotted: str) -> Any:
    if not dotted:
        return node
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _severity_of(value: Any) -> int:
    if isinstance(value, Severity):
        return value.level
    text = str(value).strip().upper()
    if text.isdigit() and 1 <= int(text) <= 6:
        return int(text)
    if text in SEVERITIES:
        return SEVERITIES.index(text) + 1
    raise DataPrimeError(f"Compilation errors: {value!r} is not a severity (one of {', '.join(SEVERITIES)})")


def _text(value: Any) -> str:
    if isinstance(value, LogRecord):
        return json.dumps(value.data)
    if isinstance(value, dict):
        return json.dumps(value)
    return "" if value is None else str(render(value))


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("~", "~~"):
        return _text(right).lower() in _text(left).lower()
    if isinstance(left, Severity) or isinstance(right, Severity):
        left, right = _severity_of(left), _severity_of(right)
    elif isinstance(left, int | float) or isinstance(right, int | float):
        try:
            left, right = float(left), float(right)
        except (TypeError, ValueError):
            return op == "!="
    else:
        left, right = _text(left), _text(right)
    results = {
        "==": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }
    return results[op]


def _either(first: Expr, second: Expr) -> Expr:
    return lambda row: bool(first(row)) or bool(second(row))


def _both(first: Expr, second: Expr) -> Expr:
    return lambda row: bool(first(row)) and bool(second(row))


class _Parser:
    """Recursive descent over one command's tokens."""

    def __init__(self, tokens: list[Token], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.at = 0

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, *texts: str) -> Token | None:
        token = self.peek()
        if token is not None and (not texts or token.text.lower() in texts):
            self.at += 1
            return token
        return None

    def expect(self, text: str) -> None:
        if not self.take(text):
            self.fail(f"expected {text!r}")

    def fail(self, what: str) -> NoReturn:
        token = self.peek()
        where = f"1:{token.at + 1}: {what} at {token.text!r}" if token else f"{what} at end of query"
        raise DataPrimeError(f"Compilation errors: {where}")

    def done(self) -> bool:
        return self.at >= len(self.tokens)

    def expression(self) -> Expr:
        left = self.conjunction()
        while self.take("||"):
            left = _either(left, self.conjunction())
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.take("&&"):
            left = _both(left, self.negation())
        return left

    def negation(self) -> Expr:
        if self.take("!"):
            inner = self.negation()
            return lambda row: not inner(row)
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.primary()
        op = self.take("==", "!=", "~", "~~", "<", "<=", ">", ">=")
        if op is None:
            return left
        right = self.primary()
        return lambda row: _compare(op.text, left(row), right(row))

    def primary(self) -> Expr:
        token = self.peek()
        if token is None:
            self.fail("expected an expression")
        self.at += 1
        if token.text == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if token.kind == "str":
            text = token.text[1:-1].replace("\\'", "'").replace('\\"', '"')
            return lambda row: text
        if token.kind == "num":
            number = float(token.text) if "." in token.text else int(token.text)
            return lambda row: number
        if token.kind == "path" and token.text.lower() == "roundtime" and self.take("("):
            return self.round_time()
        if token.kind == "path" and token.text.upper() in SEVERITIES:
            level = SEVERITIES.index(token.text.upper()) + 1
            return lambda row: Severity(level)
        if token.kind == "path" and token.text.lower() not in _RESERVED:
            return _keypath(token.text)
        self.at -= 1
        self.fail("unexpected token")

    def round_time(self) -> Expr:
        inner = self.expression()
        self.expect(",")
        interval = self.take()
        if interval is None or interval.kind != "dur":
            self.fail("roundTime needs an interval such as 5m")
        self.expect(")")
        step = duration_s(interval.text)

        def rounded(row: Row) -> datetime | None:
            at = inner(row)
            if not isinstance(at, datetime):
                return None
            seconds = at.timestamp() // step * step
            return datetime.fromtimestamp(seconds, UTC)

        return rounded

    def named(self, default: str) -> tuple[Expr, str]:
        start = self.peek()
        expr = self.expression()
        alias = self.take("as")
        if alias:
            name = self.take()
            if name is None or name.kind != "path":
                self.fail("expected a name after as")
            return expr, name.text
        if start is not None and start.kind == "path":
            return expr, start.text.rsplit(".", 1)[-1].lstrip("$")
        return expr, default

    def named_list(self, stop: str | None = None) -> list[tuple[Expr, str]]:
        items = [self.named("_expr0")]
        while self.take(","):
            items.append(self.named(f"_expr{len(items)}"))
        if stop is not None and not self.take(stop):
            self.fail(f"expected {stop!r}")
        return items

    def aggregations(self) -> list[str]:
        names: list[str] = []
        while True:
            func = self.take("count")
            if func is None:
                self.fail("only count() is supported as an aggregation here")
            self.expect("(")
            self.expect(")")
            alias = self.take() if self.take("as") else None
            if alias is not None and alias.kind != "path":
                self.fail("expected a name after as")
            names.append(alias.text if alias else "_count")
            if not self.take(","):
                return names


@dataclass(slots=True)
class Query:
    """A compiled DataPrime query: its source and a list of steps over rows."""

    source: str
    steps: list[Callable[[Outcome], Outcome]]

    def run(self, records: Iterable[LogRecord]) -> Outcome:
        newest: list[LogRecord] = sorted(records, key=lambda r: r.timestamp, reverse=True)
        outcome = Outcome(rows=list(newest))
        for step in self.steps:
            outcome = step(outcome)
        return outcome


def parse(text: str, default_source: str = "logs") -> Query:
    """Compile ``text``; raises ``DataPrimeError`` with a compile message."""
    commands: list[list[Token]] = [[]]
    for token in tokenize(text):
        if token.text == "|":
            commands.append([])
        else:
            commands[-1].append(token)
    source = default_source
    if commands[0] and commands[0][0].text.lower() == "source":
        head = commands.pop(0)
        if len(head) != 2:
            raise DataPrimeError("Compilation errors: source needs one dataset name, e.g. source logs")
        source = head[1].text
    if source != "logs":
        raise DataPrimeError(f"Compilation errors: dataset {source!r} not found; this team has: logs")
    return Query(source, [_step(tokens, text) for tokens in commands if tokens or len(commands) > 1])


def _step(tokens: list[Token], text: str) -> Callable[[Outcome], Outcome]:
    parser = _Parser(tokens, text)
    command = parser.take()
    if command is None:
        raise DataPrimeError("Compilation errors: empty command between |")
    name = command.text.lower()
    if name == "filter":
        step = _filter(parser.expression())
    elif name == "limit":
        count = parser.take()
        if count is None or count.kind != "num" or int(float(count.text)) < 0:
            parser.fail("limit needs a non-negative number")
        step = _limit(int(float(count.text)))
    elif name in ("groupby", "countby"):
        keys = parser.named_list()
        counts = ["_count"]
        if name == "groupby":
            parser.expect("aggregate")
            counts = parser.aggregations()
        step = _group(keys, counts)
    elif name == "aggregate":
        step = _group([], parser.aggregations())
    elif name in ("orderby", "sortby"):
        key = parser.expression()
        descending = bool(parser.take("desc"))
        parser.take("asc")
        step = _order(key, descending)
    elif name == "choose":
        step = _choose(parser.named_list())
    else:
        raise DataPrimeError(
            f"Compilation errors: 1:{command.at + 1}: unknown command {command.text!r}; expected one of "
            + ", ".join(_COMMANDS)
        )
    if not parser.done():
        parser.fail("unexpected token")
    return step


def _filter(expr: Expr) -> Callable[[Outcome], Outcome]:
    return lambda o: Outcome([row for row in o.rows if bool(expr(row))], o.aggregated)


def _limit(count: int) -> Callable[[Outcome], Outcome]:
    return lambda o: Outcome(o.rows[:count], o.aggregated)


def _group(keys: list[tuple[Expr, str]], counts: list[str]) -> Callable[[Outcome], Outcome]:
    def grouped(outcome: Outcome) -> Outcome:
        groups: dict[tuple[Any, ...], int] = {}
        for row in outcome.rows:
            key = tuple(render(expr(row)) for expr, _ in keys)
            groups[key] = groups.get(key, 0) + 1
        if not keys and not groups:
            groups[()] = 0
        rows: list[Row] = [
            {**{name: value for (_, name), value in zip(keys, key, strict=True)}, **dict.fromkeys(counts, n)}
            for key, n in groups.items()
        ]
        return Outcome(rows, aggregated=True)

    return grouped


def _order(key: Expr, descending: bool) -> Callable[[Outcome], Outcome]:
    def ordered(outcome: Outcome) -> Outcome:
        present = [row for row in outcome.rows if key(row) is not None]
        missing = [row for row in outcome.rows if key(row) is None]
        present.sort(key=lambda row: _sort_key(key(row)), reverse=descending)
        return Outcome(present + missing, outcome.aggregated)

    return ordered


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, Severity):
        return (0, value.level)
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(render(value)))


def _choose(items: list[tuple[Expr, str]]) -> Callable[[Outcome], Outcome]:
    return lambda o: Outcome([{name: render(expr(row)) for expr, name in items} for row in o.rows], True)


def lucene(text: str) -> Query:
    """A Lucene query (``QUERY_SYNTAX_LUCENE``) as a filter over logs."""
    alternatives = [part for part in re.split(r"\s+OR\s+", text.strip()) if part.strip()]
    if not alternatives:
        return Query("logs", [])
    terms = [[t for t in re.findall(r'(?:[\w.]+:)?"[^"]*"|\S+', alt) if t != "AND"] for alt in alternatives]
    for alt in terms:
        for term in alt:
            if term.startswith(("(", ")")) or term.count('"') % 2:
                raise DataPrimeError(f"Cannot parse '{text}': unsupported Lucene syntax near {term!r}")
    return Query("logs", [_filter(lambda row: any(all(_lucene_term(t, row) for t in alt) for alt in terms))])


def _lucene_term(term: str, row: Row) -> bool:
    name, colon, value = term.partition(":")
    if not colon or name.startswith('"'):
        return term.strip('"').lower() in _text(row).lower()
    value = value.strip('"').lower()
    if not isinstance(row, LogRecord):
        return False
    short = name.removeprefix("coralogix.metadata.").lower()
    if short in ("applicationname", "subsystemname"):
        found: Any = row.labels.get(short)
    elif short == "severity":
        found = Severity(row.severity).name
    else:
        found = _dig(row.data, name)
    if value.endswith("*"):
        return found is not None and str(found).lower().startswith(value[:-1])
    return found is not None and str(found).lower() == value


def window_filter(records: Iterable[LogRecord], start: datetime, end: datetime) -> list[LogRecord]:
    return [r for r in records if start <= r.timestamp < end]


DEFAULT_WINDOW = timedelta(minutes=15)
