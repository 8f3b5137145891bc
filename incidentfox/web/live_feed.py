"""Live updates for the local web page: what the bot does in the workspace, as Server-Sent Events.

The feed listens to the emulator's call log (every Web API call the bot makes, and every
``response_url`` post) and turns each successful call into the page's events: ``message``,
``message_deleted``, ``ephemeral`` and ``view`` (a ``files.completeUploadExternal`` is the
``message`` that carries the files). A browser that falls behind by more than a queue's
worth of events is disconnected; ``EventSource`` reconnects and the page re-reads what it shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from incidentfox.emulators.slack import RecordedCall, SlackEmulator
from incidentfox.web.ui_messages import WorkspaceReader

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
QUEUE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One Server-Sent Event: its name and its JSON data."""

    name: str
    data: dict[str, Any]

    def encode(self) -> bytes:
        return f"event: {self.name}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


class LiveFeed:
    """Fans the workspace's changes out to every connected page."""

    def __init__(self, slack: SlackEmulator, reader: WorkspaceReader, *, person_id: str) -> None:
        self.reader = reader
        self.person_id = person_id
        self._clients: set[asyncio.Queue[LiveEvent | None]] = set()
        self._unsubscribe = slack.subscribe(self._on_call)

    def close(self) -> None:
        self._unsubscribe()
        for queue in list(self._clients):
            self._drop(queue)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def publish(self, event: LiveEvent) -> None:
        for queue in list(self._clients):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.info("local workspace: a page fell behind; it will reconnect and re-read")
                self._drop(queue)

    def message_changed(self, channel: str, ts: str) -> None:
        """Publish a message's current state, and its thread parent's (reply count, last reply)."""
        message = self.reader.find(channel, ts)
        if message is None:
            self.publish(LiveEvent("message_deleted", {"channel": channel, "ts": ts}))
            return
        self.publish(LiveEvent("message", message))
        parent_ts = message.get("thread_ts")
        if parent_ts and parent_ts != ts:
            parent = self.reader.find(channel, parent_ts)
            if parent is not None:
                self.publish(LiveEvent("message", parent))

    def view_changed(self, action: str, view: dict[str, Any]) -> None:
        self.publish(LiveEvent("view", {"action": action, "view": view}))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """``GET /ui/api/events``: the page's event stream, with a heartbeat comment every 15 s."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(QUEUE_SIZE)
        self._clients.add(queue)
        try:
            await response.write(b"retry: 1000\n: connected\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    await response.write(b": heartbeat\n\n")
                    continue
                if event is None:
                    break
                await response.write(event.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(queue)
        return response

    def _drop(self, queue: asyncio.Queue[LiveEvent | None]) -> None:
        self._clients.discard(queue)
        with contextlib.suppress(asyncio.QueueFull):
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)

    def _on_call(self, call: RecordedCall) -> None:
        if not call.ok:
            return
        handler = _CALL_EVENTS.get(call.method)
        if handler is not None:
            handler(self, call)

    def _posted(self, call: RecordedCall) -> None:
        self.message_changed(str(call.response.get("channel")), str(call.response.get("ts")))

    def _shared(self, call: RecordedCall) -> None:
        """``files.completeUploadExternal``: the messages that carry the files, found by their shares."""
        places: list[tuple[str, str]] = []
        for shown in call.response.get("files") or []:
            shares = shown.get("shares") if isinstance(shown, dict) else None
            for scope in (shares or {}).values():
                for channel, entries in scope.items():
                    places.extend((str(channel), str(e.get("ts"))) for e in entries)
        for channel, ts in dict.fromkeys(places):
            self.message_changed(channel, ts)

    def _deleted(self, call: RecordedCall) -> None:
        channel, ts = str(call.response.get("channel")), str(call.response.get("ts"))
        self.publish(LiveEvent("message_deleted", {"channel": channel, "ts": ts}))

    def _pinned(self, call: RecordedCall) -> None:
        self.message_changed(str(call.args.get("channel")), str(call.args.get("timestamp")))

    def _ephemeral(self, call: RecordedCall) -> None:
        if call.args.get("user") != self.person_id:
            return
        found = self.reader.find_ephemeral(str(call.response.get("message_ts")))
        if found is not None:
            self.publish(LiveEvent("ephemeral", found))

    def _responded(self, call: RecordedCall) -> None:
        shown, ts = call.response.get("shown"), str(call.response.get("ts"))
        if shown == "ephemeral":
            found = self.reader.find_ephemeral(ts)
            if found is not None:
                self.publish(LiveEvent("ephemeral", found))
        elif shown in ("message", "replaced", "deleted"):
            self.message_changed(str(call.response.get("channel")), ts)

    def _view(self, call: RecordedCall) -> None:
        view = call.response.get("view")
        if not isinstance(view, dict):
            return
        action = {"views.open": "open", "views.push": "push", "views.update": "update"}.get(
            call.method, "publish"
        )
        if action == "publish" and call.args.get("user_id") != self.person_id:
            return
        stored = self.reader.slack.workspace.views.get(str(view.get("id")))
        if stored is not None:
            self.view_changed(action, self.reader.view(stored))


_CALL_EVENTS = {
    "chat.postMessage": LiveFeed._posted,
    "chat.update": LiveFeed._posted,
    "chat.delete": LiveFeed._deleted,
    "files.completeUploadExternal": LiveFeed._shared,
    "chat.postEphemeral": LiveFeed._ephemeral,
    "pins.add": LiveFeed._pinned,
    "pins.remove": LiveFeed._pinned,
    "response_url": LiveFeed._responded,
    "views.open": LiveFeed._view,
    "views.push": LiveFeed._view,
    "views.update": LiveFeed._view,
    "views.publish": LiveFeed._view,
}
