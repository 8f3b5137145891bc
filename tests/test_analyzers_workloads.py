"""Workload analyzers (Deployments, StatefulSets, DaemonSets, Jobs, CronJobs) against the Kubernetes
emulator over real HTTP: each rule names the resource, quotes its decisive line with its source and
recommends an action; a healthy platform yields nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client as k8s

from incidentfox.agents.analyzers import admission, networking, scaling, workloads
from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.kubernetes import analyze_kubernetes
from incidentfox.agents.analyzers.workload_jobs import _cronjob
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, connect
from incidentfox.emulators.kubernetes import KubernetesEmulator


async def _client(emulator: KubernetesEmulator) -> KubernetesClient:
    return await connect(
        {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
    )


@pytest.fixture
async def orders() -> AsyncIterator[tuple[KubernetesEmulator, KubernetesClient]]:
    async with KubernetesEmulator("orders_platform") as emulator:
        client = await _client(emulator)
        yield emulator, client
        client.close()


def _one(findings: list[Finding], resource: str, kind: str) -> Finding:
    matching = [f for f in findings if f.resource == resource and f.kind == kind]
    assert len(matching) == 1, [(f.resource, f.kind) for f in findings]
    return matching[0]


def _quotes(finding: Finding) -> str:
    return "\n".join(f"{e.quote} @ {e.source}" for e in finding.evidence)


@pytest.mark.parametrize(
    ("resource", "kind", "quote", "source"),
    [
        (
            "deployment orders/order-api",
            "quota_exceeded",
            "exceeded quota: orders-quota, requested: pods=1, used: pods=12, limited: pods=12",
            "replicaset orders/order-api-5d8c7b9f4 (events)",
        ),
        (
            "statefulset orders/ledger",
            "missing_reference",
            'storageclass.storage.k8s.io "io2-encrypted" not found',
            "pvc orders/data-ledger-0 (events)",
        ),
        (
            "statefulset orders/search",
            "missing_reference",
            "serviceName: search-hl",
            "statefulset orders/search (spec)",
        ),
        (
            "statefulset orders/cache",
            "rollout_stuck",
            "Replicas: 3 desired | 2 ready | 1 updated (revision cache-5f7c9d8b6 ->",
            "statefulset orders/cache (status)",
        ),
        (
            "daemonset orders/node-agent",
            "missing_reference",
            "Unable to retrieve some image pull secrets (vendor-registry)",
            "pod orders/node-agent-8kq4z (events)",
        ),
        (
            "job orders/reindex-catalog",
            "job_failed",
            "Failed=True BackoffLimitExceeded: Job has reached the specified backoff limit",
            "job orders/reindex-catalog (conditions)",
        ),
        ("job orders/backfill-2024", "job_misconfigured", "suspend: true", "job orders/backfill-2024 (spec)"),
        (
            "cronjob orders/invoice-run",
            "job_misconfigured",
            "Schedule: 0 25 * * *",
            "cronjob orders/invoice-run (spec)",
        ),
        (
            "cronjob orders/cleanup-tmp",
            "job_misconfigured",
            "suspend: true",
            "cronjob orders/cleanup-tmp (spec)",
        ),
        (
            "cronjob orders/feed-sync",
            "job_misconfigured",
            "startingDeadlineSeconds: 5",
            "cronjob orders/feed-sync (spec)",
        ),
        (
            "cronjob orders/ledger-snapshot",
            "job_failed",
            "Active Jobs: ledger-snapshot-29412480",
            "cronjob orders/ledger-snapshot (status)",
        ),
    ],
)
async def test_each_workload_rule_names_resource_and_quotes_its_source(
    orders: tuple[KubernetesEmulator, KubernetesClient], resource: str, kind: str, quote: str, source: str
) -> None:
    _, client = orders
    finding = _one(await workloads.analyze(client, "orders"), resource, kind)
    assert any(quote in e.quote and e.source == source for e in finding.evidence), _quotes(finding)
    assert finding.summary and finding.root_cause and finding.immediate_actions
    assert finding.key == resource.replace(" ", "/", 1)


async def test_quota_finding_quotes_the_quota_and_recommends_raising_it(
    orders: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = orders
    finding = _one(await workloads.analyze(client, "orders"), "deployment orders/order-api", "quota_exceeded")
    assert finding.decisive and finding.severity == "critical"
    assert "ResourceQuota orders-quota: pods used 12 of 12" in _quotes(finding)
    assert "ProgressDeadlineExceeded" in _quotes(finding)
    assert "orders-quota" in finding.immediate_actions[0]
    assert "resourcequota/orders/orders-quota" in finding.related


async def test_a_blocking_cause_absorbs_the_replica_shortfall_instead_of_a_second_finding(
    orders: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = orders
    found = await workloads.analyze(client, "orders")
    ledger = [f for f in found if f.resource == "statefulset orders/ledger"]
    agent = [f for f in found if f.resource == "daemonset orders/node-agent"]
    assert [f.kind for f in ledger] == ["missing_reference"]
    assert [f.kind for f in agent] == ["missing_reference"]
    assert "Replicas: 1 desired | 0 ready" in _quotes(ledger[0])
    assert 'secrets "vendor-registry" not found' in _quotes(agent[0])
    assert "pod/orders/node-agent-8kq4z" in agent[0].related


async def test_missed_cron_runs_name_the_stuck_run_under_forbid(
    orders: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = orders
    finding = _one(await workloads.analyze(client, "orders"), "cronjob orders/ledger-snapshot", "job_failed")
    assert "missed" in finding.summary
    assert "(ledger-snapshot-29412480) is still active and concurrencyPolicy is Forbid" in finding.root_cause
    assert finding.decisive


async def test_healthy_noise_is_not_reported(orders: tuple[KubernetesEmulator, KubernetesClient]) -> None:
    _, client = orders
    found = await workloads.analyze(client, "orders")
    named = " ".join(f.resource for f in found)
    for healthy in ("checkout-web", "weekly-report", "ledger-snapshot-29412480"):
        assert healthy not in named
    assert len(found) == 11


async def test_secret_existence_is_checked_as_metadata_only(
    orders: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    emulator, client = orders
    await workloads.analyze(client, "orders")
    secret_reads = [path for method, path in emulator.requests if "/secrets/" in path]
    assert secret_reads == ["/api/v1/namespaces/orders/secrets/vendor-registry"]


async def test_healthy_platform_yields_no_findings_from_any_kind_analyzer() -> None:
    async with KubernetesEmulator("platform_steady") as emulator:
        client = await _client(emulator)
        for namespace in ("shop", None):
            for module in (workloads, networking, scaling, admission):
                assert await module.analyze(client, namespace) == [], module.__name__
        findings = await analyze_kubernetes(client, namespace="shop")
        client.close()
    assert [f.kind for f in findings] == ["healthy"]


async def test_a_kind_the_identity_may_not_read_is_skipped_not_reported() -> None:
    async with KubernetesEmulator("orders_platform") as emulator:
        emulator.unreadable = frozenset({"cronjobs", "storageclasses", "resourcequotas"})
        client = await _client(emulator)
        found = await workloads.analyze(client, "orders")
        client.close()
    kinds = {(f.resource, f.kind) for f in found}
    assert not any(r.startswith("cronjob ") for r, _ in kinds)
    # Without StorageClasses the cause cannot be seen; the Pending pod itself is the pod analyzer's.
    assert not any(r == "statefulset orders/ledger" for r, _ in kinds)
    order_api = _one(found, "deployment orders/order-api", "quota_exceeded")
    assert "ResourceQuota orders-quota" not in _quotes(order_api)


async def test_unreachable_or_throttled_api_gives_no_false_findings() -> None:
    async with KubernetesEmulator("orders_platform") as emulator:
        client = await _client(emulator)
        emulator.throttled = 1000
        assert await workloads.analyze(client, "orders") == []
        emulator.throttled = 0
        emulator.unreachable = True
        client.timeout = (1.0, 1.0)
        assert await workloads.analyze(client, "orders") == []
        client.close()


async def test_wrong_token_gives_no_findings() -> None:
    async with KubernetesEmulator("orders_platform") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": "not-the-token"}}}
        )
        assert await workloads.analyze(client, "orders") == []
        client.close()


def _cron(schedule: str, deadline: int | None = None) -> k8s.V1CronJob:
    created = datetime.now(UTC) - timedelta(days=3)
    return k8s.V1CronJob(
        metadata=k8s.V1ObjectMeta(name="sweep", namespace="ops", creation_timestamp=created),
        spec=k8s.V1CronJobSpec(
            schedule=schedule, job_template=k8s.V1JobTemplateSpec(), starting_deadline_seconds=deadline
        ),
        status=k8s.V1CronJobStatus(last_schedule_time=datetime.now(UTC) - timedelta(minutes=1)),
    )


def test_negative_starting_deadline_is_critical_and_macros_parse() -> None:
    # The API server refuses a negative deadline on write, so only objects restored around
    # validation carry one: tested on the client model rather than served by the emulator.
    found = _cronjob(_cron("@hourly", deadline=-30), [], datetime.now(UTC))
    assert [(f.kind, f.severity) for f in found] == [("job_misconfigured", "critical")]
    assert "negative" in found[0].summary
    assert _cronjob(_cron("* * * * *"), [], datetime.now(UTC)) == []
    assert "TZ=" in _cronjob(_cron("TZ=UTC 0 * * * *"), [], datetime.now(UTC))[0].root_cause


async def test_in_the_full_scan_the_quota_outranks_the_symptoms(
    orders: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = orders
    findings = await analyze_kubernetes(
        client, namespace="orders", question="why does order-api have no pods?"
    )
    assert (findings[0].kind, findings[0].resource) == ("quota_exceeded", "deployment orders/order-api")
