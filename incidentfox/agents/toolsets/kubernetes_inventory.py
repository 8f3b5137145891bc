"""Inventory tools of the kubernetes toolset: the workloads beside deployments, one node in depth,
ingresses with their backends, and recently changed config maps.

* ``list_workloads``: stateful sets, daemon sets, jobs and cron jobs with readiness, last schedule and
  failed jobs. A kind the identity may not list (403) is reported beside the others, not instead.
* ``describe_node``: ``kubectl describe node``: conditions, taints, requested against allocatable CPU,
  memory and pods, the pods on it and the node's events.
* ``ingresses``: hosts, paths and backends, and whether each backend service has ready endpoints.
* ``config_changes``: config maps with their last change and who made it, from ``managedFields``;
  values only for one config map asked for by name. Secrets are never read.

Each returns a ``ToolResult`` like the tools of ``kubernetes``; failures are one plain sentence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast

from kubernetes import client as k8s
from pydantic import BaseModel, ConfigDict, Field

from incidentfox.agents.toolsets import kubernetes_inventory_views as views
from incidentfox.agents.toolsets.base import Tool, ToolFunction, ToolResult
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, api_failure, describe_failure
from incidentfox.agents.toolsets.kubernetes_views import event_row, meta, sort_events

P = TypeVar("P", bound=BaseModel)
WorkloadKind = Literal["statefulsets", "daemonsets", "jobs", "cronjobs"]
ALL_KINDS: tuple[WorkloadKind, ...] = ("statefulsets", "daemonsets", "jobs", "cronjobs")
MAX_ROWS = 50
MAX_NODE_PODS = 60
MAX_CONFIGMAPS = 30
ROOT_CA = "kube-root-ca.crt"
"""The config map every namespace gets from the API server; never a change anyone made."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkloadsParams(_Params):
    namespace: str | None = Field(
        default=None, description="Namespace; null for the configured default, or all."
    )
    kinds: list[WorkloadKind] | None = Field(
        default=None, description="Which kinds; null for statefulsets, daemonsets, jobs and cronjobs."
    )
    unhealthy_only: bool = Field(
        default=False, description="Only not-ready sets, failed jobs and cron jobs whose last run failed."
    )


class NodeParams(_Params):
    name: str = Field(description="Node name.")


class IngressParams(_Params):
    namespace: str | None = Field(
        default=None, description="Namespace; null for the configured default, or all."
    )
    name: str | None = Field(default=None, description="Only this ingress.")


class ConfigChangesParams(_Params):
    namespace: str | None = Field(default=None, description="Namespace; null for the configured default.")
    name: str | None = Field(default=None, description="One config map, with its values.")
    changed_within_hours: float | None = Field(
        default=None, gt=0, le=720, description="Only config maps changed in the last N hours."
    )


def _namespace(client: KubernetesClient, namespace: str | None) -> str | None:
    return namespace or client.default_namespace


def _where(namespace: str | None) -> str:
    return f"in namespace {namespace}" if namespace else "in all namespaces"


def _ns_flag(namespace: str | None) -> str:
    return f"-n {namespace}" if namespace else "-A"


async def _list(client: KubernetesClient, kind: WorkloadKind, namespace: str | None) -> list[Any]:
    apps, batch = client.apps, k8s.BatchV1Api(client.api)
    methods: dict[WorkloadKind, tuple[Callable[..., Any], Callable[..., Any]]] = {
        "statefulsets": (apps.list_namespaced_stateful_set, apps.list_stateful_set_for_all_namespaces),
        "daemonsets": (apps.list_namespaced_daemon_set, apps.list_daemon_set_for_all_namespaces),
        "jobs": (batch.list_namespaced_job, batch.list_job_for_all_namespaces),
        "cronjobs": (batch.list_namespaced_cron_job, batch.list_cron_job_for_all_namespaces),
    }
    namespaced, everywhere = methods[kind]
    found = await (client.call(namespaced, namespace) if namespace else client.call(everywhere))
    return list(found.items)


