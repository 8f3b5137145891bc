"""The writes the Kubernetes emulator applies, with the API server's answers.

* ``PATCH`` of deployments, stateful sets and daemon sets in any of the three patch formats
  (``kubernetes_patch``). As in the API server, ``status`` and system metadata cannot be changed
  through the main resource, ``metadata.resourceVersion`` in a patch is a precondition (409 Conflict
  when it is stale), the selector is immutable and replicas must not be negative (422 Invalid), and a
  changed ``spec`` bumps ``metadata.generation``. A deployment whose template changed rolls out a
  new replica set revision (``kubernetes_workloads.sync_rollout``).
* ``GET`` and ``PATCH`` of the ``scale`` subresource of deployments and stateful sets.
* ``DELETE`` of a pod: answered with the pod and its ``deletionTimestamp``; the pod is gone at once
  (there is no kubelet to wait for).
* ``dryRun=All`` answers as if the write happened and changes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from incidentfox.emulators.kubernetes_fields import Obj
from incidentfox.emulators.kubernetes_objects import Cluster
from incidentfox.emulators.kubernetes_patch import PatchRejected, apply_patch, parse_patch
from incidentfox.emulators.kubernetes_workloads import scale_of, sync_rollout, template_hash

SERVICE_ACCOUNT = "system:serviceaccount:incidentfox:incidentfox"
"""The user the emulator names in 403 answers when it is read-only."""

_SYSTEM_METADATA = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "managedFields")


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One served resource: how it is named in URLs and answers, and which writes it takes."""

    kind: str
    api_version: str
    namespaced: bool
    attr: str
    """The ``Cluster`` list holding its objects."""
    plural: str
    group: str = ""
    subresources: frozenset[str] = field(default_factory=frozenset)
    writes: frozenset[str] = field(default_factory=frozenset)
    """HTTP methods other than GET it accepts on a single object: ``PATCH``, ``DELETE``."""

    @property
    def qualified(self) -> str:
        """``deployments.apps``, or just ``pods`` in the core group, as the API server writes it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def status_response(
    code: int, reason: str, message: str, details: Mapping[str, str] | None = None
) -> web.Response:
    """A ``Status`` failure body with its HTTP code, as every API server error is sent."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = dict(details)
    return web.json_response(body, status=code)


def not_found(plural: str, name: str, group: str = "") -> web.Response:
    qualified = f"{plural}.{group}" if group else plural
    details = {"name": name, "group": group, "kind": plural} if group else {"name": name, "kind": plural}
    return status_response(404, "NotFound", f'{qualified} "{name}" not found', details)


def method_not_allowed() -> web.Response:
    return status_response(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def forbidden(
    res: ResourceType, verb: str, name: str, namespace: str | None, sub: str | None
) -> web.Response:
    resource = res.plural + (f"/{sub}" if sub else "")
    where = f' in the namespace "{namespace}"' if namespace else ""
    message = (
        f'{res.qualified} "{name}" is forbidden: User "{SERVICE_ACCOUNT}" cannot {verb} resource '
        f'"{resource}" in API group "{res.group}"{where}'
    )
    return status_response(403, "Forbidden", message, {"name": name, "group": res.group, "kind": res.plural})


def _conflict(res: ResourceType, name: str) -> PatchRejected:
    return PatchRejected(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
    )


def _invalid(kind: str, group: str, name: str, path: str, value: Any, problem: str) -> PatchRejected:
    qualified = f"{kind}.{group}" if group else kind
    return PatchRejected(
        422, "Invalid", f'{qualified} "{name}" is invalid: {path}: Invalid value: {value}: {problem}'
    )


def _go_map(labels: Mapping[str, Any]) -> str:
    return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(labels.items())) + "]"


def _check_precondition(res: ResourceType, current: Obj, patched: Obj) -> None:
    """A ``resourceVersion`` left in the patched object must be the stored one (optimistic locking)."""
    meta = patched.get("metadata") or {}
    if meta.get("name", current["metadata"]["name"]) != current["metadata"]["name"]:
        raise PatchRejected(
            400,
            "BadRequest",
            f"the name of the object ({meta.get('name')}) does not match the name on the URL "
            f"({current['metadata']['name']})",
        )
    namespace = current["metadata"].get("namespace")
    if namespace is not None and meta.get("namespace", namespace) != namespace:
        raise PatchRejected(
            400,
            "BadRequest",
            f"the namespace of the object ({meta.get('namespace')}) does not match the namespace on the "
            f"request ({namespace})",
        )
    version = meta.get("resourceVersion")
    if version and version != current["metadata"]["resourceVersion"]:
        raise _conflict(res, current["metadata"]["name"])


