"""A finished investigation as a knowledge passage: its question and RCA, with a link to its thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incidentfox.agents.runs.models import Run
from incidentfox.agents.toolsets.slack_views import permalink

SLACK_WEB = "https://slack.com"
"""Slack sends ``slack.com/archives/…`` links on to the reader's own workspace."""
TITLE_CHARS = 150
EVIDENCE_LINES = 5


@dataclass(frozen=True, slots=True)
class IncidentPassage:
    run_id: str
    title: str
    text: str
    url: str | None
    happened_at: datetime | None


def thread_url(run: Run) -> str | None:
    """The Slack link of the run's final message in its thread, or of the thread itself."""
    if not run.channel_id:
        return None
    ts = run.message_ts or run.thread_ts
    if not ts:
        return None
    return permalink(SLACK_WEB, run.channel_id, ts, run.thread_ts)


def incident_passage(run: Run) -> IncidentPassage | None:
    """What a finished run leaves for later searches; ``None`` when it ended without an RCA."""
    rca: Any = run.rca
    if run.status != "succeeded" or not isinstance(rca, dict):
        return None
    summary = str(rca.get("summary") or "").strip()
    root_cause = str(rca.get("root_cause") or "").strip()
    if not summary and not root_cause:
        return None
    question = " ".join(run.question.split())
    title = question or summary
    lines = [f"Question: {question}" if question else "", f"Summary: {summary}", f"Root cause: {root_cause}"]
    for evidence in (rca.get("evidence") or [])[:EVIDENCE_LINES]:
        if isinstance(evidence, dict) and evidence.get("quote"):
            lines.append(f"Evidence ({evidence.get('source', '')}): {evidence['quote']}")
    actions = [str(a) for a in (rca.get("immediate_actions") or [])]
    if actions:
        lines.append("Actions: " + "; ".join(actions))
    return IncidentPassage(
        run_id=run.run_id,
        title=title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…",
        text="\n".join(line for line in lines if line),
        url=thread_url(run),
        happened_at=run.finished_at,
    )
