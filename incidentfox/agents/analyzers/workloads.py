"""Workload controllers: why a Deployment, StatefulSet or DaemonSet runs fewer pods than it should.

* Deployments past their progress deadline or short of replicas, explained by their newest
  ReplicaSet's warning events: an exhausted ResourceQuota (``FailedCreate … exceeded quota``, quoted
  with the quota's used and hard values) or a webhook that refuses pod creation (``related`` names it).
  A deployment whose pods all exist but some are unready, within its deadline, gets no finding of its
  own: the pod findings tell that story, and a second one would only repeat it.
* StatefulSets whose governing Service is missing, whose volume claim templates name a StorageClass
  that does not exist, or whose rollout is stuck (a new revision not rolled out to every replica, or
  replicas never created because an earlier one is not ready).
* DaemonSets with unavailable pods, and image pull secrets that do not exist (checked as metadata
  only; no Secret's data is read).
* Jobs and CronJobs: see ``workload_jobs``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

from kubernetes import client as k8s

from incidentfox.agents.analyzers import workload_jobs
from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.kind_reads import (
    event_quote,
    events_of,
    labels_match,
    list_cluster,
    list_objects,
    name_of,
    object_finding,
    pod_is_ready,
    pod_keys,
    scope,
    secret_exists,
    selector_text,
)
from incidentfox.agents.rca import Evidence
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient
from incidentfox.agents.toolsets.kubernetes_views import meta

REVISION = "deployment.kubernetes.io/revision"
_QUOTA = re.compile(r"exceeded quota: ([a-z0-9.-]+)")
_WEBHOOK = re.compile(r'(?:admission webhook|failed calling webhook) "([^"]+)"')


def _pods_of(pods: list[k8s.V1Pod], namespace: str, selector: k8s.V1LabelSelector | None) -> list[k8s.V1Pod]:
    wanted = (selector.match_labels if selector else None) or {}
    return [
        p for p in pods if meta(p).namespace == namespace and wanted and labels_match(wanted, meta(p).labels)
    ]


def _revision(rs: k8s.V1ReplicaSet) -> int:
    value = (meta(rs).annotations or {}).get(REVISION, "0")
    return int(value) if value.isdigit() else 0


def _quota_line(quotas: list[k8s.V1ResourceQuota], namespace: str, name: str) -> str | None:
    quota = next((q for q in quotas if name_of(q) == (namespace, name)), None)
    if quota is None or quota.status is None:
        return None
    hard, used = quota.status.hard or {}, quota.status.used or {}
    full = [k for k in sorted(hard) if used.get(k) == hard[k]] or sorted(hard)
    return f"ResourceQuota {name}: " + ", ".join(f"{k} used {used.get(k, '0')} of {hard[k]}" for k in full)


async def _deployment(
    client: KubernetesClient,
    dep: k8s.V1Deployment,
    replicasets: list[k8s.V1ReplicaSet],
    pods: list[k8s.V1Pod],
    quotas: list[k8s.V1ResourceQuota],
) -> Finding | None:
    ns, name = name_of(dep)
    spec, status = dep.spec, dep.status or k8s.V1DeploymentStatus()
    desired = spec.replicas if spec and spec.replicas is not None else 1
    available = status.available_replicas or 0
    progressing = next((c for c in status.conditions or [] if c.type == "Progressing"), None)
    stalled = progressing is not None and progressing.reason == "ProgressDeadlineExceeded"
    if (spec and spec.paused) or (not stalled and available >= desired):
        return None
    own_rs = sorted(
        (rs for rs in replicasets if any(r.uid == meta(dep).uid for r in meta(rs).owner_references or [])),
        key=_revision,
        reverse=True,
    )
    evidence: list[Evidence] = []
    if stalled and progressing is not None:
        evidence.append(
            Evidence(
                quote=f"Progressing=False ProgressDeadlineExceeded: {progressing.message}",
                source=f"deployment {ns}/{name} (conditions)",
            )
        )
    counts = (
        f"Replicas: {desired} desired | {status.updated_replicas or 0} updated | "
        f"{status.ready_replicas or 0} ready | {available} available"
    )
    evidence.append(Evidence(quote=counts, source=f"deployment {ns}/{name} (status)"))
    failed = None
    if own_rs:
        rs_name = name_of(own_rs[0])[1]
        failed = next(iter(await events_of(client, ns, "ReplicaSet", rs_name)), None)
        if failed is not None:
            evidence.insert(
                0, Evidence(quote=event_quote(failed), source=f"replicaset {ns}/{rs_name} (events)")
            )
    own_pods = _pods_of(pods, ns, spec.selector if spec else None)
    message = str(failed.message or "") if failed is not None else ""
    quota = _QUOTA.search(message)
    webhook = _WEBHOOK.search(message)
    short = f"{available} of {desired} replicas available"
    what = "has exceeded its progress deadline" if stalled else "is short of replicas"
    related = pod_keys(own_pods)
    if quota:
        line = _quota_line(quotas, ns, quota.group(1))
        if line:
            evidence.insert(1, Evidence(quote=line, source=f"resourcequota {ns}/{quota.group(1)} (status)"))
        return object_finding(
            "quota_exceeded",
            "critical",
            "Deployment",
            ns,
            name,
            summary=f"Deployment {ns}/{name} {what} ({short}): ResourceQuota {quota.group(1)} is exhausted.",
            root_cause=f"The ReplicaSet of deployment {ns}/{name} cannot create pods: {message}",
            evidence=evidence,
            immediate=(
                f"Raise ResourceQuota {quota.group(1)} in namespace {ns} or free capacity under it "
                f"(kubectl describe resourcequota -n {ns} {quota.group(1)}).",
            ),
            follow_up=("Alert when a namespace's quota usage passes 80%.",),
            decisive=True,
            related=[f"resourcequota/{ns}/{quota.group(1)}", *related],
        )
    if failed is None and not stalled and len(own_pods) >= desired:
        return None  # every pod exists and some are unready: the pod findings are the story
    if webhook:
        related.insert(0, f"webhook/{webhook.group(1)}")
    if failed is not None:
        cause = f"its ReplicaSet cannot create pods: {message}"
    elif own_pods and not all(pod_is_ready(p) for p in own_pods):
        not_ready = [name_of(p)[1] for p in own_pods if not pod_is_ready(p)]
        cause = f"{len(not_ready)} of its {len(own_pods)} pods are not ready ({', '.join(not_ready[:5])})"
    else:
        cause = "no ReplicaSet event or pod explains it"
    return object_finding(
        "rollout_stuck",
        "critical" if stalled or available == 0 else "warning",
        "Deployment",
        ns,
        name,
        summary=f"Deployment {ns}/{name} {what} ({short}).",
        root_cause=f"Deployment {ns}/{name} {what}: {cause}.",
        evidence=evidence,
        immediate=(
            f"Fix what keeps the pods of {name} from starting (see the pod findings), or roll back: "
            f"kubectl rollout undo -n {ns} deployment/{name}.",
        ),
        follow_up=("Alert on deployments whose Progressing condition is False.",),
        decisive=failed is not None,
        related=related,
    )


def _with_evidence(found: list[Finding], causes: list[Finding], counts: Evidence) -> list[Finding]:
    """``found`` with the replica counts added to the findings that explain them, instead of a
    separate ``rollout_stuck`` finding for the same workload."""
    return [dataclasses.replace(f, evidence=(*f.evidence, counts)) if f in causes else f for f in found]


async def _statefulset(
    client: KubernetesClient,
    sts: k8s.V1StatefulSet,
    services: set[tuple[str, str]] | None,
    classes: list[k8s.V1StorageClass] | None,
    pods: list[k8s.V1Pod],
) -> list[Finding]:
    ns, name = name_of(sts)
    spec, status = sts.spec, sts.status or k8s.V1StatefulSetStatus(replicas=0)
    found: list[Finding] = []
    own = _pods_of(pods, ns, spec.selector if spec else None)
    if spec and spec.service_name and services is not None and (ns, spec.service_name) not in services:
        found.append(
            object_finding(
                "missing_reference",
                "warning",
                "StatefulSet",
                ns,
                name,
                summary=f"StatefulSet {ns}/{name} names Service {spec.service_name}, which does not exist.",
                root_cause=f"The governing (headless) Service {ns}/{spec.service_name} of StatefulSet "
                f"{ns}/{name} does not exist, so its pods get no stable DNS names.",
                evidence=(
                    Evidence(
                        quote=f"serviceName: {spec.service_name}", source=f"statefulset {ns}/{name} (spec)"
                    ),
                ),
                immediate=(f"Create a headless Service {spec.service_name} (clusterIP: None) in {ns}.",),
                decisive=True,
                related=pod_keys(own),
            )
        )
    if spec and classes is not None:
        names = {name_of(c)[1] for c in classes}
        default = next(
            (
                name_of(c)[1]
                for c in classes
                if (meta(c).annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
            ),
            None,
        )
        for template in spec.volume_claim_templates or []:
            wanted = (template.spec.storage_class_name if template.spec else None) or default
            if (wanted is not None and wanted in names) or wanted == "":
                continue
            claim = name_of(template)[1]
            pvc = f"{claim}-{name}-0"
            evidence = [
                Evidence(
                    quote=f"volumeClaimTemplates[{claim}].storageClassName: "
                    + (wanted or "(none, and no default class)"),
                    source=f"statefulset {ns}/{name} (spec)",
                ),
                Evidence(
                    quote="StorageClasses: " + (", ".join(sorted(names)) or "none"),
                    source="storageclasses (kubectl get storageclass)",
                ),
            ]
            event = next(iter(await events_of(client, ns, "PersistentVolumeClaim", pvc)), None)
            if event is not None:
                evidence.insert(0, Evidence(quote=event_quote(event), source=f"pvc {ns}/{pvc} (events)"))
            found.append(
                object_finding(
                    "missing_reference",
                    "critical",
                    "StatefulSet",
                    ns,
                    name,
                    summary=f"StatefulSet {ns}/{name} asks for StorageClass {wanted or '(default)'}, "
                    "which does not exist.",
                    root_cause=f"The volume claim template {claim} of StatefulSet {ns}/{name} names "
                    f"StorageClass {wanted or '(default)'}, which the cluster does not have, so its claims "
                    "stay Pending and its pods cannot start.",
                    evidence=evidence,
                    immediate=(
                        f"Point volumeClaimTemplates[{claim}] at an existing StorageClass "
                        f"({', '.join(sorted(names)) or 'create one'}); claim templates are immutable, so "
                        "recreate the StatefulSet with --cascade=orphan.",
                    ),
                    decisive=True,
                    related=[f"pvc/{ns}/{pvc}", *pod_keys(own)],
                )
            )
    blocking = [f for f in found if f.severity == "critical"]
    desired = spec.replicas if spec and spec.replicas is not None else 1
    ready, updated = status.ready_replicas or 0, status.updated_replicas or 0
    rolling = bool(status.update_revision) and status.update_revision != status.current_revision
    stuck = rolling and updated < desired
    if ready < desired and (stuck or blocking or len(own) < desired):
        events = await events_of(client, ns, "StatefulSet", name)
        evidence = [
            Evidence(
                quote=f"Replicas: {desired} desired | {ready} ready | {updated} updated "
                f"(revision {status.current_revision} -> {status.update_revision})"
                if rolling
                else f"Replicas: {desired} desired | {ready} ready",
                source=f"statefulset {ns}/{name} (status)",
            )
        ]
        if events:
            evidence.insert(
                0, Evidence(quote=event_quote(events[0]), source=f"statefulset {ns}/{name} (events)")
            )
        if blocking:
            return _with_evidence(found, blocking, evidence[-1])
        not_ready = [name_of(p)[1] for p in own if not pod_is_ready(p)]
        why = f"pods not ready: {', '.join(not_ready[:5])}" if not_ready else "pods missing"
        found.append(
            object_finding(
                "rollout_stuck",
                "critical" if ready == 0 else "warning",
                "StatefulSet",
                ns,
                name,
                summary=f"StatefulSet {ns}/{name} has {ready} of {desired} replicas ready"
                + (f" and its rollout to {status.update_revision} is stuck." if rolling else "."),
                root_cause=f"StatefulSet {ns}/{name} is short of ready replicas ({why}); with OrderedReady "
                "pod management it will not move on until the unready pod is fixed.",
                evidence=evidence,
                immediate=(
                    f"Fix the first unready pod of {name} (see its findings); if the new revision is bad, "
                    f"kubectl rollout undo -n {ns} statefulset/{name} and delete the stuck pod.",
                ),
                decisive=bool(events),
                related=pod_keys(own),
            )
        )
    return found


async def _daemonset(client: KubernetesClient, ds: k8s.V1DaemonSet, pods: list[k8s.V1Pod]) -> list[Finding]:
    ns, name = name_of(ds)
    spec, status = ds.spec, ds.status
    found: list[Finding] = []
    own = _pods_of(pods, ns, spec.selector if spec else None)
    template = spec.template.spec if spec and spec.template else None
    for ref in (template.image_pull_secrets if template else None) or []:
        if not ref.name or await secret_exists(client, ns, ref.name) is not False:
            continue
        evidence = [
            Evidence(quote=f"imagePullSecrets: {ref.name}", source=f"daemonset {ns}/{name} (pod template)"),
            Evidence(quote=f'secrets "{ref.name}" not found', source=f"secret {ns}/{ref.name} (API)"),
        ]
        for pod in own[:1]:
            event = next(
                (
                    e
                    for e in await events_of(client, ns, "Pod", name_of(pod)[1])
                    if "pull" in str(e.message).lower()
                ),
                None,
            )
            if event is not None:
                evidence.insert(
                    0, Evidence(quote=event_quote(event), source=f"pod {ns}/{name_of(pod)[1]} (events)")
                )
        found.append(
            object_finding(
                "missing_reference",
                "critical",
                "DaemonSet",
                ns,
                name,
                summary=f"DaemonSet {ns}/{name} uses image pull secret {ref.name}, which does not exist.",
                root_cause=f"The pull secret {ref.name} named by DaemonSet {ns}/{name} does not exist in "
                f"namespace {ns}, so nodes cannot pull its private image.",
                evidence=evidence,
                immediate=(
                    f"Create the docker-registry secret {ref.name} in {ns} (or copy it from another "
                    "namespace), then delete the failing pods.",
                ),
                decisive=True,
                related=pod_keys(own),
            )
        )
    if status is None:
        return found
    desired, ready = status.desired_number_scheduled or 0, status.number_ready or 0
    unavailable = status.number_unavailable or max(0, desired - ready)
    if unavailable > 0:
        events = await events_of(client, ns, "DaemonSet", name)
        evidence = [
            Evidence(
                quote=f"Desired: {desired} | Ready: {ready} | Unavailable: {unavailable}",
                source=f"daemonset {ns}/{name} (status)",
            )
        ]
        if events:
            evidence.insert(
                0, Evidence(quote=event_quote(events[0]), source=f"daemonset {ns}/{name} (events)")
            )
        if found:
            return _with_evidence(found, found, evidence[-1])
        selector = spec.selector if spec else None
        nodes = [p.spec.node_name for p in own if p.spec and not pod_is_ready(p)]
        on = f" (not ready on {', '.join(n for n in nodes if n)})" if any(nodes) else ""
        found.append(
            object_finding(
                "rollout_stuck",
                "warning",
                "DaemonSet",
                ns,
                name,
                summary=f"DaemonSet {ns}/{name} has {unavailable} of {desired} pods unavailable{on}.",
                root_cause=f"DaemonSet {ns}/{name} is unavailable on {unavailable} of {desired} nodes{on}.",
                evidence=evidence,
                immediate=(
                    f"Look at the unready pods of {name}: "
                    f"kubectl get pods -n {ns} -l {selector_text(selector)} -o wide.",
                ),
                decisive=bool(events),
                related=pod_keys(own),
            )
        )
    return found


async def analyze(client: KubernetesClient, namespace: str | None) -> list[Finding]:
    """Findings for the Deployments, StatefulSets, DaemonSets, Jobs and CronJobs of ``namespace``."""
    ns = scope(client, namespace)
    apps, core, storage = client.apps, client.core, k8s.StorageV1Api(client.api)
    reads: list[Any] = await asyncio.gather(
        list_objects(
            client,
            apps.list_namespaced_deployment,
            apps.list_deployment_for_all_namespaces,
            ns,
            "deployments",
        ),
        list_objects(
            client,
            apps.list_namespaced_replica_set,
            apps.list_replica_set_for_all_namespaces,
            ns,
            "replicasets",
        ),
        list_objects(
            client,
            apps.list_namespaced_stateful_set,
            apps.list_stateful_set_for_all_namespaces,
            ns,
            "statefulsets",
        ),
        list_objects(
            client, apps.list_namespaced_daemon_set, apps.list_daemon_set_for_all_namespaces, ns, "daemonsets"
        ),
        list_objects(client, core.list_namespaced_pod, core.list_pod_for_all_namespaces, ns, "pods"),
        list_objects(
            client, core.list_namespaced_service, core.list_service_for_all_namespaces, ns, "services"
        ),
        list_objects(
            client,
            core.list_namespaced_resource_quota,
            core.list_resource_quota_for_all_namespaces,
            ns,
            "resourcequotas",
        ),
        list_cluster(client, storage.list_storage_class, "storageclasses"),
    )
    deployments, replicasets, statefulsets, daemonsets, pods, services, quotas, classes = reads
    pods = pods or []
    service_names = {name_of(s) for s in services} if services is not None else None
    groups = await asyncio.gather(
        *(_deployment(client, d, replicasets or [], pods, quotas or []) for d in deployments or []),
        *(_statefulset(client, s, service_names, classes, pods) for s in statefulsets or []),
        *(_daemonset(client, d, pods) for d in daemonsets or []),
        workload_jobs.analyze(client, ns),
    )
    found: list[Finding] = []
    for group in groups:
        if isinstance(group, Finding):
            found.append(group)
        elif group:
            found.extend(group)
    return found
