"""Write tools of the kubernetes toolset: restart, scale, roll back, delete a pod.

Each one does what its kubectl command does, through the run's ``KubernetesClient``:

* ``rollout_restart``: ``kubectl rollout restart`` patches the pod template's
  ``kubectl.kubernetes.io/restartedAt`` annotation (a strategic merge patch), so the controller
  replaces every pod.
* ``scale``: ``kubectl scale`` patches the ``scale`` subresource (a merge patch of ``spec.replicas``).
* ``rollback_deployment``: ``kubectl rollout undo`` finds the replica set with the next-lower
  ``deployment.kubernetes.io/revision`` and copies its pod template (without ``pod-template-hash``)
  and annotations into the deployment with a JSON patch. The patch also carries the resource version
  that was read, so a deployment changed in the meantime gives 409 Conflict instead of being clobbered.
* ``delete_pod``: ``kubectl delete pod``; the pod's controller, if any, creates a replacement.

The tools are declared ``writes=True``: the function-tool adapter runs them only after a person
approved the exact action in Slack (``agents/approvals``). Their params therefore require an explicit
namespace (a write never guesses it) and a reason shown to the approver. Failures (404, 403, 409, 422,
an unreachable API) come back as ``ToolResult.failed`` with one plain sentence.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, cast

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, Field

from incidentfox.agents.approvals.models import ActionDescription
from incidentfox.agents.toolsets.base import Tool, ToolFunction, ToolResult
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, api_failure
from incidentfox.agents.toolsets.kubernetes_signal_views import revision_of
from incidentfox.agents.toolsets.kubernetes_signals import owned_replicasets
from incidentfox.agents.toolsets.kubernetes_views import meta
from incidentfox.agents.toolsets.write_params import Reason, WriteParams

P = TypeVar("P", bound=BaseModel)
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH = "pod-template-hash"
ROLLBACK_KEEPS_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
"""Annotations ``kubectl rollout undo`` keeps from the deployment instead of copying from the replica set."""
MAX_REPLICAS = 1000

_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_NAMESPACE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Workload = Literal["deployment", "statefulset", "daemonset"]
Scalable = Literal["deployment", "statefulset"]


def _namespace() -> Any:
    return Field(pattern=_NAMESPACE, description="Namespace of the object (required).")


def _name(what: str) -> Any:
    return Field(pattern=_NAME, description=f"Name of the {what}.")


def _reason() -> Any:
    return Field(description="One sentence for the person who must approve this: why it helps now.")


class RolloutRestartParams(WriteParams):
    kind: Workload = Field(description="deployment, statefulset or daemonset.")
    namespace: str = _namespace()
    name: str = _name("workload")
    reason: Reason = _reason()

    def describe_action(self) -> ActionDescription:
        return ActionDescription("rollout restart", f"{self.kind} {self.namespace}/{self.name}", self.reason)


class ScaleParams(WriteParams):
    kind: Scalable = Field(description="deployment or statefulset.")
    namespace: str = _namespace()
    name: str = _name("workload")
    replicas: int = Field(ge=0, le=MAX_REPLICAS, description="The number of replicas to run.")
    reason: Reason = _reason()

    def describe_action(self) -> ActionDescription:
        target = f"{self.kind} {self.namespace}/{self.name} to {self.replicas} replicas"
        return ActionDescription("scale", target, self.reason)


class RollbackParams(WriteParams):
    namespace: str = _namespace()
    name: str = _name("deployment")
    reason: Reason = _reason()

    def describe_action(self) -> ActionDescription:
        target = f"deployment {self.namespace}/{self.name} to its previous revision"
        return ActionDescription("rollout undo", target, self.reason)


class DeletePodParams(WriteParams):
    namespace: str = _namespace()
    name: str = _name("pod")
    reason: Reason = _reason()

    def describe_action(self) -> ActionDescription:
        return ActionDescription("delete", f"pod {self.namespace}/{self.name}", self.reason)


def _api_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return str(exc.reason or "")
    return str(body.get("message") or exc.reason or "") if isinstance(body, dict) else str(exc.reason or "")


def write_failure(
    exc: BaseException, client: KubernetesClient, doing: str, invocation: str, *, permission: str
) -> ToolResult:
    """One sentence for a failed write. ``permission`` names the RBAC grant that a 403 lacks,
    e.g. ``patch on deployments``; other failures read as the read tools' do."""
    if isinstance(exc, ApiException) and exc.status in (403, 409, 422):
        message = _api_message(exc).rstrip(".")
        if exc.status == 403:
            text = (
                f"Not allowed to {doing} (403 Forbidden from {client.api_url}): {message}; grant "
                f"IncidentFox's Kubernetes identity {permission} via RBAC."
            )
        elif exc.status == 409:
            text = (
                f"Could not {doing}: it changed while IncidentFox was working on it (409 Conflict); "
                "look at it again and ask for the action again if it is still needed."
            )
        else:
            text = f"Kubernetes refused to {doing}: {message} (422)."
        return ToolResult.failed(text, invocation=invocation)
    return api_failure(exc, client, doing, invocation)


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _workload_api(client: KubernetesClient, kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    apps = client.apps
    return {
        "deployment": (apps.read_namespaced_deployment, apps.patch_namespaced_deployment),
        "statefulset": (apps.read_namespaced_stateful_set, apps.patch_namespaced_stateful_set),
        "daemonset": (apps.read_namespaced_daemon_set, apps.patch_namespaced_daemon_set),
    }[kind]


def _scale_api(client: KubernetesClient, kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    apps = client.apps
    if kind == "deployment":
        return apps.read_namespaced_deployment_scale, apps.patch_namespaced_deployment_scale
    return apps.read_namespaced_stateful_set_scale, apps.patch_namespaced_stateful_set_scale


def _plural(kind: str) -> str:
    return {"deployment": "deployments", "statefulset": "statefulsets", "daemonset": "daemonsets"}[kind]


async def rollout_restart(client: KubernetesClient, params: RolloutRestartParams) -> ToolResult:
    where = f"{params.kind} {params.namespace}/{params.name}"
    invocation = f"kubectl rollout restart {params.kind}/{params.name} -n {params.namespace}"
    read, patch = _workload_api(client, params.kind)
    at = _now_rfc3339()
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
    try:
        current = await client.call(read, params.name, params.namespace)
        if getattr(current.spec, "paused", False):
            return ToolResult.failed(
                f"Deployment {params.namespace}/{params.name} is paused, so a restart would not roll out; "
                "resume it first (kubectl rollout resume).",
                invocation=invocation,
            )
        await client.call(patch, params.name, params.namespace, body)
    except Exception as exc:
        permission = f"patch on {_plural(params.kind)}"
        return write_failure(exc, client, f"restart {where}", invocation, permission=permission)
    data = {
        "summary": f"Restarted {where}: its pods are being replaced one by one.",
        "kind": params.kind,
        "namespace": params.namespace,
        "name": params.name,
        "restarted_at": at,
    }
    return ToolResult.ok(data, invocation=invocation)


async def scale(client: KubernetesClient, params: ScaleParams) -> ToolResult:
    where = f"{params.kind} {params.namespace}/{params.name}"
    invocation = (
        f"kubectl scale {params.kind}/{params.name} -n {params.namespace} --replicas={params.replicas}"
    )
    read, patch = _scale_api(client, params.kind)
    try:
        before = (await client.call(read, params.name, params.namespace)).spec.replicas or 0
        if before != params.replicas:
            body = {"spec": {"replicas": params.replicas}}
            await client.call(
                patch, params.name, params.namespace, body, _content_type="application/merge-patch+json"
            )
    except Exception as exc:
        permission = f"patch on {_plural(params.kind)}/scale"
        return write_failure(exc, client, f"scale {where}", invocation, permission=permission)
    summary = (
        f"{where.capitalize()} already runs {before} replicas; nothing changed."
        if before == params.replicas
        else f"Scaled {where} from {before} to {params.replicas} replicas."
    )
    data = {"summary": summary, "kind": params.kind, "namespace": params.namespace, "name": params.name}
    return ToolResult.ok(
        {**data, "replicas_before": before, "replicas": params.replicas}, invocation=invocation
    )


async def _previous_replicaset(client: KubernetesClient, deployment: Any) -> tuple[int, Any] | str:
    """(revision, replica set) to roll back to, or a plain-words reason there is none."""
    dep = meta(deployment)
    owned = await owned_replicasets(client, deployment)
    current = revision_of(deployment) or max(owned, default=0)
    earlier = [revision for revision in owned if revision < current]
    if not earlier:
        return f"Deployment {dep.namespace}/{dep.name} has no earlier revision to roll back to."
    return max(earlier), owned[max(earlier)]


def _rollback_patch(deployment: Any, replicaset: Any, template: dict[str, Any]) -> list[dict[str, Any]]:
    """kubectl's JSON patch (template and annotations from the replica set), plus the resource version
    that was read, so that a deployment changed in the meantime is a 409 instead of being overwritten."""
    annotations = {
        k: v for k, v in (meta(deployment).annotations or {}).items() if k in ROLLBACK_KEEPS_ANNOTATIONS
    }
    annotations.update(
        {k: v for k, v in (meta(replicaset).annotations or {}).items() if k not in ROLLBACK_KEEPS_ANNOTATIONS}
    )
    return [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": meta(deployment).resource_version},
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "add", "path": "/metadata/annotations", "value": annotations},
    ]


async def rollback_deployment(client: KubernetesClient, params: RollbackParams) -> ToolResult:
    where = f"deployment {params.namespace}/{params.name}"
    invocation = f"kubectl rollout undo deployment/{params.name} -n {params.namespace}"
    serialize = client.api.sanitize_for_serialization
    try:
        deployment = await client.call(client.apps.read_namespaced_deployment, params.name, params.namespace)
        if deployment.spec.paused:
            return ToolResult.failed(
                f"Deployment {params.namespace}/{params.name} is paused; resume it first "
                "(kubectl rollout resume), then roll back.",
                invocation=invocation,
            )
        found = await _previous_replicaset(client, deployment)
        if isinstance(found, str):
            return ToolResult.failed(found, invocation=invocation)
        revision, replicaset = found
        template = serialize(replicaset.spec.template)
        template.get("metadata", {}).get("labels", {}).pop(TEMPLATE_HASH, None)
        if template == serialize(deployment.spec.template):
            summary = f"Skipped: {where} already runs the template of revision {revision}."
            return ToolResult.ok({"summary": summary, "revision": revision}, invocation=invocation)
        patch = _rollback_patch(deployment, replicaset, template)
        await client.call(client.apps.patch_namespaced_deployment, params.name, params.namespace, patch)
    except Exception as exc:
        permission = "list on replicasets and patch on deployments"
        return write_failure(exc, client, f"roll back {where}", invocation, permission=permission)
    images = [str(c.get("image")) for c in template.get("spec", {}).get("containers", [])]
    data = {
        "summary": f"Rolled back {where} to revision {revision} ({', '.join(images)}).",
        "namespace": params.namespace,
        "name": params.name,
        "revision": revision,
        "images": images,
    }
    return ToolResult.ok(data, invocation=invocation)


async def delete_pod(client: KubernetesClient, params: DeletePodParams) -> ToolResult:
    where = f"pod {params.namespace}/{params.name}"
    invocation = f"kubectl delete pod {params.name} -n {params.namespace}"
    try:
        pod = await client.call(client.core.delete_namespaced_pod, params.name, params.namespace)
    except Exception as exc:
        return write_failure(exc, client, f"delete {where}", invocation, permission="delete on pods")
    owner = next((r for r in meta(pod).owner_references or [] if r.controller), None)
    follow = (
        f"its {owner.kind} {owner.name} will start a replacement"
        if owner is not None
        else "nothing will recreate it (it has no controller)"
    )
    data = {"summary": f"Deleted {where}; {follow}.", "namespace": params.namespace, "name": params.name}
    return ToolResult.ok(data, invocation=invocation)


def _write_tool(
    name: str, description: str, params: type[P], run: Callable[[KubernetesClient, P], Awaitable[ToolResult]]
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run), writes=True)


WRITE_INSTRUCTIONS = """Write actions change production and run only after a person approves them in Slack:
rollout_restart, scale, rollback_deployment and delete_pod. Use one only when the evidence shows it will
stop or reduce the impact, name the namespace explicitly, and give the reason in one sentence. The tool
waits for the decision and tells you whether it ran, was refused or was not approved in time; never
retry a refused action, and report what happened."""

WRITE_TOOLS: tuple[Tool, ...] = (
    _write_tool(
        "rollout_restart",
        "Restart every pod of a deployment, stateful set or daemon set (kubectl rollout restart). "
        "Needs approval in Slack.",
        RolloutRestartParams,
        rollout_restart,
    ),
    _write_tool(
        "scale",
        "Set the replica count of a deployment or stateful set (kubectl scale). Needs approval in Slack.",
        ScaleParams,
        scale,
    ),
    _write_tool(
        "rollback_deployment",
        "Roll a deployment back to its previous revision (kubectl rollout undo). Needs approval in Slack.",
        RollbackParams,
        rollback_deployment,
    ),
    _write_tool(
        "delete_pod",
        "Delete one pod so its controller replaces it (kubectl delete pod). Needs approval in Slack.",
        DeletePodParams,
        delete_pod,
    ),
)
