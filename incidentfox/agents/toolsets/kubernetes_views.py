"""Pure functions: kubernetes client models -> the compact JSON rows the tools return.

They follow kubectl's reading of an object (the STATUS column of ``kubectl get pods``, the message
of ``kubectl rollout status``) so that a model, an analyzer and a human all see the same words.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s

Row = dict[str, Any]


def meta(obj: Any) -> k8s.V1ObjectMeta:
    """An object's metadata (the client types it optional; the API always sends it)."""
    found = getattr(obj, "metadata", None)
    return found if isinstance(found, k8s.V1ObjectMeta) else k8s.V1ObjectMeta()


def age(ts: datetime | None, now: datetime | None = None) -> str:
    """``kubectl``-style age: ``45s``, ``12m``, ``3h20m``, ``5d``."""
    if ts is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - ts).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours}h{minutes}m" if minutes and hours < 10 else f"{hours}h"
    return f"{seconds // 86400}d"


def workload_of(meta: k8s.V1ObjectMeta) -> str | None:
    """The owning workload's name: a ReplicaSet owner ``checkout-7d9f8b6c5`` -> ``checkout``."""
    for ref in meta.owner_references or []:
        if ref.kind == "ReplicaSet":
            return str(ref.name).rsplit("-", 1)[0]
        return str(ref.name)
    return None


def pod_status(pod: k8s.V1Pod) -> str:
    """The STATUS column of ``kubectl get pods`` (CrashLoopBackOff, OOMKilled, Pending, Running...)."""
    status = pod.status
    reason = (status.reason if status else None) or (status.phase if status else None) or "Unknown"
    initializing = _init_status(pod)
    if initializing:
        return "Terminating" if meta(pod).deletion_timestamp else initializing
    gated = pod.spec.scheduling_gates if pod.spec else None
    if gated and reason == "Pending":
        reason = "SchedulingGated"
    for cs in (status.container_statuses if status else None) or []:
        state = cs.state
        if state and state.waiting and state.waiting.reason:
            reason = state.waiting.reason
        elif state and state.terminated:
            reason = state.terminated.reason or f"ExitCode:{state.terminated.exit_code}"
    if meta(pod).deletion_timestamp:
        reason = "Terminating"
    return str(reason)


def _init_status(pod: k8s.V1Pod) -> str | None:
    """kubectl's ``Init:CrashLoopBackOff`` / ``Init:Error`` / ``Init:1/2`` while an init container
    (not a native sidecar, which keeps running) has not completed; ``None`` once they all have."""
    specs = {c.name: c for c in (pod.spec.init_containers if pod.spec else None) or []}
    statuses = (pod.status.init_container_statuses if pod.status else None) or []
    regular = [cs for cs in statuses if getattr(specs.get(cs.name), "restart_policy", None) != "Always"]
    for index, cs in enumerate(regular):
        state = cs.state
        if state and state.terminated and state.terminated.exit_code == 0:
            continue
        if state and state.terminated:
            return "Init:" + (state.terminated.reason or f"ExitCode:{state.terminated.exit_code}")
        if state and state.waiting and state.waiting.reason not in (None, "PodInitializing"):
            return f"Init:{state.waiting.reason}"
        return f"Init:{index}/{len(regular)}"
    return None


def _state(state: k8s.V1ContainerState | None) -> Row:
    if state is None:
        return {}
    if state.waiting:
        return {"state": "waiting", "reason": state.waiting.reason, "message": state.waiting.message}
    if state.terminated:
        t = state.terminated
        return {
            "state": "terminated",
            "reason": t.reason,
            "exit_code": t.exit_code,
            "message": t.message,
            "finished": age(t.finished_at) + " ago" if t.finished_at else None,
        }
    if state.running:
        return {"state": "running", "since": age(state.running.started_at)}
    return {}


def _clean(row: Row) -> Row:
    return {k: v for k, v in row.items() if v not in (None, "", [], {})}


def probe_text(probe: k8s.V1Probe | None) -> str | None:
    """``http-get :8080/ready delay=5s timeout=1s period=10s #failure=3`` like ``kubectl describe``."""
    if probe is None:
        return None
    if probe.http_get:
        action = f"http-get :{probe.http_get.port}{probe.http_get.path or '/'}"
    elif probe.tcp_socket:
        action = f"tcp-socket :{probe.tcp_socket.port}"
    elif probe.var_exec:
        action = "exec " + " ".join(probe.var_exec.command or [])
    else:
        action = "probe"
    return (
        f"{action} delay={probe.initial_delay_seconds or 0}s timeout={probe.timeout_seconds or 1}s "
        f"period={probe.period_seconds or 10}s #failure={probe.failure_threshold or 3}"
    )


