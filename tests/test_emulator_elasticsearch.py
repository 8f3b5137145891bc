"""The Elasticsearch emulator answers as the search REST API does: documents loaded with ``_bulk`` and
``_doc`` come back from ``_search`` filtered by the query DSL, sorted, sized and aggregated; index
patterns resolve as ES resolves them; errors are ES's JSON bodies (400, 401, 404, 429)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from incidentfox.emulators.elasticsearch import ElasticsearchEmulator

NOW = datetime.now(UTC).replace(microsecond=0)


def _at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


DOCS = [
    *(
        {
            "@timestamp": _at(m),
            "message": f"payment declined for order {m}: upstream timeout",
            "service": {"name": "checkout"},
            "log": {"level": "error"},
        }
        for m in range(1, 11)
    ),
    *(
        {
            "@timestamp": _at(m + 0.5),
            "message": "GET /health 200",
            "service": {"name": "checkout"},
            "log.level": "info",
        }
        for m in range(1, 6)
    ),
    {
        "@timestamp": _at(90),
        "message": "retrying charge ch_91",
        "service": {"name": "payments"},
        "log.level": "warn",
    },
]


def _bulk_body(index: str) -> str:
    lines = [line for doc in DOCS for line in (json.dumps({"index": {"_index": index}}), json.dumps(doc))]
    return "\n".join(lines) + "\n"


@pytest.fixture
async def es() -> AsyncIterator[ElasticsearchEmulator]:
    async with ElasticsearchEmulator() as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _search(
    http: aiohttp.ClientSession, es: ElasticsearchEmulator, index: str, body: Any, **headers: str
) -> tuple[int, Any]:
    async with http.post(f"{es.url}/{index}/_search", json=body, headers=headers) as response:
        return response.status, await response.json()


async def _loaded(http: aiohttp.ClientSession, es: ElasticsearchEmulator) -> None:
    headers = {"Content-Type": "application/x-ndjson"}
    async with http.post(f"{es.url}/_bulk", data=_bulk_body("logs-checkout"), headers=headers) as response:
        answer = await response.json()
    assert response.status == 200 and answer["errors"] is False and len(answer["items"]) == len(DOCS)
    assert answer["items"][0]["index"]["status"] == 201
    async with http.post(
        f"{es.url}/logs-payments/_doc", json={"@timestamp": _at(0.2), "message": "ok"}
    ) as response:
        assert response.status == 201 and (await response.json())["result"] == "created"


def _messages(answer: Any) -> list[str]:
    return [hit["_source"]["message"] for hit in answer["hits"]["hits"]]


async def test_bulk_then_search_sorts_newest_first_and_honours_size(
    es: ElasticsearchEmulator, http: aiohttp.ClientSession
) -> None:
    await _loaded(http, es)
    body = {"query": {"match_all": {}}, "sort": [{"@timestamp": {"order": "desc"}}], "size": 3}
    status, answer = await _search(http, es, "logs-*", body)
    assert status == 200
    assert answer["hits"]["total"] == {"value": len(DOCS) + 1, "relation": "eq"}
    assert _messages(answer) == ["ok", "payment declined for order 1: upstream timeout", "GET /health 200"]
    assert answer["hits"]["hits"][1]["_index"] == "logs-checkout" and "sort" in answer["hits"]["hits"][0]
    async with http.get(
        f"{es.url}/logs-payments,logs-checkout/_search",
        params={"source": json.dumps({"size": 0}), "source_content_type": "application/json"},
    ) as response:
        assert (await response.json())["hits"]["total"]["value"] == len(DOCS) + 1


async def test_bool_match_term_range_and_query_string_filter_as_es_does(
    es: ElasticsearchEmulator, http: aiohttp.ClientSession
) -> None:
    await _loaded(http, es)

    async def count(query: dict[str, Any]) -> int:
        status, answer = await _search(http, es, "logs-*", {"query": query, "size": 100})
        assert status == 200, answer
        return int(answer["hits"]["total"]["value"])

    window = {"range": {"@timestamp": {"gte": _at(4.4), "lte": _at(0)}}}
    assert await count({"bool": {"filter": [window, {"term": {"log.level": "error"}}]}}) == 4, (
        "1 to 4 minutes before the documents' NOW"
    )
    date_math = {"range": {"@timestamp": {"gte": "now-1d", "lte": "now"}}}
    assert await count({"bool": {"filter": [date_math]}}) == len(DOCS) + 1, "date math against the clock"
    assert await count({"match": {"message": "timeout health"}}) == 15
    assert await count({"match_phrase": {"message": "upstream timeout"}}) == 10
    assert await count({"terms": {"service.name": ["payments"]}}) == 1
    assert await count({"bool": {"must_not": [{"term": {"service.name": "checkout"}}]}}) == 2
    should = {
        "bool": {"filter": [window], "should": [{"match": {"message": "health"}}], "minimum_should_match": 1}
    }
    assert await count(should) == 3
    assert await count({"bool": {"filter": [window], "should": [{"match": {"message": "health"}}]}}) == 8, (
        "should is optional beside a filter"
    )
    qs = {
        'service.name:checkout AND "upstream timeout"': 10,
        "log.level:error OR log.level:warn": 11,
        "service.name:check* AND NOT message:health": 10,
        "charge OR ok": 2,
        "*": len(DOCS) + 1,
    }
    for text, expected in qs.items():
        assert await count({"query_string": {"query": text}}) == expected, text


async def test_terms_and_date_histogram_aggregations(
    es: ElasticsearchEmulator, http: aiohttp.ClientSession
) -> None:
    await _loaded(http, es)
    aggs = {
        "services": {"terms": {"field": "service.name", "size": 1}},
        "over_time": {"date_histogram": {"field": "@timestamp", "fixed_interval": "30m"}},
    }
    status, answer = await _search(http, es, "logs-checkout", {"size": 0, "aggs": aggs})
    assert status == 200 and answer["hits"]["hits"] == []
    services = answer["aggregations"]["services"]
    assert (
        services["buckets"] == [{"key": "checkout", "doc_count": 15}] and services["sum_other_doc_count"] == 1
    )
    histogram = answer["aggregations"]["over_time"]["buckets"]
    assert sum(b["doc_count"] for b in histogram) == len(DOCS)
    assert all(b["key_as_string"].endswith("Z") for b in histogram) and len(histogram) in (4, 5)


async def test_errors_are_es_json_bodies(es: ElasticsearchEmulator, http: aiohttp.ClientSession) -> None:
    await _loaded(http, es)
    status, answer = await _search(http, es, "logs-*", {"query": {"query_string": {"query": '"unclosed'}}})
    assert status == 400 and answer["status"] == 400
    assert answer["error"]["type"] == "search_phase_execution_exception"
    assert answer["error"]["root_cause"][0]["type"] == "query_shard_exception"
    assert "Failed to parse query" in answer["error"]["root_cause"][0]["reason"]
    status, answer = await _search(http, es, "logs-*", {"query": {"nope": {}}})
    assert (status, answer["error"]["type"], answer["error"]["reason"]) == (
        400,
        "parsing_exception",
        "unknown query [nope]",
    )
    status, answer = await _search(http, es, "missing-index", {})
    assert status == 404 and answer["error"]["type"] == "index_not_found_exception"
    assert answer["error"]["reason"] == "no such index [missing-index]"
    status, answer = await _search(http, es, "nothing-*", {})
    assert status == 200 and answer["hits"]["total"]["value"] == 0, "a pattern matching nothing is empty"
    es.rejecting = True
    status, answer = await _search(http, es, "logs-*", {})
    assert status == 429 and answer["error"]["root_cause"][0]["type"] == "es_rejected_execution_exception"
    assert [c.status for c in es.calls][-1] == 429


async def test_credentials_are_required_when_configured(http: aiohttp.ClientSession) -> None:
    async with ElasticsearchEmulator(api_key="a2V5OnNlY3JldA==", basic_auth=("elastic", "pw")) as es:
        async with http.get(f"{es.url}/") as response:
            answer = await response.json()
        assert response.status == 401 and answer["error"]["type"] == "security_exception"
        assert "missing authentication credentials" in answer["error"]["reason"]
        for header in ("ApiKey a2V5OnNlY3JldA==", aiohttp.encode_basic_auth("elastic", "pw")):
            async with http.get(f"{es.url}/", headers={"Authorization": header}) as response:
                assert response.status == 200 and (await response.json())["tagline"] == "You Know, for Search"
    async with ElasticsearchEmulator(distribution="opensearch") as es, http.get(f"{es.url}/") as response:
        assert (await response.json())["version"]["distribution"] == "opensearch"


async def test_cat_indices_lists_indices_as_strings_sorted_and_with_health(
    es: ElasticsearchEmulator, http: aiohttp.ClientSession
) -> None:
    await _loaded(http, es)
    params = {"format": "json", "bytes": "b", "s": "docs.count:desc"}
    async with http.get(f"{es.url}/_cat/indices", params=params) as response:
        rows = await response.json()
    assert response.status == 200
    assert [(r["index"], r["docs.count"], r["health"]) for r in rows] == [
        ("logs-checkout", str(len(DOCS)), "green"),
        ("logs-payments", "1", "green"),
    ]
    assert all(isinstance(v, str) for r in rows for v in r.values())
    assert int(rows[0]["store.size"]) > int(rows[1]["store.size"]) > 0
    es.health["logs-payments"] = "red"
    async with http.get(
        f"{es.url}/_cat/indices/logs-p*", params={"v": "true", "h": "health,index"}
    ) as response:
        text = await response.text()
    assert response.status == 200 and text.splitlines() == ["health index", "red    logs-payments"]
    async with http.get(f"{es.url}/_cat/indices/nothing-*", params={"format": "json"}) as response:
        assert response.status == 200 and await response.json() == []
    async with http.get(f"{es.url}/_cat/indices/applogs", params={"format": "json"}) as response:
        answer = await response.json()
    assert response.status == 404 and answer["error"]["type"] == "index_not_found_exception"
    async with http.get(f"{es.url}/_cat/indices", params={"format": "json", "h": "nope"}) as response:
        assert (
            response.status == 400 and (await response.json())["error"]["reason"] == "Unknown column [nope]"
        )


async def test_field_caps_follow_dynamic_mapping_and_show_type_conflicts(
    es: ElasticsearchEmulator, http: aiohttp.ClientSession
) -> None:
    await _loaded(http, es)
    async with http.get(f"{es.url}/logs-*/_field_caps", params={"fields": "*"}) as response:
        answer = await response.json()
    assert response.status == 200 and answer["indices"] == ["logs-checkout", "logs-payments"]
    fields = answer["fields"]
    assert fields["@timestamp"] == {
        "date": {"type": "date", "metadata_field": False, "searchable": True, "aggregatable": True}
    }
    assert fields["message"]["text"]["aggregatable"] is False
    assert fields["message.keyword"]["keyword"]["aggregatable"] is True
    assert set(fields["log.level"]) == {"text"} and fields["service"]["object"]["searchable"] is False
    assert fields["_id"]["_id"]["metadata_field"] is True
    es.index("metrics-a", [{"status": 200, "latency": 0.25, "ok": True}])
    es.index("metrics-b", [{"status": "timeout"}])
    es.mappings["metrics-b"] = {"host.ip": "ip"}
    async with http.post(f"{es.url}/metrics-*/_field_caps", params={"fields": "status,host.*"}) as response:
        answer = await response.json()
    assert answer["fields"]["status"]["long"]["indices"] == ["metrics-a"]
    assert answer["fields"]["status"]["text"]["indices"] == ["metrics-b"]
    assert answer["fields"]["host.ip"] == {
        "ip": {"type": "ip", "metadata_field": False, "searchable": True, "aggregatable": True}
    }
    assert "latency" not in answer["fields"], "only the fields asked for"
    async with http.get(f"{es.url}/metrics-*/_field_caps") as response:
        answer = await response.json()
    assert response.status == 400 and answer["error"]["type"] == "action_request_validation_exception"
    es.rejecting = True
    for path in ("/metrics-*/_field_caps?fields=*", "/_cat/indices?format=json"):
        async with http.get(f"{es.url}{path}") as response:
            assert response.status == 429
