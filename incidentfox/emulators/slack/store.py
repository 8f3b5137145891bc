"""In-memory state of the emulated workspace: the call log, messages, views, users and channels.

Everything here is plain data touched only from the event loop that runs the emulator, so no locks
are needed. Times in the call log are ``time.monotonic()`` values so tests can assert spacing.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One Web API request as the emulator saw it, including throttled and failed ones.

    ``status`` is the HTTP status answered; ``error`` is the Slack ``error`` string when ``ok`` was
    false (``"ratelimited"``, ``"invalid_blocks"`` ...). ``at`` is ``time.monotonic()`` at receipt.
    """

    method: str
    args: dict[str, Any]
    token: str | None
    at: float
    status: int
    response: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        value = self.response.get("error")
        return str(value) if value is not None else None


@dataclass(slots=True)
class StoredMessage:
    """A message as Slack would return it from ``conversations.replies``."""

    channel: str
    ts: str
    text: str
    user: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    bot_id: str | None = None
    edits: int = 0
    metadata: dict[str, Any] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    """File objects shared with the message (``files.completeUploadExternal``), as Slack shows them."""
    upload: bool = False

    def to_api(self, team_id: str, *, with_metadata: bool = True) -> dict[str, Any]:
        """The message as the Web API shows it; history methods include ``metadata`` only when asked
        with ``include_all_metadata``, as Slack does."""
        body: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text, "user": self.user}
        body["team"] = team_id
        if self.blocks:
            body["blocks"] = self.blocks
        if self.thread_ts is not None:
            body["thread_ts"] = self.thread_ts
        if self.bot_id is not None:
            body["bot_id"] = self.bot_id
        if self.edits:
            body["edited"] = {"user": self.user, "ts": self.ts}
        if self.metadata is not None and with_metadata:
            body["metadata"] = self.metadata
        if self.files:
            body["files"] = self.files
            body["upload"] = self.upload
            body["display_as_bot"] = False
        return body


@dataclass(slots=True)
class StoredEphemeral:
    """An ephemeral message: visible to one user, never stored in channel history."""

    channel: str
    user: str
    message_ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None


@dataclass(frozen=True, slots=True)
class FileShare:
    """Where a file was shared: the message that carries it (``thread_ts`` when in a thread)."""

    channel: str
    ts: str
    thread_ts: str | None = None


@dataclass(slots=True)
class StoredFile:
    """An uploaded file: its bytes and what ``files.info`` says of it.

    ``upload_key`` is the secret path of its upload URL; ``completed`` turns true with
    ``files.completeUploadExternal`` (only completed files can be downloaded or shared)."""

    id: str
    name: str
    title: str
    mimetype: str
    filetype: str
    pretty_type: str
    length: int
    user: str
    created: int
    upload_key: str
    content: bytes | None = None
    completed: bool = False
    alt_txt: str | None = None
    shares: list[FileShare] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.content) if self.content is not None else 0

    def in_place(self, channel: str, thread_ts: str | None = None) -> bool:
        """Shared in ``channel`` (and, given ``thread_ts``, in that thread or as its parent)."""
        return any(
            share.channel == channel and (thread_ts is None or thread_ts in (share.ts, share.thread_ts))
            for share in self.shares
        )


@dataclass(slots=True)
class StoredView:
    """A modal or Home tab view, as returned by ``views.*``."""

    id: str
    type: str
    user_id: str | None
    view: dict[str, Any]
    hash: str
    root_view_id: str
    previous_view_id: str | None = None

    def to_api(self, team_id: str, app_id: str, bot_id: str) -> dict[str, Any]:
        body = dict(self.view)
        body.update(
            {
                "id": self.id,
                "team_id": team_id,
                "type": self.type,
                "blocks": self.view.get("blocks", []),
                "private_metadata": self.view.get("private_metadata", ""),
                "callback_id": self.view.get("callback_id", ""),
                "external_id": self.view.get("external_id", ""),
                "state": {"values": {}},
                "hash": self.hash,
                "root_view_id": self.root_view_id,
                "previous_view_id": self.previous_view_id,
                "app_id": app_id,
                "bot_id": bot_id,
            }
        )
        return body


