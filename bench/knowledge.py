"""Knowledge search latency over one team's 10,000 passages (runbook sections and past incidents).

    .venv/bin/python -m bench.knowledge [--documents 10000] [--queries 200] [--database-url URL]

The passages are written from templates (30 services x 24 failure kinds x 4 sections, with varied
steps) and stored as the knowledge base stores them, each with its MiniLM embedding (the distinct
template texts are embedded once; a unique ticket line makes every stored text differ for BM25). A
third are past incidents, a quarter of which carry 👍/👎 feedback. Then ``KnowledgeBase.search`` is
timed end to end, as the knowledge toolset calls it: the freshness check, the finished-runs sync, the
query's embedding, BM25 and cosine scoring over every passage, and the feedback lookup. The first
search (which builds the team's index) is reported apart. The same is measured with BM25 alone (the
model-missing fallback) and for ``similar_incidents``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert

from incidentfox.agents.runs.models import RunFeedback
from incidentfox.db.base import utcnow
from incidentfox.db.engine import SessionFactory, create_engine, create_session_factory
from incidentfox.db.migrate import upgrade_to_head
from incidentfox.knowledge.embeddings import Embedder, to_bytes
from incidentfox.knowledge.models import KnowledgePassage
from incidentfox.knowledge.store import KnowledgeBase, TeamKey

TEAM = TeamKey("bench", "payments")
SERVICES = [
    "checkout", "payments", "ledger", "search", "catalog", "cart", "orders", "shipping", "billing",
    "auth", "sessions", "notifications", "email", "pricing", "inventory", "recommendations", "reviews",
    "gateway", "edge", "reports", "exports", "imports", "scheduler", "webhooks", "fraud", "risk",
    "tax", "refunds", "accounts", "profiles",
]  # fmt: skip
FAILURES = [
    (
        "Postgres connection pool exhausted",
        "logs FATAL sorry too many clients already; pgbouncer cl_waiting grows",
    ),
    ("Kafka consumer lag", "consumer group lag grows, rebalance storm, heartbeat failed"),
    ("TLS certificate expired", "x509 certificate has expired; cert-manager order failed"),
    ("Pods OOMKilled", "exit code 137, memory limit reached, heap grows after release"),
    ("DNS resolution failures", "NXDOMAIN or i/o timeout to 10.96.0.10:53, CoreDNS throttled"),
    ("Node disk pressure", "kubelet evicts pods, ephemeral-storage low, image pulls fail"),
    ("Redis latency", "SLOWLOG shows KEYS, evicted_keys rises, fragmentation"),
    ("Bad deploy rollback", "error rate regression after release, kubectl rollout undo"),
    ("ImagePullBackOff", "registry returns 401 unauthorized, pull secret expired"),
    ("CrashLoopBackOff on config", "missing environment variable, secret key not found"),
    ("HPA at max replicas", "CPU saturation, desired replicas capped, queue backlog"),
    ("Ingress 502s", "upstream prematurely closed connection, backend pods not ready"),
    ("S3 throttling", "SlowDown 503 from S3, retries exhausted"),
    ("Rate limited by payment provider", "HTTP 429 from provider, retry-after headers"),
    ("Cron job missed", "CronJob did not schedule, startingDeadlineSeconds exceeded"),
    ("Elasticsearch cluster red", "unassigned shards, disk watermark exceeded"),
    ("Memory leak in worker", "RSS grows linearly until restart, goroutine count rises"),
    ("Readiness probe failing", "probe returns 503, dependency health check times out"),
    ("NetworkPolicy blocks traffic", "connection timeouts after policy change, egress denied"),
    ("Clock skew", "JWT not yet valid, NTP unsynchronised on nodes"),
    ("Thread pool starvation", "request queue grows, all worker threads blocked on I/O"),
    ("Replica lag", "read replica behind primary, stale reads, WAL replay slow"),
    ("Load balancer unhealthy targets", "target group health checks fail, 504 gateway timeout"),
    ("Queue dead letters growing", "messages moved to DLQ, poison message, deserialisation error"),
]
STEPS = [
    "Check the dashboards for the last hour and compare with the previous day.",
    "Page the owning team if customer traffic is affected for more than 10 minutes.",
    "Capture logs and events before restarting anything.",
    "Roll back if the change went out in the last two hours.",
    "Scale the deployment out while investigating.",
]
SECTIONS = ["Symptoms", "Diagnosis", "Mitigation", "Escalation"]
QUESTIONS = [
    "{s} database refuses new sessions, client limit reached",
    "{s} events are processed minutes late",
    "browsers reject the https certificate of {s}",
    "{s} containers killed for using too much memory",
    "{s} cannot resolve service names",
    "how do I undo the last {s} release",
    "{s} pods cannot pull their image",
    "{s} returns 502 at the ingress",
    "why is {s} slow since this morning",
    "{s} replicas are stuck at the maximum",
]


@dataclass
class Timing:
    label: str
    first_ms: float
    samples_ms: list[float]

    def row(self) -> str:
        ordered = sorted(self.samples_ms)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
        return (
            f"| {self.label} | {len(ordered)} | {self.first_ms:.0f} ms | {statistics.median(ordered):.1f} ms "
            f"| {p95:.1f} ms | {ordered[-1]:.1f} ms |"
        )


def _passages(count: int, rng: random.Random) -> list[tuple[str, str, str, str, str]]:
    """``(kind, source, title, core, text)``: runbook sections and past incidents, about 2:1. ``text``
    is ``core`` with a unique ticket and date, so every stored passage differs for BM25."""
    found = []
    for number in range(count):
        service = SERVICES[number % len(SERVICES)]
        title, symptom = FAILURES[(number // len(SERVICES)) % len(FAILURES)]
        steps = f"{STEPS[number % len(STEPS)]} {STEPS[(number + 2) % len(STEPS)]}"
        unique = f" Ticket OPS-{number + 1000}, reviewed {rng.randint(1, 28)} March."
        if number % 3 == 2:
            core = (
                f"Question: {service} alerts firing. Summary: {title} in {service}. Root cause: {symptom}. "
                f"Actions: {steps}"
            )
            found.append(
                ("incident", f"run-{number:06d}", f"{service}: {title.lower()}", core, core + unique)
            )
        else:
            section = SECTIONS[number % len(SECTIONS)]
            core = f"{section}: {symptom} in {service}. {steps}"
            source = f"runbooks/{service}/{number:06d}.md"
            found.append(("runbook", source, f"{title} ({service})", core, core + unique))
    return found


async def _populate(sessions: SessionFactory, embedder: Embedder, count: int) -> tuple[int, float]:
    """Store ``count`` passages; how many distinct texts were embedded and how long that took."""
    rng = random.Random(7)
    passages = _passages(count, rng)
    distinct = sorted({f"{title}\n{core}" for _, _, title, core, _ in passages})
    started = time.perf_counter()
    vectors = await embedder.vectors(distinct)
    embed_s = time.perf_counter() - started
    if vectors is None:
        raise SystemExit(f"the embedding model did not load: {embedder.state.reason}")
    vector_of = dict(zip(distinct, vectors, strict=True))
    now = utcnow()
    rows = [
        {
            "org_id": TEAM.org_id,
            "team_node_id": TEAM.team_node_id,
            "kind": kind,
            "source": source,
            "chunk": 0,
            "title": title,
            "section": "",
            "url": f"https://slack.com/archives/C0BENCH/p{1733300000 + i}000100"
            if kind == "incident"
            else None,
            "text": text,
            "run_id": source if kind == "incident" else None,
            "happened_at": now if kind == "incident" else None,
            "embedding": to_bytes(vector_of[f"{title}\n{core}"]),
            "embedding_model": embedder.name,
            "updated_at": now,
        }
        for i, (kind, source, title, core, text) in enumerate(passages)
    ]
    votes = [
        {"run_id": row["source"], "user_id": "U1", "vote": rng.choice(["up", "down"]), "at": now}
        for row in rows
        if row["kind"] == "incident" and rng.random() < 0.25
    ]
    async with sessions.begin() as session:
        for start in range(0, len(rows), 1000):
            await session.execute(insert(KnowledgePassage), rows[start : start + 1000])
        if votes:
            await session.execute(insert(RunFeedback), votes)
    return len(distinct), embed_s


async def _timed(label: str, call: Callable[[str], Awaitable[object]], queries: list[str]) -> Timing:
    started = time.perf_counter()
    await call(queries[0])
    first = (time.perf_counter() - started) * 1000
    samples = []
    for query in queries:
        started = time.perf_counter()
        await call(query)
        samples.append((time.perf_counter() - started) * 1000)
    return Timing(label, first, samples)


async def _run(
    database_url: str | None, documents: int, queries: int
) -> tuple[str, int, float, list[Timing]]:
    with tempfile.TemporaryDirectory() as scratch:
        url = database_url or f"sqlite+aiosqlite:///{Path(scratch) / 'knowledge.db'}"
        engine = create_engine(url)
        await upgrade_to_head(engine)
        sessions = create_session_factory(engine)
        embedder = Embedder()
        distinct, embed_s = await _populate(sessions, embedder, documents)
        rng = random.Random(11)
        asked = [rng.choice(QUESTIONS).format(s=rng.choice(SERVICES)) for _ in range(queries)]
        hybrid = KnowledgeBase(sessions, embedder)
        keyword = KnowledgeBase(sessions, Embedder("incidentfox_bench_no_model"))
        timings = [
            await _timed("search, BM25 + embeddings", lambda q: hybrid.search(TEAM, q, limit=5), asked),
            await _timed("similar_incidents (top 3)", lambda q: hybrid.similar_incidents(TEAM, q), asked),
            await _timed("search, BM25 only (no model)", lambda q: keyword.search(TEAM, q, limit=5), asked),
        ]
        await engine.dispose()
    backend = "PostgreSQL" if database_url else "SQLite"
    return backend, distinct, embed_s, timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--database-url", help="a scratch PostgreSQL database, migrated here; default SQLite")
    args = parser.parse_args()
    backend, distinct, embed_s, timings = asyncio.run(_run(args.database_url, args.documents, args.queries))
    print(
        f"# knowledge search benchmark: {args.documents:,} passages, {backend}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )
    print(
        f"embedding {distinct:,} distinct passage texts took {embed_s:.1f} s ({distinct / embed_s:.0f}/s)\n"
    )
    print("| what | queries | first (builds the index) | median | p95 | max |")
    print("|---|---|---|---|---|---|")
    for timing in timings:
        print(timing.row())


if __name__ == "__main__":
    main()
