"""Issuing, revoking and checking API tokens; every issue, revoke and failed check is audited."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.config import audit
from incidentfox.config.audit_limiter import FailureAuditLimiter
from incidentfox.config.models import ApiToken, Node
from incidentfox.config.permissions import AuthKind, Principal, require_org_admin
from incidentfox.config.tokens import (
    constant_time_equals,
    hash_token,
    new_token,
    new_token_id,
    parse_token,
)
from incidentfox.db.base import utcnow
from incidentfox.errors import BadRequest, NotFound, Unauthorized

MAX_TTL = timedelta(days=3650)


class TokenService:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        hash_key: bytes,
        admin_token: str | None,
        failure_limiter: FailureAuditLimiter | None = None,
    ) -> None:
        self._sessions = session_factory
        self._hash_key = hash_key
        self._admin_token = admin_token
        self._failure_limiter = failure_limiter or FailureAuditLimiter()

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization: Bearer …`` header, or ``Unauthorized``."""
        token = _bearer(authorization)
        if self._admin_token and constant_time_equals(token, self._admin_token):
            return Principal(kind="admin")
        parsed = parse_token(token)
        if parsed is None:
            raise Unauthorized("invalid token")
        digest = hash_token(self._hash_key, token)
        async with self._sessions() as session:
            row = (await session.scalars(select(ApiToken).where(ApiToken.token_hash == digest))).one_or_none()
        reason = _rejection(row, digest, parsed.org_id, parsed.team_node_id)
        if reason is not None:
            await self._record_failure(parsed.org_id, reason, row.token_id if row else None)
            raise Unauthorized(reason)
        assert row is not None
        kind: AuthKind = "org_admin" if row.kind == "org_admin" else "team"
        return Principal(kind=kind, org_id=row.org_id, team_node_id=row.team_node_id, token_id=row.token_id)

    def issue(
        self,
        session: AsyncSession,
        *,
        org_id: str,
        team_node_id: str | None,
        actor: str,
        label: str = "",
        expires_at: datetime | None = None,
    ) -> tuple[str, ApiToken]:
        """Create a token in the caller's transaction. The plaintext is returned once and never stored."""
        token = new_token(org_id, team_node_id)
        row = ApiToken(
            token_id=new_token_id(),
            token_hash=hash_token(self._hash_key, token),
            kind="team" if team_node_id else "org_admin",
            org_id=org_id,
            team_node_id=team_node_id,
            label=label,
            created_by=actor,
            expires_at=expires_at,
        )
        session.add(row)
        audit.record(
            session,
            org_id=org_id,
            actor=actor,
            action="token.issue",
            target=row.token_id,
            kind=row.kind,
            team_node_id=team_node_id,
            expires_at=expires_at.isoformat() if expires_at else None,
        )
        return token, row

    async def issue_for(
        self, principal: Principal, org_id: str, team_node_id: str | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        """``POST …/nodes/{team}/tokens`` (team token) or ``POST …/tokens`` (another org admin token)."""
        require_org_admin(principal, org_id)
        label = body.get("label", "")
        if not isinstance(label, str) or len(label) > 200:
            raise BadRequest("label must be a string of at most 200 characters")
        expires_at = _expiry(body.get("expires_in_seconds"))
        async with self._sessions.begin() as session:
            if team_node_id is not None:
                node = await session.get(Node, (org_id, team_node_id))
                if node is None:
                    raise NotFound(f"node {team_node_id!r} does not exist in org {org_id!r}")
                if node.kind != "team":
                    raise BadRequest(f"{team_node_id!r} is a {node.kind}; team tokens are issued for teams")
            elif await session.get(Node, (org_id, org_id)) is None:
                raise NotFound(f"org {org_id!r} does not exist")
            token, row = self.issue(
                session,
                org_id=org_id,
                team_node_id=team_node_id,
                actor=principal.actor,
                label=label,
                expires_at=expires_at,
            )
        return {"token": token, **_token_json(row)}

    async def revoke(
        self, principal: Principal, org_id: str, team_node_id: str | None, token_id: str
    ) -> dict[str, Any]:
        require_org_admin(principal, org_id)
        async with self._sessions.begin() as session:
            row = await session.get(ApiToken, token_id)
            if (
                row is None
                or row.org_id != org_id
                or (team_node_id is not None and row.team_node_id != team_node_id)
            ):
                raise NotFound(f"token {token_id!r} does not exist here")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                audit.record(
                    session,
                    org_id=org_id,
                    actor=principal.actor,
                    action="token.revoke",
                    target=token_id,
                    team_node_id=row.team_node_id,
                )
            return _token_json(row)

    async def list_tokens(self, principal: Principal, org_id: str) -> list[dict[str, Any]]:
        require_org_admin(principal, org_id)
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(ApiToken).where(ApiToken.org_id == org_id).order_by(ApiToken.created_at)
                )
            ).all()
        return [_token_json(row) for row in rows]

    async def _record_failure(self, org_id: str, reason: str, token_id: str | None) -> None:
        """Audit a failed authentication against the org the token names, if that org exists."""
        suppressed = self._failure_limiter.admit(org_id)
        if suppressed is None:
            return
        async with self._sessions.begin() as session:
            if await session.get(Node, (org_id, org_id)) is not None:
                audit.record(
                    session,
                    org_id=org_id,
                    actor="anonymous",
                    action="auth.failure",
                    target=token_id or "",
                    reason=reason,
                    earlier_failures_not_recorded=suppressed,
                )

    async def record_forbidden(self, principal: Principal, org_id: str, what: str) -> None:
        async with self._sessions.begin() as session:
            if await session.get(Node, (org_id, org_id)) is not None:
                audit.record(
                    session, org_id=org_id, actor=principal.actor, action="auth.forbidden", target=what
                )


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing token: send `Authorization: Bearer <token>`")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be `Bearer <token>`")
    return token.strip()


def _rejection(row: ApiToken | None, digest: str, org_id: str, team_node_id: str | None) -> str | None:
    if row is None or not constant_time_equals(row.token_hash, digest):
        return "invalid token"
    if row.org_id != org_id or row.team_node_id != team_node_id:
        return "invalid token"
    if row.revoked_at is not None:
        return "token has been revoked"
    if row.expires_at is not None and row.expires_at <= utcnow():
        return f"token expired at {row.expires_at.isoformat()}"
    return None


def _expiry(seconds: Any) -> datetime | None:
    if seconds is None:
        return None
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
        raise BadRequest("expires_in_seconds must be a positive integer")
    if seconds > MAX_TTL.total_seconds():
        raise BadRequest("expires_in_seconds may be at most ten years")
    return utcnow() + timedelta(seconds=seconds)


def _token_json(row: ApiToken) -> dict[str, Any]:
    return {
        "token_id": row.token_id,
        "kind": row.kind,
        "org_id": row.org_id,
        "team_node_id": row.team_node_id,
        "label": row.label,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }
