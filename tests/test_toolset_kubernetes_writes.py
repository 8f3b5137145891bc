"""The kubernetes write tools change the emulator's cluster through the real client, as kubectl would,
and fail in one plain sentence."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents.tool_context import ToolContext

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent
from incidentfox.agents.toolsets import kubernetes as kt
from incidentfox.agents.toolsets import kubernetes_writes as kw
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.function_tools import toolset_function_tools
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, connect
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.kubernetes_fields import Obj

REASON = "the pods are stuck on a bad config"


@pytest.fixture
async def emulator() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator("bad_rollout") as k8s:
        yield k8s


@pytest.fixture
async def k8s(emulator: KubernetesEmulator) -> AsyncIterator[KubernetesClient]:
    client = await connect(
        {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
    )
    yield client
    client.close()


async def _run(client: KubernetesClient, tool_name: str, /, **args: Any) -> ToolResult:
    tool = next(t for t in kt.KUBERNETES.tools if t.name == tool_name)
    assert tool.writes
    return await tool.run(client, tool.params.model_validate({"reason": REASON, **args}))


def _object(emulator: KubernetesEmulator, kind: str, name: str) -> Obj:
    return next(o for o in getattr(emulator.cluster, kind) if o["metadata"]["name"] == name)


def _writes(emulator: KubernetesEmulator) -> list[tuple[str, str]]:
    return [(method, path) for method, path in emulator.requests if method != "GET"]


def _revisions(emulator: KubernetesEmulator, deployment: str) -> dict[str, tuple[str, int]]:
    """replica set name -> (revision, replicas) of one deployment's replica sets."""
    return {
        rs["metadata"]["name"]: (rs["metadata"]["annotations"][kw.REVISION], rs["spec"]["replicas"])
        for rs in emulator.cluster.replicasets
        if rs["metadata"]["name"].startswith(deployment + "-")
    }


