"""sandbox inventory and SRE agent transcripts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sandbox_sessions",
        sa.Column("session_id", sa.String(40), primary_key=True),
        sa.Column("org_id", sa.String(63), nullable=False),
        sa.Column("team_node_id", sa.String(63), nullable=False),
        sa.Column("thread_key", sa.String(255), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("thread_ts", sa.String(64), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("sandbox_ref", sa.String(512), nullable=True),
        sa.Column("sandbox_details", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("agent_session_id", sa.String(128), nullable=True),
        sa.Column("ttl_s", sa.Integer(), nullable=False),
        sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("files_reset", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sandbox_sessions_thread", "sandbox_sessions", ["thread_key"])
    op.create_index("ix_sandbox_sessions_expiry", "sandbox_sessions", ["status", "expires_at"])
    op.create_table(
        "sandbox_turns",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            sa.String(40),
            sa.ForeignKey("sandbox_sessions.session_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sandbox_turns_session", "sandbox_turns", ["session_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_sandbox_turns_session", table_name="sandbox_turns")
    op.drop_table("sandbox_turns")
    op.drop_index("ix_sandbox_sessions_expiry", table_name="sandbox_sessions")
    op.drop_index("ix_sandbox_sessions_thread", table_name="sandbox_sessions")
    op.drop_table("sandbox_sessions")
