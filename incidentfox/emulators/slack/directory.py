"""Synthesized directory entries (``users.info``, ``conversations.info``) for the emulated workspace.

Ids that were never registered still resolve when they look like Slack ids (``U…``/``W…`` users,
``C…``/``G…``/``D…`` conversations), so tests only register what they care about (admins, names).
"""

from __future__ import annotations

from typing import Any


def default_user(user_id: str, team_id: str, *, is_bot: bool = False) -> dict[str, Any]:
    """The ``users.info`` body for a user id."""
    name = user_id.lower()
    return {
        "id": user_id,
        "team_id": team_id,
        "name": name,
        "real_name": f"User {user_id}",
        "deleted": False,
        "is_admin": False,
        "is_owner": False,
        "is_bot": is_bot,
        "tz": "UTC",
        "profile": {"real_name": f"User {user_id}", "display_name": name, "email": f"{name}@example.test"},
    }


def default_channel(
    channel_id: str, *, name: str | None = None, is_private: bool | None = None
) -> dict[str, Any]:
    """The ``conversations.info`` body for a conversation id; privacy follows the id prefix by default."""
    private = is_private if is_private is not None else not channel_id.startswith("C")
    return {
        "id": channel_id,
        "name": name or channel_id.lower(),
        "is_channel": not private,
        "is_group": private and channel_id.startswith("G"),
        "is_im": channel_id.startswith("D"),
        "is_private": private,
        "is_member": True,
        "is_archived": False,
        "created": 1_700_000_000,
    }
