"""LLM mode end to end: the planner delegates to the kubernetes sub-agent against the model emulator,
follow-ups in a thread continue the conversation, and model failures end in plain words."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from incidentfox.agents.events import event_from_dict
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
from tests.slack_world import World, world

RCA = {
    "summary": "checkout crashes at start-up because DEPLOY_ENV is not set.",
    "root_cause": "The checkout deployment's pods exit with 'Environment variable DEPLOY_ENV is undefined'.",
    "evidence": [
        {
            "quote": "Error: Environment variable DEPLOY_ENV is undefined",
            "source": "pod prod/checkout-7d9f8b6c5-x2k4q (previous logs)",
            "url": None,
        }
    ],
    "confidence": {"level": "high", "why": "the fatal log line states the cause"},
    "immediate_actions": ["Set DEPLOY_ENV on the checkout deployment and roll it out."],
    "follow_up_actions": ["Validate required env vars in CI."],
    "caveats": [],
}


def delegating_script(follow_up_answer: dict[str, Any] | None = None) -> RoutedScript:
    planner = [
        ScriptStep.tool_calls(
            [("ask_kubernetes", {"input": "Why are checkout pods in prod failing?"})],
            text="Checkout is failing; checking its pods.",
        ),
        ScriptStep.json(RCA),
    ]
    if follow_up_answer is not None:
        planner.append(ScriptStep.json(follow_up_answer))
    subagent = [
        ScriptStep.tool_calls(
            [("pod_logs", {"name": "checkout-7d9f8b6c5-x2k4q", "namespace": "prod", "previous": True})]
        ),
        ScriptStep.text("checkout-7d9f8b6c5-x2k4q: Error: Environment variable DEPLOY_ENV is undefined"),
    ]
    return RoutedScript().when_tool_offered("ask_kubernetes", planner).when_tool_offered("pod_logs", subagent)


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emulator:
        yield emulator


async def _ask(w: World, text: str, event_id: str, thread_ts: str | None = None) -> dict[str, Any]:
    mention = w.mention(text, thread_ts=thread_ts)
    assert (await w.post_event(w.slack.make_event_callback(mention, event_id=event_id))).status == 200
    return mention


async def test_planner_delegates_and_the_thread_shows_ordered_progress_then_the_rca(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    model.responder = delegating_script()
    async with world(tmp_path, openai=model) as w:
        mention = await _ask(w, "why is checkout crashlooping?", "EvL1")
        final = await w.final_update(mention["ts"], "Set DEPLOY_ENV on the checkout deployment")
        assert "DEPLOY_ENV is undefined" in json.dumps(final.args["blocks"])
        [run] = await w.wait_runs_finished(1)
        kinds = [event_from_dict(e).kind for e in run.events]
        analyzers_done = kinds.index("subagent_end")
        assert kinds[:2] == ["started", "subagent_start"]
        assert set(kinds[2:analyzers_done]) == {"thought"}, (
            "the analyzers' findings, as the kubernetes checks"
        )
        assert kinds[analyzers_done + 1 :] == [
            "first_finding",
            "thought",
            "subagent_start",
            "tool_start",
            "tool_end",
            "subagent_end",
            "result",
        ], kinds
        planner_request = next(r for r in model.requests if "ask_kubernetes" in r.tool_names)
        assert "CrashLoopBackOff" in planner_request.system_prompt, "analyzer findings ground the planner"
        assert w.k8s.token not in json.dumps([r.body for r in model.requests])


async def test_a_follow_up_in_the_thread_continues_the_conversation_after_the_first_run(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    answer = {**RCA, "summary": "Yes: the rollout 'checkout' is still failing for the same reason."}
    script = delegating_script(answer)
    model.responder = script
    async with world(tmp_path, openai=model) as w:
        first = await _ask(w, "why is checkout crashlooping?", "EvL2")
        follow_up = await _ask(w, "is it still failing?", "EvL3", thread_ts=first["ts"])
        await w.wait_runs_finished(2, timeout=20)
        runs = sorted(await w.wait_runs_finished(2), key=lambda r: r.created_at)
        assert [r.status for r in runs] == ["succeeded", "succeeded"]
        assert runs[0].thread_key == runs[1].thread_key
        assert runs[1].started_at >= runs[0].finished_at, "one run per thread at a time"
        last = model.requests[-1]
        texts = json.dumps(last.messages)
        assert "why is checkout crashlooping?" in texts
        assert "is it still failing?" in texts
        assert [m for m in last.messages if m.get("role") == "tool"] == [], "tool outputs are not replayed"
        assert "Set DEPLOY_ENV" in texts, "the earlier answer is"
        assert follow_up["thread_ts"] == first["ts"]
        assert script.remaining() == {"tool:ask_kubernetes": 0, "tool:pod_logs": 0}


async def test_model_garbage_ends_the_run_with_a_plain_words_error(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    model.responder = RoutedScript().when_tool_offered(
        "ask_kubernetes", [ScriptStep.garbage(), ScriptStep.garbage(), ScriptStep.garbage()]
    )
    async with world(tmp_path, openai=model) as w:
        mention = await _ask(w, "why is checkout crashlooping?", "EvL4")
        [run] = await w.wait_runs_finished(1, timeout=20)
        assert run.status == "failed"
        assert run.error
        final = await w.final_update(mention["ts"], "could not finish")
        text = json.dumps(final.args)
        assert "Traceback" not in text
        assert model.api_key not in text


async def test_a_model_that_never_answers_times_out_in_plain_words(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    model.responder = RoutedScript().when_tool_offered(
        "ask_kubernetes", [ScriptStep.delay(30), ScriptStep.json(RCA)]
    )
    team = {
        "routing": {"slack_channel_ids": ["C0CHECKOUT"]},
        "agent": {"timeout_s": 1},
    }
    async with world(tmp_path, openai=model, team_config=team) as w:
        assert w.fox.runtime is not None
        from incidentfox.config.permissions import Principal

        await w.fox.runtime.config.write_config(
            Principal(kind="admin"),
            "acme",
            "checkout",
            {
                "integrations": {
                    "kubernetes": {"api_url": w.k8s.api_url, "token": w.k8s.token, "namespace": "prod"}
                }
            },
            operation="patch",
        )
        started = asyncio.get_running_loop().time()
        await _ask(w, "why is checkout crashlooping?", "EvL5")
        [run] = await w.wait_runs_finished(1, timeout=20)
        assert asyncio.get_running_loop().time() - started < 10
        assert run.status == "failed"
        assert "1" in run.error
        assert "longer" in run.error or "timed out" in run.error.lower()
