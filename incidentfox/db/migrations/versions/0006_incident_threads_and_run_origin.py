"""incident threads for webhook incidents; where a run came from

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incident_threads",
        sa.Column("incident_key", sa.String(255), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("org_id", sa.String(63), nullable=False),
        sa.Column("team_node_id", sa.String(63), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(40), nullable=True),
        sa.Column("channel_id", sa.String(64), nullable=True),
        sa.Column("root_ts", sa.String(64), nullable=True),
        sa.Column("pending_lines", sa.JSON(), nullable=False),
        sa.Column("root_stale", sa.Boolean(), nullable=False),
        sa.Column("note", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("event_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_incident_threads_next_at", "incident_threads", ["next_at"])
    op.create_index("ix_incident_threads_run", "incident_threads", ["run_id"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("origin", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("origin")
    op.drop_index("ix_incident_threads_run", table_name="incident_threads")
    op.drop_index("ix_incident_threads_next_at", table_name="incident_threads")
    op.drop_table("incident_threads")
