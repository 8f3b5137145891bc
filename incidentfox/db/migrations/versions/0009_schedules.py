"""scheduled reports: one claim row per schedule and slot

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 22:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule_slots",
        sa.Column("schedule_key", sa.String(255), nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(63), nullable=False),
        sa.Column("team_node_id", sa.String(63), nullable=False),
        sa.Column("schedule_id", sa.String(63), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(120), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("schedule_key", "slot_at", name="pk_schedule_slots"),
    )
    op.create_index(
        "ix_schedule_slots_team", "schedule_slots", ["org_id", "team_node_id", "schedule_id", "slot_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_schedule_slots_team", table_name="schedule_slots")
    op.drop_table("schedule_slots")
