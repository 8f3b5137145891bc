"""PagerDuty V3 webhook payloads: their shape, and what each event means for the incident's thread.

Only the fields IncidentFox uses are declared; anything else PagerDuty sends is ignored, so new
fields never break a delivery. A payload without the declared fields is a 400.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from incidentfox.blocks.limits import mrkdwn, one_line

OPENS_THREAD = "incident.triggered"
UPDATES = frozenset(
    {
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
HANDLED = frozenset({OPENS_THREAD, *UPDATES})
NOTE_PREVIEW = 300


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Ref(_Lenient):
    id: str = Field(min_length=1, max_length=64)
    summary: str | None = None
    html_url: str | None = None

    @property
    def name(self) -> str:
        return self.summary or self.id


class IncidentData(_Lenient):
    """``data`` of an incident event (the incident) or of ``incident.annotated`` (a note)."""

    id: str = Field(min_length=1, max_length=64)
    type: str = "incident"
    number: int | None = None
    title: str | None = None
    status: str | None = None
    urgency: str | None = None
    html_url: str | None = None
    service: Ref | None = None
    assignees: list[Ref] = Field(default_factory=list)
    priority: Ref | None = None
    incident: Ref | None = None
    content: str | None = None


class Event(_Lenient):
    id: str = Field(min_length=1, max_length=128)
    event_type: str = Field(min_length=1, max_length=64)
    occurred_at: AwareDatetime
    agent: Ref | None = None
    data: IncidentData


class Webhook(_Lenient):
    event: Event

    @property
    def incident_id(self) -> str:
        data = self.event.data
        return data.incident.id if data.type == "incident_note" and data.incident else data.id

    @property
    def service_id(self) -> str | None:
        service = self.event.data.service
        return service.id if service else None


def incident_key(incident_id: str) -> str:
    return f"pagerduty:{incident_id}"


def state_of(webhook: Webhook) -> dict[str, Any]:
    """What the event says about the incident's state (empty for a note)."""
    data = webhook.event.data
    if data.type == "incident_note":
        return {}
    state: dict[str, Any] = {"source": "pagerduty", "assignees": [a.name for a in data.assignees]}
    for key, value in (
        ("number", data.number),
        ("title", data.title),
        ("status", data.status),
        ("urgency", data.urgency),
        ("url", data.html_url),
        ("service", data.service.name if data.service else None),
        ("priority", data.priority.name if data.priority else None),
    ):
        if value is not None:
            state[key] = value
    return state


def line_of(webhook: Webhook) -> str:
    """The thread's line for an update, mrkdwn-escaped (every value comes from the payload)."""
    event = webhook.event
    data = event.data
    by = f" by {mrkdwn(one_line(event.agent.name), 100)}" if event.agent else ""
    who = mrkdwn(", ".join(a.name for a in data.assignees) or "nobody", 200)
    kind = event.event_type.removeprefix("incident.")
    priority = mrkdwn(data.priority.name, 50) if data.priority else "none"
    lines = {
        "acknowledged": f"🟠 Acknowledged{by}.",
        "unacknowledged": "🔴 Unacknowledged: the acknowledgement timed out.",
        "resolved": f"✅ Resolved{by}.",
        "reopened": f"🔴 Reopened{by}.",
        "reassigned": f"↪️ Reassigned to {who}{by}.",
        "delegated": f"↪️ Delegated to {who}{by}.",
        "escalated": f"⏫ Escalated to {who}.",
        "priority_updated": f"Priority set to {priority}{by}.",
        "annotated": f"📝 Note{by}: {mrkdwn(one_line(data.content or ''), NOTE_PREVIEW)}",
    }
    return lines.get(kind, f"PagerDuty: {mrkdwn(kind, 50)}{by}.")


def question_of(webhook: Webhook) -> str:
    """What the investigation is asked for a triggered incident (plain text, scrubbed later)."""
    data = webhook.event.data
    service = data.service.name if data.service else "an unknown service"
    number = f" #{data.number}" if data.number is not None else ""
    urgency = f", urgency {data.urgency}" if data.urgency else ""
    return one_line(
        f"PagerDuty incident{number} (id {data.id}) on {service}{urgency}: {data.title or 'untitled'}. "
        "What is wrong and why?"
    )
