"""What the local workspace needs of the Slack emulator: pins, response_url answers shown where Slack
shows them, modal submissions answered as Slack applies them, a live call feed and a bounded call log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.emulators.slack import RecordedCall, SlackEmulator

CHANNEL = "C0INCIDENT"
HUMAN = "U0HUMAN"


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(max_recorded_calls=5) as emulator:
        yield emulator


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def test_pins_add_list_and_remove_like_slack(slack: SlackEmulator, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="runbook")
    await client.pins_add(channel=CHANNEL, timestamp=posted["ts"])
    with pytest.raises(SlackApiError) as again:
        await client.pins_add(channel=CHANNEL, timestamp=posted["ts"])
    assert again.value.response["error"] == "already_pinned"
    listed = await client.pins_list(channel=CHANNEL)
    assert [item["message"]["ts"] for item in listed["items"]] == [posted["ts"]]
    await client.pins_remove(channel=CHANNEL, timestamp=posted["ts"])
    assert slack.pinned(CHANNEL) == []
    with pytest.raises(SlackApiError) as missing:
        await client.pins_add(channel=CHANNEL, timestamp="1.000001")
    assert missing.value.response["error"] == "message_not_found"


async def test_response_url_answers_show_to_the_person_in_the_channel_or_over_the_original(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    original = await client.chat_postMessage(channel=CHANNEL, text="Approve restart?")
    async with aiohttp.ClientSession() as http:
        private = slack.response_url(channel=CHANNEL, user=HUMAN)
        await http.post(private, json={"text": "only you see this"})
        public = slack.response_url(channel=CHANNEL, user=HUMAN)
        await http.post(public, json={"text": "everyone sees this", "response_type": "in_channel"})
        replace = slack.response_url(channel=CHANNEL, user=HUMAN, message_ts=original["ts"])
        await http.post(replace, json={"text": "Approved by you", "replace_original": True})
        unknown = slack.response_url()
        await http.post(unknown, json={"text": "recorded, shown nowhere"})
    assert [e.text for e in slack.ephemerals(CHANNEL)] == ["only you see this"]
    assert slack.ephemerals(CHANNEL)[0].user == HUMAN
    texts = [m.text for m in slack.messages(CHANNEL)]
    assert texts == ["Approved by you", "everyone sees this"]
    shown = [c.response.get("shown") for c in slack.calls("response_url")]
    assert shown[-1] is None and "replaced" in shown


async def test_view_submission_answers_keep_update_push_or_close_the_modal(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Setup"}, "blocks": []}
    opened = await client.views_open(trigger_id=slack.issue_trigger_id(), view=modal)
    view_id = opened["view"]["id"]
    kept = slack.answer_view_submission(view_id, {"response_action": "errors", "errors": {"a": "no"}})
    assert kept is not None and kept.id == view_id
    updated_view = {**modal, "title": {"type": "plain_text", "text": "Done"}}
    updated = slack.answer_view_submission(view_id, {"response_action": "update", "view": updated_view})
    assert updated is not None and updated.view["title"]["text"] == "Done"
    pushed = slack.answer_view_submission(view_id, {"response_action": "push", "view": modal})
    assert pushed is not None and pushed.previous_view_id == view_id and pushed.root_view_id == view_id
    assert slack.answer_view_submission(pushed.id, None) is None
    assert pushed.id not in slack.workspace.views
    slack.close_view(view_id)
    with pytest.raises(SlackApiError):
        await client.views_update(view_id=view_id, view=modal)


async def test_subscribers_see_every_call_and_the_log_keeps_only_the_newest(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    seen: list[RecordedCall] = []
    unsubscribe = slack.subscribe(seen.append)
    for n in range(8):
        await client.chat_postMessage(channel=CHANNEL, text=f"message {n}")
    unsubscribe()
    await client.chat_postMessage(channel=CHANNEL, text="after")
    assert [c.args["text"] for c in seen] == [f"message {n}" for n in range(8)]
    assert [c.args["text"] for c in slack.calls("chat.postMessage")] == [
        "message 4",
        "message 5",
        "message 6",
        "message 7",
        "after",
    ]
    assert len(slack.messages(CHANNEL)) == 9, "the cap bounds the call log, not the workspace"


async def test_socket_mode_keeps_only_the_newest_envelopes_and_acks_when_bounded(
    slack: SlackEmulator,
) -> None:
    app = AsyncApp(client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url))

    @app.event("app_mention")
    async def on_mention() -> None:
        return None

    handler = AsyncSocketModeHandler(app, app_token=slack.app_token)
    await handler.connect_async()
    try:
        await slack.wait_for_connections(1)
        sent = []
        for n in range(8):
            envelope_id = await slack.send_event(slack.make_app_mention(CHANNEL, HUMAN, f"q{n}"))
            await slack.wait_for_ack(envelope_id)
            sent.append(envelope_id)
    finally:
        await handler.close_async()
    assert [e["envelope_id"] for e in slack.envelopes] == sent[-5:]
    assert [a.envelope_id for a in slack.acks] == sent[-5:]
