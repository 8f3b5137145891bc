"""The Slack emulator, exercised only through the real slack_sdk / slack-bolt clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.emulators.slack import SlackEmulator

CHANNEL = "C0INCIDENT"
HUMAN = "U0HUMAN"


def section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def expect_error(call: Awaitable[Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


async def test_api_url_ends_with_api_and_auth_test_returns_identity(
    slack: SlackEmulator, client: AsyncWebClient
):
    assert slack.api_url.startswith("http://127.0.0.1:") and slack.api_url.endswith("/api/")
    resp = await client.auth_test()
    assert resp["team_id"] == slack.team_id
    assert resp["user_id"] == slack.bot_user_id
    assert resp["bot_id"].startswith("B")
    assert resp["url"].startswith("https://")
    call = slack.calls("auth.test")[0]
    assert call.token == slack.bot_token and call.ok


async def test_post_update_and_replies_return_the_thread_in_order(
    slack: SlackEmulator, client: AsyncWebClient
):
    parent = slack.add_message(CHANNEL, HUMAN, "api is down")
    posted = [
        await client.chat_postMessage(channel=CHANNEL, thread_ts=parent.ts, text=f"step {i}")
        for i in range(3)
    ]
    timestamps = [p["ts"] for p in posted]
    assert timestamps == sorted(timestamps, key=float) and len(set(timestamps)) == 3
    assert posted[0]["message"]["text"] == "step 0" and posted[0]["channel"] == CHANNEL

    updated = await client.chat_update(
        channel=CHANNEL, ts=timestamps[1], text="step 1 done", blocks=[section("ok")]
    )
    assert updated["ts"] == timestamps[1]

    replies = await client.conversations_replies(channel=CHANNEL, ts=parent.ts)
    texts = [m["text"] for m in replies["messages"]]
    assert texts == ["api is down", "step 0", "step 1 done", "step 2"]
    assert replies["messages"][2]["blocks"] == [section("ok")]
    assert [m.text for m in slack.messages(CHANNEL, thread_ts=parent.ts)] == texts


async def test_chat_update_without_blocks_keeps_them_and_empty_list_clears_them(
    slack: SlackEmulator, client: AsyncWebClient
):
    posted = await client.chat_postMessage(channel=CHANNEL, text="x", blocks=[section("progress")])
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="fallback only")
    assert slack.messages(CHANNEL)[0].blocks == [section("progress")]
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="plain", blocks=[])
    message = slack.messages(CHANNEL)[0]
    assert (message.text, message.blocks, message.edits) == ("plain", [], 2)


async def test_form_encoded_bodies_and_json_string_blocks_are_decoded(
    slack: SlackEmulator, client: AsyncWebClient
):
    blocks = [section("from a form")]
    await client.api_call(
        "chat.postMessage", data={"channel": CHANNEL, "text": "t", "blocks": json.dumps(blocks)}
    )
    call = await slack.wait_for("chat.postMessage")
    assert call.args["blocks"] == blocks
    assert slack.messages(CHANNEL)[0].blocks == blocks


async def test_update_and_delete_of_unknown_message_fail_like_slack(client: AsyncWebClient):
    assert (await expect_error(client.chat_update(channel=CHANNEL, ts="1.000001", text="x"))).response[
        "error"
    ] == "message_not_found"
    assert (await expect_error(client.chat_delete(channel=CHANNEL, ts="1.000001"))).response[
        "error"
    ] == "message_not_found"


async def test_tokens_are_checked(slack: SlackEmulator):
    base = slack.api_url
    no_token = AsyncWebClient(base_url=base)
    assert (await expect_error(no_token.auth_test())).response["error"] == "not_authed"
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=base)
    assert (await expect_error(wrong.auth_test())).response["error"] == "invalid_auth"
    app_level = AsyncWebClient(token=slack.app_token, base_url=base)
    error = await expect_error(app_level.chat_postMessage(channel=CHANNEL, text="x"))
    assert error.response["error"] == "not_allowed_token_type"
    bot = AsyncWebClient(token=slack.bot_token, base_url=base)
    error = await expect_error(bot.apps_connections_open(app_token=slack.bot_token))
    assert error.response["error"] == "not_allowed_token_type"
    opened = await bot.apps_connections_open(app_token=slack.app_token)
    assert opened["url"].startswith("ws://127.0.0.1:")


async def test_unknown_method_answers_200_unknown_method(slack: SlackEmulator, client: AsyncWebClient):
    error = await expect_error(client.api_call("chat.teleport", json={"channel": CHANNEL}))
    assert error.response.status_code == 200
    assert error.response["error"] == "unknown_method"
    assert slack.calls("chat.teleport")[0].error == "unknown_method"


async def test_rate_limit_answers_429_with_retry_after(slack: SlackEmulator, client: AsyncWebClient):
    slack.set_rate_limit("chat.update", per_second=1)
    posted = await client.chat_postMessage(channel=CHANNEL, text="a")
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="b")
    error = await expect_error(client.chat_update(channel=CHANNEL, ts=posted["ts"], text="c"))
    assert error.response.status_code == 429
    assert error.response["error"] == "ratelimited"
    assert error.response.headers["Retry-After"] == "1"
    assert [c.status for c in slack.calls("chat.update")] == [200, 429]
    assert slack.messages(CHANNEL)[0].text == "b"
    await asyncio.sleep(1.05)
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="d")
    assert slack.messages(CHANNEL)[0].text == "d"


async def test_burst_rate_limit_admits_burst_then_throttles(slack: SlackEmulator, client: AsyncWebClient):
    slack.set_rate_limit("chat.postMessage", per_second=2, burst=3)
    outcomes = []
    for i in range(5):
        try:
            await client.chat_postMessage(channel=CHANNEL, text=str(i))
            outcomes.append("ok")
        except SlackApiError as exc:
            outcomes.append(exc.response["error"])
    assert outcomes == ["ok", "ok", "ok", "ratelimited", "ratelimited"]
    assert len(slack.messages(CHANNEL)) == 3


async def test_fail_next_injects_429_and_5xx_then_recovers(slack: SlackEmulator, client: AsyncWebClient):
    slack.fail_next("chat.postMessage", status=429, retry_after=7)
    slack.fail_next("chat.postMessage", status=503, times=2)
    first = await expect_error(client.chat_postMessage(channel=CHANNEL, text="x"))
    assert (first.response.status_code, first.response.headers["Retry-After"]) == (429, "7")
    for _ in range(2):
        failed = await expect_error(client.chat_postMessage(channel=CHANNEL, text="x"))
        assert failed.response.status_code == 503
    await client.chat_postMessage(channel=CHANNEL, text="x")
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 503, 503, 200]
    assert len(slack.calls("chat.postMessage", ok=False)) == 3


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"blocks": [section("b")] * 51}, "invalid_blocks"),
        ({"blocks": [section("x" * 3001)]}, "invalid_blocks"),
        (
            {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]},
            "invalid_blocks",
        ),
        ({"blocks": [{"text": {"type": "mrkdwn", "text": "no type"}}]}, "invalid_blocks"),
        ({"blocks": ["not an object"]}, "invalid_blocks"),
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"blocks": [section("y" * 2500)] * 5}, "msg_blocks_too_long"),
        ({}, "no_text"),
    ],
)
async def test_message_validation_matches_slack_limits(
    slack: SlackEmulator, client: AsyncWebClient, kwargs: dict[str, Any], error: str
):
    failure = await expect_error(client.api_call("chat.postMessage", json={"channel": CHANNEL, **kwargs}))
    assert failure.response["error"] == error
    assert slack.messages(CHANNEL) == []


async def test_limits_are_inclusive(slack: SlackEmulator, client: AsyncWebClient):
    await client.chat_postMessage(channel=CHANNEL, text="x" * 40_000)
    await client.chat_postMessage(channel=CHANNEL, text="t", blocks=[section("s")] * 50)
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}
    await client.chat_postMessage(channel=CHANNEL, text="t", blocks=[header, section("x" * 3000)])
    assert len(slack.messages(CHANNEL)) == 3


async def test_form_body_with_malformed_blocks_json_is_invalid_blocks(client: AsyncWebClient):
    error = await expect_error(
        client.api_call("chat.postMessage", data={"channel": CHANNEL, "text": "t", "blocks": "[{oops"})
    )
    assert error.response["error"] == "invalid_blocks"


async def test_views_open_update_publish(slack: SlackEmulator, client: AsyncWebClient):
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Setup"}, "blocks": [section("hi")]}
    opened = await client.views_open(trigger_id=slack.issue_trigger_id(), view=modal)
    view_id = opened["view"]["id"]
    assert view_id.startswith("V") and opened["view"]["blocks"] == [section("hi")]
    updated = await client.views_update(view_id=view_id, view={**modal, "blocks": [section("bye")]})
    assert updated["view"]["id"] == view_id and updated["view"]["hash"] != opened["view"]["hash"]
    home = {"type": "home", "blocks": [section("home")] * 100}
    first = await client.views_publish(user_id=HUMAN, view=home)
    second = await client.views_publish(user_id=HUMAN, view=home)
    assert first["view"]["id"] == second["view"]["id"]
    assert [v.type for v in slack.views(HUMAN)] == ["home"]

    too_big = await expect_error(
        client.views_publish(user_id=HUMAN, view={"type": "home", "blocks": [section("h")] * 101})
    )
    assert too_big.response["error"] == "invalid_blocks"
    bad_trigger = await expect_error(client.views_open(trigger_id="123.456.abc", view=modal))
    assert bad_trigger.response["error"] == "invalid_trigger_id"


async def test_users_and_conversations_info(slack: SlackEmulator, client: AsyncWebClient):
    slack.add_user(HUMAN, name="Ada", is_admin=True)
    user = (await client.users_info(user=HUMAN))["user"]
    assert (user["name"], user["is_admin"], user["team_id"]) == ("Ada", True, slack.team_id)
    slack.add_channel(CHANNEL, "incidents")
    assert (await client.conversations_info(channel=CHANNEL))["channel"]["name"] == "incidents"
    assert (await expect_error(client.users_info(user="nobody"))).response["error"] == "user_not_found"


async def test_wait_for_awaits_a_future_call_and_times_out_otherwise(
    slack: SlackEmulator, client: AsyncWebClient
):
    waiter = asyncio.create_task(slack.wait_for("chat.postMessage", lambda c: c.args.get("text") == "second"))
    await client.chat_postMessage(channel=CHANNEL, text="first")
    assert not waiter.done()
    await client.chat_postMessage(channel=CHANNEL, text="second")
    call = await asyncio.wait_for(waiter, 2)
    assert call.args["text"] == "second"
    with pytest.raises(TimeoutError):
        await slack.wait_for("chat.delete", timeout=0.1)


def make_app(slack: SlackEmulator) -> AsyncApp:
    app = AsyncApp(client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url))

    @app.event("app_mention")
    async def on_mention(event: dict[str, str], say) -> None:
        await say(text="on it: " + event["text"], thread_ts=event.get("thread_ts") or event["ts"])

    @app.command("/incidentfox")
    async def on_command(ack, command: dict[str, str]) -> None:
        await ack(text="got " + command["text"])

    return app


@pytest.fixture
async def socket_handler(slack: SlackEmulator) -> AsyncIterator[AsyncSocketModeHandler]:
    handler = AsyncSocketModeHandler(make_app(slack), app_token=slack.app_token)
    await handler.connect_async()
    await slack.wait_for_connections(1)
    try:
        yield handler
    finally:
        await handler.close_async()


async def test_socket_mode_app_mention_is_acked_and_say_lands_in_thread(
    slack: SlackEmulator, socket_handler: AsyncSocketModeHandler
):
    event = slack.make_app_mention(CHANNEL, HUMAN, "why is checkout down?")
    envelope_id = await slack.send_event(event, event_id="Ev0001")
    ack = await slack.wait_for_ack(envelope_id)
    assert ack.envelope_id == envelope_id and ack.latency < 3.0
    reply = await slack.wait_for("chat.postMessage")
    assert reply.args["thread_ts"] == event["ts"]
    assert reply.args["text"] == f"on it: <@{slack.bot_user_id}> why is checkout down?"
    thread = slack.messages(CHANNEL, thread_ts=event["ts"])
    assert [m.user for m in thread] == [HUMAN, slack.bot_user_id]
    assert slack.calls("apps.connections.open")[0].token == slack.app_token


async def test_socket_mode_slash_command_ack_carries_payload(
    slack: SlackEmulator, socket_handler: AsyncSocketModeHandler
):
    envelope_id = await slack.send_envelope(
        "slash_commands", slack.make_slash_command("status", channel=CHANNEL, user=HUMAN)
    )
    ack = await slack.wait_for_ack(envelope_id)
    assert ack.payload is not None and ack.payload["text"] == "got status"


async def test_requested_disconnect_makes_the_client_reconnect(
    slack: SlackEmulator, socket_handler: AsyncSocketModeHandler
):
    await slack.request_disconnect()
    await slack.wait_for_connections(2)
    assert len(slack.calls("apps.connections.open")) == 2
    event = slack.make_app_mention(CHANNEL, HUMAN, "still there?")
    envelope_id = await slack.send_event(event)
    await slack.wait_for_ack(envelope_id)
    reply = await slack.wait_for("chat.postMessage", lambda c: "still there?" in c.args.get("text", ""))
    assert reply.ok
