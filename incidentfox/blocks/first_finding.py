"""Instant triage in Slack: the first finding on top of the live message.

The live message shows the latest ``FirstFinding`` under its status line (the timeline below scrolls,
the first finding stays); the final RCA says whether the investigation confirmed or overturned it
(``blocks.rca``).
"""

from __future__ import annotations

from collections.abc import Sequence

from incidentfox.agents.events import FirstFinding, ProgressEvent, SimilarIncidents
from incidentfox.agents.rca import Evidence
from incidentfox.blocks.components import Block, context, section
from incidentfox.blocks.limits import mrkdwn, one_line
from incidentfox.blocks.rca import evidence_line

RESOURCE_MAX = 200
SYMPTOM_MAX = 500
EVIDENCE_MAX = 600


def first_finding(events: Sequence[ProgressEvent]) -> FirstFinding | None:
    """The run's latest first finding, if the checks found one."""
    return next((e for e in reversed(events) if isinstance(e, FirstFinding)), None)


def first_finding_blocks(events: Sequence[ProgressEvent], *, checking: bool = True) -> list[Block]:
    """One section: the resource, its symptom, and the decisive evidence line with its source;
    ``checking`` while the run still works on it (not once it was interrupted or ended)."""
    found = first_finding(events)
    if found is None:
        return []
    text = (
        f"🩺 *First finding* ({mrkdwn(one_line(found.agent), 40)} checks): "
        f"*{mrkdwn(one_line(found.resource), RESOURCE_MAX)}* — {mrkdwn(one_line(found.symptom), SYMPTOM_MAX)}"
    )
    if found.evidence.strip():
        evidence = Evidence(quote=found.evidence, source=found.source or found.agent, url=found.url)
        text += "\n" + evidence_line(evidence, quote_limit=EVIDENCE_MAX)
    if checking:
        text += "\n_The investigation is checking it now._"
    return [section(text)]


def similar_blocks(events: Sequence[ProgressEvent]) -> list[Block]:
    """The team's closest past incidents, linked, under the first finding (when the knowledge base
    had any)."""
    found = next((e for e in reversed(events) if isinstance(e, SimilarIncidents)), None)
    return [context(found.text)] if found is not None and found.text else []
