"""The connection half of the slack toolset: slack_sdk's ``AsyncWebClient`` over the team's tokens, Slack's
refusals in plain words, and the health check.

``connect`` reads the team's ``integrations.slack``: ``user_token`` (``xoxp-…``, a secret; the only
kind of token Slack lets call ``search.messages``, which needs the ``search:read`` scope),
``bot_token`` (``xoxb-…``; reads ``conversations.history`` and ``conversations.replies`` of channels
the app is in; the installation's bot token when the config service fills it in), ``api_url``
(default ``https://slack.com/api/``), ``channels`` (extra channel ids the team reads beside the ones it
claims in ``routing.slack_channel_ids``), ``timeout_s`` (default 20) and ``enabled: false``. Every
tool reads only those channels. Tokens are sent to ``api_url`` only, which passes the egress policy
when connecting and again whenever a connection is opened; no answer ever carries a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.toolsets.base import ToolsetHealth, lookup_dotted
from incidentfox.agents.toolsets.http_backend import (
    DEFAULT_TIMEOUT_S,
    MAX_TIMEOUT_S,
    EgressCheckedResolver,
    network_cause,
)
from incidentfox.egress import EgressRefused, current_policy

DEFAULT_API_URL = "https://slack.com/api/"
API_URL_SETTING = "integrations.slack.api_url"
SEARCH_SCOPE = "search:read"
TokenKind = Literal["user", "bot"]
_TOKEN_SETTINGS: dict[TokenKind, str] = {
    "user": "integrations.slack.user_token",
    "bot": "integrations.slack.bot_token",
}
_BAD_TOKEN = frozenset({"invalid_auth", "token_revoked", "token_expired", "account_inactive", "not_authed"})


class SlackNotConfigured(Exception):
    """No usable Slack configuration; the message says what to set."""


class SlackError(Exception):
    """A Slack call that failed: one plain sentence, and Slack's ``error`` code when it gave one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def slack_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    settings = lookup_dotted(config, "integrations.slack")
    return settings if isinstance(settings, Mapping) else {}


def slack_configured(config: Mapping[str, Any]) -> bool:
    """Whether ``connect`` has a token to connect with (to decide whether the toolset is offered)."""
    settings = slack_settings(config)
    if settings.get("enabled") is False:
        return False
    return bool(settings.get("user_token") or settings.get("bot_token"))


def team_channels(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The channel ids the team reads: those it claims (``routing.slack_channel_ids``), then
    ``integrations.slack.channels``, upper-cased and without repeats."""
    found: list[str] = []
    for key in ("routing.slack_channel_ids", "integrations.slack.channels"):
        raw = lookup_dotted(config, key)
        if isinstance(raw, list | tuple):
            found += [str(c).strip().upper() for c in raw if isinstance(c, str) and c.strip()]
    return tuple(dict.fromkeys(found))


@dataclass(slots=True)
class SlackClient:
    """The per-run connection: who reads history (``reader``) and who may search (``searcher``, only
    with a user token), the team's channels, and what was learnt of the workspace on the way."""

    session: aiohttp.ClientSession
    reader: AsyncWebClient
    reader_kind: TokenKind
    searcher: AsyncWebClient | None
    channels: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)
    """Channel names by id (``conversations.info``), filled as they are needed."""
    users: dict[str, str] = field(default_factory=dict)
    """User names by id (``users.info``), filled as they are needed."""
    identity: dict[str, Any] | None = None
    """``auth.test`` of the reader: the workspace ``url``, and the bot's ``user_id`` for a bot token."""

    async def call(self, method: str, doing: str, *, search: bool = False, **args: Any) -> dict[str, Any]:
        """Slack's answer to ``method`` (``conversations.history``) as a dict; raises ``SlackError``
        whose message says what went wrong while trying to ``doing``."""
        web, kind = self.reader, self.reader_kind
        if search and self.searcher is not None:
            web, kind = self.searcher, "user"
        try:
            response = await web.api_call(method, http_verb="GET", params=_query(args))
        except SlackApiError as exc:
            raise SlackError(describe_refusal(exc, kind, doing, args.get("channel")), _code(exc)) from exc
        except EgressRefused as exc:
            raise SlackError(f"Refused to {doing}: {exc}") from exc
        except TimeoutError as exc:
            raise SlackError(
                f"Slack did not answer within {web.timeout} s when asked to {doing}; try again, or raise "
                "integrations.slack.timeout_s."
            ) from exc
        except aiohttp.ClientError as exc:
            raise SlackError(f"Slack is unreachable ({network_cause(exc)}); could not {doing}.") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def whoami(self) -> dict[str, Any]:
        """``auth.test`` of the reader, asked once per run."""
        if self.identity is None:
            self.identity = await self.call("auth.test", "check who the token is")
        return self.identity

    async def channel_name(self, channel: str) -> str:
        """``#name`` of a channel (``conversations.info``, cached); the id when Slack will not say."""
        if channel not in self.names:
            try:
                info = await self.call("conversations.info", "look up the channel", channel=channel)
            except SlackError:
                return channel
            name = (info.get("channel") or {}).get("name")
            self.names[channel] = f"#{name}" if name else channel
        return self.names[channel]

    async def user_name(self, user: str) -> str:
        """The user's handle (``users.info`` ``name``, cached); the id when Slack will not say."""
        if user not in self.users:
            try:
                info = await self.call("users.info", "look up the user", user=user)
            except SlackError:
                return user
            self.users[user] = str((info.get("user") or {}).get("name") or user)
        return self.users[user]

    async def close(self) -> None:
        await self.session.close()


