"""Reads and writes of the sandbox inventory and the SRE agent's transcripts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.db.base import utcnow
from incidentfox.sandboxes.models import SandboxSession, SandboxTurn

TURN_TEXT_LIMIT = 8000
"""A turn is stored up to this many characters: enough to rehydrate, small enough to keep."""


@dataclass(frozen=True, slots=True)
class SessionPlace:
    """Which team and Slack thread a session belongs to."""

    org_id: str
    team_node_id: str
    thread_key: str
    channel_id: str
    thread_ts: str


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    text: str
    at: datetime


def new_session_id() -> str:
    return "sbx_" + secrets.token_hex(8)


class SandboxStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def open(
        self,
        place: SessionPlace,
        *,
        backend: str,
        sandbox_ref: str | None,
        ttl_s: int,
        details: dict[str, str] | None = None,
    ) -> SandboxSession:
        now = utcnow()
        row = SandboxSession(
            session_id=new_session_id(),
            org_id=place.org_id,
            team_node_id=place.team_node_id,
            thread_key=place.thread_key,
            channel_id=place.channel_id,
            thread_ts=place.thread_ts,
            backend=backend,
            sandbox_ref=sandbox_ref,
            sandbox_details=dict(details or {}),
            status="active",
            ttl_s=ttl_s,
            last_active_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
            turns=0,
            files_reset=0,
            created_at=now,
        )
        async with self.sessions.begin() as session:
            session.add(row)
        return row

    async def get(self, session_id: str) -> SandboxSession | None:
        async with self.sessions() as session:
            return await session.get(SandboxSession, session_id)

    async def for_thread(self, thread_key: str) -> SandboxSession | None:
        """The thread's session that is not ended (active, or expired and waiting to be rehydrated)."""
        async with self.sessions() as session:
            query = (
                select(SandboxSession)
                .where(SandboxSession.thread_key == thread_key, SandboxSession.status != "ended")
                .order_by(SandboxSession.created_at.desc())
                .limit(1)
            )
            return (await session.scalars(query)).first()

    async def touch(self, session_id: str, *, now: datetime | None = None) -> None:
        """Activity: the files live ``ttl_s`` from now."""
        now = now or utcnow()
        async with self.sessions.begin() as session:
            row = await session.get(SandboxSession, session_id)
            if row is None or row.status != "active":
                return
            row.last_active_at = now
            row.expires_at = now + timedelta(seconds=row.ttl_s)

    async def record_turn(self, session_id: str, role: str, text: str) -> None:
        async with self.sessions.begin() as session:
            session.add(
                SandboxTurn(session_id=session_id, role=role, text=text[:TURN_TEXT_LIMIT], at=utcnow())
            )
            if role == "user":
                await session.execute(
                    update(SandboxSession)
                    .where(SandboxSession.session_id == session_id)
                    .values(turns=SandboxSession.turns + 1)
                )

    async def turns(self, session_id: str, *, limit: int = 1000) -> list[Turn]:
        """The newest ``limit`` turns, oldest first."""
        async with self.sessions() as session:
            query = (
                select(SandboxTurn)
                .where(SandboxTurn.session_id == session_id)
                .order_by(SandboxTurn.id.desc())
                .limit(limit)
            )
            rows = list((await session.scalars(query)).all())
        return [Turn(r.role, r.text, r.at) for r in reversed(rows)]

    async def set_agent_session(self, session_id: str, agent_session_id: str | None) -> None:
        await self._update(session_id, agent_session_id=agent_session_id)

    async def due_for_reaping(self, now: datetime, *, limit: int = 100) -> list[SandboxSession]:
        async with self.sessions() as session:
            query = (
                select(SandboxSession)
                .where(SandboxSession.status == "active", SandboxSession.expires_at <= now)
                .order_by(SandboxSession.expires_at)
                .limit(limit)
            )
            return list((await session.scalars(query)).all())

    async def mark_expired(self, session_id: str) -> None:
        """The sandbox and its files are gone; the transcript stays for rehydration."""
        await self._update(
            session_id, status="expired", sandbox_ref=None, sandbox_details={}, agent_session_id=None
        )

    async def mark_ended(self, session_id: str) -> None:
        await self._update(session_id, status="ended")

    async def attach(
        self, session_id: str, *, backend: str, sandbox_ref: str, details: dict[str, str]
    ) -> None:
        """Record the first sandbox of a session opened without one (the row exists first, because
        the sandbox's spec carries the session id); unlike ``reattach`` this is not a files reset."""
        await self._update(session_id, backend=backend, sandbox_ref=sandbox_ref, sandbox_details=details)

    async def reattach(
        self, session_id: str, *, backend: str, sandbox_ref: str, details: dict[str, str] | None = None
    ) -> None:
        """A fresh sandbox for an expired session: active again, its files counted as reset once more."""
        now = utcnow()
        async with self.sessions.begin() as session:
            row = await session.get(SandboxSession, session_id)
            if row is None:
                return
            row.status, row.backend, row.sandbox_ref = "active", backend, sandbox_ref
            row.sandbox_details = dict(details or {})
            row.files_reset += 1
            row.last_active_at = now
            row.expires_at = now + timedelta(seconds=row.ttl_s)

    async def _update(self, session_id: str, **values: object) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(SandboxSession).where(SandboxSession.session_id == session_id).values(**values)
            )
