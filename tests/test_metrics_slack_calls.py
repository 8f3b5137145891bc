"""Slack Web API calls counted by method and outcome, 429s included: a real ``AsyncWebClient`` from
``slack_client`` against the Slack emulator, which answers 429 (retried or not) and ``ok: false``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.bot.slack_app import slack_client
from incidentfox.emulators.slack import SlackEmulator
from incidentfox.observability.slack_calls import slack_method
from tests.conftest import make_settings
from tests.metric_samples import sample

CHANNEL = "C0INCIDENT"
CALLS = "incidentfox_slack_api_calls_total"
THROTTLED = "incidentfox_slack_api_ratelimited_total"


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator() as emulator:
        yield emulator


def _client(slack: SlackEmulator, tmp_path: Path, *, retry_throttled: bool) -> AsyncWebClient:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/unused.db",
        tmp_path,
        slack_bot_token=slack.bot_token,
        slack_api_url=slack.api_url,
    )
    client = slack_client(settings, retry_throttled=retry_throttled)
    assert client is not None
    return client


def _calls(method: str, outcome: str) -> float:
    return sample(CALLS, method=method, outcome=outcome)


async def test_a_429_the_client_retries_is_still_counted_and_the_retry_succeeds(
    slack: SlackEmulator, tmp_path: Path
) -> None:
    client = _client(slack, tmp_path, retry_throttled=True)
    slack.fail_next("chat.postMessage", status=429, retry_after=0)
    throttled, limited, ok = (
        sample(THROTTLED, method="chat.postMessage"),
        _calls("chat.postMessage", "ratelimited"),
        _calls("chat.postMessage", "ok"),
    )

    response = await client.chat_postMessage(channel=CHANNEL, text="disk is fine")

    assert response["ok"] is True
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]
    assert sample(THROTTLED, method="chat.postMessage") - throttled == 1
    assert _calls("chat.postMessage", "ratelimited") - limited == 1
    assert _calls("chat.postMessage", "ok") - ok == 1


async def test_without_retries_a_429_and_an_ok_false_answer_are_counted_by_outcome(
    slack: SlackEmulator, tmp_path: Path
) -> None:
    client = _client(slack, tmp_path, retry_throttled=False)
    slack.fail_next("chat.update", status=429, retry_after=1)
    slack.fail_next("chat.postMessage", status=200, error="invalid_blocks")
    slack.fail_next("chat.postEphemeral", status=503)
    throttled = sample(THROTTLED, method="chat.update")
    before = {
        ("chat.update", "ratelimited"): _calls("chat.update", "ratelimited"),
        ("chat.postMessage", "error"): _calls("chat.postMessage", "error"),
        ("chat.postEphemeral", "server_error"): _calls("chat.postEphemeral", "server_error"),
        ("auth.test", "ok"): _calls("auth.test", "ok"),
    }

    with pytest.raises(SlackApiError):
        await client.chat_update(channel=CHANNEL, ts="1700000000.000100", text="x")
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel=CHANNEL, text="x", blocks=[])
    with pytest.raises(SlackApiError):
        await client.chat_postEphemeral(channel=CHANNEL, user="U0HUMAN", text="x")
    await client.auth_test()

    assert sample(THROTTLED, method="chat.update") - throttled == 1
    assert {key: _calls(*key) - value for key, value in before.items()} == {
        ("chat.update", "ratelimited"): 1,
        ("chat.postMessage", "error"): 1,
        ("chat.postEphemeral", "server_error"): 1,
        ("auth.test", "ok"): 1,
    }


async def test_an_unreachable_slack_is_counted_as_unreachable(tmp_path: Path) -> None:
    async with SlackEmulator() as gone:
        client = _client(gone, tmp_path, retry_throttled=False)
    before = _calls("auth.test", "unreachable")

    with pytest.raises(aiohttp.ClientConnectionError):
        await client.auth_test()

    assert _calls("auth.test", "unreachable") - before == 2, "the connection-error retry counts too"


def test_only_web_api_method_names_become_labels() -> None:
    assert slack_method("http://127.0.0.1:5555/api/chat.postMessage") == "chat.postMessage"
    assert (
        slack_method("https://slack.com/api/admin.conversations.setTeams") == "admin.conversations.setTeams"
    )
    assert slack_method("https://files.slack.com/upload/v1/CwABAAAAXAoAAVnXn3Vb") == "other"
    assert slack_method("https://slack.com/api/") == "other"
