"""The planner and the investigation runner, end to end against the OpenAI emulator over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Model, OpenAIChatCompletionsModel, function_tool, set_tracing_disabled
from agents.tool_context import ToolContext
from openai import AsyncOpenAI

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import (
    Error,
    ProgressEvent,
    Result,
    SubagentEnd,
    SubagentStart,
    Thought,
    ToolEnd,
    ToolStart,
    event_to_dict,
)
from incidentfox.agents.planner import SubagentSpec, build_planner
from incidentfox.agents.rca import Confidence, Evidence
from incidentfox.agents.runner import RunOutcome, run_investigation
from incidentfox.emulators.openai_api import OpenAIEmulator, RecordedRequest, RoutedScript, ScriptStep

API_KEY = "sk-live-TEAMSECRET-9f8e7d6c5b4a"
KUBE_TOKEN = "kube-QWERTY-77-plain"
CRASH_LINE = "panic: runtime error: invalid memory address or nil pointer dereference"

RCA_JSON: dict[str, Any] = {
    "summary": "checkout is down because its pods crash on start after the 14:02 deploy.",
    "root_cause": "A nil pointer dereference in checkout v2.3.1 crashes every pod at startup.",
    "evidence": [
        {"quote": CRASH_LINE, "source": "pod prod/checkout-7d9 (previous logs)", "url": None},
        {
            "quote": "checkout-7d9 CrashLoopBackOff restarts=7",
            "source": "kubernetes pods in prod",
            "url": None,
        },
    ],
    "confidence": {"level": "high", "why": "The crash line appears in every restart of the new version."},
    "immediate_actions": ["Roll back deployment prod/checkout to v2.3.0."],
    "follow_up_actions": ["Add a startup smoke test for nil config."],
    "caveats": ["Metrics were not checked."],
}


@pytest.fixture(autouse=True)
def _no_tracing() -> None:
    set_tracing_disabled(True)


@function_tool
async def list_pods(ctx: ToolContext[InvestigationContext], namespace: str) -> str:
    """List the pods in a namespace with their status and restart counts.

    Emits its own ToolStart/ToolEnd, as the function-tool adapter does.
    """
    agent = ctx.agent.name if ctx.agent is not None else "unknown"
    emit = ctx.context.emit
    emit(ToolStart(call_id=ctx.tool_call_id, tool="list_pods", args={"namespace": namespace}, agent=agent))
    output = f"{namespace}/checkout-7d9 CrashLoopBackOff restarts=7 last_log={CRASH_LINE!r}"
    emit(ToolEnd(call_id=ctx.tool_call_id, tool="list_pods", status="ok", summary="1 pod", agent=agent))
    return output


KUBERNETES = SubagentSpec(
    name="kubernetes",
    description="Ask about pods, deployments and events in the team's clusters.",
    instructions="You are the Kubernetes specialist.",
    tools=[list_pods],
)
LOGS = SubagentSpec(name="logs", description="Search logs.", instructions="You are the logs specialist.")


class Recorder:
    """The run's ``emit``: keeps every event in order."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def as_json(self) -> str:
        return json.dumps([event_to_dict(e) for e in self.events], default=str)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def context(recorder: Recorder) -> InvestigationContext:
    config = {
        "model": {"api_key": API_KEY},
        "integrations": {"kubernetes": {"enabled": True, "token": KUBE_TOKEN}},
    }
    return InvestigationContext(
        run_id="run-1", org_id="acme", team_node_id="payments", config=config, emit=recorder
    )


_open_clients: list[AsyncOpenAI] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _open_clients:
        await _open_clients.pop().close()


def model_for(base_url: str, *, timeout: float = 10.0) -> Model:
    client = AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0, timeout=timeout)
    _open_clients.append(client)
    return OpenAIChatCompletionsModel(model="emulator-model", openai_client=client)


def planner_and_subagent_script(planner_steps: list[ScriptStep], k8s_steps: list[ScriptStep]) -> RoutedScript:
    """The planner is the caller offered ``ask_kubernetes``; the sub-agent is offered ``list_pods``."""
    return (
        RoutedScript()
        .when_tool_offered("ask_kubernetes", planner_steps)
        .when_tool_offered("list_pods", k8s_steps)
    )


