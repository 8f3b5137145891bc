"""Builders for realistic inbound Slack payloads (Events API bodies, slash commands, block actions).

Pure functions: the caller passes the workspace ids. ``SlackEmulator`` wraps them with its own ids.
Shapes follow what Slack delivers over HTTP and inside Socket Mode envelopes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any


def new_event_id() -> str:
    return "Ev" + uuid.uuid4().hex[:10].upper()


def build_event_callback(
    event: dict[str, Any],
    *,
    team_id: str,
    api_app_id: str,
    bot_user_id: str,
    event_id: str | None = None,
    event_time: int | None = None,
) -> dict[str, Any]:
    """Wrap an inner event in the ``event_callback`` envelope Slack posts to the app."""
    return {
        "token": "verification-token-unused",
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex[:24],
    }


def build_message_event(
    *,
    event_type: str,
    channel: str,
    user: str,
    text: str,
    ts: str,
    team_id: str,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """An ``app_mention`` or ``message`` inner event as a human user's post."""
    event: dict[str, Any] = {
        "type": event_type,
        "user": user,
        "text": text,
        "ts": ts,
        "team": team_id,
        "channel": channel,
        "event_ts": ts,
        "client_msg_id": str(uuid.uuid4()),
        "blocks": [
            {
                "type": "rich_text",
                "block_id": uuid.uuid4().hex[:5],
                "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
            }
        ],
    }
    if event_type == "message":
        event["channel_type"] = "im" if channel.startswith("D") else "channel"
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def build_slash_command(
    *,
    command: str,
    text: str,
    channel: str,
    user: str,
    team_id: str,
    api_app_id: str,
    trigger_id: str,
    response_url: str,
    channel_name: str = "general",
    user_name: str = "user",
) -> dict[str, Any]:
    """The form fields of a slash command invocation (all values are strings, as Slack sends them)."""
    return {
        "token": "verification-token-unused",
        "team_id": team_id,
        "team_domain": "incidentfox-test",
        "channel_id": channel,
        "channel_name": channel_name,
        "user_id": user,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def build_block_actions(
    *,
    action_id: str,
    value: str,
    user: str,
    channel: str,
    message_ts: str,
    team_id: str,
    api_app_id: str,
    trigger_id: str,
    response_url: str,
    block_id: str = "actions",
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` interactive payload for a button pressed on a channel message."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "verification-token-unused",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": "incidentfox-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "general"},
        "message": message or {"type": "message", "ts": message_ts, "text": ""},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def build_view_submission(
    *,
    view: dict[str, Any],
    values: dict[str, dict[str, Any]],
    user: str,
    team_id: str,
    api_app_id: str,
    trigger_id: str,
) -> dict[str, Any]:
    """A ``view_submission`` payload for a stored modal; ``values`` is ``state.values`` as Slack sends it
    (``{block_id: {action_id: {"type": ..., "value": ...}}}``)."""
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "incidentfox-test"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "verification-token-unused",
        "trigger_id": trigger_id,
        "view": {**view, "state": {"values": values}},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def build_view_block_actions(
    *,
    action_id: str,
    value: str,
    user: str,
    view: dict[str, Any],
    team_id: str,
    api_app_id: str,
    trigger_id: str,
    block_id: str = "actions",
) -> dict[str, Any]:
    """A ``block_actions`` payload for a button pressed inside a view (the App Home or a modal)."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "verification-token-unused",
        "container": {"type": "view", "view_id": view.get("id", "")},
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": "incidentfox-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def build_app_home_opened(*, user: str, tab: str = "home") -> dict[str, Any]:
    """The inner ``app_home_opened`` event (wrap it with ``build_event_callback``)."""
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": "D" + user[1:],
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }
