"""The grafana toolset against the Grafana emulator holding a checkout incident twenty minutes old
(checkout v2.3.1 deployed, its 5xx rate forty times higher since, an alert firing): what each tool
reports, how a dashboard panel is run with its variables substituted, and how it fails, in one
sentence, with Grafana's or the data source's own message."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from agents.tool_context import ToolContext

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.toolsets import grafana as gf
from incidentfox.agents.toolsets.base import ToolResult, ToolsetHealth
from incidentfox.agents.toolsets.function_tools import close_clients, toolset_function_tools
from incidentfox.agents.toolsets.grafana_api import GrafanaClient, GrafanaNotConfigured, connect
from incidentfox.agents.toolsets.grafana_queries import MAX_SHOWN_VALUES
from incidentfox.agents.toolsets.grafana_views import interpolate
from incidentfox.agents.toolsets.loki import LOKI
from incidentfox.agents.toolsets.prometheus import PROMETHEUS
from incidentfox.emulators.grafana import DEFAULT_TOKEN, GrafanaEmulator
from incidentfox.emulators.grafana_seed import CHECKOUT_UID, PROMETHEUS_UID
from tests.toolset_calls import run_once, run_tool

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
DEPLOY = NOW - timedelta(minutes=20)
VIEWER = "glsa_viewer_token_0000"


def _at(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


WINDOW = {"start": _at(NOW - timedelta(hours=1)), "end": _at(NOW)}


@pytest.fixture
async def grafana() -> AsyncIterator[GrafanaEmulator]:
    async with GrafanaEmulator(now=NOW, viewer_token=VIEWER) as emulator:
        yield emulator


@pytest.fixture
async def client(grafana: GrafanaEmulator) -> AsyncIterator[GrafanaClient]:
    connected = await connect({"integrations": {"grafana": grafana.integration_config()}})
    yield connected
    await connected.close()


def _config(url: str, **settings: Any) -> dict[str, Any]:
    return {"integrations": {"grafana": {"url": url, **settings}}}


async def _run(client: GrafanaClient, name: str, /, **args: Any) -> ToolResult:
    return await run_tool(gf.GRAFANA, client, name, **args)


async def _once(config: dict[str, Any], name: str, /, **args: Any) -> ToolResult:
    return await run_once(gf.GRAFANA, connect, config, name, **args)


def _series(result: ToolResult, ref: str = "A") -> dict[str, dict[str, Any]]:
    queries = result.data.get("queries", [result.data])
    [query] = [q for q in queries if q.get("refId", "A") == ref]
    return {s["series"]: s for s in query["series"]}


def _posted(grafana: GrafanaEmulator) -> list[dict[str, Any]]:
    return [c.body for c in grafana.calls if c.path == "/api/ds/query"]


async def test_firing_alerts_name_the_checkout_alert_and_the_panel_it_watches(client: GrafanaClient) -> None:
    result = await _run(client, "grafana_firing_alerts")
    assert result.status == "ok", result
    [alert] = result.data["alerts"]
    assert alert["alertname"] == "CheckoutHigh5xxRate", "the silenced cart alert is left out"
    assert alert["labels"] == {
        "grafana_folder": "Services",
        "namespace": "prod",
        "service": "checkout",
        "severity": "critical",
    }, "Grafana's internal __x__ labels are dropped"
    assert alert["annotations"] == {"summary": "checkout 5xx rate above 1 req/s"}
    assert (alert["dashboard_uid"], alert["panel_id"]) == (CHECKOUT_UID, "2")
    assert alert["starts_at"].startswith(_at(DEPLOY + timedelta(minutes=5))[:-1])
    assert alert["generator_url"] == f"{client.url}/alerting/grafana/rule-CheckoutHigh5xxRate/view?orgId=1"
    none = await _run(client, "grafana_firing_alerts", matchers=['service="cart"'])
    assert none.status == "no_data" and 'matching service="cart"' in none.data


async def test_annotations_show_the_deploy_marker(client: GrafanaClient) -> None:
    result = await _run(client, "grafana_annotations", tags=["deploy"], **WINDOW)
    assert result.status == "ok", result
    [deploy] = result.data["annotations"]
    assert deploy == {
        "time": _at(DEPLOY),
        "text": "Deployed checkout v2.3.1 (image ghcr.io/acme/checkout:2.3.1)",
        "tags": ["deploy", "checkout", "prod"],
        "by": "ci-bot",
    }
    assert "tags=deploy" in result.invocation
    earlier = await _run(
        client, "grafana_annotations", tags=["deploy"], start="-6h", end=_at(DEPLOY - timedelta(minutes=1))
    )
    assert earlier.status == "no_data" and "No annotations from " in earlier.data
    newest = await _run(client, "grafana_annotations", start="-6h", limit=1)
    assert [a["text"] for a in newest.data["annotations"]] == [deploy["text"]]
    assert newest.data["note"].startswith("Stopped at the limit of 1;")


async def test_dashboards_are_found_and_read_with_panels_and_variables(client: GrafanaClient) -> None:
    found = await _run(client, "grafana_search_dashboards", query="checkout")
    assert found.data["dashboards"] == [
        {
            "title": "Checkout",
            "uid": CHECKOUT_UID,
            "folder": "Services",
            "tags": ["checkout", "prod", "slo"],
            "url": f"{client.url}/d/checkout-overview/checkout",
        }
    ]
    tagged = await _run(client, "grafana_search_dashboards", tag="payments")
    assert [d["uid"] for d in tagged.data["dashboards"]] == ["payments-api"]
    assert (await _run(client, "grafana_search_dashboards", query="billing")).status == "no_data"
    result = await _run(client, "grafana_dashboard", uid=CHECKOUT_UID)
    assert result.status == "ok" and result.url == f"{client.url}/d/checkout-overview/checkout"
    panels = {p["id"]: p for p in result.data["panels"]}
    assert set(panels) == {2, 3, 7, 4, 6}, "rows are not panels; a collapsed row's panels are"
    assert [q["refId"] for q in panels[7]["queries"]] == ["A", "B"], "a hidden query is not shown"
    assert panels[2]["title"] == "5xx rate" and panels[2]["datasource"] == "${datasource}"
    assert "http_requests_total" in panels[2]["queries"][0]["query"]
    assert panels[6]["datasource"] == "loki-main" and panels[4]["queries"] == []
    variables = {v["name"]: v for v in result.data["variables"]}
    assert variables["namespace"]["current"] == ["prod"]
    assert variables["service"]["current"] == ["checkout"] and variables["service"]["multi"] is True
    missing = await _run(client, "grafana_dashboard", uid="nope")
    assert missing.error == (
        "Grafana has no dashboard with uid nope (404 Dashboard not found); find the uid with "
        "grafana_search_dashboards."
    )


async def test_a_panel_runs_with_the_dashboard_variables_and_shows_the_spike(
    grafana: GrafanaEmulator, client: GrafanaClient
) -> None:
    result = await _run(client, "grafana_panel_query", dashboard_uid=CHECKOUT_UID, panel_id=2, **WINDOW)
    assert result.status == "ok", result
    expr = (
        'sum by (service) (rate(http_requests_total{namespace="prod",service=~"checkout",code=~"5.."}'
        "[1m15s]))"
    )
    assert result.invocation.endswith(f"step 1m: A: {expr}")
    assert result.data["variables"] == {
        "datasource": [PROMETHEUS_UID],
        "namespace": ["prod"],
        "service": ["checkout"],
    }
    checkout = _series(result)['{service="checkout"}']
    assert checkout["first"] < 0.25 and checkout["max"] > 7 and checkout["last"] > 7
    assert checkout["samples"] == 61 and len(checkout["values"]) == 61
    [body] = _posted(grafana)
    [query] = body["queries"]
    assert query["expr"] == expr and query["intervalMs"] == 60_000 and query["maxDataPoints"] == 61
    assert query["datasource"] == {"uid": PROMETHEUS_UID, "type": "prometheus"}, "${datasource} resolved"
    assert int(body["to"]) - int(body["from"]) == 3_600_000
    assert result.url is not None
    link = parse_qs(urlsplit(result.url).query)
    assert urlsplit(result.url).path == f"/d/{CHECKOUT_UID}" and link["viewPanel"] == ["2"]
    assert link["var-namespace"] == ["prod"] and link["from"] == [body["from"]]


async def test_given_variables_override_and_all_means_every_option(
    grafana: GrafanaEmulator, client: GrafanaClient
) -> None:
    latency = await _run(
        client,
        "grafana_panel_query",
        dashboard_uid=CHECKOUT_UID,
        panel_title="P99",
        variables=["service=checkout", "service=cart"],
        **WINDOW,
    )
    assert latency.status == "ok", latency
    assert 'namespace="prod",service=~"(checkout|cart)"}[1m]' in _posted(grafana)[-1]["queries"][0]["expr"]
    by_service = _series(latency)
    assert by_service['{service="checkout"}']["max"] > 1.2 and by_service['{service="cart"}']["max"] < 0.3
    every = await _run(
        client, "grafana_panel_query", dashboard_uid=CHECKOUT_UID, panel_id=2, variables=["service=$__all"]
    )
    assert set(_series(every)) == {'{service="checkout"}', '{service="cart"}', '{service="payments"}'}
    assert 'service=~"(checkout|cart|payments)"' in every.invocation
    staging = await _run(
        client, "grafana_panel_query", dashboard_uid=CHECKOUT_UID, panel_id=3, variables=["namespace=staging"]
    )
    assert _series(staging)['{service="checkout"}']["max"] < 0.3, "the incident is in prod only"
    both = await _run(client, "grafana_panel_query", dashboard_uid=CHECKOUT_UID, panel_title="requests")
    assert [q["refId"] for q in both.data["queries"]] == ["A", "B"]
    assert [q["refId"] for q in _posted(grafana)[-1]["queries"]] == ["A", "B"], "the hidden C is not run"
    assert _series(both, "A")["{}"]["min"] > 40 > 10 > _series(both, "B")["{}"]["max"] > 7
    assert len(_series(both, "B")["{}"]["values"]) <= MAX_SHOWN_VALUES // 2
    logs = await _run(client, "grafana_panel_query", dashboard_uid=CHECKOUT_UID, panel_id=6, **WINDOW)
    assert _series(logs)['{level="error"}']["max"] > 50, "a Loki panel in a collapsed row runs too"


async def test_a_panel_that_matches_nothing_is_no_data_and_a_wrong_panel_is_explained(
    grafana: GrafanaEmulator, client: GrafanaClient
) -> None:
    empty = await _run(
        client, "grafana_panel_query", dashboard_uid=CHECKOUT_UID, panel_id=2, variables=["namespace=nowhere"]
    )
    assert empty.status == "no_data" and "namespace=nowhere" in empty.data
    wrong = await _run(client, "grafana_panel_query", dashboard_uid=CHECKOUT_UID, panel_id=99)
    assert wrong.error == (
        "In dashboard checkout-overview no panel matches; its panels are 2: 5xx rate; 3: p99 latency; "
        "7: Requests and errors; 4: Runbook; 6: Error log lines."
    )
    text = await _run(client, "grafana_panel_query", dashboard_uid=CHECKOUT_UID, panel_title="runbook")
    assert text.error == 'Panel "Runbook" has no queries to run (a text or row panel).'
    model = grafana.world.dashboards[CHECKOUT_UID]["dashboard"]
    model["panels"][1]["targets"][0]["expr"] = 'sum(rate(http_requests_total{cluster="$cluster"}[5m]))'
    undefined = await _run(client, "grafana_panel_query", dashboard_uid=CHECKOUT_UID, panel_id=2)
    assert undefined.error is not None
    assert undefined.error.startswith("The panel's query uses $cluster, which this dashboard does not define")
    defined = await _run(
        client, "grafana_panel_query", dashboard_uid=CHECKOUT_UID, panel_id=2, variables=["cluster=eu-1"]
    )
    assert defined.status == "no_data", "a variable given by name is substituted even if undeclared"
    assert len(_posted(grafana)) == 2, "nothing is sent for a wrong panel or an undefined variable"


async def test_an_ad_hoc_query_runs_on_a_named_data_source_and_links_to_explore(
    client: GrafanaClient,
) -> None:
    query = 'sum(rate(http_requests_total{service="checkout",code=~"5.."}[$__rate_interval]))'
    result = await _run(client, "grafana_query_datasource", datasource="Prometheus", query=query, **WINDOW)
    assert result.status == "ok", result
    assert result.data["datasource"] == "Prometheus"
    [(name, series)] = _series(result).items()
    assert name == "{}" and series["max"] > 7 and series["first"] < 0.5, "prod and staging summed"
    assert result.url is not None and result.url.startswith(f"{client.url}/explore?schemaVersion=1&panes=")
    [pane] = json.loads(parse_qs(urlsplit(result.url).query)["panes"][0]).values()
    assert pane["queries"][0]["expr"].endswith("[1m15s]))") and pane["datasource"] == PROMETHEUS_UID
    logql = 'sum by (level) (count_over_time({app="checkout",namespace="prod"} |= "error" [5m]))'
    loki = await _run(client, "grafana_query_datasource", datasource="loki-main", query=logql, **WINDOW)
    assert set(_series(loki)) == {'{level="error"}', '{level="info"}'}
    lines = await _run(client, "grafana_query_datasource", datasource="Loki", query='{app="checkout"}')
    assert lines.status == "no_data" and lines.data.startswith("This is a log query")
    nothing = await _run(client, "grafana_query_datasource", datasource="Prometheus", query="up{job='x'}")
    assert nothing.status == "no_data" and "check metric and label names" in nothing.data
    unknown = await _run(client, "grafana_query_datasource", datasource="Graphite", query="x")
    assert unknown.error is not None and "no data source named or with uid Graphite" in unknown.error


async def test_a_query_the_data_source_rejects_fails_with_its_own_message(client: GrafanaClient) -> None:
    result = await _run(client, "grafana_query_datasource", datasource="Prometheus", query="sum(rate(x[5m])")
    assert result.error == (
        "Grafana rejected the request to run the query on Prometheus: query A: bad_data: invalid parameter "
        '"query": 1:4: parse error: unclosed left parenthesis (400). Correct it and try again.'
    )
    invalid = await _run(client, "grafana_annotations", start="yesterday")
    assert invalid.error is not None and invalid.error.startswith("Cannot read the time 'yesterday'")
    with pytest.raises(ValueError, match="should match pattern"):
        gf.DashboardParams.model_validate({"uid": "../../api/admin/users"})
    with pytest.raises(ValueError, match="name=value"):
        gf.PanelQueryParams.model_validate({"dashboard_uid": "x", "variables": ["namespace"]})


async def test_data_sources_are_listed_without_their_credentials(client: GrafanaClient) -> None:
    result = await _run(client, "grafana_datasources")
    assert result.data["datasources"] == [
        {
            "name": "Prometheus",
            "uid": PROMETHEUS_UID,
            "type": "prometheus",
            "url": "http://prometheus.monitoring:9090",
            "default": True,
            "scrape_interval": "15s",
        },
        {"name": "Loki", "uid": "loki-main", "type": "loki", "url": "http://loki-gateway.monitoring"},
    ]
    assert "basicAuth" not in json.dumps(result.data) and "secureJsonFields" not in json.dumps(result.data)


async def test_a_viewer_token_cannot_list_data_sources_but_still_runs_panels(
    grafana: GrafanaEmulator,
) -> None:
    config = _config(grafana.url, api_key=VIEWER)
    listing = await _once(config, "grafana_datasources")
    assert listing.error is not None
    assert listing.error.startswith(f"Grafana at {grafana.url} refused access (403 You'll need additional")
    assert "datasources:read" in listing.error and "integrations.grafana.api_key" in listing.error
    panel = await _once(config, "grafana_panel_query", dashboard_uid=CHECKOUT_UID, panel_id=2)
    assert panel.status == "ok", panel
    assert _posted(grafana)[-1]["queries"][0]["datasource"]["uid"] == PROMETHEUS_UID


async def test_missing_or_wrong_tokens_say_which_setting_to_fix(grafana: GrafanaEmulator) -> None:
    anonymous = await _once(_config(grafana.url), "grafana_search_dashboards")
    assert anonymous.error == (
        f"Grafana at {grafana.url} did not accept the credentials (401 Unauthorized) when asked to search "
        "dashboards: set or correct integrations.grafana.api_key (a service account token)."
    )
    wrong = await _once(_config(grafana.url, api_key="glsa_revoked"), "grafana_firing_alerts")
    assert wrong.error is not None and "(401 Invalid API key)" in wrong.error
    failing = await gf.health(_config(grafana.url, api_key="glsa_revoked"))
    assert not failing.healthy and "(401 Invalid API key)" in failing.reason
    assert [c.path for c in grafana.calls][-2:] == ["/api/health", "/api/search"]


async def test_a_rate_limited_grafana_says_when_to_try_again(grafana: GrafanaEmulator) -> None:
    grafana.rate_limited = True
    grafana.retry_after = 12
    result = await _once(
        _config(grafana.url, api_key=DEFAULT_TOKEN),
        "grafana_panel_query",
        dashboard_uid=CHECKOUT_UID,
        panel_id=2,
    )
    assert result.error == (
        f"Grafana at {grafana.url} is rate limited, try again in 12 s (429 Too Many Requests); could not "
        "read dashboard checkout-overview."
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_grafana_fails_in_one_sentence() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    result = await _once(_config(url, api_key="t"), "grafana_datasources")
    assert (
        result.error == f"Grafana at {url} is unreachable (connection refused); could not list data sources."
    )


async def test_health_checks_grafana_and_the_token(grafana: GrafanaEmulator) -> None:
    config = _config(grafana.url, api_key=DEFAULT_TOKEN, org_id=1)
    assert await gf.health(config) == ToolsetHealth.ok()
    assert [(c.path, c.org_id) for c in grafana.calls] == [("/api/health", "1"), ("/api/search", "1")]
    assert await gf.health({}) == ToolsetHealth(configured=False, reason="no url is set")
    grafana.database = "failing"
    sick = await gf.health(config)
    assert not sick.healthy and "its database is failing" in sick.reason
    off = await gf.health(_config(grafana.url, enabled=False))
    assert not off.healthy and "turned off" in off.reason
    with pytest.raises(GrafanaNotConfigured, match="org_id must be a number"):
        await connect(_config(grafana.url, org_id="main"))
    with pytest.raises(GrafanaNotConfigured, match="http:// or https://"):
        await connect(_config("grafana.example.com"))


def test_variables_are_substituted_as_grafana_formats_them() -> None:
    values = {"ns": ["prod"], "svc": ["api.v2", "web"], "path": ["a\\b"]}
    macros = {"__interval": "1m", "__rate_interval": "1m15s", "__range": "3600s"}
    text = (
        'sum(rate(x{ns="$ns",svc=~"${svc}",path=~"[[path:regex]]"}[$__rate_interval])) / $__range '
        '+ ${svc:csv} + ${svc:pipe} + $__interval + label_replace(y, "a", "$1", "b", "(.*)") + $team'
    )
    out, unknown = interpolate(text, values, macros)
    assert out == (
        'sum(rate(x{ns="prod",svc=~"(api\\\\.v2|web)",path=~"(a\\\\\\\\b)"}[1m15s])) / 3600s '
        '+ api.v2,web + api.v2|web + 1m + label_replace(y, "a", "$1", "b", "(.*)") + $team'
    )
    assert unknown == {"team"}, "$1 is a regex group, not a variable"


def test_tool_names_are_prefixed_and_never_clash_with_other_toolsets() -> None:
    tools = toolset_function_tools(gf.GRAFANA, agent="metrics")
    names = [t.name for t in tools]
    assert names == [
        "grafana_firing_alerts",
        "grafana_annotations",
        "grafana_search_dashboards",
        "grafana_dashboard",
        "grafana_panel_query",
        "grafana_query_datasource",
        "grafana_datasources",
    ]
    assert all(t.strict_json_schema for t in tools)
    assert not set(names) & {t.name for t in (*PROMETHEUS.tools, *LOKI.tools)}
    assert gf.GRAFANA.missing_prerequisites({}) == ["integrations.grafana.url"]


async def test_through_the_adapter_the_model_sees_series_and_never_the_token(
    grafana: GrafanaEmulator,
) -> None:
    config = {"integrations": {"grafana": grafana.integration_config()}}
    events: list[Any] = []
    ctx = InvestigationContext(run_id="r", org_id="o", team_node_id="t", config=config, emit=events.append)
    tools = {t.name: t for t in toolset_function_tools(gf.GRAFANA, agent="metrics")}

    async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(args)
        context = ToolContext(ctx, tool_name=name, tool_call_id=name, tool_arguments=raw)
        out = await tools[name].on_invoke_tool(context, raw)
        assert DEFAULT_TOKEN not in out
        loaded: dict[str, Any] = json.loads(out)
        return loaded

    args = {
        "dashboard_uid": CHECKOUT_UID,
        "panel_id": 2,
        "panel_title": None,
        "variables": ["namespace=prod"],
        "start": "-30m",
        "end": None,
    }
    answer = await call("grafana_panel_query", args)
    assert answer["status"] == "ok"
    [series] = answer["data"]["queries"][0]["series"]
    assert series["series"] == '{service="checkout"}' and series["max"] > 7
    invalid = await call("grafana_panel_query", {**args, "variables": ["namespace"]})
    assert invalid["status"] == "error" and "name=value" in invalid["error"]
    client = ctx.clients["grafana"]
    await close_clients(ctx)
    assert client.session.closed
