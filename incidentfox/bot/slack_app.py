"""The Slack surface: a Bolt ``AsyncApp`` served at ``POST /slack/events`` and, when
``SLACK_APP_TOKEN`` is set, over Socket Mode with the same listeners."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
    async_default_handlers,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.approvals.service import ApprovalService
from incidentfox.agents.run_control import RunControl
from incidentfox.agents.runs.service import RunStore
from incidentfox.agents.specialists import all_toolsets
from incidentfox.agents.toolsets.health import IntegrationHealth
from incidentfox.bot.metrics import ACK_SOURCE
from incidentfox.bot.settings import Settings
from incidentfox.bot.slack_auth import BotTokenAuthorization, RequireAuthorization
from incidentfox.bot.strict_json import MalformedJson
from incidentfox.config.service import ConfigService
from incidentfox.handlers.pipeline import TriggerPipeline
from incidentfox.handlers.slack.access import SlackAccess
from incidentfox.handlers.slack.actions import register_run_actions
from incidentfox.handlers.slack.approvals import register_approval_actions
from incidentfox.handlers.slack.commands import SlashCommands, register_commands
from incidentfox.handlers.slack.home import register_home
from incidentfox.handlers.slack.home_flows import HomeFlows
from incidentfox.handlers.slack.listeners import ListeningThreads, register_investigation_listeners
from incidentfox.handlers.slack.modals import register_setup_modal
from incidentfox.handlers.slack.notices import SlackNotices
from incidentfox.handlers.slack.overview import TeamOverviews
from incidentfox.handlers.slack.request_body import parse_slack_body
from incidentfox.handlers.slack.setup import SetupFlow
from incidentfox.observability.metrics import PROCESS_METRICS
from incidentfox.observability.slack_calls import SlackCallMeter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SlackSurface:
    app: AsyncApp
    client: AsyncWebClient
    notices: SlackNotices
    verifier: SignatureVerifier | None
    commands: SlashCommands | None = None
    home: HomeFlows | None = None
    authorization: BotTokenAuthorization | None = None
    """Bolt's cached ``auth.test``; ``IncidentFox.start`` warms it."""


SLACK = web.AppKey("slack", SlackSurface)


def slack_client(
    settings: Settings, *, session: aiohttp.ClientSession | None = None, retry_throttled: bool = False
) -> AsyncWebClient | None:
    """The bot's Web API client. ``retry_throttled`` adds slack_sdk's retry handlers for 429 (honouring
    Retry-After) and 5xx: right for one-off posts, wrong for live edits, which ``SlackProgressUpdater``
    paces itself. Pass the process's shared ``session``: without one, slack_sdk opens a new HTTP
    session (and connection) for every call. Every client counts its calls (``SlackCallMeter``)."""
    if settings.slack_bot_token is None:
        return None
    handlers: list[AsyncRetryHandler] = [SlackCallMeter()]
    if retry_throttled:
        handlers += [
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ]
    else:
        handlers += async_default_handlers()
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        retry_handlers=handlers,
        session=session,
    )


BOLT_TOKEN_NOTICES = (
    "As you gave `client` as well, `token` will be unused",
    "As `installation_store` or `authorize` has been used, `token`",
)
"""Bolt reads ``SLACK_BOT_TOKEN`` from the environment by itself and warns, at every start, that our
client and authorize function take precedence: they are meant to, so these two lines say nothing."""


class _WithoutTokenNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(BOLT_TOKEN_NOTICES)


def bolt_logger() -> logging.Logger:
    logger = logging.getLogger("incidentfox.slack")
    if not any(isinstance(f, _WithoutTokenNotices) for f in logger.filters):
        logger.addFilter(_WithoutTokenNotices())
    return logger


