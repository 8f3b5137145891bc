"""The Slack emulator's reading side, through the real slack_sdk client: ``search.messages`` for user
tokens (Slack's documented answer and refusals), ``conversations.history`` windows and cursors, thread
parents with their reply counts, and permalinks."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.emulators.slack import SlackEmulator
from incidentfox.emulators.slack.search import issue_user_token

OPS = "C0OPS"
DEV = "C0DEV"
ALICE = "U0ALICE"
BOB = "U0BOB"
DAY = datetime(2026, 1, 30, tzinfo=UTC).timestamp()


def _ts(seconds: float) -> str:
    return f"{DAY + seconds:.6f}"


def _seed(slack: SlackEmulator) -> None:
    slack.add_channel(OPS, "ops")
    slack.add_channel(DEV, "dev")
    slack.add_user(ALICE, name="alice")
    slack.add_user(BOB, name="bob")
    parent = slack.add_message(OPS, ALICE, "checkout is throwing 502s after the deploy", ts=_ts(100))
    slack.add_message(OPS, BOB, "rolling back checkout now", ts=_ts(200), thread_ts=parent.ts)
    slack.add_message(OPS, ALICE, "Checkout recovered", ts=_ts(300), thread_ts=parent.ts)
    slack.add_message(OPS, BOB, "lunch anyone?", ts=_ts(400))
    slack.add_message(DEV, ALICE, "checkout deploy 4.2 is out", ts=_ts(86400 + 50))


async def _error(call: Awaitable[Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


async def test_search_finds_words_in_messages_and_replies_with_slack_shape(slack: SlackEmulator) -> None:
    _seed(slack)
    user = AsyncWebClient(token=issue_user_token(slack.workspace, ALICE), base_url=slack.api_url)
    answer = await user.search_messages(query="checkout", sort="timestamp")
    assert answer["query"] == "checkout"
    found = answer["messages"]
    assert found["total"] == 4 and found["paging"] == {"count": 20, "total": 4, "page": 1, "pages": 1}
    assert found["pagination"]["total_count"] == 4 and found["pagination"]["last"] == 4
    texts = [m["text"] for m in found["matches"]]
    assert texts == [
        "checkout deploy 4.2 is out",
        "Checkout recovered",
        "rolling back checkout now",
        "checkout is throwing 502s after the deploy",
    ]
    reply = found["matches"][1]
    assert reply["channel"]["id"] == OPS and reply["channel"]["name"] == "ops"
    assert reply["user"] == ALICE and reply["username"] == "alice" and reply["ts"] == _ts(300)
    assert reply["permalink"].endswith(
        f"/archives/{OPS}/p{_ts(300).replace('.', '')}?thread_ts={_ts(100)}&cid={OPS}"
    )


async def test_search_modifiers_restrict_channel_author_and_days(slack: SlackEmulator) -> None:
    _seed(slack)
    user = AsyncWebClient(token=issue_user_token(slack.workspace, ALICE), base_url=slack.api_url)

    async def texts(query: str) -> list[str]:
        answer = await user.search_messages(query=query, sort="timestamp", sort_dir="asc")
        return [m["text"] for m in answer["messages"]["matches"]]

    assert await texts("checkout in:#dev") == ["checkout deploy 4.2 is out"]
    assert await texts(f"checkout in:<#{OPS}|ops> from:@bob") == ["rolling back checkout now"]
    assert await texts(f'"the deploy" from:<@{ALICE}>') == ["checkout is throwing 502s after the deploy"]
    assert await texts("checkout after:2026-01-30") == ["checkout deploy 4.2 is out"]
    assert await texts("checkout before:2026-01-31 on:2026-01-30") == [
        "checkout is throwing 502s after the deploy",
        "rolling back checkout now",
        "Checkout recovered",
    ]
    empty = await user.search_messages(query="nothing like this")
    assert empty["messages"]["total"] == 0 and empty["messages"]["matches"] == []
    paged = await user.search_messages(query="checkout", count=3, page=2, sort="timestamp")
    assert len(paged["messages"]["matches"]) == 1 and paged["messages"]["paging"]["pages"] == 2


async def test_search_refuses_bot_tokens_and_user_tokens_without_search_read(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    _seed(slack)
    bot = await _error(client.search_messages(query="checkout"))
    assert bot.response["error"] == "not_allowed_token_type"
    reader = issue_user_token(slack.workspace, BOB, scopes=("channels:history",))
    scoped = await _error(AsyncWebClient(token=reader, base_url=slack.api_url).search_messages(query="x"))
    assert scoped.response["error"] == "missing_scope" and scoped.response["needed"] == "search:read"
    assert scoped.response["provided"] == "channels:history"
    wrong = await _error(
        AsyncWebClient(token="xoxp-forged", base_url=slack.api_url).search_messages(query="x")
    )
    assert wrong.response["error"] == "invalid_auth"
    slack.fail_next("search.messages", 429, retry_after=7)
    user = AsyncWebClient(token=issue_user_token(slack.workspace, ALICE), base_url=slack.api_url)
    limited = await _error(user.search_messages(query="checkout"))
    assert limited.response.status_code == 429 and limited.response.headers["Retry-After"] == "7"


async def test_a_user_token_is_itself_in_auth_test_with_its_scopes(slack: SlackEmulator) -> None:
    slack.add_user(ALICE, name="alice")
    user = AsyncWebClient(token=issue_user_token(slack.workspace, ALICE), base_url=slack.api_url)
    me = await user.auth_test()
    assert me["user_id"] == ALICE and me["user"] == "alice" and "bot_id" not in me
    assert "search:read" in me.headers["X-OAuth-Scopes"].split(",")
    connect = await _error(user.api_call("apps.connections.open"))
    assert connect.response["error"] == "not_allowed_token_type"


async def test_history_windows_and_cursors_and_thread_parents(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    _seed(slack)
    window = await client.conversations_history(channel=OPS, oldest=_ts(50), latest=_ts(400))
    assert [m["text"] for m in window["messages"]] == ["checkout is throwing 502s after the deploy"]
    parent = window["messages"][0]
    assert parent["reply_count"] == 2 and parent["reply_users"] == [BOB, ALICE]
    assert parent["latest_reply"] == _ts(300) and parent["thread_ts"] == _ts(100)
    inclusive = await client.conversations_history(
        channel=OPS, oldest=_ts(100), latest=_ts(400), inclusive=True
    )
    assert len(inclusive["messages"]) == 2
    for i in range(5):
        slack.add_message(DEV, BOB, f"note {i}", ts=_ts(1000 + i))
    first = await client.conversations_history(channel=DEV, limit=4)
    assert [m["text"] for m in first["messages"]] == [
        "checkout deploy 4.2 is out",
        "note 4",
        "note 3",
        "note 2",
    ]
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    rest = await client.conversations_history(channel=DEV, limit=4, cursor=cursor)
    assert [m["text"] for m in rest["messages"]] == ["note 1", "note 0"] and rest["has_more"] is False
    bad = await _error(client.conversations_history(channel=DEV, cursor="not-a-cursor"))
    assert bad.response["error"] == "invalid_cursor"


async def test_replies_page_with_cursors_and_the_bot_must_be_in_the_channel(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    _seed(slack)
    first = await client.conversations_replies(channel=OPS, ts=_ts(100), limit=2)
    assert [m["ts"] for m in first["messages"]] == [_ts(100), _ts(200)] and first["has_more"] is True
    rest = await client.conversations_replies(
        channel=OPS, ts=_ts(100), limit=2, cursor=first["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in rest["messages"]] == ["Checkout recovered"]
    slack.add_channel("C0SECRET", "secret", is_private=False)
    slack.workspace.channels["C0SECRET"]["is_member"] = False
    outside = await _error(client.conversations_history(channel="C0SECRET"))
    assert outside.response["error"] == "not_in_channel"
    link = await client.chat_getPermalink(channel=OPS, message_ts=_ts(200))
    assert link["permalink"].endswith(f"p{_ts(200).replace('.', '')}?thread_ts={_ts(100)}&cid={OPS}")
