"""A run's budgets against the OpenAI emulator over real HTTP: transient model failures are retried with
backoff (and only transient ones), and tool calls past the run's budget do not run, so the model writes
its analysis from what it has."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Model, OpenAIChatCompletionsModel, set_tracing_disabled
from openai import AsyncOpenAI
from pydantic import BaseModel

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent, ToolEnd
from incidentfox.agents.planner import SubagentSpec, build_planner
from incidentfox.agents.run_budgets import RunBudgets
from incidentfox.agents.runner import RunOutcome, run_investigation
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.function_tools import toolset_function_tools
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep

API_KEY = "sk-emulator-budget-test-0001"
RCA: dict[str, Any] = {
    "summary": "checkout's pods were listed.",
    "root_cause": "unknown",
    "evidence": [],
    "confidence": {"level": "low", "why": "only a listing"},
    "immediate_actions": [],
    "follow_up_actions": [],
    "caveats": [],
}
FAST = dataclasses.replace(RunBudgets(), backoff_initial_s=0.01, backoff_max_s=0.05)
"""Production retries and limits, with a backoff short enough for a test."""


class PodParams(BaseModel):
    namespace: str


class Cluster:
    def __init__(self) -> None:
        self.asked: list[str] = []


async def _list_pods(cluster: Cluster, params: PodParams) -> ToolResult:
    cluster.asked.append(params.namespace)
    return ToolResult.ok([{"pod": f"{params.namespace}/checkout-1", "status": "Running"}])


def _toolset(cluster: Cluster) -> Toolset:
    async def connect(config: object) -> Cluster:
        return cluster

    return Toolset(
        name="cluster",
        description="",
        instructions="You read the cluster.",
        tools=(Tool("list_pods", "List pods of a namespace.", PodParams, _list_pods),),  # type: ignore[arg-type]
        connect=connect,
    )


@pytest.fixture
async def emulator() -> AsyncIterator[OpenAIEmulator]:
    set_tracing_disabled(True)
    async with OpenAIEmulator(api_key=API_KEY) as emu:
        yield emu


async def _investigate(
    emulator: OpenAIEmulator,
    budgets: RunBudgets,
    subagents: list[SubagentSpec],
    events: list[ProgressEvent],
) -> RunOutcome:
    context = InvestigationContext(
        run_id="run-budget", org_id="acme", team_node_id="sre", config={}, emit=events.append
    )
    context.scratch.max_calls = budgets.max_tool_calls
    client = AsyncOpenAI(base_url=emulator.base_url, api_key=API_KEY, max_retries=0, timeout=10.0)
    model: Model = OpenAIChatCompletionsModel(model="emulator-model", openai_client=client)
    try:
        return await run_investigation(
            planner=build_planner(model=model, subagents=subagents, model_settings=budgets.model_settings()),
            context=context,
            question="Why is checkout down?",
            history=[],
            timeout_s=budgets.timeout_s,
            max_turns=budgets.max_turns,
        )
    finally:
        await client.close()


async def test_transient_model_failures_are_retried_until_the_answer(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(ScriptStep.http_error(503, "upstream overloaded"))
    emulator.enqueue(ScriptStep.http_error(429, "slow down"))
    emulator.enqueue(ScriptStep.http_error(500, "internal"))
    emulator.enqueue(ScriptStep.json(RCA))
    events: list[ProgressEvent] = []

    outcome = await _investigate(emulator, FAST, [], events)

    assert outcome.error is None and outcome.rca is not None
    assert outcome.rca.summary == RCA["summary"]
    assert len(emulator.requests) == 4, "three transient failures, each retried once, then the answer"


async def test_retries_stop_at_the_budget_with_a_plain_message(emulator: OpenAIEmulator) -> None:
    for _ in range(3):
        emulator.enqueue(ScriptStep.http_error(503, "upstream overloaded"))
    events: list[ProgressEvent] = []

    outcome = await _investigate(emulator, dataclasses.replace(FAST, model_retries=1), [], events)

    assert outcome.rca is None
    assert (
        outcome.error
        == f"The model endpoint at {emulator.base_url}/chat/completions returned HTTP 503. Try again shortly."
    )
    assert len(emulator.requests) == 2, "the first call and one retry, not the client's own retries on top"


async def test_a_rejected_request_is_not_retried(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(ScriptStep.http_error(400, "messages: bad shape"))
    emulator.enqueue(ScriptStep.json(RCA))
    events: list[ProgressEvent] = []

    outcome = await _investigate(emulator, FAST, [], events)

    assert outcome.rca is None and outcome.error is not None
    assert len(emulator.requests) == 1


async def test_tool_calls_past_the_budget_do_not_run(emulator: OpenAIEmulator) -> None:
    cluster = Cluster()
    spec = SubagentSpec(
        name="cluster",
        description="Reads the cluster.",
        instructions="You read the cluster.",
        tools=list(toolset_function_tools(_toolset(cluster), agent="cluster")),
    )
    namespaces = ["prod", "staging", "dev", "qa"]
    emulator.responder = (
        RoutedScript()
        .when_tool_offered(
            "ask_cluster",
            [
                ScriptStep.tool_calls([("ask_cluster", {"input": "list every namespace"})]),
                ScriptStep.json(RCA),
            ],
        )
        .when_tool_offered(
            "list_pods",
            [
                ScriptStep.tool_calls([("list_pods", {"namespace": ns}) for ns in namespaces]),
                ScriptStep.text("Listed prod and staging; the budget stopped the rest."),
            ],
        )
    )
    events: list[ProgressEvent] = []

    outcome = await _investigate(emulator, dataclasses.replace(FAST, max_tool_calls=2), [spec], events)

    assert outcome.rca is not None
    assert sorted(cluster.asked) == ["prod", "staging"], "only the first two calls ran"
    ends = [e for e in events if isinstance(e, ToolEnd)]
    assert [e.status for e in ends].count("error") == 2
    told = [r for r in emulator.requests if "list_pods" in r.tool_names][-1].text()
    assert "has used its budget of 2 tool calls" in told


def test_budgets_come_from_the_agent_config_and_bad_values_fall_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budgets = RunBudgets.from_config(
        {"agent": {"timeout_s": 120, "max_turns": 12, "max_tool_calls": 40, "model_retries": 0}}
    )
    assert (budgets.timeout_s, budgets.max_turns, budgets.max_tool_calls, budgets.model_retries) == (
        120.0,
        12,
        40,
        0,
    )
    assert budgets.model_settings().retry is not None
    with caplog.at_level(logging.WARNING, logger="incidentfox.agents.run_budgets"):
        fallback = RunBudgets.from_config(
            {"agent": {"timeout_s": "soon", "max_turns": 0, "max_tool_calls": 2.5, "model_retries": True}}
        )
    assert fallback == RunBudgets()
    assert len(caplog.records) == 4
    assert RunBudgets.from_config({"agent": "nonsense"}) == RunBudgets()
