"""The Kubernetes emulator speaks the API the real ``kubernetes`` client expects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from incidentfox.emulators.kubernetes import KubernetesEmulator, label_selector_matches, scenario_names

EXPECTED_SCENARIOS = {
    "crashloop",
    "oomkilled",
    "imagepull",
    "unschedulable",
    "probe_failure",
    "no_endpoints",
    "pending_pvc",
    "node_notready",
    "healthy",
    "hpa_pinned",
}


@pytest.fixture
async def crashloop(tmp_path: Path) -> AsyncIterator[tuple[KubernetesEmulator, client.ApiClient]]:
    async with KubernetesEmulator("crashloop") as emulator:
        kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
        api = config.new_client_from_config(config_file=str(kubeconfig))
        yield emulator, api
        api.close()


def test_every_documented_scenario_is_bundled() -> None:
    assert set(scenario_names()) >= EXPECTED_SCENARIOS


@pytest.mark.parametrize("scenario", sorted(EXPECTED_SCENARIOS))
async def test_real_client_reads_every_resource_of_every_scenario(scenario: str) -> None:
    async with KubernetesEmulator(scenario) as emulator:
        cfg = client.Configuration(host=emulator.api_url)
        cfg.api_key = {"authorization": emulator.token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        api = client.ApiClient(cfg)
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)

        def read_everything() -> dict[str, int]:
            pods: list[Any] = core.list_pod_for_all_namespaces().items
            for pod in pods:  # each object deserialises through the strict pydantic models
                core.read_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
            deployments: list[Any] = apps.list_deployment_for_all_namespaces().items
            for dep in deployments:
                apps.read_namespaced_deployment(dep.metadata.name, dep.metadata.namespace)
            return {
                "pods": len(pods),
                "namespaces": len(core.list_namespace().items),
                "nodes": len(core.list_node().items),
                "events": len(core.list_event_for_all_namespaces().items),
                "services": len(core.list_service_for_all_namespaces().items),
                "endpoints": len(core.list_endpoints_for_all_namespaces().items),
                "pvcs": len(core.list_persistent_volume_claim_for_all_namespaces().items),
                "replicasets": len(apps.list_replica_set_for_all_namespaces().items),
            }

        counts = await asyncio.to_thread(read_everything)
        api.close()
    assert counts["pods"] >= 1
    assert counts["nodes"] >= 1
    assert counts["namespaces"] >= 3  # default, kube-system, prod
    assert counts["services"] == counts["endpoints"]


async def test_version_and_discovery(crashloop: tuple[KubernetesEmulator, client.ApiClient]) -> None:
    _, api = crashloop
    version = await asyncio.to_thread(client.VersionApi(api).get_code)
    versions = await asyncio.to_thread(client.CoreApi(api).get_api_versions)
    groups = await asyncio.to_thread(client.ApisApi(api).get_api_versions)
    assert version.git_version.startswith("v1.33")
    assert versions.versions == ["v1"]
    assert [g.name for g in groups.groups] == ["apps"]


async def test_crashloop_pod_has_restart_count_and_previous_log(
    crashloop: tuple[KubernetesEmulator, client.ApiClient],
) -> None:
    _, api = crashloop
    core = client.CoreV1Api(api)
    pod: Any = await asyncio.to_thread(core.read_namespaced_pod, "checkout-7d9f8b6c5-x2k4q", "prod")
    status = pod.status.container_statuses[0]
    assert status.state.waiting.reason == "CrashLoopBackOff"
    assert status.restart_count == 7
    assert status.last_state.terminated.exit_code == 1
    previous = await asyncio.to_thread(
        core.read_namespaced_pod_log, "checkout-7d9f8b6c5-x2k4q", "prod", previous=True, tail_lines=1
    )
    assert previous == "Error: Environment variable DEPLOY_ENV is undefined\n"
    full = await asyncio.to_thread(
        core.read_namespaced_pod_log, "checkout-7d9f8b6c5-x2k4q", "prod", previous=True, container="checkout"
    )
    assert len(full.splitlines()) == 5


async def test_previous_log_of_a_container_that_never_restarted_is_a_400(
    crashloop: tuple[KubernetesEmulator, client.ApiClient],
) -> None:
    _, api = crashloop
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as caught:
        await asyncio.to_thread(core.read_namespaced_pod_log, "cart-6b8d4c7f9-m2p7r", "prod", previous=True)
    assert caught.value.status == 400
    assert "previous terminated container" in str(caught.value.body)


async def test_label_selector_filters_pods(crashloop: tuple[KubernetesEmulator, client.ApiClient]) -> None:
    _, api = crashloop
    core = client.CoreV1Api(api)
    only_cart: Any = await asyncio.to_thread(core.list_namespaced_pod, "prod", label_selector="app=cart")
    not_cart: Any = await asyncio.to_thread(core.list_namespaced_pod, "prod", label_selector="app!=cart")
    assert [p.metadata.name for p in only_cart.items] == ["cart-6b8d4c7f9-m2p7r"]
    assert [p.metadata.name for p in not_cart.items] == ["checkout-7d9f8b6c5-x2k4q"]


def test_label_selector_semantics() -> None:
    labels = {"app": "checkout", "tier": "web"}
    assert label_selector_matches("app=checkout,tier", labels)
    assert label_selector_matches("app in (cart, checkout),!canary", labels)
    assert not label_selector_matches("app notin (checkout)", labels)
    assert not label_selector_matches("app==cart", labels)
    assert not label_selector_matches("missing", labels)


async def test_events_carry_involved_object_and_counts(
    crashloop: tuple[KubernetesEmulator, client.ApiClient],
) -> None:
    _, api = crashloop
    events: Any = await asyncio.to_thread(client.CoreV1Api(api).list_namespaced_event, "prod")
    backoff = next(e for e in events.items if e.reason == "BackOff")
    assert backoff.involved_object.kind == "Pod"
    assert backoff.involved_object.name == "checkout-7d9f8b6c5-x2k4q"
    assert backoff.count == 31
    assert backoff.type == "Warning"
    assert backoff.last_timestamp > backoff.first_timestamp


async def test_missing_pod_is_a_404_status(crashloop: tuple[KubernetesEmulator, client.ApiClient]) -> None:
    _, api = crashloop
    with pytest.raises(ApiException) as caught:
        await asyncio.to_thread(client.CoreV1Api(api).read_namespaced_pod, "nope", "prod")
    assert caught.value.status == 404
    status = json.loads(caught.value.body or "{}")
    assert (status["kind"], status["reason"], status["message"]) == (
        "Status",
        "NotFound",
        'pods "nope" not found',
    )


async def test_wrong_token_is_a_401(tmp_path: Path) -> None:
    async with KubernetesEmulator("healthy") as emulator:
        kubeconfig = emulator.write_kubeconfig(tmp_path / "kc", token="not-the-token")
        api = config.new_client_from_config(config_file=str(kubeconfig))
        with pytest.raises(ApiException) as caught:
            await asyncio.to_thread(client.CoreV1Api(api).list_node)
    assert caught.value.status == 401


async def test_unreachable_switch_and_stop_drop_connections(
    crashloop: tuple[KubernetesEmulator, client.ApiClient],
) -> None:
    emulator, api = crashloop
    core = client.CoreV1Api(api)
    emulator.unreachable = True
    with pytest.raises(urllib3.exceptions.HTTPError):
        await asyncio.to_thread(core.list_node)
    emulator.unreachable = False
    assert len((await asyncio.to_thread(core.list_node)).items) == 2
    await emulator.stop()
    with pytest.raises(urllib3.exceptions.HTTPError):
        await asyncio.to_thread(core.list_node)


async def test_service_endpoints_follow_pod_readiness() -> None:
    async with KubernetesEmulator("no_endpoints") as emulator:
        cfg = client.Configuration(host=emulator.api_url)
        cfg.api_key, cfg.api_key_prefix = {"authorization": emulator.token}, {"authorization": "Bearer"}
        core = client.CoreV1Api(client.ApiClient(cfg))
        endpoints = await asyncio.to_thread(core.read_namespaced_endpoints, "frontend", "prod")
    assert endpoints.subsets is None


async def test_list_resource_version_moves_on_writes_and_scenario_loads_only(
    crashloop: tuple[KubernetesEmulator, client.ApiClient],
) -> None:
    emulator, api = crashloop
    core = client.CoreV1Api(api)

    async def revision() -> str:
        pods = await asyncio.to_thread(core.list_namespaced_pod, "prod", limit=1)
        assert pods.metadata is not None
        return str(pods.metadata.resource_version)

    first = await revision()
    assert await revision() == first, "reads do not move the cluster's revision"
    await asyncio.to_thread(core.delete_namespaced_pod, "cart-6b8d4c7f9-m2p7r", "prod")
    after_delete = await revision()
    assert int(after_delete) > int(first)
    emulator.load("healthy")
    assert int(await revision()) > int(after_delete)


async def test_an_identity_bound_to_one_namespace_is_refused_elsewhere_with_403(
    crashloop: tuple[KubernetesEmulator, client.ApiClient],
) -> None:
    emulator, api = crashloop
    emulator.namespace_scoped = frozenset({"prod"})
    core = client.CoreV1Api(api)
    assert (await asyncio.to_thread(core.list_namespaced_pod, "prod")).items
    for call in (core.list_namespace, core.list_node, core.list_pod_for_all_namespaces):
        with pytest.raises(ApiException) as refused:
            await asyncio.to_thread(call)
        assert refused.value.status == 403
        assert "at the cluster scope" in json.loads(str(refused.value.body))["message"]
    with pytest.raises(ApiException) as other:
        await asyncio.to_thread(core.list_namespaced_pod, "shop")
    assert (
        'cannot list resource "pods" in API group "" in the namespace "shop"'
        in json.loads(str(other.value.body))["message"]
    )


async def test_autoscaling_v2_and_metrics_server_paths_serve_real_shapes(tmp_path: Path) -> None:
    async with KubernetesEmulator("hpa_pinned") as emulator:
        api = config.new_client_from_config(config_file=str(emulator.write_kubeconfig(tmp_path / "kc")))
        autoscaling, custom = client.AutoscalingV2Api(api), client.CustomObjectsApi(api)
        hpa: Any = await asyncio.to_thread(
            autoscaling.read_namespaced_horizontal_pod_autoscaler, "checkout", "prod"
        )
        usage: Any = await asyncio.to_thread(
            custom.list_cluster_custom_object, "metrics.k8s.io", "v1beta1", "pods"
        )
        emulator.metrics_server = False
        with pytest.raises(ApiException) as absent:
            await asyncio.to_thread(
                custom.list_namespaced_custom_object, "metrics.k8s.io", "v1beta1", "prod", "pods"
            )
        api.close()
    assert (hpa.spec.max_replicas, hpa.status.current_replicas) == (4, 4)
    assert hpa.spec.metrics[0].resource.target.average_utilization == 70
    assert hpa.status.current_metrics[0].resource.current.average_utilization == 160
    assert usage["kind"] == "PodMetricsList"
    assert {p["metadata"]["name"]: p["containers"][0]["usage"]["memory"] for p in usage["items"]} == {
        "checkout-8c6d5f7b9-a1b2c": "481Mi",
        "checkout-8c6d5f7b9-d3e4f": "300Mi",
        "cart-6b8d4c7f9-m2p7r": "64Mi",
    }
    assert absent.value.status == 404
