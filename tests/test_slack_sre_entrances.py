"""The other ways into an SRE agent session (issue 10, item 1), end to end with the real bundled CLI
in a bubblewrap sandbox against the Anthropic emulator: a reply in the session's thread without a
mention (unless the team sets ``auto_listen: false``), an @mention to a team whose ``entrance_agent``
is ``sre``, the "Dig deeper in a sandbox" button on a finished RCA, and Resume after Interrupt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from incidentfox.blocks.rca import ACTION_DIG_DEEPER, DIG_DEEPER_LABEL
from incidentfox.emulators.anthropic_api import AnthropicEmulator, RoutedScript, ScriptStep
from incidentfox.emulators.slack.store import RecordedCall
from incidentfox.sandboxes.store import SandboxStore
from tests.slack_world import ADMIN, CHANNEL, USER, World, world
from tests.test_sandbox_agent_cli import _require_bubblewrap


def _team(k8s_url: str, k8s_token: str, **extra: Any) -> dict[str, Any]:
    return {
        "integrations": {"kubernetes": {"api_url": k8s_url, "token": k8s_token, "namespace": "prod"}},
        "routing": {"slack_channel_ids": [CHANNEL]},
        **extra,
    }


async def _set_team(w: World, **extra: Any) -> None:
    assert w.fox.runtime is not None
    document = _team(w.k8s.api_url, w.k8s.token, **extra)
    await w.fox.runtime.config.write_config(ADMIN, "acme", "checkout", document, operation="put")


async def _debug_thread(w: World, task: str) -> str:
    await w.command(f"debug {task}")
    root = await w.slack.wait_for("chat.postMessage", lambda c: "asked:" in str(c.args.get("text")))
    thread_ts: str = root.response["ts"]
    await w.final_update(thread_ts, "SRE agent", timeout=120)
    return thread_ts


async def _answer(w: World, starting: str, timeout: float = 120) -> RecordedCall:
    """The final ``chat.update`` whose text starts with the SRE agent's answer ``starting``."""
    return await w.slack.wait_for(
        "chat.update",
        lambda c: c.ok and str(c.args.get("text")).startswith(f"🛠️ SRE agent: {starting}"),
        timeout=timeout,
    )


async def _run_count(w: World) -> int:
    assert w.fox.runtime is not None
    return len(await w.fox.runtime.runs.recent_for_team("acme", "checkout"))


async def test_a_reply_in_the_thread_without_a_mention_goes_to_the_session(tmp_path: Path) -> None:
    _require_bubblewrap()
    async with AnthropicEmulator() as emu:
        emu.responder = (
            RoutedScript()
            .when_user_says("look at the build", [ScriptStep.text("The build log is clean.")])
            .when_user_says("and the tests?", [ScriptStep.text("Two tests fail on main.")])
        )
        async with world(tmp_path, anthropic=emu) as w:
            thread_ts = await _debug_thread(w, "look at the build")

            reply = w.slack.make_message(CHANNEL, USER, "and the tests?", thread_ts=thread_ts)
            await w.post_event(w.slack.make_event_callback(reply, event_id="EvReply1"))

            final = await _answer(w, "Two tests")
            assert final.args["text"] == "🛠️ SRE agent: Two tests fail on main."
            assert "look at the build" in emu.requests[-1].text(), "the same agent session continued"
            runs = await w.wait_runs_finished(2, timeout=30)
            assert [r.kind for r in runs] == ["debug", "thread_reply"]
            assert runs[0].thread_key == runs[1].thread_key

            unthreaded = w.slack.make_message(CHANNEL, USER, "and the tests?")
            await w.post_event(w.slack.make_event_callback(unthreaded, event_id="EvReply2"))
            elsewhere = w.slack.make_message(CHANNEL, USER, "and the tests?", thread_ts="1700000000.000100")
            await w.post_event(w.slack.make_event_callback(elsewhere, event_id="EvReply3"))
            assert await _run_count(w) == 2, "only a thread with a session listens"


async def test_auto_listen_false_needs_a_mention_in_the_thread(tmp_path: Path) -> None:
    _require_bubblewrap()
    async with AnthropicEmulator() as emu:
        emu.responder = RoutedScript().when_user_says("look at the build", [ScriptStep.text("Clean.")])
        async with world(tmp_path, anthropic=emu) as w:
            await _set_team(w, auto_listen=False)
            thread_ts = await _debug_thread(w, "look at the build")

            reply = w.slack.make_message(CHANNEL, USER, "and the tests?", thread_ts=thread_ts)
            await w.post_event(w.slack.make_event_callback(reply, event_id="EvQuiet1"))

            assert await _run_count(w) == 1
            assert len(emu.requests) == 1


