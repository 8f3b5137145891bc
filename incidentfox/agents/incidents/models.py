"""The source → Slack thread mapping of what arrives by webhook: incidents (PagerDuty, incident.io)
and GitHub pull requests, issues and failed CI runs.

One row per incident or pull request: which team and thread it belongs to, its latest known state
(shown in the thread's root message), and what is still owed to Slack or to the source: lines for
the thread, an edit of the root message, write-backs (the RCA note, the PR comment). Webhook events
may arrive out of order, twice, or while IncidentFox is down; the row makes every one of them find
the same thread, and the owed work survives restarts (``IncidentNotifier`` delivers it with backoff).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.config.models import ID_LENGTH
from incidentfox.db.base import Base, UTCDateTime, utcnow


class IncidentThread(Base):
    __tablename__ = "incident_threads"

    incident_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    """``pagerduty:{incident id}``, ``incidentio:{org}:{incident id}``, ``github:{owner/repo}#{number}``
    (a pull request or issue) or ``github:{owner/repo}/runs/{run id}`` (a failed run of no PR)."""
    source: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    team_node_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The incident as last seen: number, title, status, urgency, priority, service, assignees, url."""
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the newest event applied to ``state`` happened (an older event adds a line, not a state)."""
    run_id: Mapped[str | None] = mapped_column(String(40))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    root_ts: Mapped[str | None] = mapped_column(String(64))
    """The root message's ``ts`` (the thread); ``None`` until the investigation posted it."""
    pending_lines: Mapped[list[str]] = mapped_column(JSON, default=list)
    root_stale: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """The write-backs still owed to the source (``{"writes": [WriteBack.as_json(), …]}``: the RCA note
    on a PagerDuty incident, a comment on a GitHub pull request); ``None`` when nothing is."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the owed work is tried next; ``None`` when nothing is owed."""
    last_error: Mapped[str | None] = mapped_column(Text)
    event_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The ids of the latest events applied, so a redelivered event changes nothing."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_incident_threads_next_at", "next_at"),
        Index("ix_incident_threads_run", "run_id"),
    )
