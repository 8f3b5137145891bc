"""The one aiohttp app (design §5): middleware for size limits, errors and metrics, and every route."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

from incidentfox.agents.runs import views as run_views
from incidentfox.agents.stream_queue import StreamRunQueue
from incidentfox.bot.health import RUNTIME, healthz, readyz
from incidentfox.bot.http_json import json_response
from incidentfox.bot.metrics import ACK_SOURCE, HttpMetrics
from incidentfox.bot.runtime import Runtime
from incidentfox.bot.settings import Settings
from incidentfox.bot.slack_app import SLACK, SlackSurface, slack_events
from incidentfox.config import views as config_views
from incidentfox.errors import PayloadTooLarge, UserFacingError
from incidentfox.handlers.webhooks.routes import WebhookReceivers
from incidentfox.handlers.webhooks.routes import add_routes as add_webhook_routes
from incidentfox.knowledge import views as knowledge_views
from incidentfox.observability.metrics import PROCESS_METRICS
from incidentfox.web.local_workspace import LocalWorkspace
from incidentfox.web.pages import PageAccess, add_page_routes, console_bootstrap

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def edge_middleware(metrics: HttpMetrics) -> Middleware:
    """The one middleware every request passes: the 1 MiB limit, errors as JSON, and metrics.

    One layer instead of three keeps the Slack ack path short. User-facing errors keep their status
    and message; anything unexpected becomes a 500 with an error id, and the trace goes to the log.
    A route that acknowledges a delivery names its source (``ACK_SOURCE``); a 2xx answer to it is
    also that source's ack (refusals are in the HTTP metrics only).
    """

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        response = await _answer(request, handler)
        elapsed = time.perf_counter() - started
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics.observe(route, request.method, response.status, elapsed)
        source = request.get(ACK_SOURCE)
        if source is not None and 200 <= response.status < 300:
            PROCESS_METRICS.ack(source, elapsed)
        return response

    return edge


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise PayloadTooLarge("request body is larger than 1 MiB")
        return await handler(request)
    except UserFacingError as exc:
        _log_refusal(request, exc.status, exc.code)
        return json_response(exc.to_json(), status=exc.status)
    except web.HTTPRequestEntityTooLarge:
        _log_refusal(request, 413, PayloadTooLarge.code)
        return json_response(PayloadTooLarge("request body is larger than 1 MiB").to_json(), status=413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_response(
            {"error": exc.reason.lower().replace(" ", "_"), "message": exc.reason},
            status=exc.status,
            headers={k: v for k, v in exc.headers.items() if k == "Allow"},
        )
    except Exception:
        incident = secrets.token_hex(4)
        log.exception("unhandled error id=%s method=%s path=%s", incident, request.method, request.path)
        return json_response(
            {"error": "internal_error", "message": f"something went wrong on our side (error id {incident})"},
            status=500,
        )


def _log_refusal(request: web.Request, status: int, code: str) -> None:
    """One line per refused request, without the body or a trace: the client's mistake, not ours."""
    log.info(
        "request refused status=%s code=%s method=%s path=%s", status, code, request.method, request.path
    )


class MalformedHttpFilter(logging.Filter):
    """aiohttp logs a request it cannot even parse (a NUL in a header, a broken chunk) with a full
    traceback, though it answers 400 itself. Keep one plain line: the client's mistake, not ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= (error.code or 400) < 500:
            first_line = str(error.message).splitlines()[0][:120] if error.message else ""
            record.msg = "malformed HTTP request refused status=%s from %s: %s"
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.args = (error.code, remote, first_line)
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_malformed_http() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedHttpFilter) for f in server_log.filters):
        server_log.addFilter(MalformedHttpFilter())


def create_app(
    runtime: Runtime,
    slack: SlackSurface | None = None,
    webhooks: WebhookReceivers | None = None,
    *,
    settings: Settings | None = None,
    local: LocalWorkspace | None = None,
) -> web.Application:
    """Every route. ``local`` serves the local workspace at ``/``; otherwise, given ``settings``, ``/``
    serves the config console, which then asks for the admin token."""
    _quiet_malformed_http()
    metrics = HttpMetrics()
    if isinstance(runtime.queue, StreamRunQueue):
        metrics.queue_depths = runtime.queue.depths
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[edge_middleware(metrics)])
    app[RUNTIME] = runtime
    app[config_views.CONFIG_SERVICE] = runtime.config
    app[config_views.TOKEN_SERVICE] = runtime.tokens
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics.handler)
    config_views.add_routes(app)
    run_views.add_routes(app)
    knowledge_views.add_routes(app, runtime.knowledge)
    if slack is not None:
        app[SLACK] = slack
        app.router.add_post("/slack/events", slack_events)
    if webhooks is not None:
        add_webhook_routes(app, webhooks)
    if local is not None:
        local.add_routes(app)
    elif settings is not None:
        access = PageAccess(settings, embedded=False)
        add_page_routes(app, access, lambda: console_bootstrap(access))
    return app
