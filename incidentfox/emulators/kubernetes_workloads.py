"""Workload objects of the emulator: deployments with their replica sets, stateful sets, daemon sets.

Builders turn a scenario's compact description into full API objects; ``sync_rollout`` is the part of
the deployment controller that writes need: when a deployment's pod template changes, the replica set
with that template becomes the newest revision (a new one is created if none matches), which is what
``kubectl rollout restart`` and ``kubectl rollout undo`` rely on. Pods are not created or removed: the
emulator has no kubelet, so a rollout shows as started (0 updated replicas), never as finished.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from incidentfox.emulators.kubernetes_fields import (
    Obj,
    condition,
    container_spec,
    matches,
    object_meta,
    pod_ready,
    uid,
)

REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
TEMPLATE_HASH = "pod-template-hash"
CHANGE_CAUSE = "kubernetes.io/change-cause"
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""The characters Kubernetes uses for generated name suffixes (no vowels, no look-alikes)."""


def template_hash(template: Obj) -> str:
    """A stable ``pod-template-hash`` for a pod template (the controller uses FNV; any stable hash does)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:9])


def without_template_hash(template: Obj) -> Obj:
    """A replica set's template as its deployment would hold it (without the hash label)."""
    bare = copy.deepcopy(template)
    labels = (bare.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(TEMPLATE_HASH, None)
    return bare


def _pods_of(pods: list[Obj], namespace: str, selector: Mapping[str, str]) -> list[Obj]:
    return [p for p in pods if p["metadata"]["namespace"] == namespace and matches(p, selector)]


def _owner(kind: str, namespace: str, name: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": name,
        "uid": uid(kind, namespace, name),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _replicaset(
    name: str,
    namespace: str,
    template: Obj,
    *,
    revision: int,
    replicas: int,
    owner: Obj,
    now: datetime,
    age: Any,
    change_cause: Any = None,
) -> Obj:
    selector = dict((template.get("metadata") or {}).get("labels") or {})
    annotations = {
        REVISION: str(revision),
        DESIRED_REPLICAS: str(replicas),
        MAX_REPLICAS: str(replicas + max(1, -(-replicas // 4))),
    }
    if change_cause:
        annotations[CHANGE_CAUSE] = str(change_cause)
    meta = object_meta(
        "ReplicaSet",
        name,
        namespace,
        now,
        age,
        labels=selector,
        annotations=annotations,
        ownerReferences=[owner],
        generation=1,
    )
    return {
        "metadata": meta,
        "spec": {"replicas": replicas, "selector": {"matchLabels": selector}, "template": template},
        "status": {"replicas": 0, "observedGeneration": 1},
    }


def _with_hash(template: Obj, suffix: str) -> Obj:
    hashed = copy.deepcopy(template)
    hashed.setdefault("metadata", {}).setdefault("labels", {})[TEMPLATE_HASH] = suffix
    return hashed


def _historic_template(current: Obj, change: Mapping[str, Any]) -> Obj:
    """An earlier revision's template: the current one with the first container's image or env as given."""
    template = copy.deepcopy(current)
    container = template["spec"]["containers"][0]
    if change.get("image"):
        container["image"] = str(change["image"])
    if change.get("env") is not None:
        container["env"] = [{"name": k, "value": str(v)} for k, v in dict(change["env"]).items()]
    return template


def build_deployment(spec: Mapping[str, Any], namespace: str, pods: list[Obj], now: datetime) -> list[Obj]:
    """The deployment followed by its replica sets: one per ``history`` entry (older revisions,
    scaled to zero) and the current one, which owns the scenario's pods."""
    name = str(spec["name"])
    selector = dict(spec.get("selector") or {"app": name})
    own = _pods_of(pods, namespace, selector)
    desired = int(spec.get("replicas", max(len(own), 1)))
    ready = sum(1 for p in own if pod_ready(p))
    updated = int(spec.get("updated", len(own)))
    available = int(spec.get("available", ready))
    containers = (
        own[0]["spec"]["containers"] if own else [container_spec({"name": name, "image": spec["image"]})]
    )
    template: Obj = {"metadata": {"labels": selector}, "spec": {"containers": copy.deepcopy(containers)}}
    rs_name = own[0]["metadata"]["name"].rsplit("-", 1)[0] if own else f"{name}-5d8c7b9f4"
    history = list(spec.get("history") or [])
    revision = len(history) + 1
    conditions = [
        condition(
            "Available",
            available >= desired,
            now,
            "MinimumReplicasAvailable" if available >= desired else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if available >= desired
            else "Deployment does not have minimum availability.",
        )
    ]
    if spec.get("stalled"):
        progressing = condition(
            "Progressing",
            False,
            now,
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs_name}" has timed out progressing.',
        )
    elif available >= desired:
        progressing = condition(
            "Progressing",
            True,
            now,
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
        )
    else:
        progressing = condition(
            "Progressing", True, now, "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.'
        )
    progressing["lastUpdateTime"] = progressing["lastTransitionTime"]
    conditions.append(progressing)
    status: Obj = {
        "observedGeneration": 2,
        "replicas": len(own),
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": conditions,
    }
    if desired - available > 0:
        status["unavailableReplicas"] = desired - available
    deployment: Obj = {
        "metadata": object_meta(
            "Deployment",
            name,
            namespace,
            now,
            spec.get("age", "5d"),
            labels={"app": name},
            annotations={REVISION: str(revision)},
            generation=2,
        ),
        "spec": {
            "replicas": desired,
            "selector": {"matchLabels": selector},
            "template": template,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
        },
        "status": status,
    }
    owner = _owner("Deployment", namespace, name)
    objects = [deployment]
    for number, change in enumerate(history, start=1):
        old = _historic_template(template, change)
        suffix = template_hash(old)
        objects.append(
            _replicaset(
                f"{name}-{suffix}",
                namespace,
                _with_hash(old, suffix),
                revision=number,
                replicas=0,
                owner=owner,
                now=now,
                age=change.get("age", "7d"),
                change_cause=change.get("change_cause"),
            )
        )
    current = _replicaset(
        rs_name,
        namespace,
        _with_hash(template, rs_name.rsplit("-", 1)[-1]),
        revision=revision,
        replicas=desired,
        owner=owner,
        now=now,
        age=spec.get("rs_age", "1h"),
        change_cause=spec.get("change_cause"),
    )
    current["status"].update(replicas=len(own), readyReplicas=ready, availableReplicas=available)
    objects.append(current)
    return objects


def _workload_template(spec: Mapping[str, Any], name: str, own: list[Obj], selector: Obj) -> Obj:
    containers = (
        own[0]["spec"]["containers"] if own else [container_spec({"name": name, "image": spec["image"]})]
    )
    return {"metadata": {"labels": selector}, "spec": {"containers": copy.deepcopy(containers)}}


def build_statefulset(spec: Mapping[str, Any], namespace: str, pods: list[Obj], now: datetime) -> Obj:
    name = str(spec["name"])
    selector = dict(spec.get("selector") or {"app": name})
    own = _pods_of(pods, namespace, selector)
    ready = sum(1 for p in own if pod_ready(p))
    template = _workload_template(spec, name, own, selector)
    revision = f"{name}-{template_hash(template)}"
    updated = int(spec.get("updated", len(own)))
    set_spec: Obj = {
        "replicas": int(spec.get("replicas", max(len(own), 1))),
        "selector": {"matchLabels": selector},
        "serviceName": str(spec.get("service", name)),
        "template": template,
        "podManagementPolicy": "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "revisionHistoryLimit": 10,
    }
    if spec.get("volume_claims"):
        set_spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": str(c["name"])},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": str(c.get("storage_class", "standard")),
                    "resources": {"requests": {"storage": str(c.get("request", "10Gi"))}},
                    "volumeMode": "Filesystem",
                },
            }
            for c in spec["volume_claims"]
        ]
    return {
        "metadata": object_meta(
            "StatefulSet", name, namespace, now, spec.get("age", "30d"), labels={"app": name}, generation=1
        ),
        "spec": set_spec,
        "status": {
            "observedGeneration": 1,
            "replicas": len(own),
            "readyReplicas": ready,
            "currentReplicas": len(own) - updated if updated < len(own) else len(own),
            "updatedReplicas": updated,
            "availableReplicas": ready,
            "currentRevision": str(spec.get("current_revision", revision)),
            "updateRevision": revision,
            "collisionCount": 0,
        },
    }


def build_daemonset(
    spec: Mapping[str, Any], namespace: str, pods: list[Obj], nodes: int, now: datetime
) -> Obj:
    name = str(spec["name"])
    selector = dict(spec.get("selector") or {"app": name})
    own = _pods_of(pods, namespace, selector)
    ready = sum(1 for p in own if pod_ready(p))
    status: Obj = {
        "observedGeneration": 1,
        "currentNumberScheduled": len(own),
        "desiredNumberScheduled": nodes,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "updatedNumberScheduled": len(own),
    }
    if nodes - ready > 0:
        status["numberUnavailable"] = nodes - ready
    template = _workload_template(spec, name, own, selector)
    if spec.get("image_pull_secrets"):
        template["spec"]["imagePullSecrets"] = [{"name": str(s)} for s in spec["image_pull_secrets"]]
    return {
        "metadata": object_meta(
            "DaemonSet", name, namespace, now, spec.get("age", "30d"), labels={"app": name}, generation=1
        ),
        "spec": {
            "selector": {"matchLabels": selector},
            "template": template,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "revisionHistoryLimit": 10,
        },
        "status": status,
    }


def owned_by(objects: list[Obj], owner: Obj) -> list[Obj]:
    """The objects whose controller is ``owner`` (matched by uid, as the garbage collector does)."""
    owner_uid = owner["metadata"]["uid"]
    return [
        o
        for o in objects
        if any(
            ref.get("uid") == owner_uid and ref.get("controller")
            for ref in o["metadata"].get("ownerReferences") or []
        )
    ]


def _revision(obj: Obj) -> int:
    value = (obj["metadata"].get("annotations") or {}).get(REVISION, "0")
    return int(value) if str(value).isdigit() else 0


def sync_rollout(
    replicasets: list[Obj], deployment: Obj, now: datetime, next_version: Callable[[], str]
) -> None:
    """Bring the replica sets in line with ``deployment`` after a write, as the deployment controller does.

    The replica set whose template equals the deployment's becomes the newest revision (reusing an old
    one is how a rollback works), or a new one is created; it gets the desired replicas and every other
    replica set of the deployment is scaled to zero. ``next_version`` hands out resource versions.
    """
    meta, spec = deployment["metadata"], deployment["spec"]
    owned = owned_by(replicasets, deployment)
    newest = max((_revision(rs) for rs in owned), default=0)
    template = spec["template"]
    current = next((rs for rs in owned if without_template_hash(rs["spec"]["template"]) == template), None)
    if current is None:
        suffix = template_hash(template)
        owner = _owner("Deployment", meta["namespace"], meta["name"])
        owner["uid"] = meta["uid"]
        current = _replicaset(
            f"{meta['name']}-{suffix}",
            meta["namespace"],
            _with_hash(template, suffix),
            revision=newest + 1,
            replicas=0,
            owner=owner,
            now=now,
            age=0,
        )
        replicasets.append(current)
        owned.append(current)
        deployment["status"]["updatedReplicas"] = 0
    elif _revision(current) != newest:
        current["metadata"]["annotations"][REVISION] = str(newest + 1)
        deployment["status"]["updatedReplicas"] = 0
    meta.setdefault("annotations", {})[REVISION] = str(_revision(current))
    for rs in owned:
        wanted = int(spec.get("replicas", 1)) if rs is current else 0
        if rs["spec"]["replicas"] != wanted or rs is current:
            rs["spec"]["replicas"] = wanted
            rs["metadata"]["annotations"][DESIRED_REPLICAS] = str(spec.get("replicas", 1))
            rs["metadata"]["resourceVersion"] = next_version()
    deployment["status"]["observedGeneration"] = meta.get("generation", 1)


def scale_of(obj: Obj, kind: str) -> Obj:
    """The ``autoscaling/v1`` Scale subresource of a deployment or stateful set."""
    meta = obj["metadata"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(obj["spec"]["selector"]["matchLabels"].items()))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {"replicas": obj["status"].get("replicas", 0), "selector": selector},
    }
