"""The incident store's group commit: a burst of events, some for the same incident, some repeated,
applied once each in arrival order, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from incidentfox.agents.incidents.store import IncidentEvent, IncidentStore
from incidentfox.bot.runtime import Runtime

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def _event(incident: int, n: int, *, status: str) -> IncidentEvent:
    return IncidentEvent(
        incident_key=f"pagerduty:Q{incident}",
        source="pagerduty",
        org_id="acme",
        team_node_id="checkout",
        event_id=f"E{incident}-{n}",
        occurred_at=T0 + timedelta(seconds=n),
        state={"status": status, "title": f"incident {incident}"},
        line=f"line {n}",
    )


async def test_a_burst_is_applied_once_per_event_with_the_newest_state(runtime: Runtime) -> None:
    store = IncidentStore(runtime.sessions)
    events = [
        _event(i, n, status="acknowledged" if n == 9 else "triggered") for i in range(5) for n in range(10)
    ]
    redelivered = [_event(i, 3, status="triggered") for i in range(5)]
    applied = await asyncio.gather(*(store.record(e) for e in [*events, *redelivered]))
    assert applied == [True] * 50 + [False] * 5
    for i in range(5):
        row = await store.get(f"pagerduty:Q{i}")
        assert row is not None
        assert row.state == {"status": "acknowledged", "title": f"incident {i}"}
        assert row.pending_lines == [f"line {n}" for n in range(10)], "in arrival order"
        assert len(row.event_ids) == 10
