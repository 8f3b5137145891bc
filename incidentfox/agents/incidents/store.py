"""Reads and writes of ``incident_threads``: events applied in any order, the thread attached once,
and the work still owed to Slack or the source (write-backs), due with backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.agents.incidents.models import IncidentThread
from incidentfox.agents.incidents.writeback import WriteBack, writes_of
from incidentfox.agents.runs.models import Run
from incidentfox.db.base import utcnow
from incidentfox.db.engine import SessionFactory

MAX_PENDING_LINES = 50
"""Lines kept for a thread that cannot be posted yet; the oldest are dropped beyond this."""
MAX_BATCH = 200
"""Events applied in one transaction at most."""
MAX_EVENT_IDS = 200
"""Event ids remembered per incident for dedupe (an incident sees a few dozen events at most)."""


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One webhook event about an incident, as every source's adapter reduces it."""

    incident_key: str
    source: str
    org_id: str
    team_node_id: str
    event_id: str
    occurred_at: datetime
    state: Mapping[str, Any] = field(default_factory=dict)
    """The fields this event knows (status, assignees, …); merged into the row's state when newer."""
    line: str | None = None
    """What to say in the thread (``None`` for the event that opens it)."""


@dataclass(frozen=True, slots=True)
class _Recording:
    event: IncidentEvent
    run_id: str | None
    done: asyncio.Future[bool]


@dataclass(frozen=True, slots=True)
class OwedWork:
    """What ``IncidentNotifier`` still has to do for one incident (a snapshot of its row)."""

    incident_key: str
    source: str
    org_id: str
    team_node_id: str
    state: dict[str, Any]
    run_id: str | None
    channel_id: str
    root_ts: str
    lines: list[str]
    root_stale: bool
    writes: list[WriteBack]
    attempts: int