def _query(args: Mapping[str, Any]) -> dict[str, str]:
    """Arguments as the query string Slack's read methods take (``true`` for a flag)."""
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in args.items() if v is not None}


def _code(exc: SlackApiError) -> str:
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    return str(data.get("error") or exc.response.status_code)


def describe_refusal(exc: SlackApiError, kind: TokenKind, doing: str, channel: Any = None) -> str:
    """Slack's refusal as one sentence that says what to do; never the token."""
    status = exc.response.status_code
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    error = str(data.get("error") or "")
    setting = _TOKEN_SETTINGS[kind]
    where = f" {channel}" if channel else ""
    if status == 429 or error == "ratelimited":
        wait = _header(exc.response.headers, "Retry-After")
        after = f"in {wait} s" if wait else "in a minute"
        return f"Slack rate-limited the request to {doing} (429 ratelimited); try again {after}."
    if status >= 500:
        return (
            f"Slack answered {status} when asked to {doing}; it may be having trouble, try again in a minute."
        )
    if error in _BAD_TOKEN:
        return f"Slack rejected the {kind} token ({error}) when asked to {doing}: replace {setting}."
    if error == "missing_scope":
        needed = data.get("needed") or "a scope"
        return (
            f"The Slack {kind} token lacks the {needed} scope needed to {doing} (missing_scope): add it to "
            "the Slack app, reinstall it and update " + setting + "."
        )
    if error == "not_allowed_token_type":
        return (
            f"Slack does not let a {kind} token {doing} (not_allowed_token_type): set "
            "integrations.slack.user_token to a user token (xoxp-…) with search:read."
        )
    if error == "not_in_channel":
        return (
            f"The IncidentFox app is not a member of channel{where} (not_in_channel), so it cannot {doing}: "
            "invite it with /invite @IncidentFox there."
        )
    if error == "channel_not_found":
        return (
            f"Slack found no channel{where} (channel_not_found) when asked to {doing}: it was deleted, or "
            f"the {kind} token cannot see it (a private channel the app is not in)."
        )
    if error in ("thread_not_found", "message_not_found"):
        return f"Slack found no such message in channel{where} ({error}) when asked to {doing}."
    return f"Slack refused to {doing} ({error or status})."


def _header(headers: Any, name: str) -> str | None:
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():
        if str(key).lower() == name.lower():
            text = str(value[0] if isinstance(value, list | tuple) and value else value)
            return text or None
    return None


def _token(settings: Mapping[str, Any], key: str, prefixes: tuple[str, ...], kind: str) -> str | None:
    raw = settings.get(key)
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or not raw.strip().startswith(prefixes):
        raise SlackNotConfigured(f"integrations.slack.{key} must be a Slack {kind} token ({prefixes[0]}…).")
    return raw.strip()


