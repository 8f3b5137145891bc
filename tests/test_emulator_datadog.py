"""The Datadog emulator answers as Datadog's API does, over plain HTTP: metric queries grouped and rolled
up into pointlists, searches with cursors, aggregations into buckets, monitors with their group states,
events in a window; errors are Datadog's ``{"errors": [...]}`` bodies (403 for a wrong key, 400 for a
query it cannot parse, 429 with the rate-limit headers)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from incidentfox.emulators.datadog import DatadogEmulator
from incidentfox.emulators.datadog_search import SearchError, compile_search, parse_metric_query
from incidentfox.emulators.datadog_seed import ALERT_MONITOR_ID, seed_checkout_incident


@pytest.fixture
async def dd() -> AsyncIterator[DatadogEmulator]:
    async with DatadogEmulator() as emulator:
        seed_checkout_incident(emulator.store, datetime.now(UTC))
        yield emulator


@pytest.fixture
async def http(dd: DatadogEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"DD-API-KEY": dd.api_key, "DD-APPLICATION-KEY": dd.app_key}
    async with aiohttp.ClientSession(base_url=dd.url, headers=headers) as session:
        yield session


async def _get(http: aiohttp.ClientSession, path: str, **query: Any) -> tuple[int, Any]:
    async with http.get(path, params={k: str(v) for k, v in query.items()}) as response:
        return response.status, await response.json()


async def _post(http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(path, json=body) as response:
        return response.status, await response.json()


def _hour() -> dict[str, int]:
    now = int(time.time())
    return {"from": now - 3600, "to": now}


async def test_a_wrong_key_is_forbidden_and_validate_needs_only_the_api_key(dd: DatadogEmulator) -> None:
    async with aiohttp.ClientSession(base_url=dd.url) as anonymous:
        async with anonymous.get("/api/v1/validate", headers={"DD-API-KEY": dd.api_key}) as response:
            assert (response.status, await response.json()) == (200, {"valid": True})
        async with anonymous.get("/api/v1/monitor", headers={"DD-API-KEY": dd.api_key}) as response:
            assert (response.status, await response.json()) == (403, {"errors": ["Forbidden"]})
        async with anonymous.get("/api/v1/validate", headers={"DD-API-KEY": "wrong"}) as response:
            assert (response.status, await response.json()) == (403, {"errors": ["Forbidden"]})
    assert [c.status for c in dd.calls] == [200, 403, 403]


async def test_a_metric_query_groups_rolls_up_and_reports_its_scope(http: aiohttp.ClientSession) -> None:
    query = "sum:trace.http.request.errors{env:prod,!service:payments} by {resource_name}.as_count()"
    status, body = await _get(http, "/api/v1/query", query=query, **_hour())
    assert status == 200 and body["status"] == "ok" and body["group_by"] == ["resource_name"]
    scopes = {s["scope"]: s for s in body["series"]}
    assert set(scopes) == {"resource_name:get_/api/cart", "resource_name:post_/api/checkout"}
    checkout = scopes["resource_name:post_/api/checkout"]
    assert checkout["interval"] == 60 and checkout["length"] == len(checkout["pointlist"])
    assert max(v for _, v in checkout["pointlist"]) == 29 and checkout["pointlist"][0][0] % 60000 == 0
    total = await _get(http, "/api/v1/query", query="avg:system.cpu.user{*}", **_hour())
    [cpu] = total[1]["series"]
    assert cpu["scope"] == "*" and cpu["tag_set"] == [] and 35 <= cpu["pointlist"][-1][1] <= 38


async def test_a_query_datadog_cannot_parse_is_400_with_its_errors(http: aiohttp.ClientSession) -> None:
    status, body = await _get(http, "/api/v1/query", query="avg:system.cpu.user{host:a", **_hour())
    assert status == 400 and body["errors"][0].startswith("Error parsing query:")
    missing = await _get(http, "/api/v1/query", query="avg:system.cpu.user{*}")
    assert missing[0] == 400
    logs = await _post(http, "/api/v2/logs/events/search", {"filter": {"query": "service:(a OR"}})
    assert logs == (400, {"errors": ["Invalid query: unbalanced parentheses in 'service:(a OR'"]})


async def test_active_metrics_are_listed_by_tags_since_a_time(http: aiohttp.ClientSession) -> None:
    since = int(time.time()) - 600
    status, body = await _get(http, "/api/v1/metrics", **{"from": since, "tag_filter": "service:check*"})
    assert status == 200 and body["from"] == str(since)
    assert body["metrics"] == [
        "checkout.payment.declined",
        "trace.http.request.errors",
        "trace.http.request.hits",
    ]
    future = await _get(http, "/api/v1/metrics", **{"from": int(time.time()) + 600})
    assert future[1]["metrics"] == []


async def test_a_log_search_pages_with_a_cursor(http: aiohttp.ClientSession) -> None:
    body: dict[str, Any] = {
        "filter": {"query": "service:checkout status:error", "from": "now-1h", "to": "now"},
        "sort": "-timestamp",
        "page": {"limit": 25},
    }
    status, first = await _post(http, "/api/v2/logs/events/search", body)
    assert status == 200 and len(first["data"]) == 25 and first["data"][0]["type"] == "log"
    cursor = first["meta"]["page"]["after"]
    assert first["links"]["next"].endswith(f"page[cursor]={cursor}")
    _, second = await _post(
        http, "/api/v2/logs/events/search", {**body, "page": {"limit": 25, "cursor": cursor}}
    )
    assert len(second["data"]) == 15 and "page" not in second["meta"]
    stamps = [log["attributes"]["timestamp"] for log in first["data"] + second["data"]]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == 40


async def test_log_aggregation_counts_and_timeseries_by_facet(http: aiohttp.ClientSession) -> None:
    window = {"query": "*", "from": "now-1h", "to": "now"}
    _, alphabetical = await _post(
        http,
        "/api/v2/logs/analytics/aggregate",
        {"filter": window, "compute": [{"aggregation": "count"}], "group_by": [{"facet": "status"}]},
    )
    assert [(b["by"]["status"], b["computes"]["c0"]) for b in alphabetical["data"]["buckets"]] == [
        ("error", 40),
        ("info", 60),
        ("warn", 5),
    ]
    series_request = {
        "filter": {"query": "status:error", "from": "now-30m", "to": "now"},
        "compute": [{"aggregation": "count", "type": "timeseries", "interval": "10m"}],
        "group_by": [
            {"facet": "service", "sort": {"aggregation": "count", "order": "desc", "type": "measure"}}
        ],
    }
    _, series = await _post(http, "/api/v2/logs/analytics/aggregate", series_request)
    [bucket] = series["data"]["buckets"]
    points = bucket["computes"]["c0"]
    assert bucket["by"] == {"service": "checkout"} and sum(p["value"] for p in points) == 40
    assert all(p["time"].endswith("Z") for p in points)


async def test_span_aggregation_computes_percentiles_of_duration(http: aiohttp.ClientSession) -> None:
    request = {
        "data": {
            "type": "aggregate_request",
            "attributes": {
                "filter": {"query": "service:checkout", "from": "now-1h", "to": "now"},
                "compute": [{"aggregation": "count"}, {"aggregation": "pc95", "metric": "@duration"}],
                "group_by": [{"facet": "resource_name", "sort": {"aggregation": "count", "order": "desc"}}],
            },
        }
    }
    status, body = await _post(http, "/api/v2/spans/analytics/aggregate", request)
    assert status == 200
    first = body["data"][0]
    assert first["type"] == "bucket" and first["attributes"]["by"] == {"resource_name": "POST /api/checkout"}
    assert first["attributes"]["computes"]["c0"] == 90 and first["attributes"]["computes"]["c1"] >= 3e9
    wrong = await _post(http, "/api/v2/spans/analytics/aggregate", {"data": {"type": "search_request"}})
    assert wrong == (400, {"errors": ["data.type must be aggregate_request"]})


async def test_monitors_reveal_their_groups_only_when_asked(http: aiohttp.ClientSession) -> None:
    _, plain = await _get(http, "/api/v1/monitor")
    assert [m["overall_state"] for m in plain] == ["Alert", "Warn", "OK"] and plain[0]["state"] == {}
    _, alerting = await _get(http, "/api/v1/monitor", group_states="alert", monitor_tags="service:checkout")
    assert [m["id"] for m in alerting] == [ALERT_MONITOR_ID, ALERT_MONITOR_ID + 1]
    assert alerting[0]["state"]["groups"]["*"]["status"] == "Alert" and alerting[1]["state"]["groups"] == {}
    _, paged = await _get(http, "/api/v1/monitor", page_size=1, page=2)
    assert [m["name"] for m in paged] == ["[payments] charge errors"]
    assert (await _get(http, "/api/v1/monitor", page_size=0))[0] == 400


async def test_events_are_listed_newest_first_in_their_window(http: aiohttp.ClientSession) -> None:
    now = int(time.time())
    _, body = await _get(http, "/api/v1/events", start=now - 3600, end=now)
    assert body["status"] == "ok" and [e["source_type_name"] for e in body["events"]] == [
        "github",
        "launchdarkly",
    ]
    _, deploys = await _get(
        http, "/api/v1/events", start=now - 3600, end=now, sources="github", tags="env:prod"
    )
    assert [e["title"] for e in deploys["events"]] == ["Deployed checkout v2.14.0 to prod"]
    assert deploys["events"][0]["url"] == f"/event/event?id={deploys['events'][0]['id']}"


async def test_hosts_are_searched_by_name_or_tag_and_paged(http: aiohttp.ClientSession) -> None:
    _, tagged = await _get(http, "/api/v1/hosts", filter="service:checkout")
    assert tagged["total_matching"] == 2 and [h["up"] for h in tagged["host_list"]] == [False, True]
    _, page = await _get(http, "/api/v1/hosts", start=1, count=1)
    assert page["total_matching"] == 3 and page["total_returned"] == 1
    assert page["host_list"][0]["host_name"] == "checkout-7d9f8-x2k4p"
    _, recent = await _get(http, "/api/v1/hosts", **{"from": int(time.time()) - 600})
    assert [h["name"] for h in recent["host_list"]] == ["checkout-7d9f8-x2k4p", "payments-55b6c-q9r7t"]


async def test_rate_limiting_answers_429_with_datadogs_headers(
    dd: DatadogEmulator, http: aiohttp.ClientSession
) -> None:
    dd.rate_limited = True
    async with http.post(
        "/api/v2/spans/events/search", json={"data": {"type": "search_request"}}
    ) as response:
        assert response.status == 429 and await response.json() == {"errors": ["Too many requests"]}
        assert response.headers["X-RateLimit-Limit"] == "300"
        assert response.headers["X-RateLimit-Period"] == "3600"
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert response.headers["X-RateLimit-Reset"] == "37"
        assert response.headers["X-RateLimit-Name"] == "spans_list"


def test_the_search_syntax_matches_as_datadog_reads_it() -> None:
    log = {
        "message": "payment declined: upstream timeout",
        "service": "checkout",
        "status": "error",
        "tags": ["env:prod", "team:payments"],
        "attributes": {"http": {"status_code": 502}},
    }
    matching = [
        'service:checkout status:(error OR warn) "upstream timeout"',
        "@http.status_code:>=500 -env:staging",
        "service:check* team:payments",
        "service:payments OR @http.status_code:5*",
        "declined",
        "*",
    ]
    assert all(compile_search(q)(log) for q in matching)
    not_matching = [
        "NOT env:prod",
        "@http.status_code:<500",
        "service:payments",
        '"no such words"',
        "team:web",
    ]
    assert not any(compile_search(q)(log) for q in not_matching)
    for bad in ("service:", ":x", '"open', "(a", "a OR"):
        with pytest.raises(SearchError, match="Invalid query"):
            compile_search(bad)


def test_metric_queries_parse_aggregation_scope_groups_and_rollup() -> None:
    parsed = parse_metric_query(
        "sum:trace.http.request.errors{env:prod,!host:canary-*} by {service}.as_count()"
    )
    assert (parsed.aggregation, parsed.metric, parsed.by, parsed.rollup) == (
        "sum",
        "trace.http.request.errors",
        ("service",),
        "sum",
    )
    assert parsed.scope_matches(["env:prod", "host:web-1"]) and not parsed.scope_matches(
        ["env:prod", "host:canary-2"]
    )
    assert parse_metric_query("system.load.1{*}.rollup(max, 300)").rollup_s == 300
    with pytest.raises(SearchError, match="Error parsing query"):
        parse_metric_query("sum:system.cpu.user{host:a} by service")
