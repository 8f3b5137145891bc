"""Every run reaches a final state: worker failures, double interrupts, escaping, restarts mid-run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from incidentfox.agents.runs.models import Run
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
from tests.slack_world import CHANNEL, USER, World, world


async def _wait_status(w: World, run_id: str, status: str) -> Run:
    assert w.fox.runtime is not None
    for _ in range(300):
        stored = await w.fox.runtime.runs.get(run_id)
        if stored is not None and stored.status == status:
            return stored
        await asyncio.sleep(0.025)
    raise AssertionError(f"run {run_id} never reached {status}")


async def _running_run(
    w: World, model: OpenAIEmulator, text: str = "why is checkout crashlooping?"
) -> tuple[Run, str]:
    mention = w.mention(text)
    await w.post_event(w.slack.make_event_callback(mention, event_id="EvW1"))
    posted = await w.progress_post(mention["ts"])
    assert w.fox.runtime is not None
    for _ in range(200):
        if model.requests:
            break
        await asyncio.sleep(0.025)
    [run] = await w.fox.runtime.runs.unfinished()
    return run, posted.response["ts"]


@pytest.fixture
async def slow_model() -> Any:
    async with OpenAIEmulator() as emulator:
        emulator.responder = RoutedScript().when_tool_offered(
            "ask_kubernetes", [ScriptStep.delay(60), ScriptStep.delay(60), ScriptStep.delay(60)]
        )
        yield emulator


async def test_a_failure_inside_the_worker_ends_the_run_failed_with_a_plain_message(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert w.fox.runtime is not None

        async def broken_history(thread_key: str | None, **owner: str) -> list[dict[str, Any]]:
            raise RuntimeError("the database went away: password=hunter2")

        w.fox.runtime.runs.history = broken_history  # type: ignore[method-assign]
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvW2"))
        final = await w.final_update(mention["ts"], "went wrong inside IncidentFox")
        assert "hunter2" not in json.dumps(final.args)
        assert "Traceback" not in json.dumps(final.args)
        [run] = await w.wait_runs_finished(1)
        assert run.status == "failed"
        assert [e["kind"] for e in run.events][-1] == "error"


async def test_pressing_interrupt_twice_keeps_the_events_and_shows_resume(
    tmp_path: Path, slow_model: OpenAIEmulator
) -> None:
    async with world(tmp_path, openai=slow_model) as w:
        run, message_ts = await _running_run(w, slow_model)
        press = w.slack.make_block_action(
            "run_interrupt", run.run_id, user=USER, channel=CHANNEL, message_ts=message_ts
        )
        other = w.slack.make_block_action(
            "run_interrupt", run.run_id, user="U0BOB", channel=CHANNEL, message_ts=message_ts
        )
        await asyncio.gather(w.post_interactive(press), w.post_interactive(other))
        stored = await _wait_status(w, run.run_id, "interrupted")
        assert stored.error in (f"interrupted by {USER}", "interrupted by U0BOB")
        kinds = [e["kind"] for e in stored.events]
        assert kinds[0] == "started"
        assert kinds.count("interrupted") == 1
        await w.slack.wait_for(
            "chat.update", lambda c: c.ok and "run_resume" in json.dumps(c.args.get("blocks"))
        )


async def test_a_question_cannot_ping_the_channel(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        mention = w.mention("why <!channel> is checkout down <@U0BOB>?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvW3"))
        posted = await w.progress_post(mention["ts"])
        await w.final_update(mention["ts"], "DEPLOY_ENV")
        for call in [posted, *w.slack.calls("chat.update")]:
            assert "<!channel>" not in json.dumps(call.args)


async def test_a_run_cut_off_by_a_restart_continues_in_the_same_message(
    tmp_path: Path, slow_model: OpenAIEmulator
) -> None:
    async with world(tmp_path, openai=slow_model) as w:
        run, message_ts = await _running_run(w, slow_model)
        w.fox.shutdown_grace_s = 0.1
        slow_model.responder = None
        await w.restart()
        finished = await w.wait_runs_finished(1)
        assert [r.run_id for r in finished] == [run.run_id]
        posts = [c for c in w.slack.calls("chat.postMessage") if "Investigating" in str(c.args.get("text"))]
        assert len(posts) == 1, "the resumed run edits its original message"
        await w.slack.wait_for(
            "chat.update",
            lambda c: c.ok and c.args.get("ts") == message_ts and "Interrupt" in json.dumps(c.args),
            timeout=10,
        )
