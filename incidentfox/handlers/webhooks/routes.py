"""The webhook routes of the one aiohttp app (design §5): body in, ``WebhookAnswer`` out.

The edge middleware already answers 413 over 1 MiB and turns ``UserFacingError`` (400 malformed,
401 unsigned) into JSON; these handlers only read the raw body, which the signature covers byte for
byte, and hand it to the source's receiver. Each names its source (``ACK_SOURCE``), so the middleware
records a 2xx answer as that source's ack.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from incidentfox.bot.http_json import json_response
from incidentfox.bot.metrics import ACK_SOURCE
from incidentfox.errors import PayloadTooLarge
from incidentfox.handlers.webhooks.github import GitHubWebhook
from incidentfox.handlers.webhooks.incidentio import IncidentIoWebhook
from incidentfox.handlers.webhooks.pagerduty import PagerDutyWebhook
from incidentfox.handlers.webhooks.receipt import WebhookAnswer


@dataclass(frozen=True, slots=True)
class WebhookReceivers:
    pagerduty: PagerDutyWebhook
    github: GitHubWebhook
    incidentio: IncidentIoWebhook


WEBHOOKS = web.AppKey("webhooks", WebhookReceivers)


async def _raw_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge("request body is larger than 1 MiB") from exc


def _respond(answer: WebhookAnswer) -> web.Response:
    if answer.status == 204:
        return web.Response(status=204)
    return json_response(dict(answer.body), status=answer.status)


async def pagerduty_webhook(request: web.Request) -> web.Response:
    request[ACK_SOURCE] = "pagerduty"
    receivers = request.app[WEBHOOKS]
    return _respond(await receivers.pagerduty.receive(await _raw_body(request), request.headers))


async def incidentio_webhook(request: web.Request) -> web.Response:
    request[ACK_SOURCE] = "incidentio"
    receivers = request.app[WEBHOOKS]
    org, team = request.match_info["org"], request.match_info["team"]
    return _respond(await receivers.incidentio.receive(org, team, await _raw_body(request), request.headers))


async def github_webhook(request: web.Request) -> web.Response:
    request[ACK_SOURCE] = "github"
    receivers = request.app[WEBHOOKS]
    return _respond(await receivers.github.receive(await _raw_body(request), request.headers))


def add_routes(app: web.Application, receivers: WebhookReceivers) -> None:
    app[WEBHOOKS] = receivers
    app.router.add_post("/webhooks/pagerduty", pagerduty_webhook)
    app.router.add_post("/webhooks/github", github_webhook)
    app.router.add_post("/webhooks/incidentio/{org}/{team}", incidentio_webhook)
