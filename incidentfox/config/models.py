"""ORM models of the config service: the org → unit → team tree, configs, history, tokens, claims, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKeyConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.db.base import Base, UTCDateTime, utcnow

ID_LENGTH = 63


class Node(Base):
    """A node of an org's tree. The org itself is the root node, whose ``node_id`` equals ``org_id``.

    ``path`` is the materialised chain of ids from the root (``acme/payments/checkout``), so a node's
    ancestors are known without a recursive query.
    """

    __tablename__ = "nodes"

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_nodes_org_parent", "org_id", "parent_id"),
        ForeignKeyConstraint(["org_id", "parent_id"], ["nodes.org_id", "nodes.node_id"]),
    )


class NodeConfig(Base):
    """A node's own config document (stored as given, nulls included; secrets encrypted) and its version."""

    __tablename__ = "node_configs"

    org_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (
        ForeignKeyConstraint(["org_id", "node_id"], ["nodes.org_id", "nodes.node_id"], ondelete="CASCADE"),
    )


class ConfigHistory(Base):
    """One row per config write: who, when, the version it produced and a secret-free JSON Patch diff."""

    __tablename__ = "config_history"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    node_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(16))
    diff: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("org_id", "node_id", "version", name="uq_config_history_version"),)


class ApiToken(Base):
    """An org-admin or team token. Only the keyed hash of the token is stored."""

    __tablename__ = "api_tokens"

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    team_node_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_api_tokens_org", "org_id", "team_node_id"),)


class RoutingClaim(Base):
    """One claimed identifier (a Slack channel, a GitHub repo, a PagerDuty service); unique per identifier."""

    __tablename__ = "routing_claims"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(255), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    team_node_id: Mapped[str] = mapped_column(String(ID_LENGTH))

    __table_args__ = (Index("ix_routing_claims_team", "org_id", "team_node_id"),)


class AuditEvent(Base):
    """An append-only audit record: config writes, token issue/revoke, auth failures."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_events_org_id", "org_id", "id"),)
