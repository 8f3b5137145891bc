"""``/incidentfox debug <task>`` end to end: the command posts a visible root message and the SRE agent
(the real bundled CLI in a bubblewrap sandbox, through the model proxy, against the Anthropic
emulator) answers in its thread through the one pipeline; without an Anthropic key it says it is off."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from incidentfox.agents.events import event_from_dict
from incidentfox.blocks.command_replies import SRE_AGENT_OFF
from incidentfox.blocks.session import render_session_view
from incidentfox.emulators.anthropic_api import AnthropicEmulator, RoutedScript, ScriptStep
from incidentfox.emulators.slack.store import RecordedCall
from incidentfox.handlers.slack.commands import ASK_TASK
from incidentfox.sandboxes.store import SandboxStore
from tests.slack_world import CHANNEL, USER, world
from tests.test_sandbox_agent_cli import _require_bubblewrap

COMMAND = "echo build-log: module checkout-api not found"
ANSWER = "The build fails because the module checkout-api is missing."


def _said(call: RecordedCall) -> str:
    return json.dumps(call.args)


async def test_debug_runs_the_sre_agent_in_the_thread(tmp_path: Path) -> None:
    _require_bubblewrap()
    async with AnthropicEmulator() as emu:
        emu.responder = (
            RoutedScript()
            .when_tool_result([ScriptStep.delay(1.0), ScriptStep.text(ANSWER)])
            .when_user_says(
                "why does the build fail?",
                [ScriptStep.tool_use("Bash", {"command": COMMAND}, text="Reading the build log.")],
            )
        )
        async with world(tmp_path, anthropic=emu) as w:
            await w.command("debug")
            await w.slack.wait_for("response_url", lambda c: ASK_TASK in _said(c), timeout=10)

            status, body = await w.command("debug why does the build fail?")

            assert (status, body) == (200, "")
            root = await w.slack.wait_for("chat.postMessage", lambda c: "asked:" in str(c.args.get("text")))
            assert root.args["text"] == f"<@{USER}> asked: why does the build fail?"
            final = await w.final_update(root.response["ts"], "SRE agent", timeout=120)
            progress = await w.progress_post(root.response["ts"])
            updates = [
                c
                for c in w.slack.calls("chat.update")
                if c.ok and c.args.get("ts") == progress.response["ts"]
            ]
            assert any("echo build-log" in _said(c) for c in updates[:-1]), "the tool use was shown live"
            assert final.args["text"] == f"🛠️ SRE agent: {ANSWER}"
            assert [b["type"] for b in final.args["blocks"]] == ["header", "section", "actions"]
            assert final.args["blocks"][1]["text"]["text"] == ANSWER
            assert "Root cause" not in _said(final)
            runs = await w.wait_runs_finished(1, timeout=30)
            assert [(r.kind, r.status, r.thread_ts) for r in runs] == [
                ("debug", "succeeded", root.response["ts"])
            ]
            assert w.fox.runtime is not None
            row = await SandboxStore(w.fox.runtime.sessions).for_thread(runs[0].thread_key or "")
            assert row is not None and row.status == "active" and row.turns == 1
            tools = [e for e in runs[0].events if e.get("kind") == "tool_start"]
            assert tools and tools[0]["args"]["command"] == COMMAND
            assert runs[0].events[-1] == {"kind": "answer", "text": ANSWER, "at": runs[0].events[-1]["at"]}
            session_view = render_session_view(
                [event_from_dict(e) for e in runs[0].events], run_id=runs[0].run_id, title="t"
            )
            assert "✅ Investigation complete" in json.dumps(session_view, ensure_ascii=False)
            assert ANSWER in json.dumps(session_view["blocks"][-1])


async def test_debug_without_an_anthropic_key_says_the_agent_is_off(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        status, body = await w.command("debug why does the build fail?")

        assert (status, body) == (200, "")
        answer = await w.slack.wait_for("response_url", lambda c: "SRE agent is off" in _said(c), timeout=10)
        assert answer.args["text"] == SRE_AGENT_OFF and answer.args["response_type"] == "ephemeral"
        assert w.fox.slack is not None and w.fox.slack.commands is not None
        await w.fox.slack.commands.drain()
        assert not w.slack.calls("chat.postMessage")
        assert w.fox.runtime is not None
        assert await w.fox.runtime.runs.recent_for_team("acme", "checkout") == []


async def test_interrupt_reaches_the_agent_and_a_thread_reply_continues_it(tmp_path: Path) -> None:
    _require_bubblewrap()
    async with AnthropicEmulator() as emu:
        emu.responder = (
            RoutedScript()
            .when_user_says("tell a long story", [ScriptStep.text("word " * 400, pace=0.2)])
            .when_user_says("go on", [ScriptStep.text("Continuing the story.")])
        )
        async with world(tmp_path, anthropic=emu) as w:
            await w.command("debug tell a long story")
            root = await w.slack.wait_for("chat.postMessage", lambda c: "asked:" in str(c.args.get("text")))
            thread_ts = root.response["ts"]
            message_ts = (await w.progress_post(thread_ts)).response["ts"]
            await emu.wait_streaming(where=lambda r: "tell a long story" in r.last_user_text)
            assert w.fox.runtime is not None
            [run] = await w.fox.runtime.runs.unfinished()

            press = w.slack.make_block_action(
                "run_interrupt", run.run_id, user=USER, channel=CHANNEL, message_ts=message_ts
            )
            await w.post_interactive(press)

            await w.slack.wait_for(
                "chat.update", lambda c: c.ok and "run_resume" in json.dumps(c.args.get("blocks")), timeout=30
            )
            store = SandboxStore(w.fox.runtime.sessions)
            row = await store.for_thread(run.thread_key or "")
            assert row is not None and row.status == "active", "the session and its files survive"
            turns = await store.turns(row.session_id)
            assert any(f"interrupted by {USER}" in t.text for t in turns), "the CLI was interrupted"
            stopped = await w.fox.runtime.runs.get(run.run_id)
            for _ in range(200):
                if stopped is not None and stopped.status == "interrupted":
                    break
                await asyncio.sleep(0.05)
                stopped = await w.fox.runtime.runs.get(run.run_id)
            assert stopped is not None and stopped.status == "interrupted"
            assert [e["kind"] for e in stopped.events].count("interrupted") == 1

            reply = w.mention("go on", thread_ts=thread_ts)
            await w.post_event(w.slack.make_event_callback(reply, event_id="EvDebug2"))
            final = await w.slack.wait_for(
                "chat.update", lambda c: c.ok and "SRE agent" in str(c.args.get("text")), timeout=60
            )
            assert final.args["text"] == "🛠️ SRE agent: Continuing the story."
            assert "tell a long story" in emu.requests[-1].text(), "the same agent session continued"
