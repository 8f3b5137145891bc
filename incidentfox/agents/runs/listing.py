"""The console's reads of runs: pages of an org's or a team's runs (keyset pagination on
``created_at`` and ``run_id``), one run, and its feedback votes. HTTP lives in ``views.py``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import load_only

from incidentfox.agents.runs.models import Run, RunFeedback
from incidentfox.errors import BadRequest

_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_LIST_COLUMNS = (
    Run.run_id,
    Run.org_id,
    Run.team_node_id,
    Run.status,
    Run.source,
    Run.kind,
    Run.question,
    Run.origin,
    Run.channel_id,
    Run.thread_ts,
    Run.created_at,
    Run.started_at,
    Run.finished_at,
)
"""What a list row needs: never the events, RCA or pending final message of a page of runs."""


class RunListing:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def run(self, run_id: str) -> Run | None:
        if not _RUN_ID.fullmatch(run_id):
            return None
        async with self.sessions() as session:
            return await session.get(Run, run_id)

    async def votes(self, run_id: str) -> Sequence[RunFeedback]:
        async with self.sessions() as session:
            query = (
                select(RunFeedback)
                .where(RunFeedback.run_id == run_id)
                .order_by(RunFeedback.at, RunFeedback.user_id)
            )
            return (await session.scalars(query)).all()

    async def page(
        self, org: str, *, team: str | None, status: str | None, limit: int, before: str | None
    ) -> Sequence[Run]:
        async with self.sessions() as session:
            return await _page(session, org, team=team, status=status, limit=limit, before=before)


async def _page(
    session: AsyncSession, org: str, *, team: str | None, status: str | None, limit: int, before: str | None
) -> Sequence[Run]:
    """Up to ``limit + 1`` runs (the extra one says another page exists), newest first.

    With a team this walks ``ix_runs_team`` (org, team, created_at) in order; for a whole org the
    database sorts the org's runs by time."""
    query = select(Run).options(load_only(*_LIST_COLUMNS)).where(Run.org_id == org)
    if team is not None:
        query = query.where(Run.team_node_id == team)
    if status is not None:
        query = query.where(Run.status == status)
    if before is not None:
        at, run_id = await _cursor(session, org, team, before)
        query = query.where(or_(Run.created_at < at, and_(Run.created_at == at, Run.run_id < run_id)))
    query = query.order_by(Run.created_at.desc(), Run.run_id.desc()).limit(limit + 1)
    return (await session.scalars(query)).all()


async def _cursor(session: AsyncSession, org: str, team: str | None, before: str) -> tuple[datetime, str]:
    """Where the page starting after run ``before`` begins: that run's time and id."""
    row = None
    if _RUN_ID.fullmatch(before):
        row = (
            await session.execute(
                select(Run.created_at, Run.org_id, Run.team_node_id).where(Run.run_id == before)
            )
        ).one_or_none()
    if row is None or row.org_id != org or (team is not None and row.team_node_id != team):
        raise BadRequest(
            "before must be the next_before of a previous page: the id of a run in this list",
            code="invalid_cursor",
        )
    return row.created_at, before
