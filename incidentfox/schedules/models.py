"""The slot claims of scheduled reports: one row per schedule and fire time.

The primary key (``schedule_key``, ``slot_at``) is the claim: of several processes that find the
same slot due, only the one whose insert lands fires it, and the row remembers what came of it
(the run, or why none was made), which the App Home shows as the schedule's last result.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.config.models import ID_LENGTH
from incidentfox.db.base import Base, UTCDateTime, utcnow

SLOT_OUTCOMES = ("baseline", "claimed", "queued", "duplicate", "unrouted", "misconfigured", "failed")
"""``baseline``: the slot before the schedule was first seen (never fired; it marks where firing
starts). ``claimed``: a process took the slot and is submitting its run. The others: what the
pipeline answered (``failed``: the run could not be submitted at all)."""


class ScheduleSlot(Base):
    __tablename__ = "schedule_slots"

    schedule_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    """``{org}/{team}/{schedule id}/{fingerprint}``; the fingerprint changes with the cron or time zone."""
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    team_node_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    schedule_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    outcome: Mapped[str] = mapped_column(String(16))
    claimed_by: Mapped[str] = mapped_column(String(120))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    run_id: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    """Why no run was made (the pipeline's problems), in words for the App Home."""

    __table_args__ = (Index("ix_schedule_slots_team", "org_id", "team_node_id", "schedule_id", "slot_at"),)
