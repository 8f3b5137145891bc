"""The Socket Mode side of the emulator: a WebSocket endpoint that speaks Slack's envelope protocol.

``apps.connections.open`` hands out ``ws://.../link/?ticket=...`` URLs; a client that connects gets a
``hello``; ``send_envelope`` pushes ``events_api`` / ``slash_commands`` / ``interactive`` envelopes to
the newest connection; the client's ``{"envelope_id": ...}`` acks are recorded with their latency;
``request_disconnect`` sends Slack's ``disconnect`` message so the client reconnects through
``apps.connections.open`` exactly as it does against Slack.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import WSCloseCode, WSMsgType, web

logger = logging.getLogger(__name__)

EnvelopeKind = Literal["events_api", "slash_commands", "interactive"]
_RESPONSE_PAYLOAD_TYPES = {"view_submission", "block_suggestion"}


@dataclass(frozen=True, slots=True)
class SocketAck:
    """An acknowledgement the app sent back for one envelope.

    ``payload`` is the optional response payload (e.g. a slash command's ``ack(text=...)`` body);
    ``latency`` is seconds from sending the envelope to receiving the ack.
    """

    envelope_id: str
    payload: dict[str, Any] | None
    message: dict[str, Any]
    latency: float


class SocketModeHub:
    """Tracks tickets, live WebSocket connections, sent envelopes and received acks."""

    def __init__(self, app_id: str, *, keep: int | None = None) -> None:
        """``keep``: remember only the newest envelopes and acks (a long-lived emulator)."""
        self._app_id = app_id
        self._keep = keep
        self._tickets: set[str] = set()
        self._connections: list[web.WebSocketResponse] = []
        self._connection_total = 0
        self._sent_at: dict[str, float] = {}
        self._acks: dict[str, SocketAck] = {}
        self._changed = asyncio.Event()
        self.envelopes: deque[dict[str, Any]] = deque(maxlen=keep)

    @property
    def connection_count(self) -> int:
        """How many WebSocket connections were ever established (reconnects included)."""
        return self._connection_total

    @property
    def active_connections(self) -> int:
        return sum(1 for ws in self._connections if not ws.closed)

    @property
    def acks(self) -> list[SocketAck]:
        return list(self._acks.values())

    def _forget_oldest(self) -> None:
        if self._keep is None:
            return
        for remembered in (self._acks, self._sent_at):
            while len(remembered) > self._keep:
                del remembered[next(iter(remembered))]

    def issue_ticket(self) -> str:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return ticket

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._connections.append(ws)
        self._connection_total += 1
        self._notify()
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": self.active_connections,
                "debug_info": {
                    "host": "applink-emulator",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self._app_id},
            }
        )
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(msg.data)
        finally:
            if ws in self._connections:
                self._connections.remove(ws)
            self._notify()
        return ws

    def _on_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            logger.warning("socket_mode_bad_frame length=%d", len(data))
            return
        if not isinstance(message, dict) or not isinstance(message.get("envelope_id"), str):
            return
        envelope_id = message["envelope_id"]
        sent = self._sent_at.get(envelope_id, time.monotonic())
        payload = message.get("payload")
        self._acks.setdefault(
            envelope_id,
            SocketAck(
                envelope_id=envelope_id,
                payload=payload if isinstance(payload, dict) else None,
                message=message,
                latency=time.monotonic() - sent,
            ),
        )
        self._forget_oldest()
        self._notify()

    async def send_envelope(
        self,
        kind: EnvelopeKind,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> str:
        """Send one envelope to the newest open connection (waiting up to ``timeout`` for one)."""
        await self._wait(lambda: self._newest_open() is not None, timeout, "an open socket connection")
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": kind == "slash_commands"
            or (kind == "interactive" and payload.get("type") in _RESPONSE_PAYLOAD_TYPES),
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        target = self._newest_open()
        if target is None:
            raise ConnectionError("the socket connection closed before the envelope could be sent")
        self._sent_at[envelope_id] = time.monotonic()
        self.envelopes.append(envelope)
        await target.send_json(envelope)
        return envelope_id

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketAck:
        await self._wait(lambda: envelope_id in self._acks, timeout, f"an ack for {envelope_id}")
        return self._acks[envelope_id]

    async def wait_for_connections(self, count: int, timeout: float = 5.0) -> None:
        """Wait until ``count`` connections have been established in total and one is open."""
        await self._wait(
            lambda: self._connection_total >= count and self._newest_open() is not None,
            timeout,
            f"{count} socket connections",
        )

    async def request_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every open client to reconnect, as Slack does when it rotates its link servers."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-emulator"}}
        for ws in list(self._connections):
            if not ws.closed:
                await ws.send_json(message)

    async def close(self) -> None:
        for ws in list(self._connections):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"emulator stopping")
        self._connections.clear()

    def _newest_open(self) -> web.WebSocketResponse | None:
        for ws in reversed(self._connections):
            if not ws.closed:
                return ws
        return None

    def _notify(self) -> None:
        self._changed.set()

    async def _wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if condition():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
