"""The Loki emulator answers as Loki's HTTP API does: logs pushed as JSON come back from
``query_range`` as streams or, for a metric query, as a matrix; labels, label values and series list
what was pushed; errors are Loki's plain-text bodies (400 parse errors, 401 without a tenant or
credentials, 429 while overloaded)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from incidentfox.emulators.loki import LokiEmulator, parse_timestamp, to_ns

NOW = datetime.now(UTC).replace(microsecond=0)
CHECKOUT_ERRORS = {"app": "checkout", "level": "error"}
CHECKOUT_INFO = {"app": "checkout", "level": "info"}


def _at(minutes_ago: float) -> str:
    return str(to_ns(NOW - timedelta(minutes=minutes_ago)))


PUSH = {
    "streams": [
        {
            "stream": CHECKOUT_ERRORS,
            "values": [[_at(m), f"payment declined for order {m}: upstream timeout"] for m in range(1, 11)],
        },
        {
            "stream": CHECKOUT_INFO,
            "values": [
                [_at(m + 0.5), f'{{"msg": "GET /health 200", "status": "200", "took_ms": {m}}}']
                for m in range(1, 11)
            ],
        },
        {"stream": {"app": "payments", "level": "warn"}, "values": [[_at(3), "retrying charge ch_91"]]},
    ]
}


@pytest.fixture
async def loki() -> AsyncIterator[LokiEmulator]:
    async with LokiEmulator() as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _get(
    http: aiohttp.ClientSession,
    loki: LokiEmulator,
    path: str,
    headers: dict[str, str] | None = None,
    /,
    **query: Any,
) -> tuple[int, Any]:
    async with http.get(f"{loki.url}{path}", params=query, headers=headers or {}) as response:
        text = await response.text()
        if response.content_type == "application/json":
            return response.status, (await response.json())
        return response.status, text


async def _pushed(
    http: aiohttp.ClientSession, loki: LokiEmulator, headers: dict[str, str] | None = None
) -> int:
    async with http.post(f"{loki.url}/loki/api/v1/push", json=PUSH, headers=headers or {}) as response:
        return response.status


async def _lines(http: aiohttp.ClientSession, loki: LokiEmulator, query: str, **extra: Any) -> list[str]:
    status, body = await _get(http, loki, "/loki/api/v1/query_range", query=query, **extra)
    assert status == 200, body
    assert body["data"]["resultType"] == "streams"
    return [line for stream in body["data"]["result"] for _, line in stream["values"]]


async def test_pushed_lines_come_back_as_streams_newest_first_up_to_the_limit(
    loki: LokiEmulator, http: aiohttp.ClientSession
) -> None:
    assert await _pushed(http, loki) == 204
    status, body = await _get(
        http, loki, "/loki/api/v1/query_range", query='{app="checkout",level="error"}', limit=3
    )
    assert status == 200 and body["status"] == "success"
    [stream] = body["data"]["result"]
    assert stream["stream"] == CHECKOUT_ERRORS
    assert [line for _, line in stream["values"]] == [
        f"payment declined for order {m}: upstream timeout" for m in (1, 2, 3)
    ]
    assert all(isinstance(ns, str) and len(ns) == 19 for ns, _ in stream["values"])
    oldest = await _lines(http, loki, '{app="checkout",level="error"}', limit=2, direction="forward")
    assert oldest == [
        "payment declined for order 10: upstream timeout",
        "payment declined for order 9: upstream timeout",
    ]
    window = await _lines(
        http,
        loki,
        '{app="checkout",level="error"}',
        start=_at(4.5),
        end=NOW.isoformat().replace("+00:00", "Z"),
    )
    assert len(window) == 4, "start is a unix-ns string, end RFC3339"


async def test_line_filters_label_matchers_and_parsers_select_as_logql_does(
    loki: LokiEmulator, http: aiohttp.ClientSession
) -> None:
    await _pushed(http, loki)
    assert len(await _lines(http, loki, '{app="checkout"} |= "timeout"')) == 10
    assert len(await _lines(http, loki, '{app="checkout"} != "timeout" != "health"')) == 0
    assert await _lines(http, loki, '{app=~"pay.*"} |~ "ch_[0-9]+"') == ["retrying charge ch_91"]
    assert await _lines(http, loki, '{app=~"pay"}') == [], "label regexes are anchored"
    assert len(await _lines(http, loki, '{app=~".+", app!="payments", level!~"err.*"}')) == 10
    status, body = await _get(
        http, loki, "/loki/api/v1/query_range", query='{level="info"} | json | took_ms="3"', limit=5
    )
    assert status == 200
    [stream] = body["data"]["result"]
    assert stream["stream"]["msg"] == "GET /health 200" and stream["stream"]["status"] == "200"
    assert len(stream["values"]) == 1


async def test_metric_queries_answer_a_matrix(loki: LokiEmulator, http: aiohttp.ClientSession) -> None:
    await _pushed(http, loki)
    status, body = await _get(
        http,
        loki,
        "/loki/api/v1/query_range",
        query='count_over_time({app="checkout",level="error"}[5m])',
        start=str(int((NOW - timedelta(minutes=10)).timestamp())),
        end=str(int(NOW.timestamp())),
        step="300",
    )
    assert status == 200 and body["data"]["resultType"] == "matrix"
    [series] = body["data"]["result"]
    assert series["metric"] == CHECKOUT_ERRORS
    assert series["values"] == [
        [(NOW - timedelta(minutes=10)).timestamp(), "1"],
        [(NOW - timedelta(minutes=5)).timestamp(), "5"],
        [NOW.timestamp(), "4"],
    ], "each step counts (t-5m, t]: the line 5 minutes ago counts at -5m, the line 10 minutes ago at -10m"
    status, body = await _get(
        http,
        loki,
        "/loki/api/v1/query_range",
        query='sum by (level) (rate({app=~".+"}[10m]))',
        end=_at(0),
        step="1m",
    )
    rates = {s["metric"]["level"]: float(s["values"][-1][1]) for s in body["data"]["result"]}
    assert set(body["data"]["result"][0]["metric"]) == {"level"}
    assert rates["error"] == pytest.approx(9 / 600), "the line exactly 10m before end is outside (t-10m, t]"
    assert rates["warn"] == pytest.approx(1 / 600)


async def test_labels_values_and_series_list_what_was_pushed(
    loki: LokiEmulator, http: aiohttp.ClientSession
) -> None:
    await _pushed(http, loki)
    assert (await _get(http, loki, "/loki/api/v1/labels"))[1] == {
        "status": "success",
        "data": ["app", "level"],
    }
    _, values = await _get(http, loki, "/loki/api/v1/label/level/values", query='{app="checkout"}')
    assert values["data"] == ["error", "info"]
    _, series = await _get(http, loki, "/loki/api/v1/series", **{"match[]": '{level=~"warn|error"}'})
    assert sorted(s["app"] for s in series["data"]) == ["checkout", "payments"]
    status, text = await _get(http, loki, "/loki/api/v1/series")
    assert status == 400 and "at least 1 is required" in text
    old = str(int((NOW - timedelta(days=2)).timestamp()))
    _, empty = await _get(http, loki, "/loki/api/v1/labels", start=old, end=str(int(old) + 60))
    assert empty["data"] == []


async def test_bad_logql_is_a_400_with_loki_parse_error_as_plain_text(
    loki: LokiEmulator, http: aiohttp.ClientSession
) -> None:
    cases = {
        '{app="checkout"': "parse error at line 1, col 16: syntax error: unexpected $end, expecting } or ,",
        'sum(rate({app="x"}[5m])': "parse error at line 1, col 24: syntax error: unexpected $end",
        '{app=~".*"}': "queries require at least one regexp or equality matcher",
        '{app="x"} |~ "(unclosed"': "error parsing regexp",
        'count_over_time({app="x"})': "syntax error: unexpected ), expecting [",
    }
    for query, message in cases.items():
        status, text = await _get(http, loki, "/loki/api/v1/query_range", query=query)
        assert status == 400, query
        assert isinstance(text, str) and message in text, (query, text)
    status, text = await _get(http, loki, "/loki/api/v1/query_range", query='{app="x"}', limit=6000)
    assert status == 400 and "max entries limit per query exceeded" in text
    status, text = await _get(http, loki, "/loki/api/v1/query_range", query='{app="x"}', direction="sideways")
    assert status == 400 and "invalid direction" in text


async def test_credentials_tenants_and_overload_fail_as_loki_does(http: aiohttp.ClientSession) -> None:
    async with LokiEmulator(bearer_token="s3cret-token", auth_enabled=True) as loki:
        assert await _pushed(http, loki) == 401
        bearer = {"Authorization": "Bearer s3cret-token"}
        assert await _get(http, loki, "/loki/api/v1/labels", bearer) == (401, "no org id")
        assert await _pushed(http, loki, {**bearer, "X-Scope-OrgID": "team-a"}) == 204
        _, own = await _get(http, loki, "/loki/api/v1/labels", {**bearer, "X-Scope-OrgID": "team-a"})
        _, other = await _get(http, loki, "/loki/api/v1/labels", {**bearer, "X-Scope-OrgID": "team-b"})
        assert (own["data"], other["data"]) == (["app", "level"], [])
        assert await _get(http, loki, "/ready", bearer) == (200, "ready\n")
        loki.overloaded = True
        status, text = await _get(
            http, loki, "/loki/api/v1/query_range", {**bearer, "X-Scope-OrgID": "a"}, query='{a="b"}'
        )
        assert (status, text) == (429, "too many outstanding requests")
        assert [c.status for c in loki.calls][-1] == 429 and loki.calls[-1].tenant == "a"
    async with LokiEmulator(basic_auth=("bot", "pw")) as loki:
        assert (await _get(http, loki, "/loki/api/v1/labels"))[0] == 401
        basic = {"Authorization": aiohttp.encode_basic_auth("bot", "pw")}
        assert (await _get(http, loki, "/loki/api/v1/labels", basic))[0] == 200


def test_timestamps_are_read_as_loki_reads_them() -> None:
    at = datetime(2026, 1, 31, 14, 5, tzinfo=UTC)
    ns = to_ns(at)
    assert parse_timestamp(str(ns), 0) == ns
    assert parse_timestamp(str(int(at.timestamp())), 0) == ns
    assert parse_timestamp(f"{at.timestamp():.3f}", 0) == ns
    assert parse_timestamp("2026-01-31T14:05:00Z", 0) == ns
    assert parse_timestamp("", 7) == 7
