"""The pagerduty toolset: what a page is about, how often its service paged before, who is on call,
and (once approved in Slack) a note on the incident.

Every tool takes the run's ``PagerDutyClient`` (from ``connect`` in ``pagerduty_api``) and a pydantic
params model, and returns a ``ToolResult`` whose ``data`` is compact: ids, titles, status, urgency,
timestamps, the service and short log-entry summaries, never the API's full objects. Failures (a
rejected key, a missing incident, rate limiting that outlasts the retries, an unreachable API) come
back as ``ToolResult.failed`` with one plain sentence; empty answers as ``ToolResult.no_data``.

``add_incident_note`` is also what the PagerDuty write-back (the RCA note a team configures, not
approved per call) should use, so both paths write notes the same way.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar, cast

import httpx2
from pydantic import AfterValidator, BaseModel, Field

from incidentfox.agents.approvals.models import ActionDescription
from incidentfox.agents.toolsets.base import Tool, ToolFunction, ToolResult, Toolset, ToolsetHealth
from incidentfox.agents.toolsets.pagerduty_api import (
    Obj,
    PagerDutyClient,
    PagerDutyNotConfigured,
    api_failure,
    connect,
    describe_failure,
    pagerduty_settings,
)
from incidentfox.agents.toolsets.pagerduty_services import SERVICE_INSTRUCTIONS, SERVICE_TOOLS
from incidentfox.agents.toolsets.pagerduty_views import (
    ID_PATTERN,
    PagerDutyParams,
    incident_row,
    iso,
    short,
    summary,
)
from incidentfox.agents.toolsets.write_params import Reason

P = TypeVar("P", bound=BaseModel)
MAX_ALERTS = 20
MAX_LOG_ENTRIES = 100
MAX_NOTES = 10
MAX_SCAN = 500
"""The most past incidents read for ``service_incidents``; the counts say when there were more."""
MAX_ONCALLS = 100
NOTE_MAX = 25_000
DETAIL_KEYS_MAX = 12
HEALTH_TIMEOUT = httpx2.Timeout(5.0, connect=3.0)


def _details(details: Any) -> Any:
    if not isinstance(details, Mapping):
        return short(details) if details else None
    return {str(k): short(v, 200) for k, v in list(details.items())[:DETAIL_KEYS_MAX]}


def alert_row(alert: Obj) -> Obj:
    body = alert.get("body")
    details = body.get("details") if isinstance(body, Mapping) else None
    return {
        "id": alert.get("id"),
        "summary": short(alert.get("summary")),
        "status": alert.get("status"),
        "severity": alert.get("severity"),
        "created_at": alert.get("created_at"),
        "alert_key": short(alert.get("alert_key"), 120),
        "details": _details(details),
    }


def timeline(entries: list[Obj]) -> tuple[list[Obj], int]:
    """Log entries oldest first (the API lists them newest first), without the per-person
    notifications, which are counted instead."""
    rows: list[Obj] = []
    notified = 0
    for entry in sorted(reversed(entries), key=lambda e: str(e.get("created_at") or "")):
        kind = str(entry.get("type") or "").removesuffix("_log_entry")
        if kind == "notify":
            notified += 1
            continue
        rows.append(
            {
                "at": entry.get("created_at"),
                "type": kind,
                "by": summary(entry.get("agent")),
                "summary": short(entry.get("summary"), 200),
            }
        )
    return rows, notified


def incident_detail(incident: Obj, alerts: list[Obj], entries: list[Obj], notes: list[Obj]) -> Obj:
    events, notified = timeline(entries)
    detail = incident_row(incident)
    detail.update(
        {
            "service": {
                "id": (incident.get("service") or {}).get("id"),
                "name": summary(incident.get("service")),
            },
            "escalation_policy": {
                "id": (incident.get("escalation_policy") or {}).get("id"),
                "name": summary(incident.get("escalation_policy")),
            },
            "teams": [summary(t) for t in incident.get("teams") or []],
            "incident_key": incident.get("incident_key"),
            "html_url": incident.get("html_url"),
            "acknowledged_by": [
                summary(a.get("acknowledger")) for a in incident.get("acknowledgements") or []
            ],
            "alert_counts": incident.get("alert_counts"),
            "alerts": [alert_row(a) for a in alerts[:MAX_ALERTS]],
            "timeline": events,
            "notifications_sent": notified,
            "notes": [
                {
                    "at": n.get("created_at"),
                    "by": summary(n.get("user")),
                    "content": short(n.get("content"), 500),
                }
                for n in notes[-MAX_NOTES:]
            ],
        }
    )
    if len(alerts) > MAX_ALERTS:
        detail["alerts_not_shown"] = len(alerts) - MAX_ALERTS
    return detail


def _incident_id(required: bool = True) -> Any:
    description = "PagerDuty incident id, e.g. Q3CHKOUT5XXNOW (from the page or its link)."
    if required:
        return Field(pattern=ID_PATTERN, description=description)
    return Field(
        default=None, pattern=ID_PATTERN, description=description + " Null when not about an incident."
    )


class IncidentParams(PagerDutyParams):
    incident_id: str = _incident_id()


class ServiceIncidentsParams(PagerDutyParams):
    incident_id: str | None = _incident_id(required=False)
    service_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="PagerDuty service id; null to use the incident's service.",
    )
    days: int = Field(default=7, ge=1, le=180, description="How many days back to look.")
    limit: int = Field(
        default=20, ge=1, le=100, description="At most this many incidents listed (newest first)."
    )


class OnCallParams(PagerDutyParams):
    incident_id: str | None = _incident_id(required=False)
    escalation_policy_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="Escalation policy id; null to use the incident's."
    )


def _checked_text(limit: int, empty: str) -> Callable[[str], str]:
    """Lengths are checked here, not in the JSON schema: strict tool schemas reject length keywords."""

    def check(text: str) -> str:
        text = text.strip()
        if not text:
            raise ValueError(empty)
        if len(text) > limit:
            raise ValueError(f"keep it under {limit} characters")
        return text

    return check


NoteText = Annotated[str, AfterValidator(_checked_text(NOTE_MAX, "the note is empty"))]


class AddNoteParams(PagerDutyParams):
    incident_id: str = _incident_id()
    content: NoteText = Field(description="The note, as the responders will read it on the incident.")
    reason: Reason = Field(description="One sentence for the person who must approve this: why post it now.")

    def describe_action(self) -> ActionDescription:
        return ActionDescription(
            "add a note to",
            f"PagerDuty incident {self.incident_id}: “{short(self.content, 200)}”",
            self.reason,
        )


async def incident_details(client: PagerDutyClient, params: IncidentParams) -> ToolResult:
    base = f"/incidents/{params.incident_id}"
    invocation = f"GET {base} (+ /alerts, /log_entries, /notes)"
    try:
        incident = await client.get(base)
        alerts, entries, notes = await asyncio.gather(
            client.list(f"{base}/alerts", limit=MAX_ALERTS + 1),
            client.list(f"{base}/log_entries", limit=MAX_LOG_ENTRIES),
            client.get(f"{base}/notes"),
        )
    except Exception as exc:
        return api_failure(exc, client, f"read incident {params.incident_id}", invocation)
    detail = incident_detail(incident, alerts, entries, list(notes or []))
    return ToolResult.ok(detail, invocation=invocation, url=incident.get("html_url"))


async def _service_of(
    client: PagerDutyClient, params: ServiceIncidentsParams
) -> tuple[str, str | None, Obj | None]:
    """(service id, service name, the incident asked about)."""
    if params.incident_id:
        incident = await client.get(f"/incidents/{params.incident_id}")
        service = incident.get("service") or {}
        return str(service.get("id")), summary(service), incident
    assert params.service_id is not None
    service = await client.get(f"/services/{params.service_id}")
    return params.service_id, str(service.get("name") or service.get("summary") or params.service_id), None


async def service_incidents(client: PagerDutyClient, params: ServiceIncidentsParams) -> ToolResult:
    if not params.incident_id and not params.service_id:
        return ToolResult.failed("Give incident_id (to look at its service) or service_id.")
    until = datetime.now(UTC).replace(microsecond=0)
    since = until - timedelta(days=params.days)
    what = f"incident {params.incident_id}" if params.incident_id else f"service {params.service_id}"
    invocation = f"GET /incidents?service_ids[]=<service of {what}>&since={iso(since)}&until={iso(until)}"
    try:
        service_id, name, current = await _service_of(client, params)
        invocation = f"GET /incidents?service_ids[]={service_id}&since={iso(since)}&until={iso(until)}"
        query = {
            "service_ids[]": [service_id],
            "since": iso(since),
            "until": iso(until),
            "sort_by": "created_at:desc",
            "time_zone": "UTC",
        }
        found = await client.list("/incidents", query, limit=MAX_SCAN)
    except Exception as exc:
        return api_failure(exc, client, f"list past incidents of {what}", invocation)
    others = [i for i in found if i.get("id") != params.incident_id]
    label = name or service_id
    if not others:
        return ToolResult.no_data(
            f"No other incidents on service {label} in the last {params.days} days", invocation=invocation
        )
    titles = Counter(str(i.get("title")) for i in others)
    resolve_times = sorted(
        m for m in (incident_row(i).get("minutes_to_resolve") for i in others) if isinstance(m, int)
    )
    data: Obj = {
        "service": {"id": service_id, "name": name},
        "since": iso(since),
        "until": iso(until),
        "total": len(others),
        "more_not_counted": len(found) >= MAX_SCAN,
        "by_status": dict(Counter(str(i.get("status")) for i in others)),
        "by_urgency": dict(Counter(str(i.get("urgency")) for i in others)),
        "top_titles": [{"title": short(t), "count": c} for t, c in titles.most_common(5)],
        "median_minutes_to_resolve": resolve_times[len(resolve_times) // 2] if resolve_times else None,
        "incidents": [incident_row(i) for i in others[: params.limit]],
    }
    if current is not None:
        data["same_title_as_incident"] = titles.get(str(current.get("title")), 0)
    return ToolResult.ok(data, invocation=invocation)


async def who_is_on_call(client: PagerDutyClient, params: OnCallParams) -> ToolResult:
    if not params.incident_id and not params.escalation_policy_id:
        return ToolResult.failed("Give incident_id (to use its escalation policy) or escalation_policy_id.")
    what = f"incident {params.incident_id}" if params.incident_id else f"policy {params.escalation_policy_id}"
    invocation = f"GET /oncalls?escalation_policy_ids[]=<{what}>&earliest=true"
    try:
        policy_id = params.escalation_policy_id
        if params.incident_id:
            incident = await client.get(f"/incidents/{params.incident_id}")
            policy_id = str((incident.get("escalation_policy") or {}).get("id"))
        invocation = f"GET /oncalls?escalation_policy_ids[]={policy_id}&earliest=true"
        query = {"escalation_policy_ids[]": [policy_id], "earliest": "true"}
        entries = await client.list("/oncalls", query, limit=MAX_ONCALLS)
    except Exception as exc:
        return api_failure(exc, client, f"list who is on call for {what}", invocation)
    if not entries:
        return ToolResult.no_data(
            f"Nobody is on call for escalation policy {policy_id} now", invocation=invocation
        )
    rows = [
        {
            "level": e.get("escalation_level"),
            "user": summary(e.get("user")),
            "user_id": (e.get("user") or {}).get("id"),
            "schedule": summary(e.get("schedule")),
            "since": e.get("start"),
            "until": e.get("end"),
        }
        for e in sorted(entries, key=lambda e: (e.get("escalation_level") or 0, str(e.get("start") or "")))
    ]
    policy = {"id": policy_id, "name": summary(entries[0].get("escalation_policy"))}
    return ToolResult.ok({"escalation_policy": policy, "on_call": rows}, invocation=invocation)


async def add_incident_note(client: PagerDutyClient, incident_id: str, content: str) -> Obj:
    """POST a note (as ``from_email`` with an account-level key); returns the created note."""
    note: Obj = await client.call(
        client.api.rpost, f"/incidents/{incident_id}/notes", json={"content": content}
    )
    return note


async def add_note(client: PagerDutyClient, params: AddNoteParams) -> ToolResult:
    invocation = f"POST /incidents/{params.incident_id}/notes"
    try:
        note = await add_incident_note(client, params.incident_id, params.content)
    except Exception as exc:
        result = api_failure(exc, client, f"add a note to incident {params.incident_id}", invocation)
        if client.from_email is None and result.error and "(400)" in result.error:
            hint = (
                " Set integrations.pagerduty.from_email to the email of the PagerDuty user notes come from."
            )
            return ToolResult.failed(result.error + hint, invocation=invocation)
        return result
    data = {
        "summary": f"Added a note to PagerDuty incident {params.incident_id}.",
        "incident_id": params.incident_id,
        "note_id": note.get("id"),
        "by": summary(note.get("user")),
        "created_at": note.get("created_at"),
    }
    return ToolResult.ok(data, invocation=invocation)


async def health(config: Mapping[str, Any]) -> ToolsetHealth:
    """One cheap call: list users (filtered by ``from_email`` when set), which proves the key works
    and that notes can be written as that user."""
    if not pagerduty_settings(config).get("api_key"):
        return ToolsetHealth(configured=False, reason="no api_key is set")
    try:
        client = await connect(config, timeout=HEALTH_TIMEOUT, max_wait_s=2.0)
    except PagerDutyNotConfigured as exc:
        return ToolsetHealth.failing(str(exc))
    sender = client.from_email
    try:
        body = await client.call(
            client.api.jget, "/users", params={"query": sender} if sender else {"limit": 1}
        )
    except Exception as exc:
        return ToolsetHealth.failing(describe_failure(exc, client.api_url, "list users"))
    finally:
        client.close()
    users = body.get("users") if isinstance(body, Mapping) else None
    emails = {str(u.get("email", "")).lower() for u in users or [] if isinstance(u, Mapping)}
    if sender and sender.lower() not in emails:
        return ToolsetHealth.failing(
            f"integrations.pagerduty.from_email ({sender}) is not a user of this PagerDuty account, "
            "so notes cannot be added."
        )
    return ToolsetHealth.ok()


def _tool(
    name: str,
    description: str,
    params: type[P],
    run: Callable[[PagerDutyClient, P], Awaitable[ToolResult]],
    *,
    writes: bool = False,
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run), writes=writes)


INSTRUCTIONS = f"""You read PagerDuty. Start with incident_details for the page you were given: its alerts
(with their details), the timeline (triggered, assigned, acknowledged, escalated, notes) and notes.
Use service_incidents to see whether the same service paged before and how often with the same title
(a recurring page points at a known cause), and who_is_on_call to name who is responsible now.
Quote alert summaries and details exactly. add_note writes on the incident for every responder to
read; it runs only after a person approves it in Slack, so use it once, for a finding worth sharing,
with the reason in one sentence, and never retry a refused note.

