"""The run store's batched writes, on SQLite and PostgreSQL."""

from __future__ import annotations

from incidentfox.agents.runs.models import Run
from incidentfox.agents.runs.service import RunStore, new_run_id
from incidentfox.bot.runtime import Runtime
from incidentfox.db.engine import SessionFactory


async def _run(sessions: SessionFactory, status: str) -> str:
    run_id = new_run_id()
    async with sessions.begin() as session:
        session.add(
            Run(
                run_id=run_id,
                org_id="acme",
                team_node_id="checkout",
                source="slack",
                kind="mention",
                delivery_id=run_id,
                requester="U0ALICE",
                question="why is checkout down?",
                status=status,
                events=[{"kind": "started"}],
            )
        )
    return run_id


async def test_progress_of_many_runs_is_saved_in_one_batch_and_never_over_a_finished_run(
    runtime: Runtime,
) -> None:
    store = RunStore(runtime.sessions)
    running = [await _run(runtime.sessions, "running") for _ in range(3)]
    queued = await _run(runtime.sessions, "queued")
    finished = await _run(runtime.sessions, "succeeded")
    timeline = [{"kind": "started"}, {"kind": "thought", "text": "looking at pods"}]

    await store.save_progress({run_id: timeline for run_id in [*running, queued, finished]})

    for run_id in [*running, queued]:
        run = await store.get(run_id)
        assert run is not None and run.events == timeline
    done = await store.get(finished)
    assert done is not None and done.events == [{"kind": "started"}]
