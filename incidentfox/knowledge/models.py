"""ORM model of the knowledge base: one row per searchable passage of a team's runbook or past incident.

A runbook is split at its headings into passages (``chunk`` 0, 1, …) so that a search lands on the
section that answers; a past incident is one passage (its question and RCA). ``embedding`` holds the
passage's sentence embedding as little-endian float32 bytes (a plain column: pgvector is not assumed),
``None`` until a model could compute it; ``embedding_model`` names the model that did, so vectors of
another model are never compared with the query's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.config.models import ID_LENGTH
from incidentfox.db.base import Base, UTCDateTime, utcnow

KINDS = ("runbook", "incident")
SOURCE_LENGTH = 500


class KnowledgePassage(Base):
    """One passage of a team's knowledge: a runbook section or a past incident's RCA."""

    __tablename__ = "knowledge_passages"

    passage_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    team_node_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(SOURCE_LENGTH))
    """The runbook's path as uploaded (``runbooks/postgres.md``), or the run id of a past incident."""
    chunk: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(SOURCE_LENGTH))
    section: Mapped[str] = mapped_column(String(SOURCE_LENGTH), default="")
    url: Mapped[str | None] = mapped_column(String(1000))
    """Where a person reads it: the incident's Slack thread, or the runbook's link when it has one."""
    text: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(40))
    """For a past incident: its run, whose 👍/👎 feedback ranks it."""
    happened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """For a past incident: when its investigation finished."""
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("org_id", "team_node_id", "kind", "source", "chunk"),
        Index("ix_knowledge_passages_team", "org_id", "team_node_id", "updated_at"),
    )
