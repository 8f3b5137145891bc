"""What every incident source (PagerDuty, incident.io) does once a delivery is verified and routed:
open an investigated thread for a new incident, or record an update for its thread."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from incidentfox.agents.incidents.store import IncidentEvent, IncidentStore
from incidentfox.agents.toolsets.base import lookup_dotted
from incidentfox.handlers.pipeline import TriggerPipeline
from incidentfox.handlers.trigger import RoutingKey, Trigger, TriggerSource
from incidentfox.handlers.webhooks.receipt import WebhookAnswer, answer_for

log = logging.getLogger(__name__)


def incident_channel(config: Mapping[str, Any], source: str) -> str | None:
    """Where a team's incidents open their threads: ``integrations.{source}.channel_id``, else the
    team's first claimed Slack channel."""
    configured = lookup_dotted(config, f"integrations.{source}.channel_id")
    if isinstance(configured, str) and configured:
        return configured
    claimed = lookup_dotted(config, "routing.slack_channel_ids")
    if isinstance(claimed, list) and claimed and isinstance(claimed[0], str):
        return claimed[0]
    return None


def no_channel(source: str) -> str:
    return (
        f"No Slack channel for {source} incidents: set `integrations.{source}.channel_id` or claim a "
        "channel in `routing.slack_channel_ids`."
    )


class IncidentIntake:
    def __init__(
        self, *, pipeline: TriggerPipeline, incidents: IncidentStore, updated: Callable[[], None]
    ) -> None:
        self._pipeline = pipeline
        self._incidents = incidents
        self._updated = updated

    async def open(
        self,
        event: IncidentEvent,
        *,
        config: Mapping[str, Any],
        routing_key: RoutingKey,
        question: str,
        delivery_id: str,
        incident_id: str,
    ) -> WebhookAnswer:
        """A new incident: its state is stored first (the run may start before this answer is sent,
        and its root message shows that state), then the run is submitted."""
        source: TriggerSource = "pagerduty" if event.source == "pagerduty" else "incidentio"
        channel = incident_channel(config, event.source)
        if channel is None:
            log.warning(
                "incident not investigated source=%s org=%s team=%s: no channel",
                event.source,
                event.org_id,
                event.team_node_id,
            )
            return WebhookAnswer(202, {"outcome": "misconfigured", "problems": [no_channel(event.source)]})
        await self._incidents.record(event)
        outcome = await self._pipeline.submit(
            Trigger(
                source=source,
                kind="incident",
                routing_key=routing_key,
                text=question,
                thread_ref=None,
                requester=event.source,
                delivery_id=delivery_id,
                origin={
                    "incident_key": event.incident_key,
                    "channel_id": channel,
                    "incident_id": incident_id,
                },
            )
        )
        return answer_for(outcome)

    async def update(self, event: IncidentEvent) -> WebhookAnswer:
        applied = await self._incidents.record(event)
        if applied:
            self._updated()
        return WebhookAnswer(200, {"outcome": "updated" if applied else "duplicate"})
