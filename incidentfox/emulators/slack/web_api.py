"""The Web API side of the emulator: ``POST|GET /api/{method}`` answered like slack.com.

Order of checks per call: unknown method -> token -> injected fault -> rate limit -> the method.
Every call is recorded in the ``CallLog`` with its HTTP status and response, whatever the outcome.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from incidentfox.emulators.slack.directory import default_channel, default_user
from incidentfox.emulators.slack.limits import FaultInjector, RateLimiter, Rejection
from incidentfox.emulators.slack.requests import bearer_token, parse_args
from incidentfox.emulators.slack.search import (
    CALLER,
    Refused,
    access_error,
    calling_user,
    history,
    permalink,
    replies,
    scope_headers,
    search_messages,
)
from incidentfox.emulators.slack.socket_mode import SocketModeHub
from incidentfox.emulators.slack.store import (
    CallLog,
    RecordedCall,
    StoredEphemeral,
    StoredMessage,
    StoredView,
    TsClock,
    Workspace,
)
from incidentfox.emulators.slack.validation import Invalid, validate_message, validate_view

TRIGGER_TTL_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class SlackIdentity:
    """The ids of the emulated workspace, app and bot user."""

    team_id: str
    team_name: str
    app_id: str
    bot_id: str
    bot_user_id: str
    bot_token: str
    app_token: str


class ApiError(Exception):
    """A Slack ``{"ok": false, "error": ...}`` answer with HTTP 200."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []

    @classmethod
    def of(cls, invalid: Invalid) -> ApiError:
        return cls(invalid.error, invalid.messages)


Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class WebApi:
    """Method handlers plus the request plumbing shared by all of them."""

    def __init__(
        self,
        identity: SlackIdentity,
        workspace: Workspace,
        log: CallLog,
        hub: SocketModeHub,
        limiter: RateLimiter,
        faults: FaultInjector,
    ) -> None:
        self.identity = identity
        self.workspace = workspace
        self.log = log
        self.hub = hub
        self.limiter = limiter
        self.faults = faults
        self.ts_clock = TsClock()
        self.base_url = ""
        self._triggers: dict[str, float] = {}
        self._handlers: dict[str, Handler] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "apps.connections.open": self._connections_open,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._permalink,
            "conversations.replies": self._replies,
            "conversations.history": self._history,
            "conversations.info": self._conversation_info,
            "search.messages": self._search,
            "users.info": self._user_info,
            "usergroups.users.list": self._usergroup_users,
            "team.info": self._team_info,
            "reactions.add": self._reaction_add,
            "reactions.remove": self._reaction_remove,
            "pins.add": self._pin_add,
            "pins.remove": self._pin_remove,
            "pins.list": self._pin_list,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
        }

    def register(self, handlers: dict[str, Handler]) -> None:
        """Answer more methods (``files.*``, see ``files.py``) through the same checks and call log."""
        self._handlers.update(handlers)

    def issue_trigger_id(self) -> str:
        """A trigger_id valid for ``views.open``/``views.push`` during the next 3 seconds."""
        trigger_id = f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}"
        self._triggers[trigger_id] = time.monotonic()
        return trigger_id

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        at = time.monotonic()
        token = bearer_token(request)
        status: int
        body: dict[str, Any]
        headers: dict[str, str]
        try:
            args = await parse_args(request)
        except ValueError:
            args = {}
            status, body, headers = 200, {"ok": False, "error": "invalid_json"}, {}
        else:
            if token is None and isinstance(args.get("token"), str):
                token = args.pop("token")
            status, body, headers = await self._answer(method, args, token)
        self.log.record(
            RecordedCall(method=method, args=args, token=token, at=at, status=status, response=body)
        )
        return web.json_response(body, status=status, headers=headers)

    async def handle_response_url(self, request: web.Request) -> web.Response:
        """``response_url`` webhooks (bolt's ``respond()``): recorded as method ``"response_url"``."""
        try:
            args = await parse_args(request)
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        hook_id = request.match_info["hook_id"]
        args["response_url_id"] = hook_id
        body: dict[str, Any] = {"ok": True, **self.apply_response(hook_id, args)}
        self.log.record(
            RecordedCall(
                method="response_url", args=args, token=None, at=time.monotonic(), status=200, response=body
            )
        )
        return web.Response(text="ok")

    async def _answer(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        handler = self._handlers.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        auth_error = self._auth_error(method, token)
        if auth_error is not None:
            return 200, {"ok": False, "error": auth_error}, {}
        CALLER.set(token)
        refused = access_error(self.workspace, method, args, token, bot_token=self.identity.bot_token)
        if refused is not None:
            return 200, refused, scope_headers(self.workspace, token)
        channel = args.get("channel")
        rejection = self.faults.take(method) or self.limiter.check(
            method, channel if isinstance(channel, str) else None
        )
        if rejection is not None:
            return _rejected(rejection)
        try:
            result = await handler(args)
        except (ApiError, Refused) as exc:
            body: dict[str, Any] = {"ok": False, "error": exc.error}
            if exc.messages:
                body["response_metadata"] = {"messages": exc.messages}
            return 200, body, {}
        return 200, {"ok": True, **result}, scope_headers(self.workspace, token)

    def _auth_error(self, method: str, token: str | None) -> str | None:
        if not token:
            return "not_authed"
        if token not in (self.identity.bot_token, self.identity.app_token, *self.workspace.user_tokens):
            return "invalid_auth"
        wants_app_token = method == "apps.connections.open"
        if (token == self.identity.app_token) != wants_app_token:
            return "not_allowed_token_type"
        return None

    # -- auth / socket mode -------------------------------------------------------------------------

    def apply_response(self, hook_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """Show what a ``response_url`` post says where Slack would: replace or delete the original
        message, post in the channel (``response_type: in_channel``), or show it to the user only.
        Returns ``{"shown": "deleted"|"replaced"|"message"|"ephemeral", "channel", "ts"}`` (for the
        call log), or nothing when the hook's context is unknown."""
        hook = self.workspace.response_hooks.get(hook_id)
        if hook is None:
            return {}
        text, blocks = str(args.get("text") or ""), list(args.get("blocks") or [])
        original = self.workspace.find(hook.channel, hook.message_ts) if hook.message_ts else None
        shown: dict[str, Any] = {"channel": hook.channel}
        if _flag(args.get("delete_original")) and original is not None:
            self.workspace.delete(hook.channel, original.ts)
            shown.update(shown="deleted", ts=original.ts)
        elif _flag(args.get("replace_original")) and original is not None:
            original.text, original.blocks = text, blocks
            original.edits += 1
            shown.update(shown="replaced", ts=original.ts)
        elif args.get("response_type") == "in_channel":
            message = self.workspace.add_message(
                StoredMessage(
                    channel=hook.channel,
                    ts=self.ts_clock.next(),
                    text=text,
                    user=self.identity.bot_user_id,
                    blocks=blocks,
                    thread_ts=hook.thread_ts,
                    bot_id=self.identity.bot_id,
                )
            )
            shown.update(shown="message", ts=message.ts)
        else:
            ephemeral = StoredEphemeral(
                channel=hook.channel,
                user=hook.user,
                message_ts=self.ts_clock.next(),
                text=text,
                blocks=blocks,
                thread_ts=hook.thread_ts,
            )
            self.workspace.ephemerals.append(ephemeral)
            shown.update(shown="ephemeral", ts=ephemeral.message_ts)
        return shown

    async def _api_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"args": args}

    async def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        ident = self.identity
        user = calling_user(self.workspace)
        if user is not None:
            name = str((self.workspace.users.get(user) or {}).get("name") or user.lower())
            return {
                "url": "https://incidentfox-test.slack.com/",
                "team": ident.team_name,
                "user": name,
                "team_id": ident.team_id,
                "user_id": user,
                "is_enterprise_install": False,
            }
        return {
            "url": "https://incidentfox-test.slack.com/",
            "team": ident.team_name,
            "user": "incidentfox",
            "team_id": ident.team_id,
            "user_id": ident.bot_user_id,
            "bot_id": ident.bot_id,
            "app_id": ident.app_id,
            "is_enterprise_install": False,
        }

    async def _connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ws_base = self.base_url.replace("http://", "ws://", 1)
        return {"url": f"{ws_base}link/?ticket={self.hub.issue_ticket()}&app_id={self.identity.app_id}"}

    # -- messages -----------------------------------------------------------------------------------

    async def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel", "channel_not_found")
        text, blocks = args.get("text"), args.get("blocks")
        _check(validate_message(text, blocks))
        thread_ts = args.get("thread_ts") or None
        message = self.workspace.add_message(
            StoredMessage(
                channel=channel,
                ts=self.ts_clock.next(),
                text=text or "",
                user=self.identity.bot_user_id,
                blocks=list(blocks or []),
                thread_ts=str(thread_ts) if thread_ts else None,
                bot_id=self.identity.bot_id,
                metadata=args.get("metadata") if isinstance(args.get("metadata"), dict) else None,
            )
        )
        return {"channel": channel, "ts": message.ts, "message": self._message_body(message)}

    async def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel", "channel_not_found")
        message = self._own_message(channel, _required(args, "ts", "message_not_found"))
        text = args.get("text")
        blocks = args.get("blocks") if "blocks" in args else message.blocks
        _check(validate_message(text if text is not None else message.text, blocks))
        if text is not None:
            message.text = text
        if "blocks" in args:
            message.blocks = list(args["blocks"] or [])
        message.edits += 1
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_body(message),
        }

    async def _delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel", "channel_not_found")
        message = self._own_message(channel, _required(args, "ts", "message_not_found"))
        self.workspace.delete(channel, message.ts)
        return {"channel": channel, "ts": message.ts}

    async def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel", "channel_not_found")
        user = _required(args, "user", "user_not_found")
        text, blocks = args.get("text"), args.get("blocks")
        _check(validate_message(text, blocks))
        ts = self.ts_clock.next()
        self.workspace.ephemerals.append(
            StoredEphemeral(
                channel=channel,
                user=user,
                message_ts=ts,
                text=text or "",
                blocks=list(blocks or []),
                thread_ts=args.get("thread_ts") or None,
            )
        )
        return {"message_ts": ts}

    async def _permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel", "channel_not_found")
        ts = _required(args, "message_ts", "message_not_found")
        found = self.workspace.find(channel, ts)
        if found is None:
            raise ApiError("message_not_found")
        return {"channel": channel, "permalink": permalink(channel, ts, found.thread_ts)}

    async def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel", "channel_not_found")
        ts = _required(args, "ts", "thread_not_found")
        return replies(self.workspace, channel, ts, args, self.identity.team_id)

    async def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel", "channel_not_found")
        return history(self.workspace, channel, args, self.identity.team_id)

    async def _search(self, args: dict[str, Any]) -> dict[str, Any]:
        return search_messages(self.workspace, args, self.identity.team_id)

    async def _reaction_add(self, args: dict[str, Any]) -> dict[str, Any]:
        names = self._reactions(args)
        name = _required(args, "name", "invalid_name")
        if name in names:
            raise ApiError("already_reacted")
        names.append(name)
        return {}

    async def _reaction_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        names = self._reactions(args)
        name = _required(args, "name", "invalid_name")
        if name not in names:
            raise ApiError("no_reaction")
        names.remove(name)
        return {}

    def _reactions(self, args: dict[str, Any]) -> list[str]:
        channel = _required(args, "channel", "channel_not_found")
        ts = _required(args, "timestamp", "message_not_found")
        if self.workspace.find(channel, ts) is None:
            raise ApiError("message_not_found")
        return self.workspace.reactions.setdefault((channel, ts), [])

    async def _pin_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = self._pinned_target(args)
        pins = self.workspace.pins.setdefault(channel, [])
        if ts in pins:
            raise ApiError("already_pinned")
        pins.append(ts)
        return {}

    async def _pin_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = self._pinned_target(args)
        pins = self.workspace.pins.get(channel, [])
        if ts not in pins:
            raise ApiError("no_pin")
        pins.remove(ts)
        return {}

    async def _pin_list(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel", "channel_not_found")
        items = []
        for ts in self.workspace.pins.get(channel, []):
            message = self.workspace.find(channel, ts)
            if message is not None:
                items.append({"type": "message", "channel": channel, "message": self._message_body(message)})
        return {"items": items}

    def _pinned_target(self, args: dict[str, Any]) -> tuple[str, str]:
        channel = _required(args, "channel", "channel_not_found")
        ts = _required(args, "timestamp", "no_item_specified")
        if self.workspace.find(channel, ts) is None:
            raise ApiError("message_not_found")
        return channel, ts

    def _own_message(self, channel: str, ts: str) -> StoredMessage:
        message = self.workspace.find(channel, ts)
        if message is None:
            raise ApiError("message_not_found")
        if message.user != self.identity.bot_user_id:
            raise ApiError("cant_update_message")
        return message

    def _message_body(self, message: StoredMessage) -> dict[str, Any]:
        body = message.to_api(self.identity.team_id)
        body["app_id"] = self.identity.app_id
        body["bot_profile"] = {
            "id": self.identity.bot_id,
            "app_id": self.identity.app_id,
            "name": "IncidentFox",
        }
        return body

    # -- directory ----------------------------------------------------------------------------------

    async def _conversation_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel", "channel_not_found")
        known = self.workspace.channels.get(channel)
        if known is None and channel[:1] not in ("C", "G", "D"):
            raise ApiError("channel_not_found")
        return {"channel": known or default_channel(channel)}

    async def _user_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = _required(args, "user", "user_not_found")
        known = self.workspace.users.get(user)
        if known is None and user[:1] not in ("U", "W"):
            raise ApiError("user_not_found")
        return {
            "user": known
            or default_user(user, self.identity.team_id, is_bot=user == self.identity.bot_user_id)
        }

    async def _usergroup_users(self, args: dict[str, Any]) -> dict[str, Any]:
        group = _required(args, "usergroup", "no_such_subteam")
        if group not in self.workspace.usergroups:
            raise ApiError("no_such_subteam")
        return {"users": list(self.workspace.usergroups[group])}

    async def _team_info(self, args: dict[str, Any]) -> dict[str, Any]:
        ident = self.identity
        return {
            "team": {"id": ident.team_id, "name": ident.team_name, "domain": "incidentfox-test"},
        }

    # -- views --------------------------------------------------------------------------------------

    async def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        self._use_trigger(args)
        return {"view": self._store_view(args.get("view"), user_id=None)}

    async def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        self._use_trigger(args)
        return {"view": self._store_view(args.get("view"), user_id=None)}

    async def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        existing = self._find_view(args)
        view = _valid_view(args.get("view"), {"modal"})
        if args.get("hash") and args["hash"] != existing.hash:
            raise ApiError("hash_conflict")
        existing.view = view
        existing.hash = _view_hash()
        return {"view": self.view_body(existing)}

    async def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = _required(args, "user_id", "user_not_found")
        view = _valid_view(args.get("view"), {"home"})
        for stored in self.workspace.views.values():
            if stored.type == "home" and stored.user_id == user_id:
                if args.get("hash") and args["hash"] != stored.hash:
                    raise ApiError("hash_conflict")
                stored.view = view
                stored.hash = _view_hash()
                return {"view": self.view_body(stored)}
        return {"view": self._store_view(view, user_id=user_id, allowed={"home"})}

    def _use_trigger(self, args: dict[str, Any]) -> None:
        trigger_id = args.get("trigger_id")
        if not trigger_id:
            raise ApiError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        issued = self._triggers.get(str(trigger_id))
        if issued is None:
            raise ApiError("invalid_trigger_id")
        if time.monotonic() - issued > TRIGGER_TTL_SECONDS:
            raise ApiError("expired_trigger_id")

    def _store_view(
        self, view: Any, *, user_id: str | None, allowed: set[str] | None = None
    ) -> dict[str, Any]:
        view = _valid_view(view, allowed or {"modal"})
        view_id = "V" + uuid.uuid4().hex[:10].upper()
        stored = StoredView(
            id=view_id, type=view["type"], user_id=user_id, view=view, hash=_view_hash(), root_view_id=view_id
        )
        self.workspace.views[view_id] = stored
        return self.view_body(stored)

    def store_pushed_view(self, view: dict[str, Any], *, previous: StoredView) -> StoredView:
        """A modal stacked on ``previous`` by a ``response_action: push`` answer."""
        body = self._store_view(view, user_id=previous.user_id)
        stored = self.workspace.views[body["id"]]
        stored.root_view_id, stored.previous_view_id = previous.root_view_id, previous.id
        return stored

    def _find_view(self, args: dict[str, Any]) -> StoredView:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        for stored in self.workspace.views.values():
            if stored.id == view_id or (external_id and stored.view.get("external_id") == external_id):
                return stored
        raise ApiError("not_found")

    def view_body(self, stored: StoredView) -> dict[str, Any]:
        return stored.to_api(self.identity.team_id, self.identity.app_id, self.identity.bot_id)


def _rejected(rejection: Rejection) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"Retry-After": str(rejection.retry_after)} if rejection.retry_after is not None else {}
    return rejection.status, {"ok": False, "error": rejection.error}, headers


def _check(invalid: Invalid | None) -> None:
    if invalid is not None:
        raise ApiError.of(invalid)


def _valid_view(view: Any, allowed: set[str]) -> dict[str, Any]:
    _check(validate_view(view, allowed_types=allowed))
    if not isinstance(view, dict):
        raise ApiError("invalid_arguments")
    return view


def _required(args: dict[str, Any], key: str, error: str) -> str:
    value = args.get(key)
    if value is None or value == "":
        raise ApiError(error)
    return str(value)


def _flag(value: Any) -> bool:
    """A boolean argument as Slack reads it from JSON (``true``) or a form (``"true"``, ``"1"``)."""
    return value is True or str(value).lower() in ("true", "1")


def _view_hash() -> str:
    return f"{time.time():.6f}.{uuid.uuid4().hex[:8]}"
