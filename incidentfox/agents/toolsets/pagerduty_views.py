"""What the pagerduty tools share in reading the REST API's objects into compact rows: shortened text,
a reference's summary, RFC3339 times, one incident in a few fields, and the id pattern of params."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from incidentfox.agents.toolsets.pagerduty_api import Obj

TEXT_MAX = 300
ID_PATTERN = r"^[A-Za-z0-9]{2,40}$"


class PagerDutyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def short(text: Any, limit: int = TEXT_MAX) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def summary(ref: Any) -> str | None:
    return str(ref.get("summary")) if isinstance(ref, Mapping) and ref.get("summary") else None


def minutes_between(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return max(0, round(delta.total_seconds() / 60))


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def incident_row(incident: Obj) -> Obj:
    """One incident in a few fields."""
    row: Obj = {
        "id": incident.get("id"),
        "number": incident.get("incident_number"),
        "title": short(incident.get("title")),
        "status": incident.get("status"),
        "urgency": incident.get("urgency"),
        "priority": summary(incident.get("priority")),
        "created_at": incident.get("created_at"),
        "service": summary(incident.get("service")),
        "assignees": [summary(a.get("assignee")) for a in incident.get("assignments") or []],
    }
    if incident.get("status") == "resolved":
        resolved_at = incident.get("resolved_at") or incident.get("last_status_change_at")
        row["resolved_at"] = resolved_at
        row["minutes_to_resolve"] = minutes_between(incident.get("created_at"), resolved_at)
    return row
