"""The Grafana emulator answers as Grafana's HTTP API does: search hits, a dashboard with its meta,
data sources, annotations newest first, Alertmanager v2 alerts, and data frames from ``/api/ds/query``
whose numbers follow the seeded incident (checkout's 5xx rate jumps at the deploy); errors are
Grafana's JSON bodies (401, 403, 404, 400 with the data source's message, 429 with Retry-After)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from incidentfox.emulators.grafana import DEFAULT_TOKEN, GrafanaEmulator
from incidentfox.emulators.grafana_seed import CHECKOUT_UID, PROMETHEUS_UID

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
DEPLOY_MS = int((NOW - timedelta(minutes=20)).timestamp() * 1000)
BEARER = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
ERRORS = 'sum by (service) (rate(http_requests_total{namespace="prod",code=~"5.."}[5m]))'


@pytest.fixture
async def grafana() -> AsyncIterator[GrafanaEmulator]:
    async with GrafanaEmulator(now=NOW, viewer_token="glsa_viewer") as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _call(
    http: aiohttp.ClientSession,
    grafana: GrafanaEmulator,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    params: Any = None,
    body: Any = None,
) -> tuple[int, Any, Mapping[str, str]]:
    async with http.request(
        method,
        f"{grafana.url}{path}",
        headers=BEARER if headers is None else headers,
        params=params,
        json=body,
    ) as response:
        return response.status, await response.json(), response.headers


def _query(expr: str, window: tuple[int, int], uid: str = PROMETHEUS_UID) -> dict[str, Any]:
    return {
        "from": str(window[0]),
        "to": str(window[1]),
        "queries": [
            {
                "refId": "A",
                "datasource": {"uid": uid, "type": "prometheus"},
                "expr": expr,
                "intervalMs": 60000,
            }
        ],
    }


async def test_search_finds_dashboards_by_words_and_tags(
    grafana: GrafanaEmulator, http: aiohttp.ClientSession
) -> None:
    status, hits, _ = await _call(
        http, grafana, "GET", "/api/search", params={"query": "CHECK", "type": "dash-db"}
    )
    assert status == 200
    [hit] = hits
    assert (hit["uid"], hit["title"], hit["type"], hit["url"]) == (
        CHECKOUT_UID,
        "Checkout",
        "dash-db",
        "/d/checkout-overview/checkout",
    )
    assert hit["folderTitle"] == "Services" and hit["tags"] == ["checkout", "prod", "slo"]
    _, both, _ = await _call(
        http, grafana, "GET", "/api/search", params=[("tag", "prod"), ("tag", "payments")]
    )
    assert [h["uid"] for h in both] == ["payments-api"], "every tag must match"
    _, everything, _ = await _call(http, grafana, "GET", "/api/search")
    assert [h["type"] for h in everything] == ["dash-folder", "dash-db", "dash-db"]


async def test_a_dashboard_comes_with_its_meta_and_an_unknown_uid_is_404(
    grafana: GrafanaEmulator, http: aiohttp.ClientSession
) -> None:
    status, found, _ = await _call(http, grafana, "GET", f"/api/dashboards/uid/{CHECKOUT_UID}")
    assert status == 200 and found["meta"]["url"] == "/d/checkout-overview/checkout"
    names = [v["name"] for v in found["dashboard"]["templating"]["list"]]
    assert names == ["datasource", "namespace", "service"]
    status, body, _ = await _call(http, grafana, "GET", "/api/dashboards/uid/nope")
    assert (status, body) == (404, {"message": "Dashboard not found"})


async def test_ds_query_answers_frames_that_spike_after_the_deploy(
    grafana: GrafanaEmulator, http: aiohttp.ClientSession
) -> None:
    start, end = DEPLOY_MS - 30 * 60_000, DEPLOY_MS + 20 * 60_000
    status, body, _ = await _call(http, grafana, "POST", "/api/ds/query", body=_query(ERRORS, (start, end)))
    assert status == 200
    frames = body["results"]["A"]["frames"]
    by_service = {f["schema"]["fields"][1]["labels"]["service"]: f for f in frames}
    assert set(by_service) == {"checkout", "cart", "payments"}
    checkout = by_service["checkout"]
    assert [f["name"] for f in checkout["schema"]["fields"]] == ["Time", "Value"]
    times, values = checkout["data"]["values"]
    assert times[0] == start and times[1] - times[0] == 60_000 and times[-1] == end
    before = [v for t, v in zip(times, values, strict=True) if t < DEPLOY_MS]
    after = [v for t, v in zip(times, values, strict=True) if t >= DEPLOY_MS]
    assert max(before) < 0.25 and min(after) > 7, "0.2 req/s before the deploy, 40 times that after"
    assert max(by_service["cart"]["data"]["values"][1]) < 0.25, "only checkout spikes"
    again = await _call(http, grafana, "POST", "/api/ds/query", body=_query(ERRORS, (start, end)))
    assert again[1] == body, "the same question gets the same numbers"


async def test_matchers_and_aggregations_select_the_seeded_series(
    grafana: GrafanaEmulator, http: aiohttp.ClientSession
) -> None:
    window = (DEPLOY_MS - 600_000, DEPLOY_MS + 600_000)

    async def series(expr: str) -> list[dict[str, str]]:
        _, body, _ = await _call(http, grafana, "POST", "/api/ds/query", body=_query(expr, window))
        return [f["schema"]["fields"][1]["labels"] for f in body["results"]["A"]["frames"]]

    assert await series('sum(rate(http_requests_total{service!~"cart|payments"}[5m]))') == [{}]
    raw = await series('rate(http_requests_total{namespace="staging",service="cart",code="200"}[5m])')
    assert raw == [{"code": "200", "namespace": "staging", "service": "cart"}]
    assert await series('rate(no_such_metric{service="cart"}[5m])') == []


async def test_a_bad_query_is_a_400_with_the_data_source_message(
    grafana: GrafanaEmulator, http: aiohttp.ClientSession
) -> None:
    window = (DEPLOY_MS, DEPLOY_MS + 600_000)
    assert (await _call(http, grafana, "POST", "/api/ds/query", body=_query('x{a="$b"}', window)))[
        0
    ] == 200, "a $ inside a label value is text, not a variable"
    cases = {
        "sum(rate(x[5m])": "1:4: parse error: unclosed left parenthesis",
        "rate(x[5m]) > $threshold": "1:15: parse error: unexpected character: '$'",
        "rate(x[5m]))": "1:12: parse error: unexpected right parenthesis ')'",
    }
    for expr, message in cases.items():
        status, body, _ = await _call(http, grafana, "POST", "/api/ds/query", body=_query(expr, window))
        assert status == 400, expr
        result = body["results"]["A"]
        assert result["status"] == 400 and result["errorSource"] == "downstream"
        assert result["error"] == f'bad_data: invalid parameter "query": {message}'
    status, body, _ = await _call(http, grafana, "POST", "/api/ds/query", body={"queries": []})
    assert (status, body["message"]) == (400, "No queries found")
    status, body, _ = await _call(
        http, grafana, "POST", "/api/ds/query", body=_query("up", window, uid="nope")
    )
    assert (status, body["message"]) == (404, "Data source not found")


async def test_annotations_filter_by_window_tags_and_dashboard(
    grafana: GrafanaEmulator, http: aiohttp.ClientSession
) -> None:
    params = {"from": str(DEPLOY_MS - 60_000), "to": str(DEPLOY_MS + 60_000), "tags": "deploy"}
    _, found, _ = await _call(http, grafana, "GET", "/api/annotations", params=params)
    [deploy] = found
    assert deploy["time"] == DEPLOY_MS and deploy["text"].startswith("Deployed checkout v2.3.1")
    _, day, _ = await _call(
        http, grafana, "GET", "/api/annotations", params={"from": str(DEPLOY_MS - 86_400_000)}
    )
    assert [a["id"] for a in day] == [101, 100], "newest first"
    _, scoped, _ = await _call(
        http, grafana, "GET", "/api/annotations", params={"dashboardUID": "payments-api"}
    )
    assert [a["id"] for a in scoped] == [100]


async def test_alerts_are_alertmanager_v2_and_silenced_ones_can_be_left_out(
    grafana: GrafanaEmulator, http: aiohttp.ClientSession
) -> None:
    path = "/api/alertmanager/grafana/api/v2/alerts"
    _, everything, _ = await _call(http, grafana, "GET", path)
    assert {a["labels"]["alertname"] for a in everything} == {"CheckoutHigh5xxRate", "CartSlowRequests"}
    params = {"active": "true", "silenced": "false", "inhibited": "false"}
    _, firing, _ = await _call(http, grafana, "GET", path, params=params)
    [alert] = firing
    assert alert["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    assert alert["annotations"]["__dashboardUid__"] == CHECKOUT_UID
    _, none, _ = await _call(http, grafana, "GET", path, params={**params, "filter": 'service="cart"'})
    assert none == []
    status, body, _ = await _call(http, grafana, "GET", path, params={"filter": "not a matcher"})
    assert status == 400 and body["message"] == "bad matcher format: not a matcher"


async def test_credentials_permissions_and_rate_limits_fail_as_grafana_does(
    grafana: GrafanaEmulator, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await _call(http, grafana, "GET", "/api/search", headers={})
    assert (status, body["message"], body["messageId"]) == (401, "Unauthorized", "auth.unauthorized")
    status, body, _ = await _call(
        http, grafana, "GET", "/api/search", headers={"Authorization": "Bearer wrong"}
    )
    assert (status, body["message"]) == (401, "Invalid API key")
    viewer = {"Authorization": "Bearer glsa_viewer"}
    status, body, _ = await _call(http, grafana, "GET", "/api/datasources", headers=viewer)
    assert status == 403 and body["title"] == "Access denied"
    assert "datasources:read" in body["message"]
    assert (await _call(http, grafana, "GET", "/api/search", headers=viewer))[0] == 200
    status, sources, _ = await _call(http, grafana, "GET", "/api/datasources")
    assert status == 200 and [s["uid"] for s in sources] == [PROMETHEUS_UID, "loki-main"]
    grafana.rate_limited = True
    status, body, headers = await _call(http, grafana, "GET", "/api/search")
    assert (status, body["message"], headers["Retry-After"]) == (429, "Too Many Requests", "30")
    status, health, _ = await _call(http, grafana, "GET", "/api/health", headers={})
    assert status == 200 and health["database"] == "ok", "health needs no credentials and is not limited"
    assert [c.status for c in grafana.calls][-2:] == [429, 200]
