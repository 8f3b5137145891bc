"""ORM models of the run engine: runs, deliveries seen (for dedupe) and thread sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.config.models import ID_LENGTH
from incidentfox.db.base import Base, UTCDateTime, utcnow

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "interrupted")


class Run(Base):
    """One investigation. Persisted before the trigger is acknowledged."""

    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    team_node_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(200))
    thread_key: Mapped[str | None] = mapped_column(String(255))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    thread_ts: Mapped[str | None] = mapped_column(String(64))
    requester: Mapped[str] = mapped_column(String(200), default="")
    question: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    message_ts: Mapped[str | None] = mapped_column(String(64))
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    rca: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    """Times a worker was handed this run: 1 at intake, plus one per resume after a restart."""
    final_message: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """``None`` is stored as SQL NULL (not JSON ``null``), so "nothing pending" reads the same in SQL."""
    """The final message (``blocks``, ``text``) while Slack has not accepted it yet; ``None`` once shown."""
    final_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    final_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the pending final message is tried next (with backoff); ``None`` when nothing is pending."""
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    """The worker investigating the run (``RunClaims``); another may take it once ``lease_until`` passed."""
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    origin: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """Where a webhook-triggered run came from and where it answers (``incident_key``, the channel of
    its root message, the PR to comment on); ``None`` for runs asked in Slack."""

    __table_args__ = (
        Index("ix_runs_thread", "thread_key", "created_at"),
        Index("ix_runs_team", "org_id", "team_node_id", "created_at"),
        Index("ix_runs_status", "status"),
        Index("ix_runs_final_next_at", "final_next_at"),
    )


class Delivery(Base):
    """A trigger delivery already accepted; a retry with the same id never makes a second run."""

    __tablename__ = "deliveries"

    delivery_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ThreadSession(Base):
    """The conversation of a Slack thread (or incident / PR), continued by follow-ups."""

    __tablename__ = "thread_sessions"

    thread_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    team_node_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RunFeedback(Base):
    """A 👍 or 👎 on a run's RCA; one vote per person per run, the latest wins."""

    __tablename__ = "run_feedback"

    run_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vote: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
