"""Signal tools of the kubernetes toolset: rollout history, autoscalers, resource usage, cluster events.

* ``rollout_history``: ``kubectl rollout history``, the deployment's replica sets by
  ``deployment.kubernetes.io/revision`` with their images, change-cause and replicas; the current one
  marked. ``owned_replicasets`` is the listing ``rollback_deployment`` also uses.
* ``hpa_status``: autoscaling/v2 HorizontalPodAutoscalers with metrics against targets and conditions;
  an HPA pinned at its max is a classic incident clue.
* ``resource_usage``: metrics-server's ``metrics.k8s.io/v1beta1`` PodMetrics beside requests and limits.
* ``cluster_events``: recent events of every namespace grouped by (reason, object kind); an identity
  bound to one namespace (403) falls back to the configured namespace and says so.

Each returns a ``ToolResult`` like the tools of ``kubernetes``; failures are one plain sentence.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field

from incidentfox.agents.toolsets import kubernetes_signal_views as views
from incidentfox.agents.toolsets.base import Tool, ToolFunction, ToolResult
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, api_failure
from incidentfox.agents.toolsets.kubernetes_views import event_row, meta

P = TypeVar("P", bound=BaseModel)
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
EventType = Literal["Warning", "Normal"]
_WARNINGS_ONLY: list[EventType] = ["Warning"]
METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RolloutHistoryParams(_Params):
    deployment: str = Field(description="Deployment name.")
    namespace: str | None = Field(default=None, description="Namespace; null for the configured default.")


class HpaParams(_Params):
    namespace: str | None = Field(
        default=None, description="Namespace; null for the configured default, or all."
    )
    name: str | None = Field(default=None, description="Only this HorizontalPodAutoscaler.")


class ResourceUsageParams(_Params):
    namespace: str = Field(description="Namespace of the pods.")
    pod_selector: str | None = Field(default=None, description="Label selector, e.g. app=checkout.")


class ClusterEventsParams(_Params):
    since: str | None = Field(
        default=None, pattern=_DURATION.pattern, description="Only events of the last 30m, 2h, 1d..."
    )
    types: list[EventType] = Field(
        default_factory=lambda: _WARNINGS_ONLY.copy(), min_length=1, description="Event types to include."
    )
    limit: int = Field(default=100, ge=1, le=500, description="At most this many events, newest first.")


def _namespace(client: KubernetesClient, namespace: str | None) -> str:
    return namespace or client.default_namespace or "default"


def _selector(match_labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((match_labels or {}).items()))


async def owned_replicasets(client: KubernetesClient, deployment: Any) -> dict[int, Any]:
    """The deployment's replica sets by revision: selected by its labels, controlled by its uid."""
    dep = meta(deployment)
    selector = deployment.spec.selector.match_labels if deployment.spec and deployment.spec.selector else None
    listed = await client.call(
        client.apps.list_namespaced_replica_set, dep.namespace, label_selector=_selector(selector) or None
    )
    owned: dict[int, Any] = {}
    for rs in listed.items:
        controller = next((r for r in meta(rs).owner_references or [] if r.controller), None)
        revision = views.revision_of(rs)
        if controller is not None and controller.uid == dep.uid and revision is not None:
            owned[revision] = rs
    return owned


async def rollout_history(client: KubernetesClient, params: RolloutHistoryParams) -> ToolResult:
    ns = _namespace(client, params.namespace)
    invocation = f"kubectl rollout history -n {ns} deployment/{params.deployment}"
    try:
        deployment = await client.call(client.apps.read_namespaced_deployment, params.deployment, ns)
        owned = await owned_replicasets(client, deployment)
    except Exception as exc:
        return api_failure(
            exc, client, f"read the history of deployment {ns}/{params.deployment}", invocation
        )
    if not owned:
        return ToolResult.no_data(
            f"Deployment {ns}/{params.deployment} has no replica sets with a revision", invocation=invocation
        )
    current = views.revision_of(deployment) or max(owned)
    revisions = [views.revision_row(owned[r], current) for r in sorted(owned, reverse=True)]
    data = {
        "deployment": params.deployment,
        "namespace": ns,
        "current_revision": current,
        "revisions": revisions,
    }
    return ToolResult.ok(data, invocation=invocation)


async def hpa_status(client: KubernetesClient, params: HpaParams) -> ToolResult:
    autoscaling = k8s.AutoscalingV2Api(client.api)
    ns = params.namespace or client.default_namespace
    if params.name:
        ns = _namespace(client, ns)
    invocation = f"kubectl describe hpa {f'-n {ns}' if ns else '-A'}" + (
        f" {params.name}" if params.name else ""
    )
    where = f"in namespace {ns}" if ns else "in all namespaces"
    try:
        if params.name and ns:
            found = [
                await client.call(autoscaling.read_namespaced_horizontal_pod_autoscaler, params.name, ns)
            ]
        elif ns:
            found = (await client.call(autoscaling.list_namespaced_horizontal_pod_autoscaler, ns)).items
        else:
            found = (await client.call(autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces)).items
    except Exception as exc:
        what = f"read HorizontalPodAutoscaler {ns}/{params.name}" if params.name else f"list HPAs {where}"
        return api_failure(exc, client, what, invocation)
    if not found:
        return ToolResult.no_data(f"No HorizontalPodAutoscalers {where}", invocation=invocation)
    return ToolResult.ok([views.hpa_row(h) for h in found], invocation=invocation)


