"""Slack adapter: turns an Events API body (an @mention or a DM) into a ``Trigger``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from incidentfox.handlers.trigger import RoutingKey, ThreadRef, Trigger

_USER_MENTION = re.compile(r"<@[UWB][A-Z0-9]+(?:\|[^>]*)?>")


def question_text(text: str, bot_user_id: str | None = None) -> str:
    """The user's words without the bot's mention (or any leading mentions) and extra whitespace."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = re.sub(rf"^(?:\s*{_USER_MENTION.pattern})+", " ", text)
    return " ".join(text.split())


def trigger_from_event(
    body: Mapping[str, Any], *, bot_user_id: str | None = None, kind: str | None = None
) -> Trigger:
    """A trigger for an ``app_mention``, a direct message or (``kind="thread_reply"``) a reply in a
    thread that listens; replies go to the event's thread."""
    event: Mapping[str, Any] = body["event"]
    channel = str(event["channel"])
    ts = str(event["ts"])
    is_dm = event.get("type") == "message" and event.get("channel_type") == "im"
    return Trigger(
        source="slack",
        kind=kind or ("dm" if is_dm else "mention"),
        routing_key=RoutingKey(slack_channel_id=channel),
        text=question_text(str(event.get("text", "")), bot_user_id),
        thread_ref=ThreadRef(
            channel_id=channel,
            thread_ts=str(event.get("thread_ts") or ts),
            workspace_id=str(body.get("team_id", "")),
        ),
        requester=str(event.get("user", "")),
        delivery_id=f"slack:{body.get('event_id') or f'{channel}:{ts}'}",
        payload={"event_ts": ts, "team_id": body.get("team_id")},
    )


def is_human_direct_message(event: Mapping[str, Any]) -> bool:
    """A DM typed by a person (not an edit, a join, or the bot's own message)."""
    return (
        event.get("channel_type") == "im"
        and event.get("subtype") is None
        and not event.get("bot_id")
        and bool(event.get("user"))
    )


def is_human_thread_reply(event: Mapping[str, Any], bot_user_id: str | None) -> bool:
    """A person's reply in a channel thread that does not mention the bot (a mention arrives as its
    own ``app_mention`` event, and is answered from there)."""
    thread_ts = event.get("thread_ts")
    text = str(event.get("text") or "")
    return (
        event.get("channel_type") != "im"
        and event.get("subtype") in (None, "thread_broadcast")
        and not event.get("bot_id")
        and bool(event.get("user"))
        and bool(thread_ts)
        and thread_ts != event.get("ts")
        and not (bot_user_id and f"<@{bot_user_id}" in text)
    )
