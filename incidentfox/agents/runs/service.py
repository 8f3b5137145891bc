"""Reads and writes of runs, their feedback and thread sessions."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.agents.events import ProgressEvent, event_to_dict
from incidentfox.agents.rca import RootCauseAnalysis
from incidentfox.agents.runs.claims import UNQUEUED
from incidentfox.agents.runs.models import Run, RunFeedback, ThreadSession
from incidentfox.db.base import utcnow


class DuplicateDelivery(Exception):
    """The delivery id was already accepted: a retry, not a new trigger."""


@dataclass(frozen=True, slots=True)
class RunFinish:
    status: str
    events: Sequence[ProgressEvent]
    rca: RootCauseAnalysis | None = None
    error: str | None = None
    history: list[dict[str, Any]] | None = None
    timings: dict[str, Any] | None = None
    pending_final: dict[str, Any] | None = None
    """The final message (``blocks``, ``text``) when Slack has not accepted it yet: kept for retries."""
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PendingFinal:
    """A finished run whose final message still waits for Slack."""

    run_id: str
    channel_id: str
    thread_ts: str | None
    message_ts: str | None
    message: dict[str, Any]
    attempts: int
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The few columns of a run that a list shows (not its events, RCA or history)."""

    run_id: str
    status: str
    source: str
    kind: str
    question: str
    channel_id: str | None
    thread_ts: str | None
    message_ts: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish; ``None`` until the run has both."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


_SUMMARY_COLUMNS = (
    Run.run_id,
    Run.status,
    Run.source,
    Run.kind,
    Run.question,
    Run.channel_id,
    Run.thread_ts,
    Run.message_ts,
    Run.created_at,
    Run.started_at,
    Run.finished_at,
)
IN_PROGRESS = ("queued", "running")


def new_run_id() -> str:
    return "run_" + secrets.token_hex(8)


