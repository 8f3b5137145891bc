"""Integration health: the kubernetes toolset's check against the emulator, caching and plain reasons."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from incidentfox.agents.specialists import all_toolsets
from incidentfox.agents.toolsets.base import Toolset, ToolsetHealth
from incidentfox.agents.toolsets.health import (
    TURNED_OFF,
    UNCHECKED_NO_CHECK,
    UNCHECKED_NO_TOOLSET,
    HealthLine,
    IntegrationHealth,
)
from incidentfox.agents.toolsets.kubernetes import KUBERNETES
from incidentfox.emulators.github import GitHubEmulator
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.pagerduty import PagerDutyEmulator

WRONG_TOKEN = "definitely-not-the-cluster-token-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def k8s() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator("crashloop") as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def no_installation_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)


def _config(k8s: KubernetesEmulator, **kubernetes: Any) -> dict[str, Any]:
    settings = {"api_url": k8s.api_url, "token": k8s.token, "namespace": "prod", **kubernetes}
    return {"integrations": {"kubernetes": settings}}


def _api_calls(k8s: KubernetesEmulator) -> list[str]:
    return [path for _, path in k8s.requests]


async def test_a_healthy_cluster_is_checked_once_a_minute(k8s: KubernetesEmulator) -> None:
    clock = Clock()
    health = IntegrationHealth((KUBERNETES,), clock=clock)
    config = _config(k8s)
    assert await health.check("acme", "checkout", config) == [HealthLine("kubernetes", "ok")]
    assert _api_calls(k8s) == ["/api/v1/namespaces/prod/pods?limit=1"]

    clock.now += 59
    assert await health.check("acme", "checkout", config) == [HealthLine("kubernetes", "ok")]
    assert len(k8s.requests) == 1, "the second check within a minute makes no API call"

    clock.now += 2
    await health.check("acme", "checkout", config)
    assert len(k8s.requests) == 2, "after a minute the cluster is asked again"


async def test_rejected_credentials_show_the_reason_without_the_token(k8s: KubernetesEmulator) -> None:
    health = IntegrationHealth((KUBERNETES,))
    [line] = await health.check("acme", "checkout", _config(k8s, token=WRONG_TOKEN))
    assert line.status == "failing"
    assert "rejected the credentials (401 Unauthorized)" in line.detail
    assert k8s.api_url in line.detail
    assert WRONG_TOKEN not in line.detail


async def test_an_unreachable_cluster_says_so_in_one_sentence(k8s: KubernetesEmulator) -> None:
    k8s.unreachable = True
    [line] = await IntegrationHealth((KUBERNETES,)).check("acme", "checkout", _config(k8s))
    assert line.status == "failing"
    assert line.detail.startswith(f"Kubernetes API at {k8s.api_url} is unreachable")
    assert "Traceback" not in line.detail


async def test_without_a_namespace_the_check_lists_one_namespace(k8s: KubernetesEmulator) -> None:
    [line] = await IntegrationHealth((KUBERNETES,)).check("acme", "checkout", _config(k8s, namespace=None))
    assert line == HealthLine("kubernetes", "ok")
    assert _api_calls(k8s) == ["/api/v1/namespaces?limit=1"]


async def test_changed_settings_are_checked_again_at_once(k8s: KubernetesEmulator) -> None:
    health = IntegrationHealth((KUBERNETES,))
    [bad] = await health.check("acme", "checkout", _config(k8s, token=WRONG_TOKEN))
    [good] = await health.check("acme", "checkout", _config(k8s))
    assert (bad.status, good.status) == ("failing", "ok")
    assert len(k8s.requests) == 2


async def test_integrations_without_a_toolset_are_configured_but_unchecked(k8s: KubernetesEmulator) -> None:
    config = _config(k8s)
    config["integrations"].update(
        github={"token": "ghp_" + "x" * 36},
        pagerduty={"api_key": "pd-key-0123456789"},
        prometheus={"url": "http://prom:9090", "enabled": False},
        notes="not a section",
    )
    lines = await IntegrationHealth((KUBERNETES,)).check("acme", "checkout", config)
    assert lines == [
        HealthLine("github", "unchecked", UNCHECKED_NO_TOOLSET),
        HealthLine("kubernetes", "ok"),
        HealthLine("pagerduty", "unchecked", UNCHECKED_NO_TOOLSET),
        HealthLine("prometheus", "off", TURNED_OFF),
    ]


async def test_a_team_without_kubernetes_gets_no_line_unless_it_started_configuring_it() -> None:
    health = IntegrationHealth((KUBERNETES,))
    assert await health.check("acme", "checkout", {}) == []
    [line] = await health.check("acme", "checkout", {"integrations": {"kubernetes": {"namespace": "prod"}}})
    assert line.status == "failing"
    assert "no kubeconfig or api_url" in line.detail


async def test_concurrent_homes_share_one_check_and_a_hung_check_times_out() -> None:
    started = 0
    release = asyncio.Event()

    async def slow(config: Mapping[str, Any]) -> ToolsetHealth:
        nonlocal started
        started += 1
        await release.wait()
        return ToolsetHealth.ok()

    toolset = Toolset("logs", "", "", (), connect=_never, health_check=slow)
    health = IntegrationHealth((toolset,), timeout_s=0.2)
    config = {"integrations": {"logs": {"url": "http://loki"}}}
    first, second = await asyncio.gather(health.check("acme", "a", config), health.check("acme", "a", config))
    assert started == 1
    assert (
        first
        == second
        == [HealthLine("logs", "failing", "no answer within 0.2 s; is the endpoint reachable?")]
    )


async def test_a_crashing_check_reports_its_kind_and_a_toolset_without_check_is_unchecked() -> None:
    async def crash(config: Mapping[str, Any]) -> ToolsetHealth:
        raise RuntimeError("token=supersecretvalue123 leaked")

    crashing = Toolset("loki", "", "", (), connect=_never, health_check=crash)
    silent = Toolset("grafana", "", "", (), connect=_never)
    config = {"integrations": {"loki": {"url": "http://loki"}, "grafana": {"url": "http://g"}}}
    lines = await IntegrationHealth((crashing, silent)).check("acme", "a", config)
    assert lines == [
        HealthLine("grafana", "unchecked", UNCHECKED_NO_CHECK),
        HealthLine("loki", "failing", "the health check failed unexpectedly (RuntimeError)"),
    ]


async def test_secrets_in_a_reason_are_scrubbed() -> None:
    async def echo(config: Mapping[str, Any]) -> ToolsetHealth:
        return ToolsetHealth.failing(f"login refused for password {config['integrations']['db']['password']}")

    toolset = Toolset("db", "", "", (), connect=_never, health_check=echo)
    config = {"integrations": {"db": {"password": "hunter2-but-longer"}}}
    [line] = await IntegrationHealth((toolset,)).check("acme", "a", config)
    assert "hunter2-but-longer" not in line.detail
    assert line.status == "failing"


async def _never(config: Mapping[str, Any]) -> Any:
    raise AssertionError("a health check must not need the run's connect")


async def test_github_and_pagerduty_are_checked_against_their_apis() -> None:
    async with GitHubEmulator() as gh, PagerDutyEmulator() as pd:
        config = {
            "integrations": {
                "github": {"token": gh.token, "api_url": gh.api_url},
                "pagerduty": pd.integration_config(api_key="u+wrong-key"),
            }
        }
        lines = await IntegrationHealth(all_toolsets()).check("acme", "checkout", config)
    by_name = {line.integration: line for line in lines}
    assert by_name["github"].status == "ok"
    assert by_name["pagerduty"].status == "failing"
    assert "rejected the API key" in by_name["pagerduty"].detail
    assert "u+wrong-key" not in by_name["pagerduty"].detail