def pod_row(pod: k8s.V1Pod) -> Row:
    """One line of ``kubectl get pods``; READY and RESTARTS count native sidecars, as kubectl does."""
    sidecars = {
        c.name for c in (pod.spec.init_containers if pod.spec else None) or [] if c.restart_policy == "Always"
    }
    init_statuses = (pod.status.init_container_statuses if pod.status else None) or []
    statuses = [
        *(cs for cs in init_statuses if cs.name in sidecars),
        *((pod.status.container_statuses if pod.status else None) or []),
    ]
    containers = [*sidecars, *(pod.spec.containers if pod.spec else [])]
    ready = sum(1 for cs in statuses if cs.ready)
    return _clean(
        {
            "namespace": meta(pod).namespace,
            "name": meta(pod).name,
            "status": pod_status(pod),
            "phase": pod.status.phase if pod.status else None,
            "ready": f"{ready}/{len(containers)}",
            "restarts": sum(cs.restart_count for cs in statuses),
            "node": pod.spec.node_name if pod.spec else None,
            "age": age(meta(pod).creation_timestamp),
            "workload": workload_of(meta(pod)),
        }
    )


def _container_row(c: k8s.V1Container, cs: k8s.V1ContainerStatus | None) -> Row:
    resources = c.resources
    return _clean(
        {
            "name": c.name,
            "image": c.image,
            "ready": cs.ready if cs else False,
            "restarts": cs.restart_count if cs else 0,
            "state": _clean(_state(cs.state)) if cs else {"state": "waiting", "reason": "not started"},
            "last_state": _clean(_state(cs.last_state)) if cs else None,
            "requests": dict(resources.requests or {}) if resources else None,
            "limits": dict(resources.limits or {}) if resources else None,
            "readiness_probe": probe_text(c.readiness_probe),
            "liveness_probe": probe_text(c.liveness_probe),
            "startup_probe": probe_text(c.startup_probe),
        }
    )


def pod_detail(pod: k8s.V1Pod) -> Row:
    """What ``kubectl describe pod`` shows, minus the noise."""
    statuses = {cs.name: cs for cs in (pod.status.container_statuses if pod.status else None) or []}
    containers = [_container_row(c, statuses.get(c.name)) for c in (pod.spec.containers if pod.spec else [])]
    init_statuses = {cs.name: cs for cs in (pod.status.init_container_statuses if pod.status else None) or []}
    init_containers = [
        {**_container_row(c, init_statuses.get(c.name)), "sidecar": c.restart_policy == "Always"}
        for c in (pod.spec.init_containers if pod.spec else None) or []
    ]
    conditions = [
        _clean({"type": c.type, "status": c.status, "reason": c.reason, "message": c.message})
        for c in (pod.status.conditions if pod.status else None) or []
    ]
    claims = [
        v.persistent_volume_claim.claim_name
        for v in (pod.spec.volumes if pod.spec else None) or []
        if v.persistent_volume_claim is not None
    ]
    return _clean(
        {
            **pod_row(pod),
            "ip": pod.status.pod_ip if pod.status else None,
            "labels": dict(meta(pod).labels or {}),
            "reason": pod.status.reason if pod.status else None,
            "message": pod.status.message if pod.status else None,
            "conditions": conditions,
            "containers": containers,
            "init_containers": init_containers,
            "scheduling_gates": [g.name for g in (pod.spec.scheduling_gates if pod.spec else None) or []],
            "persistent_volume_claims": claims,
        }
    )


def event_time(event: k8s.CoreV1Event) -> datetime:
    return (
        event.last_timestamp
        or event.event_time
        or meta(event).creation_timestamp
        or datetime.min.replace(tzinfo=UTC)
    )


def sort_events(events: list[k8s.CoreV1Event]) -> list[k8s.CoreV1Event]:
    """Warnings first, then newest first."""
    newest = sorted(events, key=event_time, reverse=True)
    return sorted(newest, key=lambda e: e.type != "Warning")


def event_row(event: k8s.CoreV1Event) -> Row:
    obj = event.involved_object
    return _clean(
        {
            "type": event.type,
            "reason": event.reason,
            "object": f"{obj.kind}/{obj.name}",
            "namespace": meta(event).namespace,
            "message": event.message,
            "count": event.count,
            "last_seen": age(event_time(event)) + " ago",
            "source": event.source.component if event.source else None,
        }
    )


