"""The sandbox inventory and the SRE agent's transcripts, kept in the database so both survive restarts.

One ``SandboxSession`` per Slack thread the SRE agent works in: which sandbox holds its files
(``backend`` + ``sandbox_ref``: a directory or a pod), when it was last used, and when its files
expire (1 hour after the last activity by default). The reaper destroys what expired, whichever
process created it. ``SandboxTurn`` rows are the conversation as it happened, so a message after
expiry rehydrates a fresh sandbox with a summary and the recent turns.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.config.models import ID_LENGTH
from incidentfox.db.base import Base, UTCDateTime, utcnow

SESSION_STATUSES = ("active", "expired", "ended")
"""``active``: the sandbox exists (its files too); ``expired``: the reaper destroyed it after its TTL
(the transcript remains); ``ended``: the session was closed for good (limits, or the team's choice)."""


class SandboxSession(Base):
    __tablename__ = "sandbox_sessions"

    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    team_node_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    thread_key: Mapped[str] = mapped_column(String(255))
    """The Slack thread that is the session (``{workspace}:{channel}:{thread_ts}``)."""
    channel_id: Mapped[str] = mapped_column(String(64))
    thread_ts: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(32))
    sandbox_ref: Mapped[str | None] = mapped_column(String(512))
    """Where the files live: the workdir path (local) or ``namespace/pod`` (kubernetes)."""
    sandbox_details: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    """The backend's own handles (``Sandbox.details``): enough to destroy it after a restart."""
    status: Mapped[str] = mapped_column(String(16), default="active")
    agent_session_id: Mapped[str | None] = mapped_column(String(128))
    """The Claude CLI's own session id, to resume the same conversation while the sandbox lives."""
    ttl_s: Mapped[int] = mapped_column(Integer, default=3600)
    last_active_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    turns: Mapped[int] = mapped_column(Integer, default=0)
    files_reset: Mapped[int] = mapped_column(Integer, default=0)
    """How many times the files were lost to expiry and the conversation rehydrated."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_sandbox_sessions_thread", "thread_key"),
        Index("ix_sandbox_sessions_expiry", "status", "expires_at"),
    )


class SandboxTurn(Base):
    __tablename__ = "sandbox_turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("sandbox_sessions.session_id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))
    """``user``, ``assistant`` or ``tool`` (a short line naming the tool and its input)."""
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_sandbox_turns_session", "session_id", "id"),)
