"""A team's schedules as the App Home shows them: each with its next run and its last result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from incidentfox.agents.runs.service import RunSummary
from incidentfox.blocks.schedules import ScheduleLine
from incidentfox.config.service import ConfigService
from incidentfox.db.base import utcnow
from incidentfox.schedules.service import LastResult, SlotStore
from incidentfox.schedules.spec import ScheduleProblem, schedules_of


@dataclass(frozen=True, slots=True)
class BoardEntry:
    """A schedule's line and the run its last slot made (to link its thread), if any."""

    line: ScheduleLine
    last_run: RunSummary | None = None


def _thread_of(result: LastResult) -> RunSummary | None:
    """The last run as a ``RunSummary`` pointing at its thread's root message (``message_ts`` left
    out, so the link opens the thread, not the progress message inside it)."""
    if result.run_id is None or result.run_status is None:
        return None
    return RunSummary(
        run_id=result.run_id,
        status=result.run_status,
        source="schedule",
        kind="schedule",
        question="",
        channel_id=result.channel_id,
        thread_ts=result.thread_ts,
        message_ts=None if result.thread_ts else result.message_ts,
        created_at=result.slot_at,
        started_at=None,
        finished_at=None,
    )


class ScheduleBoard:
    def __init__(self, config: ConfigService, slots: SlotStore) -> None:
        self._config = config
        self._slots = slots

    async def for_team(
        self, org_id: str, team_node_id: str, *, now: datetime | None = None
    ) -> list[BoardEntry]:
        config = await self._config.effective_config_shared(org_id, team_node_id)
        found = schedules_of(config)
        if not found:
            return []
        results = await self._slots.last_results(org_id, team_node_id, [s.schedule_id for s in found])
        at = now or utcnow()
        entries = []
        for spec in found:
            if isinstance(spec, ScheduleProblem):
                entries.append(BoardEntry(ScheduleLine(spec.schedule_id, problem=spec.reason)))
                continue
            result = results.get(spec.schedule_id)
            line = ScheduleLine(
                schedule_id=spec.schedule_id,
                when=spec.describe(),
                timezone=spec.timezone,
                channel_id=spec.channel_id,
                enabled=spec.enabled,
                next_run=spec.next_slot(at),
                last_slot=result.slot_at.astimezone(spec.zone) if result else None,
                last_status=(result.run_status or result.outcome) if result else None,
                last_detail=result.detail if result else None,
            )
            entries.append(BoardEntry(line, _thread_of(result) if result else None))
        return entries
