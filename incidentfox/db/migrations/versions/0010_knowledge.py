"""knowledge base: searchable passages of each team's runbooks and past incidents

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 22:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "knowledge_passages",
        sa.Column("passage_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=63), nullable=False),
        sa.Column("team_node_id", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("section", sa.String(length=500), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.Column("happened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_model", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("passage_id", name=op.f("pk_knowledge_passages")),
        sa.UniqueConstraint(
            "org_id", "team_node_id", "kind", "source", "chunk", name=op.f("uq_knowledge_passages_org_id")
        ),
    )
    op.create_index(
        "ix_knowledge_passages_team", "knowledge_passages", ["org_id", "team_node_id", "updated_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_knowledge_passages_team", table_name="knowledge_passages")
    op.drop_table("knowledge_passages")
