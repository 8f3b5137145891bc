"""A team on Anthropic: ``model.provider: anthropic`` resolves to Anthropic's Messages API, and a real
planner run (sub-agent, tool call, structured RCA) goes through openai-agents' LiteLLM adapter to the
Anthropic emulator over real HTTP, metered, retried on overload, failing in plain words."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import set_tracing_disabled
from pydantic import BaseModel

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent
from incidentfox.agents.model_provider import (
    ANTHROPIC_DEFAULT_BASE_URL,
    DEFAULT_ANTHROPIC_MODEL,
    ModelConfigError,
    ModelEndpoint,
    TeamModelProvider,
    resolve_endpoint,
)
from incidentfox.agents.planner import SubagentSpec, build_planner
from incidentfox.agents.run_budgets import RunBudgets
from incidentfox.agents.runner import RunOutcome, run_investigation
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.function_tools import toolset_function_tools
from incidentfox.emulators.anthropic_api import AnthropicEmulator
from incidentfox.emulators.anthropic_script import RoutedScript, ScriptStep
from tests.test_metrics_agents import MODEL_TIME, sample

TEAM_KEY = "sk-ant-team-0123456789abcdef"
INSTALL_KEY = "sk-ant-install-fedcba9876543210"
CRASH = "panic: nil pointer dereference in checkout/payment.go:88"
RCA: dict[str, Any] = {
    "summary": "checkout crashes on start after the 14:02 deploy.",
    "root_cause": "A nil pointer dereference in checkout v2.3.1.",
    "evidence": [{"quote": CRASH, "source": "pod prod/checkout-1 logs", "url": None}],
    "confidence": {"level": "high", "why": "Every restart logs the same panic."},
    "immediate_actions": ["Roll back checkout to v2.3.0."],
    "follow_up_actions": [],
    "caveats": [],
}


def _resolve(config: dict[str, Any], **install: Any) -> ModelEndpoint | None:
    settings: dict[str, Any] = {"openai_api_key": None, "openai_base_url": None, "default_model": "gpt-4.1"}
    return resolve_endpoint(config, **{**settings, **install})


def test_anthropic_is_chosen_per_team_and_keys_never_cross() -> None:
    team = _resolve({"model": {"provider": "anthropic", "api_key": TEAM_KEY}}, anthropic_api_key=INSTALL_KEY)
    assert team == ModelEndpoint(
        ANTHROPIC_DEFAULT_BASE_URL, DEFAULT_ANTHROPIC_MODEL, TEAM_KEY, source="team", api="anthropic"
    )
    installation = _resolve(
        {"model": {"provider": "anthropic", "name": "claude-opus-4-1"}},
        anthropic_api_key=INSTALL_KEY,
        openai_api_key="sk-openai-install",
    )
    assert installation == ModelEndpoint(
        ANTHROPIC_DEFAULT_BASE_URL, "claude-opus-4-1", INSTALL_KEY, api="anthropic"
    )
    own_proxy = _resolve(
        {"model": {"provider": "anthropic", "base_url": "http://127.0.0.1:9"}}, anthropic_api_key=INSTALL_KEY
    )
    assert own_proxy is not None and own_proxy.api_key != INSTALL_KEY, "no installation key to a team URL"
    openai = _resolve({"model": {"provider": "openai_compatible"}}, openai_api_key="sk-openai-install")
    assert openai is not None and openai.api == "openai"


def test_a_team_asking_for_anthropic_without_any_key_is_told_what_to_set() -> None:
    told = re.escape("set `model.api_key` in team config or ANTHROPIC_API_KEY")
    with pytest.raises(ModelConfigError, match=told):
        _resolve({"model": {"provider": "anthropic"}}, openai_api_key="sk-openai-install")
    with pytest.raises(ModelConfigError, match="use one of: openai, openai_compatible, anthropic"):
        _resolve({"model": {"provider": "gemini"}}, openai_api_key="sk-openai-install")


class PodParams(BaseModel):
    namespace: str


async def _pod_logs(client: object, params: PodParams) -> ToolResult:
    return ToolResult.ok({"pod": f"{params.namespace}/checkout-1", "last_lines": [CRASH]})


async def _connect(config: object) -> object:
    return object()


CLUSTER = Toolset(
    name="cluster",
    description="",
    instructions="You read the cluster.",
    tools=(Tool("pod_logs", "A pod's last log lines.", PodParams, _pod_logs),),  # type: ignore[arg-type]
    connect=_connect,
)
SPEC = SubagentSpec(
    name="cluster",
    description="Reads the cluster.",
    instructions=CLUSTER.instructions,
    tools=list(toolset_function_tools(CLUSTER, agent="cluster")),
)


@pytest.fixture
async def emulator() -> AsyncIterator[AnthropicEmulator]:
    set_tracing_disabled(True)
    async with AnthropicEmulator(api_key=TEAM_KEY) as emu:
        yield emu


async def _investigate(emulator: AnthropicEmulator, key: str = TEAM_KEY) -> tuple[RunOutcome, list[str]]:
    config = {"model": {"provider": "anthropic", "base_url": emulator.base_url, "api_key": key}}
    provider = TeamModelProvider(openai_api_key=None, openai_base_url=None, default_model="gpt-4.1")
    model = await provider.checked_model_for(config)
    assert model is not None
    events: list[ProgressEvent] = []
    context = InvestigationContext(
        run_id="run-claude", org_id="acme", team_node_id="sre", config=config, emit=events.append
    )
    budgets = RunBudgets(backoff_initial_s=0.01, backoff_max_s=0.05)
    outcome = await run_investigation(
        planner=build_planner(model=model, subagents=[SPEC], model_settings=budgets.model_settings()),
        context=context,
        question="Why is checkout down?",
        history=[],
        timeout_s=30.0,
        max_turns=6,
    )
    await provider.aclose()
    return outcome, [e.kind for e in events]


async def test_a_planner_run_on_anthropic_delegates_calls_tools_and_returns_the_rca(
    emulator: AnthropicEmulator,
) -> None:
    emulator.responder = (
        RoutedScript()
        .when_tool_offered(
            "ask_cluster",
            [
                ScriptStep.http_error(529),
                ScriptStep.tool_use("ask_cluster", {"input": "Read checkout's logs in prod."}),
                ScriptStep.text(json.dumps(RCA)),
            ],
        )
        .when_tool_offered(
            "pod_logs",
            [
                ScriptStep.tool_use("pod_logs", {"namespace": "prod"}),
                ScriptStep.text(f"checkout-1 logs: {CRASH}"),
            ],
        )
    )
    calls = sample(MODEL_TIME, provider="anthropic")

    outcome, kinds = await _investigate(emulator)

    assert outcome.error is None and outcome.rca is not None
    assert outcome.rca.root_cause == RCA["root_cause"]
    assert outcome.rca.evidence[0].quote == CRASH
    assert kinds.count("tool_end") == 1 and "subagent_end" in kinds
    planner_calls = [r for r in emulator.requests if "ask_cluster" in r.tool_names]
    assert len(planner_calls) == 3, "the overloaded answer was retried once"
    assert planner_calls[-1].stream, "the planner streams"
    assert planner_calls[0].model == DEFAULT_ANTHROPIC_MODEL
    sub_last = [r for r in emulator.requests if "pod_logs" in r.tool_names][-1]
    assert CRASH in sub_last.tool_results[0].text, "the tool's output reached Claude as a tool_result"
    assert all(r.api_key == TEAM_KEY for r in emulator.requests)
    assert sample(MODEL_TIME, provider="anthropic") - calls == 5, "every call metered, the failed one too"


async def test_a_rejected_anthropic_key_is_said_in_plain_words(emulator: AnthropicEmulator) -> None:
    emulator.enqueue(ScriptStep.text(json.dumps(RCA)))

    outcome, kinds = await _investigate(emulator, key="sk-ant-wrong-000000000000")

    assert outcome.rca is None and outcome.error is not None
    assert "rejected the API key (HTTP 401)" in outcome.error
    assert "sk-ant-wrong" not in outcome.error
    assert kinds == ["started", "error"]
    assert len(emulator.requests) == 1, "a 401 is not retried"
