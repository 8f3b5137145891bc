"""config service tables

Revision ID: 0001
Revises:
Create Date: 2026-11-27 09:39:28.822593
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("org_id", sa.String(length=63), nullable=False),
        sa.Column("team_node_id", sa.String(length=63), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_api_tokens_org", ["org_id", "team_node_id"], unique=False)

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", sa.String(length=63), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_org_id", ["org_id", "id"], unique=False)

    op.create_table(
        "config_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", sa.String(length=63), nullable=False),
        sa.Column("node_id", sa.String(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_history")),
        sa.UniqueConstraint("org_id", "node_id", "version", name="uq_config_history_version"),
    )
    op.create_table(
        "nodes",
        sa.Column("org_id", sa.String(length=63), nullable=False),
        sa.Column("node_id", sa.String(length=63), nullable=False),
        sa.Column("parent_id", sa.String(length=63), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "parent_id"], ["nodes.org_id", "nodes.node_id"], name=op.f("fk_nodes_org_id_nodes")
        ),
        sa.PrimaryKeyConstraint("org_id", "node_id", name=op.f("pk_nodes")),
    )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.create_index("ix_nodes_org_parent", ["org_id", "parent_id"], unique=False)

    op.create_table(
        "routing_claims",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("org_id", sa.String(length=63), nullable=False),
        sa.Column("team_node_id", sa.String(length=63), nullable=False),
        sa.PrimaryKeyConstraint("kind", "identifier", name=op.f("pk_routing_claims")),
    )
    with op.batch_alter_table("routing_claims", schema=None) as batch_op:
        batch_op.create_index("ix_routing_claims_team", ["org_id", "team_node_id"], unique=False)

    op.create_table(
        "node_configs",
        sa.Column("org_id", sa.String(length=63), nullable=False),
        sa.Column("node_id", sa.String(length=63), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "node_id"],
            ["nodes.org_id", "nodes.node_id"],
            name=op.f("fk_node_configs_org_id_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "node_id", name=op.f("pk_node_configs")),
    )


def downgrade() -> None:
    op.drop_table("node_configs")
    with op.batch_alter_table("routing_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_claims_team")

    op.drop_table("routing_claims")
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_index("ix_nodes_org_parent")

    op.drop_table("nodes")
    op.drop_table("config_history")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_org_id")

    op.drop_table("audit_events")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_api_tokens_org")

    op.drop_table("api_tokens")
