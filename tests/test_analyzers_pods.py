"""Pod analyzers against the Kubernetes emulator over real HTTP: every waiting and terminated reason,
init containers, sidecars, evictions, scheduling gates, sandbox and mount failures, error lines of
healthy-looking pods, and each finding linked to the cause it depends on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from incidentfox.agents.analyzers import Finding, analyze_kubernetes, build_rca
from incidentfox.agents.analyzers import kubernetes as orchestrator
from incidentfox.agents.analyzers.pod_facts import exit_meaning
from incidentfox.agents.analyzers.pod_logs import MAX_PODS
from incidentfox.agents.analyzers.pod_placement import scheduler_reading
from incidentfox.agents.rca import Evidence, RootCauseAnalysis
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


def _one(findings: list[Finding], kind: str) -> Finding:
    [found] = [f for f in findings if f.kind == kind]
    return found


@pytest.mark.parametrize(
    ("scenario", "kind", "resource", "quote"),
    [
        (
            "init_migration",
            "init_container",
            "pod shop/orders-5d7c9b8f6-w7k2m",
            'ERROR: column "refund_reason" does not exist',
        ),
        (
            "config_missing_key",
            "container_config",
            "pod shop/notifier-8d7f6c5b4-h3j5k",
            "couldn't find key SMTP_PASSWORD in Secret shop/notifier-smtp",
        ),
        (
            "volume_configmap_missing",
            "container_config",
            "pod edge/gateway-5f4e3d2c1-q9w8e",
            'configmap "gateway-routes" not found',
        ),
        (
            "run_container_error",
            "container_start",
            "pod observability/metrics-exporter-6a5b4c3d2-z7x6c",
            'exec: "/app/bin/exporter": stat /app/bin/exporter: no such file or directory',
        ),
        ("invalid_image", "image_pull", "pod shop/search-8b7a6c5d4-t5y6u", "invalid reference format"),
        (
            "sidecar_crashloop",
            "crashloop",
            "pod prod/api-59c8d7e6f-n4m5b",
            "invalid URI: logs-gateway.observability:8080/ingest",
        ),
        (
            "evicted_disk_pressure",
            "node_pressure",
            "node worker-3",
            "DiskPressure=True: kubelet has disk pressure",
        ),
        (
            "scheduling_gated",
            "scheduling_gated",
            "pod ml/trainer-resnet-7h2k9",
            "Scheduling Gates: kueue.x-k8s.io/admission",
        ),
        (
            "sandbox_failure",
            "sandbox_failure",
            "pod shop/cart-6b8d4c7f9-c3v4b",
            'plugin type="calico" failed (add)',
        ),
        (
            "unschedulable_affinity",
            "unschedulable",
            "pod ml/ranker-7a6b5c4d3-u8i9o",
            "1 node(s) had untolerated taint {dedicated: gpu}",
        ),
        (
            "running_log_errors",
            "crashloop",
            "pod pricing/rates-api-8f7e6d5c4-a5s6d",
            "flag provided but not defined: -currency-feed",
        ),
    ],
)
async def test_each_pod_scenario_is_analysed_to_its_root_cause(
    scenario: str, kind: str, resource: str, quote: str
) -> None:
    findings, rca = await _analyze(scenario)
    top = findings[0]
    assert (top.kind, top.resource) == (kind, resource), [(f.kind, f.resource) for f in findings]
    assert any(quote in e.quote for e in top.evidence)
    assert quote in " ".join(e.quote for e in rca.evidence)
    assert top.immediate_actions and rca.immediate_actions
    assert all(e.source for e in top.evidence)


async def test_failing_init_container_blocks_the_pod_with_its_exit_code_meaning() -> None:
    findings, rca = await _analyze("init_migration", "why is orders not rolling out?")
    init = _one(findings, "init_container")
    assert "Init:CrashLoopBackOff" in init.summary and "migrate" in init.summary
    assert "exits with code 1 (a general application error), so none of the pod's containers start" in (
        init.root_cause
    )
    assert init.evidence[0].source == "pod shop/orders-5d7c9b8f6-w7k2m (previous logs)"
    assert rca.confidence.level == "high"
    assert {f.workload for f in findings} == {"orders"}, "the healthy cart and database are not reported"


async def test_init_container_waiting_on_a_crashing_dependency_is_linked_to_it() -> None:
    question = "why is billing stuck?"
    findings, rca = await _analyze("init_waiting_dependency", question)
    waiting = _one(findings, "init_container")
    assert "still running" in waiting.root_cause
    assert "ledger-db.finance (10.96.0.10:5432): Connection refused" in waiting.root_cause
    assert waiting.depends_on == ("service/finance/ledger-db", "pod/finance/ledger-db-0")
    assert findings[0].kind == "crashloop" and findings[0].resource == "pod finance/ledger-db-0"
    assert rca.summary.startswith("billing depends on ledger-db, which is failing: ")
    assert "has invalid permissions" in rca.evidence[0].quote


async def test_config_error_names_the_missing_secret_key_and_what_to_create() -> None:
    findings, _ = await _analyze("config_missing_key")
    config = findings[0]
    assert config.summary.endswith("key SMTP_PASSWORD of Secret shop/notifier-smtp is missing.")
    assert config.immediate_actions[0].startswith(
        "Create key SMTP_PASSWORD of Secret shop/notifier-smtp in namespace shop"
    )
    assert config.decisive
    assert [f.kind for f in findings] == ["container_config"], "the old readiness warning is noise"


async def test_missing_configmap_volume_is_named_from_the_failed_mount_event() -> None:
    findings, _ = await _analyze("volume_configmap_missing")
    assert "volume routes cannot be mounted (ConfigMap gateway-routes is missing)" in findings[0].summary
    assert findings[0].evidence[0].source == "pod edge/gateway-5f4e3d2c1-q9w8e (FailedMount event, x13)"


async def test_run_container_error_says_the_entrypoint_is_missing_with_exit_128() -> None:
    findings, _ = await _analyze("run_container_error")
    start = findings[0]
    assert "The command or entrypoint does not exist in the image." in start.root_cause
    assert "exited with code 128 (the container runtime could not start the process)" in start.root_cause
    assert any(
        e.quote == "Last State: Terminated, Reason: StartError, Exit Code: 128" for e in start.evidence
    )


async def test_invalid_image_name_is_explained_as_malformed() -> None:
    findings, _ = await _analyze("invalid_image")
    assert "That means the image name is malformed." in findings[0].root_cause
    assert findings[0].decisive


async def test_native_sidecar_crash_is_named_and_counted_like_kubectl() -> None:
    findings, _ = await _analyze("sidecar_crashloop")
    crash = findings[0]
    assert crash.root_cause.startswith("Sidecar container log-shipper in pod prod/api-59c8d7e6f-n4m5b exits")
    assert crash.evidence[1].source == "pod prod/api-59c8d7e6f-n4m5b (sidecar container log-shipper status)"
    assert [f.kind for f in findings] == ["crashloop", "no_endpoints"]
    async with KubernetesEmulator("sidecar_crashloop") as emulator:
        client = await _client(emulator)
        pods = await k8s_tools.list_pods(client, k8s_tools.ListPodsParams(namespace="prod"))
        client.close()
    row = next(p for p in pods.data if p["name"] == "api-59c8d7e6f-n4m5b")
    assert (row["ready"], row["restarts"]) == ("1/2", 11)


async def test_evicted_pod_is_linked_to_its_node_under_disk_pressure() -> None:
    question = "why does report-builder keep getting evicted?"
    findings, rca = await _analyze("evicted_disk_pressure", question)
    assert [f.kind for f in findings] == ["node_pressure", "evicted"]
    evicted = findings[1]
    assert evicted.related == ("node/worker-3",)
    assert "ran low on ephemeral-storage" in evicted.summary
    assert "Container builder was using 61423660Ki, request is 0" in evicted.root_cause
    assert findings[0].resource == "node worker-3"
    assert "pod/analytics/report-builder-7d6c5b4a3-e1r2t" in findings[0].related
    assert rca.summary.startswith("Node worker-3 is low on disk (DiskPressure)")
    assert rca.confidence.level == "high"


async def test_scheduling_gate_is_named_and_not_mistaken_for_unschedulable() -> None:
    findings, _ = await _analyze("scheduling_gated")
    assert [f.kind for f in findings] == ["scheduling_gated"]
    assert "kueue.x-k8s.io/admission" in findings[0].summary
    assert "Kueue" in findings[0].immediate_actions[0]


async def test_sandbox_failure_points_at_the_nodes_cni() -> None:
    findings, _ = await _analyze("sandbox_failure")
    sandbox = findings[0]
    assert "the node's CNI network plugin failed" in sandbox.root_cause
    assert sandbox.related == ("node/worker-2",)
    assert "on node worker-2" in sandbox.summary


async def test_taints_and_selectors_in_the_scheduler_message_are_read_out() -> None:
    findings, _ = await _analyze("unschedulable_affinity")
    pending = findings[0]
    assert "1 node(s) carry the taint dedicated=gpu that the pod does not tolerate" in pending.root_cause
    assert "3 node(s) do not match the pod's nodeSelector or node affinity" in pending.root_cause
    assert any("toleration for dedicated" in a for a in pending.immediate_actions)


def test_scheduler_reading_covers_resources_cordons_and_anti_affinity() -> None:
    message = (
        "0/6 nodes are available: 2 Insufficient cpu, 1 node(s) were unschedulable, "
        "1 node(s) didn't match pod anti-affinity rules, 1 node(s) had volume node affinity conflict, "
        "1 Too many pods. preemption: 0/6 nodes are available: 2 No preemption victims found."
    )
    assert scheduler_reading(message) == [
        "2 node(s) lack free cpu for the pod's requests",
        "1 node(s) fail the pod's pod-affinity or anti-affinity rules",
        "1 node(s) are in another zone than the pod's volume",
        "1 node(s) are cordoned",
        "1 node(s) are at their pod limit",
    ]
    assert scheduler_reading("no scheduler words here") == []


async def test_healthy_looking_pod_logging_errors_about_a_dependency_is_linked_to_it() -> None:
    question = "why is quotes returning 502s?"
    findings, rca = await _analyze("running_log_errors", question)
    errors = _one(findings, "log_errors")
    assert errors.resource == "pod pricing/quotes-6e5d4c3b2-w2e3r"
    assert "3 of the last 5 log lines are errors" in errors.summary
    assert errors.depends_on == ("service/pricing/rates-api", "pod/pricing/rates-api-8f7e6d5c4-a5s6d")
    assert rca.summary.startswith("quotes depends on rates-api, which is failing: ")
    assert rca.evidence[0].quote == "flag provided but not defined: -currency-feed"
    assert "exits with code 2 (a misuse of the command" in rca.root_cause
    assert not any(f.workload == "catalog" for f in findings), "one slow-query WARN is not an error"


def _crashing(code: int, reason: str = "Error") -> dict[str, Any]:
    return {
        "namespace": "jobs",
        "nodes": [{"name": "worker-1"}],
        "pods": [
            {
                "name": "exporter-5c4b3a2d1-k8j7h",
                "owner": "exporter",
                "node": "worker-1",
                "containers": [
                    {
                        "name": "exporter",
                        "image": "registry.example.com/exporter:1.0.0",
                        "restarts": 4,
                        "ready": False,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "last": {"terminated": {"reason": reason, "exit_code": code, "age": "1m"}},
                        "previous_log": "starting exporter\n",
                    }
                ],
            }
        ],
    }


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (1, "a general application error"),
        (2, "a misuse of the command"),
        (126, "the command cannot be executed"),
        (127, "the command was not found in the image"),
        (137, "killed with SIGKILL"),
        (139, "a segmentation fault (SIGSEGV)"),
        (143, "stopped with SIGTERM"),
        (134, "it aborted (SIGABRT)"),
    ],
)
async def test_crash_exit_codes_are_explained(code: int, meaning: str) -> None:
    findings, _ = await _analyze(_crashing(code))
    assert findings[0].kind == "crashloop"
    assert f"exits with code {code} (" in findings[0].root_cause
    assert meaning in findings[0].root_cause


def test_exit_meaning_of_signals_and_unknown_codes() -> None:
    assert exit_meaning(131) == "it was killed by signal 3"
    assert exit_meaning(3) is None
    assert exit_meaning("?") is None


def _restarted(age: str, code: int) -> dict[str, Any]:
    scenario = _crashing(code)
    container = scenario["pods"][0]["containers"][0]
    container.update(
        ready=True,
        state={"running": {"age": age}},
        last={"terminated": {"reason": "Error", "exit_code": code, "age": age}},
        restarts=1,
        previous_log="segfault at 0000000000000008 ip 00007f3a\nSegmentation fault (core dumped)\n",
        log="INFO exporter serving\n",
    )
    return scenario


async def test_recent_restart_is_reported_with_its_exit_code_and_previous_log() -> None:
    findings, _ = await _analyze(_restarted("5m", 139))
    restart = _one(findings, "container_exit")
    assert restart.severity == "warning"
    assert "restarted (1 restarts); its last run exited with exit code 139" in restart.summary
    assert "a segmentation fault (SIGSEGV)" in restart.root_cause
    assert restart.evidence[0].quote == "Segmentation fault (core dumped)"


async def test_an_old_restart_is_not_a_problem() -> None:
    findings, _ = await _analyze(_restarted("3h", 139))
    assert [f.kind for f in findings] == ["healthy"]


async def test_image_pull_refused_by_the_registry_points_at_the_pull_secret() -> None:
    scenario = load_scenario("imagepull")
    for event in scenario["events"]:
        if event["reason"] == "Failed" and "pull" in event["message"]:
            event["message"] = (
                'Failed to pull image "registry.example.com/shop/payments:2.0.1": failed to authorize: '
                "failed to fetch oauth token: unexpected status: 401 Unauthorized"
            )
    findings, _ = await _analyze(scenario)
    pull = _one(findings, "image_pull")
    assert "the pull secret is missing or wrong" in pull.root_cause


async def test_log_error_scan_reads_at_most_max_pods_logs() -> None:
    pods = [
        {
            "name": f"worker-{i:02d}",
            "node": "worker-1",
            "containers": [
                {"name": "worker", "image": "registry.example.com/w:1", "log": "ERROR a\nERROR b\nERROR c\n"}
            ],
        }
        for i in range(MAX_PODS + 5)
    ]
    scenario = {"namespace": "batch", "nodes": [{"name": "worker-1"}], "pods": pods}
    async with KubernetesEmulator(scenario) as emulator:
        client = await _client(emulator)
        findings = await analyze_kubernetes(client, namespace="batch")
        client.close()
        logs_read = sum(1 for _, path in emulator.requests if "/log" in path)
    assert logs_read == MAX_PODS
    assert len(findings) == MAX_PODS and {f.kind for f in findings} == {"log_errors"}


async def test_an_empty_namespace_is_reported_healthy_with_what_was_checked() -> None:
    findings, rca = await _analyze({"namespace": "empty", "nodes": [{"name": "worker-1"}]})
    assert [f.kind for f in findings] == ["healthy"]
    assert "Checked 0 pods, 1 nodes, 0 services, 0 volume claims in namespace empty" in rca.root_cause


async def test_a_throttled_api_becomes_one_plain_api_error() -> None:
    async with KubernetesEmulator("init_migration") as emulator:
        client = await _client(emulator)
        emulator.throttled = 50
        findings = await analyze_kubernetes(client, namespace="shop")
        client.close()
    assert [f.kind for f in findings] == ["api_error"]
    assert "is throttling requests (429 Too Many Requests) and could not list pods in namespace shop" in (
        findings[0].root_cause
    )


async def test_bad_credentials_become_one_plain_api_error() -> None:
    async with KubernetesEmulator("init_migration") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": "wrong-token"}}}
        )
        findings = await analyze_kubernetes(client, namespace="shop")
        client.close()
    assert [f.kind for f in findings] == ["api_error"]
    assert "rejected the credentials (401 Unauthorized)" in findings[0].root_cause


async def test_kind_analyzers_are_called_and_one_that_raises_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str | None] = []

    async def quota(client: KubernetesClient, namespace: str | None) -> list[Finding]:
        seen.append(namespace)
        return [
            Finding(
                kind="quota_exceeded",
                severity="critical",
                resource="resourcequota shop/compute",
                summary="Quota shop/compute is exhausted.",
                root_cause="Quota shop/compute is exhausted.",
                evidence=(
                    Evidence(quote="used: pods=20, hard: pods=20", source="resourcequota shop/compute"),
                ),
                decisive=True,
                namespace="shop",
                key="resourcequota/shop/compute",
            )
        ]

    async def broken(client: KubernetesClient, namespace: str | None) -> list[Finding]:
        raise RuntimeError("a bug in one kind's rules")

    monkeypatch.setattr(orchestrator, "KIND_ANALYZERS", (broken, quota))
    findings, _ = await _analyze("init_migration")
    assert seen == ["shop"]
    assert {f.kind for f in findings} == {"init_container", "quota_exceeded"}


async def test_probe_failure_quotes_the_probes_answer_and_its_definition() -> None:
    findings, _ = await _analyze("probe_failure")
    probe = _one(findings, "probe_failure")
    quotes = [e.quote for e in probe.evidence]
    assert "Liveness probe failed: HTTP probe failed with statuscode: 503" in quotes
    assert "Readiness: http-get :8080/ready delay=5s timeout=1s period=5s #failure=3" in quotes
    assert probe.immediate_actions[1].startswith(
        "The readiness probe times out (Readiness: http-get :8080/ready delay=5s timeout=1s"
    )


async def test_a_failed_pod_reports_its_exit_code_and_last_log_line() -> None:
    scenario = _crashing(127)
    pod = scenario["pods"][0]
    pod["phase"] = "Failed"
    pod["containers"][0].update(
        state={"terminated": {"reason": "Error", "exit_code": 127, "age": "4m"}},
        last=None,
        restarts=0,
        log="starting report export\n/bin/sh: 1: /opt/export/run.sh: not found\n",
    )
    findings, _ = await _analyze(scenario)
    exited = _one(findings, "container_exit")
    assert exited.severity == "critical"
    assert "exited with exit code 127" in exited.summary
    assert "the command was not found in the image" in exited.root_cause
    assert exited.evidence[0].quote == "/bin/sh: 1: /opt/export/run.sh: not found"
    assert exited.evidence[1].quote == "State: Terminated, Reason: Error, Exit Code: 127"


async def test_a_volume_that_cannot_attach_is_a_mount_failure() -> None:
    scenario = load_scenario("volume_configmap_missing")
    scenario["events"][0].update(
        reason="FailedAttachVolume",
        message='AttachVolume.Attach failed for volume "pvc-1f2e" : rpc error: code = Internal desc = '
        "volume is attached to another node",
    )
    findings, _ = await _analyze(scenario)
    mount = findings[0]
    assert (mount.kind, mount.resource) == ("mount_failure", "pod edge/gateway-5f4e3d2c1-q9w8e")
    assert "volume pvc-1f2e cannot be mounted" in mount.summary
    assert "CSI driver" in mount.immediate_actions[0]
