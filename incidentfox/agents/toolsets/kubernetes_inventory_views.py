"""Pure functions for the inventory tools: kubernetes client models -> compact JSON rows.

Stateful sets, daemon sets, jobs and cron jobs in ``kubectl get``'s words; a node's requested
resources against its allocatable ones (``kubectl describe node``'s "Allocated resources"); an
ingress's routes with whether the service behind each has ready endpoints; a config map's keys and,
from its ``managedFields``, who last changed which keys and when. Config values are never read
into a row unless one config map is asked for by name.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from kubernetes import client as k8s
from kubernetes.utils import parse_quantity

from incidentfox.agents.toolsets.kubernetes_views import Row, age, meta, pod_status

VALUE_CHARS = 300


def _clean(row: Row) -> Row:
    return {k: v for k, v in row.items() if v not in (None, [], {}, "")}


def rfc3339(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None


def statefulset_row(sts: k8s.V1StatefulSet) -> Row:
    spec, status = sts.spec, sts.status or k8s.V1StatefulSetStatus(replicas=0)
    desired = spec.replicas if spec and spec.replicas is not None else 1
    ready = status.ready_replicas or 0
    rolling = status.current_revision != status.update_revision
    return _clean(
        {
            "kind": "StatefulSet",
            "namespace": meta(sts).namespace,
            "name": meta(sts).name,
            "ready": f"{ready}/{desired}",
            "healthy": ready >= desired and not rolling,
            "updated": status.updated_replicas or 0,
            "rollout": "in progress" if rolling else None,
            "age": age(meta(sts).creation_timestamp),
        }
    )


def daemonset_row(ds: k8s.V1DaemonSet) -> Row:
    status = ds.status
    desired = status.desired_number_scheduled if status else 0
    ready = (status.number_ready if status else 0) or 0
    return _clean(
        {
            "kind": "DaemonSet",
            "namespace": meta(ds).namespace,
            "name": meta(ds).name,
            "ready": f"{ready}/{desired}",
            "healthy": ready >= desired,
            "unavailable": status.number_unavailable if status else None,
            "misscheduled": (status.number_misscheduled or None) if status else None,
            "age": age(meta(ds).creation_timestamp),
        }
    )


def job_state(job: k8s.V1Job) -> tuple[str, k8s.V1JobCondition | None]:
    """``Complete``, ``Failed``, ``Suspended`` or ``Running``, and the condition that says so."""
    conditions = {
        c.type: c for c in (job.status.conditions if job.status else None) or [] if c.status == "True"
    }
    for kind in ("Failed", "Complete", "Suspended"):
        if kind in conditions:
            return kind, conditions[kind]
    return "Running", None


def _owner_cronjob(job: k8s.V1Job) -> str | None:
    return next((r.name for r in meta(job).owner_references or [] if r.kind == "CronJob"), None)


def job_row(job: k8s.V1Job) -> Row:
    status = job.status or k8s.V1JobStatus()
    state, cause = job_state(job)
    duration = None
    if status.start_time and status.completion_time:
        duration = age(status.start_time, now=status.completion_time)
    return _clean(
        {
            "kind": "Job",
            "namespace": meta(job).namespace,
            "name": meta(job).name,
            "cronjob": _owner_cronjob(job),
            "status": state,
            "healthy": state != "Failed",
            "succeeded": status.succeeded or 0,
            "failed_pods": status.failed or 0,
            "active": status.active or 0,
            "started": rfc3339(status.start_time),
            "completed": rfc3339(status.completion_time),
            "duration": duration,
            "reason": cause.reason if cause is not None and state == "Failed" else None,
            "message": cause.message if cause is not None and state == "Failed" else None,
        }
    )


def cronjob_row(cron: k8s.V1CronJob, jobs: list[k8s.V1Job]) -> Row:
    spec, status = cron.spec, cron.status or k8s.V1CronJobStatus()
    own = [
        j for j in jobs if _owner_cronjob(j) == meta(cron).name and meta(j).namespace == meta(cron).namespace
    ]
    failed = sorted(
        (j for j in own if job_state(j)[0] == "Failed"),
        key=lambda j: meta(j).creation_timestamp or datetime.min,
        reverse=True,
    )
    last_schedule, last_success = status.last_schedule_time, status.last_successful_time
    return _clean(
        {
            "kind": "CronJob",
            "namespace": meta(cron).namespace,
            "name": meta(cron).name,
            "schedule": spec.schedule if spec else None,
            "suspended": bool(spec and spec.suspend),
            "active_jobs": len(status.active or []),
            "last_schedule": rfc3339(last_schedule),
            "last_success": rfc3339(last_success),
            "healthy": not failed or bool(last_success and last_schedule and last_success >= last_schedule),
            "failed_jobs": [meta(j).name for j in failed[:5]],
            "last_failure": job_row(failed[0]).get("message") if failed else None,
        }
    )


def _quantity(value: Any) -> Decimal:
    try:
        return Decimal(parse_quantity(value)) if value is not None else Decimal(0)
    except ValueError:
        return Decimal(0)


def _requests(pod: k8s.V1Pod, name: str) -> Decimal:
    containers = pod.spec.containers if pod.spec else []
    return sum(
        (_quantity((c.resources.requests or {}).get(name) if c.resources else None) for c in containers),
        Decimal(0),
    )


def _cpu_text(cores: Decimal) -> str:
    return f"{int(cores * 1000)}m"


def _memory_text(size: Decimal) -> str:
    return f"{int(size / 2**20)}Mi"


def allocation(node: k8s.V1Node, pods: list[k8s.V1Pod]) -> Row:
    """Requests of the node's non-terminated pods against its allocatable CPU, memory and pod count."""
    allocatable = (node.status.allocatable if node.status else None) or {}
    running = [p for p in pods if (p.status.phase if p.status else None) not in ("Succeeded", "Failed")]
    row: Row = {}
    for name, text in (("cpu", _cpu_text), ("memory", _memory_text)):
        requested, available = (
            sum((_requests(p, name) for p in running), Decimal(0)),
            _quantity(allocatable.get(name)),
        )
        row[name] = {
            "requested": text(requested),
            "allocatable": text(available),
            "percent": int(requested * 100 / available) if available else None,
        }
    row["pods"] = {"running": len(running), "allocatable": int(_quantity(allocatable.get("pods")))}
    return row


