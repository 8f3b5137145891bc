"""Autoscaling and resource metrics of the emulator: autoscaling/v2 HorizontalPodAutoscalers and the
``metrics.k8s.io/v1beta1`` PodMetrics that metrics-server serves.

A scenario's ``hpas`` entry names its target deployment, min/max and current/desired replicas and its
metrics (``{resource: cpu, target: 70, current: 95}`` in percent of requests); the conditions follow
the HPA controller: an HPA whose desired count is at ``max`` is ``ScalingLimited`` (``TooManyReplicas``).
A pod container's ``usage: {cpu: 250m, memory: 200Mi}`` becomes that pod's PodMetrics, as the kubelet's
summary API would report it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from incidentfox.emulators.kubernetes_fields import Obj, condition, object_meta, timestamp


def _metric(spec: Mapping[str, Any]) -> tuple[Obj, Obj]:
    """(spec metric, status metric) for a Resource metric with a utilization target."""
    name = str(spec.get("resource", "cpu"))
    target = {"type": "Utilization", "averageUtilization": int(spec["target"])}
    current: Obj = {"averageUtilization": int(spec["current"])}
    if spec.get("value") is not None:
        current["averageValue"] = str(spec["value"])
    return (
        {"type": "Resource", "resource": {"name": name, "target": target}},
        {"type": "Resource", "resource": {"name": name, "current": current}},
    )


def build_hpa(spec: Mapping[str, Any], namespace: str, now: datetime) -> Obj:
    name = str(spec["name"])
    target = str(spec.get("target", name))
    low, high = int(spec.get("min", 1)), int(spec["max"])
    current, desired = int(spec.get("current", low)), int(spec.get("desired", spec.get("current", low)))
    metrics = [_metric(m) for m in spec.get("metrics") or []]
    able = condition("AbleToScale", True, now, "ReadyForNewScale", "recommended size matches current size")
    active = condition(
        "ScalingActive",
        bool(metrics),
        now,
        "ValidMetricFound" if metrics else "FailedGetResourceMetric",
        "the HPA was able to successfully calculate a replica count from cpu resource utilization"
        if metrics
        else "the HPA was unable to compute the replica count: unable to get metrics for resource cpu",
    )
    if desired >= high:
        limited = condition(
            "ScalingLimited",
            True,
            now,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    else:
        limited = condition(
            "ScalingLimited",
            False,
            now,
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
        )
    status: Obj = {
        "currentReplicas": current,
        "desiredReplicas": desired,
        "currentMetrics": [m[1] for m in metrics],
        "conditions": [able, active, limited],
    }
    if spec.get("last_scale_age"):
        status["lastScaleTime"] = timestamp(now, spec["last_scale_age"])
    return {
        "metadata": object_meta("HorizontalPodAutoscaler", name, namespace, now, spec.get("age", "30d")),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": str(spec.get("kind", "Deployment")),
                "name": target,
            },
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [m[0] for m in metrics],
        },
        "status": status,
    }


def build_pod_metrics(pod: Obj, usage: Mapping[str, Mapping[str, Any]], now: datetime) -> Obj | None:
    """The PodMetrics of a running pod whose containers state ``usage``; ``None`` when none do."""
    if not usage or not pod["spec"].get("nodeName"):
        return None
    meta = pod["metadata"]
    return {
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "creationTimestamp": timestamp(now, 0),
            "labels": dict(meta.get("labels") or {}),
        },
        "timestamp": timestamp(now, "15s"),
        "window": "15.034s",
        "containers": [
            {"name": name, "usage": {k: str(v) for k, v in values.items()}} for name, values in usage.items()
        ],
    }
