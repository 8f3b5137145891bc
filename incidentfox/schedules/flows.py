"""The scheduler: finds the schedules whose slot is due, claims each slot, and submits its run.

Every process that takes triggers runs one ``Scheduler``; the slot claim (``SlotStore.claim``)
makes exactly one of them fire a slot, and the run's ``delivery_id`` is derived from the slot, so
even a slot fired twice (a claimer that died after submitting, taken over) makes one run.

A run opens its own thread in the schedule's channel the way a webhook's run does: the slot is
recorded as an ``incident_threads`` row whose state the root message shows (``blocks/schedules``),
and the worker posts that root and investigates in its thread.

After downtime only the newest missed slot fires, once; a schedule seen for the first time (or whose
cron or time zone changed) starts from the slot before it was seen (a ``baseline`` row), so adding a
weekly report on a Tuesday does not post last Monday's at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from incidentfox.agents.incidents.store import IncidentEvent, IncidentStore
from incidentfox.config.service import ConfigService
from incidentfox.db.base import utcnow
from incidentfox.handlers.pipeline import Accepted, Duplicate, Misconfigured, PipelineOutcome, TriggerPipeline
from incidentfox.handlers.trigger import RoutingKey, Trigger
from incidentfox.schedules.service import SlotRef, SlotStore
from incidentfox.schedules.spec import ScheduleSpec, schedules_of

log = logging.getLogger(__name__)
POLL_S = 30.0
STALE_CLAIM = timedelta(minutes=2)
"""A slot still ``claimed`` this long after its claim lost its claimer before the run was submitted."""
DELIVERY_ID_MAX = 200


@dataclass(frozen=True, slots=True)
class DueSchedule:
    org_id: str
    team_node_id: str
    spec: ScheduleSpec

    def slot(self, at: datetime) -> SlotRef:
        return SlotRef(self.org_id, self.team_node_id, self.spec.schedule_id, self.spec.fingerprint, at)


def thread_key_of(slot: SlotRef) -> str:
    """The ``incident_threads`` key of a slot's report."""
    return f"schedule:{slot.schedule_key}@{slot.slot_at:%Y%m%dT%H%M%SZ}"


def delivery_id_of(slot: SlotRef) -> str:
    """The run's delivery id: the same for every process that fires this slot, so it runs once."""
    key = thread_key_of(slot)
    if len(key) <= DELIVERY_ID_MAX:
        return key
    return "schedule:" + hashlib.sha256(key.encode()).hexdigest()


def root_state(schedule: DueSchedule, slot_at: datetime) -> dict[str, str]:
    """What the report's root message shows (``blocks/schedules.render_schedule_root``)."""
    spec = schedule.spec
    return {
        "source": "schedule",
        "schedule_id": spec.schedule_id,
        "when": spec.describe(),
        "timezone": spec.timezone,
        "slot": slot_at.astimezone(spec.zone).strftime("%Y-%m-%d %H:%M %Z"),
        "prompt": spec.prompt,
    }


