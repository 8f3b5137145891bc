"""``fetch_logs`` over Loki, Elasticsearch and Coralogix at once (each its emulator over real HTTP): one
question, the lines of every backend merged newest first with their source, a backend's own query
passed through, and a failing backend reported beside the others' lines, not instead of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.logs import LOGS, LogSources, configured_sources, connect
from incidentfox.emulators.coralogix import CoralogixEmulator, seed_checkout_incident
from incidentfox.emulators.datadog import DatadogEmulator
from incidentfox.emulators.elasticsearch import ElasticsearchEmulator
from incidentfox.emulators.loki import LokiEmulator
from tests.toolset_calls import run_tool

LOKI_TIMEOUT = "ERROR payment declined for order ord_{n}: upstream timeout after 3000ms"
ES_TIMEOUT = "checkout payment call failed: upstream timeout (order ord_{n})"
DD_TIMEOUT = "POST /api/checkout 502: upstream timeout from payments (order ord_{n})"


@dataclass
class Backends:
    loki: LokiEmulator
    es: ElasticsearchEmulator
    cx: CoralogixEmulator
    dd: DatadogEmulator

    def config(self, **extra: Any) -> dict[str, Any]:
        return {
            "integrations": {
                "loki": self.loki.integration_config(),
                "elasticsearch": self.es.integration_config(),
                "coralogix": self.cx.integration_config(),
                "datadog": self.dd.integration_config(),
                **extra,
            }
        }


def _seed(backends: Backends, now: datetime) -> None:
    ago = lambda seconds: now - timedelta(seconds=seconds)  # noqa: E731
    backends.loki.push(
        {"app": "checkout", "namespace": "prod", "level": "error"},
        [(ago(10 + 60 * i), LOKI_TIMEOUT.format(n=i)) for i in range(10)],
    )
    backends.loki.push(
        {"app": "payments", "namespace": "prod", "level": "info"},
        [(ago(30 * i), f"charge ok ch_{i} upstream fine") for i in range(10)],
    )
    backends.es.index(
        "logs-checkout",
        [
            {
                "@timestamp": ago(40 + 60 * i).isoformat().replace("+00:00", "Z"),
                "message": ES_TIMEOUT.format(n=i),
                "log": {"level": "error"},
                "service": {"name": "checkout"},
            }
            for i in range(10)
        ],
    )
    seed_checkout_incident(backends.cx, now)
    for i in range(8):
        backends.dd.store.add_log(
            ago(50 + 60 * i), DD_TIMEOUT.format(n=i), service="checkout", status="error", host="i-0abc"
        )
    backends.dd.store.add_log(ago(70), "payments upstream timeout retried", service="payments", status="warn")


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    async with (
        LokiEmulator() as loki,
        ElasticsearchEmulator() as es,
        CoralogixEmulator() as cx,
        DatadogEmulator() as dd,
    ):
        found = Backends(loki, es, cx, dd)
        _seed(found, datetime.now(UTC))
        yield found


@pytest.fixture
async def sources(backends: Backends) -> AsyncIterator[LogSources]:
    connected = await connect(backends.config())
    yield connected
    await connected.close()


async def _fetch(sources: LogSources, **args: Any) -> ToolResult:
    return await run_tool(LOGS, sources, "fetch_logs", **args)


async def test_one_question_reads_every_backend_merged_newest_first(sources: LogSources) -> None:
    result = await _fetch(sources, query="upstream timeout", service="checkout", start="-30m", limit=300)

    assert result.status == "ok", result
    data = result.data
    assert data["lines_by_source"] == {"loki": 10, "elasticsearch": 10, "coralogix": 36, "datadog": 8}
    lines = data["lines"]
    assert {line["source"] for line in lines} == {"loki", "elasticsearch", "coralogix", "datadog"}
    times = [datetime.fromisoformat(line["time"].replace("Z", "+00:00")) for line in lines]
    assert times == sorted(times, reverse=True), "one timeline across backends"
    assert all("upstream timeout" in line["message"] for line in lines)
    assert all(line["service"] == "checkout" for line in lines), "payments' lines are not checkout's"
    by_source: dict[str, Any] = {}
    for line in lines:
        by_source.setdefault(line["source"], line)
    assert by_source["loki"]["message"] == LOKI_TIMEOUT.format(n=0) and by_source["loki"]["level"] == "error"
    assert by_source["elasticsearch"]["message"] == ES_TIMEOUT.format(n=0)
    assert by_source["coralogix"]["level"] == "error" and by_source["coralogix"]["where"] == "shop-prod"
    assert by_source["datadog"] == {
        "source": "datadog",
        "time": by_source["datadog"]["time"],
        "service": "checkout",
        "level": "error",
        "message": DD_TIMEOUT.format(n=0),
        "where": "i-0abc",
    }
    assert '{app="checkout"} |= "upstream timeout"' in result.invocation
    assert 'service.name:"checkout" AND "upstream timeout"' in result.invocation
    assert "$l.subsystemname == 'checkout' && $d ~~ 'upstream timeout'" in result.invocation
    assert 'service:checkout "upstream timeout"' in result.invocation


async def test_the_limit_keeps_the_newest_lines_of_all_backends(sources: LogSources) -> None:
    result = await _fetch(sources, query="upstream timeout", service="checkout", start="-30m", limit=5)

    assert result.status == "ok", result
    assert len(result.data["lines"]) == 5
    first = datetime.fromisoformat(result.data["lines"][-1]["time"].replace("Z", "+00:00"))
    assert first > datetime.now(UTC) - timedelta(minutes=5), "the five newest of all, not of one backend"


async def test_a_backends_own_query_goes_to_that_backend_unchanged(sources: LogSources) -> None:
    logql = '{app="payments"} |= "charge ok"'
    result = await _fetch(sources, source="loki", query=logql, start="-30m", limit=3)

    assert result.status == "ok", result
    assert result.data["lines_by_source"] == {"loki": 3}
    assert all(line["message"].startswith("charge ok") for line in result.data["lines"])
    assert logql in result.invocation
    mixed = await _fetch(sources, query=logql, start="-30m")
    assert mixed.status == "error" and "name its source" in (mixed.error or "")


async def test_a_failing_backend_is_reported_beside_the_others(
    backends: Backends, sources: LogSources
) -> None:
    backends.es.rejecting = True

    result = await _fetch(sources, query="upstream timeout", service="checkout", start="-30m", limit=300)

    assert result.status == "ok", result
    counts = result.data["lines_by_source"]
    assert counts["loki"] == 10 and counts["coralogix"] == 36
    assert str(counts["elasticsearch"]).startswith("failed: ")
    assert {line["source"] for line in result.data["lines"]} == {"loki", "coralogix", "datadog"}


async def test_every_backend_failing_or_nothing_matching_says_so(
    backends: Backends, sources: LogSources
) -> None:
    nothing = await _fetch(sources, query="no such words anywhere", service="checkout", start="-30m")
    assert nothing.status == "no_data"
    assert "No log lines matched" in str(nothing.data) and "service checkout" in str(nothing.data)

    backends.es.rejecting = True
    backends.cx.rate_limited = True
    backends.loki.overloaded = True
    backends.dd.rate_limited = True
    failed = await _fetch(sources, query="upstream timeout", start="-30m")
    assert failed.status == "error"
    assert (failed.error or "").startswith("No log backend answered. loki: ")


async def test_only_configured_backends_are_asked_and_a_missing_one_is_named(backends: Backends) -> None:
    config = {"integrations": {"loki": backends.loki.integration_config(), "coralogix": {"enabled": False}}}
    assert [s.name for s in configured_sources(config)] == ["loki"]
    sources = await connect(config)
    try:
        result = await _fetch(sources, source="elasticsearch", query="timeout")
    finally:
        await sources.close()
    assert (
        result.status == "error"
        and result.error == "elasticsearch is not configured for this team; it has: loki."
    )
    with pytest.raises(ValueError, match="no log backend is configured"):
        await connect({"integrations": {}})
