"""The append-only audit log: writes and per-org queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.config.models import AuditEvent

INSTALLATION_AUDIT_ORG = ""
"""The org of audit rows that belong to no org (a webhook for a service or repo nobody claims);
no org id can be empty, so no org admin ever reads them. ``GET /api/v1/audit`` is the admin's view."""


def record(
    session: AsyncSession, *, org_id: str, actor: str, action: str, target: str = "", **detail: Any
) -> None:
    """Add an audit row to the caller's transaction, so it commits or rolls back with the change."""
    session.add(AuditEvent(org_id=org_id, actor=actor, action=action, target=target, detail=detail))


async def list_events(
    session: AsyncSession,
    org_id: str,
    *,
    limit: int = 100,
    before_id: int | None = None,
    action: str | None = None,
) -> list[dict[str, Any]]:
    query = select(AuditEvent).where(AuditEvent.org_id == org_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if action:
        query = query.where(AuditEvent.action == action)
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
