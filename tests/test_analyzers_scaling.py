"""Scaling and availability analyzers against the Kubernetes emulator over real HTTP: HPAs with a
missing or unscalable target, unavailable metrics, pinned at max or scaling on absent requests, and
PodDisruptionBudgets that select nothing or block every eviction."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from incidentfox.agents.analyzers import scaling
from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, connect
from incidentfox.emulators.kubernetes import KubernetesEmulator


@pytest.fixture
async def media() -> AsyncIterator[tuple[KubernetesEmulator, KubernetesClient]]:
    async with KubernetesEmulator("capacity_review") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        yield emulator, client
        client.close()


def _quotes(finding: Finding) -> str:
    return "\n".join(f"{e.quote} @ {e.source}" for e in finding.evidence)


@pytest.mark.parametrize(
    ("resource", "kind", "quote", "source"),
    [
        (
            "hpa media/transcoder",
            "scaling_limited",
            "Replicas: 3 current / 3 max (desired 3); cpu: 185% (target 60%)",
            "hpa media/transcoder (status)",
        ),
        (
            "hpa media/thumbnailer",
            "missing_reference",
            'FailedGetScale: deployments/scale.apps "thumbnailer-v1" not found (x40)',
            "hpa media/thumbnailer (events)",
        ),
        (
            "hpa media/log-forwarder",
            "missing_reference",
            "scaleTargetRef: DaemonSet/log-forwarder",
            "hpa media/log-forwarder (spec)",
        ),
        (
            "hpa media/metadata-api",
            "scaling_limited",
            "FailedGetResourceMetric: failed to get cpu utilization: unable to get metrics for resource cpu",
            "hpa media/metadata-api (events)",
        ),
        (
            "hpa media/captioner",
            "scaling_limited",
            "container captioner: resources.requests has no cpu",
            "deployment media/captioner (pod template)",
        ),
        (
            "poddisruptionbudget media/catalog-db",
            "disruption_blocked",
            "Allowed disruptions: 0; current healthy 1, desired healthy 1, expected pods 1",
            "pdb media/catalog-db (status)",
        ),
        (
            "poddisruptionbudget media/encoder",
            "selects_nothing",
            "Selector: app=encoder-legacy; minAvailable: 1",
            "pdb media/encoder (spec)",
        ),
    ],
)
async def test_each_scaling_rule_names_resource_and_quotes_its_source(
    media: tuple[KubernetesEmulator, KubernetesClient], resource: str, kind: str, quote: str, source: str
) -> None:
    _, client = media
    found = [f for f in await scaling.analyze(client, "media") if f.resource == resource]
    assert [f.kind for f in found] == [kind]
    assert any(quote in e.quote and e.source == source for e in found[0].evidence), _quotes(found[0])
    assert found[0].root_cause and found[0].immediate_actions


async def test_healthy_autoscalers_and_budgets_are_not_reported(
    media: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = media
    names = {f.resource for f in await scaling.analyze(client, "media")}
    assert "hpa media/web" not in names and "poddisruptionbudget media/transcoder" not in names
    assert len(names) == 7


async def test_hpa_findings_point_at_their_workload(
    media: tuple[KubernetesEmulator, KubernetesClient],
) -> None:
    _, client = media
    found = {f.resource: f for f in await scaling.analyze(client, "media")}
    pinned = found["hpa media/transcoder"]
    assert pinned.workload == "transcoder"
    assert "deployment/media/transcoder" in pinned.related
    assert "maxReplicas" in pinned.immediate_actions[0]
    assert found["hpa media/thumbnailer"].workload == "thumbnailer-v1"


async def test_analysis_in_all_namespaces_and_failures() -> None:
    async with KubernetesEmulator("capacity_review") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        assert len(await scaling.analyze(client, None)) == 7
        emulator.unreadable = frozenset({"poddisruptionbudgets"})
        assert {f.kind for f in await scaling.analyze(client, "media")} == {
            "scaling_limited",
            "missing_reference",
        }
        emulator.unreadable = frozenset({"deployments"})
        names = {f.resource for f in await scaling.analyze(client, "media")}
        assert "hpa media/thumbnailer" not in names and "hpa media/log-forwarder" in names
        emulator.unreadable = frozenset()
        emulator.throttled = 1000
        assert await scaling.analyze(client, "media") == []
        client.close()
