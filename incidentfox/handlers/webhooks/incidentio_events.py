"""incident.io webhook payloads (Standard Webhooks, sent through Svix).

A body is ``{"event_type": "public_incident.incident_created_v2", "<event_type>": {…}}``: for the
created and updated events the object is the incident; for ``incident_status_updated_v2`` it holds
``incident``, ``new_status`` and ``previous_status``. Private incidents carry only an id, so they
are not shown in a channel (IncidentFox answers 204). Only the declared fields are read.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from incidentfox.blocks.limits import mrkdwn, one_line

CREATED = "public_incident.incident_created_v2"
UPDATED = "public_incident.incident_updated_v2"
STATUS_UPDATED = "public_incident.incident_status_updated_v2"
HANDLED = frozenset({CREATED, UPDATED, STATUS_UPDATED})
CLOSED_CATEGORIES = frozenset({"closed", "resolved", "post-incident", "declined", "merged", "canceled"})


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Named(_Lenient):
    name: str = Field(default="", max_length=500)
    category: str | None = None


class RoleAssignment(_Lenient):
    assignee: Named | None = None
    role: Named | None = None


class Incident(_Lenient):
    id: str = Field(min_length=1, max_length=64)
    name: str | None = None
    reference: str | None = None
    summary: str | None = None
    permalink: str | None = None
    incident_status: Named | None = None
    severity: Named | None = None
    incident_role_assignments: list[RoleAssignment] = Field(default_factory=list)


class Change(_Lenient):
    """The event's object: an incident, or a status change that names its incident."""

    incident: Incident
    new_status: Named | None = None
    previous_status: Named | None = None

    @model_validator(mode="before")
    @classmethod
    def _wrap_bare_incident(cls, value: Any) -> Any:
        if isinstance(value, dict) and "incident" not in value:
            return {"incident": value}
        return value


class Webhook(_Lenient):
    event_type: str = Field(min_length=1, max_length=100)
    change: Change | None = None

    @model_validator(mode="before")
    @classmethod
    def _pick_object(cls, value: Any) -> Any:
        """The object sits under a key named like the event type."""
        event_type = value.get("event_type") if isinstance(value, dict) else None
        if isinstance(event_type, str) and event_type in HANDLED:
            return {"event_type": event_type, "change": value.get(event_type)}
        return value


def incident_key(org_id: str, incident_id: str) -> str:
    return f"incidentio:{org_id}:{incident_id}"


def state_of(change: Change) -> dict[str, Any]:
    incident = change.incident
    status = change.new_status or incident.incident_status
    state: dict[str, Any] = {"source": "incidentio"}
    if incident.reference:
        state["number"] = incident.reference.removeprefix("INC-")
    for key, value in (
        ("title", incident.name),
        ("status", _status(status)),
        ("priority", incident.severity.name if incident.severity else None),
        ("url", incident.permalink),
    ):
        if value:
            state[key] = value
    leads = [a.assignee.name for a in incident.incident_role_assignments if a.assignee and a.assignee.name]
    if leads:
        state["assignees"] = leads
    return state


def _status(status: Named | None) -> str | None:
    if status is None:
        return None
    if (status.category or "").lower() in CLOSED_CATEGORIES:
        return "resolved"
    return status.name.lower() or None


def line_of(event_type: str, change: Change) -> str:
    if event_type == STATUS_UPDATED and change.new_status is not None:
        before = f"{mrkdwn(change.previous_status.name, 60)} → " if change.previous_status else ""
        return f"Status: {before}{mrkdwn(change.new_status.name, 60)}."
    severity = change.incident.severity
    return (
        f"incident.io updated the incident{f' (severity {mrkdwn(severity.name, 60)})' if severity else ''}."
    )


def question_of(change: Change) -> str:
    incident = change.incident
    reference = f" {incident.reference}" if incident.reference else ""
    severity = f", severity {incident.severity.name}" if incident.severity else ""
    summary = f" Summary: {incident.summary}" if incident.summary else ""
    return one_line(
        f"incident.io incident{reference} (id {incident.id}){severity}: {incident.name or 'untitled'}."
        f"{summary} What is wrong and why?"
    )[:2000]
