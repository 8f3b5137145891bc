"""The Coralogix emulator answers as Coralogix's Direct Query HTTP API and Alerts API v3 do: a DataPrime or
Lucene query comes back as NDJSON (a query id, result batches with metadata, labels and userData,
warnings), alert definitions as ``alertDefs``; errors are gRPC-gateway bodies (401 without a known
key, 403 without the permission, 400 for a query that does not compile, 429 with Retry-After)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from incidentfox.emulators.coralogix import (
    ALERTS_PATH,
    API_KEY,
    QUERY_PATH,
    AlertDef,
    CoralogixEmulator,
)

NOW = datetime.now(UTC).replace(microsecond=0)
AUTH = {"Authorization": f"Bearer {API_KEY}"}
LOGS_ONLY = "cxup_logsOnlyKey"


def _at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


@pytest.fixture
async def cx() -> AsyncIterator[CoralogixEmulator]:
    async with CoralogixEmulator(
        api_keys={API_KEY: ("logs", "alerts"), LOGS_ONLY: ("logs",)}, batch_size=2
    ) as emu:
        for m in range(1, 6):
            emu.log(
                _at(m),
                "error",
                "shop",
                "checkout",
                {"message": f"upstream timeout {m}", "http": {"status": 504}},
            )
        emu.log(_at(2.5), "info", "shop", "checkout", {"message": "GET /cart 200"})
        emu.log(_at(3.5), "warning", "shop", "payments", "retrying charge ch_91")
        emu.log(_at(40), "critical", "shop", "checkout", {"message": "panic long ago"})
        yield emu


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _window(minutes: float = 15) -> dict[str, Any]:
    start = (NOW - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return {"startDate": start, "endDate": (NOW + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")}


async def _post(
    http: aiohttp.ClientSession,
    cx: CoralogixEmulator,
    query: str,
    headers: dict[str, str] | None = None,
    **metadata: Any,
) -> tuple[int, Any, dict[str, str]]:
    body = {"query": query, "metadata": {**_window(), **metadata}}
    async with http.post(
        f"{cx.url}{QUERY_PATH}", json=body, headers=AUTH if headers is None else headers
    ) as r:
        text = await r.text()
        if r.status != 200:
            return r.status, json.loads(text), dict(r.headers)
        assert r.content_type == "application/x-ndjson"
        return r.status, [json.loads(line) for line in text.splitlines()], dict(r.headers)


def _rows(lines: Any) -> list[dict[str, Any]]:
    return [row for line in lines if "result" in line for row in line["result"]["results"]]


def _data(lines: Any) -> list[Any]:
    return [json.loads(row["userData"]) for row in _rows(lines)]


async def test_a_query_answers_ndjson_with_a_query_id_and_result_batches_newest_first(
    cx: CoralogixEmulator, http: aiohttp.ClientSession
) -> None:
    status, lines, _ = await _post(http, cx, "source logs | filter $l.subsystemname == 'checkout'")
    assert status == 200 and isinstance(lines, list)
    assert set(lines[0]) == {"queryId"} and lines[0]["queryId"]["queryId"]
    assert [len(line["result"]["results"]) for line in lines[1:]] == [2, 2, 2], "batches of batch_size"
    first = _rows(lines)[0]
    metadata = {p["key"]: p["value"] for p in first["metadata"]}
    labels = {p["key"]: p["value"] for p in first["labels"]}
    assert metadata["severity"] == "5" and metadata["timestamp"].startswith(_at(1).strftime("%Y-%m-%dT%H:%M"))
    assert labels == {"applicationname": "shop", "subsystemname": "checkout"}
    assert json.loads(first["userData"]) == {"message": "upstream timeout 1", "http": {"status": 504}}
    messages = [d["message"] for d in _data(lines)]
    assert messages == [f"upstream timeout {m}" for m in (1, 2)] + ["GET /cart 200"] + [
        f"upstream timeout {m}" for m in (3, 4, 5)
    ], "newest first, and the panic 40 minutes ago is outside the window"


async def test_filters_read_severity_labels_and_user_data_as_dataprime_does(
    cx: CoralogixEmulator, http: aiohttp.ClientSession
) -> None:
    async def texts(query: str) -> list[str]:
        status, lines, _ = await _post(http, cx, query, **_window(60))
        assert status == 200, lines
        return [d.get("message") or d.get("text") for d in _data(lines)]

    assert len(await texts("source logs | filter $m.severity == ERROR")) == 5
    assert await texts("source logs | filter $m.severity >= WARNING && $l.subsystemname != 'checkout'") == [
        "retrying charge ch_91"
    ]
    assert await texts("source logs | filter $m.severity == 'Critical' || $d.message ~ 'CART'") == [
        "GET /cart 200",
        "panic long ago",
    ]
    assert await texts(
        "source logs | filter $d.http.status == 504 && !($d.message ~ 'timeout 1') | limit 2"
    ) == [
        "upstream timeout 2",
        "upstream timeout 3",
    ]
    assert await texts("source logs | filter $d ~~ 'ch_91'") == ["retrying charge ch_91"]
    assert await texts("source logs | filter $m.severity == ERROR | limit 0") == []


async def test_groupby_orderby_choose_and_round_time_answer_objects_in_user_data(
    cx: CoralogixEmulator, http: aiohttp.ClientSession
) -> None:
    query = "source logs | groupby $l.subsystemname as service, $m.severity aggregate count() as n"
    query += " | orderby n desc"
    status, lines, _ = await _post(http, cx, query)
    assert status == 200
    assert all(row["metadata"] == [] and row["labels"] == [] for row in _rows(lines))
    assert _data(lines) == [
        {"service": "checkout", "severity": "Error", "n": 5},
        {"service": "checkout", "severity": "Info", "n": 1},
        {"service": "payments", "severity": "Warning", "n": 1},
    ]
    _, lines, _ = await _post(http, cx, "source logs | aggregate count() as total")
    assert _data(lines) == [{"total": 7}]
    _, lines, _ = await _post(http, cx, "source logs | countby $d.http.status | orderby _count asc")
    assert _data(lines) == [{"status": None, "_count": 2}, {"status": 504, "_count": 5}]
    _, lines, _ = await _post(
        http, cx, "source logs | filter $m.severity == ERROR | choose $m.timestamp as t, $d.message | limit 1"
    )
    [chosen] = _data(lines)
    assert chosen["message"] == "upstream timeout 1" and chosen["t"].endswith("Z")
    query = "source logs | groupby roundTime($m.timestamp, 1h) as hour aggregate count() as n"
    _, lines, _ = await _post(http, cx, query, **_window(60))
    buckets = _data(lines)
    assert sum(b["n"] for b in buckets) == 8 and all(b["hour"].endswith(":00:00.000000Z") for b in buckets)


async def test_lucene_syntax_searches_words_and_fields(
    cx: CoralogixEmulator, http: aiohttp.ClientSession
) -> None:
    status, lines, _ = await _post(
        http, cx, "coralogix.metadata.subsystemName:checkout AND timeout", syntax="QUERY_SYNTAX_LUCENE"
    )
    assert status == 200 and len(_rows(lines)) == 5
    _, lines, _ = await _post(http, cx, "ch_91 OR http.status:504", syntax="QUERY_SYNTAX_LUCENE")
    assert len(_rows(lines)) == 6


async def test_the_metadata_limit_cuts_results_with_a_warning(
    cx: CoralogixEmulator, http: aiohttp.ClientSession
) -> None:
    status, lines, _ = await _post(http, cx, "source logs", limit=3)
    assert status == 200 and len(_rows(lines)) == 3
    assert lines[-1] == {"warning": {"numberOfResultsLimitWarning": {"numberOfResultsLimit": 3}}}


async def test_bad_queries_and_metadata_are_400_compile_errors(
    cx: CoralogixEmulator, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await _post(http, cx, "source logs | filtr $m.severity == ERROR")
    assert status == 400 and isinstance(body, dict) and body["code"] == 3
    assert body["message"].startswith("Compilation errors: 1:15: unknown command 'filtr'")
    status, body, _ = await _post(http, cx, "source logs | filter $m.severity == LOUD")
    assert status == 400 and isinstance(body, dict) and "is not a severity" in body["message"]
    status, body, _ = await _post(http, cx, "source logs | filter $m.severity == 'loud'")
    assert status == 400 and isinstance(body, dict) and "is not a severity" in body["message"]
    status, body, _ = await _post(http, cx, "source spans")
    assert status == 400 and isinstance(body, dict) and "dataset 'spans' not found" in body["message"]
    status, body, _ = await _post(http, cx, "source logs", startDate="yesterday")
    assert status == 400 and isinstance(body, dict) and "invalid startDate" in body["message"]
    assert [c.status for c in cx.calls] == [400] * 5


async def test_keys_permissions_and_rate_limits_answer_as_the_gateway_does(
    cx: CoralogixEmulator, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await _post(http, cx, "source logs", headers={})
    assert status == 401 and body == {
        "code": 16,
        "message": "Unauthenticated: invalid or missing API key",
        "details": [],
    }
    status, _, _ = await _post(http, cx, "source logs", headers={"Authorization": "Bearer wrong"})
    assert status == 401
    async with http.get(
        f"{cx.url}{ALERTS_PATH}", headers={"Authorization": f"Bearer {LOGS_ONLY}"}
    ) as response:
        assert response.status == 403 and (await response.json())["code"] == 7
    cx.rate_limited = True
    status, body, headers = await _post(http, cx, "source logs")
    assert status == 429 and isinstance(body, dict) and body["code"] == 8
    assert headers.get("Retry-After") == "30"


async def test_a_runtime_failure_arrives_as_an_error_line_after_a_200(
    cx: CoralogixEmulator, http: aiohttp.ClientSession
) -> None:
    cx.runtime_error = "Query scan limit reached: bytes scanned exceeded the quota"
    status, lines, _ = await _post(http, cx, "source logs")
    assert status == 200 and isinstance(lines, list)
    assert lines[-1]["error"]["message"] == cx.runtime_error and not _rows(lines)


async def test_alert_definitions_come_back_in_the_v3_shape(
    cx: CoralogixEmulator, http: aiohttp.ClientSession
) -> None:
    fired = NOW - timedelta(minutes=3)
    cx.alerts.append(
        AlertDef(
            "Checkout errors",
            priority="P1",
            lucene_query="timeout",
            subsystems=["checkout"],
            last_triggered=fired,
        )
    )
    cx.alerts.append(AlertDef("Quiet", kind="METRIC_THRESHOLD", enabled=False))
    async with http.get(f"{cx.url}{ALERTS_PATH}", headers=AUTH) as response:
        assert response.status == 200
        body = await response.json()
    first, quiet = body["alertDefs"]
    properties = first["alertDefProperties"]
    assert properties["name"] == "Checkout errors" and properties["priority"] == "ALERT_DEF_PRIORITY_P1"
    assert properties["type"] == "ALERT_DEF_TYPE_LOGS_THRESHOLD"
    simple = properties["logsThreshold"]["logsFilter"]["simpleFilter"]
    assert simple["luceneQuery"] == "timeout"
    assert simple["labelFilters"]["subsystemName"][0]["value"] == "checkout"
    assert datetime.fromisoformat(first["lastTriggeredTime"]) == fired
    assert "lastTriggeredTime" not in quiet and quiet["alertDefProperties"]["enabled"] is False
    assert "metricThreshold" in quiet["alertDefProperties"]
