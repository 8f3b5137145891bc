"""PagerDuty V3 webhooks as PagerDuty sends them: one event per POST, signed over the raw body.

The body is ``{"event": {"id", "event_type", "resource_type", "occurred_at", "agent", "client",
"data"}}``; for incident events ``data`` is the webhook's incident object (id, number, status, title,
service, assignees, escalation policy, teams, priority, urgency, conference bridge…), for
``incident.annotated`` it is an ``incident_note``. Headers: ``Content-Type: application/json``,
``User-Agent: PagerDuty-Webhook/V3.0``, ``X-Webhook-Id`` (the same on every redelivery),
``X-Webhook-Subscription`` and ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>``, which
carries one ``v1=`` value per signing secret, comma-separated, while a secret is being rotated.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from incidentfox.emulators.pagerduty_world import Obj, PagerDutyWorld, reference, render

USER_AGENT = "PagerDuty-Webhook/V3.0"
SIGNATURE_HEADER = "X-PagerDuty-Signature"
DELIVERY_TIMEOUT_S = 5.0
"""PagerDuty gives up on a delivery that has not answered 2xx within 5 seconds."""
INCIDENT_EVENT_TYPES = frozenset(
    {
        "incident.triggered",
        "incident.acknowledged",
        "incident.unacknowledged",
        "incident.resolved",
        "incident.reopened",
        "incident.reassigned",
        "incident.delegated",
        "incident.escalated",
        "incident.priority_updated",
        "incident.annotated",
    }
)


def pagerduty_signature(body: bytes, secret: str) -> str:
    """``v1=`` followed by the hex HMAC-SHA256 of ``body`` keyed with ``secret``."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One signed delivery, ready to POST (and to POST again, byte for byte, as a redelivery)."""

    body: bytes
    headers: dict[str, str]
    event_id: str
    webhook_id: str

    @property
    def payload(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """What the receiver answered: status and body text, and how long it took."""

    url: str
    request: WebhookRequest
    status: int
    text: str
    elapsed_s: float


def _millis(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def incident_event_data(world: PagerDutyWorld, incident_id: str) -> Obj:
    """The ``incident`` data type of V3 webhooks (a subset of the REST incident, ``number`` for
    ``incident_number`` and ``assignees`` for ``assignments``)."""
    incident = world.incidents[incident_id]
    return {
        "id": incident["id"],
        "type": "incident",
        "number": incident["incident_number"],
        "status": incident["status"],
        "incident_key": incident["incident_key"],
        "created_at": incident["created_at"],
        "title": incident["title"],
        "service": dict(incident["service"]),
        "assignees": [dict(a["assignee"]) for a in incident["assignments"]],
        "escalation_policy": dict(incident["escalation_policy"]),
        "teams": [dict(t) for t in incident["teams"]],
        "priority": dict(incident["priority"]) if incident["priority"] else None,
        "urgency": incident["urgency"],
        "conference_bridge": incident["conference_bridge"],
        "resolve_reason": incident["resolve_reason"],
    }


def _note_data(world: PagerDutyWorld, incident_id: str) -> Obj:
    notes = world.notes.get(incident_id) or []
    if not notes:
        raise ValueError(f"incident {incident_id} has no note to announce")
    note = notes[-1]
    return {
        "incident": reference(world.incidents[incident_id]),
        "id": note["id"],
        "content": note["content"],
        "trimmed": False,
        "type": "incident_note",
    }


def _agent(world: PagerDutyWorld, event_type: str, incident: Obj, agent_user_id: str | None) -> Obj | None:
    if agent_user_id is not None:
        return reference(world.users[agent_user_id])
    if event_type == "incident.triggered":
        return dict(incident["service"])
    assignees = [a["assignee"] for a in incident["assignments"]]
    return dict(assignees[0]) if assignees else None


def webhook_event(
    world: PagerDutyWorld,
    event_type: str,
    incident_id: str,
    *,
    api_url: str,
    web_url: str,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    agent_user_id: str | None = None,
    client_name: str = "PagerDuty",
) -> Obj:
    """The payload of one incident event, links pointing at ``api_url`` and ``web_url``."""
    if event_type not in INCIDENT_EVENT_TYPES:
        raise ValueError(f"unsupported event type {event_type!r}; use one of {sorted(INCIDENT_EVENT_TYPES)}")
    incident = world.incidents[incident_id]
    data = (
        _note_data(world, incident_id)
        if event_type == "incident.annotated"
        else incident_event_data(world, incident_id)
    )
    event = {
        "id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": _millis(occurred_at or datetime.now(UTC)),
        "agent": _agent(world, event_type, incident, agent_user_id),
        "client": {"name": client_name},
        "data": data,
    }
    rendered: Obj = render({"event": event}, api_url, web_url)
    return rendered


def signed_request(
    payload: Obj,
    *,
    secret: str | None,
    extra_secrets: Sequence[str] = (),
    extra_signatures: Sequence[str] = (),
    webhook_id: str | None = None,
    subscription_id: str = "PWHSUB1",
) -> WebhookRequest:
    """Serialize ``payload`` once and sign those exact bytes.

    The signature header lists, in order: ``extra_signatures`` verbatim (e.g. a forged
    ``v1=00…``), one ``v1=`` per ``extra_secrets`` (a rotated-out secret), then the one made with
    ``secret``. ``secret=None`` with no extras sends no signature header at all.
    """
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    signatures = [*extra_signatures, *(pagerduty_signature(body, s) for s in extra_secrets)]
    if secret is not None:
        signatures.append(pagerduty_signature(body, secret))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Webhook-Subscription": subscription_id,
    }
    if signatures:
        headers[SIGNATURE_HEADER] = ",".join(signatures)
    event_id = str(payload.get("event", {}).get("id", ""))
    return WebhookRequest(body=body, headers=headers, event_id=event_id, webhook_id=headers["X-Webhook-Id"])


async def post_webhook(
    url: str, request: WebhookRequest, *, timeout_s: float = DELIVERY_TIMEOUT_S
) -> WebhookDelivery:
    """POST the exact bytes of ``request`` to ``url``; a receiver slower than ``timeout_s`` raises
    ``TimeoutError`` (PagerDuty would count that delivery as failed)."""
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, data=request.body, headers=request.headers) as response,
    ):
        text = await response.text()
        return WebhookDelivery(
            url=url,
            request=request,
            status=response.status,
            text=text,
            elapsed_s=time.monotonic() - started,
        )
