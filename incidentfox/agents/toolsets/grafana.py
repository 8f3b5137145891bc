"""The grafana toolset: dashboards and their panels run over a window, ad hoc queries through Grafana's
data sources, annotations (deploy markers), data sources and Grafana-managed alerts that are firing.

Every tool takes the run's ``GrafanaClient`` (``grafana_api.connect``) and returns a compact
``ToolResult`` (rows from ``grafana_views``). A panel is run as Grafana runs it (``grafana_queries``):
its visible queries with the dashboard's template variables substituted (``$var``, ``${var}``,
``[[var]]``, ``$__interval``, ``$__rate_interval``, ``$__range``) and sent to ``POST /api/ds/query``;
the data frames that come back are summarised per series as the prometheus toolset summarises a range
query. A token that may query but not list data sources (a Viewer's) still runs panels. Tool names start with
``grafana_``; results link back to the dashboard, panel or Explore. Failures are one plain sentence
(``GrafanaError``), with the data source's own message for a query it rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from incidentfox.agents.toolsets.base import ToolResult, Toolset, ToolsetHealth
from incidentfox.agents.toolsets.grafana_api import GrafanaClient, GrafanaError, check_health, connect
from incidentfox.agents.toolsets.grafana_queries import (
    DEFAULT_SCRAPE_S,
    adhoc_query,
    find_panel,
    given_values,
    grid,
    known_datasources,
    log_lines,
    macros,
    panel_queries,
    panel_sources,
    resolve,
    scrape_s,
    series_data,
    shown_vars,
    span,
)
from incidentfox.agents.toolsets.grafana_views import (
    alert_row,
    all_panels,
    annotations_data,
    dashboard_url,
    datasource_row,
    explore_url,
    interpolated,
    ms,
    panel_row,
    search_rows,
    variable_rows,
    variable_values,
)
from incidentfox.agents.toolsets.prometheus_views import (
    Row,
    capped,
    format_duration,
    iso,
)
from incidentfox.agents.toolsets.query_tools import (
    StrictParams,
    checked_query,
    end_field,
    invalid_params,
    query_window,
    start_field,
    typed_tool,
)

MAX_PANELS = 60
MAX_ROWS = 50
HEALTH_TIMEOUT_S = 5.0
QUERY_PATH = "/api/ds/query"
ALERTS_PATH = "/api/alertmanager/grafana/api/v2/alerts"
UID_PATTERN = r"^[A-Za-z0-9_-]+$"
"""Grafana's uids are letters, digits, ``-`` and ``_``; checked because a uid becomes part of a path."""


def _check_assignments(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        name, sep, _ = value.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"give variables as name=value, e.g. namespace=prod (not {value!r})")
    return values


