"""How the grafana toolset asks Grafana for numbers: a dashboard panel's targets (or an ad hoc query)
with their data sources resolved and their variables substituted, as ``POST /api/ds/query`` queries on
a grid of at most ``MAX_POINTS`` steps, and the data frames of the answer summarised per series."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from incidentfox.agents.toolsets.grafana_api import GrafanaClient, GrafanaError
from incidentfox.agents.toolsets.grafana_views import (
    all_panels,
    datasource_ref,
    frame_series,
    interpolated,
    query_text,
    targets,
)
from incidentfox.agents.toolsets.prometheus_views import (
    Row,
    choose_step,
    format_duration,
    iso,
    parse_duration,
    range_data,
)

MAX_POINTS = 100
MAX_SERIES = 20
MAX_SHOWN_VALUES = 600
DEFAULT_SCRAPE_S = 15.0
QUERY_KEY_BY_TYPE = {
    "prometheus": "expr",
    "loki": "expr",
    "elasticsearch": "query",
    "influxdb": "query",
    "tempo": "query",
    "graphite": "target",
    "mysql": "rawSql",
    "postgres": "rawSql",
    "grafana-postgresql-datasource": "rawSql",
    "mssql": "rawSql",
}


def span(start: datetime, end: datetime) -> str:
    """``from <RFC3339> to <RFC3339>``, as invocations and reasons say it."""
    return f"from {iso(start)} to {iso(end)}"


def grid(start: datetime, end: datetime, min_step: float = 0) -> tuple[datetime, datetime, float, int]:
    """The window aligned to a step that gives at most ``MAX_POINTS`` points (and is no finer than the
    data source's minimum interval), as Grafana aligns it."""
    step = max(choose_step((end - start).total_seconds(), None, max_points=MAX_POINTS), min_step)
    first = math.floor(start.timestamp() / step) * step
    last = math.floor(end.timestamp() / step) * step
    count = math.floor((last - first) / step) + 1
    return datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC), step, count


def macros(start: datetime, end: datetime, step: float, scrape_s: float) -> dict[str, str]:
    """Grafana's global variables for a window and step; ``$__rate_interval`` is, as Grafana computes
    it, the larger of one step plus a scrape interval and four scrape intervals."""
    seconds = (end - start).total_seconds()
    return {
        "__interval": format_duration(step),
        "__interval_ms": str(int(step * 1000)),
        "__rate_interval": format_duration(max(step + scrape_s, 4 * scrape_s)),
        "__range": f"{int(seconds)}s",
        "__range_s": str(int(seconds)),
        "__range_ms": str(int(seconds * 1000)),
    }


async def known_datasources(client: GrafanaClient) -> list[Mapping[str, Any]] | None:
    """Grafana's data sources, or ``None`` when the token may query but not list them (403)."""
    try:
        found = await client.get("/api/datasources", doing="list data sources")
    except GrafanaError as exc:
        if exc.status == 403:
            return None
        raise
    return [d for d in found or [] if isinstance(d, Mapping)]


def resolve(ref: Mapping[str, Any], known: list[Mapping[str, Any]] | None) -> Mapping[str, Any] | None:
    """The data source a reference (uid, name, or none for the default) points to; the reference itself
    when the list could not be read."""
    wanted = ref.get("uid")
    if known is None:
        return {"uid": wanted, "type": ref.get("type")} if wanted else None
    for source in known:
        if wanted and wanted in (source.get("uid"), source.get("name")):
            return source
        if not wanted and source.get("isDefault"):
            return source
    return None


def series_data(
    results: Any, refs: list[str], start: datetime, step: float, count: int
) -> tuple[list[Row], int]:
    """Per query (refId): its series summarised; and how many series there were in all."""
    shown: list[Row] = []
    total = 0
    budget = MAX_SHOWN_VALUES // max(1, len(refs))
    for ref in refs:
        frames = ((results or {}).get(ref) or {}).get("frames") or []
        found = frame_series(frames)
        total += len(found)
        if found:
            data = range_data(found, start, step, count, max_series=MAX_SERIES, max_values=budget)
            shown.append({"refId": ref, **data})
    return shown, total


