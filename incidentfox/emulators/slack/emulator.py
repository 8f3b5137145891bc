"""``SlackEmulator``: one aiohttp server on 127.0.0.1 that stands in for slack.com.

Point the real clients at it unchanged::

    async with SlackEmulator() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        app = AsyncApp(client=client)
        handler = AsyncSocketModeHandler(app, app_token=slack.app_token)
        await handler.connect_async()
        envelope_id = await slack.send_event(slack.make_app_mention("C1", "U1", "why is api down?"))
        await slack.wait_for_ack(envelope_id)
        reply = await slack.wait_for("chat.postMessage")
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from incidentfox.emulators.slack.directory import default_channel, default_user
from incidentfox.emulators.slack.files import MAX_FILE_BYTES, FilesApi
from incidentfox.emulators.slack.limits import FaultInjector, RateLimiter, Rejection
from incidentfox.emulators.slack.payloads import (
    build_app_home_opened,
    build_block_actions,
    build_event_callback,
    build_message_event,
    build_slash_command,
    build_view_block_actions,
    build_view_submission,
)
from incidentfox.emulators.slack.socket_mode import EnvelopeKind, SocketAck, SocketModeHub
from incidentfox.emulators.slack.store import (
    CallLog,
    RecordedCall,
    ResponseHook,
    StoredEphemeral,
    StoredFile,
    StoredMessage,
    StoredView,
    Workspace,
)
from incidentfox.emulators.slack.web_api import SlackIdentity, WebApi

_SERVER_ERRORS = {
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "request_timeout",
}


class SlackEmulator:
    """A fake Slack workspace: Web API, Socket Mode, call log, rate limits and fault injection."""

    def __init__(
        self,
        *,
        team_id: str = "T0EMULATOR",
        team_name: str = "IncidentFox Test",
        app_id: str = "A0EMULATOR",
        bot_user_id: str = "U0BOTFOX",
        bot_id: str = "B0BOTFOX",
        max_recorded_calls: int | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        suffix = uuid.uuid4().hex[:16]
        self.identity = SlackIdentity(
            team_id=team_id,
            team_name=team_name,
            app_id=app_id,
            bot_id=bot_id,
            bot_user_id=bot_user_id,
            bot_token=f"xoxb-emulator-{suffix}",
            app_token=f"xapp-1-{app_id}-emulator-{suffix}",
        )
        self.workspace = Workspace()
        self._log = CallLog(max_recorded_calls)
        self._limiter = RateLimiter()
        self._faults = FaultInjector()
        self._hub = SocketModeHub(app_id, keep=max_recorded_calls)
        self._api = WebApi(self.identity, self.workspace, self._log, self._hub, self._limiter, self._faults)
        self._files = FilesApi(self._api, max_bytes=max_file_bytes)
        self._runner: web.AppRunner | None = None
        self._base_url = ""

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api.handle)
        app.router.add_post("/hooks/response/{hook_id}", self._api.handle_response_url)
        app.router.add_get("/link/", self._hub.handle)
        app.router.add_post("/upload/v1/{key}", self._files.handle_upload)
        app.router.add_get("/files/{file_id}/download/{name}", self._files.handle_download)
        app.router.add_get("/files/{file_id}/{name}", self._files.handle_view)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._base_url = f"http://127.0.0.1:{port}/"
        self._api.base_url = self._base_url

    async def stop(self) -> None:
        await self._hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- identity -----------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Base URL for ``AsyncWebClient(base_url=...)``; ends in ``/api/``."""
        if not self._base_url:
            raise RuntimeError("SlackEmulator is not started")
        return self._base_url + "api/"

    @property
    def bot_token(self) -> str:
        return self.identity.bot_token

    @property
    def app_token(self) -> str:
        return self.identity.app_token

    @property
    def bot_user_id(self) -> str:
        return self.identity.bot_user_id

    @property
    def team_id(self) -> str:
        return self.identity.team_id

    @property
    def app_id(self) -> str:
        return self.identity.app_id

    # -- call log -----------------------------------------------------------------------------------

    def calls(self, method: str | None = None, *, ok: bool | None = None) -> list[RecordedCall]:
        """Recorded Web API calls in arrival order; ``ok=True`` keeps successes, ``ok=False`` failures."""
        return self._log.calls(method, ok=ok)

    async def wait_for(
        self, method: str, predicate: Callable[[RecordedCall], bool] | None = None, timeout: float = 5.0
    ) -> RecordedCall:
        """The first call of ``method`` matching ``predicate``, recorded before or after this await."""
        return await self._log.wait_for(method, predicate, timeout)

    # -- workspace state ----------------------------------------------------------------------------

    def messages(self, channel: str, thread_ts: str | None = None) -> list[StoredMessage]:
        """Current messages (edits applied, deletions gone) of a channel, or of one thread, oldest first."""
        return self.workspace.channel_messages(channel, thread_ts)

    def files_in(self, channel: str, thread_ts: str | None = None) -> list[StoredFile]:
        """Files shared (``files.completeUploadExternal``) in a channel, or in one thread, oldest first."""
        return [f for f in self.workspace.files.values() if f.completed and f.in_place(channel, thread_ts)]

    def find_file(self, file_id: str) -> StoredFile | None:
        """A completed upload by id (its bytes in ``content``); ``None`` if unknown or still pending."""
        stored = self.workspace.files.get(file_id)
        return stored if stored is not None and stored.completed else None

    def file_object(self, stored: StoredFile) -> dict[str, Any]:
        """The file as ``files.info`` shows it (``url_private`` on this emulator)."""
        return self._files.file_object(stored)

    def ephemerals(self, channel: str | None = None) -> list[StoredEphemeral]:
        return [e for e in self.workspace.ephemerals if channel is None or e.channel == channel]

    def views(self, user_id: str | None = None) -> list[StoredView]:
        return [v for v in self.workspace.views.values() if user_id is None or v.user_id == user_id]

    def reactions(self, channel: str, ts: str) -> list[str]:
        return list(self.workspace.reactions.get((channel, ts), []))

    def add_user(
        self, user_id: str, *, name: str | None = None, is_admin: bool = False, **extra: Any
    ) -> None:
        """Register a user for ``users.info`` (unregistered ``U…`` ids get a synthesized profile)."""
        user = default_user(user_id, self.team_id)
        if name is not None:
            user.update({"name": name, "real_name": name})
            user["profile"].update({"real_name": name, "display_name": name})
        user.update({"is_admin": is_admin, **extra})
        self.workspace.users[user_id] = user

    def add_usergroup(self, usergroup_id: str, members: list[str]) -> None:
        """A user group (``S…``) whose members ``usergroups.users.list`` returns."""
        self.workspace.usergroups[usergroup_id] = list(members)

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False) -> None:
        self.workspace.channels[channel_id] = default_channel(channel_id, name=name, is_private=is_private)

    def add_message(
        self, channel: str, user: str, text: str, *, ts: str | None = None, thread_ts: str | None = None
    ) -> StoredMessage:
        """Store a human's message (as if typed in Slack) so threads and history include it."""
        message = StoredMessage(
            channel=channel, ts=ts or self._api.ts_clock.next(), text=text, user=user, thread_ts=thread_ts
        )
        return self.workspace.add_message(message)

    def post_as_bot(
        self, channel: str, text: str, *, blocks: list[dict[str, Any]] | None = None
    ) -> StoredMessage:
        """Store a message from the app's bot user, as if it had called ``chat.postMessage``."""
        message = StoredMessage(
            channel=channel,
            ts=self._api.ts_clock.next(),
            text=text,
            user=self.bot_user_id,
            blocks=list(blocks or []),
            bot_id=self.identity.bot_id,
        )
        return self.workspace.add_message(message)

    def pin(self, channel: str, ts: str) -> None:
        """Pin a stored message to its channel (``pins.list`` and the workspace page show it)."""
        pins = self.workspace.pins.setdefault(channel, [])
        if ts not in pins:
            pins.append(ts)

    def pinned(self, channel: str) -> list[str]:
        return list(self.workspace.pins.get(channel, []))

    def subscribe(self, listener: Callable[[RecordedCall], None]) -> Callable[[], None]:
        """Call ``listener`` with every Web API call and ``response_url`` post from now on (for a live
        view of the workspace); returns the function that unsubscribes it."""
        return self._log.subscribe(listener)

    # -- rate limits and faults ---------------------------------------------------------------------

    def set_rate_limit(
        self, method: str, per_second: float, *, burst: int = 1, per_channel: bool = False
    ) -> None:
        """Allow at most ``burst`` calls per ``burst / per_second`` seconds; beyond that answer 429."""
        self._limiter.set_limit(method, per_second, burst=burst, per_channel=per_channel)

    def clear_rate_limits(self) -> None:
        self._limiter.clear()

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int | None = 1,
        *,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        429 answers ``ratelimited`` with ``Retry-After``; 5xx answer a server error body; status 200
        with ``error`` answers ``{"ok": false, "error": error}`` (e.g. ``"invalid_blocks"``).
        """
        if status == 429:
            rejection = Rejection(429, error or "ratelimited", retry_after if retry_after is not None else 1)
        elif status == 200:
            if not error:
                raise ValueError("a 200 fault needs an error code")
            rejection = Rejection(200, error)
        else:
            rejection = Rejection(status, error or _SERVER_ERRORS.get(status, "fatal_error"))
        self._faults.add(method, rejection, times)

    def clear_faults(self) -> None:
        self._faults.clear()

    # -- interactivity ids --------------------------------------------------------------------------

    def issue_trigger_id(self) -> str:
        """A trigger_id that ``views.open`` accepts for 3 seconds (as Slack does)."""
        return self._api.issue_trigger_id()

    def response_url(
        self,
        *,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """A fresh ``response_url``; posts to it are recorded as calls of method ``"response_url"``.

        Given the ``channel`` and ``user`` it answers for, what is posted to it also shows in the
        workspace as Slack shows it: to the user only, in the channel, or over ``message_ts``."""
        hook_id = uuid.uuid4().hex
        if channel is not None and user is not None:
            self.workspace.response_hooks[hook_id] = ResponseHook(channel, user, message_ts, thread_ts)
        return f"{self._base_url}hooks/response/{hook_id}"

    # -- inbound payload builders -------------------------------------------------------------------

    def make_event_callback(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        """Wrap an inner event in an ``event_callback`` body with this workspace's ids."""
        ident = self.identity
        return build_event_callback(
            event,
            team_id=ident.team_id,
            api_app_id=ident.app_id,
            bot_user_id=ident.bot_user_id,
            event_id=event_id,
        )

    def make_app_mention(
        self, channel: str, user: str, text: str, ts: str | None = None, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """An ``app_mention`` event; also stores the message so ``conversations.replies`` sees it.

        ``text`` gets a leading ``<@bot>`` mention when it does not already mention the bot.
        """
        mention = f"<@{self.bot_user_id}>"
        full_text = text if mention in text else f"{mention} {text}"
        stored = self.add_message(channel, user, full_text, ts=ts, thread_ts=thread_ts)
        return build_message_event(
            event_type="app_mention",
            channel=channel,
            user=user,
            text=full_text,
            ts=stored.ts,
            team_id=self.team_id,
            thread_ts=thread_ts,
        )

    def make_message(
        self, channel: str, user: str, text: str, ts: str | None = None, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """A plain ``message`` event from a human; also stored in the channel."""
        stored = self.add_message(channel, user, text, ts=ts, thread_ts=thread_ts)
        return build_message_event(
            event_type="message",
            channel=channel,
            user=user,
            text=text,
            ts=stored.ts,
            team_id=self.team_id,
            thread_ts=thread_ts,
        )

    def make_slash_command(
        self, text: str, *, channel: str, user: str, command: str = "/incidentfox"
    ) -> dict[str, Any]:
        """Slash command fields with a live trigger_id and a recorded response_url."""
        return build_slash_command(
            command=command,
            text=text,
            channel=channel,
            user=user,
            team_id=self.team_id,
            api_app_id=self.app_id,
            trigger_id=self.issue_trigger_id(),
            response_url=self.response_url(channel=channel, user=user),
        )

    def make_block_action(
        self,
        action_id: str,
        value: str,
        *,
        user: str,
        channel: str,
        message_ts: str,
        block_id: str = "actions",
    ) -> dict[str, Any]:
        """A ``block_actions`` payload for a button on a stored message (its current content included)."""
        stored = self.workspace.find(channel, message_ts)
        return build_block_actions(
            action_id=action_id,
            value=value,
            user=user,
            channel=channel,
            message_ts=message_ts,
            team_id=self.team_id,
            api_app_id=self.app_id,
            trigger_id=self.issue_trigger_id(),
            response_url=self.response_url(
                channel=channel,
                user=user,
                message_ts=message_ts,
                thread_ts=stored.thread_ts if stored is not None else None,
            ),
            block_id=block_id,
            message=stored.to_api(self.team_id) if stored is not None else None,
        )

    def make_view_submission(
        self, view_id: str, values: dict[str, dict[str, Any]], *, user: str
    ) -> dict[str, Any]:
        """A ``view_submission`` for the stored modal ``view_id`` with the given ``state.values``."""
        stored = self.workspace.views[view_id]
        return build_view_submission(
            view=self._api.view_body(stored),
            values=values,
            user=user,
            team_id=self.team_id,
            api_app_id=self.app_id,
            trigger_id=self.issue_trigger_id(),
        )

    def make_view_block_action(
        self, view_id: str, action_id: str, value: str, *, user: str, block_id: str = "actions"
    ) -> dict[str, Any]:
        """A ``block_actions`` payload for a button in the stored view ``view_id`` (App Home or modal)."""
        stored = self.workspace.views[view_id]
        return build_view_block_actions(
            action_id=action_id,
            value=value,
            user=user,
            view=self._api.view_body(stored),
            team_id=self.team_id,
            api_app_id=self.app_id,
            trigger_id=self.issue_trigger_id(),
            block_id=block_id,
        )

    def make_app_home_opened(self, user: str) -> dict[str, Any]:
        """An ``app_home_opened`` inner event for ``user`` (send it with ``send_event``)."""
        return build_app_home_opened(user=user)

    def answer_view_submission(self, view_id: str, answer: dict[str, Any] | None) -> StoredView | None:
        """Apply the app's ack of a ``view_submission`` as Slack does; returns the view now shown.

        ``errors`` keeps the modal as it is, ``update`` replaces it, ``push`` stacks a new one on it,
        and anything else (no answer, ``clear``) closes it: the returned value is then ``None``."""
        stored = self.workspace.views[view_id]
        action = (answer or {}).get("response_action")
        if action == "errors":
            return stored
        if action in ("update", "push") and isinstance((answer or {}).get("view"), dict):
            view = dict((answer or {})["view"])
            if action == "update":
                stored.view = view
                return stored
            pushed = self._api.store_pushed_view(view, previous=stored)
            return pushed
        self.close_view(view_id)
        return None

    def close_view(self, view_id: str) -> None:
        """Close a modal (the user pressed Cancel); closed views cannot be updated any more."""
        self.workspace.views.pop(view_id, None)

    def home_view(self, user_id: str) -> StoredView | None:
        """The App Home view last published for ``user_id``."""
        for stored in self.workspace.views.values():
            if stored.type == "home" and stored.user_id == user_id:
                return stored
        return None

    # -- socket mode --------------------------------------------------------------------------------

    async def send_envelope(self, kind: EnvelopeKind, payload: dict[str, Any], **options: Any) -> str:
        """Push an envelope to the newest Socket Mode connection; returns its envelope_id.

        ``options``: ``envelope_id``, ``retry_attempt``, ``retry_reason``, ``timeout``.
        """
        return await self._hub.send_envelope(kind, payload, **options)

    async def send_event(self, event: dict[str, Any], event_id: str | None = None, **options: Any) -> str:
        """Shorthand: wrap ``event`` in an event_callback and send it as an ``events_api`` envelope."""
        return await self._hub.send_envelope(
            "events_api", self.make_event_callback(event, event_id), **options
        )

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketAck:
        return await self._hub.wait_for_ack(envelope_id, timeout)

    async def wait_for_connections(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` Socket Mode connections were made in total and one is open."""
        await self._hub.wait_for_connections(count, timeout)

    async def request_disconnect(self, reason: str = "refresh_requested") -> None:
        await self._hub.request_disconnect(reason)

    @property
    def socket_connection_count(self) -> int:
        return self._hub.connection_count

    @property
    def envelopes(self) -> list[dict[str, Any]]:
        return list(self._hub.envelopes)

    @property
    def acks(self) -> list[SocketAck]:
        return self._hub.acks