async def test_a_mention_to_an_sre_entrance_team_starts_a_session(tmp_path: Path) -> None:
    _require_bubblewrap()
    async with AnthropicEmulator() as emu:
        emu.responder = RoutedScript().when_user_says(
            "why is checkout slow", [ScriptStep.text("The database pool is exhausted.")]
        )
        async with world(tmp_path, anthropic=emu) as w:
            await _set_team(w, entrance_agent="sre")
            mention = w.mention("why is checkout slow?")
            await w.post_event(w.slack.make_event_callback(mention, event_id="EvSre1"))

            final = await w.final_update(mention["ts"], "SRE agent", timeout=120)
            assert final.args["text"] == "🛠️ SRE agent: The database pool is exhausted."
            [run] = await w.wait_runs_finished(1, timeout=30)
            assert run.kind == "mention" and run.status == "succeeded"
            assert w.fox.runtime is not None
            row = await SandboxStore(w.fox.runtime.sessions).for_thread(run.thread_key or "")
            assert row is not None and row.status == "active"


async def test_dig_deeper_on_an_rca_continues_in_a_sandbox(tmp_path: Path) -> None:
    _require_bubblewrap()
    async with AnthropicEmulator() as emu:
        emu.responder = RoutedScript().when_user_says(
            "Dig deeper", [ScriptStep.text("Confirmed: the config map lost DATABASE_URL.")]
        )
        async with world(tmp_path, anthropic=emu) as w:
            mention = w.mention("why is checkout crashing?")
            await w.post_event(w.slack.make_event_callback(mention, event_id="EvRca1"))
            rca = await w.final_update(mention["ts"], "Root-cause analysis", timeout=60)
            buttons = [e for b in rca.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
            dig = [e for e in buttons if e["action_id"] == ACTION_DIG_DEEPER]
            assert [e["text"]["text"] for e in dig] == [DIG_DEEPER_LABEL]
            assert len(emu.requests) == 0, "the RCA came from the planner side, not the SRE agent"

            press = w.slack.make_block_action(
                ACTION_DIG_DEEPER, dig[0]["value"], user=USER, channel=CHANNEL, message_ts=rca.args["ts"]
            )
            await w.post_interactive(press)

            final = await _answer(w, "Confirmed")
            assert final.args["text"] == "🛠️ SRE agent: Confirmed: the config map lost DATABASE_URL."
            asked = emu.requests[0].last_user_text
            assert asked.startswith("Dig deeper in a sandbox: why is checkout crashing?")
            assert "root cause" in asked.lower()
            runs = await w.wait_runs_finished(2, timeout=30)
            assert [(r.kind, r.thread_ts) for r in runs] == [
                ("mention", mention["ts"]),
                ("debug", mention["ts"]),
            ]


async def test_dig_deeper_is_not_offered_without_the_sre_agent(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        mention = w.mention("why is checkout crashing?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvRca2"))
        rca = await w.final_update(mention["ts"], "Root-cause analysis", timeout=60)
        assert ACTION_DIG_DEEPER not in json.dumps(rca.args["blocks"])


async def test_resume_after_an_interrupt_tells_the_agent_to_continue(tmp_path: Path) -> None:
    _require_bubblewrap()
    async with AnthropicEmulator() as emu:
        emu.responder = (
            RoutedScript()
            .when_user_says("pressed Resume", [ScriptStep.text("Picking up where I stopped.")])
            .when_user_says("count the pods", [ScriptStep.text("pod " * 400, pace=0.2)])
        )
        async with world(tmp_path, anthropic=emu) as w:
            await w.command("debug count the pods")
            root = await w.slack.wait_for("chat.postMessage", lambda c: "asked:" in str(c.args.get("text")))
            message_ts = (await w.progress_post(root.response["ts"])).response["ts"]
            await emu.wait_streaming(where=lambda r: "count the pods" in r.last_user_text)
            assert w.fox.runtime is not None
            [run] = await w.fox.runtime.runs.unfinished()
            stop = w.slack.make_block_action(
                "run_interrupt", run.run_id, user=USER, channel=CHANNEL, message_ts=message_ts
            )
            await w.post_interactive(stop)
            stopped = await w.slack.wait_for(
                "chat.update", lambda c: c.ok and "run_resume" in json.dumps(c.args.get("blocks")), timeout=30
            )

            resume = w.slack.make_block_action(
                "run_resume", run.run_id, user=USER, channel=CHANNEL, message_ts=stopped.args["ts"]
            )
            await w.post_interactive(resume)

            final = await _answer(w, "Picking")
            assert final.args["text"] == "🛠️ SRE agent: Picking up where I stopped."
            said = emu.requests[-1].last_user_text
            assert f"<@{USER}> pressed Resume" in said and "count the pods" in said
            assert "count the pods" in emu.requests[-1].text(), "the same agent session continued"
