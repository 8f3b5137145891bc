"""The buttons on a run's message: feedback, View session, Interrupt/Resume, and Ask a follow-up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from incidentfox.agents.runs.models import Run
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
from tests.slack_world import ADMIN, CHANNEL, USER, World, world


async def _finished_run(w: World, event_id: str = "EvA1") -> tuple[Run, str]:
    mention = w.mention("why is checkout crashlooping?")
    await w.post_event(w.slack.make_event_callback(mention, event_id=event_id))
    await w.final_update(mention["ts"], "DEPLOY_ENV is undefined")
    [run] = await w.wait_runs_finished(1)
    return run, (await w.progress_post(mention["ts"])).response["ts"]


def _press(w: World, action_id: str, value: str, message_ts: str, user: str = USER) -> dict[str, Any]:
    return w.slack.make_block_action(action_id, value, user=user, channel=CHANNEL, message_ts=message_ts)


def _submission(w: World, run_id: str, question: str, view_id: str = "VFOLLOWUP1") -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": w.slack.team_id, "domain": "test"},
        "user": {"id": USER, "team_id": w.slack.team_id},
        "api_app_id": w.slack.app_id,
        "trigger_id": w.slack.issue_trigger_id(),
        "view": {
            "id": view_id,
            "type": "modal",
            "callback_id": "run_follow_up_modal",
            "private_metadata": run_id,
            "hash": "1",
            "state": {"values": {"question": {"text": {"type": "plain_text_input", "value": question}}}},
        },
    }


async def test_feedback_is_stored_once_per_person_and_acknowledged(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert w.fox.runtime is not None
        await w.fox.runtime.config.write_config(
            ADMIN, "acme", "checkout", {"slack": {"member_user_ids": ["U0BOB"]}}, operation="patch"
        )
        run, message_ts = await _finished_run(w)
        status, _ = await w.post_interactive(_press(w, "feedback_up", run.run_id, message_ts))
        assert status == 200
        thanks = await w.slack.wait_for("chat.postEphemeral")
        assert thanks.args["user"] == USER
        assert "feedback" in thanks.args["text"]
        await w.post_interactive(_press(w, "feedback_down", run.run_id, message_ts))
        await w.post_interactive(_press(w, "feedback_up", run.run_id, message_ts, user="U0BOB"))
        assert w.fox.runtime is not None
        assert await w.fox.runtime.runs.feedback(run.run_id) == {USER: "down", "U0BOB": "up"}


async def test_view_session_opens_the_runs_timeline(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        run, message_ts = await _finished_run(w)
        await w.post_interactive(_press(w, "run_view_session", run.run_id, message_ts))
        opened = await w.slack.wait_for("views.open")
        assert opened.ok, opened.response
        view = json.dumps(opened.args["view"])
        assert "DEPLOY_ENV is undefined" in view
        assert run.run_id in view


async def test_ask_a_follow_up_opens_a_modal_and_its_submission_continues_the_thread(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        run, message_ts = await _finished_run(w)
        await w.post_interactive(_press(w, "run_follow_up", run.run_id, message_ts))
        modal = await w.slack.wait_for("views.open")
        assert modal.ok, modal.response
        assert modal.args["view"]["private_metadata"] == run.run_id

        status, body = await w.post_interactive(_submission(w, run.run_id, "   "))
        assert status == 200
        assert json.loads(body)["response_action"] == "errors"

        status, _ = await w.post_interactive(_submission(w, run.run_id, "is the node healthy?"))
        assert status == 200
        await w.post_interactive(_submission(w, run.run_id, "is the node healthy?"))
        runs = await w.wait_runs_finished(2)
        assert len(runs) == 2, "a resubmitted modal is one follow-up"
        follow_up = runs[1]
        assert (follow_up.kind, follow_up.question) == ("follow_up", "is the node healthy?")
        assert follow_up.thread_key == run.thread_key


async def _wait_status(w: World, run_id: str, status: str) -> Run:
    assert w.fox.runtime is not None
    for _ in range(200):
        stored = await w.fox.runtime.runs.get(run_id)
        if stored is not None and stored.status == status:
            return stored
        await asyncio.sleep(0.025)
    raise AssertionError(f"run {run_id} never reached {status}")


@pytest.fixture
async def slow_model() -> Any:
    async with OpenAIEmulator() as emulator:
        emulator.responder = RoutedScript().when_tool_offered(
            "ask_kubernetes", [ScriptStep.delay(60), ScriptStep.delay(60)]
        )
        yield emulator


async def test_interrupt_stops_a_running_investigation_and_resume_starts_it_again(
    tmp_path: Path, slow_model: OpenAIEmulator
) -> None:
    async with world(tmp_path, openai=slow_model) as w:
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvI1"))
        posted = await w.progress_post(mention["ts"])
        message_ts = posted.response["ts"]
        assert w.fox.runtime is not None
        for _ in range(100):
            if slow_model.requests:
                break
            await asyncio.sleep(0.05)
        [run] = await w.fox.runtime.runs.unfinished()

        await w.post_interactive(_press(w, "run_interrupt", run.run_id, message_ts))
        stopped = await w.slack.wait_for(
            "chat.update", lambda c: c.ok and "run_resume" in json.dumps(c.args.get("blocks")), timeout=10
        )
        assert "Interrupted" in json.dumps(stopped.args)
        stored = await _wait_status(w, run.run_id, "interrupted")
        assert stored.error == f"interrupted by {USER}"
        assert [e["kind"] for e in stored.events][-1] == "interrupted"

        await w.post_interactive(_press(w, "run_interrupt", run.run_id, message_ts))
        late = await w.slack.wait_for("chat.postEphemeral")
        assert "nothing to interrupt" in late.args["text"]

        await w.post_interactive(_press(w, "run_resume", run.run_id, message_ts))
        await w.post_interactive(_press(w, "run_resume", run.run_id, message_ts))
        for _ in range(100):
            runs = await w.fox.runtime.runs.runs_in_thread(run.thread_key or "")
            if len(runs) == 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        runs = await w.fox.runtime.runs.runs_in_thread(run.thread_key or "")
        assert [r.kind for r in runs] == ["mention", "resume"], "a double click resumes once"
        assert runs[1].question == run.question
        assert w.fox.worker is not None
        assert w.fox.worker.interrupt(runs[1].run_id, "U0BOB")


async def test_racing_first_votes_of_one_person_store_one_vote(database_url: str, tmp_path: Path) -> None:
    async with world(tmp_path, database_url=database_url) as w:
        run, _ = await _finished_run(w)
        assert w.fox.runtime is not None
        runs = w.fox.runtime.runs
        results = await asyncio.gather(
            *(runs.record_feedback(run.run_id, "U0RACE", v) for v in ["up", "down"] * 5)
        )
        assert all(results)
        votes = await runs.feedback(run.run_id)
        assert set(votes) == {"U0RACE"}
        assert votes["U0RACE"] in ("up", "down")
        assert await runs.record_feedback("run_missing", "U0RACE", "up") is False


async def test_buttons_work_over_socket_mode(tmp_path: Path) -> None:
    async with world(tmp_path, socket_mode=True) as w:
        await w.slack.wait_for_connections(1)
        mention = w.mention("why is checkout crashlooping?")
        ack = await w.slack.wait_for_ack(await w.slack.send_event(mention, event_id="EvS1"))
        assert ack.latency < 3.0
        await w.final_update(mention["ts"], "DEPLOY_ENV is undefined")
        [run] = await w.wait_runs_finished(1)
        message_ts = (await w.progress_post(mention["ts"])).response["ts"]
        envelope = await w.slack.send_envelope(
            "interactive", _press(w, "feedback_down", run.run_id, message_ts)
        )
        await w.slack.wait_for_ack(envelope)
        assert w.fox.runtime is not None
        for _ in range(100):
            if await w.fox.runtime.runs.feedback(run.run_id):
                break
            await asyncio.sleep(0.02)
        assert await w.fox.runtime.runs.feedback(run.run_id) == {USER: "down"}


async def test_a_button_cannot_reach_a_run_of_another_org_or_channel(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        run, message_ts = await _finished_run(w)
        elsewhere = w.slack.make_block_action(
            "feedback_up", run.run_id, user=USER, channel="C0ELSEWHERE", message_ts=message_ts
        )
        await w.post_interactive(elsewhere)
        wrong_channel = await w.slack.wait_for(
            "chat.postEphemeral", lambda c: "doesn't belong" in str(c.args)
        )
        assert wrong_channel.args["user"] == USER
        assert w.fox.runtime is not None
        async with w.fox.runtime.config.sessions.begin() as session:
            await w.fox.runtime.config.create_org(session, org_id="rival", name="Rival", actor="test")
        await w.fox.runtime.config.write_config(ADMIN, "acme", "acme", {}, operation="put")
        await w.fox.runtime.config.write_config(
            ADMIN, "rival", "rival", {"slack": {"workspace_ids": [w.slack.team_id]}}, operation="put"
        )
        await w.post_interactive(_press(w, "feedback_up", run.run_id, message_ts))
        await w.slack.wait_for("chat.postEphemeral", lambda c: "another IncidentFox org" in str(c.args))
        assert await w.fox.runtime.runs.feedback(run.run_id) == {}


async def test_a_retried_button_delivery_is_handled_once(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        run, message_ts = await _finished_run(w)
        press = _press(w, "feedback_up", run.run_id, message_ts)
        await w.post_interactive(press)
        await w.post_interactive(press)
        await w.slack.wait_for("chat.postEphemeral", lambda c: "feedback" in str(c.args))
        await asyncio.sleep(0.3)
        thanks = [c for c in w.slack.calls("chat.postEphemeral") if "feedback is recorded" in str(c.args)]
        assert len(thanks) == 1


async def test_only_the_asker_members_and_org_admins_may_control_a_run(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert w.fox.runtime is not None
        config = w.fox.runtime.config
        await config.write_config(
            ADMIN, "acme", "acme", {"slack": {"admin_user_ids": ["U0ORGADMIN"]}}, operation="patch"
        )
        run, message_ts = await _finished_run(w)
        for action in ("feedback_up", "run_resume", "run_interrupt"):
            await w.post_interactive(_press(w, action, run.run_id, message_ts, user="U0STRANGER"))

        def refused() -> list[Any]:
            return [
                c for c in w.slack.calls("chat.postEphemeral") if "Only the person who asked" in str(c.args)
            ]

        for _ in range(100):
            if len(refused()) >= 3:
                break
            await asyncio.sleep(0.05)
        refusals = refused()
        assert len(refusals) == 3
        assert {c.args["user"] for c in refusals} == {"U0STRANGER"}
        assert f"<@{USER}>" in refusals[0].args["text"] and "<@U0ORGADMIN>" in refusals[0].args["text"]
        assert await w.fox.runtime.runs.feedback(run.run_id) == {}
        assert len(await w.wait_runs_finished(1)) == 1, "a refused Resume starts no run"

        await w.post_interactive(_press(w, "feedback_down", run.run_id, message_ts, user="U0ORGADMIN"))
        await config.write_config(
            ADMIN, "acme", "checkout", {"access": {"run_buttons": "anyone"}}, operation="patch"
        )
        await w.post_interactive(_press(w, "feedback_up", run.run_id, message_ts, user="U0STRANGER"))
        await w.slack.wait_for(
            "chat.postEphemeral", lambda c: c.args["user"] == "U0STRANGER" and "recorded" in str(c.args)
        )
        assert await w.fox.runtime.runs.feedback(run.run_id) == {"U0ORGADMIN": "down", "U0STRANGER": "up"}
