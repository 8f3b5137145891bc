"""Similar past incidents at the start of a run: the closest three with their links for the live
message and as grounding for the model, and never an error or a wait that holds the run up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from incidentfox.agents.runs.models import Run
from incidentfox.db.engine import SessionFactory, create_engine, create_session_factory
from incidentfox.knowledge.similar import grounding, similar_incidents, similar_line
from incidentfox.knowledge.store import KnowledgeBase
from tests.knowledge_world import CHANNEL, EMBEDDER, TEAM, finished_run, migrated, rca, store_runs, vote


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    async with migrated(database_url) as factory:
        yield factory


def _runs() -> list[Run]:
    return [
        finished_run(
            "run-a",
            "checkout 500s <!channel> | help",
            rca(
                "Checkout could not reach Postgres: connection slots exhausted.",
                "A leaking worker pool held every Postgres connection.",
                "FATAL: sorry, too many clients already",
                "pod payments/checkout-1 (logs)",
            ),
            minutes_ago=400,
        ),
        finished_run(
            "run-b",
            "orders failing with database errors",
            rca(
                "Orders failed: the database refused connections.",
                "max_connections reached after the worker count doubled.",
                "remaining connection slots are reserved",
                "pod payments/orders-2 (logs)",
            ),
            minutes_ago=300,
        ),
        finished_run(
            "run-c",
            "refunds stuck, db timeouts",
            rca(
                "Refunds timed out waiting for a database connection.",
                "pgbouncer pool saturated by a long-running migration.",
                "cl_waiting=180",
                "pgbouncer SHOW POOLS",
            ),
            minutes_ago=200,
        ),
        finished_run(
            "run-d",
            "database connection errors in ledger",
            rca(
                "Ledger lost its database connections during a failover.",
                "The Postgres primary failed over and clients kept stale connections.",
                "server closed the connection unexpectedly",
                "pod payments/ledger-3 (logs)",
            ),
            minutes_ago=100,
        ),
    ]


async def test_the_closest_three_are_linked_and_given_to_the_model(sessions: SessionFactory) -> None:
    knowledge = KnowledgeBase(sessions, EMBEDDER)
    await store_runs(sessions, *_runs())
    await vote(sessions, "run-a", "up", "up")
    assert await knowledge.embedder.load(), "the process warms the model at start"
    hits = await similar_incidents(knowledge, TEAM, "checkout: postgres says too many clients, 500s")
    assert len(hits) == 3 and hits[0].source == "run-a"
    line = similar_line(hits)
    assert line.startswith(
        f"Similar: <https://slack.com/archives/{CHANNEL}/p1733300400000900?thread_ts=1733300400.000100"
        f"&cid={CHANNEL}|checkout 500s &lt;!channel&gt; ¦ help> (👍 2 👎 0), <"
    )
    assert line.count("<https://slack.com/archives/") == 3
    text = grounding(hits)
    assert text.startswith(
        "Similar past incidents of this team (leads to check, not proof):\n1. past incident "
    )
    assert "the team rated that RCA 👍 2 👎 0" in text and "too many clients already" in text
    assert similar_line([]) == "" and grounding([]) == ""


async def test_a_run_that_finished_is_taken_in_once_and_replaced_when_recorded_again(
    sessions: SessionFactory,
) -> None:
    knowledge = KnowledgeBase(sessions, EMBEDDER)
    first = _runs()[0]
    await store_runs(sessions, first)
    assert await knowledge.record_run(first) is True
    assert await knowledge.sync_incidents(TEAM) == 0
    without = finished_run("run-x", "what is the p99?", None)
    assert await knowledge.record_run(without) is False
    documents = await knowledge.documents(TEAM)
    assert [(d["source"], d["passages"]) for d in documents] == [("run-a", 1)]


async def test_a_slow_or_missing_database_gives_no_similar_incidents_rather_than_an_error(
    sessions: SessionFactory,
) -> None:
    await store_runs(sessions, *_runs())
    knowledge = KnowledgeBase(sessions, EMBEDDER)
    assert await similar_incidents(knowledge, TEAM, "postgres too many clients", timeout_s=0.0) == []
    found = await similar_incidents(knowledge, TEAM, "postgres too many clients", timeout_s=30)
    assert found and found[0].source == "run-a"
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/incidentfox")
    try:
        down = KnowledgeBase(create_session_factory(engine), EMBEDDER)
        assert await similar_incidents(down, TEAM, "postgres too many clients") == []
    finally:
        await engine.dispose()
