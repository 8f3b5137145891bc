"""The kubernetes toolset: read tools over the team's cluster, plus the write tools of
``kubernetes_writes`` (restart, scale, roll back, delete a pod), which run only once approved in Slack.

Every tool takes the run's ``KubernetesClient`` (from ``connect``) and a pydantic params model, and
returns a ``ToolResult`` whose ``data`` is compact JSON in kubectl's vocabulary. Failures (an
unreachable API, 401/403, a missing pod) come back as ``ToolResult.failed`` with one plain sentence.
The no-LLM analyzers call these same functions, so both paths see identical data and errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from incidentfox.agents.toolsets import kubernetes_views as views
from incidentfox.agents.toolsets.base import Tool, ToolFunction, ToolResult, Toolset, ToolsetHealth
from incidentfox.agents.toolsets.kubernetes_api import (
    KubernetesClient,
    KubernetesNotConfigured,
    api_failure,
    connect,
    describe_failure,
    kubernetes_configured,
)
from incidentfox.agents.toolsets.kubernetes_inventory import INVENTORY_INSTRUCTIONS, INVENTORY_TOOLS
from incidentfox.agents.toolsets.kubernetes_signals import SIGNAL_INSTRUCTIONS, SIGNAL_TOOLS
from incidentfox.agents.toolsets.kubernetes_writes import WRITE_INSTRUCTIONS, WRITE_TOOLS

P = TypeVar("P", bound=BaseModel)
DEFAULT_TAIL_LINES = 200


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListPodsParams(_Params):
    namespace: str | None = Field(
        None, description="Namespace; null for the configured default, or all namespaces."
    )
    all_namespaces: bool = Field(default=False, description="List pods in every namespace.")
    label_selector: str | None = Field(default=None, description="Label selector, e.g. app=checkout.")


class PodParams(_Params):
    name: str = Field(description="Pod name.")
    namespace: str | None = Field(default=None, description="Namespace; null for the configured default.")


class EventsParams(_Params):
    namespace: str | None = Field(
        default=None, description="Namespace; null for the configured default, or all."
    )
    involved_object: str | None = Field(
        None, description="Only events about this object name (pod, node...)."
    )
    warnings_only: bool = Field(default=False, description="Only Warning events.")
    limit: int = Field(default=50, ge=1, le=200, description="At most this many events, warnings first.")


class PodLogsParams(_Params):
    name: str = Field(description="Pod name.")
    namespace: str | None = Field(default=None, description="Namespace; null for the configured default.")
    container: str | None = Field(
        default=None, description="Container name; needed when the pod has several."
    )
    previous: bool = Field(
        False, description="Logs of the previous (crashed) container instead of the current one."
    )
    tail_lines: int = Field(default=DEFAULT_TAIL_LINES, ge=1, le=5000, description="Only the last N lines.")
    since_seconds: int | None = Field(default=None, ge=1, description="Only lines from the last N seconds.")


class NamespacedListParams(_Params):
    namespace: str | None = Field(
        default=None, description="Namespace; null for the configured default, or all."
    )
    label_selector: str | None = Field(default=None, description="Label selector, e.g. app=checkout.")


class DeploymentParams(_Params):
    name: str = Field(description="Deployment name.")
    namespace: str | None = Field(default=None, description="Namespace; null for the configured default.")


class ServicesParams(_Params):
    namespace: str | None = Field(
        default=None, description="Namespace; null for the configured default, or all."
    )
    name: str | None = Field(default=None, description="Only this service.")


class NodesParams(_Params):
    label_selector: str | None = Field(
        default=None, description="Label selector, e.g. node-role.kubernetes.io/worker."
    )


def _list_namespace(
    client: KubernetesClient, namespace: str | None, all_namespaces: bool = False
) -> str | None:
    """The namespace to list in, or ``None`` for all namespaces."""
    return None if all_namespaces else namespace or client.default_namespace


def _object_namespace(client: KubernetesClient, namespace: str | None) -> str:
    return namespace or client.default_namespace or "default"


def _ns_flag(namespace: str | None) -> str:
    return f"-n {namespace}" if namespace else "-A"


def _where(namespace: str | None) -> str:
    return f"in namespace {namespace}" if namespace else "in all namespaces"


async def list_pods(client: KubernetesClient, params: ListPodsParams) -> ToolResult:
    ns = _list_namespace(client, params.namespace, params.all_namespaces)
    selector = params.label_selector or None
    invocation = f"kubectl get pods {_ns_flag(ns)}" + (f" -l {selector}" if selector else "")
    try:
        if ns:
            pods = await client.call(client.core.list_namespaced_pod, ns, label_selector=selector)
        else:
            pods = await client.call(client.core.list_pod_for_all_namespaces, label_selector=selector)
    except Exception as exc:
        return api_failure(exc, client, f"list pods {_where(ns)}", invocation)
    if not pods.items:
        return ToolResult.no_data(
            f"No pods {_where(ns)}" + (f" match {selector}" if selector else ""), invocation=invocation
        )
    return ToolResult.ok([views.pod_row(p) for p in pods.items], invocation=invocation)


async def _events_for(client: KubernetesClient, namespace: str | None, name: str | None) -> list[Any]:
    selector = f"involvedObject.name={name}" if name else None
    if namespace:
        result = await client.call(client.core.list_namespaced_event, namespace, field_selector=selector)
    else:
        result = await client.call(client.core.list_event_for_all_namespaces, field_selector=selector)
    return views.sort_events(list(result.items))


async def describe_pod(client: KubernetesClient, params: PodParams) -> ToolResult:
    ns = _object_namespace(client, params.namespace)
    invocation = f"kubectl describe pod -n {ns} {params.name}"
    try:
        pod = await client.call(client.core.read_namespaced_pod, params.name, ns)
        events = await _events_for(client, ns, params.name)
    except Exception as exc:
        return api_failure(exc, client, f"read pod {ns}/{params.name}", invocation)
    detail = views.pod_detail(pod)
    detail["events"] = [views.event_row(e) for e in events[:15]]
    return ToolResult.ok(detail, invocation=invocation)


async def get_events(client: KubernetesClient, params: EventsParams) -> ToolResult:
    ns = _list_namespace(client, params.namespace)
    invocation = f"kubectl get events {_ns_flag(ns)}" + (
        f" --field-selector involvedObject.name={params.involved_object}" if params.involved_object else ""
    )
    try:
        events = await _events_for(client, ns, params.involved_object)
    except Exception as exc:
        return api_failure(exc, client, f"list events {_where(ns)}", invocation)
    if params.warnings_only:
        events = [e for e in events if e.type == "Warning"]
    if not events:
        about = f" about {params.involved_object}" if params.involved_object else ""
        return ToolResult.no_data(f"No events{about} {_where(ns)}", invocation=invocation)
    return ToolResult.ok([views.event_row(e) for e in events[: params.limit]], invocation=invocation)


async def pod_logs(client: KubernetesClient, params: PodLogsParams) -> ToolResult:
    ns = _object_namespace(client, params.namespace)
    flags = (f" -c {params.container}" if params.container else "") + (
        " --previous" if params.previous else ""
    )
    invocation = f"kubectl logs -n {ns} {params.name}{flags} --tail={params.tail_lines}"
    kwargs: dict[str, Any] = {"tail_lines": params.tail_lines, "previous": params.previous}
    if params.container:
        kwargs["container"] = params.container
    if params.since_seconds:
        kwargs["since_seconds"] = params.since_seconds
    which = "previous logs" if params.previous else "logs"
    try:
        text = await client.call(client.core.read_namespaced_pod_log, params.name, ns, **kwargs)
    except Exception as exc:
        return api_failure(exc, client, f"read {which} of pod {ns}/{params.name}", invocation)
    lines = str(text or "").splitlines()
    if not lines:
        return ToolResult.no_data(f"Pod {ns}/{params.name} wrote no {which} lines", invocation=invocation)
    data = {
        "pod": params.name,
        "namespace": ns,
        "container": params.container,
        "previous": params.previous,
        "lines": len(lines),
        "log": "\n".join(lines),
    }
    return ToolResult.ok(data, invocation=invocation)


async def list_deployments(client: KubernetesClient, params: NamespacedListParams) -> ToolResult:
    ns = _list_namespace(client, params.namespace)
    selector = params.label_selector or None
    invocation = f"kubectl get deployments {_ns_flag(ns)}" + (f" -l {selector}" if selector else "")
    try:
        if ns:
            deps = await client.call(client.apps.list_namespaced_deployment, ns, label_selector=selector)
        else:
            deps = await client.call(client.apps.list_deployment_for_all_namespaces, label_selector=selector)
    except Exception as exc:
        return api_failure(exc, client, f"list deployments {_where(ns)}", invocation)
    if not deps.items:
        return ToolResult.no_data(f"No deployments {_where(ns)}", invocation=invocation)
    return ToolResult.ok([views.deployment_row(d) for d in deps.items], invocation=invocation)


async def rollout_status(client: KubernetesClient, params: DeploymentParams) -> ToolResult:
    ns = _object_namespace(client, params.namespace)
    invocation = f"kubectl rollout status -n {ns} deployment/{params.name}"
    try:
        dep = await client.call(client.apps.read_namespaced_deployment, params.name, ns)
    except Exception as exc:
        return api_failure(exc, client, f"read deployment {ns}/{params.name}", invocation)
    return ToolResult.ok(views.deployment_row(dep), invocation=invocation)


async def services_and_endpoints(client: KubernetesClient, params: ServicesParams) -> ToolResult:
    ns = _list_namespace(client, params.namespace)
    selector = f"metadata.name={params.name}" if params.name else None
    invocation = f"kubectl get services,endpoints {_ns_flag(ns)}" + (f" {params.name}" if params.name else "")
    try:
        if ns:
            services = await client.call(client.core.list_namespaced_service, ns, field_selector=selector)
            endpoints = await client.call(client.core.list_namespaced_endpoints, ns, field_selector=selector)
        else:
            services = await client.call(client.core.list_service_for_all_namespaces, field_selector=selector)
            endpoints = await client.call(
                client.core.list_endpoints_for_all_namespaces, field_selector=selector
            )
    except Exception as exc:
        return api_failure(exc, client, f"list services {_where(ns)}", invocation)
    by_key = {(views.meta(e).namespace, views.meta(e).name): e for e in endpoints.items}
    rows = [
        views.service_row(s, by_key.get((views.meta(s).namespace, views.meta(s).name)))
        for s in services.items
    ]
    if not rows:
        return ToolResult.no_data(f"No services {_where(ns)}", invocation=invocation)
    return ToolResult.ok(rows, invocation=invocation)


async def list_nodes(client: KubernetesClient, params: NodesParams) -> ToolResult:
    selector = params.label_selector or None
    invocation = "kubectl get nodes" + (f" -l {selector}" if selector else "")
    try:
        nodes = await client.call(client.core.list_node, label_selector=selector)
    except Exception as exc:
        return api_failure(exc, client, "list nodes", invocation)
    if not nodes.items:
        return ToolResult.no_data("No nodes", invocation=invocation)
    return ToolResult.ok([views.node_row(n) for n in nodes.items], invocation=invocation)


async def list_pvcs(client: KubernetesClient, params: NamespacedListParams) -> ToolResult:
    ns = _list_namespace(client, params.namespace)
    selector = params.label_selector or None
    invocation = f"kubectl get pvc {_ns_flag(ns)}" + (f" -l {selector}" if selector else "")
    core = client.core
    try:
        if ns:
            pvcs = await client.call(
                core.list_namespaced_persistent_volume_claim, ns, label_selector=selector
            )
        else:
            pvcs = await client.call(
                core.list_persistent_volume_claim_for_all_namespaces, label_selector=selector
            )
    except Exception as exc:
        return api_failure(exc, client, f"list persistent volume claims {_where(ns)}", invocation)
    if not pvcs.items:
        return ToolResult.no_data(f"No persistent volume claims {_where(ns)}", invocation=invocation)
    return ToolResult.ok([views.pvc_row(p) for p in pvcs.items], invocation=invocation)


HEALTH_TIMEOUT = (3.0, 5.0)
"""(connect, read) seconds for the health check: a Home tab waits for it, an investigation does not."""


async def health(config: Mapping[str, Any]) -> ToolsetHealth:
    """One cheap read the tools depend on: one pod of the configured namespace (a namespaced RBAC
    role allows that), or one namespace when no namespace is configured."""
    if not kubernetes_configured(config):
        return ToolsetHealth(configured=False, reason="no kubeconfig or api_url is set")
    try:
        client = await connect(config)
    except KubernetesNotConfigured as exc:
        return ToolsetHealth.failing(str(exc))
    client.timeout = HEALTH_TIMEOUT
    ns = client.default_namespace
    try:
        if ns:
            await client.call(client.core.list_namespaced_pod, ns, limit=1)
        else:
            await client.call(client.core.list_namespace, limit=1)
    except Exception as exc:
        return ToolsetHealth.failing(
            describe_failure(exc, client, f"list pods in namespace {ns}" if ns else "list namespaces")
        )
    finally:
        client.close()
    return ToolsetHealth.ok()


def _tool(
    name: str, description: str, params: type[P], run: Callable[[KubernetesClient, P], Awaitable[ToolResult]]
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run))


INSTRUCTIONS = f"""You investigate Kubernetes workloads. Start broad and narrow down:
list_pods (look at status, ready and restarts), then describe_pod and get_events for unhealthy pods.
For a crash-looping pod read pod_logs with previous=true: the decisive line is usually near the end.
Use rollout_status after a deploy, services_and_endpoints when traffic fails, list_nodes and list_pvcs
when pods are Pending. Quote log lines and event messages exactly, with the pod they came from.
Prefer a namespace or label_selector over listing everything.
{SIGNAL_INSTRUCTIONS}
{INVENTORY_INSTRUCTIONS}

