"""``POST /webhooks/pagerduty``: PagerDuty V3 webhooks into the one pipeline.

- ``incident.triggered`` becomes a ``Trigger`` whose run posts the incident's root message in the
  team's channel and investigates in its thread (``agents/incidents/threads.py``).
- The other incident events update the incident's row: the root message shows the newest state and
  the thread gets one line per event (``IncidentNotifier``), however late or out of order they come.

Routing reads the unverified body (the service, or the incident's thread for a note) only to find
the team whose ``integrations.pagerduty.webhook_secret`` signs it (else ``PAGERDUTY_WEBHOOK_SECRET``);
nothing is written before the signature holds. Dedupe is on the event id: in the deliveries table
for the run, and in the incident's row for updates.
"""

from __future__ import annotations

from collections.abc import Mapping

from incidentfox.agents.incidents.store import IncidentEvent, IncidentStore
from incidentfox.agents.toolsets.base import lookup_dotted
from incidentfox.config.routing import RouteTarget, RoutingIndex
from incidentfox.config.service import ConfigService
from incidentfox.db.engine import SessionFactory
from incidentfox.handlers.trigger import RoutingKey
from incidentfox.handlers.webhooks.incident_intake import IncidentIntake
from incidentfox.handlers.webhooks.pagerduty_events import (
    HANDLED,
    OPENS_THREAD,
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
from incidentfox.handlers.webhooks.signatures import PAGERDUTY_HEADER, pagerduty_signed

SENDER = "pagerduty"


class PagerDutyWebhook:
    def __init__(
        self,
        *,
        routing: RoutingIndex,
        config: ConfigService,
        intake: IncidentIntake,
        incidents: IncidentStore,
        sessions: SessionFactory,
        installation_secret: str | None,
    ) -> None:
        self._routing = routing
        self._config = config
        self._intake = intake
        self._incidents = incidents
        self._sessions = sessions
        self._installation_secret = installation_secret or ""

    async def receive(self, raw: bytes, headers: Mapping[str, str]) -> WebhookAnswer:
        webhook = parse_payload(raw, Webhook, "PagerDuty V3")
        event = webhook.event
        if event.event_type not in HANDLED:
            return IGNORED
        target = await self._route(webhook)
        config = (
            await self._config.effective_config_shared(target.org_id, target.team_node_id) if target else {}
        )
        secret = lookup_dotted(config, "integrations.pagerduty.webhook_secret")
        if not pagerduty_signed(raw, headers.get(PAGERDUTY_HEADER), str(secret or self._installation_secret)):
            raise refuse_unsigned(SENDER)
        delivery_id = f"pagerduty:{event.id}"
        if target is None:
            what = f"PagerDuty service {webhook.service_id or '?'} (incident {webhook.incident_id})"
            await audit_unrouted(self._sessions, sender=SENDER, what=what, delivery_id=delivery_id)
            return WebhookAnswer(202, {"outcome": "unrouted"})
        if event.event_type != OPENS_THREAD:
            return await self._intake.update(self._event(webhook, target, line=line_of(webhook)))
        return await self._intake.open(
            self._event(webhook, target, line=None),
            config=config,
            routing_key=RoutingKey(pagerduty_service_id=webhook.service_id),
            question=question_of(webhook),
            delivery_id=delivery_id,
            incident_id=webhook.incident_id,
        )

    def _event(self, webhook: Webhook, target: RouteTarget, *, line: str | None) -> IncidentEvent:
        return IncidentEvent(
            incident_key=incident_key(webhook.incident_id),
            source=SENDER,
            org_id=target.org_id,
            team_node_id=target.team_node_id,
            event_id=webhook.event.id,
            occurred_at=webhook.event.occurred_at,
            state=state_of(webhook),
            line=line,
        )

    async def _route(self, webhook: Webhook) -> RouteTarget | None:
        """The service's team; for an event without a service (a note), the team of its thread."""
        if webhook.service_id:
            return await self._routing.lookup(pagerduty_service_id=webhook.service_id)
        row = await self._incidents.get(incident_key(webhook.incident_id))
        return RouteTarget(row.org_id, row.team_node_id) if row else None
