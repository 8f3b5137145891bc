"""``/incidentfox`` end to end through the Slack emulator: help, investigate, status, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from incidentfox.agents.runs.models import Run
from incidentfox.emulators.slack.store import RecordedCall
from incidentfox.handlers.slack.commands import ASK_WHAT, NOT_IN_CHANNEL
from tests.slack_world import ADMIN, CHANNEL, USER, World, world


def _said(call: RecordedCall) -> str:
    return json.dumps(call.args)


async def _response(w: World, needle: str, timeout: float = 10.0) -> RecordedCall:
    return await w.slack.wait_for("response_url", lambda c: needle in _said(c), timeout=timeout)


async def test_empty_and_unknown_subcommands_answer_help_in_the_ack(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        for text in ("", "help", "frobnicate the cluster"):
            status, body = await w.command(text)
            assert status == 200
            answer = json.loads(body)
            assert answer["response_type"] == "ephemeral"
            said = json.dumps(answer["blocks"])
            for usage in ("investigate", "setup", "status", "config", "help"):
                assert f"/incidentfox {usage}" in said
            assert ("I don't know `frobnicate the cluster`" in said) is (text == "frobnicate the cluster")
        assert not w.slack.calls("chat.postMessage")


async def test_investigate_posts_a_visible_root_and_runs_in_its_thread(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        status, body = await w.command("investigate why is checkout crashlooping?")
        assert (status, body) == (200, "")
        root = await w.slack.wait_for("chat.postMessage", lambda c: "asked:" in str(c.args.get("text")))
        assert root.args["text"] == f"<@{USER}> asked: why is checkout crashlooping?"
        assert root.args.get("thread_ts") is None
        final = await w.final_update(root.response["ts"], "Root cause")
        assert "DB_PASSWORD" in json.dumps(final.args["blocks"]) or "checkout" in json.dumps(final.args)
        runs = await w.wait_runs_finished(1)
        assert [(r.kind, r.requester, r.thread_ts) for r in runs] == [("command", USER, root.response["ts"])]


async def test_a_retried_command_delivery_runs_once(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        fields = w.slack.make_slash_command("investigate is checkout down?", channel=CHANNEL, user=USER)
        await w.post_command(fields)
        await w.post_command(fields)
        await w.wait_runs_finished(1)
        roots = [c for c in w.slack.calls("chat.postMessage") if "asked:" in str(c.args.get("text"))]
        assert len(roots) == 1
        assert len(await w.wait_runs_finished(1)) == 1


async def test_investigate_without_a_question_or_in_an_unclaimed_channel_explains(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("investigate")
        assert (await _response(w, "What should I look into")).args["text"] == ASK_WHAT
        await w.command("investigate why?", channel="C0NOBODY")
        hint = await _response(w, "isn't connected to an IncidentFox team")
        assert hint.args["response_type"] == "ephemeral"
        assert "/incidentfox setup" in hint.args["text"]
        assert not [c for c in w.slack.calls("chat.postMessage") if "asked:" in str(c.args.get("text"))]


async def test_investigate_where_the_bot_is_not_a_member_says_how_to_invite_it(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.slack.fail_next("chat.postMessage", status=200, error="not_in_channel")
        await w.command("investigate why is checkout slow?")
        assert (await _response(w, "invite me")).args["text"] == NOT_IN_CHANNEL
        assert w.fox.runtime is not None
        async with w.fox.runtime.sessions() as session:
            assert (await session.scalars(select(Run))).all() == []


async def test_status_lists_running_and_finished_runs_with_permalinks(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.post_event(w.slack.make_event_callback(w.mention("why is checkout crashlooping?")))
        await w.wait_runs_finished(1)
        await w.command("status")
        answer = await _response(w, "Investigations of team checkout")
        said = json.dumps(answer.args["blocks"])
        assert answer.args["response_type"] == "ephemeral"
        assert "Nothing running." in said
        assert "why is checkout crashlooping?" in said
        assert "succeeded" in said
        assert "https://" in said and "/archives/" in said


async def test_commands_over_socket_mode(tmp_path: Path) -> None:
    async with world(tmp_path, socket_mode=True) as w:
        await w.slack.wait_for_connections()
        help_envelope = await w.slack.send_envelope(
            "slash_commands", w.slack.make_slash_command("", channel=CHANNEL, user=USER)
        )
        ack = await w.slack.wait_for_ack(help_envelope)
        assert "/incidentfox investigate" in json.dumps(ack.payload)
        fields = w.slack.make_slash_command(
            "investigate why is checkout crashlooping?", channel=CHANNEL, user=USER
        )
        await w.slack.send_envelope("slash_commands", fields)
        root = await w.slack.wait_for("chat.postMessage", lambda c: "asked:" in str(c.args.get("text")))
        await w.final_update(root.response["ts"], "Root cause")


async def test_config_shows_sources_redacted_secrets_and_health(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert w.fox.runtime is not None
        await w.fox.runtime.config.write_config(
            ADMIN, "acme", "acme", {"model": {"name": "gpt-4.1"}}, operation="patch"
        )
        await w.command("config")
        answer = await _response(w, "checkout")
        said = json.dumps(answer.args, ensure_ascii=False)
        assert answer.args["response_type"] == "ephemeral"
        assert w.k8s.token not in said
        assert "••••" in said
        assert "gpt-4.1" in said and "acme" in said
        assert "kubernetes" in said.lower()
        assert "_from org acme_" in said and "✅ *kubernetes*: ok" in said
