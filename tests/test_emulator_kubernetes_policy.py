"""The emulator's policy, storage and admission kinds, read with the real typed ``kubernetes`` client:
PodDisruptionBudgets with the disruption controller's status, NetworkPolicies, IngressClasses,
StorageClasses, ResourceQuotas, Secrets (and metadata-only reads), webhook configurations, and the
workload fields the analyzers need (headless services, claim templates, suspended jobs, deadlines)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, connect
from incidentfox.emulators.kubernetes import KubernetesEmulator


async def _read(client: KubernetesClient, method: Callable[..., Any], *args: str, **kwargs: Any) -> Any:
    """One typed read through the toolset's client (typed ``Any`` so fields read without guards)."""
    return await client.call(method, *args, **kwargs)


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[KubernetesEmulator, KubernetesClient]]:
    async with KubernetesEmulator("platform_steady") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        yield emulator, client
        client.close()


async def test_pdb_status_is_computed_from_the_pods_it_selects(
    cluster: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = cluster
    policy = k8s.PolicyV1Api(client.api)
    pdb = await _read(client, policy.read_namespaced_pod_disruption_budget, "storefront", "shop")
    assert pdb.spec.max_unavailable == 1
    assert (pdb.status.expected_pods, pdb.status.current_healthy, pdb.status.desired_healthy) == (3, 3, 2)
    assert pdb.status.disruptions_allowed == 1
    assert pdb.status.conditions[0].reason == "SufficientPods"
    listed = await _read(client, policy.list_pod_disruption_budget_for_all_namespaces)
    assert [p.metadata.name for p in listed.items] == ["storefront"]


async def test_cluster_scoped_classes_and_webhooks_are_served(
    cluster: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = cluster
    storage = await _read(client, k8s.StorageV1Api(client.api).list_storage_class)
    assert [(c.metadata.name, c.provisioner) for c in storage.items] == [("gp3", "ebs.csi.aws.com")]
    assert storage.items[0].metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    classes = await _read(client, k8s.NetworkingV1Api(client.api).list_ingress_class)
    assert classes.items[0].spec.controller == "k8s.io/ingress-nginx"
    admission = k8s.AdmissionregistrationV1Api(client.api)
    hooks = await _read(client, admission.list_validating_webhook_configuration)
    hook = hooks.items[0].webhooks[0]
    assert (hook.client_config.service.namespace, hook.client_config.service.name) == ("guard", "guard")
    assert hook.failure_policy == "Fail" and hook.side_effects == "None"
    mutating = await _read(client, admission.list_mutating_webhook_configuration)
    assert mutating.items == []


async def test_namespaced_policy_objects_and_workload_fields(
    cluster: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = cluster
    core, apps, batch = client.core, client.apps, k8s.BatchV1Api(client.api)
    quota = await _read(client, core.read_namespaced_resource_quota, "compute", "shop")
    assert quota.status.used["pods"] == "6" and quota.status.hard["pods"] == "40"
    policies = await _read(client, k8s.NetworkingV1Api(client.api).list_namespaced_network_policy, "shop")
    assert {p.metadata.name: p.spec.pod_selector.match_labels for p in policies.items} == {
        "default-deny": {},
        "storefront-from-ingress": {"app": "storefront"},
    }
    headless = await _read(client, core.read_namespaced_service, "inventory-db-headless", "shop")
    assert headless.spec.cluster_ip == "None"
    balancer = await _read(client, core.read_namespaced_service, "storefront-public", "shop")
    assert balancer.status.load_balancer.ingress[0].ip == "203.0.113.24"
    sts = await _read(client, apps.read_namespaced_stateful_set, "inventory-db", "shop")
    assert sts.spec.volume_claim_templates[0].spec.storage_class_name == "gp3"
    ds = await _read(client, apps.read_namespaced_daemon_set, "log-shipper", "shop")
    assert ds.spec.template.spec.image_pull_secrets[0].name == "registry-pull"
    cron = await _read(client, batch.read_namespaced_cron_job, "sitemap", "shop")
    assert cron.spec.starting_deadline_seconds == 120


async def test_secret_metadata_only_read_carries_no_data(
    cluster: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = cluster
    accept = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    raw = await _read(
        client,
        client.core.read_namespaced_secret,
        "storefront-tls",
        "shop",
        _preload_content=False,
        _headers={"Accept": accept},
    )
    body = json.loads(raw.data)
    assert body["kind"] == "PartialObjectMetadata" and body["metadata"]["name"] == "storefront-tls"
    assert "data" not in body
    full = await _read(client, client.core.read_namespaced_secret, "storefront-tls", "shop")
    assert full.type == "kubernetes.io/tls" and set(full.data) == {"tls.crt", "tls.key"}


async def test_missing_forbidden_and_unauthorized_answers(
    cluster: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    emulator, client = cluster
    policy = k8s.PolicyV1Api(client.api)
    with pytest.raises(ApiException) as missing:
        await _read(client, policy.read_namespaced_pod_disruption_budget, "nope", "shop")
    assert missing.value.status == 404
    assert json.loads(str(missing.value.body))["message"] == 'poddisruptionbudgets.policy "nope" not found'
    emulator.unreadable = frozenset({"storageclasses"})
    with pytest.raises(ApiException) as forbidden:
        await _read(client, k8s.StorageV1Api(client.api).list_storage_class)
    assert forbidden.value.status == 403
    message = json.loads(str(forbidden.value.body))["message"]
    assert 'cannot list resource "storageclasses" in API group "storage.k8s.io"' in message
    emulator.token = "rotated"
    with pytest.raises(ApiException) as unauthorized:
        await _read(client, policy.list_pod_disruption_budget_for_all_namespaces)
    assert unauthorized.value.status == 401


async def test_discovery_lists_the_new_groups(cluster: tuple[KubernetesEmulator, KubernetesClient]) -> None:
    _, client = cluster
    resources = await _read(client, k8s.PolicyV1Api(client.api).get_api_resources)
    assert [(r.name, r.kind, r.namespaced) for r in resources.resources] == [
        ("poddisruptionbudgets", "PodDisruptionBudget", True)
    ]
    admission = await _read(client, k8s.AdmissionregistrationV1Api(client.api).get_api_resources)
    assert {r.name for r in admission.resources} == {
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
    }