class IncidentStore:
    """Reads and writes of ``incident_threads``.

    ``record`` is a group commit, like ``RunIntake``: a burst of webhook deliveries is applied in one
    transaction (one fsync, one turn at SQLite's writer) instead of one each, in arrival order, so
    several events of one incident in a batch still apply one after the other.
    """

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self._pending: list[_Recording] = []
        self._flusher: asyncio.Task[None] | None = None

    async def get(self, incident_key: str) -> IncidentThread | None:
        async with self.sessions() as session:
            return await session.get(IncidentThread, incident_key)

    async def record(self, event: IncidentEvent, *, run_id: str | None = None) -> bool:
        """Apply ``event``: its state when it is the newest seen, its line always; a thread that
        exists already gets its root message refreshed and the line posted soon. ``False`` when the
        event was applied before (a redelivery), which changes nothing."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(_Recording(event, run_id, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        return await done

    async def _flush_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            await self._flush(batch)

    async def _flush(self, batch: list[_Recording]) -> None:
        """Apply a batch in one transaction; if it fails, apply its events one by one so that one bad
        event fails only its own delivery."""
        try:
            async with self.sessions.begin() as session:
                applied = [await self._apply(session, item.event, item.run_id) for item in batch]
        except Exception as exc:
            if len(batch) > 1:
                for item in batch:
                    await self._flush([item])
                return
            if not batch[0].done.done():
                batch[0].done.set_exception(exc)
            return
        for item, result in zip(batch, applied, strict=True):
            if not item.done.done():
                item.done.set_result(result)

    async def _apply(self, session: AsyncSession, event: IncidentEvent, run_id: str | None) -> bool:
        row = await self._locked(session, event)
        if event.event_id in (row.event_ids or []):
            return False
        if (row.org_id, row.team_node_id) != (event.org_id, event.team_node_id):
            _rehome(row, event)
        row.event_ids = [*(row.event_ids or []), event.event_id][-MAX_EVENT_IDS:]
        if run_id and not row.run_id:
            row.run_id = run_id
        newer = row.last_event_at is None or event.occurred_at >= row.last_event_at
        if newer and event.state:
            row.state = {**(row.state or {}), **event.state}
            row.last_event_at = event.occurred_at
            row.root_stale = row.root_ts is not None or row.root_stale
        if event.line:
            row.pending_lines = [*(row.pending_lines or []), event.line][-MAX_PENDING_LINES:]
        if row.root_ts is not None and (row.pending_lines or row.root_stale):
            row.next_at = utcnow()
        row.updated_at = utcnow()
        await session.flush()
        return True

    async def attach_thread(self, incident_key: str, *, run_id: str, channel_id: str, root_ts: str) -> None:
        """The investigation posted the root message: lines and edits owed so far are due now."""
        async with self.sessions.begin() as session:
            row = await session.get(IncidentThread, incident_key, with_for_update=True)
            if row is None:
                return
            row.run_id, row.channel_id, row.root_ts = run_id, channel_id, root_ts
            row.root_stale = False
            row.next_at = utcnow() if row.pending_lines or row.note else None
            row.updated_at = utcnow()

    async def thread_key(self, incident_key: str, *, org_id: str, team_node_id: str) -> str | None:
        """The Slack thread (its session key) this team's row was answered in, if it has one yet."""
        query = (
            select(Run.thread_key)
            .join(IncidentThread, IncidentThread.run_id == Run.run_id)
            .where(
                IncidentThread.incident_key == incident_key,
                IncidentThread.org_id == org_id,
                IncidentThread.team_node_id == team_node_id,
                IncidentThread.root_ts.is_not(None),
            )
        )
        async with self.sessions() as session:
            return await session.scalar(query)

    async def owe(self, incident_key: str, writes: Sequence[WriteBack]) -> None:
        """Owe the source ``writes``; each replaces one still owed with the same key."""
        async with self.sessions.begin() as session:
            row = await session.get(IncidentThread, incident_key, with_for_update=True)
            if row is None:
                return
            keys = {write.key for write in writes}
            kept = [w for w in writes_of(row.note, incident_key) if w.key not in keys]
            row.note = {"writes": [w.as_json() for w in (*kept, *writes)]}
            row.attempts = 0
            row.next_at = utcnow()

    async def due(self, now: datetime, *, limit: int = 50) -> list[OwedWork]:
        query = (
            select(IncidentThread)
            .where(
                IncidentThread.next_at.is_not(None),
                IncidentThread.next_at <= now,
                IncidentThread.root_ts.is_not(None),
            )
            .order_by(IncidentThread.next_at)
            .limit(limit)
        )
        async with self.sessions() as session:
            rows = (await session.scalars(query)).all()
        return [
            OwedWork(
                incident_key=row.incident_key,
                source=row.source,
                org_id=row.org_id,
                team_node_id=row.team_node_id,
                state=dict(row.state or {}),
                run_id=row.run_id,
                channel_id=row.channel_id or "",
                root_ts=row.root_ts or "",
                lines=list(row.pending_lines or []),
                root_stale=row.root_stale,
                writes=writes_of(row.note, row.incident_key),
                attempts=row.attempts,
            )
            for row in rows
        ]

    async def settle(
        self,
        work: OwedWork,
        *,
        lines_sent: int,
        root_done: bool,
        writes_done: Collection[str],
        retry_at: datetime | None,
        error: str | None = None,
    ) -> None:
        """Record what was delivered of ``work`` (``writes_done``: the keys of the writes made or given
        up); what is left is tried again at ``retry_at``. A write owed anew meanwhile stays owed."""
        async with self.sessions.begin() as session:
            row = await session.get(IncidentThread, work.incident_key, with_for_update=True)
            if row is None:
                return
            row.pending_lines = list(row.pending_lines or [])[lines_sent:]
            if root_done and row.state == work.state:
                row.root_stale = False
            delivered = {w.key: w for w in work.writes if w.key in writes_done}
            left = [w for w in writes_of(row.note, row.incident_key) if delivered.get(w.key) != w]
            row.note = {"writes": [w.as_json() for w in left]} if left else None
            owed = bool(row.pending_lines or row.root_stale or row.note)
            failed = retry_at is not None
            row.attempts = row.attempts + 1 if failed else 0
            row.last_error = error if failed else None
            row.next_at = (retry_at if failed else utcnow()) if owed else None
            row.updated_at = utcnow()

    async def _locked(self, session: AsyncSession, event: IncidentEvent) -> IncidentThread:
        """The event's row, created if new, locked for this transaction (PostgreSQL)."""
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        now = utcnow()
        await session.execute(
            insert(IncidentThread)
            .values(
                incident_key=event.incident_key,
                source=event.source,
                org_id=event.org_id,
                team_node_id=event.team_node_id,
                state={},
                event_ids=[],
                pending_lines=[],
                root_stale=False,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["incident_key"])
        )
        row = await session.get(
            IncidentThread, event.incident_key, with_for_update=True, populate_existing=True
        )
        assert row is not None
        return row


def _rehome(row: IncidentThread, event: IncidentEvent) -> None:
    """The identifier's claim moved to another team: the row starts over for the new owner, so that
    nothing of the previous team's thread, state or owed writes (written with its credentials) is
    used for the new one."""
    row.org_id, row.team_node_id, row.source = event.org_id, event.team_node_id, event.source
    row.state, row.last_event_at, row.run_id = {}, None, None
    row.channel_id, row.root_ts, row.root_stale = None, None, False
    row.pending_lines, row.note, row.attempts, row.next_at, row.last_error = [], None, 0, None, None
