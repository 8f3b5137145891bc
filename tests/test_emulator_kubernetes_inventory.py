"""The Kubernetes emulator's batch/v1 jobs and cron jobs, networking.k8s.io/v1 ingresses and core/v1
config maps with managedFields, read by the real client, and its 429 throttling answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import requests
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from incidentfox.emulators.kubernetes import KubernetesEmulator

SCENARIO: dict[str, Any] = {
    "namespace": "shop",
    "jobs": [
        {"name": "migrate-1", "status": "failed", "owner": "migrate", "age": "1h", "failed": 3},
        {"name": "migrate-2", "status": "running", "owner": "migrate", "age": "5m"},
    ],
    "cronjobs": [{"name": "migrate", "schedule": "*/30 * * * *", "last_schedule_age": "5m"}],
    "ingresses": [
        {
            "name": "shop",
            "class": "nginx",
            "rules": [{"host": "shop.example.com", "paths": [{"service": "web"}]}],
        }
    ],
    "configmaps": [
        {
            "name": "web",
            "data": {"A": "1", "B": "2"},
            "changes": [{"manager": "argocd", "age": "5m", "keys": ["A"]}],
        }
    ],
}


@pytest.fixture
async def emulator() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator(SCENARIO) as served:
        yield served


@pytest.fixture
def api(emulator: KubernetesEmulator) -> k8s.ApiClient:
    config = k8s.Configuration(host=emulator.api_url)
    config.api_key = {"authorization": emulator.token}
    config.api_key_prefix = {"authorization": "Bearer"}
    return k8s.ApiClient(config)


async def _read(method: Any, *args: Any) -> Any:
    """A blocking client call on a worker thread (the emulator answers on this loop), loosely typed:
    the client types every field optional, and these tests assert what is there."""
    return await asyncio.to_thread(method, *args)


async def test_jobs_and_cronjobs_are_served_as_batch_v1(api: k8s.ApiClient) -> None:
    batch = k8s.BatchV1Api(api)
    jobs = await _read(batch.list_namespaced_job, "shop")
    by_name = {j.metadata.name: j for j in jobs.items}
    failed = by_name["migrate-1"]
    assert [c.type for c in failed.status.conditions] == ["FailureTarget", "Failed"]
    assert failed.status.conditions[-1].reason == "BackoffLimitExceeded" and failed.status.failed == 3
    assert failed.metadata.owner_references[0].kind == "CronJob"
    assert by_name["migrate-2"].status.active == 1
    cron = await _read(batch.read_namespaced_cron_job, "migrate", "shop")
    assert cron.spec.schedule == "*/30 * * * *"
    assert [ref.name for ref in cron.status.active] == ["migrate-2"]
    assert cron.status.last_schedule_time is not None and cron.status.last_successful_time is None


async def test_ingresses_and_config_maps_with_managed_fields(api: k8s.ApiClient) -> None:
    ingress = await _read(k8s.NetworkingV1Api(api).read_namespaced_ingress, "shop", "shop")
    [rule] = ingress.spec.rules
    path = rule.http.paths[0]
    assert (rule.host, path.path, path.path_type, path.backend.service.name) == (
        "shop.example.com",
        "/",
        "Prefix",
        "web",
    )
    cm = await _read(k8s.CoreV1Api(api).read_namespaced_config_map, "web", "shop")
    assert cm.data == {"A": "1", "B": "2"}
    owners = [(m.manager, sorted(m.fields_v1["f:data"])) for m in cm.metadata.managed_fields]
    assert owners == [("helm", [".", "f:B"]), ("argocd", ["f:A"])], "the later writer took key A over"
    created, changed = (m.time for m in cm.metadata.managed_fields)
    assert created is not None and changed is not None and changed > created


async def test_missing_objects_are_404_status(api: k8s.ApiClient) -> None:
    with pytest.raises(ApiException) as missing:
        await _read(k8s.NetworkingV1Api(api).read_namespaced_ingress, "nope", "shop")
    assert missing.value.status == 404
    assert json.loads(str(missing.value.body))["message"] == 'ingresses.networking.k8s.io "nope" not found'


async def test_throttling_answers_429_with_retry_after(emulator: KubernetesEmulator) -> None:
    emulator.throttled = 1
    emulator.throttle_retry_after_s = 7
    headers = {"Authorization": f"Bearer {emulator.token}"}
    url = f"{emulator.api_url}/apis/batch/v1/namespaces/shop/jobs"
    throttled = await asyncio.to_thread(requests.get, url, headers=headers, timeout=5)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
    assert throttled.json()["reason"] == "TooManyRequests"
    assert throttled.json()["details"] == {"retryAfterSeconds": 7}
    again = await asyncio.to_thread(requests.get, url, headers=headers, timeout=5)
    assert again.status_code == 200 and again.json()["kind"] == "JobList"
