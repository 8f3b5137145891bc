"""The progress journal: the events of running runs, written to the database as they happen.

Writing each event as it arrives would cost one database write per event (hundreds per run).
Instead the journal looks at the runs it tracks every ``interval_s`` seconds and stores, in one
transaction, the events of those that have new ones: at most one write a second for the whole
worker, and a crash loses at most the last second of a timeline. The run's final write stores the
complete list, so the journal forgets a run before it finishes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from incidentfox.agents.events import ProgressEvent, event_to_dict
from incidentfox.agents.runs.service import RunStore

log = logging.getLogger(__name__)


class ProgressJournal:
    def __init__(self, runs: RunStore, *, interval_s: float = 1.0) -> None:
        self._runs = runs
        self.interval_s = interval_s
        self._tracked: dict[str, Sequence[ProgressEvent]] = {}
        self._saved: dict[str, int] = {}

    def track(self, run_id: str, events: Sequence[ProgressEvent]) -> None:
        """Follow a run's live list of events (append-only)."""
        self._tracked[run_id] = events
        self._saved[run_id] = 0

    def forget(self, run_id: str) -> None:
        self._tracked.pop(run_id, None)
        self._saved.pop(run_id, None)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()

    async def flush(self) -> None:
        """Store the events of every tracked run that has new ones; failures are retried next time."""
        batch = {
            run_id: [event_to_dict(event) for event in events]
            for run_id, events in list(self._tracked.items())
            if len(events) != self._saved.get(run_id)
        }
        if not batch:
            return
        try:
            await self._runs.save_progress(batch)
        except Exception as exc:
            log.warning("saving progress failed runs=%d error=%s", len(batch), type(exc).__name__)
            return
        for run_id, events in batch.items():
            if run_id in self._saved:
                self._saved[run_id] = len(events)