def find_panel(
    model: Mapping[str, Any], uid: str, panel_id: int | None, title: str | None
) -> Mapping[str, Any] | str:
    """The panel with ``panel_id`` (or whose title is or contains ``title``), or a plain reason listing the
    dashboard's panels."""
    panels = all_panels(model)
    if panel_id is not None:
        found = [p for p in panels if p.get("id") == panel_id]
    elif title:
        wanted = title.strip().lower()
        found = [p for p in panels if str(p.get("title") or "").lower() == wanted] or [
            p for p in panels if wanted in str(p.get("title") or "").lower()
        ]
    else:
        found = []
    if len(found) == 1:
        return found[0]
    listing = "; ".join(f"{p.get('id')}: {p.get('title')}" for p in panels[:20])
    asked = (
        "no panel_id or panel_title was given"
        if not found and panel_id is None and not title
        else ("several panels match" if found else "no panel matches")
    )
    return f"In dashboard {uid} {asked}; its panels are {listing or 'none'}."


def given_values(assignments: list[str] | None) -> dict[str, list[str]]:
    given: dict[str, list[str]] = {}
    for assignment in assignments or []:
        name, _, value = assignment.partition("=")
        given.setdefault(name.strip(), []).append(value.strip())
    return given


def shown_vars(values: Mapping[str, list[str]]) -> str:
    return ", ".join(f"{k}={'|'.join(v)}" for k, v in values.items()) or "no variables"


def scrape_s(source: Mapping[str, Any]) -> float | None:
    """The data source's minimum interval (its scrape interval for Prometheus), if it sets one."""
    return parse_duration(str((source.get("jsonData") or {}).get("timeInterval") or "")) or None


Sources = list[tuple[Mapping[str, Any], Mapping[str, Any]]]


def panel_sources(
    panel: Mapping[str, Any], values: Mapping[str, list[str]], known: list[Mapping[str, Any]] | None
) -> Sources | str:
    """Each of the panel's targets with the data source it runs on, or a plain reason why not."""
    found: Sources = []
    for target in targets(panel):
        ref = interpolated(
            datasource_ref(target.get("datasource") or panel.get("datasource")), values, {}, set()
        )
        source = resolve(ref, known)
        if source is None:
            name = ref.get("uid") or "the default data source"
            return f"Grafana has no data source {name} (used by this panel's query {target.get('refId')})."
        found.append((target, source))
    if not found:
        return f'Panel "{panel.get("title")}" has no queries to run (a text or row panel).'
    return found


def panel_queries(
    sources: Sources,
    values: Mapping[str, list[str]],
    start: datetime,
    end: datetime,
    step: float,
    count: int,
) -> tuple[list[Row], str, str | None]:
    """The ``/api/ds/query`` queries of a panel's targets, what they ask (for the invocation), and a
    plain reason when they cannot be run."""
    queries: list[Row] = []
    asked: list[str] = []
    for target, source in sources:
        unknown: set[str] = set()
        macro_values = macros(start, end, step, scrape_s(source) or DEFAULT_SCRAPE_S)
        query = interpolated(
            {k: v for k, v in target.items() if k != "datasource"}, values, macro_values, unknown
        )
        if unknown:
            names = ", ".join(f"${n}" for n in sorted(unknown))
            return (
                [],
                "",
                (
                    f"The panel's query uses {names}, which this dashboard does not define; pass it in "
                    "variables as name=value."
                ),
            )
        ref_id = str(query.get("refId") or chr(ord("A") + len(queries)))
        asked.append(f"{ref_id}: {query_text(query)}")
        queries.append(
            {
                **query,
                "refId": ref_id,
                "datasource": {"uid": source.get("uid"), "type": source.get("type")},
                "intervalMs": int(step * 1000),
                "maxDataPoints": count,
            }
        )
    return queries, "; ".join(asked), None


def adhoc_query(kind: str, text: str) -> Row:
    """The query Explore sends for ``text`` on a data source of type ``kind`` (a range query)."""
    query: Row = {"refId": "A", QUERY_KEY_BY_TYPE.get(kind, "query"): text}
    if kind == "prometheus":
        query.update(range=True, instant=False)
    if kind == "loki":
        query["queryType"] = "range"
    return query


def log_lines(results: Any) -> bool:
    """Whether an answer holds log lines (a Loki log query's ``log-lines`` frames) rather than numbers."""
    return any(
        ((frame.get("schema") or {}).get("meta") or {}).get("type") == "log-lines"
        for result in (results or {}).values()
        if isinstance(result, Mapping)
        for frame in result.get("frames") or []
        if isinstance(frame, Mapping)
    )