class RunStore:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = session_factory

    async def get(self, run_id: str) -> Run | None:
        async with self.sessions() as session:
            return await session.get(Run, run_id)

    async def mark_running(self, run_id: str, *, message_ts: str | None) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(Run)
                .where(Run.run_id == run_id)
                .values(status="running", started_at=utcnow(), message_ts=message_ts)
            )

    async def attach_thread(self, run_id: str, *, channel_id: str, thread_ts: str, thread_key: str) -> None:
        """A webhook-triggered run posted its root message: from now on it lives in that thread."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(Run)
                .where(Run.run_id == run_id)
                .values(channel_id=channel_id, thread_ts=thread_ts, thread_key=thread_key)
            )

    async def finish(self, run_id: str, result: RunFinish) -> None:
        async with self.sessions.begin() as session:
            run = await session.get(Run, run_id)
            if run is None:
                return
            run.status = result.status
            run.finished_at = utcnow()
            run.claimed_by, run.lease_until = None, None
            run.events = [event_to_dict(event) for event in result.events]
            run.rca = result.rca.to_dict() if result.rca else None
            run.error = result.error
            run.timings = result.timings or {}
            run.final_message = result.pending_final
            run.final_attempts = 0
            run.final_next_at = (result.retry_at or utcnow()) if result.pending_final else None
            if result.history is not None and run.thread_key:
                await self._save_history(session, run, result.history)

    async def save_progress(self, events_by_run: Mapping[str, list[dict[str, Any]]]) -> None:
        """Store the events so far of runs still in progress, in one transaction (the progress journal)."""
        if not events_by_run:
            return
        table = cast(Table, Run.__table__)
        runs = table.c
        # One plain comparison per state: an IN list is an "expanding" parameter, which SQLAlchemy
        # refuses in an executemany (it failed every batch of more than one run).
        still_running = or_(*(runs.status == state for state in IN_PROGRESS))
        statement = (
            update(table)
            .where(runs.run_id == bindparam("rid"), still_running)
            .values(events=bindparam("evs"))
        )
        rows = [{"rid": run_id, "evs": events} for run_id, events in events_by_run.items()]
        async with self.sessions.begin() as session:
            await session.execute(statement, rows)

    async def count_resumes(self, run_ids: Sequence[str]) -> None:
        """One more attempt for each run handed to a worker again after a restart."""
        if not run_ids:
            return
        async with self.sessions.begin() as session:
            await session.execute(
                update(Run).where(Run.run_id.in_(run_ids)).values(attempts=Run.attempts + 1)
            )

    async def due_finals(self, now: datetime, *, limit: int = 100) -> list[PendingFinal]:
        """Pending final messages whose next try is due, the longest waiting first."""
        query = (
            select(
                Run.run_id,
                Run.channel_id,
                Run.thread_ts,
                Run.message_ts,
                Run.final_message,
                Run.final_attempts,
                Run.finished_at,
            )
            .where(Run.final_next_at.is_not(None), Run.final_next_at <= now)
            .order_by(Run.final_next_at)
            .limit(limit)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            PendingFinal(row[0], row[1] or "", row[2], row[3], row[4] or {}, row[5] or 0, row[6])
            for row in rows
        ]

    async def finals_due_now(self) -> None:
        """At start: finals a previous process was still showing itself are due at once, not after
        its edit window (that process is gone)."""
        now = utcnow()
        async with self.sessions.begin() as session:
            await session.execute(
                update(Run)
                .where(Run.final_next_at.is_not(None), Run.final_next_at > now)
                .values(final_next_at=now)
            )

    async def take_final(self, run_id: str, *, now: datetime, hold_until: datetime) -> bool:
        """Take a due pending final for one try: of several processes delivering finals, only the one
        whose update lands sends it; if that one dies mid-try, the final is due again at ``hold_until``."""
        statement = (
            update(Run)
            .where(Run.run_id == run_id, Run.final_next_at.is_not(None), Run.final_next_at <= now)
            .values(final_next_at=hold_until)
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as session:
            return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]

    async def final_settled(self, run_id: str, *, message_ts: str | None = None) -> None:
        """The final message is on screen (or its thread is gone): nothing is pending any more."""
        values: dict[str, Any] = {"final_message": None, "final_next_at": None}
        if message_ts is not None:
            values["message_ts"] = message_ts
        async with self.sessions.begin() as session:
            await session.execute(update(Run).where(Run.run_id == run_id).values(**values))

    async def final_retry(
        self, run_id: str, *, attempts: int, at: datetime, message: dict[str, Any] | None = None
    ) -> None:
        """Schedule the next try of a pending final message (``message`` replaces it, e.g. by plain text)."""
        values: dict[str, Any] = {"final_attempts": attempts, "final_next_at": at}
        if message is not None:
            values["final_message"] = message
        async with self.sessions.begin() as session:
            await session.execute(update(Run).where(Run.run_id == run_id).values(**values))

    async def record_feedback(self, run_id: str, user_id: str, vote: str) -> bool:
        """Store a vote (``up``/``down``), the latest per person winning; ``False`` when the run is gone.

        Two clicks racing to insert the same person's first vote meet the primary key; the loser
        updates the row instead.
        """
        for _ in range(2):
            try:
                async with self.sessions.begin() as session:
                    if await session.get(Run, run_id) is None:
                        return False
                    row = await session.get(RunFeedback, (run_id, user_id))
                    if row is None:
                        session.add(RunFeedback(run_id=run_id, user_id=user_id, vote=vote))
                    else:
                        row.vote = vote
                        row.at = utcnow()
                return True
            except IntegrityError:
                continue
        return True

    async def feedback(self, run_id: str) -> dict[str, str]:
        async with self.sessions() as session:
            rows = await session.scalars(select(RunFeedback).where(RunFeedback.run_id == run_id))
            return {row.user_id: row.vote for row in rows.all()}

    async def history(
        self, thread_key: str | None, *, org_id: str, team_node_id: str
    ) -> list[dict[str, Any]]:
        """The thread's conversation, if this team had it: after a channel's claim moves to another
        team, the previous owner's questions and answers never reach the new owner's model."""
        if not thread_key:
            return []
        async with self.sessions() as session:
            row = await session.get(ThreadSession, thread_key)
        if row is None or (row.org_id, row.team_node_id) != (org_id, team_node_id):
            return []
        return list(row.history)

    async def runs_in_thread(self, thread_key: str) -> list[Run]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Run).where(Run.thread_key == thread_key).order_by(Run.created_at)
            )
            return list(rows.all())

    async def mark_unqueued(self, run_id: str) -> None:
        """The run is saved but the queue did not take it: leave it for the stranded-run sweep."""
        async with self.sessions.begin() as session:
            await session.execute(update(Run).where(Run.run_id == run_id).values(claimed_by=UNQUEUED))

    async def stranded(self, *, limit: int) -> list[Run]:
        """Runs saved but never queued (``mark_unqueued``), oldest first."""
        query = (
            select(Run)
            .where(Run.status == "queued", Run.claimed_by == UNQUEUED)
            .order_by(Run.created_at)
            .limit(limit)
        )
        async with self.sessions() as session:
            return list(await session.scalars(query))

    async def orphans(self, *, now: datetime, limit: int) -> list[Run]:
        """Unfinished runs no worker holds (never claimed, or their lease ran out), oldest first: after
        the run queue lost its entries, these are the runs nothing would ever deliver again."""
        query = (
            select(Run)
            .where(
                Run.status.in_(("queued", "running")),
                or_(Run.claimed_by.is_(None), and_(Run.claimed_by != UNQUEUED, Run.lease_until < now)),
            )
            .order_by(Run.created_at)
            .limit(limit)
        )
        async with self.sessions() as session:
            return list(await session.scalars(query))

    async def mark_queued(self, run_id: str) -> None:
        """The sweep queued it: workers may claim it now."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(Run).where(Run.run_id == run_id, Run.claimed_by == UNQUEUED).values(claimed_by=None)
            )

    async def unfinished(self) -> list[Run]:
        """Runs a previous process accepted but did not finish (queued or running), oldest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Run).where(Run.status.in_(("queued", "running"))).order_by(Run.created_at)
            )
            return list(rows.all())

    async def recent_for_team(self, org_id: str, team_id: str, *, limit: int = 10) -> list[RunSummary]:
        """The team's newest runs, newest first: one scan of ``ix_runs_team`` however many it has."""
        query = (
            select(*_SUMMARY_COLUMNS)
            .where(Run.org_id == org_id, Run.team_node_id == team_id)
            .order_by(Run.created_at.desc())
            .limit(limit)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        return [RunSummary(*row) for row in rows]

    async def in_progress_for_team(self, org_id: str, team_id: str, *, limit: int = 20) -> list[RunSummary]:
        """The team's queued and running runs, newest first."""
        query = (
            select(*_SUMMARY_COLUMNS)
            .where(Run.org_id == org_id, Run.team_node_id == team_id, Run.status.in_(IN_PROGRESS))
            .order_by(Run.created_at.desc())
            .limit(limit)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        return [RunSummary(*row) for row in rows]

    async def _save_history(self, session: AsyncSession, run: Run, history: list[dict[str, Any]]) -> None:
        assert run.thread_key is not None
        row = await session.get(ThreadSession, run.thread_key)
        if row is None:
            session.add(
                ThreadSession(
                    thread_key=run.thread_key,
                    org_id=run.org_id,
                    team_node_id=run.team_node_id,
                    history=history,
                )
            )
        else:
            row.org_id, row.team_node_id = run.org_id, run.team_node_id
            row.history = history
            row.updated_at = utcnow()
