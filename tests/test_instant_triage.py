"""Instant triage: the deterministic checks' top finding is in the thread while a slow model still
thinks, the model is told to confirm or overturn it, and the final RCA says which it did."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from incidentfox.agents.analyzers.first_finding import load_client_modules
from incidentfox.agents.events import FirstFinding, event_from_dict
from incidentfox.agents.planner import FIRST_FINDING_HEADER
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
from incidentfox.emulators.slack.store import RecordedCall
from tests.slack_world import World, world

MODEL_DELAY_S = 4.0
CRASHING_POD = "checkout-7d9f8b6c5-x2k4q"
DECISIVE_LINE = "DEPLOY_ENV is undefined"


def rca(verdict: str, why: str) -> dict[str, Any]:
    return {
        "summary": "checkout crashes at start-up because DEPLOY_ENV is not set.",
        "root_cause": "The checkout pods exit with 'Environment variable DEPLOY_ENV is undefined'.",
        "evidence": [
            {
                "quote": "Error: Environment variable DEPLOY_ENV is undefined",
                "source": f"pod prod/{CRASHING_POD} (previous logs)",
                "url": None,
            }
        ],
        "confidence": {"level": "high", "why": "the fatal log line states the cause"},
        "immediate_actions": ["Set DEPLOY_ENV on the checkout deployment and roll it out."],
        "follow_up_actions": [],
        "caveats": [],
        "first_finding": {"verdict": verdict, "why": why},
    }


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    """The model emulator, in a process whose worker has warmed up as it does when it starts (so the
    first mention is timed like any other, not with the Kubernetes client's one-off import)."""
    load_client_modules()
    async with OpenAIEmulator() as emulator:
        yield emulator


def _shows_first_finding(call: RecordedCall) -> bool:
    return call.ok and "First finding" in json.dumps(call.args.get("blocks"))


async def _mention(w: World, text: str, event_id: str) -> tuple[dict[str, Any], float]:
    mention = w.mention(text)
    sent = time.monotonic()
    assert (await w.post_event(w.slack.make_event_callback(mention, event_id=event_id))).status == 200
    return mention, sent


async def test_the_first_finding_is_in_the_thread_before_a_slow_model_answers(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    why = "The previous logs of the crashing pod state the missing variable."
    model.responder = RoutedScript().when_tool_offered(
        "ask_kubernetes", [ScriptStep.delay(MODEL_DELAY_S), ScriptStep.json(rca("confirmed", why))]
    )
    async with world(tmp_path, openai=model) as w:
        mention, sent = await _mention(w, "why is checkout crashlooping?", "EvT1")
        posted = await w.progress_post(mention["ts"])
        shown = await w.slack.wait_for(
            "chat.update", lambda c: _shows_first_finding(c) and c.args["ts"] == posted.response["ts"]
        )
        assert shown.at - sent < 2.0, "the first finding is in the thread within 2 s of the mention"
        blocks = json.dumps(shown.args["blocks"])
        assert CRASHING_POD in blocks and "CrashLoopBackOff" in blocks
        assert DECISIVE_LINE in blocks, "the decisive evidence line is quoted"
        assert "previous logs" in blocks, "with its source"
        assert "Investigating" in json.dumps(shown.args["blocks"][0]), "while the run is still going"

        final = await w.final_update(mention["ts"], "First finding confirmed")
        [first_request] = model.requests
        assert shown.at < first_request.at + MODEL_DELAY_S, "before the model's first answer"
        text = json.dumps(final.args["blocks"])
        assert why in text and CRASHING_POD in text, "the verdict names the finding as it was shown"
        assert FIRST_FINDING_HEADER.strip().splitlines()[0] in first_request.system_prompt
        assert CRASHING_POD in first_request.system_prompt, "the first finding grounds the planner"
        [run] = await w.wait_runs_finished(1)
        events = [event_from_dict(e) for e in run.events]
        [first] = [e for e in events if isinstance(e, FirstFinding)]
        assert first.agent == "kubernetes" and CRASHING_POD in first.resource
        assert run.status == "succeeded"
        assert w.k8s.token not in json.dumps(run.events)


async def test_an_overturned_first_finding_is_said_in_the_rca(tmp_path: Path, model: OpenAIEmulator) -> None:
    why = "The pods crash because the payments dependency was renamed; DEPLOY_ENV is a red herring."
    model.responder = RoutedScript().when_tool_offered(
        "ask_kubernetes", [ScriptStep.json(rca("overturned", why))]
    )
    async with world(tmp_path, openai=model) as w:
        mention, _ = await _mention(w, "why is checkout crashlooping?", "EvT2")
        final = await w.final_update(mention["ts"], "First finding overturned")
        text = json.dumps(final.args["blocks"])
        assert "red herring" in text and "confirmed" not in text
        [run] = await w.wait_runs_finished(1)
        result = event_from_dict(run.events[-1])
        assert result.kind == "result"


async def test_without_a_cluster_problem_no_first_finding_is_shown_and_a_verdict_is_dropped(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    model.responder = RoutedScript().when_tool_offered(
        "ask_kubernetes", [ScriptStep.json(rca("confirmed", "nothing to confirm"))]
    )
    async with world(tmp_path, openai=model, scenario="healthy") as w:
        mention, _ = await _mention(w, "why is checkout slow?", "EvT3")
        final = await w.final_update(mention["ts"], "Root-cause analysis")
        assert "First finding" not in json.dumps(final.args["blocks"])
        [run] = await w.wait_runs_finished(1)
        assert not [e for e in run.events if e["kind"] == "first_finding"]
        assert "First finding" not in json.dumps([c.args.get("blocks") for c in w.slack.calls("chat.update")])
        assert FIRST_FINDING_HEADER.strip().splitlines()[0] not in model.requests[0].system_prompt
