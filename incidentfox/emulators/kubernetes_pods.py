"""Creating pods and NetworkPolicies in the Kubernetes emulator, and what the scheduler and kubelet
then do to a pod.

``POST`` of a pod stores it as the API server would (uid, ``resourceVersion``, creation time,
defaults, ``status.phase: Pending``, the QoS class) and answers 201. Then, with no scheduler and no
kubelet to wait for, ``PodRuntime`` plays both, under the test's control:

* normally, ``start_delay_s`` later the pod is bound to a node and Running with every container
  started and Ready (``start_delay_s=None`` keeps it Pending until ``start_pending()``);
* with ``unschedulable`` set to a scheduler message (``"0/3 nodes are available: 3 Insufficient
  cpu."``), new pods stay Pending with ``PodScheduled=False``, reason ``Unschedulable`` and that
  message, and a ``FailedScheduling`` event, as the default scheduler reports them.

``POST`` of a NetworkPolicy stores it (nothing enforces it: there is no network). ``created`` keeps
every body as received, so a test can assert on exactly what a client asked for. ``pods/exec`` is in
``kubernetes_exec``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from incidentfox.emulators.kubernetes_exec import ExecHandler, scripted_command, serve_exec
from incidentfox.emulators.kubernetes_fields import Obj, condition, timestamp, uid
from incidentfox.emulators.kubernetes_objects import Cluster
from incidentfox.emulators.kubernetes_writes import ResourceType, status_response

_DEFAULT_NODE = "emulator-node-1"


def _now() -> datetime:
    return datetime.now(UTC)


def _invalid(res: ResourceType, name: str, path: str, problem: str) -> web.Response:
    qualified = f"{res.kind}.{res.group}" if res.group else res.kind
    return status_response(422, "Invalid", f'{qualified} "{name}" is invalid: {path}: {problem}')


def _qos_class(containers: list[Obj]) -> str:
    """Guaranteed when every container's cpu and memory requests equal its limits; BestEffort with none."""
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or r.get("limits") or {}
        if any(not limits.get(k) or requests.get(k) != limits.get(k) for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


class PodRuntime:
    """The scheduler and kubelet of pods created through the emulator's API."""

    def __init__(self, cluster: Callable[[], Cluster]) -> None:
        self._cluster = cluster
        self.start_delay_s: float | None = 0.05
        """Seconds from creation to Running and Ready; ``None``: Pending until ``start_pending()``."""
        self.unschedulable: str | None = None
        """When set, new pods cannot be scheduled and this is the scheduler's message."""
        self.exec_handler: ExecHandler = scripted_command
        self.created: list[Obj] = []
        """Every pod and NetworkPolicy body POSTed, as received (with ``kind``)."""

    async def create(self, request: web.Request, res: ResourceType, namespace: str | None) -> web.Response:
        cluster = self._cluster()
        try:
            body = json.loads(await request.read())
        except ValueError:
            return status_response(400, "BadRequest", "the request body is not valid JSON")
        if not isinstance(body, dict):
            return status_response(400, "BadRequest", "the request body is not an object")
        if namespace is None or not any(n["metadata"]["name"] == namespace for n in cluster.namespaces):
            details = {"name": str(namespace), "kind": "namespaces"}
            return status_response(404, "NotFound", f'namespaces "{namespace}" not found', details)
        meta = body.get("metadata") or {}
        name = meta.get("name") or (
            meta["generateName"] + uuid.uuid4().hex[:5] if meta.get("generateName") else ""
        )
        if not name:
            return _invalid(res, "", "metadata.name", "Required value: name or generateName is required")
        objects: list[Obj] = getattr(cluster, res.attr)
        if any(
            o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace for o in objects
        ):
            message = f'{res.qualified} "{name}" already exists'
            return status_response(409, "AlreadyExists", message, {"name": name, "kind": res.plural})
        problem = self._problem(res, name, body)
        if problem is not None:
            return problem
        self.created.append({"kind": res.kind, **copy.deepcopy(body)})
        stored = self._store(cluster, res, body, name, namespace)
        objects.append(stored)
        if res.kind == "Pod":
            self._schedule(stored)
        return web.json_response({"kind": res.kind, "apiVersion": res.api_version, **stored}, status=201)

    def _problem(self, res: ResourceType, name: str, body: Obj) -> web.Response | None:
        spec = body.get("spec")
        if not isinstance(spec, dict):
            return _invalid(res, name, "spec", "Required value")
        if res.kind == "NetworkPolicy":
            if not isinstance(spec.get("podSelector"), dict):
                return _invalid(res, name, "spec.podSelector", "Required value")
            return None
        containers = spec.get("containers")
        if not isinstance(containers, list) or not containers:
            return _invalid(res, name, "spec.containers", "Required value")
        for index, container in enumerate(containers):
            for key in ("name", "image"):
                if not (isinstance(container, dict) and container.get(key)):
                    return _invalid(res, name, f"spec.containers[{index}].{key}", "Required value")
        return None

    def _store(self, cluster: Cluster, res: ResourceType, body: Obj, name: str, namespace: str) -> Obj:
        now = _now()
        meta = {
            **copy.deepcopy(body.get("metadata") or {}),
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": cluster.next_resource_version(),
            "creationTimestamp": timestamp(now, 0),
            "generation": 1,
        }
        stored: Obj = {"metadata": meta, "spec": copy.deepcopy(body["spec"])}
        if res.kind == "Pod":
            spec = stored["spec"]
            defaults = {
                "restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
                "serviceAccountName": "default",
                "terminationGracePeriodSeconds": 30,
            }
            for key, value in defaults.items():
                spec.setdefault(key, value)
            conditions = [condition("PodScheduled", False, now, "Unschedulable", self.unschedulable)]
            stored["status"] = {
                "phase": "Pending",
                "qosClass": _qos_class(spec["containers"]),
                "conditions": conditions if self.unschedulable else [],
            }
            for cond in stored["status"]["conditions"]:
                cond["lastTransitionTime"] = timestamp(now, 0)
        return stored

    def _schedule(self, pod: Obj) -> None:
        if self.unschedulable is not None:
            self._event(pod, "FailedScheduling", self.unschedulable, "Warning")
        elif self.start_delay_s is not None:
            asyncio.get_running_loop().call_later(self.start_delay_s, self._start, pod)

    def start_pending(self) -> None:
        """Schedule and start every pod still Pending (those kept back by ``start_delay_s=None``)."""
        for pod in list(self._cluster().pods):
            if pod["status"].get("phase") == "Pending" and not pod["spec"].get("nodeName"):
                self._start(pod)

    def _start(self, pod: Obj) -> None:
        cluster = self._cluster()
        if not any(p is pod for p in cluster.pods):
            return
        now = _now()
        node = next(
            (n["metadata"]["name"] for n in cluster.nodes if not n["spec"].get("unschedulable")),
            _DEFAULT_NODE,
        )
        statuses = [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": f"{c['image'].split(':')[0]}@sha256:{uid('image', c['image'])}",
                "containerID": "containerd://" + uuid.uuid4().hex,
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": timestamp(now, 0)}},
                "lastState": {},
            }
            for c in pod["spec"]["containers"]
        ]
        index = len(cluster.pods)
        ip = f"10.244.9.{index % 250 + 2}"
        conditions = [
            condition(kind, True, now) for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        for cond in conditions:
            cond["lastTransitionTime"] = timestamp(now, 0)
        pod["spec"]["nodeName"] = node
        pod["status"].update(
            phase="Running",
            conditions=conditions,
            hostIP="10.0.0.10",
            podIP=ip,
            podIPs=[{"ip": ip}],
            startTime=timestamp(now, 0),
            containerStatuses=statuses,
        )
        pod["metadata"]["resourceVersion"] = cluster.next_resource_version()
        self._event(
            pod,
            "Scheduled",
            f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} to {node}",
            "Normal",
        )

    def _event(self, pod: Obj, reason: str, message: str, kind: str) -> None:
        cluster = self._cluster()
        now = _now()
        meta = pod["metadata"]
        cluster.events.append(
            {
                "metadata": {
                    "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                    "namespace": meta["namespace"],
                    "uid": str(uuid.uuid4()),
                    "resourceVersion": cluster.next_resource_version(),
                    "creationTimestamp": timestamp(now, 0),
                },
                "involvedObject": {
                    "kind": "Pod",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta["uid"],
                    "apiVersion": "v1",
                },
                "reason": reason,
                "message": message,
                "source": {"component": "default-scheduler"},
                "firstTimestamp": timestamp(now, 0),
                "lastTimestamp": timestamp(now, 0),
                "count": 1,
                "type": kind,
                "reportingComponent": "default-scheduler",
                "reportingInstance": "",
            }
        )

    async def exec(self, request: web.Request, pod: Obj) -> web.StreamResponse:
        return await serve_exec(request, pod, self.exec_handler)
