"""Canaries in MCP answers never reach the model: a whole LLM investigation (``PlannerInvestigator``)
against the OpenAI emulator, whose sub-agent calls tools of a stdio and a streamable-HTTP MCP server
that leak their own env value, their bearer token and a GitHub token; every request body the
emulator received is searched for them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import set_tracing_disabled

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent, SubagentStart, ToolEnd, ToolStart
from incidentfox.agents.investigation import PlannerInvestigator
from incidentfox.agents.model_provider import TeamModelProvider
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
from tests.mcp_servers.incident_tools import LEAKED_GITHUB_TOKEN
from tests.mcp_servers.running import http_server, stdio_entry

VENDOR_LOGIN = "vendor-login-Canary-Qz7Lw9"
BEARER = "mcp-bearer-Canary-8Kd2Hn3"
TEAM_SECRET = "team-datadog-Canary-5Rb7"
CANARIES = {"env value": VENDOR_LOGIN, "bearer": BEARER, "github": LEAKED_GITHUB_TOKEN, "team": TEAM_SECRET}
RCA = {
    "summary": "checkout's settings look normal; nothing points at a secret problem.",
    "root_cause": "unknown",
    "evidence": [{"quote": "replicas=6", "source": "mcp deploys service_config", "url": None}],
    "confidence": {"level": "low", "why": "only settings were read"},
    "immediate_actions": [],
    "follow_up_actions": [],
    "caveats": [],
}


def _script() -> RoutedScript:
    planner = [
        ScriptStep.tool_calls([("ask_grafana", {"input": "Read checkout's settings from both trackers."})]),
        ScriptStep.json(RCA),
    ]
    grafana = [
        ScriptStep.tool_calls(
            [
                ("mcp_deploys_service_config", {"service": "checkout"}),
                ("mcp_tracker_service_config", {"service": "checkout"}),
            ]
        ),
        ScriptStep.text("checkout: replicas=6; the credentials in the settings are redacted."),
    ]
    return (
        RoutedScript()
        .when_tool_offered("ask_grafana", planner)
        .when_tool_offered("mcp_deploys_service_config", grafana)
    )


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    set_tracing_disabled(True)
    async with OpenAIEmulator() as emulator:
        emulator.responder = _script()
        yield emulator


async def test_secrets_in_mcp_answers_never_reach_the_model(model: OpenAIEmulator) -> None:
    async with http_server(BEARER) as url:
        config: dict[str, Any] = {
            "integrations": {"datadog": {"api_key": TEAM_SECRET}},
            "mcp_servers": {
                "deploys": stdio_entry(env={"VENDOR_LOGIN": VENDOR_LOGIN}),
                "tracker": {"url": url, "headers": {"Authorization": f"Bearer {BEARER}"}},
            },
            "agents": {"grafana": {"mcp_servers": ["deploys", "tracker"]}},
        }
        events: list[ProgressEvent] = []
        context = InvestigationContext(
            run_id="run-mcp-canary", org_id="acme", team_node_id="checkout", config=config, emit=events.append
        )
        provider = TeamModelProvider(
            openai_api_key=model.api_key, openai_base_url=model.base_url, default_model="emulator-model"
        )
        outcome = await PlannerInvestigator(provider).investigate(
            context, "is checkout configured right?", []
        )

    assert outcome.error is None and outcome.rca is not None
    assert outcome.rca.evidence[0].quote == "replicas=6"
    bodies = json.dumps([request.body for request in model.requests])
    assert [name for name, canary in CANARIES.items() if canary in bodies] == []
    sub_agent = [r for r in model.requests if "mcp_deploys_service_config" in r.tool_names]
    assert "vendor_login=[REDACTED]" in sub_agent[-1].text(), "the model saw the answer, scrubbed"
    assert "seen_authorization=[REDACTED]" in sub_agent[-1].text()
    assert "ci_token=[REDACTED]" in sub_agent[-1].text()
    assert [e.agent for e in events if isinstance(e, SubagentStart)] == ["grafana"]
    assert sorted(e.tool for e in events if isinstance(e, ToolStart)) == [
        "mcp_deploys_service_config",
        "mcp_tracker_service_config",
    ]
    assert all("secret" in e.summary and e.status == "ok" for e in events if isinstance(e, ToolEnd))
    assert [name for name, canary in CANARIES.items() if canary in repr(events)] == []
