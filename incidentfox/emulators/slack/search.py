"""Reading a workspace's history as slack.com answers it: ``search.messages`` for user tokens,
``conversations.history`` and ``conversations.replies`` with their windows and cursors, permalinks,
and the user tokens (``xoxp-…``) that may search.

``search.messages`` takes Slack's query syntax: words (all must match, case-insensitive), "quoted
phrases", ``in:#name`` / ``in:<#C…>`` / ``in:C…``, ``from:@name`` / ``from:<@U…>`` / ``from:U…``,
``after:``, ``before:`` and ``on:`` with ``YYYY-MM-DD`` dates (UTC; ``after`` and ``before`` exclude
the day named, as Slack does). Its answer has Slack's documented shape: ``query`` and
``messages: {total, matches, paging, pagination}``. Only user tokens may call it: a bot token is
answered ``not_allowed_token_type`` and a user token without ``search:read`` ``missing_scope``, as
Slack does. History methods answer ``not_in_channel`` to the bot token in a channel registered with
``is_member: false``. Cursors are Slack's ``next_ts:`` form, base64-encoded.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Any

from incidentfox.emulators.slack.directory import default_channel
from incidentfox.emulators.slack.store import StoredMessage, UserToken, Workspace

WORKSPACE_URL = "https://incidentfox-test.slack.com/"
USER_SCOPES = ("search:read", "channels:history", "groups:history", "channels:read", "users:read")
"""The scopes an emulated user token has unless a test asks for fewer."""
NEEDED_SCOPES = {
    "search.messages": "search:read",
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
}
USER_TOKEN_ONLY = frozenset({"search.messages"})
MEMBER_ONLY = frozenset({"conversations.history", "conversations.replies"})
SEARCH_MAX_COUNT = 100
SEARCH_MAX_PAGE = 100
HISTORY_MAX_LIMIT = 999

CALLER: ContextVar[str | None] = ContextVar("slack_emulator_caller", default=None)
"""The token of the Web API call being answered (set per request by ``WebApi``)."""

_TERM = re.compile(r'(\w+):("[^"]*"|\S+)|"([^"]*)"|(\S+)')


class Refused(Exception):
    """A Slack ``{"ok": false, "error": ...}`` answer raised outside ``WebApi``."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []


def issue_user_token(workspace: Workspace, user: str, scopes: tuple[str, ...] = USER_SCOPES) -> str:
    """A user token (``xoxp-…``) acting as ``user`` with ``scopes``."""
    token = f"xoxp-emulator-{secrets.token_hex(12)}"
    workspace.user_tokens[token] = UserToken(user=user, scopes=tuple(scopes))
    return token


def access_error(
    workspace: Workspace, method: str, args: dict[str, Any], token: str | None, *, bot_token: str
) -> dict[str, Any] | None:
    """Slack's refusal of a token for ``method`` (``{"ok": false, ...}``), or ``None`` when it may call it."""
    user = workspace.user_tokens.get(token or "")
    if method in USER_TOKEN_ONLY and user is None:
        return {"ok": False, "error": "not_allowed_token_type"}
    needed = NEEDED_SCOPES.get(method)
    if user is not None and needed is not None and needed not in user.scopes:
        return {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(user.scopes)}
    channel = workspace.channels.get(str(args.get("channel") or ""))
    if token == bot_token and method in MEMBER_ONLY and channel is not None and not channel.get("is_member"):
        return {"ok": False, "error": "not_in_channel"}
    return None


def scope_headers(workspace: Workspace, token: str | None) -> dict[str, str]:
    """``X-OAuth-Scopes`` as Slack sends it with every answer to a user token."""
    user = workspace.user_tokens.get(token or "")
    return {"X-OAuth-Scopes": ",".join(user.scopes)} if user is not None else {}


def calling_user(workspace: Workspace) -> str | None:
    """The user behind the current call's token, when it is a user token."""
    found = workspace.user_tokens.get(CALLER.get() or "")
    return found.user if found is not None else None


def permalink(channel: str, ts: str, thread_ts: str | None = None) -> str:
    """Slack's permalink form; a reply's carries its thread (``?thread_ts=…&cid=…``)."""
    link = f"{WORKSPACE_URL}archives/{channel}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel}"
    return link


