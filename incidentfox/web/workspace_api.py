"""``/ui/api/...``: what the local web page does in the emulated workspace, as a person in Slack would.

Every action becomes what Slack itself would send the app, through the emulator: a typed message
is stored and delivered as an ``app_mention`` (or a DM ``message``) event over Socket Mode, a slash
command as a ``slash_commands`` envelope, a click as ``block_actions``, a modal's submit as
``view_submission`` whose ack (``response_action: errors|update|push``) is applied as Slack applies
it. The bot cannot tell the page from Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from incidentfox.bot.http_json import json_response
from incidentfox.emulators.slack import SlackEmulator
from incidentfox.emulators.slack.files import content_disposition
from incidentfox.emulators.slack.payloads import build_message_event
from incidentfox.errors import BadRequest, NotFound, Unavailable
from incidentfox.web.embedded import EmbeddedSlack
from incidentfox.web.live_feed import LiveFeed
from incidentfox.web.ui_messages import WorkspaceReader

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACK_TIMEOUT_S = 5.0
MAX_TEXT = 40_000


class LocalWorkspaceApi:
    """The routes of the local workspace, bound to one embedded Slack."""

    def __init__(self, embedded: EmbeddedSlack, feed: LiveFeed, reader: WorkspaceReader) -> None:
        self.embedded = embedded
        self.slack: SlackEmulator = embedded.emulator
        self.person = embedded.person.user_id
        self.feed = feed
        self.reader = reader

    def add_routes(self, app: web.Application, guard: Callable[[Handler], Handler]) -> None:
        """The routes, each behind ``guard`` (who may use the page: see ``pages.PageAccess``)."""
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/ui/api/events", self.feed.stream),
            ("GET", "/ui/api/channels/{channel}/messages", self.history),
            ("POST", "/ui/api/channels/{channel}/messages", self.post_message),
            ("GET", "/ui/api/channels/{channel}/threads/{ts}", self.thread),
            ("POST", "/ui/api/commands", self.command),
            ("POST", "/ui/api/actions", self.action),
            ("POST", "/ui/api/views/{view_id}/submit", self.submit_view),
            ("POST", "/ui/api/views/{view_id}/close", self.close_view),
            ("POST", "/ui/api/home/open", self.open_home),
            ("GET", "/ui/api/home", self.home),
            ("GET", "/ui/api/files/{file_id}", self.file),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, guard(handler))

    # -- reading ------------------------------------------------------------------------------------

    async def history(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel(request)
        return json_response({"messages": self.reader.channel_history(channel)})

    async def thread(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel(request)
        return json_response({"messages": self.reader.thread(channel, request.match_info["ts"])})

    async def home(self, _request: web.Request) -> web.StreamResponse:
        stored = self.slack.home_view(self.person)
        return json_response({"view": self.reader.view(stored) if stored is not None else None})

    async def file(self, request: web.Request) -> web.StreamResponse:
        """A shared file's bytes, always as a download: served from the page's origin, an uploaded HTML
        or SVG file must never render there (``sandbox``, ``nosniff``, ``attachment``)."""
        stored = self.reader.shared_file(request.match_info["file_id"])
        if stored is None or stored.content is None:
            raise NotFound("that file is not here (files are not kept when IncidentFox restarts)")
        return web.Response(
            body=stored.content,
            content_type=stored.mimetype,
            headers={
                "Content-Disposition": content_disposition(stored.name),
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )

    # -- doing --------------------------------------------------------------------------------------

    async def post_message(self, request: web.Request) -> web.StreamResponse:
        """A message typed by the local person, delivered as Slack delivers it: a ``message`` event (the
        bot subscribes to ``message.channels``), plus an ``app_mention`` when it mentions the bot."""
        channel = self._channel(request)
        body = await _json_body(request)
        text = _text(body, "text")
        thread_ts = _optional_str(body, "thread_ts")
        stored = self.slack.add_message(channel, self.person, text, thread_ts=thread_ts)
        self.feed.message_changed(channel, stored.ts)
        mentioned = not channel.startswith("D") and f"<@{self.slack.bot_user_id}>" in text
        kinds = ("message", "app_mention") if mentioned else ("message",)
        for kind in kinds:
            event = build_message_event(
                event_type=kind,
                channel=channel,
                user=self.person,
                text=text,
                ts=stored.ts,
                team_id=self.slack.team_id,
                thread_ts=thread_ts,
            )
            await self._deliver(self.slack.send_event(event))
        return json_response({"ts": stored.ts})

    async def command(self, request: web.Request) -> web.StreamResponse:
        """``/incidentfox <text>``; the bot's inline answer (if any) comes back to show to the person."""
        body = await _json_body(request)
        channel = _text(body, "channel", limit=40)
        self._known_channel(channel)
        text = str(body.get("text") or "")[:MAX_TEXT]
        payload = self.slack.make_slash_command(text, channel=channel, user=self.person)
        ack = await self._ack(self.slack.send_envelope("slash_commands", payload))
        answer = (
            ack.payload if ack.payload and (ack.payload.get("text") or ack.payload.get("blocks")) else None
        )
        return json_response({"ok": True, "response": answer})

    async def action(self, request: web.Request) -> web.StreamResponse:
        """A click on a button (or a choice in a select) in a message, the Home tab or a modal."""
        body = await _json_body(request)
        container = body.get("container")
        if not isinstance(container, dict):
            raise BadRequest("container is missing")
        action_id = _text(body, "action_id", limit=255)
        block_id = str(body.get("block_id") or "actions")
        value = str(body.get("value") or "")
        if container.get("type") == "view":
            view_id = str(container.get("view_id") or "")
            self._known_view(view_id)
            payload = self.slack.make_view_block_action(
                view_id, action_id, value, user=self.person, block_id=block_id
            )
            state = body.get("state")
            if isinstance(state, dict) and isinstance(state.get("values"), dict):
                payload["view"]["state"] = {"values": state["values"]}
        else:
            channel = str(container.get("channel") or "")
            self._known_channel(channel)
            payload = self.slack.make_block_action(
                action_id,
                value,
                user=self.person,
                channel=channel,
                message_ts=str(container.get("ts") or ""),
                block_id=block_id,
            )
            payload["container"]["is_ephemeral"] = container.get("is_ephemeral") is True
        _apply_selection(payload["actions"][0], body)
        await self._ack(self.slack.send_envelope("interactive", payload))
        return json_response({"ok": True})

    async def submit_view(self, request: web.Request) -> web.StreamResponse:
        view_id = request.match_info["view_id"]
        self._known_view(view_id)
        body = await _json_body(request)
        values = body.get("values")
        if not isinstance(values, dict):
            raise BadRequest("values must be an object shaped like Slack's view.state.values")
        payload = self.slack.make_view_submission(view_id, values, user=self.person)
        ack = await self._ack(self.slack.send_envelope("interactive", payload))
        answer = ack.payload or {}
        action = answer.get("response_action")
        shown = self.slack.answer_view_submission(view_id, answer)
        view = self.reader.view(shown) if shown is not None else None
        if view is not None and action in ("update", "push"):
            self.feed.view_changed(str(action), view)
        return json_response(
            {"ok": True, "response_action": action, "errors": answer.get("errors") or {}, "view": view}
        )

    async def close_view(self, request: web.Request) -> web.StreamResponse:
        self.slack.close_view(request.match_info["view_id"])
        return json_response({"ok": True})

    async def open_home(self, _request: web.Request) -> web.StreamResponse:
        await self._deliver(self.slack.send_event(self.slack.make_app_home_opened(self.person)))
        return json_response({"ok": True})

    # -- plumbing -----------------------------------------------------------------------------------

    async def _deliver(self, sending: Any) -> str:
        try:
            envelope_id: str = await sending
        except (TimeoutError, ConnectionError) as exc:
            raise Unavailable(
                "IncidentFox is not connected to the workspace right now (it may be starting or "
                "restarting). Try again in a few seconds."
            ) from exc
        return envelope_id

    async def _ack(self, sending: Any) -> Any:
        envelope_id = await self._deliver(sending)
        try:
            return await self.slack.wait_for_ack(envelope_id, timeout=ACK_TIMEOUT_S)
        except TimeoutError as exc:
            raise Unavailable(
                "IncidentFox did not answer within 5 seconds (Slack gives an app 3). "
                "Check its log for errors."
            ) from exc

    def _channel(self, request: web.Request) -> str:
        channel = request.match_info["channel"]
        self._known_channel(channel)
        return channel

    def _known_channel(self, channel: str) -> None:
        if channel not in self.slack.workspace.channels:
            raise NotFound(f"there is no channel {channel[:40]} in this workspace")

    def _known_view(self, view_id: str) -> None:
        if view_id not in self.slack.workspace.views:
            raise NotFound("that view was closed or never existed")


