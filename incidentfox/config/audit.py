"""The append-only audit log: writes and per-org queries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.config.models import AuditEvent
from incidentfox.errors import BadRequest

INSTALLATION_AUDIT_ORG = ""
"""The org of audit rows that belong to no org (a webhook for a service or repo nobody claims);
no org id can be empty, so no org admin ever reads them. ``GET /api/v1/audit`` is the admin's view."""

_FILTER_LIMITS = {"action": 64, "actor": 200, "target": 255}
"""The longest value each filter may take: the width of its column, so a longer one can never match."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def record(
    session: AsyncSession, *, org_id: str, actor: str, action: str, target: str = "", **detail: Any
) -> None:
    """Add an audit row to the caller's transaction, so it commits or rolls back with the change."""
    session.add(AuditEvent(org_id=org_id, actor=actor, action=action, target=target, detail=detail))


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which rows of an org's audit log to show. An empty or absent value does not filter.

    * ``action``: exact (``config.write``, ``token.issue``, ``auth.forbidden``, …).
    * ``actor``: exact (``admin``, ``org_admin:tok_…``, ``team:{team}:tok_…``, ``slack:T…:U…``).
    * ``target``: a prefix of the row's target. What the target holds depends on the action: the node
      id for ``node.create``, ``node.update`` and ``config.write`` (so ``target=payments`` gives that
      node's writes, and also those of any node whose id starts with ``payments``; add
      ``action=config.write`` to narrow); the org id for ``org.create``; the token id (``tok_…``) for
      ``token.issue``, ``token.revoke`` and ``auth.failure``; ``METHOD /path`` for ``auth.forbidden``
      (``target=GET /api/v1/orgs/acme/nodes/payments`` finds refused reads of that node); the approval
      id for ``approval.*``.
    """

    action: str | None = None
    actor: str | None = None
    target: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> AuditFilter:
        """Read the filters from query parameters; a value too long or with control characters is a 400."""
        values: dict[str, str | None] = {}
        for name, limit in _FILTER_LIMITS.items():
            value = query.get(name) or None
            if value is not None and (len(value) > limit or _CONTROL.search(value)):
                raise BadRequest(
                    f"{name} must be at most {limit} characters, without control characters",
                    code="invalid_filter",
                )
            values[name] = value
        return cls(**values)


async def list_events(
    session: AsyncSession,
    org_id: str,
    *,
    limit: int = 100,
    before_id: int | None = None,
    filters: AuditFilter | None = None,
) -> list[dict[str, Any]]:
    """The org's newest events first (ids below ``before_id`` when given), at most ``limit`` of them.

    Every query walks ``ix_audit_events_org_id`` (org, id) newest first and stops after ``limit``
    matches; the filters are checked on the rows it walks. The target prefix is compared with
    ``substr`` rather than ``LIKE``: SQLite's ``LIKE`` ignores case and both treat ``_`` (as in
    ``tok_…``) as a wildcard, and neither could use an index here anyway.
    """
    filters = filters or AuditFilter()
    query = select(AuditEvent).where(AuditEvent.org_id == org_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.target:
        prefix = filters.target
        query = query.where(func.substr(AuditEvent.target, 1, len(prefix)) == prefix)
    rows = (await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))).all()
    return [
        {
            "id": row.id,
            "at": row.at.isoformat(),
            "actor": row.actor,
            "action": row.action,
            "target": row.target,
            "detail": row.detail,
        }
        for row in rows
    ]
