"""The team knowledge base: runbooks found by meaning and cited, past incidents taken in when runs
finish and ranked by their feedback, unreadable runbooks refused with the reason, and BM25 alone when
the embedding model cannot load. Against real SQLite and PostgreSQL, with the packaged MiniLM model."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from incidentfox.agents.runs.models import Run
from incidentfox.agents.toolsets.knowledge import knowledge_toolset
from incidentfox.db.engine import SessionFactory
from incidentfox.knowledge.embeddings import Embedder
from incidentfox.knowledge.runbooks import UnreadableRunbook, parse_runbook
from incidentfox.knowledge.store import KnowledgeBase
from tests.knowledge_world import (
    CHANNEL,
    EMBEDDER,
    OTHER_TEAM,
    PARAPHRASES,
    RUNBOOKS,
    TEAM,
    finished_run,
    migrated,
    rca,
    store_runs,
    vote,
)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    async with migrated(database_url) as factory:
        yield factory


def db_pool_run() -> Run:
    return finished_run(
        "run-db-pool",
        "checkout is throwing 500s, what's going on?",
        rca(
            "Checkout failed because the orders database ran out of connections.",
            "The checkout deployment leaked idle-in-transaction sessions until Postgres refused new clients.",
            "FATAL: sorry, too many clients already",
            "pod payments/checkout-7d9f8 (logs)",
        ),
        minutes_ago=600,
    )


def db_pool_run_2() -> Run:
    return finished_run(
        "run-db-pool-2",
        "checkout errors again, 500s on payment submit",
        rca(
            "Checkout failed because the orders database had no free connection slots.",
            "A new batch job opened hundreds of Postgres sessions and exhausted max_connections.",
            "FATAL: remaining connection slots are reserved for non-replication superuser connections",
            "pod payments/checkout-7d9f8 (logs)",
        ),
        minutes_ago=300,
    )


def _knowledge(sessions: SessionFactory, embedder: Embedder = EMBEDDER) -> KnowledgeBase:
    return KnowledgeBase(sessions, embedder)


async def test_a_paraphrased_question_finds_the_right_runbook_and_cites_it(sessions: SessionFactory) -> None:
    knowledge = _knowledge(sessions)
    report = await knowledge.add_runbooks(TEAM, list(RUNBOOKS.items()))
    assert [a.path for a in report.added] == list(RUNBOOKS) and report.skipped == []
    for question, topic in PARAPHRASES:
        found = await knowledge.search(TEAM, question, limit=3)
        assert found.mode == "hybrid"
        top = found.hits[0]
        assert topic in top.source, (question, [h.source for h in found.hits])
        assert top.citation.startswith(f"runbook {top.source}")
    found = await knowledge.search(TEAM, "the primary SQL database refuses new sessions", limit=1)
    assert found.hits[0].section in ("Symptoms", "Diagnosis", "Mitigation")
    assert found.hits[0].citation == f"runbook runbooks/postgres-connections.md § {found.hits[0].section}"
    assert found.hits[0].title == "Postgres connection pool exhausted"
    assert found.searched == sum(len(knowledge.read_runbook(p, c).passages) for p, c in RUNBOOKS.items())


async def test_another_teams_knowledge_is_never_searched(sessions: SessionFactory) -> None:
    knowledge = _knowledge(sessions)
    await knowledge.add_runbooks(OTHER_TEAM, list(RUNBOOKS.items()))
    found = await knowledge.search(TEAM, "postgres too many clients")
    assert found.hits == [] and found.searched == 0


async def test_reuploading_a_runbook_replaces_it_and_removing_it_forgets_it(sessions: SessionFactory) -> None:
    knowledge = _knowledge(sessions)
    await knowledge.add_runbooks(TEAM, list(RUNBOOKS.items()))
    path = "runbooks/redis-latency.md"
    found = await knowledge.search(TEAM, "redis SLOWLOG KEYS", limit=1)
    assert found.hits[0].source == path
    await knowledge.add_runbooks(
        TEAM, [(path, "# Redis\n\nUse the managed cache dashboard to find hot keys.")]
    )
    documents = {d["source"]: d for d in await knowledge.documents(TEAM)}
    assert documents[path]["passages"] == 1 and documents[path]["title"] == "Redis"
    found = await knowledge.search(TEAM, "redis SLOWLOG KEYS", kinds=("runbook",), limit=1)
    assert found.hits[0].source == path and "hot keys" in found.hits[0].text
    assert await knowledge.remove_runbook(TEAM, path) is True
    assert await knowledge.remove_runbook(TEAM, path) is False
    assert path not in {d["source"] for d in await knowledge.documents(TEAM)}


async def test_finished_runs_join_the_knowledge_with_their_thread(sessions: SessionFactory) -> None:
    knowledge = _knowledge(sessions)
    unfinished = finished_run("run-still-going", "is checkout down?", None, status="running")
    failed = finished_run("run-failed", "why is search slow?", None, status="failed")
    await store_runs(sessions, db_pool_run(), unfinished, failed)
    similar = await knowledge.similar_incidents(TEAM, "checkout returns 500, database refusing connections")
    assert [hit.source for hit in similar] == ["run-db-pool"]
    hit = similar[0]
    assert hit.url == (
        f"https://slack.com/archives/{CHANNEL}/p1733300600000900?thread_ts=1733300600.000100&cid={CHANNEL}"
    )
    assert hit.citation == f"past incident {hit.url}"
    assert "too many clients" in hit.text and hit.title == "checkout is throwing 500s, what's going on?"
    assert {d["source"] for d in await knowledge.documents(TEAM)} == {"run-db-pool"}
    assert await knowledge.sync_incidents(TEAM) == 0


async def test_similar_incidents_are_the_three_closest_and_only_related_ones(
    sessions: SessionFactory,
) -> None:
    knowledge = _knowledge(sessions)
    runs = [
        db_pool_run(),
        db_pool_run_2(),
        finished_run(
            "run-db-pool-3",
            "orders API is timing out",
            rca(
                "Orders timed out waiting for a database connection from the pool.",
                "pgbouncer's pool for the orders database was full after a deploy doubled the workers.",
                "cl_waiting=240",
                "pgbouncer SHOW POOLS",
            ),
            minutes_ago=200,
        ),
        finished_run(
            "run-cert",
            "partners report TLS errors calling our API",
            rca(
                "The public API served an expired certificate.",
                "cert-manager could not renew api.example.com: the DNS01 challenge failed.",
                "x509: certificate has expired",
                "ingress-nginx logs",
            ),
            minutes_ago=100,
        ),
        finished_run(
            "run-dns",
            "ledger can't reach kafka",
            rca(
                "In-cluster DNS lookups failed.",
                "CoreDNS was CPU throttled after a node pool change.",
                "dial tcp: lookup kafka.payments.svc on 10.96.0.10:53: i/o timeout",
                "pod payments/ledger-writer (logs)",
            ),
            minutes_ago=50,
        ),
    ]
    await store_runs(sessions, *runs)
    await knowledge.add_runbooks(TEAM, list(RUNBOOKS.items()))
    similar = await knowledge.similar_incidents(TEAM, "checkout 500s: postgres says too many clients")
    assert len(similar) == 3
    assert {hit.source for hit in similar} == {"run-db-pool", "run-db-pool-2", "run-db-pool-3"}
    assert all(hit.kind == "incident" for hit in similar)
    assert await knowledge.similar_incidents(TEAM, "the coffee machine on floor 3 is empty") == []


async def test_feedback_on_an_rca_reorders_past_incidents(sessions: SessionFactory) -> None:
    knowledge = _knowledge(sessions)
    await store_runs(sessions, db_pool_run(), db_pool_run_2())
    question = "checkout failing, the orders database has no connections left"
    before = [hit.source for hit in await knowledge.similar_incidents(TEAM, question)]
    assert sorted(before) == ["run-db-pool", "run-db-pool-2"]
    first, second = before
    await vote(sessions, first, "down", "down")
    await vote(sessions, second, "up")
    after = await knowledge.similar_incidents(TEAM, question)
    assert [hit.source for hit in after] == [second, first]
    assert (after[0].votes_up, after[0].votes_down) == (1, 0)
    assert (after[1].votes_up, after[1].votes_down) == (0, 2)
    await vote(sessions, first, "up", "up", "down")
    await vote(sessions, second, "down")
    again = await knowledge.similar_incidents(TEAM, question)
    assert [hit.source for hit in again] == [first, second]


async def test_an_unreadable_runbook_is_skipped_with_its_reason_and_the_rest_added(
    sessions: SessionFactory,
) -> None:
    knowledge = _knowledge(sessions)
    report = await knowledge.add_runbooks(
        TEAM,
        [
            (
                "runbooks/latin1.md",
                "# Caf\xe9 outage\n\nThe r\xe9sum\xe9 service fell over.".encode("latin-1"),
            ),
            ("runbooks/broken-front-matter.md", "---\ntitle: Broken\n# Heading\n\nSome text here and more."),
            ("runbooks/only-headings.md", "# Title\n\n## Section\n"),
            ("../etc/passwd", "# x\n\nsome words here"),
            ("runbooks/image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
            ("runbooks/oom-killed.md", RUNBOOKS["runbooks/oom-killed.md"]),
        ],
    )
    assert [a.path for a in report.added] == ["runbooks/oom-killed.md"]
    reasons = {s.path: s.reason for s in report.skipped}
    assert "not UTF-8" in reasons["runbooks/latin1.md"]
    assert "never closed" in reasons["runbooks/broken-front-matter.md"]
    assert "no text to search" in reasons["runbooks/only-headings.md"]
    assert "not a plain relative path" in reasons["../etc/passwd"]
    assert "binary" in reasons["runbooks/image.md"]
    assert {d["source"] for d in await knowledge.documents(TEAM)} == {"runbooks/oom-killed.md"}


def test_runbook_sections_ignore_headings_inside_code_blocks() -> None:
    runbook = parse_runbook(
        "runbooks/x.md",
        "Intro words before any heading.\n\n# Restart\n\n```\n# not a heading, a shell comment\n"
        "kubectl rollout restart deploy/x\n```\n\n## Verify the pods\n\nWatch the pods become Ready again.",
    )
    assert runbook.title == "Restart"
    assert [p.section for p in runbook.passages] == ["", "Restart", "Verify the pods"]
    assert "# not a heading" in runbook.passages[1].text
    with pytest.raises(UnreadableRunbook, match="line 3 of its front matter"):
        parse_runbook("r.md", "---\ntitle: ok\n!!! nonsense\n---\n# T\n\nwords words words")


async def test_without_the_model_search_falls_back_to_bm25_and_says_so(sessions: SessionFactory) -> None:
    missing = Embedder("incidentfox_no_such_model_package")
    knowledge = _knowledge(sessions, missing)
    await knowledge.add_runbooks(TEAM, list(RUNBOOKS.items()))
    await store_runs(sessions, db_pool_run())
    found = await knowledge.search(TEAM, "pods OOMKilled exit code 137", limit=2)
    assert found.mode == "keyword"
    assert found.hits[0].source == "runbooks/oom-killed.md" and found.hits[0].meaning is None
    similar = await knowledge.similar_incidents(TEAM, "postgres too many clients")
    assert [hit.source for hit in similar] == ["run-db-pool"]
    health = await knowledge_toolset(knowledge, TEAM).health_check({})  # type: ignore[misc]
    assert health.configured and health.healthy
    assert "could not load" in health.reason and "BM25" in health.reason
    assert "ModuleNotFoundError" in health.reason

    healed = _knowledge(sessions)
    found = await healed.search(TEAM, "the container keeps getting killed for using too much RAM", limit=1)
    assert found.mode == "hybrid" and found.hits[0].meaning is not None
    assert found.hits[0].source == "runbooks/oom-killed.md"
    assert all(d["passages"] >= 1 for d in await healed.documents(TEAM))
