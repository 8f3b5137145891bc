"""SlackProgressUpdater against the Slack emulator over real HTTP: coalescing, 429, 5xx, fallback."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.slack_updater import SlackProgressUpdater
from incidentfox.emulators.slack import RecordedCall, SlackEmulator

CHANNEL = "C0INCIDENT"
INTERVAL = 0.2


@pytest.fixture
async def message_ts(client: AsyncWebClient) -> str:
    posted = await client.chat_postMessage(channel=CHANNEL, text="Investigating…")
    return str(posted["ts"])


def progress(step: int) -> list[dict[str, object]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": f"step {step}"}}]


def make_updater(client: AsyncWebClient, ts: str, **options: object) -> SlackProgressUpdater:
    return SlackProgressUpdater(client, CHANNEL, ts, min_interval=INTERVAL, **options)  # type: ignore[arg-type]


def gaps(calls: list[RecordedCall]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(calls)]


async def test_rapid_updates_are_coalesced_to_one_edit_per_interval(
    slack: SlackEmulator, client: AsyncWebClient, message_ts: str
):
    slack.set_rate_limit("chat.update", per_second=1 / INTERVAL)
    updater = make_updater(client, message_ts)
    started = time.monotonic()
    for step in range(20):
        before = time.monotonic()
        await updater.update(progress(step), f"step {step}")
        assert time.monotonic() - before < 0.05, "update() must not wait for Slack"
        await asyncio.sleep(0.03)
    await updater.finish(progress(99), "done")
    elapsed = time.monotonic() - started

    calls = slack.calls("chat.update")
    assert all(c.ok for c in calls), [c.error for c in calls]
    assert 2 <= len(calls) <= elapsed / INTERVAL + 1
    assert len(calls) < 21
    assert min(gaps(calls)) >= INTERVAL
    assert calls[-1].args["text"] == "done" and calls[-1].args["blocks"] == progress(99)
    assert calls[0].args["text"] == "step 0"
    message = slack.messages(CHANNEL)[0]
    assert (message.text, message.blocks) == ("done", progress(99))
    assert updater.final_delivered and not updater.used_fallback
    await updater.close()


async def test_only_the_latest_intermediate_state_is_sent(
    slack: SlackEmulator, client: AsyncWebClient, message_ts: str
):
    updater = make_updater(client, message_ts)
    await updater.update(progress(0), "step 0")
    await slack.wait_for("chat.update")
    for step in range(1, 6):
        await updater.update(progress(step), f"step {step}")
    second = await slack.wait_for("chat.update", lambda c: c.args["text"] != "step 0", timeout=2)
    assert second.args["text"] == "step 5"
    assert [c.args["text"] for c in slack.calls("chat.update")] == ["step 0", "step 5"]
    await updater.close()


async def test_final_update_after_429_waits_retry_after_and_lands(
    slack: SlackEmulator, client: AsyncWebClient, message_ts: str
):
    slept: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(seconds)

    slack.fail_next("chat.update", status=429, retry_after=1)
    updater = make_updater(client, message_ts, sleep=recording_sleep)
    await updater.finish(progress(1), "final answer")

    throttled, delivered = slack.calls("chat.update")
    assert (throttled.status, throttled.error) == (429, "ratelimited")
    assert delivered.ok and delivered.args["text"] == "final answer"
    assert delivered.at - throttled.at >= 1.0
    assert max(slept) > INTERVAL
    assert slack.messages(CHANNEL)[0].text == "final answer"
    assert updater.final_delivered


async def test_429_on_intermediate_update_delays_and_final_still_lands(
    slack: SlackEmulator, client: AsyncWebClient, message_ts: str
):
    slack.fail_next("chat.update", status=429, retry_after=1)
    updater = make_updater(client, message_ts)
    await updater.update(progress(0), "step 0")
    throttled = await slack.wait_for("chat.update")
    await updater.update(progress(1), "step 1")
    await updater.finish(progress(2), "final")
    calls = slack.calls("chat.update")
    assert calls[0] is throttled and calls[0].status == 429
    assert calls[1].at - throttled.at >= 1.0
    assert calls[-1].ok and calls[-1].args["text"] == "final"
    assert slack.messages(CHANNEL)[0].text == "final"


async def test_final_update_is_retried_after_503(
    slack: SlackEmulator, client: AsyncWebClient, message_ts: str
):
    slack.fail_next("chat.update", status=503, times=2)
    updater = make_updater(client, message_ts, backoff_base=0.05)
    await updater.finish(progress(1), "final answer")
    assert [c.status for c in slack.calls("chat.update")] == [503, 503, 200]
    assert min(gaps(slack.calls("chat.update"))) >= INTERVAL
    assert slack.messages(CHANNEL)[0].text == "final answer"
    assert updater.final_delivered


async def test_invalid_blocks_fall_back_to_plain_text(
    slack: SlackEmulator, client: AsyncWebClient, message_ts: str
):
    updater = make_updater(client, message_ts)
    await updater.update(progress(0), "step 0")
    await slack.wait_for("chat.update")
    too_many = progress(1) * 51
    await updater.finish(too_many, "Root cause: OOMKilled in api-7d9")

    rejected, fallback = slack.calls("chat.update")[1:]
    assert rejected.error == "invalid_blocks"
    assert fallback.ok and fallback.args["blocks"] == []
    message = slack.messages(CHANNEL)[0]
    assert (message.text, message.blocks) == ("Root cause: OOMKilled in api-7d9", [])
    assert updater.final_delivered and updater.used_fallback


async def test_too_long_text_is_truncated_in_the_fallback(
    slack: SlackEmulator, client: AsyncWebClient, message_ts: str
):
    updater = make_updater(client, message_ts)
    await updater.finish(progress(1), "x" * 45_000)
    rejected, fallback = slack.calls("chat.update")
    assert rejected.error == "msg_too_long"
    assert fallback.ok and len(fallback.args["text"]) < 40_000


async def test_permanent_error_is_logged_not_raised(
    slack: SlackEmulator, client: AsyncWebClient, caplog: pytest.LogCaptureFixture
):
    updater = make_updater(client, "1700000000.000001")
    with caplog.at_level("ERROR", logger="incidentfox.agents.slack_updater"):
        await updater.finish(progress(1), "final")
    assert [c.error for c in slack.calls("chat.update")] == ["message_not_found"]
    assert not updater.final_delivered
    assert "message_not_found" in caplog.text and slack.bot_token not in caplog.text


async def test_gives_up_within_the_final_budget(
    slack: SlackEmulator, client: AsyncWebClient, message_ts: str
):
    slack.fail_next("chat.update", status=503, times=100)
    updater = make_updater(client, message_ts, backoff_base=0.05, max_final_wait=0.5)
    started = time.monotonic()
    await updater.finish(progress(1), "final")
    assert time.monotonic() - started < 1.5
    assert not updater.final_delivered
    assert 2 <= len(slack.calls("chat.update")) < 10


async def test_close_stops_pending_updates(slack: SlackEmulator, client: AsyncWebClient, message_ts: str):
    updater = make_updater(client, message_ts)
    await updater.update(progress(0), "step 0")
    await slack.wait_for("chat.update")
    await updater.update(progress(1), "step 1")
    await updater.close()
    await asyncio.sleep(INTERVAL * 2)
    await updater.update(progress(2), "step 2")
    await updater.finish(progress(3), "final")
    assert [c.args["text"] for c in slack.calls("chat.update")] == ["step 0"]
