"""The emulated workspace as the local web page reads it: messages, threads, views and channels.

Pure reads of the emulator's in-memory state, shaped for ``static/workspace.js`` (see
``workspace_api.py`` for the routes that return them).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from incidentfox.emulators.slack import SlackEmulator, StoredEphemeral, StoredFile, StoredMessage, StoredView
from incidentfox.emulators.slack.files import is_text

PREVIEW_MAX_BYTES = 200 * 1024
"""Text files up to this size get an expandable preview on the page."""
_ARCHIVES = {"application/zip", "application/gzip", "application/x-tar", "application/x-7z-compressed"}
_CODE = {"application/json", "application/yaml", "application/xml", "text/x-python", "text/x-sh", "text/html"}


class WorkspaceReader:
    """Read-only views of one emulated workspace."""

    def __init__(self, slack: SlackEmulator) -> None:
        self.slack = slack

    def user_name(self, user_id: str) -> str:
        user = self.slack.workspace.users.get(user_id)
        if user is None:
            return "IncidentFox" if user_id == self.slack.bot_user_id else user_id
        return str(user.get("real_name") or user.get("name") or user_id)

    def message(self, stored: StoredMessage) -> dict[str, Any]:
        replies = self._replies(stored)
        return {
            "channel": stored.channel,
            "ts": stored.ts,
            "thread_ts": stored.thread_ts,
            "user": stored.user,
            "user_name": self.user_name(stored.user),
            "is_bot": stored.bot_id is not None,
            "text": stored.text,
            "blocks": stored.blocks,
            "edited": stored.edits > 0 and stored.bot_id is None,
            "edits": stored.edits,
            "pinned": stored.ts in self.slack.workspace.pins.get(stored.channel, []),
            "ephemeral": False,
            "reply_count": len(replies),
            "latest_reply": replies[-1].ts if replies else None,
            "files": [self.file_card(f) for f in stored.files],
        }

    def file_card(self, shown: dict[str, Any]) -> dict[str, Any]:
        """A message's file as the page's card shows it. ``available`` is false when the bytes are gone
        (the workspace keeps its messages across restarts, not the uploads); ``url`` is on the page's
        own origin (``GET /ui/api/files/{id}``)."""
        file_id = str(shown.get("id") or "")
        stored = self.shared_file(file_id)
        name = str(shown.get("name") or file_id)
        mimetype = stored.mimetype if stored is not None else str(shown.get("mimetype") or "")
        size = stored.size if stored is not None else int(shown.get("size") or 0)
        return {
            "id": file_id,
            "name": name,
            "title": str(shown.get("title") or name),
            "mimetype": mimetype or "application/octet-stream",
            "pretty_type": str(shown.get("pretty_type") or ""),
            "size": size,
            "kind": file_kind(mimetype),
            "available": stored is not None,
            "previewable": stored is not None and is_text(mimetype) and size <= PREVIEW_MAX_BYTES,
            "url": f"/ui/api/files/{quote(file_id, safe='')}",
        }

    def shared_file(self, file_id: str) -> StoredFile | None:
        """An uploaded file the page may show: its bytes are here and it was shared in one of the
        workspace's channels (a private upload, never shared, stays out of the page)."""
        stored = self.slack.find_file(file_id)
        if stored is None or stored.content is None:
            return None
        channels = self.slack.workspace.channels
        return stored if any(share.channel in channels for share in stored.shares) else None

    def ephemeral(self, stored: StoredEphemeral) -> dict[str, Any]:
        return {
            "channel": stored.channel,
            "ts": stored.message_ts,
            "thread_ts": stored.thread_ts,
            "user": self.slack.bot_user_id,
            "user_name": self.user_name(self.slack.bot_user_id),
            "is_bot": True,
            "text": stored.text,
            "blocks": stored.blocks,
            "edited": False,
            "edits": 0,
            "pinned": False,
            "ephemeral": True,
            "reply_count": 0,
            "latest_reply": None,
            "files": [],
        }

    def channel_history(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages (thread parents included), oldest first."""
        return [
            self.message(m)
            for m in self.slack.messages(channel)
            if m.thread_ts is None or m.thread_ts == m.ts
        ]

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [self.message(m) for m in self.slack.messages(channel, thread_ts)]

    def find(self, channel: str, ts: str) -> dict[str, Any] | None:
        stored = self.slack.workspace.find(channel, ts)
        return self.message(stored) if stored is not None else None

    def find_ephemeral(self, ts: str) -> dict[str, Any] | None:
        for stored in reversed(self.slack.workspace.ephemerals):
            if stored.message_ts == ts:
                return self.ephemeral(stored)
        return None

    def channels(self) -> list[dict[str, Any]]:
        listed = []
        for channel in self.slack.workspace.channels.values():
            topic = channel.get("topic")
            listed.append(
                {
                    "id": channel["id"],
                    "name": channel.get("name", channel["id"]),
                    "is_private": bool(channel.get("is_private")),
                    "is_im": bool(channel.get("is_im")),
                    "topic": topic.get("value", "") if isinstance(topic, dict) else "",
                }
            )
        return sorted(listed, key=lambda c: (c["is_im"], c["name"]))

    def users(self) -> list[dict[str, Any]]:
        return [
            {
                "id": user_id,
                "name": str(user.get("name", user_id)),
                "real_name": str(user.get("real_name", user_id)),
                "is_bot": bool(user.get("is_bot")),
            }
            for user_id, user in self.slack.workspace.users.items()
        ]

    def view(self, stored: StoredView) -> dict[str, Any]:
        return {**stored.view, "id": stored.id, "type": stored.type, **self._stack(stored)}

    def _stack(self, stored: StoredView) -> dict[str, Any]:
        return {"root_view_id": stored.root_view_id, "previous_view_id": stored.previous_view_id}

    def _replies(self, stored: StoredMessage) -> list[StoredMessage]:
        if stored.thread_ts not in (None, stored.ts):
            return []
        return [m for m in self.slack.messages(stored.channel, stored.ts) if m.ts != stored.ts]


def file_kind(mimetype: str) -> str:
    """What a file's card icon shows: image, pdf, archive, code, text or other."""
    if mimetype.startswith("image/"):
        return "image"
    if mimetype == "application/pdf":
        return "pdf"
    if mimetype in _ARCHIVES:
        return "archive"
    if mimetype in _CODE:
        return "code"
    return "text" if is_text(mimetype) else "other"
