"""The loki toolset against the Loki emulator holding half an hour of a checkout incident: what each tool
reports (lines with their time and stream, metric series, the error summary an SRE starts from), and
how it fails, in one sentence, with Loki's own message for bad LogQL."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from agents.tool_context import ToolContext

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.toolsets import loki as lk
from incidentfox.agents.toolsets.base import ToolResult, ToolsetHealth
from incidentfox.agents.toolsets.function_tools import close_clients, toolset_function_tools
from incidentfox.agents.toolsets.loki_api import LokiClient, LokiNotConfigured, connect
from incidentfox.agents.toolsets.prometheus import PROMETHEUS
from incidentfox.egress import EgressPolicy, install_policy
from incidentfox.emulators.loki import LokiEmulator
from tests.toolset_calls import run_once, run_tool

TOKEN = "loki-gateway-token-0123456789"
POD = "checkout-7d9f8-x2k4p"
CHECKOUT_ERRORS = f'{{app="checkout",level="error",namespace="prod",pod="{POD}"}}'
TIMEOUT_LINE = "ERROR payment declined for order ord_{n}: upstream timeout after {ms}ms"
PANIC_LINE = "panic: runtime error: invalid memory address or nil pointer dereference"


def _seed(loki: LokiEmulator, now: datetime, tenant: str | None = None) -> None:
    """Thirty minutes of checkout: 40 timeouts, 3 panics and 5 JSON database errors among 60 requests
    served, and a quiet payments service."""
    checkout = {"app": "checkout", "namespace": "prod", "pod": POD}
    ago = lambda seconds: now - timedelta(seconds=seconds)  # noqa: E731
    errors = [(ago(30 + 40 * i), TIMEOUT_LINE.format(n=1000 + i, ms=3000 + i)) for i in range(40)]
    errors += [(ago(95 + 300 * i), PANIC_LINE) for i in range(3)]
    errors += [
        (
            ago(65 + 200 * i),
            json.dumps({"level": "error", "msg": f"db connection refused to 10.0.3.{i}:5432"}),
        )
        for i in range(5)
    ]
    loki.push({**checkout, "level": "error"}, errors, tenant=tenant)
    loki.push(
        {**checkout, "level": "info"},
        [(ago(25 * i), f"GET /api/cart 200 {i}ms") for i in range(60)],
        tenant=tenant,
    )
    payments = {"app": "payments", "namespace": "prod", "pod": "payments-55b6c-q9r7t", "level": "info"}
    loki.push(payments, [(ago(60 * i), f"charge ok ch_{i}") for i in range(20)], tenant=tenant)


def _config(url: str, **settings: Any) -> dict[str, Any]:
    return {"integrations": {"loki": {"url": url, **settings}}}


@pytest.fixture
async def loki() -> AsyncIterator[LokiEmulator]:
    async with LokiEmulator() as emulator:
        _seed(emulator, datetime.now(UTC))
        yield emulator


@pytest.fixture
async def client(loki: LokiEmulator) -> AsyncIterator[LokiClient]:
    connected = await connect({"integrations": {"loki": loki.integration_config()}})
    yield connected
    await connected.close()


async def _run(client: LokiClient, name: str, /, **args: Any) -> ToolResult:
    return await run_tool(lk.LOKI, client, name, **args)


async def _once(config: dict[str, Any], name: str, /, **args: Any) -> ToolResult:
    return await run_once(lk.LOKI, connect, config, name, **args)


async def test_a_log_query_returns_lines_newest_first_with_time_and_stream(client: LokiClient) -> None:
    query = '{app="checkout",level="error"} |= "upstream timeout"'
    result = await _run(client, "loki_query", query=query, start="-30m", limit=5)
    assert result.status == "ok", result
    assert result.data["lines"] == 5
    lines = result.data["entries"]
    assert [e["line"] for e in lines] == [TIMEOUT_LINE.format(n=1000 + i, ms=3000 + i) for i in range(5)]
    assert all(e["stream"] == CHECKOUT_ERRORS for e in lines)
    times = [datetime.fromisoformat(e["time"]) for e in lines]
    assert times == sorted(times, reverse=True) and lines[0]["time"].endswith("Z")
    assert "Stopped at the limit of 5 lines" in result.data["note"]
    assert query in result.invocation and "(limit 5, backward)" in result.invocation
    assert result.url is None, "no grafana_url is configured"
    oldest = await _run(client, "loki_query", query=query, start="-30m", limit=1, direction="forward")
    assert oldest.data["entries"][0]["line"] == TIMEOUT_LINE.format(n=1039, ms=3039)


async def test_a_metric_query_summarises_each_series(client: LokiClient) -> None:
    query = 'sum by (level) (count_over_time({app="checkout"}[5m]))'
    result = await _run(client, "loki_query", query=query, start="-30m")
    assert result.status == "ok", result
    series = {row["series"]: row for row in result.data["series"]}
    assert set(series) == {'{level="error"}', '{level="info"}'}
    assert series['{level="error"}']["max"] >= 7
    assert result.invocation.startswith("LogQL metric query from ") and "step 30s" in result.invocation
    assert result.data["step"] == "30s" and len(series['{level="info"}']["values"]) <= lk.MAX_POINTS


async def test_the_error_summary_counts_errors_per_stream_and_groups_messages(client: LokiClient) -> None:
    result = await _run(client, "loki_error_summary", selector='{app=~"checkout|payments"}', start="-30m")
    assert result.status == "ok", result
    assert result.data["error_lines"] == 48 and result.data["streams_with_errors"] == 1
    [stream] = result.data["by_stream"]
    assert stream["stream"] == CHECKOUT_ERRORS and stream["error_lines"] == 48
    top = result.data["top_messages"]
    assert [(m["message"], m["count"]) for m in top] == [
        ("ERROR payment declined for order <id>: upstream timeout after <n>ms", 40),
        ("db connection refused to <ip>", 5),
        ("panic: runtime error: invalid memory address or nil pointer dereference", 3),
    ]
    assert top[0]["example"] == TIMEOUT_LINE.format(n=1000, ms=3000), "the newest line, quoted exactly"
    assert top[0]["stream"] == CHECKOUT_ERRORS
    assert (
        "count_over_time(" in result.invocation and "(?i)(error|exception|fatal|panic)" in result.invocation
    )


async def test_no_errors_and_no_logs_are_told_apart(client: LokiClient) -> None:
    quiet = await _run(client, "loki_error_summary", selector='{app="payments"}')
    assert quiet.status == "no_data" and "though it has logs" in quiet.data
    missing = await _run(client, "loki_error_summary", selector='{app="no-such-app"}')
    assert missing.status == "no_data" and "matched no logs at all" in missing.data
    empty = await _run(client, "loki_query", query='{app="checkout"} |= "no such text"')
    assert empty.status == "no_data" and "loki_labels" in empty.data


async def test_bad_logql_fails_with_loki_own_message(client: LokiClient) -> None:
    result = await _run(client, "loki_query", query='sum(count_over_time({app="checkout"}[5m])')
    assert result.status == "error" and result.error is not None
    assert result.error.startswith("Loki rejected the request to run the query: parse error at line 1, col ")
    assert result.error.endswith("(400). Correct it and try again.")
    invalid = await _run(client, "loki_query", query="{}", start="yesterday")
    assert invalid.error is not None and invalid.error.startswith("Cannot read the time 'yesterday'")
    with pytest.raises(ValueError, match="stream selector"):
        lk.ErrorSummaryParams.model_validate({"selector": "rate(x[5m])"})


async def test_labels_values_and_streams_are_discovered(client: LokiClient) -> None:
    names = await _run(client, "loki_labels")
    assert names.data["labels"] == ["app", "level", "namespace", "pod"]
    apps = await _run(client, "loki_label_values", label="app")
    assert apps.data["values"] == ["checkout", "payments"]
    levels = await _run(client, "loki_label_values", label="level", query='{app="payments"}')
    assert levels.data["values"] == ["info"]
    streams = await _run(client, "loki_series", match='{namespace="prod",level="error"}')
    assert streams.data == {"count": 1, "streams": [CHECKOUT_ERRORS]}
    none = await _run(client, "loki_label_values", label="no_such_label")
    assert none.status == "no_data"


async def test_results_link_to_grafana_explore_when_it_is_configured(loki: LokiEmulator) -> None:
    config = _config(
        loki.url, grafana_url="https://grafana.example.com/", grafana_datasource="P8E80F9AEF21F6940"
    )
    result = await _once(config, "loki_query", query='{app="checkout"}', start="-15m")
    assert result.url is not None and result.url.startswith("https://grafana.example.com/explore?")
    [pane] = json.loads(parse_qs(urlsplit(result.url).query)["panes"][0]).values()
    assert pane["queries"][0]["expr"] == '{app="checkout"}'
    assert pane["datasource"] == "P8E80F9AEF21F6940"
    assert int(pane["range"]["to"]) - int(pane["range"]["from"]) == 15 * 60 * 1000


async def test_credentials_and_tenant_failures_say_which_setting_to_fix() -> None:
    async with LokiEmulator(bearer_token=TOKEN, auth_enabled=True) as loki:
        _seed(loki, datetime.now(UTC), tenant="team-checkout")
        anonymous = await _once(_config(loki.url), "loki_labels")
        assert anonymous.error is not None and "asked for credentials (401 Unauthorized)" in anonymous.error
        assert "integrations.loki.headers" in anonymous.error
        headers = {"Authorization": f"Bearer {TOKEN}"}
        no_tenant = await _once(_config(loki.url, headers=headers), "loki_labels")
        assert no_tenant.error is not None and "needs a tenant (401 no org id)" in no_tenant.error
        assert "integrations.loki.tenant" in no_tenant.error
        config = _config(loki.url, headers=headers, tenant="team-checkout")
        assert (await _once(config, "loki_label_values", label="app")).data["values"] == [
            "checkout",
            "payments",
        ]
        assert loki.calls[-1].tenant == "team-checkout"
        assert await lk.health(config) == ToolsetHealth.ok()
        failing = await lk.health(_config(loki.url, headers=headers))
        assert not failing.healthy and "no org id" in failing.reason


async def test_an_overloaded_loki_is_rate_limited_try_again(loki: LokiEmulator) -> None:
    loki.overloaded = True
    result = await _once(_config(loki.url), "loki_error_summary", selector='{app="checkout"}')
    assert result.status == "error" and result.error is not None
    assert "is rate limited, try again in a minute (429 too many outstanding requests)" in result.error


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_loki_fails_in_one_sentence() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    result = await _once(_config(url), "loki_labels")
    assert result.error == f"Loki at {url} is unreachable (connection refused); could not list label names."
    health = await lk.health(_config(url))
    assert not health.healthy and "unreachable (connection refused)" in health.reason


async def test_health_is_ok_for_loki_and_says_why_not_otherwise(loki: LokiEmulator) -> None:
    assert await lk.health(_config(loki.url)) == ToolsetHealth.ok()
    assert [c.path for c in loki.calls] == ["/ready", "/loki/api/v1/labels"]
    assert await lk.health({}) == ToolsetHealth(configured=False, reason="no url is set")
    wrong = await lk.health(_config(f"{loki.url}/loki"))
    assert not wrong.healthy and "(404)" in wrong.reason
    off = await lk.health(_config(loki.url, enabled=False))
    assert not off.healthy and "turned off" in off.reason
    with pytest.raises(LokiNotConfigured, match="http:// or https://"):
        await connect(_config("ftp://loki:3100"))
    install_policy(EgressPolicy(allow_private=False))
    with pytest.raises(LokiNotConfigured, match="private or loopback"):
        await connect(_config(loki.url))
    refused = await lk.health(_config(loki.url))
    assert not refused.healthy and "private or loopback" in refused.reason


def test_tool_names_are_prefixed_and_never_clash_with_other_toolsets() -> None:
    tools = toolset_function_tools(lk.LOKI, agent="logs")
    names = [t.name for t in tools]
    assert names == ["loki_error_summary", "loki_query", "loki_labels", "loki_label_values", "loki_series"]
    assert all(t.strict_json_schema for t in tools)
    assert not set(names) & {t.name for t in PROMETHEUS.tools}
    assert lk.LOKI.missing_prerequisites({}) == ["integrations.loki.url"]


async def test_through_the_adapter_the_model_sees_lines_and_never_the_token() -> None:
    async with LokiEmulator(bearer_token=TOKEN) as loki:
        _seed(loki, datetime.now(UTC))
        config = {"integrations": {"loki": loki.integration_config()}}
        events: list[Any] = []
        ctx = InvestigationContext(
            run_id="r", org_id="o", team_node_id="t", config=config, emit=events.append
        )
        tools = {t.name: t for t in toolset_function_tools(lk.LOKI, agent="logs")}

        async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
            raw = json.dumps(args)
            context = ToolContext(ctx, tool_name=name, tool_call_id=name, tool_arguments=raw)
            out = await tools[name].on_invoke_tool(context, raw)
            assert TOKEN not in out
            loaded: dict[str, Any] = json.loads(out)
            return loaded

        args = {
            "query": '{app="checkout"} |= "panic"',
            "start": "-30m",
            "end": None,
            "limit": 2,
            "direction": None,
        }
        answer = await call("loki_query", args)
        assert answer["status"] == "ok"
        assert answer["data"]["entries"][0] == {
            "time": answer["data"]["entries"][0]["time"],
            "stream": CHECKOUT_ERRORS,
            "line": PANIC_LINE,
        }
        assert "LogQL from " in answer["invocation"]
        invalid = await call("loki_query", {**args, "limit": 5000})
        assert invalid["status"] == "error" and "limit must be between 1 and 1000" in invalid["error"]
        assert any(getattr(e, "summary", "") == "2 log lines" for e in events)
        client = ctx.clients["loki"]
        await close_clients(ctx)
        assert client.session.closed
