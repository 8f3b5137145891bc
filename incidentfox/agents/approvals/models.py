"""Approvals: the persisted record of each write action a run asked to take, and the typed values
that pass between a write tool, the approval gate and the Slack buttons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.config.models import ID_LENGTH
from incidentfox.db.base import Base, UTCDateTime, utcnow

ApprovalStatus = Literal["pending", "approved", "denied", "expired", "cancelled"]
DecisionStatus = Literal["approved", "denied", "expired", "cancelled"]
"""``cancelled``: the run stopped (interrupt, shutdown) while the request was still open."""


class Approval(Base):
    """One write action waiting for, or decided by, a human. ``args`` are scrubbed of secrets.

    The status leaves ``pending`` exactly once, by a conditional UPDATE (``WHERE status='pending'``),
    so concurrent clicks, retried deliveries and other processes agree on a single decision.
    """

    __tablename__ = "approvals"

    approval_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(40))
    org_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    team_node_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    requester: Mapped[str] = mapped_column(String(200), default="")
    toolset: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(500))
    reason: Mapped[str] = mapped_column(Text, default="")
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_approvals_run", "run_id"),)

    @property
    def description(self) -> str:
        """``rollout restart deployment prod/checkout``."""
        return f"{self.action} {self.target}"


@dataclass(frozen=True, slots=True)
class ActionDescription:
    """How a write action reads to the person asked to approve it."""

    action: str
    """The verb phrase, e.g. ``rollout restart``."""
    target: str
    """What it acts on, e.g. ``deployment prod/checkout``."""
    reason: str = ""
    """Why the agent wants it, in its words."""


@runtime_checkable
class DescribesAction(Protocol):
    """Implemented by a write tool's parameters so approvers see an exact, readable action."""

    def describe_action(self) -> ActionDescription: ...


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A write tool call waiting to be approved: what it is and the (scrubbed) arguments it was given."""

    toolset: str
    tool: str
    description: ActionDescription
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return f"{self.description.action} {self.description.target}"


@dataclass(frozen=True, slots=True)
class Decision:
    """How an approval request ended; ``by`` is the deciding Slack user id (empty when nobody decided)."""

    status: DecisionStatus
    by: str = ""
