"""Pure functions for the kubernetes signal tools: revisions, autoscalers, usage and event groups.

Like ``kubernetes_views`` they follow kubectl's reading (``kubectl rollout history``, ``kubectl get hpa``'s
TARGETS column ``cpu: 160%/70%``, ``kubectl top pods``) so that a model and a human see the same words.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from kubernetes import client as k8s
from kubernetes.utils import parse_quantity

from incidentfox.agents.toolsets.kubernetes_views import Row, age, event_time, meta

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"


def revision_of(obj: Any) -> int | None:
    """The ``deployment.kubernetes.io/revision`` annotation as a number, if there is one."""
    value = (meta(obj).annotations or {}).get(REVISION)
    return int(value) if value and value.isdigit() else None


def _clean(row: Row) -> Row:
    return {k: v for k, v in row.items() if v not in (None, "", [], {})}


def _conditions(conditions: list[Any] | None) -> list[Row]:
    return [
        _clean({"type": c.type, "status": c.status, "reason": c.reason, "message": c.message})
        for c in conditions or []
    ]


def revision_row(rs: k8s.V1ReplicaSet, current: int | None) -> Row:
    """One line of ``kubectl rollout history`` with what the replica set runs and holds."""
    spec, status = rs.spec, rs.status or k8s.V1ReplicaSetStatus(replicas=0)
    template = spec.template if spec else None
    containers = template.spec.containers if template and template.spec else []
    created = meta(rs).creation_timestamp
    revision = revision_of(rs)
    return {
        "revision": revision,
        "current": revision is not None and revision == current,
        "replicaset": meta(rs).name,
        "images": [c.image for c in containers],
        "created": created.isoformat() if created else None,
        "age": age(created),
        "change_cause": (meta(rs).annotations or {}).get(CHANGE_CAUSE),
        "replicas": spec.replicas if spec and spec.replicas is not None else 0,
        "ready": status.ready_replicas or 0,
    }


def _target_text(target: k8s.V2MetricTarget | None) -> str:
    if target is None:
        return "?"
    if target.average_utilization is not None:
        return f"{target.average_utilization}%"
    return str(target.average_value or target.value or "?")


def _current_text(current: k8s.V2MetricValueStatus | None) -> str:
    if current is None:
        return "<unknown>"
    if current.average_utilization is not None:
        return f"{current.average_utilization}%"
    return str(current.average_value or current.value or "<unknown>")


def _metric_source(metric: Any) -> tuple[str, Any]:
    """(what is measured, the typed source or status) of a v2 MetricSpec or MetricStatus."""
    for field in ("resource", "container_resource", "pods", "object", "external"):
        source = getattr(metric, field, None)
        if source is None:
            continue
        if field in ("resource", "container_resource"):
            return str(source.name), source
        return f"{field} {source.metric.name}", source
    return str(metric.type), None


def _metrics(hpa: k8s.V2HorizontalPodAutoscaler) -> list[Row]:
    """Each spec metric with its current value: ``{"metric": "cpu", "current": "160%", "target": "70%"}``."""
    current: dict[str, str] = {}
    for status in (hpa.status.current_metrics if hpa.status else None) or []:
        name, source = _metric_source(status)
        current[name] = _current_text(source.current if source is not None else None)
    rows = []
    for spec in (hpa.spec.metrics if hpa.spec else None) or []:
        name, source = _metric_source(spec)
        target = _target_text(source.target if source is not None else None)
        rows.append({"metric": name, "current": current.get(name, "<unknown>"), "target": target})
    return rows


def hpa_row(hpa: k8s.V2HorizontalPodAutoscaler) -> Row:
    spec = hpa.spec
    status = hpa.status or k8s.V2HorizontalPodAutoscalerStatus(desired_replicas=0)
    ref = spec.scale_target_ref if spec else None
    high = spec.max_replicas if spec else 0
    current = status.current_replicas or 0
    conditions = _conditions(status.conditions)
    limited = next((c for c in conditions if c["type"] == "ScalingLimited"), None)
    return _clean(
        {
            "namespace": meta(hpa).namespace,
            "name": meta(hpa).name,
            "target": f"{ref.kind}/{ref.name}" if ref else None,
            "min": spec.min_replicas if spec and spec.min_replicas is not None else 1,
            "max": high,
            "current": current,
            "desired": status.desired_replicas,
            "at_max": bool(high) and current >= high,
            "scaling_limited": bool(limited and limited.get("status") == "True"),
            "metrics": _metrics(hpa),
            "conditions": conditions,
            "last_scale": age(status.last_scale_time) + " ago" if status.last_scale_time else None,
        }
    )


def _percent(used: Decimal | None, of: Decimal | None) -> int | None:
    return round(used * 100 / of) if used is not None and of else None


def _quantity(value: Any) -> Decimal | None:
    try:
        return Decimal(parse_quantity(value)) if value is not None else None
    except ValueError:
        return None


def _resource(usage: Row, requests: Row, limits: Row, name: str) -> Row:
    used = _quantity(usage.get(name))
    return _clean(
        {
            "usage": usage.get(name),
            "request": requests.get(name),
            "limit": limits.get(name),
            "of_request_pct": _percent(used, _quantity(requests.get(name))),
            "of_limit_pct": _percent(used, _quantity(limits.get(name))),
        }
    )


def usage_row(metrics: Row, pod: k8s.V1Pod | None) -> Row:
    """One pod's ``kubectl top`` usage per container beside its requests and limits."""
    specs = {c.name: c for c in (pod.spec.containers if pod and pod.spec else [])}
    containers: list[Row] = []
    highest = 0
    for container in metrics.get("containers") or []:
        name = str(container.get("name"))
        usage = dict(container.get("usage") or {})
        resources = specs[name].resources if name in specs else None
        requests = dict(resources.requests or {}) if resources else {}
        limits = dict(resources.limits or {}) if resources else {}
        cpu, memory = (_resource(usage, requests, limits, r) for r in ("cpu", "memory"))
        containers.append({"name": name, "cpu": cpu, "memory": memory})
        highest = max(highest, cpu.get("of_limit_pct", 0), memory.get("of_limit_pct", 0))
    return {
        "pod": (metrics.get("metadata") or {}).get("name"),
        "containers": containers,
        "highest_of_limit_pct": highest,
    }


def event_groups(events: list[k8s.CoreV1Event]) -> list[Row]:
    """Events grouped by (reason, involved object kind), the group with the newest event first."""
    groups: dict[tuple[str, str], Row] = {}
    for event in events:
        kind = event.involved_object.kind if event.involved_object else "?"
        key = (str(event.reason), str(kind))
        group = groups.setdefault(
            key,
            {
                "reason": key[0],
                "kind": key[1],
                "type": event.type,
                "count": 0,
                "events": 0,
                "objects": [],
                "namespaces": [],
                "last_seen": age(event_time(event)) + " ago",
                "example": event.message,
            },
        )
        group["count"] += event.count or 1
        group["events"] += 1
        name = event.involved_object.name if event.involved_object else None
        if name and name not in group["objects"] and len(group["objects"]) < 5:
            group["objects"].append(name)
        if meta(event).namespace and meta(event).namespace not in group["namespaces"]:
            group["namespaces"].append(meta(event).namespace)
    return list(groups.values())


def newest_first(events: list[k8s.CoreV1Event], since: datetime | None) -> list[k8s.CoreV1Event]:
    kept = [e for e in events if since is None or event_time(e) >= since]
    return sorted(kept, key=event_time, reverse=True)
