"""The coralogix toolset against the Coralogix emulator holding half an hour of a checkout incident: what
each tool reports (log lines with time, level, service and message, aggregations, the error summary an
SRE starts from, counts by field, triggered alerts), and how it fails, in one sentence, with
Coralogix's own message for a query that does not compile."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from agents.tool_context import ToolContext

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.toolsets import coralogix as cx
from incidentfox.agents.toolsets import coralogix_api
from incidentfox.agents.toolsets.base import ToolResult, ToolsetHealth
from incidentfox.agents.toolsets.coralogix_api import CxClient, CxNotConfigured, connect
from incidentfox.agents.toolsets.elasticsearch import ELASTICSEARCH
from incidentfox.agents.toolsets.function_tools import close_clients, toolset_function_tools
from incidentfox.agents.toolsets.loki import LOKI
from incidentfox.egress import EgressPolicy, install_policy
from incidentfox.emulators.coralogix import API_KEY, CoralogixEmulator, seed_checkout_incident
from tests.toolset_calls import run_once, run_tool

LOGS_ONLY = "cxup_logsOnly0123456789"
TIMEOUT = "payment declined for order ord_{n}: upstream timeout after {ms}ms"
PANIC = "panic: nil pointer dereference in cart.Total"
CHECKOUT_ERRORS = "source logs | filter $l.subsystemname == 'checkout' && $m.severity == ERROR"


def _config(url: str, **settings: Any) -> dict[str, Any]:
    return {"integrations": {"coralogix": {"url": url, "api_key": API_KEY, **settings}}}


@pytest.fixture
async def emulator() -> AsyncIterator[CoralogixEmulator]:
    async with CoralogixEmulator(api_keys={API_KEY: ("logs", "alerts"), LOGS_ONLY: ("logs",)}) as emu:
        seed_checkout_incident(emu, datetime.now(UTC))
        yield emu


@pytest.fixture
async def client(emulator: CoralogixEmulator) -> AsyncIterator[CxClient]:
    connected = await connect(_config(emulator.url))
    yield connected
    await connected.close()


async def _run(client: CxClient, name: str, /, **args: Any) -> ToolResult:
    return await run_tool(cx.CORALOGIX, client, name, **args)


async def _once(config: dict[str, Any], name: str, /, **args: Any) -> ToolResult:
    return await run_once(cx.CORALOGIX, connect, config, name, **args)


async def test_a_query_returns_log_lines_newest_first_with_level_service_and_message(
    client: CxClient,
) -> None:
    result = await _run(
        client, "cx_query", query=f"{CHECKOUT_ERRORS} && $d.message ~ 'timeout'", start="-30m", limit=4
    )
    assert result.status == "ok", result
    assert result.data["kind"] == "logs" and result.data["lines"] == 4
    entries = result.data["entries"]
    assert [e["message"] for e in entries] == [TIMEOUT.format(n=1000 + i, ms=3000 + i) for i in range(4)]
    first = entries[0]
    assert (first["level"], first["service"], first["application"]) == ("error", "checkout", "shop-prod")
    assert first["fields"] == {"order_id": "ord_1000", "http.status": 504, "trace_id": f"{0:032x}"}
    times = [datetime.fromisoformat(e["time"]) for e in entries]
    assert times == sorted(times, reverse=True) and first["time"].endswith("Z")
    assert result.data["lines_by_application_subsystem"] == {"shop-prod/checkout": 4}
    assert "Stopped at the limit of 4 lines" in result.data["note"]
    assert (
        result.invocation.startswith("DataPrime on the frequent tier from ")
        and "(limit 4)" in result.invocation
    )
    text = await _run(client, "cx_query", query="source logs | filter $m.severity == CRITICAL", start="-30m")
    assert [e["message"] for e in text.data["entries"]] == [PANIC, PANIC], "a text log's message is its text"


async def test_an_aggregation_returns_its_rows(client: CxClient) -> None:
    query = "source logs | groupby $l.subsystemname as service aggregate count() as n | orderby n desc"
    result = await _run(client, "cx_query", query=query, start="-30m")
    assert result.status == "ok", result
    assert result.data["kind"] == "aggregation"
    assert result.data["rows"] == [{"service": "checkout", "n": 104}, {"service": "payments", "n": 20}]


async def test_lucene_and_the_archive_tier_are_passed_to_coralogix(
    client: CxClient, emulator: CoralogixEmulator
) -> None:
    result = await _run(
        client,
        "cx_query",
        query="coralogix.metadata.subsystemName:checkout AND refused",
        syntax="lucene",
        tier="archive",
    )
    assert result.status == "ok", result
    assert {e["message"] for e in result.data["entries"]} == {
        f"db connection refused to 10.0.3.{i}:5432" for i in range(6)
    }
    metadata = emulator.calls[-1].body["metadata"]  # type: ignore[index]
    assert metadata["syntax"] == "QUERY_SYNTAX_LUCENE" and metadata["tier"] == "TIER_ARCHIVE"
    assert metadata["defaultSource"] == "logs" and metadata["limit"] == cx.DEFAULT_LIMIT
    assert result.invocation.startswith("Lucene on the archive tier")


async def test_the_error_summary_counts_errors_over_time_and_groups_messages(client: CxClient) -> None:
    result = await _run(client, "cx_error_summary", application="shop-prod", start="-30m")
    assert result.status == "ok", result
    data = result.data
    assert data["errors"] == 44 and data["by_level"] == {"error": 42, "critical": 2}
    assert data["by_application_subsystem"] == [{"service": "shop-prod/checkout", "errors": 44}]
    assert data["step"] == "1m" and sum(p["errors"] for p in data["series"]) == 44
    assert data["peak"]["errors"] == max(p["errors"] for p in data["series"]) >= 2
    top = data["top_messages"]
    assert [(m["message"], m["count"]) for m in top] == [
        ("payment declined for order <id>: upstream timeout after <n>ms", 36),
        ("db connection refused to <ip>", 6),
        (PANIC, 2),
    ]
    assert top[0]["latest"]["message"] == TIMEOUT.format(n=1000, ms=3000), "the newest line, quoted exactly"
    assert "roundTime($m.timestamp, 1m)" in result.invocation
    assert "$l.applicationname == 'shop-prod'" in result.invocation


async def test_no_errors_no_logs_and_no_matches_are_told_apart(client: CxClient) -> None:
    quiet = await _run(client, "cx_error_summary", subsystem="payments", start="-30m")
    assert quiet.status == "no_data" and "though there are logs" in quiet.data
    missing = await _run(client, "cx_error_summary", subsystem="no-such-service")
    assert missing.status == "no_data" and "No logs at all" in missing.data
    empty = await _run(client, "cx_query", query="source logs | filter $d.message ~ 'no such text'")
    assert empty.status == "no_data" and "cx_field_values" in empty.data and "archive tier" in empty.data


async def test_a_query_that_does_not_compile_fails_with_coralogix_own_message(client: CxClient) -> None:
    result = await _run(client, "cx_query", query="source logs | filtr $m.severity == ERROR")
    assert result.status == "error" and result.error is not None
    assert result.error.startswith(
        "Coralogix rejected the request to run the query: Compilation errors: 1:15: unknown command 'filtr'"
    )
    assert result.error.endswith("(400). Correct it and try again.")
    invalid = await _run(client, "cx_query", query="source logs", start="yesterday")
    assert invalid.error is not None and invalid.error.startswith("Cannot read the time 'yesterday'")
    with pytest.raises(ValueError, match="limit must be between 1 and 1000"):
        cx.QueryParams.model_validate({"query": "source logs", "limit": 5000})
    with pytest.raises(ValueError, match="give a field such as"):
        cx.FieldValuesParams.model_validate({"field": "$l"})


async def test_field_values_count_logs_by_a_field(client: CxClient) -> None:
    result = await _run(client, "cx_field_values", field="$l.subsystemname", start="-30m")
    assert result.status == "ok", result
    assert result.data == {
        "field": "$l.subsystemname",
        "logs": 124,
        "values": [{"value": "checkout", "logs": 104}, {"value": "payments", "logs": 20}],
        "other_values_logs": 0,
    }
    statuses = await _run(
        client,
        "cx_field_values",
        field="http.status",
        filter="$l.subsystemname == 'checkout'",
        start="-30m",
        size=1,
    )
    assert (
        statuses.data["values"] == [{"value": 200, "logs": 60}] and statuses.data["other_values_logs"] == 44
    )
    assert "groupby $d.http.status as value" in statuses.invocation
    none = await _run(client, "cx_field_values", field="$m.severity", filter="$l.subsystemname == 'nope'")
    assert none.status == "no_data"


async def test_alerts_lists_the_definitions_that_triggered_recently(client: CxClient) -> None:
    result = await _run(client, "cx_alerts")
    assert result.status == "ok", result
    assert (result.data["definitions"], result.data["enabled"], result.data["triggered"]) == (3, 2, 1)
    [fired] = result.data["alerts"]
    assert fired["name"] == "Checkout errors above 10 in 5m" and fired["priority"] == "P1"
    assert (fired["type"], fired["query"], fired["subsystems"]) == (
        "logs_threshold",
        "upstream timeout",
        ["checkout"],
    )
    fired_at = datetime.fromisoformat(fired["last_triggered"])
    assert timedelta(minutes=3) < datetime.now(UTC) - fired_at < timedelta(minutes=6)
    recent = await _run(client, "cx_alerts", since="-2m")
    assert recent.status == "no_data" and "None of the 3 alert definitions (2 enabled)" in recent.data


async def test_a_key_without_the_alerts_permission_is_told_which_preset_to_add(
    emulator: CoralogixEmulator,
) -> None:
    config = _config(emulator.url, api_key=LOGS_ONLY)
    result = await _once(config, "cx_alerts")
    assert result.status == "error" and result.error is not None
    assert (
        "refused access (403 Permission denied" in result.error
        and "give it the Alerts preset" in result.error
    )
    assert (await _once(config, "cx_query", query="source logs | limit 1", start="-30m")).status == "ok"


async def test_a_wrong_key_fails_the_tools_and_the_health_check_with_the_reason(
    emulator: CoralogixEmulator,
) -> None:
    config = _config(emulator.url, api_key="cxup_wrong")
    result = await _once(config, "cx_error_summary", subsystem="checkout")
    assert result.error is not None and "did not accept the API key (401 Unauthenticated" in result.error
    assert "integrations.coralogix.api_key" in result.error and "cxup_wrong" not in result.error
    health = await cx.health(config)
    assert not health.healthy and "did not accept the API key (401" in health.reason


async def test_a_rate_limited_key_is_told_when_to_try_again(emulator: CoralogixEmulator) -> None:
    emulator.rate_limited = True
    result = await _once(_config(emulator.url), "cx_query", query="source logs")
    assert result.status == "error" and result.error is not None
    assert "is rate limiting this key, try again in 30 s (429 Too many requests" in result.error


async def test_a_query_failing_mid_stream_is_an_error_not_a_partial_answer(
    emulator: CoralogixEmulator,
) -> None:
    emulator.runtime_error = "Query scan limit reached"
    result = await _once(_config(emulator.url), "cx_query", query="source logs", start="-30m")
    assert result.status == "error"
    assert result.error == "Coralogix failed to run the query: Query scan limit reached."


async def test_an_answer_over_the_size_cap_asks_for_less(
    emulator: CoralogixEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coralogix_api, "MAX_QUERY_BYTES", 4096)
    result = await _once(_config(emulator.url), "cx_query", query="source logs", start="-30m", limit=1000)
    assert result.error is not None and "answer was larger than" in result.error
    assert "narrow it with a filter, a lower limit or a shorter window" in result.error


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_coralogix_fails_in_one_sentence() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    result = await _once(_config(url), "cx_alerts")
    assert (
        result.error
        == f"Coralogix at {url} is unreachable (connection refused); could not list alert definitions."
    )
    health = await cx.health(_config(url))
    assert not health.healthy and "unreachable (connection refused)" in health.reason


async def test_health_runs_one_tiny_query_and_says_what_is_missing(emulator: CoralogixEmulator) -> None:
    assert await cx.health(_config(emulator.url)) == ToolsetHealth.ok()
    [call] = emulator.calls
    assert call.body is not None and call.body["query"] == "source logs | limit 1"
    span = datetime.fromisoformat(call.body["metadata"]["endDate"]) - datetime.fromisoformat(
        call.body["metadata"]["startDate"]
    )
    assert span == timedelta(minutes=1) and call.body["metadata"]["limit"] == 1
    assert await cx.health({}) == ToolsetHealth(configured=False, reason="no api_key is set")
    nowhere = await cx.health({"integrations": {"coralogix": {"api_key": API_KEY}}})
    assert not nowhere.healthy and "set integrations.coralogix.domain" in nowhere.reason
    off = await cx.health(_config(emulator.url, enabled=False))
    assert not off.healthy and "turned off" in off.reason
    install_policy(EgressPolicy(allow_private=False))
    refused = await cx.health(_config(emulator.url))
    assert not refused.healthy and "private or loopback" in refused.reason


class _RecordingPolicy(EgressPolicy):
    """Allows every URL without resolving it (tests run offline) and records what was checked."""

    def __init__(self) -> None:
        super().__init__(allow_private=False)
        self.checked: list[str] = []

    async def check_url(self, url: str, *, setting: str) -> None:
        self.checked.append(url)


async def test_a_domain_selects_the_query_and_management_hosts_and_both_pass_the_egress_policy() -> None:
    policy = _RecordingPolicy()
    install_policy(policy)
    client = await connect({"integrations": {"coralogix": {"domain": "EU2.coralogix.com", "api_key": "k"}}})
    try:
        assert client.query_url == "https://ng-api-http.eu2.coralogix.com"
        assert client.api_url == "https://api.eu2.coralogix.com"
        assert policy.checked == [client.query_url, client.api_url]
        assert client.session.headers["Authorization"] == "Bearer k"
    finally:
        await client.close()
    with pytest.raises(CxNotConfigured, match="must be a Coralogix domain"):
        await connect(
            {"integrations": {"coralogix": {"domain": "https://eu2.coralogix.com/x", "api_key": "k"}}}
        )
    with pytest.raises(CxNotConfigured, match="needs an API key"):
        await connect({"integrations": {"coralogix": {"domain": "eu2.coralogix.com"}}})


async def test_fetch_log_lines_serves_the_unified_log_tool(client: CxClient) -> None:
    end = datetime.now(UTC)
    found = await cx.fetch_log_lines(client, "nil pointer", end - timedelta(minutes=30), end, 1)
    assert found.status == "ok", found
    [line] = found.data["entries"]
    assert {k: line[k] for k in ("level", "service", "message")} == {
        "level": "critical",
        "service": "checkout",
        "message": PANIC,
    }
    assert datetime.fromisoformat(line["time"]) <= end
    assert "$d ~~ 'nil pointer'" in found.invocation
    dataprime = await cx.fetch_log_lines(client, CHECKOUT_ERRORS, end - timedelta(minutes=30), end, 5)
    assert dataprime.data["lines"] == 5 and dataprime.data["entries"][0]["level"] == "error"
    quoted = await cx.fetch_log_lines(client, "it's missing", end - timedelta(minutes=30), end, 5)
    assert quoted.status == "no_data"


def test_tool_names_are_prefixed_and_never_clash_with_other_toolsets() -> None:
    tools = toolset_function_tools(cx.CORALOGIX, agent="logs")
    names = [t.name for t in tools]
    assert names == ["cx_error_summary", "cx_query", "cx_field_values", "cx_alerts"]
    assert all(t.strict_json_schema for t in tools)
    assert not set(names) & {t.name for t in (*LOKI.tools, *ELASTICSEARCH.tools)}
    assert cx.CORALOGIX.missing_prerequisites({}) == ["integrations.coralogix.api_key"]


async def test_through_the_adapter_the_model_sees_lines_and_never_the_key(
    emulator: CoralogixEmulator,
) -> None:
    config = _config(emulator.url)
    events: list[Any] = []
    ctx = InvestigationContext(run_id="r", org_id="o", team_node_id="t", config=config, emit=events.append)
    tools = {t.name: t for t in toolset_function_tools(cx.CORALOGIX, agent="logs")}

    async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(args)
        context = ToolContext(ctx, tool_name=name, tool_call_id=name, tool_arguments=raw)
        out = await tools[name].on_invoke_tool(context, raw)
        assert API_KEY not in out
        loaded: dict[str, Any] = json.loads(out)
        return loaded

    args = {
        "query": "source logs | filter $d ~~ 'panic'",
        "syntax": None,
        "tier": None,
        "start": "-30m",
        "end": None,
        "limit": 2,
    }
    answer = await call("cx_query", args)
    assert answer["status"] == "ok"
    assert answer["data"]["entries"][0]["message"] == PANIC
    invalid = await call("cx_query", {**args, "limit": 5000})
    assert invalid["status"] == "error" and "limit must be between 1 and 1000" in invalid["error"]
    assert any(getattr(e, "summary", "") == "2 log lines" for e in events)
    client = ctx.clients["coralogix"]
    await close_clients(ctx)
    assert client.session.closed