@pytest.mark.parametrize(
    ("kind", "attr", "name"),
    [
        ("deployment", "deployments", "payments"),
        ("statefulset", "statefulsets", "postgres"),
        ("daemonset", "daemonsets", "log-agent"),
    ],
)
async def test_rollout_restart_sets_the_restarted_at_annotation_like_kubectl(
    emulator: KubernetesEmulator, k8s: KubernetesClient, kind: str, attr: str, name: str
) -> None:
    generation = _object(emulator, attr, name)["metadata"]["generation"]
    result = await _run(k8s, "rollout_restart", kind=kind, namespace="prod", name=name)
    assert result.status == "ok", result.error
    assert result.invocation == f"kubectl rollout restart {kind}/{name} -n prod"
    stored = _object(emulator, attr, name)
    annotations = stored["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {kw.RESTARTED_AT: result.data["restarted_at"]}
    assert stored["metadata"]["generation"] == generation + 1
    assert _writes(emulator) == [("PATCH", f"/apis/apps/v1/namespaces/prod/{attr}/{name}")]
    assert result.data["summary"] == f"Restarted {kind} prod/{name}: its pods are being replaced one by one."


async def test_restarting_a_deployment_rolls_out_a_new_revision(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    before = _revisions(emulator, "payments")
    await _run(k8s, "rollout_restart", kind="deployment", namespace="prod", name="payments")
    after = _revisions(emulator, "payments")
    [new] = set(after) - set(before)
    assert after[new] == ("3", 2)
    assert after["payments-6f7d8c9b5"] == ("2", 0)
    assert _object(emulator, "deployments", "payments")["metadata"]["annotations"][kw.REVISION] == "3"


async def test_scale_patches_the_scale_subresource(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    result = await _run(k8s, "scale", kind="deployment", namespace="prod", name="payments", replicas=5)
    assert result.status == "ok", result.error
    assert result.data["summary"] == "Scaled deployment prod/payments from 2 to 5 replicas."
    assert _object(emulator, "deployments", "payments")["spec"]["replicas"] == 5
    assert _revisions(emulator, "payments")["payments-6f7d8c9b5"] == ("2", 5)
    assert _writes(emulator) == [("PATCH", "/apis/apps/v1/namespaces/prod/deployments/payments/scale")]
    stateful = await _run(k8s, "scale", kind="statefulset", namespace="prod", name="postgres", replicas=0)
    assert stateful.data["replicas_before"] == 1
    assert _object(emulator, "statefulsets", "postgres")["spec"]["replicas"] == 0


async def test_scaling_to_the_current_count_changes_nothing(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    result = await _run(k8s, "scale", kind="deployment", namespace="prod", name="payments", replicas=2)
    assert result.data["summary"] == "Deployment prod/payments already runs 2 replicas; nothing changed."
    assert _writes(emulator) == []


async def test_rollback_copies_the_previous_revisions_template_into_the_deployment(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    result = await _run(k8s, "rollback_deployment", namespace="prod", name="payments")
    assert result.status == "ok", result.error
    assert result.invocation == "kubectl rollout undo deployment/payments -n prod"
    assert result.data["summary"] == (
        "Rolled back deployment prod/payments to revision 1 (registry.example.com/shop/payments:3.1.4)."
    )
    deployment = _object(emulator, "deployments", "payments")
    template = deployment["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "registry.example.com/shop/payments:3.1.4"
    assert "pod-template-hash" not in template["metadata"]["labels"]
    revisions = _revisions(emulator, "payments")
    assert revisions["payments-6f7d8c9b5"] == ("2", 0)
    [old] = [name for name, (revision, _) in revisions.items() if revision == "3"]
    assert revisions[old] == ("3", 2), "the old replica set is reused as the newest revision, as kubectl does"
    assert deployment["metadata"]["annotations"][kw.REVISION] == "3"


async def test_rollback_after_a_restart_returns_to_the_template_before_it(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    original = json.loads(json.dumps(_object(emulator, "deployments", "payments")["spec"]["template"]))
    await _run(k8s, "rollout_restart", kind="deployment", namespace="prod", name="payments")
    result = await _run(k8s, "rollback_deployment", namespace="prod", name="payments")
    assert result.data["revision"] == 2
    assert _object(emulator, "deployments", "payments")["spec"]["template"] == original


async def test_rollback_without_history_says_so(k8s: KubernetesClient) -> None:
    async with KubernetesEmulator("crashloop") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        result = await _run(client, "rollback_deployment", namespace="prod", name="checkout")
        client.close()
        assert _writes(emulator) == []
    assert result.status == "error"
    assert result.error == "Deployment prod/checkout has no earlier revision to roll back to."


async def test_rollback_of_a_deployment_changed_meanwhile_is_a_plain_conflict(
    emulator: KubernetesEmulator, k8s: KubernetesClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch = k8s.apps.patch_namespaced_deployment

    def someone_else_writes_first(*args: Any, **kwargs: Any) -> Any:
        _object(emulator, "deployments", "payments")["metadata"]["resourceVersion"] = "9999999"
        return patch(*args, **kwargs)

    monkeypatch.setattr(k8s.apps, "patch_namespaced_deployment", someone_else_writes_first)
    result = await _run(k8s, "rollback_deployment", namespace="prod", name="payments")
    assert result.status == "error"
    assert result.error == (
        "Could not roll back deployment prod/payments: it changed while IncidentFox was working on it "
        "(409 Conflict); look at it again and ask for the action again if it is still needed."
    )
    image = _object(emulator, "deployments", "payments")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":3.2.0"), "nothing was overwritten"


async def test_delete_pod_removes_it_and_names_what_replaces_it(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    result = await _run(k8s, "delete_pod", namespace="prod", name="payments-6f7d8c9b5-q8w2e")
    assert result.status == "ok", result.error
    assert result.data["summary"] == (
        "Deleted pod prod/payments-6f7d8c9b5-q8w2e; "
        "its ReplicaSet payments-6f7d8c9b5 will start a replacement."
    )
    assert "payments-6f7d8c9b5-q8w2e" not in {p["metadata"]["name"] for p in emulator.cluster.pods}
    assert _writes(emulator) == [("DELETE", "/api/v1/namespaces/prod/pods/payments-6f7d8c9b5-q8w2e")]


async def test_missing_objects_are_a_plain_404(emulator: KubernetesEmulator, k8s: KubernetesClient) -> None:
    restart = await _run(k8s, "rollout_restart", kind="deployment", namespace="prod", name="ghost")
    delete = await _run(k8s, "delete_pod", namespace="prod", name="ghost-0")
    assert (
        restart.error == 'Could not restart deployment prod/ghost: deployments.apps "ghost" not found (404).'
    )
    assert delete.error == 'Could not delete pod prod/ghost-0: pods "ghost-0" not found (404).'
    assert _writes(emulator) == [("DELETE", "/api/v1/namespaces/prod/pods/ghost-0")]


async def test_forbidden_writes_name_the_missing_rbac_grant(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    emulator.read_only = True
    result = await _run(k8s, "scale", kind="deployment", namespace="prod", name="payments", replicas=4)
    assert result.status == "error"
    assert result.error == (
        f"Not allowed to scale deployment prod/payments (403 Forbidden from {k8s.api_url}): "
        'deployments.apps "payments" is forbidden: User "system:serviceaccount:incidentfox:incidentfox" '
        'cannot patch resource "deployments/scale" in API group "apps" in the namespace "prod"; grant '
        "IncidentFox's Kubernetes identity patch on deployments/scale via RBAC."
    )
    assert _object(emulator, "deployments", "payments")["spec"]["replicas"] == 2


async def test_a_paused_deployment_is_not_restarted(
    emulator: KubernetesEmulator, k8s: KubernetesClient
) -> None:
    _object(emulator, "deployments", "payments")["spec"]["paused"] = True
    result = await _run(k8s, "rollout_restart", kind="deployment", namespace="prod", name="payments")
    assert result.status == "error"
    assert result.error is not None and "is paused" in result.error
    assert _writes(emulator) == []


def test_write_tools_need_an_explicit_namespace_a_valid_name_and_a_reason() -> None:
    params = kw.RolloutRestartParams
    schema = params.model_json_schema()
    assert {"kind", "namespace", "name", "reason"} <= set(schema["required"])
    assert "minLength" not in json.dumps(schema) and "maxLength" not in json.dumps(schema)
    with pytest.raises(ValueError, match="why this action helps"):
        params.model_validate({"kind": "deployment", "namespace": "prod", "name": "x", "reason": "  "})
    with pytest.raises(ValueError, match="pattern"):
        params.model_validate({"kind": "deployment", "namespace": "prod", "name": "../x", "reason": "r"})
    with pytest.raises(ValueError, match="less than or equal to 1000"):
        kw.ScaleParams.model_validate(
            {"kind": "deployment", "namespace": "prod", "name": "x", "replicas": 5000, "reason": "r"}
        )
    described = kw.ScaleParams.model_validate(
        {"kind": "statefulset", "namespace": "prod", "name": "db", "replicas": 3, "reason": "load"}
    ).describe_action()
    assert (described.action, described.target, described.reason) == (
        "scale",
        "statefulset prod/db to 3 replicas",
        "load",
    )


async def test_without_anyone_to_approve_a_write_tool_never_reaches_the_cluster(
    emulator: KubernetesEmulator,
) -> None:
    events: list[ProgressEvent] = []
    config = {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
    ctx = InvestigationContext(run_id="r", org_id="o", team_node_id="t", config=config, emit=events.append)
    tool = next(
        t for t in toolset_function_tools(kt.KUBERNETES, agent="kubernetes") if t.name == "delete_pod"
    )
    args = json.dumps({"namespace": "prod", "name": "postgres-0", "reason": REASON})
    out = await tool.on_invoke_tool(
        ToolContext(ctx, tool_name=tool.name, tool_call_id="d1", tool_arguments=args), args
    )
    assert json.loads(out)["status"] == "approval_required"
    assert emulator.requests == []
    assert [e.kind for e in events] == ["tool_start", "tool_end"]