def node_pod_row(pod: k8s.V1Pod) -> Row:
    return _clean(
        {
            "namespace": meta(pod).namespace,
            "name": meta(pod).name,
            "status": pod_status(pod),
            "cpu_request": _cpu_text(_requests(pod, "cpu")),
            "memory_request": _memory_text(_requests(pod, "memory")),
        }
    )


def node_detail(node: k8s.V1Node) -> Row:
    spec = node.spec or k8s.V1NodeSpec()
    conditions = (node.status.conditions if node.status else None) or []
    info = node.status.node_info if node.status else None
    return _clean(
        {
            "name": meta(node).name,
            "unschedulable": bool(spec.unschedulable),
            "conditions": [
                _clean(
                    {
                        "type": c.type,
                        "status": c.status,
                        "reason": c.reason,
                        "message": c.message,
                        "since": rfc3339(c.last_transition_time),
                        "last_heartbeat": rfc3339(c.last_heartbeat_time),
                    }
                )
                for c in conditions
            ],
            "taints": [f"{t.key}{'=' + t.value if t.value else ''}:{t.effect}" for t in spec.taints or []],
            "labels": {
                k: v
                for k, v in (meta(node).labels or {}).items()
                if k.startswith(
                    ("node-role.kubernetes.io/", "topology.kubernetes.io/", "node.kubernetes.io/")
                )
            },
            "kubelet": info.kubelet_version if info else None,
            "runtime": info.container_runtime_version if info else None,
            "age": age(meta(node).creation_timestamp),
        }
    )


