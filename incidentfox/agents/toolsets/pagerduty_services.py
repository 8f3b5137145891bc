"""Service tools of the pagerduty toolset: what is open now, what changed, and how a service and its
escalation policy are set up.

* ``open_incidents``: triggered and acknowledged incidents across the team's services (its
  ``routing.pagerduty_service_ids``, or the services named), with urgency and age, triggered first.
* ``change_events``: the change events (deploys, config pushes) PagerDuty received for a service in a
  window, each with how long before or after the incident it came when one is named.
* ``service_details``: a service's status, settings, escalation policy levels, integrations and
  teams, with its open incidents and its incident count over the last 30 days.
* ``escalation_policy``: a policy's levels with their delays and targets, who is on call at each level
  now, its loops and the services it covers.

Each returns a ``ToolResult`` like the tools of ``pagerduty``; failures are one plain sentence.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel, Field

from incidentfox.agents.toolsets.base import Tool, ToolFunction, ToolResult
from incidentfox.agents.toolsets.pagerduty_api import Obj, PagerDutyClient, api_failure
from incidentfox.agents.toolsets.pagerduty_views import (
    ID_PATTERN,
    PagerDutyParams,
    incident_row,
    iso,
    short,
    summary,
)

P = TypeVar("P", bound=BaseModel)
MAX_OPEN = 100
MAX_CHANGES = 50
DETAIL_KEYS = 8
STATUS_ORDER = {"triggered": 0, "acknowledged": 1}


def _id_field(what: str) -> Any:
    return Field(default=None, pattern=ID_PATTERN, description=f"{what}.")


class OpenIncidentsParams(PagerDutyParams):
    service_ids: list[str] | None = Field(
        default=None, description="PagerDuty service ids; null for the team's services."
    )
    urgency: Literal["high", "low"] | None = Field(default=None, description="Only this urgency.")
    limit: int = Field(default=25, ge=1, le=100, description="At most this many incidents listed.")


class ChangeEventsParams(PagerDutyParams):
    service_id: str | None = _id_field("PagerDuty service id; null to use the incident's service")
    incident_id: str | None = _id_field(
        "An incident: its service's changes, each timed against the incident's start"
    )
    hours: float = Field(default=24, gt=0, le=720, description="How many hours back from now to look.")


class ServiceParams(PagerDutyParams):
    service_id: str | None = _id_field("PagerDuty service id; null to use the incident's service")
    incident_id: str | None = _id_field("An incident whose service to describe")


class EscalationPolicyParams(PagerDutyParams):
    escalation_policy_id: str | None = _id_field("Escalation policy id; null to use the incident's")
    incident_id: str | None = _id_field("An incident whose escalation policy to describe")


def _age_minutes(created_at: Any, now: datetime) -> int | None:
    try:
        return max(0, round((now - datetime.fromisoformat(str(created_at))).total_seconds() / 60))
    except ValueError:
        return None


async def open_incidents(client: PagerDutyClient, params: OpenIncidentsParams) -> ToolResult:
    services = tuple(params.service_ids or client.service_ids)
    scope = f"services {', '.join(services)}" if services else "all services"
    query: dict[str, Any] = {
        "statuses[]": ["triggered", "acknowledged"],
        "date_range": "all",
        "sort_by": "created_at:desc",
    }
    if services:
        query["service_ids[]"] = list(services)
    if params.urgency:
        query["urgencies[]"] = [params.urgency]
    filters = "".join(f"&service_ids[]={s}" for s in services) + (
        f"&urgencies[]={params.urgency}" if params.urgency else ""
    )
    invocation = f"GET /incidents?statuses[]=triggered&statuses[]=acknowledged&date_range=all{filters}"
    try:
        found = await client.list("/incidents", query, limit=MAX_OPEN)
    except Exception as exc:
        return api_failure(exc, client, f"list open incidents of {scope}", invocation)
    if not found:
        urgency = f"{params.urgency}-urgency " if params.urgency else ""
        return ToolResult.no_data(
            f"No triggered or acknowledged {urgency}incidents on {scope}", invocation=invocation
        )
    now = datetime.now(UTC)
    ordered = sorted(
        found,
        key=lambda i: (STATUS_ORDER.get(str(i.get("status")), 2), i.get("urgency") != "high"),
    )
    rows = []
    for incident in ordered[: params.limit]:
        row = incident_row(incident)
        row["age_minutes"] = _age_minutes(incident.get("created_at"), now)
        row["acknowledged_by"] = [
            summary(a.get("acknowledger")) for a in incident.get("acknowledgements") or []
        ]
        row["url"] = incident.get("html_url")
        rows.append(row)
    data: Obj = {
        "scope": scope,
        "total": len(found),
        "more_not_counted": len(found) >= MAX_OPEN,
        "by_status": dict(Counter(str(i.get("status")) for i in found)),
        "by_urgency": dict(Counter(str(i.get("urgency")) for i in found)),
        "by_service": dict(Counter(str(summary(i.get("service"))) for i in found)),
        "incidents": rows,
    }
    return ToolResult.ok(data, invocation=invocation)


def _details(details: Any) -> Any:
    if not isinstance(details, Mapping):
        return short(details, 200) if details else None
    return {str(k): short(v, 200) for k, v in list(details.items())[:DETAIL_KEYS]}


def _change_row(event: Obj, incident_start: datetime | None) -> Obj:
    row: Obj = {
        "at": event.get("timestamp"),
        "summary": short(event.get("summary")),
        "source": event.get("source"),
        "integration": summary(event.get("integration")),
        "details": _details(event.get("custom_details")),
        "links": [
            {"text": short(link.get("text"), 100), "href": link.get("href")}
            for link in event.get("links") or []
            if isinstance(link, Mapping)
        ][:3],
    }
    if incident_start is not None and event.get("timestamp"):
        at = datetime.fromisoformat(str(event["timestamp"]))
        row["minutes_before_incident"] = round((incident_start - at).total_seconds() / 60)
    return row


async def change_events(client: PagerDutyClient, params: ChangeEventsParams) -> ToolResult:
    until = datetime.now(UTC).replace(microsecond=0)
    since = until - timedelta(hours=params.hours)
    window = f"since={iso(since)}&until={iso(until)}"
    service_id = params.service_id
    invocation = (
        f"GET /services/{service_id}/change_events?{window}"
        if service_id
        else f"GET /services/<service of incident {params.incident_id}>/change_events?{window}"
        if params.incident_id
        else f"GET /change_events?{window}"
    )
    what = (
        f"service {service_id}"
        if service_id
        else f"incident {params.incident_id}"
        if params.incident_id
        else "the account"
    )
    incident_start: datetime | None = None
    try:
        if params.incident_id:
            incident = await client.get(f"/incidents/{params.incident_id}")
            incident_start = datetime.fromisoformat(str(incident.get("created_at")))
            service_id = service_id or str((incident.get("service") or {}).get("id"))
            invocation = f"GET /services/{service_id}/change_events?{window}"
        path = f"/services/{service_id}/change_events" if service_id else "/change_events"
        found = await client.list(path, {"since": iso(since), "until": iso(until)}, limit=MAX_CHANGES + 1)
    except Exception as exc:
        return api_failure(exc, client, f"list change events of {what}", invocation)
    if not found:
        return ToolResult.no_data(
            f"PagerDuty received no change events for {what} in the last {params.hours:g} hours "
            "(deploys may not be sent to PagerDuty).",
            invocation=invocation,
        )
    rows = [_change_row(e, incident_start) for e in found[:MAX_CHANGES]]
    data: Obj = {"service_id": service_id, "since": iso(since), "until": iso(until), "change_events": rows}
    if incident_start is not None:
        data["incident_started_at"] = iso(incident_start)
    if len(found) > MAX_CHANGES:
        data["note"] = f"More than {MAX_CHANGES} change events: pass fewer hours."
    return ToolResult.ok(data, invocation=invocation)


def _levels(policy: Obj) -> list[Obj]:
    return [
        {
            "level": number,
            "delay_minutes": rule.get("escalation_delay_in_minutes"),
            "targets": [
                {"name": summary(t), "type": str(t.get("type", "")).removesuffix("_reference")}
                for t in rule.get("targets") or []
            ],
        }
        for number, rule in enumerate(policy.get("escalation_rules") or [], start=1)
    ]


async def _service_id_of(client: PagerDutyClient, service_id: str | None, incident_id: str | None) -> str:
    if service_id:
        return service_id
    incident = await client.get(f"/incidents/{incident_id}")
    return str((incident.get("service") or {}).get("id"))


async def service_details(client: PagerDutyClient, params: ServiceParams) -> ToolResult:
    if not params.service_id and not params.incident_id:
        return ToolResult.failed("Give service_id, or incident_id to describe its service.")
    include = "include[]=escalation_policies&include[]=integrations&include[]=teams"
    what = (
        f"service {params.service_id}"
        if params.service_id
        else f"the service of incident {params.incident_id}"
    )
    invocation = f"GET /services/{params.service_id or '<service of the incident>'}?{include}"
    until = datetime.now(UTC).replace(microsecond=0)
    since = until - timedelta(days=30)
    try:
        service_id = await _service_id_of(client, params.service_id, params.incident_id)
        invocation = f"GET /services/{service_id}?{include} (+ /incidents counts)"
        counted = {"service_ids[]": [service_id], "since": iso(since), "until": iso(until), "total": "true"}
        service, recent, open_now = await asyncio.gather(
            client.get(
                f"/services/{service_id}",
                {"include[]": ["escalation_policies", "integrations", "teams"]},
            ),
            client.call(client.api.jget, "/incidents", params={**counted, "limit": 1}),
            client.list(
                "/incidents",
                {
                    "service_ids[]": [service_id],
                    "statuses[]": ["triggered", "acknowledged"],
                    "date_range": "all",
                },
                limit=MAX_OPEN,
            ),
        )
    except Exception as exc:
        return api_failure(exc, client, f"read {what}", invocation)
    policy = service.get("escalation_policy") or {}
    data: Obj = {
        "id": service.get("id"),
        "name": service.get("name"),
        "description": short(service.get("description")) or None,
        "status": service.get("status"),
        "created_at": service.get("created_at"),
        "last_incident_at": service.get("last_incident_timestamp"),
        "auto_resolve_timeout_s": service.get("auto_resolve_timeout"),
        "acknowledgement_timeout_s": service.get("acknowledgement_timeout"),
        "urgency_rule": service.get("incident_urgency_rule"),
        "alert_creation": service.get("alert_creation"),
        "teams": [summary(t) or t.get("name") for t in service.get("teams") or []],
        "integrations": [
            {"name": i.get("name") or summary(i), "type": str(i.get("type", "")).removesuffix("_reference")}
            for i in service.get("integrations") or []
        ],
        "escalation_policy": {
            "id": policy.get("id"),
            "name": policy.get("name") or summary(policy),
            "loops": policy.get("num_loops"),
            "levels": _levels(policy),
        },
        "incidents_last_30_days": recent.get("total") if isinstance(recent, Mapping) else None,
        "open_incidents": [incident_row(i) for i in open_now[:10]],
        "open_incident_count": len(open_now),
    }
    return ToolResult.ok(data, invocation=invocation, url=service.get("html_url"))


async def escalation_policy(client: PagerDutyClient, params: EscalationPolicyParams) -> ToolResult:
    if not params.escalation_policy_id and not params.incident_id:
        return ToolResult.failed("Give escalation_policy_id, or incident_id to use its escalation policy.")
    what = (
        f"escalation policy {params.escalation_policy_id}"
        if params.escalation_policy_id
        else f"the escalation policy of incident {params.incident_id}"
    )
    invocation = f"GET /escalation_policies/{params.escalation_policy_id or '<policy of the incident>'}"
    try:
        policy_id = params.escalation_policy_id
        if not policy_id:
            incident = await client.get(f"/incidents/{params.incident_id}")
            policy_id = str((incident.get("escalation_policy") or {}).get("id"))
        invocation = f"GET /escalation_policies/{policy_id} (+ /oncalls?escalation_policy_ids[]={policy_id})"
        policy, oncalls = await asyncio.gather(
            client.get(f"/escalation_policies/{policy_id}"),
            client.list("/oncalls", {"escalation_policy_ids[]": [policy_id], "earliest": "true"}, limit=100),
        )
    except Exception as exc:
        return api_failure(exc, client, f"read {what}", invocation)
    on_call: dict[int, list[str]] = {}
    for entry in oncalls:
        name = summary(entry.get("user"))
        level = int(entry.get("escalation_level") or 0)
        if name and name not in on_call.setdefault(level, []):
            on_call[level].append(name)
    levels = [{**level, "on_call_now": on_call.get(level["level"], [])} for level in _levels(policy)]
    nobody = [level["level"] for level in levels if not level["on_call_now"]]
    data: Obj = {
        "id": policy.get("id"),
        "name": policy.get("name"),
        "loops": policy.get("num_loops"),
        "levels": levels,
        "services": [summary(s) for s in policy.get("services") or []],
        "teams": [summary(t) for t in policy.get("teams") or []],
    }
    if nobody:
        data["warning"] = f"Nobody is on call now at level(s) {', '.join(map(str, nobody))}."
    return ToolResult.ok(data, invocation=invocation, url=policy.get("html_url"))


def _tool(
    name: str, description: str, params: type[P], run: Callable[[PagerDutyClient, P], Awaitable[ToolResult]]
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run))


SERVICE_INSTRUCTIONS = """open_incidents shows everything paging now across the team's services (triggered
first, with urgency and age): check it to see whether the page is part of a wider outage.
change_events lists the deploys and config changes PagerDuty was told about for a service; pass
incident_id to see how many minutes before the incident each came (a change right before is the first
suspect). service_details shows how a service is set up (status, escalation levels, integrations,
teams) and how often it paged in 30 days; escalation_policy shows a policy's levels, delays and who is
on call at each level now."""

SERVICE_TOOLS = (
    _tool(
        "open_incidents",
        "Triggered and acknowledged incidents across the team's services (or given ones), triggered "
        "and high urgency first, with age in minutes and counts by status, urgency and service.",
        OpenIncidentsParams,
        open_incidents,
    ),
    _tool(
        "change_events",
        "Change events (deploys, config changes) PagerDuty received for a service or an incident's "
        "service in the last N hours, newest first, with minutes before the incident.",
        ChangeEventsParams,
        change_events,
    ),
    _tool(
        "service_details",
        "A PagerDuty service: status, timeouts, urgency rule, escalation levels, integrations, teams, "
        "its open incidents and its incident count over 30 days.",
        ServiceParams,
        service_details,
    ),
    _tool(
        "escalation_policy",
        "An escalation policy (or an incident's): its levels with delays and targets, who is on call "
        "at each level now, loops and the services it covers.",
        EscalationPolicyParams,
        escalation_policy,
    ),
)
