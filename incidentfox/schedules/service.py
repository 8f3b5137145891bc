"""Reads and writes of ``schedule_slots``, and which teams have schedules at all.

Every write that decides who fires a slot is one insert that either lands or conflicts on the
primary key, so two processes (or two hosts) sharing the database never both fire it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text, cast, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.agents.runs.models import Delivery, Run
from incidentfox.config.models import Node, NodeConfig
from incidentfox.db.base import utcnow
from incidentfox.schedules.models import ScheduleSlot

SCHEDULES_MARK = '"schedules"'
"""How a stored config document that may hold schedules is found without reading every one."""


@dataclass(frozen=True, slots=True)
class SlotRef:
    """One slot of one schedule of one team."""

    org_id: str
    team_node_id: str
    schedule_id: str
    fingerprint: str
    slot_at: datetime

    @property
    def schedule_key(self) -> str:
        return f"{self.org_id}/{self.team_node_id}/{self.schedule_id}/{self.fingerprint}"


@dataclass(frozen=True, slots=True)
class LastResult:
    """What the newest fired slot of a schedule came to (the App Home's "last result")."""

    slot_at: datetime
    outcome: str
    detail: str | None
    run_id: str | None
    run_status: str | None
    channel_id: str | None
    thread_ts: str | None
    message_ts: str | None


class SlotStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def scheduled_teams(self) -> list[tuple[str, str]]:
        """``(org, team)`` of every team whose config (its own or an ancestor's) may hold schedules."""
        async with self._sessions() as session:
            holders = (
                await session.execute(
                    select(Node.org_id, Node.path)
                    .join(
                        NodeConfig, (NodeConfig.org_id == Node.org_id) & (NodeConfig.node_id == Node.node_id)
                    )
                    .where(cast(NodeConfig.document, Text).contains(SCHEDULES_MARK))
                )
            ).all()
            if not holders:
                return []
            below = [
                (Node.org_id == org_id)
                & or_(Node.path == path, Node.path.startswith(f"{path}/", autoescape=True))
                for org_id, path in holders
            ]
            teams = await session.execute(
                select(Node.org_id, Node.node_id).where(Node.kind == "team", or_(*below)).order_by(Node.path)
            )
            return [(org_id, node_id) for org_id, node_id in teams.all()]

    async def newest_slots(self, keys: Collection[str]) -> dict[str, datetime]:
        """The newest slot recorded (fired or baseline) of each schedule key that has one."""
        if not keys:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(ScheduleSlot.schedule_key, func.max(ScheduleSlot.slot_at))
                .where(ScheduleSlot.schedule_key.in_(list(keys)))
                .group_by(ScheduleSlot.schedule_key)
            )
            return {key: newest for key, newest in rows.all() if newest is not None}

    async def claim(self, slot: SlotRef, *, by: str, outcome: str = "claimed") -> bool:
        """Take ``slot``: ``True`` for the one caller whose row landed, ``False`` for everyone else."""
        async with self._sessions.begin() as session:
            insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
            statement = (
                insert(ScheduleSlot)
                .values(
                    schedule_key=slot.schedule_key,
                    slot_at=slot.slot_at,
                    org_id=slot.org_id,
                    team_node_id=slot.team_node_id,
                    schedule_id=slot.schedule_id,
                    outcome=outcome,
                    claimed_by=by,
                    claimed_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["schedule_key", "slot_at"])
                .returning(ScheduleSlot.schedule_key)
            )
            return (await session.execute(statement)).first() is not None

    async def take_over(self, slot: SlotRef, *, by: str, claimed_before: datetime) -> bool:
        """Take a slot whose claimer stopped before submitting its run (still ``claimed`` since before
        ``claimed_before``); only one caller gets it."""
        statement = (
            update(ScheduleSlot)
            .where(
                ScheduleSlot.schedule_key == slot.schedule_key,
                ScheduleSlot.slot_at == slot.slot_at,
                ScheduleSlot.outcome == "claimed",
                ScheduleSlot.claimed_at < claimed_before,
            )
            .values(claimed_by=by, claimed_at=utcnow())
        )
        async with self._sessions.begin() as session:
            result = await session.execute(statement)
            return bool(getattr(result, "rowcount", 0))

    async def stale_claims(self, keys: Collection[str], *, claimed_before: datetime) -> list[ScheduleSlot]:
        """Slots of ``keys`` claimed before ``claimed_before`` whose run was never submitted."""
        if not keys:
            return []
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ScheduleSlot).where(
                    ScheduleSlot.schedule_key.in_(list(keys)),
                    ScheduleSlot.outcome == "claimed",
                    ScheduleSlot.claimed_at < claimed_before,
                )
            )
            return list(rows.all())

    async def delivered_run(self, delivery_id: str) -> str | None:
        """The run an earlier submission of ``delivery_id`` made, if it made one."""
        async with self._sessions() as session:
            delivery = await session.get(Delivery, delivery_id)
            return delivery.run_id if delivery is not None else None

    async def settle(self, slot: SlotRef, *, outcome: str, run_id: str | None, detail: str | None) -> None:
        """Record what the slot came to."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(ScheduleSlot)
                .where(ScheduleSlot.schedule_key == slot.schedule_key, ScheduleSlot.slot_at == slot.slot_at)
                .values(outcome=outcome, run_id=run_id, detail=detail[:2000] if detail else None)
            )

    async def last_results(
        self, org_id: str, team_node_id: str, schedule_ids: Sequence[str]
    ) -> dict[str, LastResult]:
        """The newest fired slot (not a baseline) of each of the team's schedules, with its run."""
        if not schedule_ids:
            return {}
        newest = (
            select(ScheduleSlot.schedule_id, func.max(ScheduleSlot.slot_at).label("slot_at"))
            .where(
                ScheduleSlot.org_id == org_id,
                ScheduleSlot.team_node_id == team_node_id,
                ScheduleSlot.schedule_id.in_(list(schedule_ids)),
                ScheduleSlot.outcome != "baseline",
            )
            .group_by(ScheduleSlot.schedule_id)
            .subquery()
        )
        query = (
            select(ScheduleSlot, Run.status, Run.channel_id, Run.thread_ts, Run.message_ts)
            .join(
                newest,
                (ScheduleSlot.schedule_id == newest.c.schedule_id)
                & (ScheduleSlot.slot_at == newest.c.slot_at),
            )
            .outerjoin(Run, Run.run_id == ScheduleSlot.run_id)
            .where(ScheduleSlot.org_id == org_id, ScheduleSlot.team_node_id == team_node_id)
            .order_by(ScheduleSlot.claimed_at)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return {
            slot.schedule_id: LastResult(
                slot_at=slot.slot_at,
                outcome=slot.outcome,
                detail=slot.detail,
                run_id=slot.run_id,
                run_status=status,
                channel_id=channel_id,
                thread_ts=thread_ts,
                message_ts=message_ts,
            )
            for slot, status, channel_id, thread_ts, message_ts in rows
        }
