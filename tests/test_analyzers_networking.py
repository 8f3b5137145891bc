"""Networking and admission analyzers against the Kubernetes emulator over real HTTP: LoadBalancer
warnings, Ingress class/backend/TLS references, NetworkPolicies selecting nothing, and admission
webhooks whose Service is missing or has no ready endpoints, linked to the workload they block."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from incidentfox.agents.analyzers import admission, networking
from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.kubernetes import analyze_kubernetes
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, connect
from incidentfox.emulators.kubernetes import KubernetesEmulator


@pytest.fixture
async def edge() -> AsyncIterator[tuple[KubernetesEmulator, KubernetesClient]]:
    async with KubernetesEmulator("edge_gateway") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        yield emulator, client
        client.close()


def _quotes(finding: Finding) -> str:
    return "\n".join(f"{e.quote} @ {e.source}" for e in finding.evidence)


def _by_resource(findings: list[Finding]) -> dict[str, Finding]:
    return {f.resource: f for f in findings}


@pytest.mark.parametrize(
    ("resource", "kind", "quote", "source"),
    [
        (
            "service web/public-gateway",
            "load_balancer_failed",
            "SyncLoadBalancerFailed: Error syncing load balancer: failed to ensure load balancer: could not "
            "find any suitable subnets for creating the ELB (x9)",
            "service web/public-gateway (events)",
        ),
        (
            "ingress web/docs",
            "missing_reference",
            "ingressClassName: nginx-external",
            "ingress web/docs (spec)",
        ),
        (
            "ingress web/legacy-admin",
            "missing_reference",
            "ingressClassName: <none> (no default IngressClass)",
            "ingress web/legacy-admin (spec)",
        ),
        (
            "ingress web/api",
            "missing_reference",
            "api.example.com/v2 -> api-v2:80",
            "ingress web/api (rules)",
        ),
        (
            "ingress web/blog",
            "missing_reference",
            'secrets "blog-tls" not found',
            "secret web/blog-tls (API)",
        ),
        (
            "networkpolicy web/allow-payments",
            "selects_nothing",
            "podSelector: app=payments-v1",
            "networkpolicy web/allow-payments (spec)",
        ),
    ],
)
async def test_each_networking_rule_names_resource_and_quotes_its_source(
    edge: tuple[KubernetesEmulator, KubernetesClient], resource: str, kind: str, quote: str, source: str
) -> None:
    _, client = edge
    finding = _by_resource(await networking.analyze(client, "web"))[resource]
    assert finding.kind == kind
    assert any(quote in e.quote and e.source == source for e in finding.evidence), _quotes(finding)
    assert finding.root_cause and finding.immediate_actions and finding.decisive


async def test_healthy_ingress_services_and_policies_are_not_reported(
    edge: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = edge
    found = await networking.analyze(client, "web")
    assert sorted(f.resource for f in found) == [
        "ingress web/api",
        "ingress web/blog",
        "ingress web/docs",
        "ingress web/legacy-admin",
        "networkpolicy web/allow-payments",
        "service web/public-gateway",
    ]
    assert "pending" in _quotes(_by_resource(found)["service web/public-gateway"])


async def test_webhook_without_ready_endpoints_quotes_the_blocked_replicaset(
    edge: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = edge
    found = {f.key: f for f in await admission.analyze(client, "web")}
    assert set(found) == {"webhook/inject.mesh.example.com", "webhook/validate.policy.example.com"}
    injector = found["webhook/inject.mesh.example.com"]
    assert (injector.kind, injector.severity) == ("webhook_unavailable", "critical")
    assert (
        injector.resource
        == "mutatingwebhookconfiguration mesh-sidecar-injector (webhook inject.mesh.example.com)"
    )
    assert injector.evidence[0].source == "replicaset web/payments-5d8c7b9f4 (events)"
    assert 'failed calling webhook "inject.mesh.example.com"' in injector.evidence[0].quote
    assert "Endpoints mesh-system/mesh-injector: ready addresses: 0; not ready: 1" in _quotes(injector)
    assert injector.related == ("service/mesh-system/mesh-injector",)


async def test_webhook_whose_service_is_missing_with_ignore_policy_is_a_warning(
    edge: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = edge
    found = {f.key: f for f in await admission.analyze(client, None)}
    policy = found["webhook/validate.policy.example.com"]
    assert policy.severity == "warning"
    assert 'services "policy-engine" not found' in _quotes(policy)
    assert "failurePolicy Ignore" in policy.root_cause


async def test_question_about_missing_pods_leads_to_the_webhook(
    edge: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = edge
    findings = await analyze_kubernetes(client, namespace="web", question="why does payments have no pods?")
    top = findings[0]
    assert (top.kind, top.key) == ("webhook_unavailable", "webhook/inject.mesh.example.com")
    payments = next(f for f in findings if f.resource == "deployment web/payments")
    assert "webhook/inject.mesh.example.com" in payments.related


async def test_unreadable_kinds_and_outages_give_no_false_findings() -> None:
    async with KubernetesEmulator("edge_gateway") as emulator:
        emulator.unreadable = frozenset({"ingressclasses", "secrets", "validatingwebhookconfigurations"})
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        found = _by_resource(await networking.analyze(client, "web"))
        assert "ingress web/docs" not in found and "ingress web/blog" not in found
        assert "ingress web/api" in found
        hooks = {f.key for f in await admission.analyze(client, "web")}
        assert hooks == {"webhook/inject.mesh.example.com"}
        emulator.throttled = 1000
        assert await networking.analyze(client, "web") == []
        assert await admission.analyze(client, "web") == []
        client.close()
