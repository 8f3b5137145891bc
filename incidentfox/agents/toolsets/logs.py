"""The logs toolset: one ``fetch_logs`` tool over whichever log backends the team has, so the model can
read logs without learning LogQL, Lucene, DataPrime and Datadog's search syntax first.

``fetch_logs(source, query, service, start, end, limit)``:

- ``source`` names one backend (``loki``, ``elasticsearch``, ``coralogix``, ``datadog``); left out, every
  log backend the team configured is asked at once and the lines are merged newest first, each marked
  with its source. A backend that fails is reported beside the others' lines, never instead of them.
- ``query`` is words to find (``upstream timeout``) or, for one source, that backend's own language
  (a LogQL selector starting with ``{``, DataPrime starting with ``source``, Lucene or Datadog search),
  which is passed through unchanged.
- ``service`` narrows to one service through each backend's service field: the Loki label
  ``integrations.loki.service_label`` (default ``app``), ``service.name`` in Elasticsearch, the
  subsystem in Coralogix, ``service:`` in Datadog.

Each backend is reached through its own toolset's search (same client, errors, limits and links), and
its rows are reduced to one shape: ``time``, ``source``, ``service``, ``level``, ``message``. The
backend-specific tools stay available beside this one for what it cannot say (error summaries,
aggregations, label discovery).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from incidentfox.agents.toolsets import coralogix, datadog, datadog_logs, datadog_params, elasticsearch, loki
from incidentfox.agents.toolsets.base import ToolResult, Toolset, lookup_dotted
from incidentfox.agents.toolsets.coralogix_views import literal, scope_filter
from incidentfox.agents.toolsets.prometheus_views import Row, iso
from incidentfox.agents.toolsets.query_tools import (
    StrictParams,
    end_field,
    invalid_params,
    query_window,
    start_field,
    typed_tool,
)

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
SourceName = Literal["loki", "elasticsearch", "coralogix", "datadog"]
_PLAIN_WORDS = re.compile(r"[\w\s.,:/@-]+")


def _check_limit(value: int) -> int:
    if not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    return value


class FetchLogsParams(StrictParams):
    source: SourceName | None = Field(
        default=None,
        description="One log backend of the team; null asks every log backend it has and merges the lines.",
    )
    query: str | None = Field(
        default=None,
        max_length=1500,
        description="Words to find, e.g. upstream timeout; or, with a source, its own query language (LogQL "
        '{app="checkout"} |= "timeout", DataPrime source logs | filter ..., Lucene). Null for every line.',
    )
    service: str | None = Field(
        default=None, max_length=200, description="Only this service's logs, e.g. checkout; null for all."
    )
    start: str | None = start_field()
    end: str | None = end_field()
    limit: Annotated[int, AfterValidator(_check_limit)] = Field(
        default=DEFAULT_LIMIT, description=f"Most lines to return, 1 to {MAX_LIMIT}, newest first."
    )


@dataclass(frozen=True, slots=True)
class Search:
    """What the model asked, in the window the tool settled on."""

    query: str | None
    service: str | None
    start: datetime
    end: datetime
    limit: int

    @property
    def words(self) -> str | None:
        text = (self.query or "").strip()
        return text or None


Fetch = Callable[[Any, Search, Mapping[str, Any]], Awaitable[ToolResult]]


@dataclass(frozen=True, slots=True)
class LogSource:
    """One log backend: its toolset (for its client and whether the team has it), how to ask it, and
    how to read its rows."""

    name: SourceName
    toolset: Toolset
    fetch: Fetch
    rows_key: str
    row: Callable[[Mapping[str, Any]], Row]


def _loki_query(search: Search, config: Mapping[str, Any]) -> str:
    words = search.words
    if words and words.startswith("{"):
        return words
    label = lookup_dotted(config, "integrations.loki.service_label") or "app"
    selector = f'{{{label}="{_escaped(search.service)}"}}' if search.service else f'{{{label}=~".+"}}'
    return f'{selector} |= "{_escaped(words)}"' if words else selector


def _escaped(text: str | None) -> str:
    return (text or "").replace("\\", "\\\\").replace('"', '\\"')


async def _fetch_loki(client: Any, search: Search, config: Mapping[str, Any]) -> ToolResult:
    params = loki.QueryParams(
        query=_loki_query(search, config), start=iso(search.start), end=iso(search.end), limit=search.limit
    )
    return await loki.query(client, params)


def _lucene(search: Search) -> str:
    words = search.words
    parts = []
    if search.service:
        parts.append(f'service.name:"{_escaped(search.service)}"')
    if words:
        plain = _PLAIN_WORDS.fullmatch(words) and ":" not in words
        parts.append(f'"{_escaped(words)}"' if plain else f"({words})")
    return " AND ".join(parts) or "*"


async def _fetch_elasticsearch(client: Any, search: Search, config: Mapping[str, Any]) -> ToolResult:
    params = elasticsearch.SearchParams(
        query=_lucene(search), start=iso(search.start), end=iso(search.end), limit=min(search.limit, 500)
    )
    return await elasticsearch.search(client, params)


def _dataprime(search: Search) -> str:
    words = search.words
    if words and words.lower().startswith("source "):
        return words
    conditions = [c for c in (scope_filter(None, search.service),) if c]
    if words:
        conditions.append(f"$d ~~ {literal(words)}")
    return "source logs" + (f" | filter {' && '.join(conditions)}" if conditions else "")


async def _fetch_coralogix(client: Any, search: Search, config: Mapping[str, Any]) -> ToolResult:
    return await coralogix.fetch_log_lines(client, _dataprime(search), search.start, search.end, search.limit)


def _datadog_query(search: Search) -> str:
    words = search.words
    parts = [f"service:{search.service}"] if search.service else []
    if words:
        plain = _PLAIN_WORDS.fullmatch(words) and ":" not in words
        parts.append(f'"{_escaped(words)}"' if plain else words)
    return " ".join(parts) or "*"


async def _fetch_datadog(client: Any, search: Search, config: Mapping[str, Any]) -> ToolResult:
    params = datadog_params.LogsSearchParams(
        query=_datadog_query(search),
        start=iso(search.start),
        end=iso(search.end),
        limit=min(search.limit, datadog_params.MAX_LOGS),
    )
    return await datadog_logs.logs_search(client, params)


def _loki_row(row: Mapping[str, Any]) -> Row:
    stream = str(row.get("stream") or "")
    labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', stream))
    service = labels.get("app") or labels.get("service") or labels.get("service_name") or labels.get("job")
    return {
        "time": row.get("time"),
        "service": service,
        "level": labels.get("level"),
        "message": row.get("line"),
        "where": stream,
    }


def _renamed(**fields: str) -> Callable[[Mapping[str, Any]], Row]:
    """A row reader taking each common field (``time=...``) from the backend's own field name."""

    def row(found: Mapping[str, Any]) -> Row:
        return {common: found.get(own) for common, own in fields.items()}

    return row


