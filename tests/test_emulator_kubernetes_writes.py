"""The Kubernetes emulator applies writes with the API server's formats, shapes and status codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.kubernetes_patch import strategic_merge


@pytest.fixture
async def emulator() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator("bad_rollout") as k8s:
        yield k8s


@pytest.fixture
def api(emulator: KubernetesEmulator) -> client.ApiClient:
    cfg = client.Configuration(host=emulator.api_url)
    cfg.api_key, cfg.api_key_prefix = {"authorization": emulator.token}, {"authorization": "Bearer"}
    return client.ApiClient(cfg)


@pytest.fixture
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


async def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(method, *args, **kwargs)


async def _failure(method: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as caught:
        await _call(method, *args, **kwargs)
    return int(caught.value.status or 0), json.loads(caught.value.body or "{}")


async def _raw_patch(
    emulator: KubernetesEmulator, path: str, body: str, content_type: str
) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"Bearer {emulator.token}", "Content-Type": content_type}
    async with (
        aiohttp.ClientSession() as http,
        http.patch(emulator.api_url + path, data=body, headers=headers) as r,
    ):
        await r.read()
        return r


async def test_every_resource_of_the_write_scenario_reads_through_the_strict_client(
    apps: client.AppsV1Api,
) -> None:
    statefulsets = await _call(apps.list_namespaced_stateful_set, "prod")
    daemonsets = await _call(apps.list_namespaced_daemon_set, "prod")
    replicasets = await _call(apps.list_namespaced_replica_set, "prod", label_selector="app=payments")
    assert [s.metadata.name for s in statefulsets.items] == ["postgres"]
    assert daemonsets.items[0].status.desired_number_scheduled == 2
    revisions = sorted(
        rs.metadata.annotations["deployment.kubernetes.io/revision"] for rs in replicasets.items
    )
    assert revisions == ["1", "2"]
    assert all(rs.metadata.owner_references[0].controller for rs in replicasets.items)


async def test_a_strategic_merge_patch_merges_containers_by_name(
    emulator: KubernetesEmulator, apps: client.AppsV1Api
) -> None:
    body = {"spec": {"template": {"spec": {"containers": [{"name": "payments", "image": "payments:3.2.1"}]}}}}
    patched = await _call(apps.patch_namespaced_deployment, "payments", "prod", body)
    [container] = patched.spec.template.spec.containers
    assert (container.image, container.ports[0].container_port) == ("payments:3.2.1", 8080)
    assert int(patched.metadata.resource_version) > 5_000_000
    assert patched.status.updated_replicas == 0, "the new revision has not rolled out yet"


def test_strategic_merge_directives() -> None:
    target = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "labels": {"x": "1"}}
    patch = {
        "env": [{"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}],
        "labels": {"$patch": "replace", "y": "2"},
    }
    assert strategic_merge(target, patch) == {
        "env": [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
        "labels": {"y": "2"},
    }


async def test_status_and_system_fields_cannot_be_patched(apps: client.AppsV1Api) -> None:
    before = await _call(apps.read_namespaced_deployment, "payments", "prod")
    body = {"status": {"readyReplicas": 99}, "metadata": {"uid": "forged", "labels": {"team": "pay"}}}
    after = await _call(apps.patch_namespaced_deployment, "payments", "prod", body)
    assert after.status.ready_replicas == before.status.ready_replicas
    assert after.metadata.uid == before.metadata.uid
    assert after.metadata.labels["team"] == "pay"
    assert after.metadata.generation == before.metadata.generation, "only a spec change bumps the generation"


async def test_a_stale_resource_version_is_409_and_invalid_values_are_422(apps: client.AppsV1Api) -> None:
    stale = {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}}
    conflict = await _failure(apps.patch_namespaced_deployment, "payments", "prod", stale)
    negative = await _failure(
        apps.patch_namespaced_deployment, "payments", "prod", {"spec": {"replicas": -1}}
    )
    selector = {"spec": {"selector": {"matchLabels": {"app": "other"}}}}
    immutable = await _failure(apps.patch_namespaced_deployment, "payments", "prod", selector)
    bad_scale = await _failure(
        apps.patch_namespaced_deployment_scale, "payments", "prod", {"spec": {"replicas": -2}}
    )
    assert (conflict[0], conflict[1]["reason"]) == (409, "Conflict")
    assert conflict[1]["message"].startswith('Operation cannot be fulfilled on deployments.apps "payments"')
    assert negative[0] == 422
    assert negative[1]["message"] == (
        'Deployment.apps "payments" is invalid: spec.replicas: Invalid value: -1: '
        "must be greater than or equal to 0"
    )
    assert immutable[0] == 422
    assert "field is immutable" in immutable[1]["message"]
    assert bad_scale[0] == 422
    assert bad_scale[1]["message"].startswith('Scale.autoscaling "payments" is invalid: spec.replicas')


async def test_json_patch_failures_and_unknown_formats(emulator: KubernetesEmulator) -> None:
    path = "/apis/apps/v1/namespaces/prod/deployments/payments"
    failed_test = json.dumps([{"op": "test", "path": "/spec/replicas", "value": 7}])
    malformed = json.dumps([{"op": "explode", "path": "/spec"}])
    as_object = json.dumps({"spec": {"replicas": 3}})
    assert (await _raw_patch(emulator, path, failed_test, "application/json-patch+json")).status == 422
    assert (await _raw_patch(emulator, path, malformed, "application/json-patch+json")).status == 400
    assert (await _raw_patch(emulator, path, as_object, "application/json-patch+json")).status == 400
    assert (await _raw_patch(emulator, path, as_object, "application/json")).status == 415
    assert (await _raw_patch(emulator, path, "{not json", "application/merge-patch+json")).status == 400
    merged = await _raw_patch(emulator, path, as_object, "application/merge-patch+json")
    assert merged.status == 200
    assert emulator.cluster.deployments[0]["spec"]["replicas"] == 3


async def test_methods_the_api_does_not_offer_are_405_and_dry_run_changes_nothing(
    emulator: KubernetesEmulator,
) -> None:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.delete(emulator.api_url + "/apis/apps/v1/namespaces/prod/deployments/payments") as r:
            assert r.status == 405
        async with http.patch(
            emulator.api_url + "/api/v1/namespaces/prod/pods",
            data="{}",
            headers={"Content-Type": "application/merge-patch+json"},
        ) as r:
            assert r.status == 405
        async with http.delete(emulator.api_url + "/api/v1/namespaces/prod/pods/postgres-0?dryRun=All") as r:
            assert r.status == 200
            assert (await r.json())["metadata"]["deletionTimestamp"]
    assert "postgres-0" in {p["metadata"]["name"] for p in emulator.cluster.pods}


async def test_read_only_identity_gets_403_before_404(
    emulator: KubernetesEmulator, api: client.ApiClient
) -> None:
    emulator.read_only = True
    status, body = await _failure(client.CoreV1Api(api).delete_namespaced_pod, "does-not-exist", "prod")
    assert status == 403
    assert body["message"] == (
        'pods "does-not-exist" is forbidden: User "system:serviceaccount:incidentfox:incidentfox" '
        'cannot delete resource "pods" in API group "" in the namespace "prod"'
    )


async def test_discovery_lists_the_write_verbs_and_the_scale_subresource(
    emulator: KubernetesEmulator,
) -> None:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.get(emulator.api_url + "/apis/apps/v1") as r,
    ):
        resources = {res["name"]: res for res in (await r.json())["resources"]}
    assert "patch" in resources["deployments"]["verbs"]
    assert "patch" not in resources["replicasets"]["verbs"]
    assert resources["statefulsets/scale"]["kind"] == "Scale"
    assert resources["statefulsets/scale"]["group"] == "autoscaling"
    assert "daemonsets/scale" not in resources
