"""Runs a previous process accepted but did not finish: resumed at start, within limits.

A run that keeps killing its process (a poison question) or that waited through a long outage must
not run again forever. Each resume counts as an attempt; a run over ``MAX_ATTEMPTS`` or older than
the age limit ends ``failed`` with a plain message in its thread instead (delivered like any final
message, see ``agents/pending_finals.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from incidentfox.agents.events import Error, ProgressEvent, event_from_dict
from incidentfox.agents.pending_finals import final_message
from incidentfox.agents.queue import RunQueue
from incidentfox.agents.runs.entries import QueueEntries
from incidentfox.agents.runs.models import Run
from incidentfox.agents.runs.service import RunFinish, RunStore
from incidentfox.blocks.rca import error_text, render_error
from incidentfox.db.base import utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""Times a run is handed to a worker (the first time plus resumes) before it is ended instead."""

TOO_MANY_ATTEMPTS = (
    "IncidentFox stopped working on this question: it was cut off by a restart {attempts} times. "
    "Ask again to start over, and tell your IncidentFox admin if it keeps happening."
)
TOO_OLD = (
    "IncidentFox restarted before answering this question, and it is now more than {age} old, so it "
    "was not investigated again. Ask again if it still matters."
)


@dataclass(slots=True)
class Recovery:
    resumed: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)


def _age_words(limit: timedelta) -> str:
    minutes = int(limit.total_seconds() // 60)
    if minutes >= 60 and minutes % 60 == 0:
        hours = minutes // 60
        return "1 hour" if hours == 1 else f"{hours} hours"
    return "1 minute" if minutes == 1 else f"{max(minutes, 0)} minutes"


def why_not_resumed(run: Run, *, now: datetime, max_age: timedelta) -> str | None:
    """The plain-words reason a run must not run again, or ``None`` when it may."""
    if run.attempts >= MAX_ATTEMPTS:
        return TOO_MANY_ATTEMPTS.format(attempts=run.attempts)
    if now - run.created_at > max_age:
        return TOO_OLD.format(age=_age_words(max_age))
    return None


async def resume_unfinished(
    runs: RunStore, queue: RunQueue, entries: QueueEntries, *, max_age: timedelta
) -> Recovery:
    """Queue again the unfinished runs within the limits (counting the attempt); end the others.
    For the in-process queue, which a restart empties; Redis keeps its entries across restarts."""
    recovery = Recovery()
    now = utcnow()
    to_resume: list[Run] = []
    for run in await runs.unfinished():
        reason = why_not_resumed(run, now=now, max_age=max_age)
        if reason is None:
            to_resume.append(run)
            continue
        await _end_unresumed(runs, run, reason)
        recovery.ended.append(run.run_id)
    recovery.resumed = [run.run_id for run in to_resume]
    await runs.count_resumes(recovery.resumed)
    for run in to_resume:
        log.info("resuming run accepted before a restart run_id=%s status=%s", run.run_id, run.status)
        await queue.put(await entries.for_run(run.run_id, run.thread_key, run.org_id, run.team_node_id))
    return recovery


async def requeue_orphans(
    runs: RunStore,
    queue: RunQueue,
    entries: QueueEntries,
    *,
    queued: set[str],
    max_age: timedelta,
    limit: int = 10_000,
) -> Recovery:
    """After the run queue lost its entries (Redis restarted without persistence), queue again every
    unfinished run no worker holds and ``queued`` (the run ids with an entry) lacks, oldest first;
    those past the age limit end with a message. One queued twice meanwhile is harmless: its claim
    lets one delivery investigate it."""
    recovery = Recovery()
    now = utcnow()
    for run in await runs.orphans(now=now, limit=limit):
        if run.run_id in queued:
            continue
        reason = why_not_resumed(run, now=now, max_age=max_age)
        if reason is not None:
            await _end_unresumed(runs, run, reason)
            recovery.ended.append(run.run_id)
            continue
        await queue.put(await entries.for_run(run.run_id, run.thread_key, run.org_id, run.team_node_id))
        recovery.resumed.append(run.run_id)
    if recovery.resumed or recovery.ended:
        log.warning(
            "the run queue lost its entries: queued %d runs again, ended %d",
            len(recovery.resumed),
            len(recovery.ended),
        )
    return recovery


async def _end_unresumed(runs: RunStore, run: Run, reason: str) -> None:
    await end_run(runs, run, reason)
    log.warning(
        "run not resumed run_id=%s team=%s attempts=%d created_at=%s",
        run.run_id,
        run.team_node_id,
        run.attempts,
        run.created_at.isoformat(),
    )


async def end_run(runs: RunStore, run: Run, reason: str) -> None:
    """End ``run`` ``failed`` with ``reason`` in plain words, shown in its thread as its final message."""
    events: list[ProgressEvent] = [event_from_dict(event) for event in run.events or []]
    events.append(Error(message=reason))
    pending = (
        final_message(render_error(reason, run_id=run.run_id), error_text(reason)) if run.channel_id else None
    )
    await runs.finish(
        run.run_id, RunFinish(status="failed", events=events, error=reason, pending_final=pending)
    )


async def requeue_stranded(
    runs: RunStore, queue: RunQueue, entries: QueueEntries, *, limit: int = 500
) -> int:
    """Queue the runs that were saved while the queue was unreachable (``RunStore.mark_unqueued``);
    each is claimable again once its entry is in. Raises ``ConnectionError`` while the queue is still
    down (the rest wait for the next sweep)."""
    stranded = await runs.stranded(limit=limit)
    for run in stranded:
        await queue.put(await entries.for_run(run.run_id, run.thread_key, run.org_id, run.team_node_id))
        await runs.mark_queued(run.run_id)
    if stranded:
        log.warning("queued %d runs that had not reached the run queue", len(stranded))
    return len(stranded)
