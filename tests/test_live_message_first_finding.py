"""The live message spends its first edit on the first finding: a step that arrives a moment before it
does not take the one edit a second the message is allowed (Slack emulator, real HTTP)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents import live_message
from incidentfox.agents.events import FirstFinding, Started, SubagentStart
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.agents.live_message import LiveMessage
from incidentfox.agents.rca import RootCauseAnalysis
from incidentfox.agents.slack_updater import SlackProgressUpdater
from incidentfox.emulators.slack import SlackEmulator

CHANNEL = "C0INCIDENT"
TITLE = "why is checkout crashlooping?"


async def _live(client: AsyncWebClient) -> LiveMessage:
    posted = await client.chat_postMessage(channel=CHANNEL, text="Investigating…")
    updater = SlackProgressUpdater(client, CHANNEL, str(posted["ts"]), min_interval=1.0)
    return LiveMessage(updater, "run_hold", TITLE, ts=str(posted["ts"]))


def _first() -> FirstFinding:
    return FirstFinding(
        resource="pod prod/checkout-7d9-x2",
        symptom="CrashLoopBackOff",
        evidence="panic: nil map",
        source="logs",
    )


async def test_the_first_edit_is_the_first_finding_not_the_step_before_it(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    live = await _live(client)
    opened = time.monotonic()
    live.emit(Started(summary=TITLE))
    live.emit(SubagentStart(agent="kubernetes", task="deterministic checks"))
    await asyncio.sleep(0.1)
    live.emit(_first())
    edit = await slack.wait_for("chat.update", lambda c: c.ok, timeout=3)
    assert "First finding" in json.dumps(edit.args["blocks"]), "the first edit already shows it"
    assert edit.at - opened < 0.5, "sent as soon as it arrived, not a second later"
    await live.finish(InvestigationOutcome(rca=RootCauseAnalysis(summary="done", root_cause="r")))
    assert "First finding" not in json.dumps(slack.calls("chat.update")[-1].args["blocks"])


async def test_without_a_first_finding_the_steps_show_after_the_hold(
    slack: SlackEmulator, client: AsyncWebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = 0.3
    monkeypatch.setattr(live_message, "FIRST_EDIT_HOLD_S", hold)
    live = await _live(client)
    opened = time.monotonic()
    live.emit(Started(summary=TITLE))
    live.emit(SubagentStart(agent="logs", task="read the logs"))
    edit = await slack.wait_for("chat.update", lambda c: c.ok, timeout=3)
    assert hold - 0.05 <= edit.at - opened < hold + 0.5
    assert "read the logs" in json.dumps(edit.args["blocks"])
    await live.abandon()


async def test_a_run_that_only_started_makes_no_redundant_edit(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    live = await _live(client)
    live.emit(Started(summary=TITLE))
    await asyncio.sleep(live_message.FIRST_EDIT_HOLD_S + 0.3)
    assert slack.calls("chat.update") == []
    await live.abandon()