def build_slack_surface(
    settings: Settings,
    client: AsyncWebClient,
    *,
    pipeline: TriggerPipeline,
    runs: RunStore,
    control: RunControl | None,
    config: ConfigService,
    approvals: ApprovalService | None = None,
    threads: ListeningThreads | None = None,
) -> SlackSurface:
    """``process_before_response``: the listener persists and enqueues the run before Slack gets its ack."""
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    authorization = BotTokenAuthorization(client)
    app = AsyncApp(
        client=client,
        signing_secret=secret,
        process_before_response=True,
        logger=bolt_logger(),
        authorize=authorization,
        before_authorize=RequireAuthorization(authorization),
    )
    notices = SlackNotices(client)
    register_investigation_listeners(app, pipeline, notices, threads)
    access = SlackAccess(config, client)
    register_run_actions(app, runs=runs, control=control, pipeline=pipeline, notices=notices, access=access)
    if approvals is not None:
        register_approval_actions(app, approvals_service=approvals, access=access, runs=runs, notices=notices)
    setup = SetupFlow(config=config, access=access, client=client)
    register_setup_modal(app, setup=setup, pipeline=pipeline)
    overview = TeamOverviews(
        config=config, runs=runs, health=IntegrationHealth(all_toolsets()), client=client
    )
    home = register_home(app, access=access, config=config, overview=overview, notices=notices)
    commands = SlashCommands(
        pipeline=pipeline,
        access=access,
        setup=setup,
        runs=runs,
        client=client,
        notices=notices,
        config_summary=overview.config_summary,
        sre_agent=settings.anthropic_api_key is not None,
    )
    register_commands(app, commands)
    return SlackSurface(
        app=app,
        client=client,
        notices=notices,
        verifier=SignatureVerifier(secret) if secret else None,
        commands=commands,
        home=home,
        authorization=authorization,
    )


async def slack_events(request: web.Request) -> web.StreamResponse:
    """HTTP mode: the signature is checked on the raw bytes first (401, no detail); only then is the
    body parsed strictly (400 for anything Slack would not send) and handed to Bolt to dispatch."""
    surface = request.app[SLACK]
    if surface.verifier is None or not _has_signature_headers(request):
        return _refused(request, 401, "unsigned")
    raw = await request.read()
    if not _signed(surface.verifier, raw, request):
        return _refused(request, 401, "bad signature")
    try:
        payload = parse_slack_body(raw, request.content_type if "Content-Type" in request.headers else "")
    except MalformedJson as exc:
        return _refused(request, 400, exc.message, body=exc.to_json())
    request[ACK_SOURCE] = ack_source(payload)
    headers: dict[str, str | Sequence[str]] = {key.lower(): value for key, value in request.headers.items()}
    bolt_request = AsyncBoltRequest(body=raw.decode("utf-8"), query=request.query_string, headers=headers)
    response = await surface.app.async_dispatch(bolt_request)
    if response.status == 401:
        return web.Response(status=401)
    return await to_aiohttp_response(response)


def ack_source(payload: dict[str, Any]) -> str:
    """The ack metric's source for an HTTP-mode payload: a slash command's form, an Events API
    envelope (``event_callback``, ``url_verification``), or else interactivity."""
    if "command" in payload:
        return "slack_command"
    if payload.get("type") in ("event_callback", "url_verification", "app_rate_limited"):
        return "slack_event"
    return "slack_action"


SOCKET_ACK_SOURCES = {
    "events_api": "slack_event",
    "slash_commands": "slack_command",
    "interactive": "slack_action",
}
"""A Socket Mode envelope's ``type`` → the ack metric's source."""


class MeteredSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, timing each envelope from the listener's start to the ack sent.

    With ``process_before_response`` the listener runs before the ack, so this is the whole time
    Slack waits; an envelope Bolt did not acknowledge (no listener, an error) is not an ack."""

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started, wall_clock = time.perf_counter(), time.time()
        response = await run_async_bolt_app(self.app, req)
        await send_async_response(client, req, response, wall_clock)
        source = SOCKET_ACK_SOURCES.get(req.type)
        if source is not None and response.status == 200:
            PROCESS_METRICS.ack(source, time.perf_counter() - started)


def _has_signature_headers(request: web.Request) -> bool:
    return "X-Slack-Signature" in request.headers and "X-Slack-Request-Timestamp" in request.headers


def _signed(verifier: SignatureVerifier, raw: bytes, request: web.Request) -> bool:
    """slack_sdk's check; a timestamp that is not a number or a non-ASCII signature is simply invalid."""
    try:
        return verifier.is_valid_request(raw, dict(request.headers))
    except (ValueError, TypeError, OverflowError):
        return False


def _refused(
    request: web.Request, status: int, reason: str, *, body: dict[str, object] | None = None
) -> web.StreamResponse:
    log.info("slack request refused status=%s reason=%r path=%s", status, reason[:200], request.path)
    if body is None:
        return web.Response(status=status)
    return web.json_response(body, status=status)


async def start_socket_mode(surface: SlackSurface, app_token: str) -> AsyncSocketModeHandler:
    """Connect over Socket Mode (must run inside the event loop); returns the handler to close later."""
    handler = MeteredSocketModeHandler(surface.app, app_token=app_token)
    await handler.connect_async()
    return handler