{WRITE_INSTRUCTIONS}"""

KUBERNETES = Toolset(
    name="kubernetes",
    description="The team's Kubernetes cluster: pods, logs, events, deployments and their revisions, "
    "stateful sets, daemon sets, jobs and cron jobs, autoscalers, resource usage, services and "
    "endpoints, ingresses, config map changes, nodes and persistent volume claims; "
    "restart, scale, roll back or delete a pod once approved in Slack.",
    instructions=INSTRUCTIONS,
    connect=connect,
    health_check=health,
    tools=(
        _tool(
            "list_pods",
            "List pods with status (CrashLoopBackOff, Pending...), ready containers, restarts, node and age.",
            ListPodsParams,
            list_pods,
        ),
        _tool(
            "describe_pod",
            "One pod in detail: container states and last states with reasons and exit codes, probes, "
            "resource requests and limits, conditions and recent events.",
            PodParams,
            describe_pod,
        ),
        _tool(
            "get_events",
            "Kubernetes events, warnings first, optionally only those about one object.",
            EventsParams,
            get_events,
        ),
        _tool(
            "pod_logs",
            "A pod's log tail; previous=true reads the crashed container's last run.",
            PodLogsParams,
            pod_logs,
        ),
        _tool(
            "list_deployments",
            "Deployments with desired/updated/ready/available replicas, conditions and rollout state.",
            NamespacedListParams,
            list_deployments,
        ),
        _tool(
            "rollout_status",
            "Whether one deployment's rollout is complete, progressing or stalled, and why.",
            DeploymentParams,
            rollout_status,
        ),
        _tool(
            "services_and_endpoints",
            "Services with their selector and the ready and not-ready pod addresses behind them.",
            ServicesParams,
            services_and_endpoints,
        ),
        _tool(
            "list_nodes",
            "Nodes with the Ready condition, pressure conditions (memory, disk, PID) and taints.",
            NodesParams,
            list_nodes,
        ),
        _tool(
            "list_pvcs",
            "Persistent volume claims with phase (Pending/Bound), storage class and size.",
            NamespacedListParams,
            list_pvcs,
        ),
        *SIGNAL_TOOLS,
        *INVENTORY_TOOLS,
        *WRITE_TOOLS,
    ),
)