class Scheduler:
    def __init__(
        self,
        *,
        config: ConfigService,
        slots: SlotStore,
        pipeline: TriggerPipeline,
        incidents: IncidentStore,
        worker_id: str,
        poll_s: float = POLL_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``clock``: what time it is for the schedules (tests move it); claims are timed by the real one."""
        self._config = config
        self._slots = slots
        self._pipeline = pipeline
        self._incidents = incidents
        self.worker_id = worker_id
        self.poll_s = poll_s
        self.clock = clock

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:
                log.warning("scheduled reports not checked error=%s; retrying", type(exc).__name__)
            await asyncio.sleep(self.poll_s)

    async def tick(self) -> list[SlotRef]:
        """Fire every slot that is due and unclaimed; the slots this process fired."""
        now = self.clock()
        schedules = await self.schedules()
        newest = await self._slots.newest_slots({s.slot(now).schedule_key for s in schedules})
        fired: list[SlotRef] = []
        for schedule in schedules:
            latest = schedule.slot(schedule.spec.latest_slot(now))
            known = newest.get(latest.schedule_key)
            if known is not None and latest.slot_at <= known:
                continue
            if not schedule.spec.enabled:
                await self._slots.claim(latest, by=self.worker_id, outcome="baseline")
                continue
            if known is None:
                seen_from = schedule.slot(schedule.spec.latest_slot(now - timedelta(seconds=self.poll_s * 2)))
                await self._slots.claim(seen_from, by=self.worker_id, outcome="baseline")
                if seen_from.slot_at == latest.slot_at:
                    continue
            if await self._slots.claim(latest, by=self.worker_id):
                await self._fire(schedule, latest)
                fired.append(latest)
        await self._take_over_stale(schedules)
        return fired

    async def schedules(self) -> list[DueSchedule]:
        """Every complete schedule of every team (schedules that cannot run are shown on the Home)."""
        found: list[DueSchedule] = []
        for org_id, team_node_id in await self._slots.scheduled_teams():
            try:
                config = await self._config.effective_config_shared(org_id, team_node_id)
            except Exception as exc:
                log.warning(
                    "schedules not read org=%s team=%s error=%s", org_id, team_node_id, type(exc).__name__
                )
                continue
            found.extend(
                DueSchedule(org_id, team_node_id, spec)
                for spec in schedules_of(config)
                if isinstance(spec, ScheduleSpec)
            )
        return found

    async def _fire(self, schedule: DueSchedule, slot: SlotRef) -> None:
        """Open the report's thread row and submit its run; the slot records what came of it. If this
        fails the slot stays ``claimed`` and is taken over after ``STALE_CLAIM``."""
        spec, delivery_id, thread_key = schedule.spec, delivery_id_of(slot), thread_key_of(slot)
        try:
            await self._incidents.record(
                IncidentEvent(
                    incident_key=thread_key,
                    source="schedule",
                    org_id=slot.org_id,
                    team_node_id=slot.team_node_id,
                    event_id=delivery_id,
                    occurred_at=slot.slot_at,
                    state=root_state(schedule, slot.slot_at),
                )
            )
            outcome = await self._pipeline.submit(
                Trigger(
                    source="schedule",
                    kind="schedule",
                    routing_key=RoutingKey(team=(slot.org_id, slot.team_node_id)),
                    text=spec.prompt,
                    thread_ref=None,
                    requester=f"schedule:{spec.schedule_id}",
                    delivery_id=delivery_id,
                    origin={
                        "incident_key": thread_key,
                        "channel_id": spec.channel_id,
                        "schedule_id": spec.schedule_id,
                        "slot_at": slot.slot_at.isoformat(),
                    },
                )
            )
            await self._settle(slot, outcome, delivery_id)
        except Exception:
            log.exception(
                "scheduled report not submitted org=%s team=%s schedule=%s slot=%s",
                slot.org_id,
                slot.team_node_id,
                slot.schedule_id,
                slot.slot_at.isoformat(),
            )
            return
        log.info(
            "scheduled report fired org=%s team=%s schedule=%s slot=%s outcome=%s",
            slot.org_id,
            slot.team_node_id,
            slot.schedule_id,
            slot.slot_at.isoformat(),
            type(outcome).__name__,
        )

    async def _settle(self, slot: SlotRef, outcome: PipelineOutcome, delivery_id: str) -> None:
        if isinstance(outcome, Accepted):
            await self._slots.settle(slot, outcome="queued", run_id=outcome.run_id, detail=None)
        elif isinstance(outcome, Duplicate):
            run_id = await self._slots.delivered_run(delivery_id)
            await self._slots.settle(
                slot, outcome="queued" if run_id else "duplicate", run_id=run_id, detail=None
            )
        elif isinstance(outcome, Misconfigured):
            detail = " ".join(outcome.problems)
            await self._slots.settle(slot, outcome="misconfigured", run_id=None, detail=detail)
        else:
            await self._slots.settle(
                slot, outcome="unrouted", run_id=None, detail="The team no longer exists."
            )

    async def _take_over_stale(self, schedules: list[DueSchedule]) -> None:
        by_key = {s.slot(self.clock()).schedule_key: s for s in schedules if s.spec.enabled}
        cutoff = utcnow() - STALE_CLAIM
        for row in await self._slots.stale_claims(by_key.keys(), claimed_before=cutoff):
            schedule = by_key[row.schedule_key]
            slot = schedule.slot(row.slot_at)
            if await self._slots.take_over(slot, by=self.worker_id, claimed_before=cutoff):
                log.warning(
                    "scheduled report taken over from a stopped claimer schedule=%s slot=%s claimer=%s",
                    slot.schedule_id,
                    slot.slot_at.isoformat(),
                    row.claimed_by,
                )
                await self._fire(schedule, slot)