{SERVICE_INSTRUCTIONS}"""

PAGERDUTY = Toolset(
    name="pagerduty",
    description="The team's PagerDuty: incidents with their alerts, timeline and notes, past incidents "
    "of the same service, who is on call, what is open now, change events (deploys), services and "
    "escalation policies; add a note to an incident once approved in Slack.",
    instructions=INSTRUCTIONS,
    connect=connect,
    health_check=health,
    prerequisites=("integrations.pagerduty.api_key",),
    tools=(
        _tool(
            "incident_details",
            "One PagerDuty incident: status, urgency, priority, service, assignees, its alerts with "
            "details, the timeline of log entries and the notes.",
            IncidentParams,
            incident_details,
        ),
        _tool(
            "service_incidents",
            "Past incidents of a service (or of an incident's service) in the last N days, with counts "
            "by status, urgency and title, and how long they took to resolve.",
            ServiceIncidentsParams,
            service_incidents,
        ),
        _tool(
            "who_is_on_call",
            "Who is on call now, per escalation level, for an incident's escalation policy or a given one.",
            OnCallParams,
            who_is_on_call,
        ),
        *SERVICE_TOOLS,
        _tool(
            "add_note",
            "Add a note to a PagerDuty incident, visible to every responder. Needs approval in Slack.",
            AddNoteParams,
            add_note,
            writes=True,
        ),
    ),
)
