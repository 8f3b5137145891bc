"""The datadog toolset, through the official datadog-api-client, against the Datadog emulator holding a
checkout incident (5xx spike after a deploy, payment gateway timeouts): what each tool reports and how
it fails, in one sentence, with Datadog's own words for a rejected query, the key or scope to check for
403 and when to retry after 429."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from agents.tool_context import ToolContext
from aiohttp import web

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.toolsets import datadog as dd_tools
from incidentfox.agents.toolsets.base import ToolResult, ToolsetHealth
from incidentfox.agents.toolsets.datadog_api import DatadogClient, DatadogNotConfigured, connect, endpoints
from incidentfox.agents.toolsets.datadog_logs import DATADOG_LOGS
from incidentfox.agents.toolsets.datadog_params import LogsAggregateParams, SearchMetricsParams
from incidentfox.agents.toolsets.function_tools import close_clients, toolset_function_tools
from incidentfox.agents.toolsets.loki import LOKI
from incidentfox.agents.toolsets.prometheus import PROMETHEUS
from incidentfox.egress import EgressPolicy, install_policy
from incidentfox.emulators.datadog import DatadogEmulator
from incidentfox.emulators.datadog_seed import ALERT_MONITOR_ID, DECLINED, seed_checkout_incident
from incidentfox.emulators.served import ServedApp
from tests.toolset_calls import run_once, run_tool


def _config(dd: DatadogEmulator, **overrides: Any) -> dict[str, Any]:
    return {"integrations": {"datadog": dd.integration_config(**overrides)}}


@pytest.fixture
def now() -> datetime:
    """The seed's clock, taken when the test starts: windows such as -10h are relative to the test's
    own time, so a test that starts minutes after collection still sees all of its data."""
    return datetime.now(UTC)


@pytest.fixture
async def dd(now: datetime) -> AsyncIterator[DatadogEmulator]:
    async with DatadogEmulator() as emulator:
        seed_checkout_incident(emulator.store, now)
        yield emulator


@pytest.fixture
async def client(dd: DatadogEmulator) -> AsyncIterator[DatadogClient]:
    connected = await connect(_config(dd))
    yield connected
    await connected.close()


async def _run(client: DatadogClient, name: str, /, **args: Any) -> ToolResult:
    return await run_tool(dd_tools.DATADOG, client, name, **args)


async def _once(config: dict[str, Any], name: str, /, **args: Any) -> ToolResult:
    return await run_once(dd_tools.DATADOG, connect, config, name, **args)


async def test_monitors_in_alert_come_first_with_since_when_and_links(
    dd: DatadogEmulator, now: datetime
) -> None:
    config = _config(dd, app_url="https://app.datadoghq.eu")
    result = await _once(config, "dd_monitors_alerting")
    assert result.status == "ok", result
    assert result.data["monitors_checked"] == 3 and result.data["by_state"] == {"Alert": 1, "Warn": 1}
    alert, warn = result.data["monitors"]
    assert alert["id"] == ALERT_MONITOR_ID and alert["state"] == "Alert" and warn["state"] == "Warn"
    since = datetime.fromisoformat(alert["since"])
    assert abs(since - (now - timedelta(minutes=12))) < timedelta(seconds=2)
    assert "trace.http.request.errors{service:checkout,env:prod}" in alert["query"]
    assert alert["message"].startswith("Checkout is failing requests with 5xx.")
    assert alert["tags"] == ["service:checkout", "team:payments", "env:prod"]
    assert alert["url"] == f"https://app.datadoghq.eu/monitors/{ALERT_MONITOR_ID}"
    assert result.url is not None and result.url.startswith("https://app.datadoghq.eu/monitors/manage?q=")
    assert dd.calls[-1].query["group_states"] == "alert,warn,no data"
    payments = await _once(config, "dd_monitors_alerting", tags="service:payments")
    assert payments.status == "no_data"
    assert (
        payments.data
        == "No monitor with tags service:payments is in Alert or Warn or No Data (1 monitors checked)."
    )


async def test_a_metric_query_shows_the_5xx_spike_per_service(client: DatadogClient) -> None:
    query = "sum:trace.http.request.errors{env:prod} by {service}.as_count()"
    result = await _run(client, "dd_metric_query", query=query, start="-1h")
    assert result.status == "ok", result
    series = {row["series"]: row for row in result.data["series"]}
    assert set(series) == {
        "trace.http.request.errors{service:checkout}",
        "trace.http.request.errors{service:payments}",
    }
    checkout = series["trace.http.request.errors{service:checkout}"]
    assert checkout["max"] >= 29 and checkout["last"] >= 20 and checkout["min"] <= 1
    assert checkout["interval"] == "1m" and len(checkout["values"]) <= dd_tools.MAX_POINTS
    assert series["trace.http.request.errors{service:payments}"]["max"] == 1
    assert result.invocation.startswith("Datadog metric query from ") and query in result.invocation
    assert result.url is None, "no app_url: the emulator's address is not Datadog's web app"


async def test_a_long_window_is_thinned_to_at_most_100_points(
    dd: DatadogEmulator, client: DatadogClient, now: datetime
) -> None:
    dd.store.add_metric(
        "checkout.queue.depth",
        ["env:prod"],
        [(now - timedelta(minutes=m), float(m)) for m in range(0, 590)],
    )
    result = await _run(client, "dd_metric_query", query="max:checkout.queue.depth{*}", start="-10h")
    [row] = result.data["series"]
    assert row["interval"] == "2m" and row["samples"] in (295, 296), "590 minutes in 2-minute rollups"
    assert len(row["values"]) == 99 and row["values_every"] == "6m" and row["max"] >= 588


async def test_an_unknown_metric_is_no_data_and_a_bad_query_quotes_datadog(client: DatadogClient) -> None:
    empty = await _run(client, "dd_metric_query", query="avg:no.such.metric{*}")
    assert empty.status == "no_data" and "dd_search_metrics" in empty.data
    bad = await _run(client, "dd_metric_query", query="avg:system.cpu.user{host:a")
    assert bad.status == "error" and bad.error is not None
    assert bad.error.startswith("Datadog rejected the request to query the metric: Error parsing query:")
    assert bad.error.endswith("(400). Correct it and try again.")
    window = await _run(client, "dd_metric_query", query="avg:system.cpu.user{*}", start="yesterday")
    assert window.error is not None and window.error.startswith("Cannot read the time 'yesterday'")


async def test_metric_names_are_found_by_prefix_and_tags(client: DatadogClient) -> None:
    found = await _run(client, "dd_search_metrics", prefix="trace.http")
    assert found.data == {"count": 2, "metrics": ["trace.http.request.errors", "trace.http.request.hits"]}
    tagged = await _run(client, "dd_search_metrics", prefix="checkout.", tag_filter="service:checkout")
    assert tagged.data["metrics"] == ["checkout.payment.declined"]
    none = await _run(client, "dd_search_metrics", prefix="kafka.")
    assert none.status == "no_data" and "shorter prefix" in none.data
    with pytest.raises(ValueError, match="start of a metric name"):
        SearchMetricsParams.model_validate({"prefix": "sum:trace{*}"})


async def test_a_log_search_returns_the_newest_errors_with_their_attributes(client: DatadogClient) -> None:
    query = 'service:checkout status:error "upstream timeout"'
    result = await _run(client, "dd_logs_search", query=query, start="-30m", limit=5)
    assert result.status == "ok", result
    entries = result.data["entries"]
    assert [e["message"] for e in entries] == [DECLINED.format(n=1000 + i, ms=3000 + i) for i in range(5)]
    first = entries[0]
    assert (
        first["service"] == "checkout"
        and first["status"] == "error"
        and first["host"].startswith("checkout-")
    )
    assert first["attributes"]["http.status_code"] == 502
    assert first["attributes"]["error.kind"] == "UpstreamTimeout"
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True) and times[0].endswith("Z")
    assert "Stopped at 5 logs" in result.data["note"]
    oldest = await _run(client, "dd_logs_search", query=query, start="-30m", limit=1, order="oldest")
    assert oldest.data["entries"][0]["message"] == DECLINED.format(n=1039, ms=3039)
    none = await _run(client, "dd_logs_search", query="service:checkout status:critical")
    assert none.status == "no_data"
    bad = await _run(client, "dd_logs_search", query='service:checkout "unterminated')
    assert bad.error is not None and "unterminated quoted string" in bad.error and "(400)" in bad.error


async def test_log_counts_group_by_a_facet_and_show_when_errors_began(dd: DatadogEmulator) -> None:
    config = _config(dd, app_url="https://app.datadoghq.com")
    by_status = await _once(config, "dd_logs_aggregate", query="*", group_by="status", start="-1h")
    assert by_status.status == "ok", by_status
    assert by_status.data["groups"] == [
        {"status": "info", "count": 60},
        {"status": "error", "count": 40},
        {"status": "warn", "count": 5},
    ]
    assert by_status.data["total"] == 105
    assert by_status.url is not None and parse_qs(urlsplit(by_status.url).query)["agg_q"] == ["status"]
    codes = await _once(config, "dd_logs_aggregate", query="service:checkout", group_by="@http.status_code")
    assert {g["@http.status_code"]: g["count"] for g in codes.data["groups"]} == {502: 40, 200: 60}
    series = await _once(
        config, "dd_logs_aggregate", query="status:error", group_by="service", interval="5m", start="-30m"
    )
    [checkout] = series.data["groups"]
    assert checkout["service"] == "checkout" and checkout["count"] == 40 and checkout["peak"] >= 14
    assert sum(checkout["counts"]) == 40 and checkout["peak_at"].endswith("Z")
    day = await _once(config, "dd_logs_aggregate", query="status:error", interval="1m", start="-1d")
    assert day.data["interval"] == "15m (widened from 1m to keep at most 100 counts)"
    assert len(day.data["groups"][0]["counts"]) <= 100 and "per 15m" in day.invocation
    with pytest.raises(ValueError, match="interval must be a duration"):
        LogsAggregateParams.model_validate({"query": "*", "interval": "five minutes"})


async def test_the_apm_summary_puts_the_failing_endpoint_first(client: DatadogClient) -> None:
    result = await _run(client, "dd_apm_service_summary", service="checkout", env="prod", start="-1h")
    assert result.status == "ok", result
    assert result.data["requests"] == 130 and result.data["errors"] == 30
    failing, cart = result.data["resources"]
    assert failing == {
        "resource": "POST /api/checkout",
        "requests": 90,
        "errors": 30,
        "error_rate_pct": 33.33,
        "p95_ms": failing["p95_ms"],
    }
    assert 3000 <= failing["p95_ms"] <= 3300
    assert cart["resource"] == "GET /api/cart" and cart["errors"] == 0 and cart["p95_ms"] < 30
    missing = await _run(client, "dd_apm_service_summary", service="cart", env="prod")
    assert missing.status == "no_data" and "check the service and env names" in missing.data


async def test_error_traces_show_the_error_type_message_and_trace(client: DatadogClient) -> None:
    result = await _run(client, "dd_error_traces", service="checkout", env="prod", start="-30m", limit=5)
    assert result.status == "ok", result
    newest = result.data["entries"][0]
    assert newest["trace_id"] == "710000000000000000" and newest["resource"] == "POST /api/checkout"
    assert newest["error_type"] == "UpstreamTimeout"
    assert newest["error_message"] == "payment gateway did not answer within 3000ms"
    assert newest["duration_ms"] == 3000 and newest["http_status"] == "502"
    assert (
        result.data["by_error_type"] == {"UpstreamTimeout": 5}
        and "Showing the newest 5" in result.data["note"]
    )
    assert "service:checkout env:prod status:error" in result.invocation
    narrowed = await _run(client, "dd_error_traces", service="checkout", query="@http.status_code:500")
    assert narrowed.status == "no_data"
    quiet = await _run(client, "dd_error_traces", service="payments")
    assert quiet.status == "no_data" and "dd_apm_service_summary" in quiet.data


async def test_events_show_the_deploy_before_the_spike(dd: DatadogEmulator) -> None:
    config = _config(dd, app_url="https://app.datadoghq.com")
    result = await _once(config, "dd_events", start="-1h")
    assert result.status == "ok", result
    deploy, flag = result.data["events"]
    assert deploy["title"] == "Deployed checkout v2.14.0 to prod" and deploy["source"] == "github"
    assert "version:2.14.0" in deploy["tags"] and deploy["url"].startswith("https://app.datadoghq.com/event/")
    assert flag["source"] == "launchdarkly" and deploy["time"] > flag["time"]
    github = await _once(config, "dd_events", sources="github", tags="service:checkout", start="-1h")
    assert [e["title"] for e in github.data["events"]] == [deploy["title"]]
    assert dd.calls[-1].query["sources"] == "github" and dd.calls[-1].query["tags"] == "service:checkout"
    assert github.url is not None
    assert parse_qs(urlsplit(github.url).query)["query"] == ["service:checkout source:github"]
    earlier = await _once(config, "dd_events", start="-5h", end="-2h")
    assert earlier.status == "no_data" and "widen the window" in earlier.data


async def test_hosts_that_stopped_reporting_come_first(client: DatadogClient, now: datetime) -> None:
    result = await _run(client, "dd_hosts", filter="service:checkout")
    assert result.status == "ok", result
    assert result.data["total_matching"] == 2 and result.data["not_reporting"] == 1
    silent, live = result.data["hosts"]
    assert silent["name"] == "checkout-7d9f8-b7m2q" and silent["up"] is False and silent["cpu_pct"] == 99.1
    reported = datetime.fromisoformat(silent["last_reported"])
    assert abs(reported - (now - timedelta(minutes=25))) < timedelta(seconds=2)
    assert live["up"] is True and "kube_namespace:prod" in live["tags"]
    capped = await _run(client, "dd_hosts", limit=1)
    assert len(capped.data["hosts"]) == 1 and "Showing 1 hosts" in capped.data["note"]
    none = await _run(client, "dd_hosts", filter="kafka")
    assert none.status == "no_data" and none.data == "No hosts matching 'kafka' report to Datadog."


async def test_a_wrong_application_key_names_the_scope_and_health_says_which_key(dd: DatadogEmulator) -> None:
    wrong_app = _config(dd, app_key="f" * 40)
    result = await _once(wrong_app, "dd_logs_search", query="*")
    assert result.status == "error" and result.error is not None
    assert result.error.startswith("Datadog refused access (403 Forbidden) when asked to search logs:")
    assert "logs_read_data scope" in result.error and "f" * 40 not in result.error
    health = await dd_tools.health(wrong_app)
    assert not health.healthy and "API key is valid but the application key was refused" in health.reason
    wrong_api = await dd_tools.health(_config(dd, api_key="0" * 32))
    assert not wrong_api.healthy and wrong_api.reason.startswith(
        "Datadog rejected the API key (403 Forbidden)"
    )


async def test_a_rate_limit_says_when_to_retry(dd: DatadogEmulator) -> None:
    dd.rate_limited = True
    started = time.monotonic()
    result = await _once(_config(dd), "dd_logs_search", query="status:error")
    assert time.monotonic() - started < 2, "the client must not wait out the limit itself"
    assert result.error == (
        "Datadog rate-limited the request to search logs (429 Too Many Requests) (300 requests per 3600 s "
        "for logs_list): try again in 37 s. Fewer, broader queries cost less of the limit."
    )
    assert [c.status for c in dd.calls] == [429], "one request, no retries"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_or_slow_datadog_fails_in_one_sentence(dd: DatadogEmulator) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    config = {"integrations": {"datadog": {"url": url, "api_key": "k" * 32, "app_key": "a" * 40}}}
    result = await _once(config, "dd_monitors_alerting")
    assert result.error == f"Datadog at {url} is unreachable (connection refused); could not list monitors."
    health = await dd_tools.health(config)
    assert not health.healthy and "unreachable (connection refused)" in health.reason
    dd.delay_s = 2.0
    slow = await _once(_config(dd, timeout_s=0.5), "dd_events")
    assert slow.error is not None and slow.error.startswith(f"Datadog at {dd.url} did not answer in time")
    assert "integrations.datadog.timeout_s" in slow.error


async def test_a_redirect_is_not_followed() -> None:
    async def login(request: web.Request) -> web.Response:
        raise web.HTTPFound("https://sso.example.com/login")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", login)
    server = ServedApp()
    url = f"http://127.0.0.1:{await server.serve(app, '127.0.0.1', 0)}"
    try:
        config = {"integrations": {"datadog": {"url": url, "api_key": "k" * 32, "app_key": "a" * 40}}}
        result = await _once(config, "dd_events")
    finally:
        await server.close()
    assert result.error == (
        f"Datadog at {url} redirected elsewhere (302) when asked to list events: point "
        "integrations.datadog.url at the API (https://api.<site>) or set site instead."
    )


async def test_health_checks_both_keys_and_settings_say_what_to_fix(dd: DatadogEmulator) -> None:
    assert await dd_tools.health(_config(dd)) == ToolsetHealth.ok()
    assert [c.path for c in dd.calls] == ["/api/v1/validate", "/api/v1/monitor"]
    assert dd.calls[-1].query["page_size"] == "1"
    assert await dd_tools.health({}) == ToolsetHealth(configured=False, reason="no api_key or app_key is set")
    wrong_path = await dd_tools.health(_config(dd, url=f"{dd.url}/datadog"))
    assert wrong_path.reason == (
        f"Datadog at {dd.url}/datadog has no such endpoint (404) when asked to validate the API key: check "
        "integrations.datadog.site or url."
    )
    off = await dd_tools.health(_config(dd, enabled=False))
    assert not off.healthy and "turned off" in off.reason
    with pytest.raises(DatadogNotConfigured, match=r"set integrations\.datadog\.api_key and app_key"):
        await connect({"integrations": {"datadog": {"api_key": "k" * 32}}})
    with pytest.raises(DatadogNotConfigured, match="must be a Datadog site"):
        await connect({"integrations": {"datadog": {"api_key": "k", "app_key": "a", "site": "evil.com/x"}}})
    with pytest.raises(DatadogNotConfigured, match="http:// or https://"):
        await connect(_config(dd, url="ftp://127.0.0.1"))
    install_policy(EgressPolicy(allow_private=False))
    with pytest.raises(DatadogNotConfigured, match="private or loopback"):
        await connect(_config(dd))


def test_sites_map_to_their_api_and_web_app() -> None:
    assert endpoints({}) == (
        "https://api.datadoghq.com",
        "integrations.datadog.site",
        "https://app.datadoghq.com",
    )
    assert endpoints({"site": "us5.datadoghq.com"}) == (
        "https://api.us5.datadoghq.com",
        "integrations.datadog.site",
        "https://us5.datadoghq.com",
    )
    assert endpoints({"site": "datadoghq.eu"})[2] == "https://app.datadoghq.eu"
    assert endpoints({"url": "https://api.ddog-gov.com/"}) == (
        "https://api.ddog-gov.com",
        "integrations.datadog.url",
        "https://app.ddog-gov.com",
    )


async def test_the_hosts_datadog_environment_is_never_used(
    dd: DatadogEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DD_SITE", "datadoghq.eu")
    monkeypatch.setenv("DD_API_KEY", "host-api-key-should-not-be-used")
    client = await connect(_config(dd))
    try:
        assert client.api.configuration.host == dd.url
        pools = client.api.rest_client.pool_manager.pool_classes_by_scheme
        assert pools["http"].ConnectionCls.setting == "integrations.datadog.url", (
            "connections pass the policy"
        )
        result = await _run(client, "dd_search_metrics", prefix="system.")
        assert result.data["metrics"] == ["system.cpu.user"]
    finally:
        await client.close()


def test_tool_names_are_prefixed_and_never_clash_with_other_toolsets() -> None:
    tools = toolset_function_tools(dd_tools.DATADOG, agent="metrics")
    names = [t.name for t in tools]
    assert names == [
        "dd_monitors_alerting",
        "dd_events",
        "dd_apm_service_summary",
        "dd_error_traces",
        "dd_metric_query",
        "dd_search_metrics",
        "dd_hosts",
        "dd_logs_aggregate",
        "dd_logs_search",
    ]
    logs_only = [t.name for t in toolset_function_tools(DATADOG_LOGS, agent="logs")]
    assert logs_only == ["dd_logs_aggregate", "dd_logs_search"]
    assert DATADOG_LOGS.name == dd_tools.DATADOG.name, "one integration: one client, health and switch"
    assert DATADOG_LOGS.missing_prerequisites({}) == dd_tools.DATADOG.missing_prerequisites({})
    assert DATADOG_LOGS.health_check is dd_tools.DATADOG.health_check
    assert all(t.strict_json_schema for t in tools)
    assert not set(names) & {t.name for t in (*PROMETHEUS.tools, *LOKI.tools)}
    assert dd_tools.DATADOG.missing_prerequisites({}) == [
        "integrations.datadog.api_key",
        "integrations.datadog.app_key",
    ]


async def test_through_the_adapter_the_model_sees_monitors_and_never_the_keys(dd: DatadogEmulator) -> None:
    config = _config(dd)
    events: list[Any] = []
    ctx = InvestigationContext(run_id="r", org_id="o", team_node_id="t", config=config, emit=events.append)
    tools = {t.name: t for t in toolset_function_tools(dd_tools.DATADOG, agent="metrics")}

    async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(args)
        context = ToolContext(ctx, tool_name=name, tool_call_id=name, tool_arguments=raw)
        out = await tools[name].on_invoke_tool(context, raw)
        assert dd.api_key not in out and dd.app_key not in out
        loaded: dict[str, Any] = json.loads(out)
        return loaded

    answer = await call("dd_monitors_alerting", {"states": ["Alert"], "tags": None, "name": None})
    assert answer["status"] == "ok"
    assert [m["name"] for m in answer["data"]["monitors"]] == ["[checkout] 5xx errors are high on prod"]
    invalid = await call(
        "dd_logs_search", {"query": "*", "start": None, "end": None, "limit": 5000, "order": None}
    )
    assert invalid["status"] == "error" and "limit must be between 1 and 500" in invalid["error"]
    logs_agent = {t.name: t for t in toolset_function_tools(DATADOG_LOGS, agent="logs")}
    raw = json.dumps({"query": "status:warn", "start": "-1h", "end": None, "limit": 2, "order": None})
    context = ToolContext(ctx, tool_name="dd_logs_search", tool_call_id="logs", tool_arguments=raw)
    lines = json.loads(await logs_agent["dd_logs_search"].on_invoke_tool(context, raw))
    assert lines["status"] == "ok" and lines["data"]["entries"][0]["service"] == "payments"
    assert list(ctx.clients) == ["datadog"], "the logs agent's calls use the run's one Datadog client"
    client = ctx.clients["datadog"]
    await close_clients(ctx)
    assert not client.api.rest_client.pool_manager.pools
