"""Node and storage analyzers against the Kubernetes emulator over real HTTP, and the emulator's
status fields they read (node conditions, init container statuses, scheduling gates, Lost claims)
through the real ``kubernetes`` client."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from kubernetes import client as k8s

from incidentfox.agents.analyzers import Finding, analyze_kubernetes, build_rca
from incidentfox.agents.rca import RootCauseAnalysis
from incidentfox.agents.toolsets import kubernetes as k8s_tools
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, connect
from incidentfox.emulators.kubernetes import KubernetesEmulator, load_scenario


async def _client(emulator: KubernetesEmulator) -> KubernetesClient:
    return await connect(
        {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
    )


async def _analyze(
    scenario: str | Mapping[str, Any], question: str = ""
) -> tuple[list[Finding], RootCauseAnalysis]:
    namespace = load_scenario(scenario).get("namespace")
    async with KubernetesEmulator(scenario) as emulator:
        client = await _client(emulator)
        findings = await analyze_kubernetes(client, namespace=namespace, question=question)
        client.close()
    return findings, build_rca(findings, question=question)


def _by_resource(findings: list[Finding]) -> dict[str, Finding]:
    return {f.resource: f for f in findings}


async def test_every_node_condition_is_a_finding_with_the_kubelets_message_and_its_pods() -> None:
    findings, _ = await _analyze("node_conditions")
    nodes = _by_resource(findings)
    assert set(nodes) == {"node worker-2", "node worker-3", "node worker-4", "node worker-5"}
    memory, pid, network, cordoned = (nodes[f"node worker-{i}"] for i in (2, 3, 4, 5))
    assert memory.kind == pid.kind == network.kind == "node_pressure"
    assert memory.evidence[0].quote == "MemoryPressure=True: kubelet has insufficient memory available"
    assert memory.related == ("pod/prod/checkout-7d9f8b6c5-x2k4q",)
    assert "prod/checkout-7d9f8b6c5-x2k4q" in memory.summary
    assert pid.evidence[0].quote == "PIDPressure=True: kubelet has insufficient PID available"
    assert "low on process IDs" in pid.summary
    assert network.evidence[0].quote == "NetworkUnavailable=True: Calico is shutting down on this node"
    assert network.severity == "critical" and "has no working pod network" in network.summary
    assert cordoned.kind == "node_cordoned" and cordoned.severity == "info"
    assert cordoned.evidence[0].quote == "STATUS: Ready,SchedulingDisabled"
    assert "kubectl uncordon worker-5" in cordoned.immediate_actions[0]
    assert all(f.decisive for f in (memory, pid, network))
    assert [f.kind for f in findings][-1] == "node_cordoned", "a cordon ranks after real pressure"


async def test_not_ready_node_folds_its_pressure_into_one_finding() -> None:
    findings, _ = await _analyze("node_notready")
    assert [f.kind for f in findings] == ["node_not_ready"]
    assert "MemoryPressure is True" in [e.quote for e in findings[0].evidence]


async def test_a_question_about_a_pod_on_a_pressured_node_names_the_node() -> None:
    scenario = load_scenario("node_conditions")
    scenario["pods"][0]["containers"][0].update(
        ready=False,
        restarts=3,
        state={"running": {"age": "2m"}},
        last={"terminated": {"reason": "Error", "exit_code": 137, "age": "2m"}},
        previous_log="INFO cache warmed entries=120000\n",
    )
    findings, rca = await _analyze(scenario, "why does checkout keep restarting?")
    assert findings[0].resource == "node worker-2", [f.resource for f in findings]
    assert findings[1].kind == "container_exit" and "killed with SIGKILL" in findings[1].root_cause
    assert rca.summary.startswith("Node worker-2 is low on memory (MemoryPressure)")


async def test_lost_claim_is_the_root_cause_of_its_pending_pod() -> None:
    findings, rca = await _analyze("pvc_lost", "why is the indexer not starting?")
    assert [f.kind for f in findings] == ["pvc_lost", "unschedulable", "no_endpoints"]
    lost = findings[0]
    assert lost.resource == "pvc search/index-data-0"
    assert (
        lost.evidence[0].quote
        == "ClaimLost: Bound claim has lost its PersistentVolume. Data on the volume is lost!"
    )
    assert lost.evidence[0].source == "pvc search/index-data-0 (events)"
    assert "Status: Lost, Volume: pvc-" in lost.evidence[1].quote
    assert findings[1].related == ("pvc/search/index-data-0",)
    assert rca.confidence.level == "high"
    assert "query-cache" not in " ".join(f.resource for f in findings), "a Bound claim is fine"


async def test_claim_without_a_storage_class_quotes_the_binding_event() -> None:
    findings, _ = await _analyze("pvc_no_storageclass")
    pending = findings[0]
    assert (pending.kind, pending.resource) == ("pending_pvc", "pvc tools/cache-data")
    assert pending.evidence[0].quote == (
        "FailedBinding: no persistent volumes available for this claim and no storage class is set"
    )
    assert "class none" in pending.summary
    assert "mark one StorageClass as the cluster default" in pending.immediate_actions[0]
    assert pending.decisive


async def test_claim_without_a_storage_class_or_any_event_is_still_explained() -> None:
    scenario = load_scenario("pvc_no_storageclass")
    scenario["events"] = []
    findings, _ = await _analyze(scenario)
    pending = findings[0]
    assert "names no StorageClass and no volume" in pending.root_cause
    assert pending.decisive


async def test_pending_claim_with_provisioning_failure_keeps_its_event() -> None:
    findings, _ = await _analyze("pending_pvc")
    assert findings[0].evidence[0].quote == (
        'ProvisioningFailed: storageclass.storage.k8s.io "fast-ssd-v2" not found'
    )


async def test_cluster_where_node_reads_are_forbidden_still_analyses_pods() -> None:
    async with KubernetesEmulator("pvc_lost") as emulator:
        emulator.unreadable = frozenset({"nodes"})
        client = await _client(emulator)
        findings = await analyze_kubernetes(client, namespace="search")
        client.close()
    assert [f.kind for f in findings] == ["pvc_lost", "unschedulable", "no_endpoints"]


@pytest.fixture
async def api() -> Any:
    async with KubernetesEmulator("node_conditions") as emulator:
        cfg = k8s.Configuration(host=emulator.api_url)
        cfg.api_key = {"authorization": emulator.token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        client = k8s.ApiClient(cfg)
        yield emulator, k8s.CoreV1Api(client)
        client.close()


async def test_emulated_node_conditions_read_through_the_real_client(api: Any) -> None:
    _, core = api
    listed = await asyncio.to_thread(core.list_node)
    nodes = {n.metadata.name: n for n in listed.items}
    conditions = {c.type: c for c in nodes["worker-4"].status.conditions}
    assert conditions["NetworkUnavailable"].status == "True"
    assert conditions["NetworkUnavailable"].reason == "NoRouteCreated"
    healthy = {c.type: c for c in nodes["worker-1"].status.conditions}
    assert "NetworkUnavailable" not in healthy
    assert healthy["DiskPressure"].message == "kubelet has no disk pressure"
    assert nodes["worker-5"].spec.unschedulable is True


async def test_emulated_init_containers_gates_evictions_and_lost_claims(api: Any) -> None:
    emulator, core = api
    emulator.load("init_migration")
    pod = await asyncio.to_thread(core.read_namespaced_pod, "orders-5d7c9b8f6-w7k2m", "shop")
    assert [c.name for c in pod.spec.init_containers] == ["migrate"]
    [status] = pod.status.init_container_statuses
    assert status.state.waiting.reason == "CrashLoopBackOff"
    assert status.last_state.terminated.exit_code == 1
    initialized = next(c for c in pod.status.conditions if c.type == "Initialized")
    assert (initialized.status, initialized.reason) == ("False", "ContainersNotInitialized")
    log = await asyncio.to_thread(
        core.read_namespaced_pod_log, "orders-5d7c9b8f6-w7k2m", "shop", container="migrate", previous=True
    )
    assert "ERROR: column" in log
    emulator.load("scheduling_gated")
    gated = await asyncio.to_thread(core.read_namespaced_pod, "trainer-resnet-7h2k9", "ml")
    assert [g.name for g in gated.spec.scheduling_gates] == ["kueue.x-k8s.io/admission"]
    scheduled = next(c for c in gated.status.conditions if c.type == "PodScheduled")
    assert (scheduled.status, scheduled.reason) == ("False", "SchedulingGated")
    emulator.load("evicted_disk_pressure")
    evicted = await asyncio.to_thread(core.read_namespaced_pod, "report-builder-7d6c5b4a3-e1r2t", "analytics")
    assert (evicted.status.phase, evicted.status.reason) == ("Failed", "Evicted")
    assert evicted.status.message.startswith("The node was low on resource: ephemeral-storage.")
    emulator.load("pvc_lost")
    claim = await asyncio.to_thread(core.read_namespaced_persistent_volume_claim, "index-data-0", "search")
    assert claim.status.phase == "Lost" and claim.spec.volume_name.startswith("pvc-")


async def test_list_pods_shows_init_and_gated_status_like_kubectl() -> None:
    statuses: dict[str, str] = {}
    for scenario, namespace in (
        ("init_migration", "shop"),
        ("init_waiting_dependency", "finance"),
        ("scheduling_gated", "ml"),
    ):
        async with KubernetesEmulator(scenario) as emulator:
            client = await _client(emulator)
            pods = await k8s_tools.list_pods(client, k8s_tools.ListPodsParams(namespace=namespace))
            client.close()
        statuses.update({p["name"]: p["status"] for p in pods.data})
    assert statuses["orders-5d7c9b8f6-w7k2m"] == "Init:CrashLoopBackOff"
    assert statuses["orders-7b8c6d5f4-p2x9t"] == "Running"
    assert statuses["billing-6c9d8f7b5-r4t8y"] == "Init:0/1"
    assert statuses["trainer-resnet-7h2k9"] == "SchedulingGated"
