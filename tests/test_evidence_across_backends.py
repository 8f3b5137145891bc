"""The issue's "done when": a team with Prometheus, Loki and AWS configured gets an investigation whose RCA
cites a metric, a log line and a CloudWatch alarm, each with its source.

Everything below the model is real: a real Prometheus with two hours of a checkout incident, the Loki
emulator, moto's AWS with a CloudWatch alarm in ALARM, the team's effective config choosing the
specialists, and ``PlannerInvestigator`` running the planner and its sub-agents through the tool adapter.
The scripted model only decides which tools to call; every quote in the final RCA is cut from what the
tools actually returned to it, so a tool that did not answer leaves the RCA without that evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from agents import set_tracing_disabled

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent, SubagentStart, Thought, ToolEnd
from incidentfox.agents.investigation import PlannerInvestigator
from incidentfox.agents.model_provider import TeamModelProvider
from incidentfox.agents.toolsets.function_tools import close_clients
from incidentfox.emulators.loki import LokiEmulator
from incidentfox.emulators.openai_api import OpenAIEmulator, RecordedRequest, ScriptStep
from tests.moto_server import SECRET, MotoAccount, running_moto
from tests.prometheus_server import LEAKED_LABEL, PrometheusServer, running_prometheus

MODEL_KEY = "sk-emulator-evidence-0001"
TIMEOUT_LINE = "ERROR payment declined for order ord_{n}: upstream timeout after {ms}ms"
ERROR_RATE = 'sum by (service) (rate(http_requests_total{code="500"}[5m]))'
LEAKED_LOG_TOKEN = "xoxb-4242-4242-LogCanaryQz7Lw9Hn2"
CANARIES = {"prometheus label": LEAKED_LABEL, "log line": LEAKED_LOG_TOKEN, "aws tag": SECRET}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoAccount]:
    with running_moto() as account:
        yield account


@pytest.fixture
async def loki() -> AsyncIterator[LokiEmulator]:
    async with LokiEmulator() as emulator:
        now = datetime.now(UTC)
        emulator.push(
            {"app": "checkout", "namespace": "prod", "level": "error"},
            [
                (now - timedelta(seconds=30 + 40 * i), TIMEOUT_LINE.format(n=1000 + i, ms=3000 + i))
                for i in range(20)
            ],
        )
        emulator.push(
            {"app": "checkout", "namespace": "prod", "level": "warn"},
            [
                (
                    now - timedelta(seconds=10),
                    f"WARN upstream timeout alerting via slack token {LEAKED_LOG_TOKEN}",
                )
            ],
        )
        yield emulator


def _tool_outputs(request: RecordedRequest) -> list[str]:
    return [str(m.get("content")) for m in request.messages if m.get("role") == "tool"]


def _specialist(request: RecordedRequest, *calls: tuple[str, dict[str, Any]]) -> ScriptStep:
    """Call the tools, then answer with exactly what they returned."""
    outputs = _tool_outputs(request)
    if not outputs:
        return ScriptStep.tool_calls(calls)
    return ScriptStep.text("\n".join(outputs))


def _quote(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    return found.group(0) if found else ""


def _rca(answers: list[str]) -> dict[str, Any]:
    """The planner's RCA, its quotes cut from the specialists' answers (empty if they lack them)."""
    everything = "\n".join(answers)
    rate = _quote(r'\{service=\\?"checkout\\?"\}[^}]*?"value": ?[0-9.]+', everything)
    line = _quote(r"ERROR payment declined for order ord_\d+: upstream timeout after \d+ms", everything)
    alarm = _quote(
        r"Threshold Crossed: 3 datapoints \[[^\]]*\] were greater than the threshold \(50\.0\)\.", everything
    )
    return {
        "summary": "checkout's payment calls time out, and 5xx responses rose at the load balancer.",
        "root_cause": "The payment gateway times out, so checkout answers 500.",
        "evidence": [
            {"quote": rate, "source": f"prometheus: {ERROR_RATE}", "url": None},
            {"quote": line, "source": 'loki: {app="checkout"} |= "upstream timeout"', "url": None},
            {"quote": alarm, "source": "cloudwatch alarm checkout-5xx", "url": None},
        ],
        "confidence": {"level": "high", "why": "Metrics, logs and the alarm agree."},
        "immediate_actions": ["Fail over the payment gateway."],
        "follow_up_actions": [],
        "caveats": [],
    }


def responder(request: RecordedRequest) -> ScriptStep | None:
    tools = request.tool_names
    if "ask_metrics" in tools:
        answers = _tool_outputs(request)
        if not answers:
            return ScriptStep.tool_calls(
                [
                    ("ask_metrics", {"input": "checkout's 500 rate now"}),
                    ("ask_logs", {"input": "checkout's errors in the last 30 minutes"}),
                    ("ask_cloud", {"input": "CloudWatch alarms in ALARM"}),
                ]
            )
        return ScriptStep.json(_rca(answers))
    if "query_instant" in tools:
        build = ("query_instant", {"query": 'app_build_info{service="checkout"}'})
        return _specialist(request, ("query_instant", {"query": ERROR_RATE}), build)
    if "loki_query" in tools:
        query = '{app="checkout"} |= "upstream timeout"'
        return _specialist(request, ("loki_query", {"query": query, "start": "-30m", "limit": 5}))
    if "cloudwatch_alarms" in tools:
        return _specialist(request, ("cloudwatch_alarms", {}), ("ec2_instances", {}))
    return None


async def test_an_rca_cites_a_metric_a_log_line_and_a_cloudwatch_alarm_each_with_its_source(
    prometheus: PrometheusServer, aws: MotoAccount, loki: LokiEmulator
) -> None:
    set_tracing_disabled(True)
    async with OpenAIEmulator(api_key=MODEL_KEY) as model:
        model.responder = responder
        config = {
            "model": {"base_url": model.base_url, "api_key": MODEL_KEY, "name": "emulator-model"},
            "integrations": {
                "prometheus": {"url": prometheus.url},
                "loki": loki.integration_config(),
                "aws": aws.config()["integrations"]["aws"],
            },
        }
        events: list[ProgressEvent] = []
        context = InvestigationContext(
            run_id="run-evidence", org_id="acme", team_node_id="checkout", config=config, emit=events.append
        )
        provider = TeamModelProvider(openai_api_key=None, openai_base_url=None, default_model=None)
        try:
            outcome = await PlannerInvestigator(provider).investigate(context, "Why is checkout failing?", [])
        finally:
            await close_clients(context)
            await provider.aclose()

    assert outcome.error is None and outcome.rca is not None, outcome.error
    planner = model.requests[0]
    assert {"ask_metrics", "ask_logs", "ask_cloud"} <= set(planner.tool_names)
    assert "ask_kubernetes" not in planner.tool_names, "only the specialists the team configured"
    assert {e.agent for e in events if isinstance(e, SubagentStart)} == {"metrics", "logs", "cloud"}
    ended = {e.tool: e.status for e in events if isinstance(e, ToolEnd)}
    assert ended == {
        "query_instant": "ok",
        "loki_query": "ok",
        "cloudwatch_alarms": "ok",
        "ec2_instances": "ok",
    }

    metric, line, alarm = outcome.rca.evidence
    assert metric.quote and float(metric.quote.rsplit(":", 1)[1]) == pytest.approx(6, rel=0.1)
    assert metric.source.startswith("prometheus: ")
    assert re.fullmatch(r"ERROR payment declined for order ord_\d+: upstream timeout after \d+ms", line.quote)
    assert line.source.startswith("loki: ")
    assert alarm.quote.startswith("Threshold Crossed: 3 datapoints [212.0, 190.0, 175.0]")
    assert alarm.source == "cloudwatch alarm checkout-5xx"
    sent = json.dumps([r.body for r in model.requests])
    assert [name for name, canary in CANARIES.items() if canary in sent] == []
    assert "WARN upstream timeout alerting via slack token [REDACTED]" in sent, "the line arrived, scrubbed"
    assert "app_build_info" in sent and "2.3.1" in sent, "the labelled series arrived"
    scrubbed = [e.summary for e in events if isinstance(e, ToolEnd) and "scrubbed" in e.summary]
    assert len(scrubbed) >= 3, "each tool that carried a canary counts what it scrubbed on the timeline"


@pytest.fixture(autouse=True)
def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


async def test_a_specialist_whose_only_backend_fails_its_health_check_is_not_offered(
    loki: LokiEmulator,
) -> None:
    set_tracing_disabled(True)
    rca = {**_rca([]), "evidence": [], "caveats": ["Prometheus was unreachable."]}
    async with OpenAIEmulator([ScriptStep.json(rca)], api_key=MODEL_KEY) as model:
        config = {
            "model": {"base_url": model.base_url, "api_key": MODEL_KEY, "name": "emulator-model"},
            "integrations": {"prometheus": {"url": "http://127.0.0.1:9"}, "loki": loki.integration_config()},
        }
        events: list[ProgressEvent] = []
        context = InvestigationContext(
            run_id="run-health", org_id="acme", team_node_id="checkout", config=config, emit=events.append
        )
        provider = TeamModelProvider(openai_api_key=None, openai_base_url=None, default_model=None)
        try:
            outcome = await PlannerInvestigator(provider).investigate(context, "Why is checkout failing?", [])
        finally:
            await close_clients(context)
            await provider.aclose()

    assert outcome.rca is not None, outcome.error
    [planner] = model.requests
    assert "ask_logs" in planner.tool_names and "ask_metrics" not in planner.tool_names
    assert "failed their health check and were left out: prometheus" in planner.system_prompt
    [thought] = [e for e in events if isinstance(e, Thought)]
    assert thought.text.startswith("Not using prometheus: its health check failed (")