def rollout_state(dep: k8s.V1Deployment) -> tuple[str, str]:
    """(complete | progressing | stalled, the ``kubectl rollout status`` sentence)."""
    name, spec, status = meta(dep).name, dep.spec, dep.status or k8s.V1DeploymentStatus()
    desired = spec.replicas if spec and spec.replicas is not None else 1
    updated, available = status.updated_replicas or 0, status.available_replicas or 0
    if (meta(dep).generation or 0) > (status.observed_generation or 0):
        return "progressing", "Waiting for deployment spec update to be observed..."
    progressing = next((c for c in status.conditions or [] if c.type == "Progressing"), None)
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        return "stalled", f'deployment "{name}" exceeded its progress deadline'
    if updated < desired:
        new = f"{updated} out of {desired} new replicas have been updated"
        return "progressing", f'Waiting for deployment "{name}" rollout to finish: {new}...'
    if (status.replicas or 0) > updated:
        old = (status.replicas or 0) - updated
        return (
            "progressing",
            f'Waiting for deployment "{name}" rollout to finish: {old} old replicas are pending termination',
        )
    if available < updated:
        ready = f"{available} of {updated} updated replicas are available"
        return "progressing", f'Waiting for deployment "{name}" rollout to finish: {ready}...'
    return "complete", f'deployment "{name}" successfully rolled out'


def deployment_row(dep: k8s.V1Deployment) -> Row:
    status = dep.status or k8s.V1DeploymentStatus()
    desired = dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1
    state, message = rollout_state(dep)
    containers = dep.spec.template.spec.containers if dep.spec and dep.spec.template.spec else []
    return _clean(
        {
            "namespace": meta(dep).namespace,
            "name": meta(dep).name,
            "desired": desired,
            "updated": status.updated_replicas or 0,
            "ready": status.ready_replicas or 0,
            "available": status.available_replicas or 0,
            "unavailable": status.unavailable_replicas or 0,
            "images": [c.image for c in containers],
            "rollout": state,
            "progressing": state == "progressing",
            "rollout_message": message,
            "conditions": [
                _clean({"type": c.type, "status": c.status, "reason": c.reason, "message": c.message})
                for c in status.conditions or []
            ],
            "age": age(meta(dep).creation_timestamp),
        }
    )


def _addresses(addresses: list[k8s.V1EndpointAddress] | None) -> list[Row]:
    return [
        _clean({"ip": a.ip, "pod": a.target_ref.name if a.target_ref else None, "node": a.node_name})
        for a in addresses or []
    ]


def service_row(svc: k8s.V1Service, endpoints: k8s.V1Endpoints | None) -> Row:
    ready: list[Row] = []
    not_ready: list[Row] = []
    for subset in (endpoints.subsets if endpoints else None) or []:
        ready += _addresses(subset.addresses)
        not_ready += _addresses(subset.not_ready_addresses)
    spec = svc.spec or k8s.V1ServiceSpec()
    ports = [f"{p.port}->{p.target_port or p.port}/{p.protocol or 'TCP'}" for p in spec.ports or []]
    return {
        "namespace": meta(svc).namespace,
        "name": meta(svc).name,
        "type": spec.type,
        "cluster_ip": spec.cluster_ip,
        "selector": dict(spec.selector or {}),
        "ports": ports,
        "ready_addresses": ready,
        "not_ready_addresses": not_ready,
        "has_ready_endpoints": bool(ready),
    }


def node_row(node: k8s.V1Node) -> Row:
    conditions = {c.type: c for c in (node.status.conditions if node.status else None) or []}
    ready = conditions.get("Ready")
    spec = node.spec or k8s.V1NodeSpec()
    status = "Ready" if ready is not None and ready.status == "True" else "NotReady"
    if spec.unschedulable:
        status += ",SchedulingDisabled"
    labels = meta(node).labels or {}
    info = node.status.node_info if node.status else None
    return _clean(
        {
            "name": meta(node).name,
            "status": status,
            "ready": ready.status if ready else "Unknown",
            "ready_reason": ready.reason if ready else None,
            "ready_message": ready.message if ready else None,
            "last_heartbeat": age(ready.last_heartbeat_time) + " ago"
            if ready and ready.last_heartbeat_time
            else None,
            "pressure": [t for t, c in conditions.items() if t != "Ready" and c.status == "True"],
            "condition_messages": {
                t: c.message
                for t, c in conditions.items()
                if t != "Ready" and c.status == "True" and c.message
            },
            "taints": [f"{t.key}{'=' + t.value if t.value else ''}:{t.effect}" for t in spec.taints or []],
            "roles": sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")),
            "version": info.kubelet_version if info else None,
            "age": age(meta(node).creation_timestamp),
        }
    )


def pvc_row(pvc: k8s.V1PersistentVolumeClaim) -> Row:
    spec = pvc.spec or k8s.V1PersistentVolumeClaimSpec()
    requests = spec.resources.requests if spec.resources else None
    status = pvc.status or k8s.V1PersistentVolumeClaimStatus()
    return _clean(
        {
            "namespace": meta(pvc).namespace,
            "name": meta(pvc).name,
            "phase": status.phase,
            "storage_class": spec.storage_class_name,
            "requested": (requests or {}).get("storage"),
            "capacity": (status.capacity or {}).get("storage"),
            "volume": spec.volume_name,
            "access_modes": list(spec.access_modes or []),
            "age": age(meta(pvc).creation_timestamp),
        }
    )