def _validate(res: ResourceType, before: Obj, after: Obj) -> None:
    name = after["metadata"]["name"]
    spec = after.get("spec") or {}
    replicas = spec.get("replicas", 1)
    if res.kind != "DaemonSet" and (
        not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0
    ):
        raise _invalid(
            res.kind, res.group, name, "spec.replicas", replicas, "must be greater than or equal to 0"
        )
    selector = spec.get("selector")
    if selector != before["spec"].get("selector"):
        raise _invalid(res.kind, res.group, name, "spec.selector", selector, "field is immutable")
    wanted = (selector or {}).get("matchLabels") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        raise _invalid(
            res.kind,
            res.group,
            name,
            "spec.template.metadata.labels",
            _go_map(labels),
            "`selector` does not match template `labels`",
        )


def _keep_system_fields(stored: Obj, patched: Obj) -> Obj:
    """``patched`` with what a main-resource write may not change put back: status and system metadata."""
    updated = {k: v for k, v in patched.items() if k not in ("kind", "apiVersion")}
    meta = updated.setdefault("metadata", {})
    for key in _SYSTEM_METADATA:
        meta.pop(key, None)
        if key in stored["metadata"]:
            meta[key] = copy.deepcopy(stored["metadata"][key])
    meta["name"] = stored["metadata"]["name"]
    if "namespace" in stored["metadata"]:
        meta["namespace"] = stored["metadata"]["namespace"]
    meta["resourceVersion"] = stored["metadata"]["resourceVersion"]
    updated["status"] = copy.deepcopy(stored.get("status") or {})
    return updated


def _commit(cluster: Cluster, res: ResourceType, stored: Obj, updated: Obj) -> None:
    """Store ``updated`` in place of ``stored`` (same dict, so every list holding it sees the change)."""
    if updated.get("spec") != stored.get("spec"):
        updated["metadata"]["generation"] = int(stored["metadata"].get("generation", 1)) + 1
    template_changed = (updated.get("spec") or {}).get("template") != (stored.get("spec") or {}).get(
        "template"
    )
    updated["metadata"]["resourceVersion"] = cluster.next_resource_version()
    stored.clear()
    stored.update(updated)
    if res.kind == "Deployment":
        sync_rollout(cluster.replicasets, stored, datetime.now(UTC), cluster.next_resource_version)
    elif template_changed:
        revision = f"{stored['metadata']['name']}-{template_hash(stored['spec']['template'])}"
        stored["status"]["observedGeneration"] = stored["metadata"]["generation"]
        if res.kind == "StatefulSet":
            stored["status"].update(updateRevision=revision, updatedReplicas=0)
        else:
            stored["status"]["updatedNumberScheduled"] = 0


def _as_api(res: ResourceType, obj: Obj) -> Obj:
    return {"kind": res.kind, "apiVersion": res.api_version, **obj}


def _dry_run(request: web.Request) -> bool:
    return request.query.get("dryRun") == "All"


async def patch_object(
    cluster: Cluster, res: ResourceType, stored: Obj, request: web.Request
) -> web.Response:
    try:
        kind, body = parse_patch(request.headers.get("Content-Type", ""), await request.read())
        patched = apply_patch(kind, _as_api(res, stored), body)
        _check_precondition(res, stored, patched)
        updated = _keep_system_fields(stored, patched)
        _validate(res, stored, updated)
    except PatchRejected as exc:
        return status_response(exc.code, exc.reason, exc.message)
    if updated != stored and not _dry_run(request):
        _commit(cluster, res, stored, updated)
    return web.json_response(_as_api(res, stored if not _dry_run(request) else updated))


def read_scale(res: ResourceType, stored: Obj) -> web.Response:
    return web.json_response(scale_of(stored, res.kind))


async def patch_scale(cluster: Cluster, res: ResourceType, stored: Obj, request: web.Request) -> web.Response:
    name = stored["metadata"]["name"]
    try:
        kind, body = parse_patch(request.headers.get("Content-Type", ""), await request.read())
        scale = apply_patch(kind, scale_of(stored, res.kind), body)
        _check_precondition(res, stored, scale)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise _invalid(
                "Scale", "autoscaling", name, "spec.replicas", replicas, "must be greater than or equal to 0"
            )
    except PatchRejected as exc:
        return status_response(exc.code, exc.reason, exc.message)
    if replicas != stored["spec"].get("replicas") and not _dry_run(request):
        updated = copy.deepcopy(stored)
        updated["spec"]["replicas"] = replicas
        _commit(cluster, res, stored, updated)
    answer = scale_of(stored, res.kind)
    answer["spec"]["replicas"] = replicas
    return web.json_response(answer)


def delete_object(cluster: Cluster, res: ResourceType, stored: Obj, request: web.Request) -> web.Response:
    grace = request.query.get("gracePeriodSeconds")
    seconds = (
        int(grace)
        if grace and grace.isdigit()
        else int(stored["spec"].get("terminationGracePeriodSeconds", 30))
    )
    gone = copy.deepcopy(stored)
    gone["metadata"]["deletionTimestamp"] = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    gone["metadata"]["deletionGracePeriodSeconds"] = seconds
    if not _dry_run(request):
        objects: list[Obj] = getattr(cluster, res.attr)
        objects[:] = [o for o in objects if o is not stored]
        gone["metadata"]["resourceVersion"] = cluster.next_resource_version()
    return web.json_response(_as_api(res, gone))
