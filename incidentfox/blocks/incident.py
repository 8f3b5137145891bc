"""The root message of an incident's thread (PagerDuty, incident.io) and its one-line updates.

``state`` is the incident as ``IncidentThread.state`` keeps it: ``number``, ``title``, ``status``,
``urgency``, ``priority``, ``service``, ``assignees`` (names), ``url`` and ``source``. Every value
comes from a webhook, so all of it is escaped; the link is shown only when it is http(s).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from incidentfox.blocks.components import Block, context, header, section
from incidentfox.blocks.limits import escape_mrkdwn, mrkdwn, one_line

SOURCE_NAMES = {"pagerduty": "PagerDuty", "incidentio": "incident.io"}
STATUS_MARKS = {
    "triggered": "🔴 Triggered",
    "acknowledged": "🟠 Acknowledged",
    "resolved": "✅ Resolved",
}
_FIELD_MAX = 200


def field_text(value: Any, limit: int = _FIELD_MAX) -> str:
    """A value from a webhook as one escaped mrkdwn line; empty when there is none."""
    return mrkdwn(one_line(str(value)), limit) if value not in (None, "") else ""


def safe_link(url: Any, label: str) -> str:
    """A mrkdwn link to an http(s) ``url`` that cannot break out of ``<…|…>``; empty otherwise.

    ``label`` must already be escaped."""
    text = str(url or "")
    if not text.startswith(("https://", "http://")) or any(c in text for c in "<>| "):
        return ""
    return f"<{text}|{label}>"


def incident_title(state: Mapping[str, Any]) -> str:
    """``PagerDuty #1234: Checkout API error rate above 5%`` (plain text)."""
    source = SOURCE_NAMES.get(str(state.get("source")), "Incident")
    number = f" #{state['number']}" if state.get("number") not in (None, "") else ""
    return one_line(f"{source}{number}: {state.get('title') or 'untitled incident'}")


def render_incident_root(state: Mapping[str, Any]) -> list[Block]:
    """Header, status and details, and a context line with the link and what IncidentFox does."""
    status = str(state.get("status") or "triggered")
    facts = [f"*Status:* {STATUS_MARKS.get(status, field_text(status.capitalize()))}"]
    if state.get("urgency"):
        facts.append(f"*Urgency:* {field_text(state['urgency'])}")
    if state.get("priority"):
        facts.append(f"*Priority:* {field_text(state['priority'])}")
    if state.get("service"):
        facts.append(f"*Service:* {field_text(state['service'])}")
    assignees: Sequence[Any] = state.get("assignees") or []
    facts.append(f"*Assigned to:* {field_text(', '.join(map(str, assignees))) if assignees else 'nobody'}")
    source = SOURCE_NAMES.get(str(state.get("source")), "the incident tool")
    link = safe_link(state.get("url"), f"Open in {source}")
    footer = "IncidentFox investigates it in this thread."
    return [
        header(incident_title(state)),
        section("\n".join(facts)),
        context(f"{link} · {footer}" if link else footer),
    ]


def incident_root_text(state: Mapping[str, Any]) -> str:
    """The notification text of the root message (shown where blocks are not), escaped: Slack parses
    ``<!channel>`` in a message's ``text``, and the title comes from the webhook."""
    return escape_mrkdwn(f"{incident_title(state)} ({state.get('status') or 'triggered'})")