NO_METRICS_SERVER = (
    "Pod CPU and memory usage is not available: the cluster does not serve the metrics.k8s.io API, "
    "which means metrics-server is not installed (or not running). Install metrics-server, or read "
    "usage from Prometheus (container_cpu_usage_seconds_total, container_memory_working_set_bytes)."
)


async def resource_usage(client: KubernetesClient, params: ResourceUsageParams) -> ToolResult:
    ns, selector = params.namespace, params.pod_selector or None
    invocation = f"kubectl top pods -n {ns} --containers" + (f" -l {selector}" if selector else "")
    custom = k8s.CustomObjectsApi(client.api)
    try:
        listed = await client.call(
            custom.list_namespaced_custom_object,
            METRICS_GROUP,
            METRICS_VERSION,
            ns,
            "pods",
            label_selector=selector,
        )
    except ApiException as exc:
        if exc.status == 404:
            return ToolResult.no_data(NO_METRICS_SERVER, invocation=invocation)
        return api_failure(exc, client, f"read pod metrics in namespace {ns}", invocation)
    except Exception as exc:
        return api_failure(exc, client, f"read pod metrics in namespace {ns}", invocation)
    items: list[dict[str, Any]] = list(cast(dict[str, Any], listed).get("items") or [])
    if not items:
        matching = f" matching {selector}" if selector else ""
        return ToolResult.no_data(
            f"metrics-server reports no pods{matching} in namespace {ns}", invocation=invocation
        )
    try:
        pods = await client.call(client.core.list_namespaced_pod, ns, label_selector=selector)
    except Exception as exc:
        return api_failure(exc, client, f"list pods in namespace {ns}", invocation)
    by_name = {meta(p).name: p for p in pods.items}
    rows = [views.usage_row(m, by_name.get((m.get("metadata") or {}).get("name"))) for m in items]
    rows.sort(key=lambda r: r["highest_of_limit_pct"], reverse=True)
    return ToolResult.ok(rows, invocation=invocation)


def _since(text: str | None) -> datetime | None:
    found = _DURATION.match(text or "")
    if not found:
        return None
    return datetime.now(UTC) - timedelta(seconds=int(found.group(1)) * _UNIT_SECONDS[found.group(2)])


async def _list_events(client: KubernetesClient, selector: str | None) -> tuple[list[Any], str, str | None]:
    """(events, scope, note): every namespace, or the configured one when RBAC refuses the cluster."""
    try:
        listed = await client.call(client.core.list_event_for_all_namespaces, field_selector=selector)
        return list(listed.items), "all namespaces", None
    except ApiException as exc:
        ns = client.default_namespace
        if exc.status != 403 or not ns:
            raise
        note = (
            "Not allowed to list events in all namespaces (this identity is bound to namespace "
            f"{ns} only); showing events of namespace {ns}."
        )
    listed = await client.call(client.core.list_namespaced_event, ns, field_selector=selector)
    return list(listed.items), f"namespace {ns}", note


async def cluster_events(client: KubernetesClient, params: ClusterEventsParams) -> ToolResult:
    types = sorted(set(params.types))
    selector = f"type={types[0]}" if len(types) == 1 else None
    invocation = "kubectl get events -A --sort-by=.lastTimestamp" + (
        f" --field-selector {selector}" if selector else ""
    )
    try:
        events, scope, note = await _list_events(client, selector)
    except Exception as exc:
        return api_failure(exc, client, "list events in all namespaces", invocation)
    kept = views.newest_first([e for e in events if e.type in types], _since(params.since))
    window = f" in the last {params.since}" if params.since else ""
    if not kept:
        return ToolResult.no_data(
            f"No {'/'.join(types)} events in {scope}{window}" + (f". {note}" if note else ""),
            invocation=invocation,
        )
    shown = kept[: params.limit]
    data = {
        "scope": scope,
        "note": note,
        "total": len(kept),
        "groups": views.event_groups(shown),
        "events": [event_row(e) for e in shown],
    }
    return ToolResult.ok({k: v for k, v in data.items() if v is not None}, invocation=invocation)


def _tool(
    name: str, description: str, params: type[P], run: Callable[[KubernetesClient, P], Awaitable[ToolResult]]
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run))


SIGNAL_INSTRUCTIONS = """After a deploy, rollout_history shows which revision runs and what changed
(images, change-cause); hpa_status shows autoscalers, and one at its max replicas with
ScalingLimited=True cannot absorb more load. resource_usage compares pods' CPU and memory with their
requests and limits (memory near its limit precedes OOMKilled). cluster_events groups recent warnings
across namespaces by reason: start there when you do not yet know where to look."""

SIGNAL_TOOLS = (
    _tool(
        "rollout_history",
        "A deployment's revisions (replica sets) newest first: images, creation time, change-cause, "
        "replicas and ready; the current revision marked.",
        RolloutHistoryParams,
        rollout_history,
    ),
    _tool(
        "hpa_status",
        "HorizontalPodAutoscalers: target, min/max, current/desired replicas, metrics against targets "
        "and conditions (AbleToScale, ScalingActive, ScalingLimited) with reasons.",
        HpaParams,
        hpa_status,
    ),
    _tool(
        "resource_usage",
        "Pods' CPU and memory usage from metrics-server beside their requests and limits, "
        "the pods closest to a limit first.",
        ResourceUsageParams,
        resource_usage,
    ),
    _tool(
        "cluster_events",
        "Recent events across all namespaces (Warning by default), newest first, grouped by reason and "
        "object kind with counts.",
        ClusterEventsParams,
        cluster_events,
    ),
)
