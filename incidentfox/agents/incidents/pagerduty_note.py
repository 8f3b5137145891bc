"""The PagerDuty write-back: a note on the incident with the RCA summary and the Slack thread's link.

Owed when a run that a page opened ends, unless the team turned notes off
(``integrations.pagerduty.post_notes: false``) or gave no API key to write with. Every failure is
worth retrying (PagerDuty's 429 says how long to wait), except a client that cannot be built at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from incidentfox.agents.incidents.writeback import DeliveryContext, WriteBack, WriteBackFailed
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.agents.toolsets.base import lookup_dotted
from incidentfox.agents.toolsets.pagerduty import add_incident_note
from incidentfox.agents.toolsets.pagerduty_api import RateLimited, connect, describe_failure

log = logging.getLogger(__name__)
NOTE_SUMMARY_MAX = 2_000
KIND = "pagerduty_note"


def note_text(outcome: InvestigationOutcome) -> str:
    """The note's text without the link (added when it is sent): plain text, PagerDuty shows no markup."""
    if outcome.rca is None:
        return f"IncidentFox could not finish the investigation: {outcome.error or 'unknown error'}"
    rca = outcome.rca
    lines = [
        f"IncidentFox RCA: {rca.summary}",
        f"Root cause: {rca.root_cause}",
        f"Confidence: {rca.confidence.level} ({rca.confidence.why})",
    ]
    lines.extend(f"Do now: {action}" for action in rca.immediate_actions[:3])
    return "\n".join(lines)[:NOTE_SUMMARY_MAX]


class PagerDutyNote:
    kind = KIND

    def owed(
        self, origin: Mapping[str, Any], outcome: InvestigationOutcome, config: Mapping[str, Any]
    ) -> list[WriteBack]:
        key = str(origin.get("incident_key") or "")
        if not key.startswith("pagerduty:"):
            return []
        if lookup_dotted(config, "integrations.pagerduty.post_notes") is False:
            return []
        if not lookup_dotted(config, "integrations.pagerduty.api_key"):
            return []
        incident_id = key.split(":", 1)[1]
        return [WriteBack(KIND, "note", note_text(outcome), {"incident_id": incident_id})]

    async def deliver(self, write: WriteBack, context: DeliveryContext) -> None:
        incident_id = str(write.target.get("incident_id") or "")
        doing = f"add the RCA as a note on PagerDuty incident {incident_id}"
        permalink = await context.permalink()
        content = f"{write.content}\nSlack thread: {permalink}" if permalink else write.content
        try:
            client = await connect(context.config)
        except Exception as exc:
            raise WriteBackFailed(f"Could not {doing}: {exc}", final=True) from exc
        try:
            await add_incident_note(client, incident_id, content)
        except Exception as exc:
            retry_after = exc.retry_after if isinstance(exc, RateLimited) and exc.retry_after else 0.0
            raise WriteBackFailed(
                describe_failure(exc, client.api_url, doing), retry_after=retry_after
            ) from exc
        finally:
            client.close()
        log.info("pagerduty note added incident_id=%s", incident_id)