@pytest.fixture
async def emulator() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator(api_key=API_KEY) as emu:
        yield emu


async def investigate(
    emu_url: str,
    context: InvestigationContext,
    *,
    question: str = "Why is checkout returning 502s?",
    history: list[Any] | None = None,
    timeout_s: float = 20.0,
    max_turns: int = 6,
    grounding: str | None = None,
) -> RunOutcome:
    planner = build_planner(model=model_for(emu_url), subagents=[KUBERNETES], grounding=grounding)
    return await run_investigation(
        planner=planner,
        context=context,
        question=question,
        history=history or [],
        timeout_s=timeout_s,
        max_turns=max_turns,
    )


def happy_script() -> RoutedScript:
    return planner_and_subagent_script(
        [
            ScriptStep.tool_calls(
                [("ask_kubernetes", {"input": "Why are checkout pods in prod failing?"})],
                text="Checkout is failing; I'll check its pods first.",
            ),
            ScriptStep.json(RCA_JSON),
        ],
        [
            ScriptStep.tool_calls([("list_pods", {"namespace": "prod"})]),
            ScriptStep.text(f"checkout-7d9 is in CrashLoopBackOff (7 restarts); last log: {CRASH_LINE}"),
        ],
    )


async def test_planner_delegates_to_kubernetes_and_returns_the_rca(
    emulator: OpenAIEmulator, context: InvestigationContext, recorder: Recorder
) -> None:
    emulator.responder = happy_script()
    outcome = await investigate(emulator.base_url, context, grounding="checkout-7d9: CrashLoopBackOff")

    assert outcome.error is None
    assert recorder.kinds == [
        "started",
        "thought",
        "subagent_start",
        "tool_start",
        "tool_end",
        "subagent_end",
        "result",
    ]
    thought, sub_start, tool_start, _, sub_end = recorder.events[1:6]
    assert isinstance(thought, Thought) and thought.text == "Checkout is failing; I'll check its pods first."
    assert isinstance(sub_start, SubagentStart)
    assert (sub_start.agent, sub_start.task) == ("kubernetes", "Why are checkout pods in prod failing?")
    assert isinstance(tool_start, ToolStart) and tool_start.agent == "kubernetes"
    assert isinstance(sub_end, SubagentEnd) and CRASH_LINE in sub_end.summary

    rca = outcome.rca
    assert rca is not None
    assert rca.root_cause == RCA_JSON["root_cause"]
    assert rca.evidence[0] == Evidence(quote=CRASH_LINE, source="pod prod/checkout-7d9 (previous logs)")
    assert rca.confidence == Confidence("high", "The crash line appears in every restart of the new version.")
    assert rca.immediate_actions == ("Roll back deployment prod/checkout to v2.3.0.",)
    assert rca.caveats == ("Metrics were not checked.",)
    final = recorder.events[-1]
    assert isinstance(final, Result) and final.rca == rca

    planner_first, sub_first, sub_second, planner_second = emulator.requests
    assert planner_first.tool_names == ["ask_kubernetes"]
    assert "checkout-7d9: CrashLoopBackOff" in planner_first.system_prompt
    assert "never invent evidence" in planner_first.system_prompt.lower()
    assert sub_first.tool_names == ["list_pods"]
    assert sub_first.system_prompt.startswith("You are the Kubernetes specialist.")
    assert "Why are checkout pods in prod failing?" in sub_first.text()
    assert CRASH_LINE in sub_second.text()
    assert CRASH_LINE in planner_second.text()
    assert planner_second.body.get("response_format", {}).get("type") == "json_schema"
    assert all(r.authorization == f"Bearer {API_KEY}" for r in emulator.requests)
    assert outcome.usage.requests == 4 and outcome.usage.total_tokens > 0
    assert API_KEY not in recorder.as_json()


