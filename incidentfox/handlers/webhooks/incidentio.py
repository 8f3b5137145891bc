"""``POST /webhooks/incidentio/{org}/{team}``: incident.io webhooks into the one pipeline.

incident.io sends one endpoint per team, so the URL names the team. The delivery is verified with
the Standard Webhooks signature (``webhook-id``, ``webhook-timestamp`` within five minutes,
``webhook-signature`` with any one of several ``v1,`` values matching) and the team's
``integrations.incidentio.webhook_secret``, else ``INCIDENTIO_WEBHOOK_SECRET``. ``webhook-id`` is the
same on every retry, so it is the dedupe key. A new incident opens an investigated thread like a
PagerDuty page; updates post a line and refresh the root message.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from incidentfox.agents.incidents.store import IncidentEvent
from incidentfox.agents.toolsets.base import lookup_dotted
from incidentfox.config.permissions import Principal
from incidentfox.config.routing import RouteTarget
from incidentfox.config.service import ConfigService
from incidentfox.db.engine import SessionFactory
from incidentfox.errors import NotFound
from incidentfox.handlers.trigger import RoutingKey
from incidentfox.handlers.webhooks.incident_intake import IncidentIntake
from incidentfox.handlers.webhooks.incidentio_events import (
    CREATED,
    HANDLED,
    Webhook,
    incident_key,
    line_of,
    question_of,
    state_of,
)
from incidentfox.handlers.webhooks.receipt import (
    IGNORED,
    WebhookAnswer,
    audit_unrouted,
    parse_payload,
    refuse_unsigned,
)
from incidentfox.handlers.webhooks.signatures import standard_webhook_signed

SENDER = "incidentio"
SYSTEM = Principal(kind="admin")
"""IncidentFox itself reading which team a URL names (no user is acting)."""


class IncidentIoWebhook:
    def __init__(
        self,
        *,
        config: ConfigService,
        intake: IncidentIntake,
        sessions: SessionFactory,
        installation_secret: str | None,
    ) -> None:
        self._config = config
        self._intake = intake
        self._sessions = sessions
        self._installation_secret = installation_secret or ""

    async def receive(
        self, org_id: str, team_id: str, raw: bytes, headers: Mapping[str, str]
    ) -> WebhookAnswer:
        webhook = parse_payload(raw, Webhook, "incident.io")
        change = webhook.change
        if webhook.event_type not in HANDLED or change is None:
            return IGNORED
        target = await self._team(org_id, team_id)
        config = await self._config.effective_config_shared(org_id, team_id) if target else {}
        secret = lookup_dotted(config, "integrations.incidentio.webhook_secret")
        lowered = {name.lower(): value for name, value in headers.items()}
        if not standard_webhook_signed(raw, lowered, str(secret or self._installation_secret)):
            raise refuse_unsigned(SENDER)
        message_id = lowered["webhook-id"]
        delivery_id = f"incidentio:{message_id}"
        if target is None:
            what = f"incident.io endpoint for {org_id}/{team_id} (incident {change.incident.id})"
            await audit_unrouted(self._sessions, sender=SENDER, what=what, delivery_id=delivery_id)
            return WebhookAnswer(202, {"outcome": "unrouted"})
        event = IncidentEvent(
            incident_key=incident_key(org_id, change.incident.id),
            source=SENDER,
            org_id=org_id,
            team_node_id=team_id,
            event_id=message_id,
            occurred_at=_sent_at(lowered.get("webhook-timestamp")),
            state=state_of(change),
            line=None if webhook.event_type == CREATED else line_of(webhook.event_type, change),
        )
        if webhook.event_type != CREATED:
            return await self._intake.update(event)
        return await self._intake.open(
            event,
            config=config,
            routing_key=RoutingKey(team=(org_id, team_id)),
            question=question_of(change),
            delivery_id=delivery_id,
            incident_id=change.incident.id,
        )

    async def _team(self, org_id: str, team_id: str) -> RouteTarget | None:
        """The team the URL names, if it exists and is a team."""
        try:
            node = await self._config.get_node(SYSTEM, org_id, team_id)
        except NotFound:
            return None
        return RouteTarget(org_id, team_id) if node.get("kind") == "team" else None


def _sent_at(timestamp: str | None) -> datetime:
    try:
        return datetime.fromtimestamp(int(timestamp or ""), UTC)
    except ValueError:
        return datetime.now(UTC)