class TsClock:
    """Issues unique, strictly increasing Slack timestamps (``"1700000000.000100"``)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._last_us = 0

    def next(self) -> str:
        now_us = int(self._wall() * 1_000_000)
        self._last_us = max(now_us, self._last_us + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"


class CallLog:
    """Ordered record of every Web API call with awaitable lookups for tests.

    ``max_calls`` keeps only the newest calls: a long-lived emulator (the local workspace) would
    otherwise hold every progress edit it was ever sent."""

    def __init__(self, max_calls: int | None = None) -> None:
        self._calls: deque[RecordedCall] = deque(maxlen=max_calls)
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[RecordedCall], None]] = []

    def record(self, call: RecordedCall) -> None:
        self._calls.append(call)
        self._changed.set()
        for listener in self._listeners:
            listener(call)

    def subscribe(self, listener: Callable[[RecordedCall], None]) -> Callable[[], None]:
        """Call ``listener`` with every call recorded from now on; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def calls(self, method: str | None = None, *, ok: bool | None = None) -> list[RecordedCall]:
        return [
            c for c in self._calls if (method is None or c.method == method) and (ok is None or c.ok is ok)
        ]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[RecordedCall], bool] | None = None,
        timeout: float = 5.0,
    ) -> RecordedCall:
        """Return the first call (already recorded or arriving later) of ``method`` matching ``predicate``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for call in self._calls:
                if call.method == method and (predicate is None or predicate(call)):
                    return call
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [c.method for c in self._calls]
                raise TimeoutError(f"no matching {method} call within {timeout}s; calls seen: {seen}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue


@dataclass(frozen=True, slots=True)
class ResponseHook:
    """Where a ``response_url`` answers: the channel and user of the command or action that minted it,
    and the message a ``replace_original`` / ``delete_original`` acts on."""

    channel: str
    user: str
    message_ts: str | None = None
    thread_ts: str | None = None


@dataclass(frozen=True, slots=True)
class UserToken:
    """A user token (``xoxp-…``) the workspace issued: whose it is and what it may do."""

    user: str
    scopes: tuple[str, ...]


@dataclass(slots=True)
class Workspace:
    """Messages, views, users and channels of the one emulated workspace."""

    messages: dict[str, list[StoredMessage]] = field(default_factory=dict)
    ephemerals: list[StoredEphemeral] = field(default_factory=list)
    views: dict[str, StoredView] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    reactions: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    pins: dict[str, list[str]] = field(default_factory=dict)
    """Pinned message timestamps per channel, oldest pin first."""
    response_hooks: dict[str, ResponseHook] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    """Uploaded files by id, pending (upload URL issued) and completed alike."""
    user_tokens: dict[str, UserToken] = field(default_factory=dict)
    """User tokens by token (``search.issue_user_token``)."""

    def add_message(self, message: StoredMessage) -> StoredMessage:
        self.messages.setdefault(message.channel, []).append(message)
        return message

    def find(self, channel: str, ts: str) -> StoredMessage | None:
        for message in self.messages.get(channel, []):
            if message.ts == ts:
                return message
        return None

    def delete(self, channel: str, ts: str) -> bool:
        found = self.find(channel, ts)
        if found is None:
            return False
        self.messages[channel].remove(found)
        return True

    def channel_messages(self, channel: str, thread_ts: str | None = None) -> list[StoredMessage]:
        """All messages of a channel, or of one thread (parent first), in ``ts`` order."""
        items = self.messages.get(channel, [])
        if thread_ts is not None:
            items = [m for m in items if m.ts == thread_ts or m.thread_ts == thread_ts]
        return sorted(items, key=lambda m: _ts_key(m.ts))


def _ts_key(ts: str) -> tuple[int, int, str]:
    seconds, _, micros = ts.partition(".")
    if seconds.isdigit() and (micros.isdigit() or not micros):
        return int(seconds), int(micros.ljust(6, "0") or 0), ""
    return 0, 0, ts
