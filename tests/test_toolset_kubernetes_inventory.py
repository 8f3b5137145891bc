"""The kubernetes toolset's inventory tools against the emulator through the real client: stateful
sets, daemon sets, jobs and cron jobs; one node in depth; ingresses with their backends; config map
changes from managedFields; and their failures in one plain sentence."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from incidentfox.agents.toolsets import kubernetes as kt
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, connect
from incidentfox.emulators.kubernetes import KubernetesEmulator

SHOP = "shop"
RUNNING = {"name": "app", "image": "registry.example.com/app:1.0"}


def _pod(name: str, node: str, *, owner: str, cpu: str, memory: str, **extra: Any) -> dict[str, Any]:
    container = {**RUNNING, "resources": {"requests": {"cpu": cpu, "memory": memory}}}
    return {
        "name": name,
        "node": node,
        "owner": owner,
        "owner_kind": "StatefulSet",
        "containers": [container],
        **extra,
    }


SCENARIO: dict[str, Any] = {
    "namespace": SHOP,
    "nodes": [
        {"name": "node-a", "cpu": "4", "memory": "16Gi", "roles": ["worker"]},
        {
            "name": "node-b",
            "ready": False,
            "reason": "KubeletNotReady",
            "message": "PLEG is not healthy: pleg was last seen active 3m0s ago",
            "pressure": ["MemoryPressure"],
            "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}],
        },
    ],
    "pods": [
        _pod("postgres-0", "node-a", owner="postgres", cpu="1500m", memory="4Gi"),
        _pod(
            "postgres-1",
            "node-b",
            owner="postgres",
            cpu="1500m",
            memory="4Gi",
            containers=[
                {
                    **RUNNING,
                    "ready": False,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "resources": {"requests": {"cpu": "1500m", "memory": "4Gi"}},
                }
            ],
        ),
        _pod("cache-0", "node-a", owner="cache", cpu="500m", memory="1Gi"),
        {
            "name": "frontend-5d8f7c9b4-abcde",
            "node": "node-a",
            "owner": "frontend",
            "labels": {"app": "frontend"},
            "containers": [RUNNING],
        },
    ],
    "statefulsets": [{"name": "postgres", "replicas": 2}, {"name": "cache", "replicas": 1}],
    "daemonsets": [{"name": "log-agent", "namespace": "kube-system", "image": "fluent/fluent-bit:3.1"}],
    "jobs": [
        {"name": "db-migrate-29001", "status": "failed", "owner": "db-migrate", "age": "50m", "failed": 7},
        {"name": "db-migrate-28999", "status": "succeeded", "owner": "db-migrate", "age": "2h"},
        {"name": "backfill-orders", "status": "running", "age": "10m"},
    ],
    "cronjobs": [
        {"name": "db-migrate", "schedule": "0 * * * *", "last_schedule_age": "50m", "last_success_age": "2h"},
        {"name": "report", "schedule": "0 2 * * *", "last_schedule_age": "20h", "last_success_age": "20h"},
    ],
    "services": [{"name": "frontend", "ports": ["80:3000"]}, {"name": "checkout", "ports": ["80:8080"]}],
    "ingresses": [
        {
            "name": "shop",
            "class": "nginx",
            "address": "203.0.113.10",
            "tls": ["shop.example.com"],
            "rules": [
                {
                    "host": "shop.example.com",
                    "paths": [
                        {"path": "/", "service": "frontend", "port": 80},
                        {"path": "/api/checkout", "service": "checkout", "port": 80},
                        {"path": "/legacy", "service": "old-api", "port": 8080},
                    ],
                }
            ],
        },
        {
            "name": "admin",
            "namespace": "backoffice",
            "rules": [{"host": "admin.example.com", "paths": [{"path": "/", "service": "admin"}]}],
        },
    ],
    "configmaps": [
        {
            "name": "checkout-config",
            "data": {"PAYMENT_TIMEOUT_S": "1", "RETRIES": "3"},
            "age": "30d",
            "changes": [{"manager": "kubectl-edit", "age": "20m", "keys": ["PAYMENT_TIMEOUT_S"]}],
        },
        {"name": "frontend-config", "data": {"THEME": "dark"}, "age": "10d"},
        {"name": "kube-root-ca.crt", "data": {"ca.crt": "-----BEGIN CERTIFICATE-----"}, "age": "300d"},
    ],
}


@pytest.fixture
async def emulator() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator(SCENARIO) as k8s:
        yield k8s


@pytest.fixture
async def k8s(emulator: KubernetesEmulator) -> AsyncIterator[KubernetesClient]:
    client = await connect(
        {
            "integrations": {
                "kubernetes": {"api_url": emulator.api_url, "token": emulator.token, "namespace": SHOP}
            }
        }
    )
    yield client
    client.close()


async def _run(client: KubernetesClient, tool_name: str, /, **args: Any) -> ToolResult:
    tool = next(t for t in kt.KUBERNETES.tools if t.name == tool_name)
    return await tool.run(client, tool.params.model_validate(args))


def _by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rows}


def test_the_inventory_tools_are_offered_as_reads() -> None:
    names = {t.name: t for t in kt.KUBERNETES.tools}
    for name in ("list_workloads", "describe_node", "ingresses", "config_changes"):
        assert not names[name].writes
        assert name in kt.KUBERNETES.instructions


async def test_list_workloads_shows_sets_jobs_and_cronjobs_with_their_health(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "list_workloads")
    assert result.status == "ok", result.error
    assert result.invocation == "kubectl get statefulsets,daemonsets,jobs,cronjobs -n shop"
    rows = _by_name(result.data["workloads"])
    assert (rows["postgres"]["kind"], rows["postgres"]["ready"], rows["postgres"]["healthy"]) == (
        "StatefulSet",
        "1/2",
        False,
    )
    assert rows["cache"]["ready"] == "1/1" and rows["cache"]["healthy"] is True
    failed = rows["db-migrate-29001"]
    assert (failed["status"], failed["cronjob"], failed["failed_pods"], failed["reason"]) == (
        "Failed",
        "db-migrate",
        7,
        "BackoffLimitExceeded",
    )
    assert failed["message"] == "Job has reached the specified backoff limit"
    assert "db-migrate-28999" not in rows, "a cron job's completed runs are summarised by the cron job"
    assert rows["backfill-orders"]["status"] == "Running" and rows["backfill-orders"]["active"] == 1
    cron = rows["db-migrate"]
    assert (cron["schedule"], cron["failed_jobs"], cron["healthy"]) == (
        "0 * * * *",
        ["db-migrate-29001"],
        False,
    )
    assert cron["last_failure"] == "Job has reached the specified backoff limit"
    assert cron["last_success"] < cron["last_schedule"]
    assert rows["report"]["healthy"] is True
    assert "log-agent" not in rows, "the daemon set lives in kube-system"


async def test_list_workloads_unhealthy_only_and_by_kind(k8s: KubernetesClient) -> None:
    unhealthy = await _run(k8s, "list_workloads", unhealthy_only=True)
    assert sorted(r["name"] for r in unhealthy.data["workloads"]) == [
        "db-migrate",
        "db-migrate-29001",
        "postgres",
    ]
    daemons = await _run(k8s, "list_workloads", namespace="kube-system", kinds=["daemonsets"])
    [agent] = daemons.data["workloads"]
    assert (agent["name"], agent["ready"]) == ("log-agent", "0/2")
    assert daemons.invocation == "kubectl get daemonsets -n kube-system"
    nothing = await _run(k8s, "list_workloads", namespace="backoffice", kinds=["statefulsets", "cronjobs"])
    assert (nothing.status, nothing.data) == ("no_data", "No statefulsets, cronjobs in namespace backoffice")


async def test_list_workloads_where_every_kind_is_forbidden_is_one_sentence(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    emulator.namespace_scoped = frozenset({SHOP})
    everywhere = await _run(k8s, "list_workloads", namespace="kube-system")
    assert everywhere.status == "error" and everywhere.error is not None
    assert everywhere.error.startswith(
        "Not allowed to list statefulsets in namespace kube-system (403 Forbidden"
    )


async def test_list_workloads_reports_a_forbidden_kind_beside_the_others(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    emulator.unreadable = frozenset({"jobs", "cronjobs"})
    result = await _run(k8s, "list_workloads")
    assert result.status == "ok", result.error
    assert sorted(r["name"] for r in result.data["workloads"]) == ["cache", "postgres"]
    assert set(result.data["errors"]) == {"jobs", "cronjobs"}
    assert result.data["errors"]["jobs"].startswith(
        "Not allowed to list jobs in namespace shop (403 Forbidden"
    )


async def test_describe_node_shows_conditions_allocation_pods_and_taints(k8s: KubernetesClient) -> None:
    healthy = await _run(k8s, "describe_node", name="node-a")
    assert healthy.status == "ok", healthy.error
    assert healthy.invocation == "kubectl describe node node-a"
    allocated = healthy.data["allocated"]
    assert allocated["cpu"] == {"requested": "2000m", "allocatable": "4000m", "percent": 50}
    assert allocated["memory"] == {"requested": "5120Mi", "allocatable": "16384Mi", "percent": 31}
    assert allocated["pods"] == {"running": 3, "allocatable": 110}
    assert sorted(p["name"] for p in healthy.data["pods"]) == [
        "cache-0",
        "frontend-5d8f7c9b4-abcde",
        "postgres-0",
    ]
    assert healthy.data["labels"] == {"node-role.kubernetes.io/worker": ""}
    sick = await _run(k8s, "describe_node", name="node-b")
    conditions = {c["type"]: c for c in sick.data["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["message"] == "PLEG is not healthy: pleg was last seen active 3m0s ago"
    assert conditions["MemoryPressure"]["status"] == "True"
    assert sick.data["taints"] == ["node.kubernetes.io/not-ready:NoExecute"]
    [pod] = sick.data["pods"]
    assert (pod["name"], pod["status"], pod["cpu_request"]) == ("postgres-1", "CrashLoopBackOff", "1500m")


async def test_describe_missing_node_is_a_plain_404(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "describe_node", name="node-z")
    assert result.error == 'Could not describe node node-z: nodes "node-z" not found (404).'


async def test_ingresses_show_routes_and_backends_without_endpoints(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "ingresses")
    assert result.status == "ok", result.error
    [shop] = result.data
    assert (shop["class"], shop["addresses"], shop["tls_hosts"]) == (
        "nginx",
        ["203.0.113.10"],
        ["shop.example.com"],
    )
    routes = {r["path"]: r for r in shop["routes"]}
    assert routes["/"] == {
        "host": "shop.example.com",
        "path": "/",
        "service": "frontend",
        "port": 80,
        "service_exists": True,
        "ready_endpoints": 1,
    }
    assert (routes["/api/checkout"]["service_exists"], routes["/api/checkout"]["ready_endpoints"]) == (
        True,
        0,
    )
    assert routes["/legacy"]["service_exists"] is False
    assert shop["healthy"] is False
    assert shop["problem"] == "2 route(s) lead to a service without ready endpoints"
    everywhere = await _run(k8s, "ingresses", namespace=None, name="admin")
    assert everywhere.status == "no_data", "the configured namespace is the default"
    assert everywhere.data == "No ingress admin in namespace shop"
    admin = await _run(k8s, "ingresses", namespace="backoffice", name="admin")
    assert admin.data[0]["problem"] == "no load balancer address yet"


async def test_config_changes_lists_newest_change_first_without_values(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "config_changes")
    assert result.status == "ok", result.error
    maps = result.data["config_maps"]
    assert [m["name"] for m in maps] == ["checkout-config", "frontend-config"], "kube-root-ca.crt is noise"
    newest = maps[0]
    assert (newest["last_modified_by"], newest["last_changed_keys"]) == (
        "kubectl-edit",
        ["PAYMENT_TIMEOUT_S"],
    )
    assert newest["keys"] == ["PAYMENT_TIMEOUT_S", "RETRIES"]
    assert "data" not in newest and "1" not in str(newest.get("keys"))
    recent = await _run(k8s, "config_changes", changed_within_hours=1)
    assert [m["name"] for m in recent.data["config_maps"]] == ["checkout-config"]
    quiet = await _run(k8s, "config_changes", namespace="backoffice", changed_within_hours=1)
    assert (quiet.status, quiet.data) == (
        "no_data",
        "No config maps changed in the last 1 hours in namespace backoffice",
    )


async def test_config_changes_of_one_config_map_reads_its_values_and_writers(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "config_changes", name="checkout-config")
    assert result.status == "ok", result.error
    assert result.data["data"] == {"PAYMENT_TIMEOUT_S": "1", "RETRIES": "3"}
    assert [(w["manager"], w["keys"]) for w in result.data["writers"]] == [
        ("kubectl-edit", ["PAYMENT_TIMEOUT_S"]),
        ("helm", ["RETRIES"]),
    ]
    missing = await _run(k8s, "config_changes", name="nope")
    assert missing.error == 'Could not read config map shop/nope: configmaps "nope" not found (404).'


async def test_a_throttled_api_is_retried_after_retry_after(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    emulator.throttled = 1
    started = time.monotonic()
    result = await _run(k8s, "config_changes")
    assert result.status == "ok", result.error
    assert time.monotonic() - started >= 1, "Retry-After was honoured"


async def test_a_persistently_throttled_api_is_one_sentence(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    emulator.throttled = 100
    emulator.throttle_retry_after_s = 0
    result = await _run(k8s, "describe_node", name="node-a")
    assert result.error == (
        f"Kubernetes API at {emulator.api_url} is throttling requests (429 Too Many Requests) and could not "
        "describe node node-a; retry in 0 seconds."
    )


async def test_wrong_token_and_unreachable_api_are_plain_words(emulator: KubernetesEmulator) -> None:
    wrong = await connect({"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": "nope"}}})
    denied = await _run(wrong, "ingresses", namespace=SHOP)
    wrong.close()
    assert denied.error == (
        f"Kubernetes API at {emulator.api_url} rejected the credentials (401 Unauthorized). "
        "Check the token or kubeconfig in the team's Kubernetes integration."
    )
    client = await connect(
        {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
    )
    emulator.unreachable = True
    down = await _run(client, "list_workloads", namespace=SHOP)
    client.close()
    assert down.status == "error" and down.error is not None
    assert down.error.startswith(f"Kubernetes API at {emulator.api_url} is unreachable")