async def test_follow_up_run_sends_the_earlier_conversation(
    emulator: OpenAIEmulator, context: InvestigationContext, recorder: Recorder
) -> None:
    emulator.responder = happy_script()
    first = await investigate(emulator.base_url, context)
    assert first.rca is not None
    json.dumps(first.history)  # the history is persisted as JSON

    follow_up_rca = {
        **RCA_JSON,
        "summary": "Rolling back to v2.3.0 is safe: it ran for 3 days without crashes.",
    }
    emulator.responder = None
    emulator.enqueue(ScriptStep.json(follow_up_rca))
    second = await investigate(
        emulator.base_url, context, question="Is it safe to roll back?", history=first.history
    )

    assert second.rca is not None and second.rca.summary == follow_up_rca["summary"]
    last = emulator.requests[-1]
    user_turns = [m["content"] for m in last.messages if m["role"] == "user"]
    assert user_turns == ["Why is checkout returning 502s?", "Is it safe to roll back?"]
    assert "Checkout is failing; I'll check its pods first." in last.text()
    assert CRASH_LINE in last.text()
    assert len(second.history) > len(first.history)
    assert recorder.kinds[-2:] == ["started", "result"]


async def test_garbage_structured_output_ends_in_a_plain_error(
    emulator: OpenAIEmulator, context: InvestigationContext, recorder: Recorder
) -> None:
    emulator.enqueue(ScriptStep.garbage())
    outcome = await investigate(emulator.base_url, context, question="Why is checkout slow?")

    assert outcome.rca is None
    assert outcome.error is not None and "could not be read as a root-cause analysis" in outcome.error
    assert recorder.kinds == ["started", "error"]
    final = recorder.events[-1]
    assert isinstance(final, Error) and final.message == outcome.error
    assert outcome.history == [{"role": "user", "content": "Why is checkout slow?"}]