def history(workspace: Workspace, channel: str, args: dict[str, Any], team_id: str) -> dict[str, Any]:
    """``conversations.history``: top-level messages newest first within ``oldest``/``latest``."""
    top = [m for m in workspace.channel_messages(channel) if m.thread_ts in (None, m.ts)]
    found = list(reversed(_in_window(top, args)))
    page, more, cursor = _page(found, args, default_limit=100)
    shown = [_with_replies(workspace, m, team_id, args) for m in page]
    return {"messages": shown, "has_more": more, "response_metadata": {"next_cursor": cursor}}


def replies(
    workspace: Workspace, channel: str, ts: str, args: dict[str, Any], team_id: str
) -> dict[str, Any]:
    """``conversations.replies``: the parent, then its replies oldest first within the window."""
    thread = workspace.channel_messages(channel, thread_ts=ts)
    if not thread:
        raise Refused("thread_not_found")
    parent, rest = thread[0], _in_window(thread[1:], args)
    page, more, cursor = _page([parent, *rest], args, default_limit=1000)
    shown = [_with_replies(workspace, m, team_id, args) for m in page]
    return {"messages": shown, "has_more": more, "response_metadata": {"next_cursor": cursor}}


def search_messages(workspace: Workspace, args: dict[str, Any], team_id: str) -> dict[str, Any]:
    """``search.messages`` over every channel's messages and replies (see the module docstring)."""
    query = str(args.get("query") or "").strip()
    if not query:
        raise Refused("invalid_arguments", ["[ERROR] missing required field: query"])
    count = min(max(_int(args.get("count"), 20), 1), SEARCH_MAX_COUNT)
    page = min(max(_int(args.get("page"), 1), 1), SEARCH_MAX_PAGE)
    matcher = _Query(query, workspace)
    found = [m for items in workspace.messages.values() for m in items if matcher.matches(m)]
    newest_first = str(args.get("sort_dir") or "desc").lower() != "asc"
    if str(args.get("sort") or "score") == "timestamp":
        found.sort(key=lambda m: float(m.ts), reverse=newest_first)
    else:
        found.sort(key=lambda m: (matcher.score(m), float(m.ts)), reverse=True)
    total = len(found)
    pages = max(1, -(-total // count))
    shown = found[(page - 1) * count : page * count]
    first = (page - 1) * count + 1 if shown else 0
    return {
        "query": query,
        "messages": {
            "total": total,
            "matches": [_match(workspace, m, team_id) for m in shown],
            "paging": {"count": count, "total": total, "page": page, "pages": pages},
            "pagination": {
                "total_count": total,
                "page": page,
                "per_page": count,
                "page_count": pages,
                "first": first,
                "last": first + len(shown) - 1 if shown else 0,
            },
        },
    }


def _match(workspace: Workspace, message: StoredMessage, team_id: str) -> dict[str, Any]:
    known = workspace.channels.get(message.channel) or default_channel(message.channel)
    user = workspace.users.get(message.user) or {}
    body: dict[str, Any] = {
        "iid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{message.channel}/{message.ts}")),
        "team": team_id,
        "channel": {
            "id": message.channel,
            "name": known.get("name", message.channel.lower()),
            "is_channel": bool(known.get("is_channel")),
            "is_group": bool(known.get("is_group")),
            "is_im": bool(known.get("is_im")),
            "is_mpim": False,
            "is_private": bool(known.get("is_private")),
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
        },
        "type": "message",
        "user": message.user,
        "username": str(user.get("name") or message.user.lower()),
        "ts": message.ts,
        "text": message.text,
        "permalink": permalink(message.channel, message.ts, message.thread_ts),
    }
    if message.blocks:
        body["blocks"] = message.blocks
    return body


def _with_replies(
    workspace: Workspace, message: StoredMessage, team_id: str, args: dict[str, Any]
) -> dict[str, Any]:
    """The message as history shows it: a thread's parent carries ``reply_count``, ``reply_users``
    and ``latest_reply``, as on slack.com."""
    with_metadata = args.get("include_all_metadata") is True or str(
        args.get("include_all_metadata")
    ).lower() in ("true", "1")
    body = message.to_api(team_id, with_metadata=with_metadata)
    if message.thread_ts in (None, message.ts):
        thread = workspace.channel_messages(message.channel, thread_ts=message.ts)[1:]
        if thread:
            body["thread_ts"] = message.ts
            body["reply_count"] = len(thread)
            body["reply_users"] = list(dict.fromkeys(m.user for m in thread))
            body["reply_users_count"] = len(body["reply_users"])
            body["latest_reply"] = thread[-1].ts
    return body


