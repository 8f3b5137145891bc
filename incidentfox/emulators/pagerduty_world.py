"""The PagerDuty account a ``PagerDutyEmulator`` serves, kept in the REST API v2's own shapes.

Objects are stored as PagerDuty returns them, minus ``self`` and ``html_url``: those depend on where
the emulator listens, so ``render`` adds them (to every object and reference in a response) when it
is served. References are ``{"id", "type": "<kind>_reference", "summary"}`` as in the API.

``pagerduty_seed.seed_checkout`` builds the default account (a ``checkout-api`` service whose 5xx
alert is firing now, with its history). Tests add to it, or start from an empty world, with the
``add_*`` builders, which keep the derived data consistent: an incident gets its trigger,
assignment, notification, acknowledgement and resolution log entries and an alert, and service
status and alert counts follow.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Obj = dict[str, Any]
IncidentStatus = str
"""``triggered``, ``acknowledged`` or ``resolved``."""

INCIDENT_STATUSES = ("triggered", "acknowledged", "resolved")
URGENCIES = ("high", "low")
NOTE_CHANNEL = {"summary": "The PagerDuty website or APIs"}

_COLLECTIONS = {
    "user": ("users", "users"),
    "team": ("teams", "teams"),
    "schedule": ("schedules", "schedules"),
    "escalation_policy": ("escalation_policies", "escalation_policies"),
    "service": ("services", "service-directory"),
    "incident": ("incidents", "incidents"),
    "log_entry": ("log_entries", "log_entries"),
    "priority": ("priorities", "account/incident_priorities"),
}
"""Object kind → (API collection, web path) for building ``self`` and ``html_url``."""


def iso(at: datetime) -> str:
    """PagerDuty's timestamp format, always UTC: ``2025-06-01T14:05:00Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An ISO 8601 timestamp as PagerDuty accepts it (``Z``, ``+00:00``, ``+0000`` or a bare date);
    a value without a zone is UTC. Raises ``ValueError`` when it is not a timestamp."""
    parsed = datetime.fromisoformat(text.strip().replace(" ", "+"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def reference(obj: Obj) -> Obj:
    """The API's reference to ``obj``: ``{"id", "type": "service_reference", "summary"}``."""
    return {"id": obj["id"], "type": f"{obj['type']}_reference", "summary": obj["summary"]}


def render(value: Any, api_url: str, web_url: str) -> Any:
    """A copy of ``value`` with ``self`` and ``html_url`` on every object and reference that has them."""
    if isinstance(value, list):
        return [render(item, api_url, web_url) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: render(item, api_url, web_url) for key, item in value.items()}
    kind = str(out.get("type", "")).removesuffix("_reference")
    if "id" in out and kind in _COLLECTIONS:
        collection, web_path = _COLLECTIONS[kind]
        out["self"] = f"{api_url}/{collection}/{out['id']}"
        out["html_url"] = (
            f"{web_url}/{web_path}" if kind == "priority" else f"{web_url}/{web_path}/{out['id']}"
        )
    elif kind == "alert" and "id" in out and isinstance(out.get("incident"), dict):
        incident_id = out["incident"]["id"]
        out["self"] = f"{api_url}/incidents/{incident_id}/alerts/{out['id']}"
        out["html_url"] = f"{web_url}/alerts/{out['id']}"
    return out


