"""Scaling and availability: HorizontalPodAutoscalers that cannot scale, and PodDisruptionBudgets
that protect nothing or block every eviction.

* HPA (autoscaling/v2): a scale target that does not exist or is of a kind that cannot scale, metrics
  it cannot read (``ScalingActive=False``, ``FailedGetResourceMetric`` events), pinned at its maximum
  (``ScalingLimited`` ``TooManyReplicas``, quoted with the metric against its target), and a target
  whose containers have no request for a resource the HPA scales on as a utilization (the HPA cannot
  compute a percentage of nothing).
* PDB (policy/v1): selecting no pods, or allowing zero disruptions while it expects pods, which stalls
  every node drain and cluster upgrade.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.kind_reads import (
    event_quote,
    events_of,
    list_objects,
    name_of,
    object_finding,
    scope,
    selector_text,
)
from incidentfox.agents.rca import Evidence
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient

_NOT_READ = object()


def _readers(client: KubernetesClient) -> dict[str, Callable[..., Any]]:
    """The scalable kinds (``/scale`` subresource) an HPA may target, with how to read them."""
    apps = client.apps
    return {
        "Deployment": apps.read_namespaced_deployment,
        "StatefulSet": apps.read_namespaced_stateful_set,
        "ReplicaSet": apps.read_namespaced_replica_set,
        "ReplicationController": client.core.read_namespaced_replication_controller,
    }


async def _target(client: KubernetesClient, ns: str, kind: str, name: str) -> Any:
    """The target object, ``None`` when it does not exist, ``_NOT_READ`` when it could not be read."""
    try:
        return await client.call(_readers(client)[kind], name, ns)
    except ApiException as exc:
        return None if exc.status == 404 else _NOT_READ
    except Exception:
        return _NOT_READ


def _condition(
    hpa: k8s.V2HorizontalPodAutoscaler, kind: str
) -> k8s.V2HorizontalPodAutoscalerCondition | None:
    return next((c for c in (hpa.status.conditions if hpa.status else None) or [] if c.type == kind), None)


def _metric_lines(hpa: k8s.V2HorizontalPodAutoscaler) -> list[str]:
    """``cpu: 160% (target 70%)`` for every resource utilization metric."""
    current = {
        m.resource.name: m.resource.current.average_utilization
        for m in (hpa.status.current_metrics if hpa.status else None) or []
        if m.type == "Resource" and m.resource and m.resource.current
    }
    lines = []
    for metric in (hpa.spec.metrics if hpa.spec else None) or []:
        if metric.type == "Resource" and metric.resource and metric.resource.target:
            target = metric.resource.target.average_utilization
            now = current.get(metric.resource.name)
            lines.append(
                f"{metric.resource.name}: {f'{now}%' if now is not None else '<unknown>'} (target {target}%)"
            )
    return lines


def _missing_requests(hpa: k8s.V2HorizontalPodAutoscaler, target: Any) -> list[tuple[str, str]]:
    """(container, resource) pairs the HPA scales on by utilization but the target does not request."""
    template = target.spec.template if getattr(target, "spec", None) else None
    containers = (template.spec.containers if template and template.spec else None) or []
    wanted = [
        m.resource.name
        for m in (hpa.spec.metrics if hpa.spec else None) or []
        if m.type == "Resource"
        and m.resource
        and m.resource.target
        and m.resource.target.type == "Utilization"
    ]
    return [
        (c.name, resource)
        for resource in wanted
        for c in containers
        if resource not in ((c.resources.requests if c.resources else None) or {})
    ]


async def _hpa(client: KubernetesClient, hpa: k8s.V2HorizontalPodAutoscaler) -> list[Finding]:
    ns, name = name_of(hpa)
    ref = hpa.spec.scale_target_ref if hpa.spec else None
    if ref is None:
        return []
    spec_source = f"hpa {ns}/{name} (spec)"
    target_text = f"scaleTargetRef: {ref.kind}/{ref.name}"
    related = [f"{ref.kind.lower()}/{ns}/{ref.name}"]
    if ref.kind not in _readers(client):
        return [
            object_finding(
                "missing_reference",
                "critical",
                "HPA",
                ns,
                name,
                summary=f"HPA {ns}/{name} targets {ref.kind}/{ref.name}, a kind it cannot scale.",
                root_cause=f"HPA {ns}/{name} targets a {ref.kind}, which has no scale subresource the HPA "
                "supports (Deployment, StatefulSet, ReplicaSet), so it never scales.",
                evidence=(Evidence(quote=target_text, source=spec_source),),
                immediate=(f"Point the HPA at the Deployment or StatefulSet behind {ref.name}.",),
                decisive=True,
                workload=ref.name,
            )
        ]
    target = await _target(client, ns, ref.kind, ref.name)
    if target is _NOT_READ:
        return []
    if target is None:
        plural = {"Deployment": "deployments.apps", "StatefulSet": "statefulsets.apps"}.get(
            ref.kind, ref.kind.lower()
        )
        evidence = [
            Evidence(quote=target_text, source=spec_source),
            Evidence(
                quote=f'{plural} "{ref.name}" not found', source=f"{ref.kind.lower()} {ns}/{ref.name} (API)"
            ),
        ]
        scale_events = [
            e
            for e in await events_of(client, ns, "HorizontalPodAutoscaler", name)
            if e.reason == "FailedGetScale"
        ]
        if scale_events:
            evidence.insert(
                0, Evidence(quote=event_quote(scale_events[0]), source=f"hpa {ns}/{name} (events)")
            )
        able = _condition(hpa, "AbleToScale")
        if able is not None and able.status == "False":
            evidence.insert(
                0,
                Evidence(
                    quote=f"AbleToScale=False {able.reason}: {able.message}",
                    source=f"hpa {ns}/{name} (conditions)",
                ),
            )
        return [
            object_finding(
                "missing_reference",
                "critical",
                "HPA",
                ns,
                name,
                summary=f"HPA {ns}/{name} targets {ref.kind} {ref.name}, which does not exist.",
                root_cause=f"The scale target {ref.kind}/{ref.name} of HPA {ns}/{name} does not exist, so "
                "nothing is autoscaled (renamed or deleted workload?).",
                evidence=evidence,
                immediate=(
                    f"Point scaleTargetRef at the current workload (kubectl get deploy,sts -n {ns}) or "
                    "delete the stale HPA.",
                ),
                decisive=True,
                workload=ref.name,
            )
        ]
    found: list[Finding] = []
    missing = _missing_requests(hpa, target)
    if missing:
        pairs = ", ".join(f"{c} has no {r} request" for c, r in missing)
        found.append(
            object_finding(
                "scaling_limited",
                "warning",
                "HPA",
                ns,
                name,
                summary=f"HPA {ns}/{name} scales on utilization but {ref.kind} {ref.name} "
                f"sets no requests: {pairs}.",
                root_cause=f"HPA {ns}/{name} scales {ref.name} on a percentage of requests, but {pairs}; "
                "the HPA cannot compute utilization and does not scale.",
                evidence=(
                    Evidence(quote="; ".join(_metric_lines(hpa)) or target_text, source=spec_source),
                    Evidence(
                        quote=f"container {missing[0][0]}: resources.requests has no {missing[0][1]}",
                        source=f"{ref.kind.lower()} {ns}/{ref.name} (pod template)",
                    ),
                ),
                immediate=(f"Set resources.requests.{missing[0][1]} on every container of {ref.name}.",),
                decisive=True,
                related=related,
                workload=ref.name,
            )
        )
    active = _condition(hpa, "ScalingActive")
    metric_events = [
        e for e in await events_of(client, ns, "HorizontalPodAutoscaler", name) if "Metric" in str(e.reason)
    ]
    if not missing and ((active is not None and active.status == "False") or metric_events):
        evidence = []
        if metric_events:
            evidence.append(Evidence(quote=event_quote(metric_events[0]), source=f"hpa {ns}/{name} (events)"))
        if active is not None and active.status == "False":
            evidence.append(
                Evidence(
                    quote=f"ScalingActive=False {active.reason}: {active.message}",
                    source=f"hpa {ns}/{name} (conditions)",
                )
            )
        found.append(
            object_finding(
                "scaling_limited",
                "warning",
                "HPA",
                ns,
                name,
                summary=f"HPA {ns}/{name} cannot read its metrics, so {ref.name} is not autoscaled.",
                root_cause=f"HPA {ns}/{name} cannot get the metrics it scales {ref.name} on: "
                f"{(metric_events[0].message if metric_events else active.message if active else '')}",
                evidence=evidence,
                immediate=(
                    "Check metrics-server (kubectl get apiservice v1beta1.metrics.k8s.io; "
                    "kubectl top pods) or the adapter serving custom/external metrics.",
                ),
                decisive=True,
                related=related,
                workload=ref.name,
            )
        )
    limited = _condition(hpa, "ScalingLimited")
    status = hpa.status
    at_max = bool(limited and limited.status == "True" and limited.reason == "TooManyReplicas")
    if at_max and status is not None and hpa.spec is not None:
        metrics = _metric_lines(hpa)
        evidence = [
            Evidence(
                quote=f"ScalingLimited=True TooManyReplicas: {limited.message if limited else ''}",
                source=f"hpa {ns}/{name} (conditions)",
            ),
            Evidence(
                quote=f"Replicas: {status.current_replicas} current / {hpa.spec.max_replicas} max "
                f"(desired {status.desired_replicas})" + (f"; {'; '.join(metrics)}" if metrics else ""),
                source=f"hpa {ns}/{name} (status)",
            ),
        ]
        found.append(
            object_finding(
                "scaling_limited",
                "warning",
                "HPA",
                ns,
                name,
                summary=f"HPA {ns}/{name} is pinned at its maximum of {hpa.spec.max_replicas} replicas"
                + (f" ({metrics[0]})." if metrics else "."),
                root_cause=f"{ref.kind} {ns}/{ref.name} needs more replicas than HPA {name} allows "
                f"(max {hpa.spec.max_replicas})"
                + (f": {'; '.join(metrics)}" if metrics else "")
                + "; the pods are overloaded.",
                evidence=evidence,
                immediate=(
                    f"Raise maxReplicas of HPA {name} if the cluster has room, or find what made each "
                    f"pod of {ref.name} busier (a deploy, a traffic spike).",
                ),
                follow_up=("Alert when an HPA sits at maxReplicas for more than 15 minutes.",),
                decisive=False,
                related=related,
                workload=ref.name,
            )
        )
    return found


def _pdb(pdb: k8s.V1PodDisruptionBudget) -> Finding | None:
    ns, name = name_of(pdb)
    spec, status = pdb.spec, pdb.status
    if spec is None or status is None:
        return None
    selector = selector_text(spec.selector)
    rule = (
        f"minAvailable: {spec.min_available}"
        if spec.min_available is not None
        else f"maxUnavailable: {spec.max_unavailable}"
    )
    counts = (
        f"Allowed disruptions: {status.disruptions_allowed}; current healthy {status.current_healthy}, "
        f"desired healthy {status.desired_healthy}, expected pods {status.expected_pods}"
    )
    if not status.expected_pods:
        return object_finding(
            "selects_nothing",
            "warning",
            "PodDisruptionBudget",
            ns,
            name,
            summary=f"PodDisruptionBudget {ns}/{name} selects no pods ({selector or 'empty selector'}).",
            root_cause=f"The selector {selector} of PodDisruptionBudget {ns}/{name} matches no pod, so it "
            "protects nothing during drains (a renamed label?).",
            evidence=(
                Evidence(quote=f"Selector: {selector}; {rule}", source=f"pdb {ns}/{name} (spec)"),
                Evidence(quote=counts, source=f"pdb {ns}/{name} (status)"),
            ),
            immediate=(f"Fix the selector to the pods' labels (kubectl get pods -n {ns} --show-labels).",),
            decisive=True,
        )
    if status.disruptions_allowed:
        return None
    unhealthy = (status.current_healthy or 0) < (status.desired_healthy or 0)
    why = (
        f"only {status.current_healthy} of the {status.desired_healthy} pods it must keep are healthy"
        if unhealthy
        else f"{rule} leaves no pod of {status.expected_pods} that may be evicted"
    )
    return object_finding(
        "disruption_blocked",
        "warning",
        "PodDisruptionBudget",
        ns,
        name,
        summary=f"PodDisruptionBudget {ns}/{name} allows 0 disruptions: node drains and upgrades will hang.",
        root_cause=f"PodDisruptionBudget {ns}/{name} blocks every eviction of its pods ({selector}): {why}.",
        evidence=(
            Evidence(quote=counts, source=f"pdb {ns}/{name} (status)"),
            Evidence(quote=f"Selector: {selector}; {rule}", source=f"pdb {ns}/{name} (spec)"),
        ),
        immediate=(
            "Fix the unhealthy pods it counts first."
            if unhealthy
            else "Scale the workload above the budget or use maxUnavailable: 1 instead of minAvailable.",
        ),
        decisive=True,
    )


async def analyze(client: KubernetesClient, namespace: str | None) -> list[Finding]:
    """Findings for the HPAs and PodDisruptionBudgets of ``namespace`` (``None``: all namespaces)."""
    ns = scope(client, namespace)
    autoscaling, policy = k8s.AutoscalingV2Api(client.api), k8s.PolicyV1Api(client.api)
    reads: list[Any] = await asyncio.gather(
        list_objects(
            client,
            autoscaling.list_namespaced_horizontal_pod_autoscaler,
            autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
            ns,
            "horizontalpodautoscalers",
        ),
        list_objects(
            client,
            policy.list_namespaced_pod_disruption_budget,
            policy.list_pod_disruption_budget_for_all_namespaces,
            ns,
            "poddisruptionbudgets",
        ),
    )
    hpas, pdbs = reads
    groups = await asyncio.gather(*(_hpa(client, h) for h in hpas or []))
    found = [f for group in groups for f in group]
    found.extend(f for f in (_pdb(p) for p in pdbs or []) if f is not None)
    return found