def _workload_rows(kinds: list[WorkloadKind], found: dict[str, list[Any]]) -> list[dict[str, Any]]:
    rows = [views.statefulset_row(s) for s in found.get("statefulsets", [])]
    rows += [views.daemonset_row(d) for d in found.get("daemonsets", [])]
    jobs = found.get("jobs", [])
    if "jobs" in kinds:
        # Completed runs of cron jobs are history; the cron job's row speaks for them.
        rows += [
            views.job_row(j)
            for j in jobs
            if not any(r.kind == "CronJob" for r in meta(j).owner_references or [])
            or views.job_state(j)[0] != "Complete"
        ]
    rows += [views.cronjob_row(c, jobs) for c in found.get("cronjobs", [])]
    return rows


async def list_workloads(client: KubernetesClient, params: WorkloadsParams) -> ToolResult:
    ns = _namespace(client, params.namespace)
    kinds = list(dict.fromkeys(params.kinds or ALL_KINDS))
    wanted = kinds if "cronjobs" not in kinds or "jobs" in kinds else [*kinds, "jobs"]
    invocation = f"kubectl get {','.join(kinds)} {_ns_flag(ns)}"
    answers = await asyncio.gather(*(_list(client, k, ns) for k in wanted), return_exceptions=True)
    found: dict[str, list[Any]] = {}
    errors: dict[str, str] = {}
    for kind, answer in zip(wanted, answers, strict=True):
        if isinstance(answer, BaseException):
            if kind in kinds:
                errors[kind] = describe_failure(answer, client, f"list {kind} {_where(ns)}")
        else:
            found[kind] = answer
    if len(errors) == len(kinds):
        return ToolResult.failed(next(iter(errors.values())), invocation=invocation)
    rows = _workload_rows(kinds, found)
    if params.unhealthy_only:
        rows = [r for r in rows if not r.get("healthy", True)]
    if not rows and not errors:
        what = "unhealthy " if params.unhealthy_only else ""
        return ToolResult.no_data(f"No {what}{', '.join(kinds)} {_where(ns)}", invocation=invocation)
    data: dict[str, Any] = {"workloads": rows[:MAX_ROWS]}
    if len(rows) > MAX_ROWS:
        data["not_shown"] = len(rows) - MAX_ROWS
        data["note"] = "Narrow with namespace, kinds or unhealthy_only."
    if errors:
        data["errors"] = errors
    return ToolResult.ok(data, invocation=invocation)