_COMMON = {"time": "time", "service": "service", "level": "level", "message": "message"}


SOURCES: tuple[LogSource, ...] = (
    LogSource("loki", loki.LOKI, _fetch_loki, "entries", _loki_row),
    LogSource(
        "elasticsearch",
        elasticsearch.ELASTICSEARCH,
        _fetch_elasticsearch,
        "hits",
        _renamed(**{**_COMMON, "time": "timestamp", "where": "index"}),
    ),
    LogSource(
        "coralogix",
        coralogix.CORALOGIX,
        _fetch_coralogix,
        "entries",
        _renamed(**_COMMON, where="application"),
    ),
    LogSource(
        "datadog",
        datadog.DATADOG,
        _fetch_datadog,
        "entries",
        _renamed(**{**_COMMON, "level": "status", "where": "host"}),
    ),
)


def configured_sources(config: Mapping[str, Any]) -> list[LogSource]:
    """The log backends the team has: prerequisites present and not turned off."""
    return [
        source
        for source in SOURCES
        if lookup_dotted(config, f"integrations.{source.toolset.name}.enabled") is not False
        and not source.toolset.missing_prerequisites(config)
    ]


class LogSources:
    """The run's clients of the team's log backends, connected on first use and closed with the run."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.sources = configured_sources(config)
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def client(self, source: LogSource) -> Any:
        async with self._lock:
            if source.name not in self._clients:
                self._clients[source.name] = await source.toolset.connect(self.config)
            return self._clients[source.name]

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


async def connect(config: Mapping[str, Any]) -> LogSources:
    sources = LogSources(config)
    if not sources.sources:
        names = ", ".join(f"integrations.{s.toolset.name}" for s in SOURCES)
        raise ValueError(f"no log backend is configured for this team (set one of {names})")
    return sources


async def _ask(sources: LogSources, source: LogSource, search: Search) -> ToolResult:
    try:
        client = await sources.client(source)
    except Exception as exc:
        return ToolResult.failed(f"{source.name} is not available: {exc}")
    return await source.fetch(client, search, sources.config)


def _merged(
    asked: Sequence[tuple[LogSource, ToolResult]], search: Search
) -> tuple[list[Row], Row, list[str]]:
    rows: list[Row] = []
    per_source: Row = {}
    for source, result in asked:
        if result.status == "ok" and isinstance(result.data, Mapping):
            found = [
                {"source": source.name, **source.row(r)}
                for r in result.data.get(source.rows_key) or []
                if isinstance(r, Mapping)
            ]
            rows.extend(found)
            per_source[source.name] = len(found)
        elif result.status == "no_data":
            per_source[source.name] = 0
        else:
            per_source[source.name] = f"failed: {result.error}"
    rows.sort(key=lambda r: _instant(r.get("time")), reverse=True)
    links = [f"{source.name}: {result.url}" for source, result in asked if result.url]
    return rows[: search.limit], per_source, links


def _instant(value: Any) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


async def fetch_logs(sources: LogSources, params: FetchLogsParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    search = Search(params.query, params.service, start, end, params.limit)
    chosen = sources.sources
    if params.source is not None:
        chosen = [s for s in sources.sources if s.name == params.source]
        if not chosen:
            have = ", ".join(s.name for s in sources.sources)
            return ToolResult.failed(f"{params.source} is not configured for this team; it has: {have}.")
    elif search.words and search.words.startswith(("{", "source ")) and len(chosen) > 1:
        return ToolResult.failed(
            "That looks like one backend's own query language: name its source, or give plain words."
        )
    results = await asyncio.gather(*(_ask(sources, s, search) for s in chosen))
    asked = list(zip(chosen, results, strict=True))
    invocation = "; ".join(f"{s.name}: {r.invocation}" for s, r in asked if r.invocation)
    if len(asked) == 1 and asked[0][1].status != "ok":
        return asked[0][1]
    rows, per_source, links = _merged(asked, search)
    if not rows:
        if all(r.status == "error" for _, r in asked):
            reasons = "; ".join(f"{s.name}: {r.error}" for s, r in asked)
            return ToolResult.failed(f"No log backend answered. {reasons}", invocation=invocation)
        return ToolResult.no_data(
            f"No log lines matched from {iso(start)} to {iso(end)} in {', '.join(per_source)} "
            f"({_describe(search)}). Check the service name or widen the window.",
            invocation=invocation,
        )
    data: Row = {
        "start": iso(start),
        "end": iso(end),
        "order": "newest first",
        "lines_by_source": per_source,
        "lines": rows,
    }
    if links:
        data["links"] = links
    return ToolResult.ok(data, invocation=invocation, url=asked[0][1].url if len(asked) == 1 else None)


def _describe(search: Search) -> str:
    parts = [f"query {search.words!r}" if search.words else "every line"]
    if search.service:
        parts.append(f"service {search.service}")
    return ", ".join(parts)


INSTRUCTIONS = """You can read logs with fetch_logs without knowing the backend: give the service and a
short window around the incident (15-60 minutes) and, optionally, words to find (timeout, "connection
refused", OOM). Leave source empty to search every log backend of the team at once; each line says its
source, time, service and level. Quote evidence as the exact line with its time and source. For error
counts, top messages, label or field discovery and aggregations, use the backend's own tools."""

LOGS = Toolset(
    name="logs",
    description="One log search over every log backend the team has (Loki, Elasticsearch, Coralogix, "
    "Datadog).",
    instructions=INSTRUCTIONS,
    connect=connect,
    tools=(
        typed_tool(
            "fetch_logs",
            "Log lines of a service over a window (default the last hour) matching words or a backend's "
            "own query, from one log backend or all of them merged newest first, each with time, source, "
            "service, level and message.",
            FetchLogsParams,
            fetch_logs,
        ),
    ),
)