def _backend_row(
    namespace: str, backend: k8s.V1IngressBackend | None, ready: dict[tuple[str, str], int | None]
) -> Row:
    service = backend.service if backend else None
    if service is None:
        return {"service": None, "note": "not a service backend"}
    port = service.port.number or service.port.name if service.port else None
    endpoints = ready.get((namespace, service.name))
    return {
        "service": service.name,
        "port": port,
        "service_exists": (namespace, service.name) in ready,
        "ready_endpoints": endpoints or 0,
    }


def ingress_row(ing: k8s.V1Ingress, ready: dict[tuple[str, str], int | None]) -> Row:
    """``ready`` maps (namespace, service) to its ready endpoint count; absent = no such service."""
    ns = str(meta(ing).namespace)
    spec = ing.spec or k8s.V1IngressSpec()
    routes: list[Row] = []
    for rule in spec.rules or []:
        for path in (rule.http.paths if rule.http else None) or []:
            routes.append(
                {"host": rule.host or "*", "path": path.path or "/", **_backend_row(ns, path.backend, ready)}
            )
    if spec.default_backend is not None:
        routes.append({"host": "*", "path": "(default)", **_backend_row(ns, spec.default_backend, ready)})
    balancer = ing.status.load_balancer if ing.status else None
    addresses = [a.ip or a.hostname for a in (balancer.ingress if balancer else None) or []]
    broken = [r for r in routes if r.get("service") and not r["ready_endpoints"]]
    return _clean(
        {
            "namespace": ns,
            "name": meta(ing).name,
            "class": spec.ingress_class_name,
            "addresses": addresses,
            "tls_hosts": sorted({h for t in spec.tls or [] for h in t.hosts or []}),
            "routes": routes,
            "healthy": not broken and bool(routes),
            "problem": (
                "no load balancer address yet"
                if not addresses
                else f"{len(broken)} route(s) lead to a service without ready endpoints"
                if broken
                else None
            ),
        }
    )


def _owned_keys(fields: Any) -> list[str]:
    data = fields.get("f:data") if isinstance(fields, dict) else None
    keys = [k.removeprefix("f:") for k in (data or {}) if k.startswith("f:")]
    binary = fields.get("f:binaryData") if isinstance(fields, dict) else None
    return sorted(keys + [k.removeprefix("f:") for k in (binary or {}) if k.startswith("f:")])


def configmap_row(cm: k8s.V1ConfigMap, *, values: bool = False) -> Row:
    """Keys, the last change and who made it (from ``managedFields``), and every writer's keys;
    ``values`` adds the data itself, shortened (only for one config map asked for by name)."""
    writes = sorted(
        (m for m in meta(cm).managed_fields or [] if m.time is not None),
        key=lambda m: m.time or datetime.min,
        reverse=True,
    )
    last = writes[0] if writes else None
    keys = sorted([*(cm.data or {}), *(cm.binary_data or {})])
    row: Row = {
        "namespace": meta(cm).namespace,
        "name": meta(cm).name,
        "keys": keys,
        "created": rfc3339(meta(cm).creation_timestamp),
        "last_modified": rfc3339(last.time) if last else rfc3339(meta(cm).creation_timestamp),
        "last_modified_by": last.manager if last else None,
        "last_changed_keys": _owned_keys(last.fields_v1) if last else [],
        "writers": [
            {
                "manager": m.manager,
                "operation": m.operation,
                "at": rfc3339(m.time),
                "keys": _owned_keys(m.fields_v1),
            }
            for m in writes
        ],
    }
    if values:
        row["data"] = {
            k: v if len(v) <= VALUE_CHARS else v[: VALUE_CHARS - 1] + "…" for k, v in (cm.data or {}).items()
        }
        if cm.binary_data:
            row["binary_keys"] = sorted(cm.binary_data)
    return _clean(row) | {"keys": keys}