@dataclass(slots=True)
class PagerDutyWorld:
    """Everything one PagerDuty account holds. ``now`` is the account's clock for seeded times."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    users: dict[str, Obj] = field(default_factory=dict)
    teams: dict[str, Obj] = field(default_factory=dict)
    schedules: dict[str, Obj] = field(default_factory=dict)
    escalation_policies: dict[str, Obj] = field(default_factory=dict)
    services: dict[str, Obj] = field(default_factory=dict)
    priorities: dict[str, Obj] = field(default_factory=dict)
    incidents: dict[str, Obj] = field(default_factory=dict)
    alerts: dict[str, list[Obj]] = field(default_factory=dict)
    """Per incident id, oldest first."""
    log_entries: dict[str, list[Obj]] = field(default_factory=dict)
    """Per incident id, oldest first."""
    notes: dict[str, list[Obj]] = field(default_factory=dict)
    """Per incident id, oldest first."""
    oncalls: list[Obj] = field(default_factory=list)
    integrations: dict[str, Obj] = field(default_factory=dict)
    change_events: list[Obj] = field(default_factory=list)
    """Oldest first; see ``add_change_event``."""
    _random: random.Random = field(default_factory=lambda: random.Random(8))

    def new_id(self, prefix: str = "P", length: int = 7) -> str:
        """A fresh PagerDuty-looking id (``P`` + 6 for most objects, ``Q`` + 13 for incidents)."""
        alphabet = string.ascii_uppercase + string.digits
        while True:
            candidate = prefix + "".join(self._random.choices(alphabet, k=length - len(prefix)))
            if not any(candidate in table for table in self._tables()):
                return candidate

    def _tables(self) -> tuple[dict[str, Any], ...]:
        return (
            self.users,
            self.teams,
            self.schedules,
            self.escalation_policies,
            self.services,
            self.priorities,
            self.incidents,
        )

    def _at(self, when: datetime | timedelta | None) -> datetime:
        """An absolute time; a ``timedelta`` means that long before ``now``."""
        if when is None:
            return self.now
        if isinstance(when, timedelta):
            return self.now - when
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    def add_user(self, name: str, email: str, *, user_id: str | None = None, role: str = "user") -> Obj:
        user: Obj = {
            "id": user_id or self.new_id(),
            "type": "user",
            "summary": name,
            "name": name,
            "email": email,
            "time_zone": "Etc/UTC",
            "color": "green",
            "role": role,
            "job_title": "",
            "description": "",
            "invitation_sent": False,
            "teams": [],
            "contact_methods": [],
            "notification_rules": [],
        }
        self.users[user["id"]] = user
        return user

    def user_by_email(self, email: str) -> Obj | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u["email"].lower() == wanted), None)

    def add_team(self, name: str, *, team_id: str | None = None) -> Obj:
        team = {"id": team_id or self.new_id(), "type": "team", "summary": name, "name": name}
        self.teams[team["id"]] = team
        return team

    def add_schedule(self, name: str, *, schedule_id: str | None = None) -> Obj:
        schedule = {
            "id": schedule_id or self.new_id(),
            "type": "schedule",
            "summary": name,
            "name": name,
            "time_zone": "Etc/UTC",
        }
        self.schedules[schedule["id"]] = schedule
        return schedule

    def add_priority(self, name: str, *, priority_id: str | None = None) -> Obj:
        priority = {"id": priority_id or self.new_id(), "type": "priority", "summary": name, "name": name}
        self.priorities[priority["id"]] = priority
        return priority

    def add_escalation_policy(
        self,
        name: str,
        *,
        policy_id: str | None = None,
        levels: Sequence[Sequence[str]] = (),
        team_ids: Sequence[str] = (),
    ) -> Obj:
        """``levels``: per escalation level, the ids of its targets (users or schedules)."""
        rules = [
            {
                "id": self.new_id("R"),
                "escalation_delay_in_minutes": 30,
                "targets": [self._target(target_id) for target_id in targets],
            }
            for targets in levels
        ]
        policy: Obj = {
            "id": policy_id or self.new_id(),
            "type": "escalation_policy",
            "summary": name,
            "name": name,
            "escalation_rules": rules,
            "services": [],
            "num_loops": 0,
            "teams": [reference(self.teams[t]) for t in team_ids],
        }
        self.escalation_policies[policy["id"]] = policy
        return policy

    def _target(self, target_id: str) -> Obj:
        if target_id in self.schedules:
            return reference(self.schedules[target_id])
        return reference(self.users[target_id])

    def add_service(
        self,
        name: str,
        escalation_policy_id: str,
        *,
        service_id: str | None = None,
        description: str = "",
        team_ids: Sequence[str] = (),
        created_at: datetime | timedelta | None = timedelta(days=400),
    ) -> Obj:
        policy = self.escalation_policies[escalation_policy_id]
        service: Obj = {
            "id": service_id or self.new_id(),
            "type": "service",
            "summary": name,
            "name": name,
            "description": description,
            "created_at": iso(self._at(created_at)),
            "auto_resolve_timeout": 14400,
            "acknowledgement_timeout": 1800,
            "alert_creation": "create_alerts_and_incidents",
            "incident_urgency_rule": {"type": "constant", "urgency": "high"},
            "escalation_policy": reference(policy),
            "teams": [reference(self.teams[t]) for t in team_ids],
            "integrations": [],
        }
        self.services[service["id"]] = service
        policy["services"].append(reference(service))
        return service

    def service_view(self, service_id: str) -> Obj:
        """The service as served: status and last incident follow from its incidents."""
        service = dict(self.services[service_id])
        mine = [i for i in self.incidents.values() if i["service"]["id"] == service_id]
        open_statuses = {i["status"] for i in mine if i["status"] != "resolved"}
        service["status"] = (
            "critical" if "triggered" in open_statuses else "warning" if open_statuses else "active"
        )
        service["last_incident_timestamp"] = max((i["created_at"] for i in mine), default=None)
        return service

    def add_oncall(
        self,
        user_id: str,
        escalation_policy_id: str,
        *,
        level: int = 1,
        schedule_id: str | None = None,
        start: datetime | timedelta | None = None,
        end: datetime | None = None,
    ) -> Obj:
        """One on-call entry. Without a schedule, ``start`` and ``end`` are ``null`` (a user named
        directly in an escalation rule is always on call), as the API returns them."""
        entry = {
            "escalation_policy": reference(self.escalation_policies[escalation_policy_id]),
            "escalation_level": level,
            "schedule": reference(self.schedules[schedule_id]) if schedule_id else None,
            "user": reference(self.users[user_id]),
            "start": iso(self._at(start)) if schedule_id else None,
            "end": iso(end) if schedule_id and end else None,
        }
        self.oncalls.append(entry)
        return entry

    def on_call_now(self, escalation_policy_id: str, level: int = 1) -> list[str]:
        """Ids of the users on call now at ``level`` of the policy."""
        users: list[str] = []
        for entry in self.oncalls:
            if entry["escalation_policy"]["id"] != escalation_policy_id or entry["escalation_level"] != level:
                continue
            start = parse_time(entry["start"]) if entry["start"] else None
            end = parse_time(entry["end"]) if entry["end"] else None
            if (start is None or start <= self.now) and (end is None or self.now < end):
                users.append(entry["user"]["id"])
        return users

    def add_incident(
        self,
        service_id: str,
        title: str,
        *,
        incident_id: str | None = None,
        status: IncidentStatus = "triggered",
        urgency: str = "high",
        created_at: datetime | timedelta | None = None,
        resolved_after: timedelta = timedelta(minutes=30),
        assignee_ids: Sequence[str] | None = None,
        priority_id: str | None = None,
        alert_details: dict[str, Any] | None = None,
        incident_key: str | None = None,
        source: str = "Prometheus Alertmanager",
    ) -> Obj:
        """An incident with one alert (``title``, ``alert_details``) and the log entries its
        ``status`` implies. Assignees default to the users on call now at level 1 of the service's
        escalation policy; a resolved incident keeps none, as in PagerDuty."""
        if status not in INCIDENT_STATUSES:
            raise ValueError(f"status must be one of {INCIDENT_STATUSES}")
        service = self.services[service_id]
        policy_id = service["escalation_policy"]["id"]
        created = self._at(created_at)
        responders = list(assignee_ids) if assignee_ids is not None else self.on_call_now(policy_id)
        incident_id = incident_id or self.new_id("Q", 14)
        number = len(self.incidents) + 1
        acked_at = created + timedelta(minutes=4)
        resolved_at = created + resolved_after if status == "resolved" else None
        incident = {
            "id": incident_id,
            "type": "incident",
            "summary": f"[#{number}] {title}",
            "incident_number": number,
            "title": title,
            "description": title,
            "created_at": iso(created),
            "updated_at": iso(resolved_at or (acked_at if status == "acknowledged" else created)),
            "status": status,
            "incident_key": incident_key or self._random.randbytes(16).hex(),
            "service": reference(service),
            "assignments": []
            if status == "resolved"
            else [{"at": iso(created), "assignee": reference(self.users[u])} for u in responders],
            "assigned_via": "escalation_policy",
            "last_status_change_at": iso(resolved_at or (acked_at if status == "acknowledged" else created)),
            "resolved_at": iso(resolved_at) if resolved_at else None,
            "acknowledgements": [
                {"at": iso(acked_at), "acknowledger": reference(self.users[u])} for u in responders[:1]
            ]
            if status == "acknowledged"
            else [],
            "is_mergeable": True,
            "escalation_policy": dict(service["escalation_policy"]),
            "teams": [dict(t) for t in service["teams"]],
            "pending_actions": [],
            "priority": reference(self.priorities[priority_id]) if priority_id else None,
            "urgency": urgency,
            "incident_type": {"name": "incident_default"},
            "conference_bridge": None,
            "resolve_reason": None,
        }
        self.incidents[incident_id] = incident
        self.alerts[incident_id] = []
        self.log_entries[incident_id] = []
        self.notes[incident_id] = []
        self.add_alert(incident_id, title, details=alert_details, created_at=created)
        self._history(incident, responders, source, acked_at, resolved_at)
        return incident

    def _history(
        self,
        incident: Obj,
        responders: list[str],
        source: str,
        acked_at: datetime,
        resolved_at: datetime | None,
    ) -> None:
        created = parse_time(incident["created_at"])
        integration = {"id": self.new_id(), "type": "events_api_v2_inbound_integration_reference"}
        integration["summary"] = source
        self.add_log_entry(
            incident["id"],
            "trigger_log_entry",
            f"Triggered through the API by {source}.",
            at=created,
            agent=integration,
            channel={"type": "api", "summary": incident["title"]},
        )
        people = [self.users[u] for u in responders]
        if people:
            names = ", ".join(p["name"] for p in people)
            self.add_log_entry(
                incident["id"],
                "assign_log_entry",
                f"Assigned to {names}.",
                at=created,
                agent=reference(self.escalation_policies[incident["escalation_policy"]["id"]]),
                extra={"assignees": [reference(p) for p in people]},
            )
            for person in people:
                self.add_log_entry(
                    incident["id"],
                    "notify_log_entry",
                    f"Notified {person['name']} by SMS.",
                    at=created + timedelta(seconds=30),
                    agent=reference(person),
                    channel={"type": "sms"},
                    extra={"user": reference(person)},
                )
        closer = reference(people[0]) if people else None
        if incident["status"] in ("acknowledged", "resolved") and closer:
            self.add_log_entry(
                incident["id"], "acknowledge_log_entry", f"Acknowledged by {closer['summary']}.", at=acked_at
            )
            self.log_entries[incident["id"]][-1]["agent"] = closer
        if resolved_at is not None:
            who = f" by {closer['summary']}" if closer else ""
            self.add_log_entry(incident["id"], "resolve_log_entry", f"Resolved{who}.", at=resolved_at)
            self.log_entries[incident["id"]][-1]["agent"] = closer
            for alert in self.alerts[incident["id"]]:
                alert["status"] = "resolved"

    def add_alert(
        self,
        incident_id: str,
        summary: str,
        *,
        severity: str = "critical",
        details: dict[str, Any] | None = None,
        created_at: datetime | timedelta | None = None,
        alert_key: str | None = None,
    ) -> Obj:
        incident = self.incidents[incident_id]
        alert = {
            "id": self.new_id("Q", 14),
            "type": "alert",
            "summary": summary,
            "created_at": iso(self._at(created_at)),
            "status": "resolved" if incident["status"] == "resolved" else "triggered",
            "alert_key": alert_key or incident["incident_key"],
            "service": dict(incident["service"]),
            "severity": severity,
            "suppressed": False,
            "body": {"type": "alert_body", "contexts": [], "details": dict(details or {})},
            "incident": reference(incident),
        }
        self.alerts[incident_id].append(alert)
        return alert

    def add_log_entry(
        self,
        incident_id: str,
        entry_type: str,
        summary: str,
        *,
        at: datetime | timedelta | None = None,
        agent: Obj | None = None,
        channel: Obj | None = None,
        extra: Obj | None = None,
    ) -> Obj:
        incident = self.incidents[incident_id]
        entry = {
            "id": self.new_id("R", 26),
            "type": entry_type,
            "summary": summary,
            "created_at": iso(self._at(at)),
            "agent": agent,
            "channel": channel or {"type": "auto"},
            "service": dict(incident["service"]),
            "incident": reference(incident),
            "teams": [dict(t) for t in incident["teams"]],
            "contexts": [],
            "event_details": {},
            **(extra or {}),
        }
        self.log_entries[incident_id].append(entry)
        return entry

    def add_note(
        self, incident_id: str, content: str, *, user_id: str, at: datetime | timedelta | None = None
    ) -> Obj:
        """A note by ``user_id`` and its ``annotate_log_entry``, as the API records a POSTed note."""
        user = self.users[user_id]
        when = self._at(at)
        note = {
            "id": self.new_id(),
            "user": reference(user),
            "content": content,
            "created_at": iso(when),
            "channel": dict(NOTE_CHANNEL),
        }
        self.notes[incident_id].append(note)
        self.add_log_entry(
            incident_id,
            "annotate_log_entry",
            "Note added",
            at=when,
            agent=reference(user),
            channel={"type": "note", "summary": content},
        )
        self.incidents[incident_id]["updated_at"] = iso(when)
        return note

    def incident_view(self, incident_id: str) -> Obj:
        """The incident as served, with its alert counts and first trigger log entry."""
        incident = dict(self.incidents[incident_id])
        alerts = self.alerts.get(incident_id, [])
        triggered = sum(1 for a in alerts if a["status"] == "triggered")
        incident["alert_counts"] = {
            "all": len(alerts),
            "triggered": triggered,
            "resolved": len(alerts) - triggered,
        }
        first = next(iter(self.log_entries.get(incident_id, [])), None)
        incident["first_trigger_log_entry"] = (
            {"id": first["id"], "type": "trigger_log_entry_reference", "summary": first["summary"]}
            if first
            else None
        )
        return incident

    def add_integration(
        self,
        service_id: str,
        name: str,
        *,
        kind: str = "events_api_v2_inbound_integration",
        integration_id: str | None = None,
        created_at: datetime | timedelta | None = timedelta(days=300),
    ) -> Obj:
        """An integration of the service (``events_api_v2_inbound_integration`` for alerts,
        ``app_event_transform_inbound_integration``-like kinds for change events), listed on it."""
        service = self.services[service_id]
        integration: Obj = {
            "id": integration_id or self.new_id(),
            "type": kind,
            "summary": name,
            "name": name,
            "service": reference(service),
            "created_at": iso(self._at(created_at)),
            "vendor": None,
            "integration_key": self._random.randbytes(16).hex(),
        }
        self.integrations[integration["id"]] = integration
        service["integrations"].append(
            {"id": integration["id"], "type": f"{kind}_reference", "summary": name}
        )
        return integration

    def add_change_event(
        self,
        service_id: str,
        summary: str,
        *,
        at: datetime | timedelta | None = None,
        source: str = "github-actions",
        integration_id: str | None = None,
        custom_details: dict[str, Any] | None = None,
        links: Sequence[Obj] = (),
    ) -> Obj:
        """A change event (a deploy, a config push) sent to the service through an integration, in
        the shape ``GET /change_events`` returns it."""
        service = self.services[service_id]
        integration = self.integrations.get(integration_id or "")
        event = {
            "id": self.new_id("01", 26),
            "type": "change_event",
            "summary": summary,
            "timestamp": iso(self._at(at)),
            "source": source,
            "services": [reference(service)],
            "integration": (
                {
                    "id": integration["id"],
                    "type": "inbound_integration_reference",
                    "summary": integration["name"],
                }
                if integration
                else None
            ),
            "links": [dict(link) for link in links],
            "custom_details": dict(custom_details or {}),
        }
        self.change_events.append(event)
        return event
