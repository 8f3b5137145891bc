"""run attempts, pending final messages, delivery pruning index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("final_message", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("final_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("final_next_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_runs_final_next_at", "runs", ["final_next_at"])
    op.create_index("ix_deliveries_received_at", "deliveries", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_received_at", table_name="deliveries")
    op.drop_index("ix_runs_final_next_at", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("final_next_at")
        batch.drop_column("final_attempts")
        batch.drop_column("final_message")
        batch.drop_column("attempts")