async def test_model_http_500_names_the_endpoint_and_status(
    emulator: OpenAIEmulator,
    context: InvestigationContext,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.enqueue(ScriptStep.http_error(500, f"upstream exploded for key {API_KEY}"))
    with caplog.at_level(logging.WARNING, logger="incidentfox.agents.runner"):
        outcome = await investigate(emulator.base_url, context)

    endpoint = f"{emulator.base_url}/chat/completions"
    assert outcome.error == f"The model endpoint at {endpoint} returned HTTP 500. Try again shortly."
    assert recorder.kinds == ["started", "error"]
    assert API_KEY not in recorder.as_json()
    [record] = caplog.records
    assert "run_id=run-1" in record.getMessage() and "status=500" in record.getMessage()
    assert API_KEY not in caplog.text


async def test_rejected_api_key_says_so(context: InvestigationContext, recorder: Recorder) -> None:
    async with OpenAIEmulator([ScriptStep.text("unused")], api_key="sk-the-right-one") as emu:
        outcome = await investigate(emu.base_url, context)
    assert outcome.error is not None and "rejected the API key (HTTP 401)" in outcome.error
    assert API_KEY not in recorder.as_json() and "sk-the-right-one" not in recorder.as_json()
    assert recorder.kinds == ["started", "error"]


async def test_unreachable_model_endpoint(context: InvestigationContext, recorder: Recorder) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = await investigate(f"http://127.0.0.1:{port}/v1", context)
    endpoint = f"http://127.0.0.1:{port}/v1/chat/completions"
    assert outcome.error == f"Could not reach the model endpoint at {endpoint}. Check that it is running."
    assert recorder.kinds == ["started", "error"]


async def test_slow_model_is_stopped_at_the_run_timeout(
    emulator: OpenAIEmulator, context: InvestigationContext, recorder: Recorder
) -> None:
    emulator.enqueue(ScriptStep.delay(30), ScriptStep.json(RCA_JSON))
    began = time.monotonic()
    outcome = await investigate(emulator.base_url, context, timeout_s=0.5)

    assert time.monotonic() - began < 3.0
    assert outcome.error == "The investigation took longer than 0.5 s and was stopped."
    assert recorder.kinds == ["started", "error"]


async def test_too_many_turns(
    emulator: OpenAIEmulator, context: InvestigationContext, recorder: Recorder
) -> None:
    emulator.responder = planner_and_subagent_script(
        [
            ScriptStep.tool_calls([("ask_kubernetes", {"input": f"check pods, attempt {n}"})])
            for n in range(3)
        ],
        [ScriptStep.text("nothing wrong") for _ in range(3)],
    )
    outcome = await investigate(emulator.base_url, context, max_turns=2)

    assert outcome.error == "The investigation used all 2 turns without reaching a conclusion."
    assert recorder.kinds == ["started", *["subagent_start", "subagent_end"] * 2, "error"]


async def test_failing_subagent_becomes_a_caveat_not_a_failed_run(
    emulator: OpenAIEmulator, context: InvestigationContext, recorder: Recorder
) -> None:
    emulator.responder = planner_and_subagent_script(
        [ScriptStep.tool_calls([("ask_kubernetes", {"input": "pods?"})]), ScriptStep.json(RCA_JSON)],
        [ScriptStep.http_error(500, f"boom {API_KEY}")],
    )
    outcome = await investigate(emulator.base_url, context)

    assert outcome.rca is not None
    assert recorder.kinds == ["started", "subagent_start", "subagent_end", "result"]
    end = recorder.events[2]
    assert isinstance(end, SubagentEnd)
    assert end.summary.startswith("The kubernetes specialist could not finish (InternalServerError).")
    assert "could not finish" in emulator.requests[-1].text()
    assert API_KEY not in recorder.as_json()
    assert API_KEY not in emulator.requests[-1].text()


async def test_secrets_echoed_by_the_model_are_scrubbed_from_events(
    emulator: OpenAIEmulator, context: InvestigationContext, recorder: Recorder
) -> None:
    leaky_rca = {**RCA_JSON, "caveats": [f"Used token {KUBE_TOKEN} to read pods."]}
    emulator.responder = planner_and_subagent_script(
        [
            ScriptStep.tool_calls(
                [("ask_kubernetes", {"input": f"use {KUBE_TOKEN}"})], text=f"Token is {KUBE_TOKEN}."
            ),
            ScriptStep.json(leaky_rca),
        ],
        [ScriptStep.text(f"Listed pods with {KUBE_TOKEN}; the key {API_KEY} also works.")],
    )
    outcome = await investigate(emulator.base_url, context)

    assert recorder.kinds == ["started", "thought", "subagent_start", "subagent_end", "result"]
    events_json = recorder.as_json()
    assert KUBE_TOKEN not in events_json and API_KEY not in events_json
    assert "[REDACTED]" in events_json
    assert outcome.rca is not None and outcome.rca.caveats == ("Used token [REDACTED] to read pods.",)


async def test_cancellation_propagates_without_an_error_event(
    emulator: OpenAIEmulator, context: InvestigationContext, recorder: Recorder
) -> None:
    model_called = asyncio.Event()

    def note_call(_request: RecordedRequest) -> None:
        model_called.set()

    emulator.responder = note_call  # returns None: the default script answers
    emulator.enqueue(ScriptStep.delay(30), ScriptStep.json(RCA_JSON))
    task = asyncio.create_task(investigate(emulator.base_url, context))
    await asyncio.wait_for(model_called.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder.kinds == ["started"]


def test_planner_offers_only_the_given_subagents_with_stable_tool_names() -> None:
    history = SubagentSpec(name="incident-history", description="Past incidents.", instructions="History.")
    planner = build_planner(model=model_for("http://127.0.0.1:9/v1"), subagents=[KUBERNETES, history, LOGS])
    assert [t.name for t in planner.tools] == ["ask_kubernetes", "ask_incident_history", "ask_logs"]
    assert planner.name == "planner"

    with pytest.raises(ValueError, match="given twice"):
        build_planner(model=model_for("http://127.0.0.1:9/v1"), subagents=[LOGS, LOGS])
    with pytest.raises(ValueError, match="must match"):
        build_planner(
            model=model_for("http://127.0.0.1:9/v1"),
            subagents=[SubagentSpec(name="Bad Name", description="", instructions="")],
        )
