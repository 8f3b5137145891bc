"""The demo cluster: a realistic shop where exactly one story is broken, and the no-LLM analyzers
find it from the question a new user asks."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from incidentfox.agents.analyzers import analyze_kubernetes, build_rca
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, connect
from incidentfox.emulators.kubernetes import KubernetesEmulator

FATAL = 'level=fatal msg="psp client: environment variable PSP_API_KEY is missing" version=2.8.0'


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[KubernetesEmulator, KubernetesClient]]:
    async with KubernetesEmulator("demo") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        try:
            yield emulator, client
        finally:
            client.close()


async def test_why_is_checkout_failing_leads_to_payments_api_and_its_fatal_log_line(
    cluster: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = cluster
    question = "why is checkout failing?"
    findings = await analyze_kubernetes(client, namespace=None, question=question)
    rca = build_rca(findings, question=question)
    assert rca.summary.startswith(
        "checkout depends on payments-api, which is failing: "
        "Pod payments/payments-api-6d8f7b9c4-k2x7p is in CrashLoopBackOff (7 restarts)."
    )
    assert rca.evidence[0].quote == FATAL
    assert rca.evidence[0].source == "pod payments/payments-api-6d8f7b9c4-k2x7p (previous logs)"
    assert any("cannot reach dependency payments-api.payments:8080" in e.quote for e in rca.evidence)
    assert rca.confidence.level == "high"


@pytest.mark.parametrize("namespace", ["platform", "monitoring", "kube-system"])
async def test_the_rest_of_the_cluster_is_healthy(
    cluster: tuple[KubernetesEmulator, KubernetesClient], namespace: str
) -> None:
    _, client = cluster
    findings = await analyze_kubernetes(client, namespace=namespace)
    assert [f.kind for f in findings] == ["healthy"], [f.summary for f in findings]


async def test_only_checkout_and_payments_api_are_broken(
    cluster: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = cluster
    findings = await analyze_kubernetes(client, namespace=None)
    assert {f.workload for f in findings} == {"checkout", "payments-api"}


def test_the_cluster_looks_like_a_real_one(cluster: tuple[KubernetesEmulator, KubernetesClient]) -> None:
    emulator, _ = cluster
    state = emulator.cluster
    assert {n["metadata"]["name"] for n in state.namespaces} >= {
        "shop",
        "payments",
        "platform",
        "monitoring",
        "kube-system",
    }
    assert len(state.deployments) >= 8 and len(state.pods) >= 20
    assert {s["metadata"]["name"] for s in state.statefulsets} == {"ledger", "redis"}
    [exporter] = state.daemonsets
    assert (
        exporter["status"]["numberReady"] == exporter["status"]["desiredNumberScheduled"] == len(state.nodes)
    )
    assert all(
        c["status"] == "True" for n in state.nodes for c in n["status"]["conditions"] if c["type"] == "Ready"
    )
    assert {p["status"]["phase"] for p in state.persistentvolumeclaims} == {"Bound"}


def test_every_replica_set_an_event_names_exists(
    cluster: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    emulator, _ = cluster
    state = emulator.cluster
    replica_sets = {rs["metadata"]["name"] for rs in state.replicasets}
    named = {m for e in state.events for m in re.findall(r"replica set (\S+)", e["message"])}
    assert named and named <= replica_sets
    revisions = {
        rs["metadata"]["name"]: rs["spec"]["replicas"]
        for rs in state.replicasets
        if rs["metadata"]["name"].startswith("payments-api-")
    }
    assert len(revisions) == 3 and sorted(revisions.values()) == [0, 0, 3], "older revisions to roll back to"


def test_checkout_cannot_reach_the_cluster_ip_of_payments_api(
    cluster: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    emulator, _ = cluster
    [payments] = [s for s in emulator.cluster.services if s["metadata"]["name"] == "payments-api"]
    checkout_log = emulator.cluster.logs[("shop", "checkout-7d9f8b6c5-x2k4q", "checkout")]
    assert f"dial tcp {payments['spec']['clusterIP']}:8080" in checkout_log