_SELECTIONS = (
    "selected_option",
    "selected_options",
    "selected_user",
    "selected_users",
    "selected_conversation",
    "selected_conversations",
    "selected_channel",
    "selected_channels",
    "selected_date",
    "selected_time",
)


def _apply_selection(action: dict[str, Any], body: dict[str, Any]) -> None:
    """A select's, picker's or checkbox's choice, in the shape Slack sends it instead of a button's."""
    chosen = {key: body[key] for key in _SELECTIONS if body.get(key) is not None}
    if not chosen:
        return
    element_type = body.get("type")
    action["type"] = str(element_type) if isinstance(element_type, str) and element_type else "static_select"
    if action["type"] != "button":
        action.pop("value", None)
    for key, value in chosen.items():
        if key == "selected_option":
            value = _option(value)
        elif key == "selected_options" and isinstance(value, list):
            value = [_option(v) for v in value]
        action[key] = value


def _option(option: Any) -> dict[str, Any]:
    """An option object with a text object, whether the page sent its text as a string or an object."""
    if not isinstance(option, dict):
        return {"value": str(option), "text": {"type": "plain_text", "text": str(option), "emoji": True}}
    text = option.get("text")
    if not isinstance(text, dict):
        text = {
            "type": "plain_text",
            "text": str(text if text is not None else option.get("value")),
            "emoji": True,
        }
    return {**option, "value": str(option.get("value")), "text": text}


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise BadRequest("the request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str, *, limit: int = MAX_TEXT) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{key} is missing")
    if len(value) > limit:
        raise BadRequest(f"{key} is longer than {limit} characters")
    return value


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return str(value) if isinstance(value, str) and value else None
