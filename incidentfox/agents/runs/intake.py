"""Group commit for the ack path: deliveries and new runs from many triggers in one transaction.

Every trigger must be persisted before it is acknowledged, and under a burst hundreds arrive at
once. Committing each in its own transaction serialises them on the database's write lock (SQLite)
or on fsyncs (PostgreSQL). ``RunIntake`` queues each write with a future; one flusher task commits
everything queued so far in a single transaction, then resolves the futures. A lone trigger is
committed at once; under load, batches grow by themselves while the previous commit is running.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from incidentfox.agents.runs.models import Delivery, Run
from incidentfox.agents.runs.service import DuplicateDelivery, new_run_id
from incidentfox.db.base import utcnow
from incidentfox.db.engine import SessionFactory
from incidentfox.handlers.trigger import Trigger

log = logging.getLogger(__name__)
MAX_BATCH = 500


@dataclass(slots=True)
class _Pending:
    delivery_id: str
    outcome: str
    run: dict[str, Any] | None
    done: asyncio.Future[None]


def _origin_channel(trigger: Trigger) -> str | None:
    channel = trigger.origin.get("channel_id") if trigger.origin else None
    return str(channel) if channel else None


class RunIntake:
    def __init__(self, engine: AsyncEngine, sessions: SessionFactory) -> None:
        self._engine = engine
        self._sessions = sessions
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        insert_for_dialect = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._insert_deliveries = (
            insert_for_dialect(Delivery)
            .on_conflict_do_nothing(index_elements=["delivery_id"])
            .returning(Delivery.delivery_id)
        )
        """One statement for every batch (executemany), so SQLAlchemy compiles it once and caches it."""
        self._insert_runs = insert(Run)

    async def accept(self, trigger: Trigger, *, org_id: str, team_node_id: str) -> str:
        """Persist the delivery and a queued run; the run id, or ``DuplicateDelivery`` for a retry."""
        thread = trigger.thread_ref
        run_id = new_run_id()
        run: dict[str, Any] = {
            "run_id": run_id,
            "org_id": org_id,
            "team_node_id": team_node_id,
            "source": trigger.source,
            "kind": trigger.kind,
            "delivery_id": trigger.delivery_id,
            "thread_key": thread.key if thread else None,
            "channel_id": thread.channel_id if thread else _origin_channel(trigger),
            "thread_ts": thread.thread_ts if thread else None,
            "requester": trigger.requester,
            "question": trigger.text,
            "status": "queued",
            "events": [],
            "timings": {},
            "created_at": utcnow(),
            "origin": dict(trigger.origin) if trigger.origin else None,
        }
        await self._submit(trigger.delivery_id, "queued", run)
        return run_id

    async def refuse(self, delivery_id: str, outcome: str) -> None:
        """Remember a delivery that made no run, so its retry is recognised; ``DuplicateDelivery`` if seen."""
        await self._submit(delivery_id, outcome, None)

    async def _submit(self, delivery_id: str, outcome: str, run: dict[str, Any] | None) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(delivery_id, outcome, run, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        await done

    async def _flush_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            await self._flush(batch)

    async def _flush(self, batch: list[_Pending]) -> None:
        """Commit a batch; if it fails, commit its items one by one so one bad row fails only itself."""
        try:
            accepted = await self._commit(batch)
        except Exception as exc:
            if len(batch) > 1:
                log.warning("persisting %d triggers together failed; retrying one by one", len(batch))
                for item in batch:
                    await self._flush([item])
                return
            log.exception("persisting trigger failed delivery_id=%s", batch[0].delivery_id)
            if not batch[0].done.done():
                batch[0].done.set_exception(exc)
            return
        for item in batch:
            if item.done.done():
                continue
            if id(item) in accepted:
                item.done.set_result(None)
            else:
                item.done.set_exception(DuplicateDelivery(item.delivery_id))

    async def _commit(self, batch: list[_Pending]) -> set[int]:
        """Insert the batch; the ids (``id(item)``) of the items whose delivery was new."""
        first: dict[str, _Pending] = {}
        for item in batch:
            first.setdefault(item.delivery_id, item)
        now = utcnow()
        rows = [
            {
                "delivery_id": d,
                "outcome": i.outcome,
                "run_id": i.run["run_id"] if i.run else None,
                "received_at": now,
            }
            for d, i in first.items()
        ]
        async with self._sessions.writing(urgent=True), self._engine.begin() as connection:
            inserted = set((await connection.execute(self._insert_deliveries, rows)).scalars().all())
            runs = [run for d in inserted if (run := first[d].run) is not None]
            if runs:
                await connection.execute(self._insert_runs, runs)
        return {id(first[d]) for d in inserted}