def _check_limit(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 500:
        raise ValueError("limit must be between 1 and 500")
    return value


Query = Annotated[str, AfterValidator(checked_query)]
Assignments = Annotated[list[str] | None, AfterValidator(_check_assignments)]
Limit = Annotated[int | None, AfterValidator(_check_limit)]


class SearchParams(StrictParams):
    query: str | None = Field(
        default=None, description="Words in the dashboard title, e.g. checkout; null for all."
    )
    tag: str | None = Field(default=None, description="Only dashboards with this tag; null for any.")
    limit: Limit = Field(default=None, description=f"Most dashboards to list, 1 to 500; null for {MAX_ROWS}.")


class DashboardParams(StrictParams):
    uid: str = Field(pattern=UID_PATTERN, description="The dashboard's uid, from grafana_search_dashboards.")


class PanelQueryParams(StrictParams):
    dashboard_uid: str = Field(pattern=UID_PATTERN, description="The dashboard's uid.")
    panel_id: int | None = Field(default=None, description="The panel's id, from grafana_dashboard.")
    panel_title: str | None = Field(default=None, description="Or the panel's title, when no id is given.")
    variables: Assignments = Field(
        default=None,
        description="Template variable values as name=value (repeat a name for several values), e.g. "
        "['namespace=prod', 'service=checkout']; null keeps the dashboard's current values.",
    )
    start: str | None = start_field()
    end: str | None = end_field()


class DatasourceQueryParams(StrictParams):
    datasource: str = Field(description="The data source's name or uid, from grafana_datasources.")
    query: Query = Field(
        description="The query in the data source's language: PromQL for Prometheus "
        '(sum(rate(http_requests_total{code=~"5.."}[5m]))), a LogQL metric query for Loki '
        '(sum(count_over_time({app="checkout"} |= "error" [5m])))'
    )
    start: str | None = start_field()
    end: str | None = end_field()


class AnnotationsParams(StrictParams):
    tags: list[str] | None = Field(
        default=None, description="Only annotations with all these tags, e.g. ['deploy']; null for any."
    )
    dashboard_uid: str | None = Field(
        default=None, pattern=UID_PATTERN, description="Only this dashboard's annotations."
    )
    start: str | None = start_field()
    end: str | None = end_field()
    limit: Limit = Field(default=None, description="Most annotations, 1 to 500; null for 100.")


class NoParams(StrictParams):
    pass


class FiringAlertsParams(StrictParams):
    matchers: list[str] | None = Field(
        default=None,
        description="Only alerts whose labels match all of these, e.g. ['service=\"checkout\"']; "
        "null for all.",
    )


async def search_dashboards(client: GrafanaClient, params: SearchParams) -> ToolResult:
    limit = params.limit or MAX_ROWS
    request: Row = {"type": "dash-db", "limit": limit}
    if params.query:
        request["query"] = params.query
    if params.tag:
        request["tag"] = params.tag
    words = " ".join(f"{k}={v}" for k, v in request.items() if k in ("query", "tag"))
    invocation = f"GET /api/search?type=dash-db {words}".strip()
    try:
        found = await client.get("/api/search", request, doing="search dashboards")
    except GrafanaError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    rows = search_rows(found, client.url)
    if not rows:
        return ToolResult.no_data(
            f"No dashboard matches {words or 'anything'}; try fewer words or no tag.", invocation=invocation
        )
    data: Row = {"count": len(rows)}
    if len(rows) >= limit:
        data["note"] = f"Stopped at the limit of {limit}; narrow with query or tag."
    return ToolResult.ok(
        capped(data, "dashboards", rows, limit, "narrow with query or tag"), invocation=invocation
    )


async def _dashboard(client: GrafanaClient, uid: str) -> Mapping[str, Any]:
    try:
        found = await client.get(f"/api/dashboards/uid/{uid}", doing=f"read dashboard {uid}")
    except GrafanaError as exc:
        if exc.status == 404:
            raise GrafanaError(
                f"Grafana has no dashboard with uid {uid} (404 {exc.detail or 'Dashboard not found'}); find "
                "the uid with grafana_search_dashboards.",
                404,
            ) from exc
        raise
    return found if isinstance(found, Mapping) else {}


async def dashboard(client: GrafanaClient, params: DashboardParams) -> ToolResult:
    invocation = f"GET /api/dashboards/uid/{params.uid}"
    try:
        found = await _dashboard(client, params.uid)
    except GrafanaError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    model = found.get("dashboard") or {}
    meta = found.get("meta") or {}
    panels = [panel_row(p) for p in all_panels(model)]
    data: Row = {
        "title": model.get("title"),
        "uid": model.get("uid") or params.uid,
        "folder": meta.get("folderTitle") or "General",
        "tags": list(model.get("tags") or []),
        "default_time": model.get("time"),
        "variables": variable_rows(model),
        "panel_count": len(panels),
    }
    data = capped(data, "panels", panels, MAX_PANELS, "run one with grafana_panel_query by its id")
    url = f"{client.url}{meta['url']}" if meta.get("url") else dashboard_url(client.url, params.uid)
    return ToolResult.ok(data, invocation=invocation, url=url)


async def panel_query(client: GrafanaClient, params: PanelQueryParams) -> ToolResult:
    try:
        window = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    invocation = (
        f"panel {params.panel_id or params.panel_title} of dashboard {params.dashboard_uid} {span(*window)}"
    )
    try:
        found = await _dashboard(client, params.dashboard_uid)
        model = found.get("dashboard") or {}
        panel = find_panel(model, params.dashboard_uid, params.panel_id, params.panel_title)
        if isinstance(panel, str):
            return ToolResult.failed(panel, invocation=invocation)
        values = variable_values(model, given_values(params.variables))
        sources = panel_sources(panel, values, await known_datasources(client))
        if isinstance(sources, str):
            return ToolResult.failed(sources, invocation=invocation)
        start, end, step, count = grid(*window, max((scrape_s(s) or 0 for _, s in sources), default=0))
        queries, shown, problem = panel_queries(sources, values, start, end, step, count)
        invocation = (
            f'panel {panel.get("id")} "{panel.get("title")}" of dashboard {params.dashboard_uid} '
            f"{span(start, end)} step {format_duration(step)}: {shown}"
        )
        if problem:
            return ToolResult.failed(problem, invocation=invocation)
        body = {"from": str(ms(start)), "to": str(ms(end)), "queries": queries}
        answer = await client.post(QUERY_PATH, body, doing="run the panel's queries")
    except GrafanaError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    refs = [str(q["refId"]) for q in queries]
    series, total = series_data((answer or {}).get("results"), refs, start, step, count)
    if not total:
        return ToolResult.no_data(
            f'Panel "{panel.get("title")}" returned no series {span(start, end)} with '
            f"{shown_vars(values)}: check the variable values (grafana_dashboard lists them) or widen "
            "the window.",
            invocation=invocation,
        )
    dashboard_vars = {v["name"]: values.get(v["name"], []) for v in variable_rows(model)}
    url = dashboard_url(
        client.url,
        params.dashboard_uid,
        start=start,
        end=end,
        panel_id=panel.get("id"),
        variables=dashboard_vars,
    )
    data: Row = {"panel": panel.get("title"), "variables": dashboard_vars, "queries": series}
    return ToolResult.ok(data, invocation=invocation, url=url)


async def query_datasource(client: GrafanaClient, params: DatasourceQueryParams) -> ToolResult:
    try:
        window = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    invocation = f"{params.datasource} {span(*window)}: {params.query}"
    try:
        source = resolve({"uid": params.datasource}, await known_datasources(client))
        if source is None:
            return ToolResult.failed(
                f"Grafana has no data source named or with uid {params.datasource}; list them with "
                "grafana_datasources.",
                invocation=invocation,
            )
        kind = str(source.get("type") or "")
        start, end, step, count = grid(*window, scrape_s(source) or 0)
        invocation = f"{params.datasource} {span(start, end)} step {format_duration(step)}: {params.query}"
        macro_values = macros(start, end, step, scrape_s(source) or DEFAULT_SCRAPE_S)
        text = interpolated(params.query, {}, macro_values, set())
        query = adhoc_query(kind, text)
        ref = {"uid": source.get("uid"), "type": kind}
        body = {
            "from": str(ms(start)),
            "to": str(ms(end)),
            "queries": [{**query, "datasource": ref, "intervalMs": int(step * 1000), "maxDataPoints": count}],
        }
        answer = await client.post(
            QUERY_PATH, body, doing=f"run the query on {source.get('name') or params.datasource}"
        )
    except GrafanaError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    results = (answer or {}).get("results")
    series, total = series_data(results, ["A"], start, step, count)
    if not total and log_lines(results):
        return ToolResult.no_data(
            "This is a log query: Grafana answered with log lines, which this tool does not show. Count "
            'them with a metric query such as sum(count_over_time({app="checkout"} |= "error" [5m])), or '
            "read the lines with the loki toolset.",
            invocation=invocation,
        )
    if not total:
        return ToolResult.no_data(
            f"The query returned no series {span(start, end)}; a selector that matches nothing is not an "
            "error: check metric and label names.",
            invocation=invocation,
        )
    url = explore_url(client.url, ref, query, start, end)
    return ToolResult.ok(
        {"datasource": source.get("name") or params.datasource, **series[0]}, invocation=invocation, url=url
    )


async def list_annotations(client: GrafanaClient, params: AnnotationsParams) -> ToolResult:
    try:
        start, end = query_window(params.start, params.end)
    except ValueError as exc:
        return invalid_params(exc)
    limit = params.limit or 100
    request: list[tuple[str, str]] = [
        ("from", str(ms(start))),
        ("to", str(ms(end))),
        ("type", "annotation"),
        ("limit", str(limit)),
    ]
    request += [("tags", t) for t in params.tags or []]
    if params.dashboard_uid:
        request.append(("dashboardUID", params.dashboard_uid))
    where = " ".join(f"{k}={v}" for k, v in request if k in ("tags", "dashboardUID"))
    invocation = f"annotations {span(start, end)} {where}".strip()
    try:
        found = await client.get("/api/annotations", request, doing="list annotations")
    except GrafanaError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    if not found:
        return ToolResult.no_data(
            " ".join(f"No annotations {span(start, end)} {where}".split())
            + "; deploys may be marked with other tags, or not at all.",
            invocation=invocation,
        )
    data = annotations_data(found, limit=limit, cap=MAX_ROWS)
    return ToolResult.ok({"start": iso(start), "end": iso(end), **data}, invocation=invocation)


async def datasources(client: GrafanaClient, params: NoParams) -> ToolResult:
    invocation = "GET /api/datasources"
    try:
        found = await client.get("/api/datasources", doing="list data sources")
    except GrafanaError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    rows = [datasource_row(d) for d in found or [] if isinstance(d, Mapping)]
    if not rows:
        return ToolResult.no_data("Grafana has no data sources.", invocation=invocation)
    data = capped({"count": len(rows)}, "datasources", rows, MAX_ROWS * 2, "query one by name")
    return ToolResult.ok(data, invocation=invocation, url=f"{client.url}/connections/datasources")


async def firing_alerts(client: GrafanaClient, params: FiringAlertsParams) -> ToolResult:
    request = [("active", "true"), ("silenced", "false"), ("inhibited", "false")]
    request += [("filter", m) for m in params.matchers or []]
    where = f" matching {', '.join(params.matchers)}" if params.matchers else ""
    invocation = f"Grafana-managed alerts firing{where}"
    try:
        found = await client.get(ALERTS_PATH, request, doing="list firing alerts")
    except GrafanaError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    rows = [alert_row(a, client.url) for a in found or [] if isinstance(a, Mapping)]
    if not rows:
        return ToolResult.no_data(
            f"No Grafana-managed alert is firing{where} (silenced and inhibited ones are left out; alerts of "
            "a Prometheus Alertmanager are not listed here).",
            invocation=invocation,
        )
    rows.sort(key=lambda r: str(r["starts_at"] or ""))
    data = capped({"count": len(rows)}, "alerts", rows, MAX_ROWS, "narrow with matchers")
    return ToolResult.ok(data, invocation=invocation, url=f"{client.url}/alerting/list")


async def health(config: Mapping[str, Any]) -> ToolsetHealth:
    return await check_health(config, timeout_s=HEALTH_TIMEOUT_S)


INSTRUCTIONS = """You read the team's Grafana: dashboards, their panels' data, annotations and
Grafana-managed alerts. Start with grafana_firing_alerts and grafana_annotations (tags ['deploy'])
over the incident window: a deploy just before a spike is a strong lead. Find the service's dashboard
with grafana_search_dashboards, read its panels and variables with grafana_dashboard, then run the
panels that matter (error rate, latency, saturation) with grafana_panel_query, setting variables such
as namespace=prod and service=checkout; compare with a window before the incident. For a question no
panel answers, use grafana_query_datasource with PromQL or LogQL on a data source from
grafana_datasources. Times are RFC3339, unix seconds, now, or relative like -30m. As evidence, quote
the series with its values and times, and give the url. An empty result means nothing matched, not
that all is well: check the variable values."""

GRAFANA = Toolset(
    name="grafana",
    description="Grafana: dashboards and their panels' data, ad hoc queries through its data sources, "
    "annotations such as deploy markers, and Grafana-managed alerts that are firing.",
    instructions=INSTRUCTIONS,
    connect=connect,
    prerequisites=("integrations.grafana.url",),
    health_check=health,
    tools=(
        typed_tool(
            "grafana_firing_alerts",
            "Grafana-managed alerts firing now (not silenced), oldest first: name, labels, summary, since "
            "when, and the dashboard panel they watch.",
            FiringAlertsParams,
            firing_alerts,
        ),
        typed_tool(
            "grafana_annotations",
            "Annotations over a window (default the last hour), newest first: deploy markers and notes "
            "with their time, text and tags.",
            AnnotationsParams,
            list_annotations,
        ),
        typed_tool(
            "grafana_search_dashboards",
            "Find dashboards by title words or tag: title, uid, folder, tags and link.",
            SearchParams,
            search_dashboards,
        ),
        typed_tool(
            "grafana_dashboard",
            "One dashboard's panels (id, title, type, data source, queries) and template variables with "
            "their current values.",
            DashboardParams,
            dashboard,
        ),
        typed_tool(
            "grafana_panel_query",
            "Run one dashboard panel's queries over a window with the dashboard's variables (or those "
            "given): per series min/max/avg/last and its values.",
            PanelQueryParams,
            panel_query,
        ),
        typed_tool(
            "grafana_query_datasource",
            "Run an ad hoc PromQL or LogQL metric query on a Grafana data source over a window: per "
            "series min/max/avg/last and its values.",
            DatasourceQueryParams,
            query_datasource,
        ),
        typed_tool(
            "grafana_datasources",
            "List Grafana's data sources: name, uid, type and URL.",
            NoParams,
            datasources,
        ),
    ),
)