async def describe_node(client: KubernetesClient, params: NodeParams) -> ToolResult:
    invocation = f"kubectl describe node {params.name}"
    core = client.core
    try:
        node = await client.call(core.read_node, params.name)
        pods, events = await asyncio.gather(
            client.call(core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={params.name}"),
            client.call(
                core.list_event_for_all_namespaces,
                field_selector=f"involvedObject.kind=Node,involvedObject.name={params.name}",
            ),
        )
    except Exception as exc:
        return api_failure(exc, client, f"describe node {params.name}", invocation)
    on_node = sorted(
        pods.items, key=lambda p: (views.node_pod_row(p)["status"] == "Running", meta(p).name or "")
    )
    detail = views.node_detail(node)
    detail["allocated"] = views.allocation(node, list(pods.items))
    detail["pods"] = [views.node_pod_row(p) for p in on_node[:MAX_NODE_PODS]]
    if len(on_node) > MAX_NODE_PODS:
        detail["pods_not_shown"] = len(on_node) - MAX_NODE_PODS
    detail["events"] = [event_row(e) for e in sort_events(list(events.items))[:15]]
    return ToolResult.ok(detail, invocation=invocation)


async def ingresses(client: KubernetesClient, params: IngressParams) -> ToolResult:
    ns = _namespace(client, params.namespace)
    networking, core = k8s.NetworkingV1Api(client.api), client.core
    selector = f"metadata.name={params.name}" if params.name else None
    invocation = f"kubectl get ingress {_ns_flag(ns)}" + (f" {params.name}" if params.name else "")
    try:
        if ns:
            found, services, endpoints = await asyncio.gather(
                client.call(networking.list_namespaced_ingress, ns, field_selector=selector),
                client.call(core.list_namespaced_service, ns),
                client.call(core.list_namespaced_endpoints, ns),
            )
        else:
            found, services, endpoints = await asyncio.gather(
                client.call(networking.list_ingress_for_all_namespaces, field_selector=selector),
                client.call(core.list_service_for_all_namespaces),
                client.call(core.list_endpoints_for_all_namespaces),
            )
    except Exception as exc:
        return api_failure(exc, client, f"list ingresses {_where(ns)}", invocation)
    if not found.items:
        what = f"ingress {params.name}" if params.name else "ingresses"
        return ToolResult.no_data(f"No {what} {_where(ns)}", invocation=invocation)
    ready: dict[tuple[str, str], int | None] = {
        (str(meta(s).namespace), str(meta(s).name)): 0 for s in services.items
    }
    for ep in endpoints.items:
        key = (str(meta(ep).namespace), str(meta(ep).name))
        if key in ready:
            ready[key] = sum(len(s.addresses or []) for s in ep.subsets or [])
    rows = [views.ingress_row(i, ready) for i in found.items]
    rows.sort(key=lambda r: (r.get("healthy", False), r["namespace"], r["name"]))
    return ToolResult.ok(rows[:MAX_ROWS], invocation=invocation)


async def config_changes(client: KubernetesClient, params: ConfigChangesParams) -> ToolResult:
    ns = _namespace(client, params.namespace) or "default"
    core = client.core
    if params.name:
        invocation = f"kubectl get configmap -n {ns} {params.name} -o yaml --show-managed-fields"
        try:
            cm = await client.call(core.read_namespaced_config_map, params.name, ns)
        except Exception as exc:
            return api_failure(exc, client, f"read config map {ns}/{params.name}", invocation)
        return ToolResult.ok(views.configmap_row(cm, values=True), invocation=invocation)
    invocation = f"kubectl get configmaps -n {ns} --show-managed-fields"
    try:
        found = await client.call(core.list_namespaced_config_map, ns)
    except Exception as exc:
        return api_failure(exc, client, f"list config maps in namespace {ns}", invocation)
    rows = [views.configmap_row(cm) for cm in found.items if meta(cm).name != ROOT_CA]
    rows.sort(key=lambda r: str(r.get("last_modified") or ""), reverse=True)
    if params.changed_within_hours is not None:
        since = datetime.now(UTC) - timedelta(hours=params.changed_within_hours)
        cutoff = views.rfc3339(since) or ""
        rows = [r for r in rows if str(r.get("last_modified") or "") >= cutoff]
    if not rows:
        within = (
            f" changed in the last {params.changed_within_hours:g} hours"
            if params.changed_within_hours
            else ""
        )
        return ToolResult.no_data(f"No config maps{within} in namespace {ns}", invocation=invocation)
    for row in rows:
        row.pop("writers", None)
    data: dict[str, Any] = {"namespace": ns, "config_maps": rows[:MAX_CONFIGMAPS]}
    if len(rows) > MAX_CONFIGMAPS:
        data["not_shown"] = len(rows) - MAX_CONFIGMAPS
    return ToolResult.ok(data, invocation=invocation)


def _tool(
    name: str, description: str, params: type[P], run: Callable[[KubernetesClient, P], Awaitable[ToolResult]]
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run))


INVENTORY_INSTRUCTIONS = """Beyond deployments: list_workloads shows stateful sets, daemon sets, jobs and cron
jobs (unhealthy_only=true for not-ready sets, failed jobs and cron jobs whose last run failed), e.g.
a database stateful set or a failed migration job. describe_node for a NotReady or pressured node, or
one where pods are evicted: its conditions, taints, requested vs allocatable resources and the pods
on it. ingresses when users get 404/502/503: each host and path with its backend service and whether
that service has ready endpoints. config_changes lists the config maps of a namespace by when they
last changed and who changed which keys (pass changed_within_hours to find a change right before an
incident, then name= to read that config map's values)."""

INVENTORY_TOOLS = (
    _tool(
        "list_workloads",
        "Stateful sets, daemon sets, jobs and cron jobs: readiness, job status and failure reason, "
        "cron schedule, last schedule and success, failed jobs.",
        WorkloadsParams,
        list_workloads,
    ),
    _tool(
        "describe_node",
        "One node: conditions with reasons, taints, CPU/memory/pods requested against allocatable, "
        "the pods on it with their requests, and its events.",
        NodeParams,
        describe_node,
    ),
    _tool(
        "ingresses",
        "Ingresses with class, addresses, TLS hosts and each host/path's backend service, and whether "
        "that service exists and has ready endpoints.",
        IngressParams,
        ingresses,
    ),
    _tool(
        "config_changes",
        "Config maps of a namespace, most recently changed first, with who changed which keys and "
        "when (from managedFields); values only for one named config map. Never reads secrets.",
        ConfigChangesParams,
        config_changes,
    ),
)
