"""Which worker investigates a run: a claim with a lease in the run's own row (design §3, issue 11).

With several workers on one queue, a run can reach two of them: a queue entry redelivered after a
worker stalled, a run queued again by a restart while its first worker still runs it. The claim makes
that harmless. One conditional ``UPDATE`` takes the run for a worker when

* it is still unfinished (``queued`` or ``running``): a finished run is never started again;
* nobody else holds a live lease on it: a worker that died lets go when its lease runs out, and the
  next worker resumes the run from its persisted state;
* no earlier run of its thread is unfinished: one run per thread at a time, in arrival order, across
  every worker.

The worker renews its lease while the run goes on (``renew`` says whether it still holds it: a
worker that lost its lease must stop, another owns the run now) and lets go when it ends.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from incidentfox.agents.runs.models import Run
from incidentfox.db.base import utcnow

UNFINISHED = ("queued", "running")
UNQUEUED = "(not queued)"
"""``claimed_by`` of a run saved while the queue was unreachable: no worker can claim it, and the
stranded-run sweep queues it once the queue is back (``recovery.requeue_stranded``)."""


class Claim(enum.Enum):
    CLAIMED = "claimed"
    """This worker holds the run now."""
    FINISHED = "finished"
    """The run already ended (or is gone): drop the delivery."""
    HELD = "held"
    """Another worker holds a live lease on it: drop this duplicate delivery."""
    WAITING = "waiting"
    """An earlier run of its thread is unfinished: try again later."""


class RunClaims:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], worker_id: str) -> None:
        self.sessions = sessions
        self.worker_id = worker_id

    async def claim(self, run_id: str, *, lease_s: float, now: datetime | None = None) -> Claim:
        at = now or utcnow()
        earlier = aliased(Run)
        blocked_by_thread = exists().where(
            earlier.thread_key == Run.thread_key,
            earlier.run_id != Run.run_id,
            earlier.status.in_(UNFINISHED),
            or_(
                earlier.created_at < Run.created_at,
                and_(earlier.created_at == Run.created_at, earlier.run_id < Run.run_id),
            ),
        )
        statement = (
            update(Run)
            .where(
                Run.run_id == run_id,
                Run.status.in_(UNFINISHED),
                or_(Run.claimed_by.is_(None), Run.claimed_by == self.worker_id, Run.lease_until < at),
                or_(Run.thread_key.is_(None), ~blocked_by_thread),
            )
            .values(claimed_by=self.worker_id, lease_until=at + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as session:
            taken = (await session.execute(statement)).rowcount  # type: ignore[attr-defined]
            if taken:
                return Claim.CLAIMED
            row = (
                await session.execute(
                    select(Run.status, Run.claimed_by, Run.lease_until).where(Run.run_id == run_id)
                )
            ).first()
        if row is None or row.status not in UNFINISHED:
            return Claim.FINISHED
        if (
            row.claimed_by not in (None, self.worker_id)
            and row.lease_until is not None
            and row.lease_until >= at
        ):
            return Claim.HELD
        return Claim.WAITING

    async def renew(self, run_id: str, *, lease_s: float, now: datetime | None = None) -> bool:
        """Move this worker's lease on; ``False``: it does not hold the run any more."""
        at = now or utcnow()
        statement = (
            update(Run)
            .where(Run.run_id == run_id, Run.claimed_by == self.worker_id, Run.status.in_(UNFINISHED))
            .values(lease_until=at + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as session:
            return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]

    async def release(self, run_id: str) -> None:
        """Let go of the run (it ended, or this worker is stopping): the next worker need not wait."""
        statement = (
            update(Run)
            .where(Run.run_id == run_id, Run.claimed_by == self.worker_id)
            .values(claimed_by=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as session:
            await session.execute(statement)

    async def renew_all(self, *, lease_s: float, now: datetime | None = None) -> int:
        """Move on the lease of every unfinished run this worker holds (one statement); how many."""
        at = now or utcnow()
        statement = (
            update(Run)
            .where(Run.claimed_by == self.worker_id, Run.status.in_(UNFINISHED))
            .values(lease_until=at + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as session:
            return int((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]

    async def release_all(self) -> None:
        """Let go of every run this worker holds (it is stopping; whoever starts next takes them)."""
        statement = (
            update(Run)
            .where(Run.claimed_by == self.worker_id)
            .values(claimed_by=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as session:
            await session.execute(statement)
