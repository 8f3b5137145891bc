"""The prometheus toolset against a real Prometheus with two hours of a checkout incident backfilled
(``tests/prometheus_server.py``): what each tool reports, that a range never has more than 100 points
per series, and how it fails (in one sentence, with Prometheus' own message for bad PromQL). An auth
gateway, a slow server and a non-Prometheus page are tiny aiohttp servers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from agents.tool_context import ToolContext
from aiohttp import encode_basic_auth, web

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.toolsets import prometheus as pm
from incidentfox.agents.toolsets.base import ToolResult, ToolsetHealth
from incidentfox.agents.toolsets.function_tools import close_clients, toolset_function_tools
from incidentfox.agents.toolsets.prometheus_api import (
    EgressCheckedResolver,
    PrometheusClient,
    PrometheusNotConfigured,
    connect,
)
from incidentfox.agents.toolsets.prometheus_views import choose_step, graph_url, parse_time
from incidentfox.egress import EgressPolicy, EgressRefused, install_policy
from tests import prometheus_server
from tests.prometheus_server import CHECKOUT_POD, PrometheusServer, free_port, running_prometheus
from tests.toolset_calls import run_tool

TOKEN = "prom-gateway-token-0123456789"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


def _config(url: str, **settings: Any) -> dict[str, Any]:
    return {"integrations": {"prometheus": {"url": url, **settings}}}


@pytest.fixture
async def client(prometheus: PrometheusServer) -> AsyncIterator[PrometheusClient]:
    connected = await connect(_config(prometheus.url))
    yield connected
    await connected.close()


async def _run(client: PrometheusClient, name: str, /, **args: Any) -> ToolResult:
    return await run_tool(pm.PROMETHEUS, client, name, **args)


async def _eventually(
    check: Callable[[], Awaitable[ToolResult]], done: Callable[[ToolResult], bool]
) -> ToolResult:
    """Rules are evaluated and targets scraped every second, the first scrape about 5 s after start."""
    deadline = time.monotonic() + 15
    while True:
        result = await check()
        if done(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.25)


def _series(result: ToolResult) -> dict[str, Any]:
    return {row["series"]: row for row in result.data["series"]}


async def test_instant_query_returns_each_series_with_its_labels_and_value(client: PrometheusClient) -> None:
    query = 'sum by (code) (rate(http_requests_total{service="checkout"}[5m]))'
    result = await _run(client, "query_instant", query=query)
    assert result.status == "ok", result
    rates = {row["series"]: row["value"] for row in result.data["series"]}
    assert set(rates) == {'{code="200"}', '{code="500"}'}
    assert rates['{code="500"}'] == pytest.approx(6, rel=0.05)
    assert rates['{code="200"}'] == pytest.approx(48, rel=0.05)
    assert query in result.invocation
    assert result.url is not None and result.url.startswith(f"{client.url}/graph?g0.expr=sum%20by")


async def test_instant_query_at_a_time_before_the_incident(client: PrometheusClient) -> None:
    query = 'rate(http_requests_total{code="500"}[5m])'
    result = await _run(client, "query_instant", query=query, time="-1h")
    [row] = result.data["series"]
    assert row["series"] == '{code="500",service="checkout"}', "rate() drops the metric name"
    assert row["value"] == pytest.approx(0.1, rel=0.05)


async def test_instant_query_caps_series_and_says_how_many_were_left_out(client: PrometheusClient) -> None:
    result = await _eventually(
        lambda: _run(client, "query_instant", query='{job="prometheus"}'), lambda r: r.status == "ok"
    )
    assert result.data["series_count"] > pm.MAX_INSTANT_SERIES
    assert len(result.data["series"]) == pm.MAX_INSTANT_SERIES
    assert result.data["series_omitted"] == result.data["series_count"] - pm.MAX_INSTANT_SERIES
    assert "Showing 50 of" in result.data["note"]


async def test_a_query_that_matches_nothing_is_no_data(client: PrometheusClient) -> None:
    result = await _run(client, "query_instant", query='http_requests_total{service="no-such-service"}')
    assert result.status == "no_data"
    assert "not an error in PromQL" in result.data
    ranged = await _run(client, "query_range", query="no_such_metric_total")
    assert ranged.status == "no_data"


async def test_bad_promql_fails_with_prometheus_own_message(client: PrometheusClient) -> None:
    result = await _run(client, "query_instant", query="rate(http_requests_total[5m]")
    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("Prometheus rejected the request to run the query: ")
    assert "parse error" in result.error and "(400 bad_data)" in result.error
    ranged = await _run(client, "query_range", query="sum(", start="-30m")
    assert ranged.status == "error" and ranged.error is not None and "parse error" in ranged.error


async def test_a_range_query_summarises_each_series_and_shows_its_shape(client: PrometheusClient) -> None:
    result = await _run(
        client,
        "query_range",
        query='sum by (code) (rate(http_requests_total{service="checkout"}[5m]))',
        start="-2h",
    )
    assert result.status == "ok", result
    errors = _series(result)['{code="500"}']
    assert errors["min"] < 0.2
    assert errors["max"] == pytest.approx(6, rel=0.05)
    assert errors["last"] == pytest.approx(6, rel=0.05)
    assert errors["values"][5] == pytest.approx(0.1, rel=0.05), (
        "the first values are from before the incident"
    )
    assert result.data["step"] == "2m"
    assert result.url is not None and "g0.range_input=2h" in result.url


async def test_the_step_is_raised_so_no_series_has_more_than_100_points(client: PrometheusClient) -> None:
    result = await _run(
        client, "query_range", query="container_memory_working_set_bytes", start="-2h", end="now", step="1s"
    )
    assert result.status == "ok", result
    assert result.data["step"] == "2m"
    assert "Step raised from 1s to 2m" in result.data["step_note"]
    [memory] = result.data["series"]
    assert memory["series"].endswith(f'pod="{CHECKOUT_POD}"}}')
    assert 60 <= len(memory["values"]) <= pm.MAX_POINTS
    assert memory["max"] > memory["min"] * 2, "the working set climbs"
    for span_s, requested in [(3600, None), (7200, 1), (86400 * 30, 60), (60, 1), (3 * 3600, 300)]:
        step = choose_step(span_s, requested)
        assert span_s / step + 1 <= 100, (span_s, step)
    assert choose_step(3600, None) == 60
    assert choose_step(3 * 3600, 300) == 300, "a requested step that is coarse enough is kept"


async def test_series_and_label_values_discover_names(client: PrometheusClient) -> None:
    found = await _run(client, "series", match="http_requests_total", start="-2h")
    assert found.status == "ok"
    assert found.data["series"] == [
        'http_requests_total{code="200",service="checkout"}',
        'http_requests_total{code="200",service="payments"}',
        'http_requests_total{code="500",service="checkout"}',
    ]
    services = await _run(client, "label_values", label="service")
    assert services.data["values"] == ["checkout", "payments"]
    codes = await _run(client, "label_values", label="code", match='http_requests_total{service="payments"}')
    assert codes.data["values"] == ["200"]
    none = await _run(client, "label_values", label="no_such_label")
    assert none.status == "no_data"


async def test_alerts_show_the_firing_alert_with_its_annotations(client: PrometheusClient) -> None:
    result = await _eventually(
        lambda: _run(client, "alerts"),
        lambda r: (
            r.status == "ok" and r.data["by_state"].get("firing") == 1 and "pending" in r.data["by_state"]
        ),
    )
    assert result.status == "ok", result
    firing, pending = result.data["alerts"]
    assert firing["alertname"] == "CheckoutHighErrorRate"
    assert firing["state"] == "firing"
    assert firing["labels"] == {"service": "checkout", "severity": "page"}
    assert firing["annotations"]["summary"] == "checkout is failing 11.11% of requests"
    assert datetime.fromisoformat(firing["active_at"]) > datetime.now(UTC) - timedelta(minutes=5)
    assert (pending["alertname"], pending["state"]) == ("PaymentsTargetDown", "pending")
    assert result.url == f"{client.url}/alerts"


async def test_rules_report_health_last_error_and_state(client: PrometheusClient) -> None:
    result = await _eventually(lambda: _run(client, "rules"), lambda r: r.data["by_health"].get("err") == 1)
    assert result.status == "ok", result
    broken, *rest = result.data["rules"]
    assert broken["name"] == "broken:same_labelset" and broken["health"] == "err"
    assert "same labelset" in broken["last_error"]
    by_name = {r["name"]: r for r in rest}
    assert by_name["CheckoutHighErrorRate"]["state"] == "firing"
    assert by_name["PaymentsTargetDown"]["for"] == "1h"
    recording = await _run(client, "rules", type="record")
    assert {r["name"] for r in recording.data["rules"]} == {"job:up:sum", "broken:same_labelset"}


async def test_targets_down_names_the_target_and_its_scrape_error(client: PrometheusClient) -> None:
    result = await _eventually(
        lambda: _run(client, "targets_down"),
        lambda r: r.status == "ok" and r.data["targets"][0]["health"] == "down",
    )
    assert result.status == "ok", result
    assert result.data["targets_total"] == 2
    [down] = result.data["targets"]
    assert down["job"] == "billing-api" and down["labels"]["team"] == "billing"
    assert "connection refused" in down["last_error"]


async def test_metric_metadata_gives_type_and_help(client: PrometheusClient) -> None:
    result = await _eventually(
        lambda: _run(client, "metric_metadata", metric="prometheus_http_requests_total"),
        lambda r: r.status == "ok",
    )
    [row] = result.data["metrics"]
    assert row["type"] == "counter" and "HTTP requests" in row["help"]
    backfilled = await _run(client, "metric_metadata", metric="container_memory_working_set_bytes")
    assert backfilled.status == "no_data"
    assert "metadata comes from scrapes" in backfilled.data


async def test_times_are_read_in_every_documented_form() -> None:
    now = datetime(2026, 1, 31, 14, 5, tzinfo=UTC)
    read = lambda text: parse_time(text, now=now, default=now)  # noqa: E731
    assert read("-1h") == read("now-1h") == read("1h ago") == now - timedelta(hours=1)
    assert read("-1h30m") == now - timedelta(minutes=90)
    assert read("2026-01-31T13:00:00Z") == datetime(2026, 1, 31, 13, tzinfo=UTC)
    assert read(str(now.timestamp())) == now
    with pytest.raises(ValueError, match="RFC3339"):
        read("yesterday")


async def test_bad_times_and_windows_fail_in_plain_words(client: PrometheusClient) -> None:
    result = await _run(client, "query_range", query="up", start="yesterday")
    assert result.status == "error" and result.error is not None
    assert result.error.startswith("Cannot read the time 'yesterday'")
    backwards = await _run(client, "query_range", query="up", start="-1h", end="-2h")
    assert backwards.error is not None and "must be before end" in backwards.error


async def test_an_unreachable_server_fails_in_one_sentence() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = await connect(_config(url))
    try:
        result = await _run(client, "alerts")
    finally:
        await client.close()
    assert result.status == "error"
    assert result.error == f"Prometheus at {url} is unreachable (connection refused); could not list alerts."
    health = await pm.health(_config(url))
    assert not health.healthy and "unreachable (connection refused)" in health.reason


async def _gateway(request: web.Request) -> web.StreamResponse:
    """Auth gateways in front of Prometheus (``/auth``, ``/basic``), a slow server (``/slow``) and a web
    page (``/html``); otherwise an empty list of alerts."""
    mode = request.match_info["mode"]
    if mode == "slow":
        await asyncio.sleep(1)
    if mode == "html":
        return web.Response(text="<html>Grafana</html>", content_type="text/html")
    expected = {"auth": f"Bearer {TOKEN}", "basic": encode_basic_auth("bot", "hunter2-secret")}.get(mode)
    if expected and request.headers.get("Authorization") != expected:
        return web.Response(status=401, text="Unauthorized")
    if request.path.endswith("/status/buildinfo"):
        return web.json_response({"status": "success", "data": {"version": "2.53.0"}})
    return web.json_response({"status": "success", "data": {"alerts": []}})


@pytest.fixture
async def gateway() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{mode}/api/v1/{tail:.*}", _gateway)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_a_401_from_an_auth_gateway_says_which_setting_to_fix(gateway: str) -> None:
    client = await connect(_config(f"{gateway}/auth"))
    try:
        result = await _run(client, "alerts")
    finally:
        await client.close()
    assert result.status == "error" and result.error is not None
    assert "asked for credentials (401 Unauthorized)" in result.error
    assert "integrations.prometheus.headers" in result.error
    health = await pm.health(_config(f"{gateway}/auth"))
    assert not health.healthy and "401 Unauthorized" in health.reason
    authorized = _config(f"{gateway}/auth", headers={"Authorization": f"Bearer {TOKEN}"})
    assert await pm.health(authorized) == ToolsetHealth.ok()
    client = await connect(authorized)
    try:
        assert (await _run(client, "alerts")).status == "no_data"
    finally:
        await client.close()


async def test_a_server_that_does_not_answer_in_time_fails_with_a_timeout(gateway: str) -> None:
    client = await connect(_config(f"{gateway}/slow", timeout_s=0.3))
    try:
        result = await _run(client, "query_instant", query="up")
    finally:
        await client.close()
    assert result.error is not None and "did not answer within 0.3 s" in result.error


async def test_health_is_ok_for_prometheus_and_says_why_not_otherwise(
    prometheus: PrometheusServer, gateway: str
) -> None:
    assert await pm.health(_config(prometheus.url)) == ToolsetHealth.ok()
    assert await pm.health({}) == ToolsetHealth(configured=False, reason="no url is set")
    page = await pm.health(_config(f"{gateway}/html"))
    assert not page.healthy and "not as a Prometheus API" in page.reason
    wrong = await pm.health(_config(f"{prometheus.url}/prometheus"))
    assert not wrong.healthy and "(404)" in wrong.reason
    scheme = await pm.health(_config("ftp://prometheus:9090"))
    assert not scheme.healthy and "must be an http:// or https:// URL" in scheme.reason


async def test_connect_refuses_private_addresses_when_the_installation_does(
    prometheus: PrometheusServer,
) -> None:
    install_policy(EgressPolicy(allow_private=False))
    with pytest.raises(PrometheusNotConfigured, match="private or loopback"):
        await connect(_config(prometheus.url))
    with pytest.raises(EgressRefused):
        await EgressCheckedResolver(private_allowed=False).resolve("localhost", 9090)
    with pytest.raises(PrometheusNotConfigured, match="turned off"):
        await connect(_config(prometheus.url, enabled=False))


async def test_credentials_in_the_url_are_sent_but_never_shown(gateway: str) -> None:
    client = await connect(_config(gateway.replace("http://", "http://bot:hunter2-secret@") + "/basic"))
    try:
        result = await _run(client, "alerts")
    finally:
        await client.close()
    assert result.status == "no_data", result
    assert client.url == f"{gateway}/basic"
    unauthorized = await pm.health(_config(f"{gateway}/basic"))
    assert unauthorized.reason.startswith(f"Prometheus at {gateway}/basic asked for credentials")


def test_every_tool_has_a_strict_schema_for_the_model() -> None:
    tools = toolset_function_tools(pm.PROMETHEUS, agent="metrics")
    assert [t.name for t in tools] == [
        "query_instant",
        "query_range",
        "series",
        "label_values",
        "alerts",
        "rules",
        "targets_down",
        "metric_metadata",
    ]
    assert all(t.strict_json_schema for t in tools)
    assert pm.PROMETHEUS.missing_prerequisites({}) == ["integrations.prometheus.url"]


def test_graph_links_open_the_query_in_the_prometheus_ui() -> None:
    link = graph_url(
        "http://prometheus:9090", 'up{job="a b"}', end=datetime(2026, 1, 31, tzinfo=UTC), span_s=3600
    )
    query = parse_qs(urlsplit(link).query)
    assert query["g0.expr"] == ['up{job="a b"}']
    assert query["g0.range_input"] == ["1h"]
    assert query["g0.end_input"] == ["2026-01-31 00:00:00"]


async def test_through_the_adapter_the_model_sees_results_and_never_the_headers(
    prometheus: PrometheusServer,
) -> None:
    config = _config(prometheus.url, headers={"Authorization": f"Bearer {TOKEN}"})
    events: list[Any] = []
    ctx = InvestigationContext(run_id="r", org_id="o", team_node_id="t", config=config, emit=events.append)
    tools = {t.name: t for t in toolset_function_tools(pm.PROMETHEUS, agent="metrics")}

    async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(args)
        context = ToolContext(ctx, tool_name=name, tool_call_id=name, tool_arguments=raw)
        out = await tools[name].on_invoke_tool(context, raw)
        assert TOKEN not in out
        loaded: dict[str, Any] = json.loads(out)
        return loaded

    answer = await call("query_instant", {"query": 'up{job="payments"}', "time": None})
    assert answer["status"] == "ok"
    assert answer["data"]["series"] == [
        {"series": 'up{instance="10.0.4.2:8080",job="payments"}', "value": 0.0}
    ]
    invalid = await call("label_values", {"label": "not-a-label", "match": None, "start": None, "end": None})
    assert invalid["status"] == "error" and "Invalid arguments for label_values" in invalid["error"]
    client = ctx.clients["prometheus"]
    await close_clients(ctx)
    assert client.session.closed


def test_without_prometheus_the_tests_skip_unless_ci_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus_server, "PROMETHEUS", "/nonexistent/prometheus")
    monkeypatch.delenv("INCIDENTFOX_REQUIRE_PROMETHEUS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="prometheus package"):
        prometheus_server.require_prometheus()
    monkeypatch.setenv("INCIDENTFOX_REQUIRE_PROMETHEUS", "1")
    with pytest.raises(pytest.fail.Exception, match="INCIDENTFOX_REQUIRE_PROMETHEUS=1"):
        prometheus_server.require_prometheus()