def _in_window(messages: list[StoredMessage], args: dict[str, Any]) -> list[StoredMessage]:
    inclusive = str(args.get("inclusive") or "").lower() in ("true", "1")
    oldest = _float(args.get("oldest"), 0.0)
    latest = _float(args.get("latest"), float("inf"))

    def inside(ts: float) -> bool:
        if inclusive:
            return oldest <= ts <= latest
        return oldest < ts < latest

    return [m for m in messages if inside(float(m.ts))]


def _page(
    messages: list[StoredMessage], args: dict[str, Any], *, default_limit: int
) -> tuple[list[StoredMessage], bool, str]:
    """One page from ``cursor`` (``next_ts:`` of the first message to show) of at most ``limit``."""
    limit = min(max(_int(args.get("limit"), default_limit), 1), max(default_limit, HISTORY_MAX_LIMIT))
    start = 0
    cursor = str(args.get("cursor") or "")
    if cursor:
        try:
            after = base64.b64decode(cursor, validate=True).decode().removeprefix("next_ts:")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Refused("invalid_cursor") from exc
        starts = [i for i, m in enumerate(messages) if m.ts == after]
        if not starts:
            raise Refused("invalid_cursor")
        start = starts[0]
    page = messages[start : start + limit]
    rest = messages[start + limit :]
    cursor_out = base64.b64encode(f"next_ts:{rest[0].ts}".encode()).decode() if rest else ""
    return page, bool(rest), cursor_out


class _Query:
    """A parsed search query: words and phrases, channels, authors and a day window."""

    def __init__(self, query: str, workspace: Workspace) -> None:
        self.workspace = workspace
        self.terms: list[str] = []
        self.channels: set[str] = set()
        self.users: set[str] = set()
        self.after: float = float("-inf")
        self.before: float = float("inf")
        for modifier, value, phrase, word in _TERM.findall(query):
            if modifier and self._modifier(modifier.lower(), value.strip('"')):
                continue
            text = phrase or word or f"{modifier}:{value}"
            if text.strip():
                self.terms.append(text.strip().lower())

    def _modifier(self, name: str, value: str) -> bool:
        if name == "in":
            self.channels.add(self._channel(value))
        elif name == "from":
            self.users.add(self._user(value))
        elif name in ("after", "before", "on"):
            day = _day(value)
            if day is None:
                return False
            start = datetime.combine(day, datetime.min.time(), UTC).timestamp()
            if name == "after":
                self.after = max(self.after, start + 86400)
            elif name == "before":
                self.before = min(self.before, start)
            else:
                self.after, self.before = max(self.after, start), min(self.before, start + 86400)
        else:
            return False
        return True

    def _channel(self, value: str) -> str:
        inner = value.removeprefix("<#").removesuffix(">").split("|")[0].removeprefix("#")
        for channel_id, channel in self.workspace.channels.items():
            if inner in (channel_id, channel.get("name")):
                return channel_id
        return inner.upper() if re.fullmatch(r"[CGD][A-Za-z0-9]+", inner) else f"#{inner}"

    def _user(self, value: str) -> str:
        inner = value.removeprefix("<@").removesuffix(">").split("|")[0].removeprefix("@")
        for user_id, user in self.workspace.users.items():
            if inner in (user_id, user.get("name")):
                return user_id
        return inner.upper() if re.fullmatch(r"[UW][A-Za-z0-9]+", inner) else f"@{inner}"

    def matches(self, message: StoredMessage) -> bool:
        if self.channels and message.channel not in self.channels:
            return False
        if self.users and message.user not in self.users:
            return False
        if not self.after <= float(message.ts) < self.before:
            return False
        text = message.text.lower()
        return all(term in text for term in self.terms)

    def score(self, message: StoredMessage) -> int:
        text = message.text.lower()
        return sum(text.count(term) for term in self.terms)


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _int(raw: Any, default: int) -> int:
    try:
        return int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _float(raw: Any, default: float) -> float:
    try:
        return float(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        return default