def _timeout(settings: Mapping[str, Any]) -> float:
    raw = settings.get("timeout_s")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise SlackNotConfigured("integrations.slack.timeout_s must be a positive number of seconds.")
    return min(float(raw), MAX_TIMEOUT_S)


async def _api_url(settings: Mapping[str, Any]) -> str:
    raw = settings.get("api_url") or DEFAULT_API_URL
    if not isinstance(raw, str) or not raw.strip().startswith(("http://", "https://")):
        raise SlackNotConfigured(f"{API_URL_SETTING} must be an http:// or https:// URL.")
    url = raw.strip().rstrip("/") + "/"
    try:
        await current_policy().check_url(url, setting=API_URL_SETTING)
    except EgressRefused as exc:
        raise SlackNotConfigured(f"Refused to connect: {exc}") from exc
    return url


async def connect(config: Mapping[str, Any], *, timeout_s: float | None = None) -> SlackClient:
    """Build the run's client from the team's effective config (see the module docstring).

    Raises ``SlackNotConfigured`` in plain words when Slack is off, no token is set, a token is of
    the wrong kind, the team has no channels or the egress policy refuses ``api_url``. No request is
    made here.
    """
    settings = slack_settings(config)
    if settings.get("enabled") is False:
        raise SlackNotConfigured("Slack is turned off for this team (integrations.slack.enabled is false).")
    user = _token(settings, "user_token", ("xoxp-", "xoxe.xoxp-"), "user")
    bot = _token(settings, "bot_token", ("xoxb-", "xoxe.xoxb-"), "bot")
    if not user and not bot:
        raise SlackNotConfigured(
            "Slack is not configured for this team: set integrations.slack.user_token (xoxp-…, with "
            "search:read) or integrations.slack.bot_token."
        )
    channels = team_channels(config)
    if not channels:
        raise SlackNotConfigured(
            "This team has no Slack channels to read: claim them in routing.slack_channel_ids or list "
            "them in integrations.slack.channels."
        )
    url = await _api_url(settings)
    total = timeout_s if timeout_s is not None else _timeout(settings)
    policy = current_policy()
    resolver = EgressCheckedResolver(private_allowed=await policy.private_allowed(), setting=API_URL_SETTING)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=resolver, limit=8),
        timeout=aiohttp.ClientTimeout(total=total, sock_connect=min(total, 5.0)),
    )

    def web(token: str) -> AsyncWebClient:
        return AsyncWebClient(
            token=token, base_url=url, timeout=int(max(total, 1)), session=session, retry_handlers=[]
        )

    reader_kind: TokenKind = "bot" if bot else "user"
    return SlackClient(
        session=session,
        reader=web(bot or user or ""),
        reader_kind=reader_kind,
        searcher=web(user) if user else None,
        channels=channels,
    )


async def check_health(config: Mapping[str, Any], *, timeout_s: float) -> ToolsetHealth:
    """``auth.test`` with each token set; a user token must also carry ``search:read``."""
    if not slack_configured(config):
        return ToolsetHealth(configured=False, reason="no Slack token is set")
    try:
        client = await connect(config, timeout_s=timeout_s)
    except SlackNotConfigured as exc:
        return ToolsetHealth.failing(str(exc))
    try:
        await client.whoami()
        if client.searcher is not None:
            response = await client.searcher.api_call("auth.test", http_verb="GET")
            scopes = _header(response.headers, "X-OAuth-Scopes")
            if scopes is not None and SEARCH_SCOPE not in [s.strip() for s in scopes.split(",")]:
                return ToolsetHealth.failing(
                    "The Slack user token lacks the search:read scope, so Slack search is unavailable: add "
                    "it to the Slack app, reinstall it and update integrations.slack.user_token."
                )
    except SlackApiError as exc:
        return ToolsetHealth.failing(describe_refusal(exc, "user", "check who the token is"))
    except SlackError as exc:
        return ToolsetHealth.failing(str(exc))
    except (aiohttp.ClientError, TimeoutError) as exc:
        return ToolsetHealth.failing(f"Slack is unreachable ({network_cause(exc)}).")
    finally:
        await client.close()
    return ToolsetHealth.ok()
