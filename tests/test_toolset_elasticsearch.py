"""The elasticsearch toolset against the Elasticsearch emulator holding half an hour of a checkout
incident: what each tool reports (hits newest first with time, message, index and key fields; errors
per service with their top messages; top field values; a histogram with its peak) and how it fails, in
one sentence, with Elasticsearch's own reason for a query it rejected."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from agents.tool_context import ToolContext

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.toolsets import elasticsearch as es_tools
from incidentfox.agents.toolsets.base import ToolResult, ToolsetHealth
from incidentfox.agents.toolsets.elasticsearch_api import EsClient, EsNotConfigured, connect
from incidentfox.agents.toolsets.function_tools import close_clients, toolset_function_tools
from incidentfox.agents.toolsets.loki import LOKI
from incidentfox.emulators.elasticsearch import ElasticsearchEmulator
from tests.prometheus_server import free_port
from tests.toolset_calls import run_once, run_tool

API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
TIMEOUT = "payment declined for order ord_{n}: upstream timeout after {ms}ms"
NPE = "java.lang.NullPointerException: cart is null"


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _seed(es: ElasticsearchEmulator, now: datetime) -> None:
    """Thirty minutes: 20 checkout timeouts (level error), 3 exceptions logged at warn, 30 requests
    served, and a quiet payments service in another index."""

    def doc(seconds: float, message: str, level: str, service: str = "checkout") -> dict[str, Any]:
        return {
            "@timestamp": _iso(now - timedelta(seconds=seconds)),
            "message": message,
            "log": {"level": level},
            "service": {"name": service},
            "host": {"name": f"{service}-7d9f8-x2k4p"},
            "trace": {"id": f"trace-{int(seconds)}"},
        }

    checkout = [doc(30 + 60 * i, TIMEOUT.format(n=1000 + i, ms=3000 + i), "error") for i in range(20)]
    checkout += [doc(95 + 300 * i, NPE, "warn") for i in range(3)]
    checkout += [doc(25 + 50 * i, f"GET /api/cart 200 {i}ms", "info") for i in range(30)]
    es.index("logs-checkout", checkout)
    es.index("logs-payments", [doc(60 * i + 10, f"charge ok ch_{i}", "info", "payments") for i in range(20)])


def _config(url: str, **settings: Any) -> dict[str, Any]:
    return {"integrations": {"elasticsearch": {"url": url, "index": "logs-*", **settings}}}


@pytest.fixture
async def es() -> AsyncIterator[ElasticsearchEmulator]:
    async with ElasticsearchEmulator() as emulator:
        _seed(emulator, datetime.now(UTC))
        yield emulator


@pytest.fixture
async def client(es: ElasticsearchEmulator) -> AsyncIterator[EsClient]:
    connected = await connect(_config(es.url, kibana_url="https://kibana.example.com"))
    yield connected
    await connected.close()


async def _run(client: EsClient, name: str, /, **args: Any) -> ToolResult:
    return await run_tool(es_tools.ELASTICSEARCH, client, name, **args)


async def _once(config: dict[str, Any], name: str, /, **args: Any) -> ToolResult:
    return await run_once(es_tools.ELASTICSEARCH, connect, config, name, **args)


async def test_a_search_returns_hits_newest_first_with_key_fields(client: EsClient) -> None:
    query = 'service.name:checkout AND "upstream timeout"'
    result = await _run(client, "es_search", query=query, start="-30m", limit=5)
    assert result.status == "ok", result
    assert result.data["matched"] == 20 and len(result.data["hits"]) == 5
    first = result.data["hits"][0]
    assert first["message"] == TIMEOUT.format(n=1000, ms=3000)
    assert (first["index"], first["service"], first["level"]) == ("logs-checkout", "checkout", "error")
    assert first["host"] == "checkout-7d9f8-x2k4p" and first["trace.id"] == "trace-30"
    times = [h["timestamp"] for h in result.data["hits"]]
    assert times == sorted(times, reverse=True)
    assert "Showing the newest 5 of 20" in result.data["note"]
    assert "index logs-* from " in result.invocation and query in result.invocation
    assert result.url is not None and result.url.startswith("https://kibana.example.com/app/discover#/?_g=")


async def test_the_error_summary_counts_errors_per_service_and_groups_messages(client: EsClient) -> None:
    result = await _run(client, "es_error_summary", start="-30m")
    assert result.status == "ok", result
    assert result.data["errors"] == 23, "20 at level error and 3 whose message says Exception"
    assert result.data["by_service"] == [{"service": "checkout", "errors": 23}]
    top = result.data["top_messages"]
    assert top[0]["message"] == "payment declined for order <id>: upstream timeout after <n>ms"
    assert top[0]["count"] == 20 and top[0]["latest"]["message"] == TIMEOUT.format(n=1000, ms=3000)
    assert top[1]["count"] == 3 and top[1]["latest"]["index"] == "logs-checkout"
    quiet = await _run(client, "es_error_summary", query="service.name:payments", start="-30m")
    assert quiet.status == "no_data" and "No errors among 20 documents" in str(quiet.data)


async def test_field_values_and_histogram_summarise_aggregations(client: EsClient) -> None:
    values = await _run(client, "es_field_values", field="service.name", start="-30m", size=1)
    assert values.status == "ok", values
    assert values.data["values"] == [{"value": "checkout", "count": 53}]
    assert values.data["other_values_count"] == 20
    histogram = await _run(client, "es_histogram", query="log.level:error", start="-30m")
    assert histogram.status == "ok", histogram
    assert histogram.data["interval"] == "30s" and histogram.data["documents"] == 20
    assert histogram.data["buckets"] <= es_tools.MAX_BUCKETS and histogram.data["peak"]["count"] == 1
    assert "histogram every 30s of index logs-*" in histogram.invocation


async def test_indices_list_health_docs_and_size_unhealthy_first(
    es: ElasticsearchEmulator, client: EsClient
) -> None:
    es.health["logs-payments"] = "red"
    result = await _run(client, "es_indices")
    assert result.status == "ok", result
    assert result.data["indices"] == 2 and result.data["by_health"] == {"red": 1, "green": 1}
    assert result.data["documents"] == 73 and "Red indices" in result.data["warning"]
    payments, checkout = result.data["index_list"]
    assert (payments["index"], payments["health"], payments["docs"]) == ("logs-payments", "red", 20)
    assert (checkout["index"], checkout["docs"], checkout["status"]) == ("logs-checkout", 53, "open")
    assert checkout["size_bytes"] > payments["size_bytes"] and checkout["size"].endswith("kb")
    assert result.invocation == (
        "GET /_cat/indices/logs-*?format=json&bytes=b&h=health,status,index,pri,rep,docs.count,store.size"
        "&s=index"
    )
    assert result.url == "https://kibana.example.com/app/management/data/index_management/indices"
    one = await _run(client, "es_indices", pattern="*checkout*")
    assert [i["index"] for i in one.data["index_list"]] == ["logs-checkout"]
    none = await _run(client, "es_indices", pattern="traces-*")
    assert none.status == "no_data" and none.data.startswith("No index matches traces-*.")
    missing = await _run(client, "es_indices", pattern="applogs")
    assert (
        missing.error is not None and "has no index applogs (no such index [applogs], 404)" in missing.error
    )
    with pytest.raises(ValueError, match="give an index name or pattern"):
        await _run(client, "es_indices", pattern="logs/../_cluster")


async def test_field_mapping_gives_types_aggregatable_fields_and_conflicts(
    es: ElasticsearchEmulator, client: EsClient
) -> None:
    result = await _run(client, "es_field_mapping", contains="level")
    assert result.status == "ok", result
    assert result.data["fields"] == [
        {"field": "log.level", "type": "text"},
        {"field": "log.level.keyword", "type": "keyword", "aggregatable": True},
    ]
    assert result.data["indices"] == 2 and "type_conflicts" not in result.data
    assert result.invocation == "GET /logs-*/_field_caps?fields=*level*"
    every = await _run(client, "es_field_mapping")
    names = [f["field"] for f in every.data["fields"]]
    assert "@timestamp" in names and "_id" not in names and "service" not in names, "no metadata or objects"
    assert {"field": "@timestamp", "type": "date", "aggregatable": True} in every.data["fields"]
    es.index("logs-gateway", [{"@timestamp": _iso(datetime.now(UTC)), "http": {"status": 502}}])
    es.index("logs-edge", [{"@timestamp": _iso(datetime.now(UTC)), "http": {"status": "bad gateway"}}])
    conflicted = await _run(client, "es_field_mapping", contains="http.status")
    assert conflicted.data["type_conflicts"] == [
        {"field": "http.status", "types": {"text": ["logs-edge"], "long": ["logs-gateway"]}}
    ]
    assert {"field": "http.status", "type": "text | long"} in conflicted.data["fields"]
    nothing = await _run(client, "es_field_mapping", contains="kubernetes")
    assert nothing.status == "no_data"
    assert nothing.data == "No fields whose name contains kubernetes in the 4 indices matching logs-*."
    missing = await _run(client, "es_field_mapping", index="applogs")
    assert missing.error is not None and "has no index applogs" in missing.error


async def test_nothing_matching_is_no_data_and_says_what_to_check(client: EsClient) -> None:
    result = await _run(client, "es_search", query="service.name:nonexistent", start="-30m")
    assert result.status == "no_data"
    assert "No documents in logs-* match service.name:nonexistent" in str(result.data)
    invalid = await _run(client, "es_search", query="*", start="-1m", end="-5m")
    assert invalid.status == "error" and invalid.error is not None and "must be before end" in invalid.error
    with pytest.raises(ValueError, match="keep the query under 1500 characters"):
        await _run(client, "es_histogram", query="a" * 2000)


async def test_a_bad_query_gives_elasticsearch_reason(client: EsClient) -> None:
    result = await _run(client, "es_search", query='message:"unclosed', start="-30m")
    assert result.status == "error" and result.error is not None
    assert result.error.startswith(
        "Elasticsearch rejected the request to search the logs: query_shard_exception"
    )
    assert "Failed to parse query" in result.error


async def test_a_missing_index_names_the_index_setting(client: EsClient) -> None:
    result = await _run(client, "es_search", query="*", index="applogs")
    assert result.status == "error" and result.error is not None
    assert "has no index applogs (no such index [applogs], 404)" in result.error
    assert "integrations.elasticsearch.index" in result.error


async def test_credentials_are_sent_and_missing_ones_say_what_to_set() -> None:
    async with ElasticsearchEmulator(api_key=API_KEY, basic_auth=("elastic", "s3cret")) as es:
        _seed(es, datetime.now(UTC))
        denied = await _once(_config(es.url), "es_search", query="*")
        assert denied.status == "error" and denied.error is not None
        assert "asked for credentials (401 security_exception)" in denied.error
        assert "integrations.elasticsearch.api_key" in denied.error
        for name in ("es_indices", "es_field_mapping"):
            refused = await _once(_config(es.url), name)
            assert (
                refused.error is not None
                and "asked for credentials (401 security_exception)" in refused.error
            )
        assert (await _once(_config(es.url, api_key=API_KEY), "es_indices")).status == "ok"
        assert (await _once(_config(es.url, api_key=API_KEY), "es_search", query="*")).status == "ok"
        basic = es.url.replace("http://", "http://elastic:s3cret@")
        assert (await _once(_config(basic), "es_search", query="*")).status == "ok"
        failing = await es_tools.health(_config(es.url))
        assert not failing.healthy and "401" in failing.reason


async def test_a_rejecting_cluster_is_rate_limited_try_again(es: ElasticsearchEmulator) -> None:
    es.rejecting = True
    for name in ("es_error_summary", "es_indices", "es_field_mapping"):
        result = await _once(_config(es.url), name)
        assert result.status == "error" and result.error is not None
        assert "is rate limited, try again in a minute (429 es_rejected_execution_exception" in result.error


async def test_an_unreachable_cluster_fails_in_one_sentence() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = await _once(_config(url), "es_histogram")
    assert result.error == (
        f"Elasticsearch at {url} is unreachable (connection refused); could not count documents over time."
    )
    health = await es_tools.health(_config(url))
    assert not health.healthy and "unreachable (connection refused)" in health.reason


async def test_health_identifies_the_cluster_and_says_why_not_otherwise(es: ElasticsearchEmulator) -> None:
    assert await es_tools.health(_config(es.url)) == ToolsetHealth.ok()
    assert [c.path for c in es.calls] == ["/"]
    client = await connect(_config(es.url))
    assert await client.info() == "Elasticsearch 8.13.4"
    await client.close()
    async with ElasticsearchEmulator(distribution="opensearch") as opensearch:
        client = await connect(_config(opensearch.url))
        assert await client.info() == "OpenSearch 2.13.0"
        await client.close()
    assert await es_tools.health({}) == ToolsetHealth(configured=False, reason="no url is set")
    wrong = await es_tools.health(_config(f"{es.url}/nope"))
    assert not wrong.healthy and "(no version at /)" not in wrong.reason and "404" in wrong.reason
    off = await es_tools.health(_config(es.url, enabled=False))
    assert not off.healthy and "turned off" in off.reason
    with pytest.raises(EsNotConfigured, match="http:// or https://"):
        await connect(_config("ftp://es:9200"))


def test_tool_names_are_prefixed_and_never_clash_with_other_toolsets() -> None:
    tools = toolset_function_tools(es_tools.ELASTICSEARCH, agent="logs")
    names = [t.name for t in tools]
    assert names == [
        "es_error_summary",
        "es_search",
        "es_field_values",
        "es_histogram",
        "es_indices",
        "es_field_mapping",
    ]
    assert all(t.strict_json_schema for t in tools)
    assert not set(names) & {t.name for t in LOKI.tools}
    assert es_tools.ELASTICSEARCH.missing_prerequisites({}) == ["integrations.elasticsearch.url"]


async def test_through_the_adapter_the_model_sees_hits_and_never_the_key() -> None:
    async with ElasticsearchEmulator(api_key=API_KEY) as es:
        _seed(es, datetime.now(UTC))
        config = {"integrations": {"elasticsearch": es.integration_config()}}
        ctx = InvestigationContext(
            run_id="r", org_id="o", team_node_id="t", config=config, emit=lambda e: None
        )
        tools = {t.name: t for t in toolset_function_tools(es_tools.ELASTICSEARCH, agent="logs")}
        args = {"query": "log.level:error", "index": None, "start": "-30m", "end": None, "limit": 2}
        raw = json.dumps(args)
        context = ToolContext(ctx, tool_name="es_search", tool_call_id="1", tool_arguments=raw)
        out = await tools["es_search"].on_invoke_tool(context, raw)
        assert API_KEY not in out
        answer = json.loads(out)
        assert answer["status"] == "ok" and len(answer["data"]["hits"]) == 2
        assert answer["data"]["hits"][0]["message"] == TIMEOUT.format(n=1000, ms=3000)
        client = ctx.clients["elasticsearch"]
        await close_clients(ctx)
        assert client.session.closed
