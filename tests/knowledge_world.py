"""A team's knowledge as an SRE team writes it: eight runbooks on unrelated failures, and finished
investigations (runs with their RCA, thread and feedback) stored as the worker stores them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from incidentfox.agents.runs.models import Run, RunFeedback
from incidentfox.db.base import utcnow
from incidentfox.db.engine import SessionFactory, create_engine, create_session_factory
from incidentfox.db.migrate import upgrade_to_head
from incidentfox.knowledge.embeddings import Embedder
from incidentfox.knowledge.store import TeamKey

TEAM = TeamKey("acme", "payments")
OTHER_TEAM = TeamKey("acme", "search")
CHANNEL = "C0PAYMENTS"

EMBEDDER = Embedder()
"""One model per test process: loading it takes seconds."""

RUNBOOKS: dict[str, str] = {
    "runbooks/postgres-connections.md": """---
title: Postgres connection pool exhausted
owner: payments-oncall
---
# Postgres connection pool exhausted

## Symptoms
Applications log `FATAL: sorry, too many clients already` or `remaining connection slots are reserved`.
Request latency climbs and checkout returns 500s while pgbouncer's cl_waiting grows.

## Diagnosis
Run `SELECT usename, state, count(*) FROM pg_stat_activity GROUP BY 1, 2` and look for idle in
transaction sessions. Compare with `SHOW max_connections`.

## Mitigation
Restart the leaking deployment to release its sessions, then lower its pool size. Never raise
max_connections on the primary without the DBA on call.
""",
    "runbooks/kafka-consumer-lag.md": """# Kafka consumer lag

## Symptoms
The ledger-writer consumer group's lag grows on topic payments.events; records are processed minutes
late and reconciliation alerts fire.

## What to do
Check for a rebalance storm in the consumer logs (`Attempt to heartbeat failed since group is
rebalancing`). Scale the consumer deployment up to the partition count, never beyond it.
""",
    "runbooks/tls-certificate-expiry.md": """# TLS certificate expiry

## Symptoms
Clients fail with `x509: certificate has expired or is not yet valid`; the ingress serves an old cert.

## Fix
Check the Certificate resource with `kubectl describe certificate -n ingress`. If cert-manager's
ACME order failed, delete the CertificateRequest to retry issuance and confirm the DNS01 solver.
""",
    "runbooks/oom-killed.md": """# Containers OOMKilled

## Symptoms
Pods restart with reason OOMKilled and exit code 137; the JVM heap or Go runtime grows until the
cgroup memory limit is hit.

## Mitigation
Raise the memory limit to the p99 working set plus 30 percent, or roll back the release that grew
the heap. Capture a heap profile before restarting when you can.
""",
    "runbooks/dns-resolution.md": """# In-cluster DNS failures

## Symptoms
Lookups of Service names fail with NXDOMAIN or `i/o timeout` to 10.96.0.10:53; CoreDNS pods are
throttled or crashlooping.

## Fix
Scale CoreDNS, check its ConfigMap for a broken forward block, and lower ndots in the pod spec for
services that resolve many external names.
""",
    "runbooks/node-disk-pressure.md": """# Node disk pressure

## Symptoms
Nodes report DiskPressure, the kubelet evicts pods with `The node was low on resource:
ephemeral-storage`, and image pulls fail.

## Fix
Cordon the node, prune unused images with `crictl rmi --prune`, and find pods writing large logs to
emptyDir volumes.
""",
    "runbooks/redis-latency.md": """# Redis latency spikes

## Symptoms
The session cache answers slowly; SLOWLOG shows KEYS or large HGETALL commands; evicted_keys rises.

## Fix
Find the caller issuing KEYS and replace it with SCAN; check maxmemory-policy and memory
fragmentation.
""",
    "runbooks/deploy-rollback.md": """# Rolling back a deployment

## When
A release causes errors or latency regressions and the fix is not obvious within 15 minutes.

## Steps
Run `kubectl rollout undo deployment/<name> -n <namespace>` or promote the previous ReplicaSet in
Argo Rollouts with `kubectl argo rollouts undo <name>`. Announce the rollback in #payments-deploys.
""",
}

PARAPHRASES: list[tuple[str, str]] = [
    ("the primary SQL database refuses new sessions because its client limit is reached", "postgres"),
    ("events pile up unprocessed in the message queue and are handled minutes behind", "kafka"),
    ("browsers say the site's https security certificate is no longer valid", "tls"),
    ("the container keeps getting killed for using too much RAM", "oom"),
    ("service hostnames stopped resolving inside the cluster", "dns"),
    ("how do I undo a bad release", "rollback"),
]


def rca(summary: str, root_cause: str, quote: str, source: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "root_cause": root_cause,
        "evidence": [{"quote": quote, "source": source, "url": None}],
        "confidence": {"level": "high", "why": "the log line and the restart match"},
        "immediate_actions": ["Restart the deployment", "Lower the pool size"],
        "follow_up_actions": [],
        "caveats": [],
    }


def finished_run(
    run_id: str,
    question: str,
    answer: dict[str, Any] | None,
    *,
    team: TeamKey = TEAM,
    status: str = "succeeded",
    minutes_ago: int = 60,
) -> Run:
    finished = utcnow() - timedelta(minutes=minutes_ago)
    ts = f"{1733300000 + minutes_ago}.000100"
    return Run(
        run_id=run_id,
        org_id=team.org_id,
        team_node_id=team.team_node_id,
        source="slack",
        kind="mention",
        delivery_id=f"d-{run_id}",
        thread_key=f"slack:{CHANNEL}:{ts}",
        channel_id=CHANNEL,
        thread_ts=ts,
        message_ts=f"{1733300000 + minutes_ago}.000900",
        question=question,
        status=status,
        rca=answer,
        created_at=finished - timedelta(minutes=3),
        started_at=finished - timedelta(minutes=3),
        finished_at=finished,
    )


async def store_runs(sessions: SessionFactory, *runs: Run) -> None:
    async with sessions.begin() as session:
        session.add_all(runs)


async def vote(sessions: SessionFactory, run_id: str, *votes: str) -> None:
    """Set the run's feedback to exactly ``votes`` (one person each)."""
    async with sessions.begin() as session:
        await session.execute(delete(RunFeedback).where(RunFeedback.run_id == run_id))
        session.add_all(
            RunFeedback(run_id=run_id, user_id=f"U{number:04d}", vote=value)
            for number, value in enumerate(votes)
        )


@contextlib.asynccontextmanager
async def migrated(database_url: str) -> AsyncIterator[SessionFactory]:
    """The project's migrated database (SQLite or PostgreSQL) as a session factory."""
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()
