"""The kubernetes signal tools (rollout history, HPAs, resource usage, cluster events) through the real
kubernetes client against the emulator's ``hpa_pinned`` scenario."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents.tool_context import ToolContext

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent
from incidentfox.agents.toolsets import kubernetes as kt
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.function_tools import toolset_function_tools
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, connect
from incidentfox.emulators.kubernetes import KubernetesEmulator
from tests.toolset_calls import run_tool


@pytest.fixture
async def emulator() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator("hpa_pinned") as k8s:
        yield k8s


def _config(emulator: KubernetesEmulator, namespace: str | None = "prod") -> dict[str, Any]:
    settings = {"api_url": emulator.api_url, "token": emulator.token, "namespace": namespace}
    return {"integrations": {"kubernetes": settings}}


@pytest.fixture
async def k8s(emulator: KubernetesEmulator) -> AsyncIterator[KubernetesClient]:
    client = await connect(_config(emulator))
    yield client
    client.close()


async def _run(client: KubernetesClient, tool_name: str, /, **args: Any) -> ToolResult:
    return await run_tool(kt.KUBERNETES, client, tool_name, **args)


async def test_rollout_history_lists_revisions_newest_first_with_the_current_one_marked(
    k8s: KubernetesClient,
) -> None:
    result = await _run(k8s, "rollout_history", deployment="checkout")
    assert result.status == "ok"
    assert result.invocation == "kubectl rollout history -n prod deployment/checkout"
    assert result.data["current_revision"] == 3
    revisions = result.data["revisions"]
    assert [(r["revision"], r["current"], r["replicas"]) for r in revisions] == [
        (3, True, 4),
        (2, False, 0),
        (1, False, 0),
    ]
    assert revisions[0]["images"] == ["registry.example.com/shop/checkout:2.14.0"]
    assert revisions[0]["change_cause"] == "deploy checkout 2.14.0 (PR #812)"
    assert revisions[0]["age"] == "30m"
    assert revisions[2]["images"] == ["registry.example.com/shop/checkout:2.12.0"]
    assert revisions[1]["change_cause"] is None


async def test_rollout_history_of_a_missing_deployment_is_a_plain_404(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "rollout_history", deployment="ghost")
    assert result.status == "error"
    assert result.error == (
        'Could not read the history of deployment prod/ghost: deployments.apps "ghost" not found (404).'
    )


async def test_hpa_pinned_at_max_shows_metrics_against_targets_and_scaling_limited(
    k8s: KubernetesClient,
) -> None:
    result = await _run(k8s, "hpa_status")
    assert result.status == "ok"
    by_name = {h["name"]: h for h in result.data}
    checkout = by_name["checkout"]
    assert (checkout["target"], checkout["min"], checkout["max"], checkout["current"]) == (
        "Deployment/checkout",
        2,
        4,
        4,
    )
    assert checkout["at_max"] is True and checkout["scaling_limited"] is True
    assert checkout["metrics"] == [{"metric": "cpu", "current": "160%", "target": "70%"}]
    reasons = {c["type"]: c["reason"] for c in checkout["conditions"]}
    assert reasons == {
        "AbleToScale": "ReadyForNewScale",
        "ScalingActive": "ValidMetricFound",
        "ScalingLimited": "TooManyReplicas",
    }
    assert by_name["cart"]["at_max"] is False
    one = await _run(k8s, "hpa_status", name="cart")
    assert [h["name"] for h in one.data] == ["cart"]


async def test_hpa_status_no_data_and_missing_hpa(k8s: KubernetesClient) -> None:
    none = await _run(k8s, "hpa_status", namespace="staging")
    missing = await _run(k8s, "hpa_status", name="ghost")
    assert (none.status, none.data) == ("no_data", "No HorizontalPodAutoscalers in namespace staging")
    assert missing.status == "error"
    assert missing.invocation == "kubectl describe hpa -n prod ghost"
    assert missing.error == (
        "Could not read HorizontalPodAutoscaler prod/ghost: "
        'horizontalpodautoscalers.autoscaling "ghost" not found (404).'
    )


async def test_resource_usage_compares_usage_with_requests_and_limits(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "resource_usage", namespace="prod", pod_selector="app=checkout")
    assert result.status == "ok"
    assert result.invocation == "kubectl top pods -n prod --containers -l app=checkout"
    first = result.data[0]
    assert first["pod"] == "checkout-8c6d5f7b9-a1b2c"
    assert first["highest_of_limit_pct"] == 94
    assert first["containers"][0]["memory"] == {
        "usage": "481Mi",
        "request": "256Mi",
        "limit": "512Mi",
        "of_request_pct": 188,
        "of_limit_pct": 94,
    }
    assert first["containers"][0]["cpu"]["of_request_pct"] == 165
    assert len(result.data) == 2


async def test_resource_usage_without_metrics_server_says_so(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    emulator.metrics_server = False
    result = await _run(k8s, "resource_usage", namespace="prod")
    assert result.status == "no_data"
    assert "metrics-server is not installed" in result.data
    emulator.metrics_server = True
    empty = await _run(k8s, "resource_usage", namespace="staging")
    assert (empty.status, empty.data) == ("no_data", "metrics-server reports no pods in namespace staging")


async def test_resource_usage_forbidden_is_plain_words(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    emulator.namespace_scoped = frozenset({"prod"})
    result = await _run(k8s, "resource_usage", namespace="payments")
    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("Not allowed to read pod metrics in namespace payments (403 Forbidden")


async def test_cluster_events_groups_warnings_of_every_namespace_newest_first(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "cluster_events")
    assert result.status == "ok"
    assert result.data["scope"] == "all namespaces"
    assert [(g["reason"], g["kind"], g["count"], g["events"]) for g in result.data["groups"]] == [
        ("Unhealthy", "Pod", 21, 2),
        ("BackOff", "Pod", 3, 1),
    ]
    assert result.data["groups"][1]["namespaces"] == ["kube-system"]
    assert [e["object"] for e in result.data["events"]] == [
        "Pod/checkout-8c6d5f7b9-a1b2c",
        "Pod/checkout-8c6d5f7b9-d3e4f",
        "Pod/coredns-5d78c9869d-q7x2m",
    ]
    recent = await _run(k8s, "cluster_events", since="90s", types=["Warning", "Normal"])
    assert [e["reason"] for e in recent.data["events"]] == ["Unhealthy"]
    quiet = await _run(k8s, "cluster_events", since="10s")
    assert (quiet.status, quiet.data) == ("no_data", "No Warning events in all namespaces in the last 10s")


async def test_cluster_events_falls_back_to_the_configured_namespace_on_403(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    emulator.namespace_scoped = frozenset({"prod"})
    result = await _run(k8s, "cluster_events", types=["Normal"])
    assert result.status == "ok"
    assert result.data["scope"] == "namespace prod"
    assert "Not allowed to list events in all namespaces" in result.data["note"]
    assert {(g["reason"], g["kind"]) for g in result.data["groups"]} == {
        ("SuccessfulRescale", "HorizontalPodAutoscaler"),
        ("ScalingReplicaSet", "Deployment"),
    }
    unscoped = await connect(_config(emulator, namespace=None))
    refused = await _run(unscoped, "cluster_events")
    unscoped.close()
    assert refused.status == "error"
    assert refused.error is not None
    assert refused.error.startswith("Not allowed to list events in all namespaces (403 Forbidden")


async def test_signal_tool_through_the_function_tool_adapter(emulator: KubernetesEmulator) -> None:
    events: list[ProgressEvent] = []
    ctx = InvestigationContext(
        run_id="run-1", org_id="acme", team_node_id="sre", config=_config(emulator), emit=events.append
    )
    tool = next(
        t for t in toolset_function_tools(kt.KUBERNETES, agent="kubernetes") if t.name == "hpa_status"
    )
    assert tool.strict_json_schema is True
    args = json.dumps({"namespace": "prod", "name": "checkout"})
    out = await tool.on_invoke_tool(
        ToolContext(ctx, tool_name="hpa_status", tool_call_id="h1", tool_arguments=args), args
    )
    body = json.loads(out)
    assert body["status"] == "ok"
    assert body["data"][0]["scaling_limited"] is True
    assert [e.kind for e in events] == ["tool_start", "tool_end"]
