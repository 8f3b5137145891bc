"""An offline Kubernetes API server: real HTTP on 127.0.0.1, serving a scenario's objects.

The real ``kubernetes`` client talks to it unchanged: discovery, namespaces,
pods with logs, core/v1 events, apps/v1 deployments, replica sets, stateful sets and daemon sets,
services, endpoints, config maps, nodes and persistent volume claims, batch/v1 jobs and cron jobs,
networking.k8s.io/v1 ingresses, autoscaling/v2 HorizontalPodAutoscalers
and metrics-server's metrics.k8s.io/v1beta1 PodMetrics (``metrics_server = False`` makes that group
404), and the kinds of ``kubernetes_policy``: policy/v1 PodDisruptionBudgets, IngressClasses,
storage.k8s.io StorageClasses, ResourceQuotas, Secrets (also read as ``PartialObjectMetadata``) and
admissionregistration.k8s.io/v1 webhook configurations.
It applies the writes of ``kubernetes_writes`` (PATCH of workloads and their ``scale``, DELETE
of pods), so a test can read back what a write did.
Pods and networking.k8s.io/v1 NetworkPolicies can be created (POST), pods patched and exec'd into,
and created pods start or stay unschedulable as ``pods`` (``kubernetes_pods``) says; the networking
group answers its own discovery but is not listed under ``/apis``, as before it existed.
Missing objects answer with a 404 ``Status``; a wrong bearer token with 401. Setting ``unreachable``
drops every connection, which is how tests simulate an API outage; ``read_only`` refuses every write
with 403, as RBAC refuses a read-only identity; ``namespace_scoped`` refuses reads outside some
namespaces with 403, as RBAC refuses an identity bound by Roles only; ``unreadable`` refuses reads of
some resources everywhere; ``throttled`` answers the next requests 429 ``TooManyRequests`` with
``Retry-After``, as API Priority and Fairness does. Every list answers with the
cluster's current ``resourceVersion`` (etcd's revision), which grows on every write and on ``load``.

    async with KubernetesEmulator("crashloop") as k8s:
        api = kubernetes.config.new_client_from_config(str(k8s.write_kubeconfig(tmp / "kubeconfig")))
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from incidentfox.emulators import kubernetes_writes as writes
from incidentfox.emulators.kubernetes_objects import Cluster, Obj, build_cluster
from incidentfox.emulators.kubernetes_pods import PodRuntime
from incidentfox.emulators.kubernetes_policy_routes import POLICY_GROUPS, POLICY_RESOURCES, partial_metadata
from incidentfox.emulators.kubernetes_writes import ResourceType, not_found, status_response
from incidentfox.emulators.served import Emulator, ServedApp

SCENARIO_DIR = Path(__file__).parent / "scenarios"
DEFAULT_TOKEN = "k8s-emulator-token"

_CORE, _APPS, _NETWORKING = "api/v1", "apis/apps/v1", "apis/networking.k8s.io/v1"
_AUTOSCALING, _METRICS = "apis/autoscaling/v2", "apis/metrics.k8s.io/v1beta1"
_BATCH = "apis/batch/v1"
_GROUPS = (_CORE, _APPS, _NETWORKING, _AUTOSCALING, _METRICS, _BATCH, *POLICY_GROUPS)
_PATCHABLE = frozenset({"PATCH"})
_SCALABLE = frozenset({"scale"})
_RESOURCES: dict[tuple[str, str], ResourceType] = {
    (_CORE, "namespaces"): ResourceType("Namespace", "v1", False, "namespaces", "namespaces"),
    (_CORE, "nodes"): ResourceType("Node", "v1", False, "nodes", "nodes"),
    (_CORE, "pods"): ResourceType(
        "Pod",
        "v1",
        True,
        "pods",
        "pods",
        subresources=frozenset({"log", "exec"}),
        writes=frozenset({"DELETE", "PATCH", "POST"}),
    ),
    (_CORE, "events"): ResourceType("Event", "v1", True, "events", "events"),
    (_CORE, "services"): ResourceType("Service", "v1", True, "services", "services"),
    (_CORE, "endpoints"): ResourceType("Endpoints", "v1", True, "endpoints", "endpoints"),
    (_CORE, "persistentvolumeclaims"): ResourceType(
        "PersistentVolumeClaim", "v1", True, "persistentvolumeclaims", "persistentvolumeclaims"
    ),
    (_CORE, "configmaps"): ResourceType("ConfigMap", "v1", True, "configmaps", "configmaps"),
    (_APPS, "deployments"): ResourceType(
        "Deployment", "apps/v1", True, "deployments", "deployments", "apps", _SCALABLE, _PATCHABLE
    ),
    (_APPS, "replicasets"): ResourceType("ReplicaSet", "apps/v1", True, "replicasets", "replicasets", "apps"),
    (_APPS, "statefulsets"): ResourceType(
        "StatefulSet", "apps/v1", True, "statefulsets", "statefulsets", "apps", _SCALABLE, _PATCHABLE
    ),
    (_APPS, "daemonsets"): ResourceType(
        "DaemonSet", "apps/v1", True, "daemonsets", "daemonsets", "apps", writes=_PATCHABLE
    ),
    (_NETWORKING, "networkpolicies"): ResourceType(
        "NetworkPolicy",
        "networking.k8s.io/v1",
        True,
        "networkpolicies",
        "networkpolicies",
        "networking.k8s.io",
        writes=frozenset({"DELETE", "POST"}),
    ),
    (_AUTOSCALING, "horizontalpodautoscalers"): ResourceType(
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        True,
        "horizontalpodautoscalers",
        "horizontalpodautoscalers",
        "autoscaling",
    ),
    (_NETWORKING, "ingresses"): ResourceType(
        "Ingress", "networking.k8s.io/v1", True, "ingresses", "ingresses", "networking.k8s.io"
    ),
    (_BATCH, "jobs"): ResourceType("Job", "batch/v1", True, "jobs", "jobs", "batch"),
    (_BATCH, "cronjobs"): ResourceType("CronJob", "batch/v1", True, "cronjobs", "cronjobs", "batch"),
    (_METRICS, "pods"): ResourceType(
        "PodMetrics", "metrics.k8s.io/v1beta1", True, "podmetrics", "pods", "metrics.k8s.io"
    ),
    **POLICY_RESOURCES,
}
_VERBS = {"GET": "get", "PATCH": "patch", "DELETE": "delete", "POST": "create"}
_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-incidentfox-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-04-23T00:00:00Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_WAITING_WORDS = {
    "ErrImagePull": "image can't be pulled",
    "ImagePullBackOff": "trying and failing to pull image",
}
_SELECTOR_TERM = re.compile(r"([^,()]+?\((?:[^)]*)\)|[^,]+)")


def scenario_names() -> list[str]:
    """The bundled scenarios, e.g. ``["crashloop", "healthy", ...]``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(scenario: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A scenario document from a bundled name, a YAML path, or a mapping given directly."""
    if isinstance(scenario, Mapping):
        return dict(scenario)
    path = Path(scenario)
    if not path.suffix:
        path = SCENARIO_DIR / f"{scenario}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"scenario {path} is not a YAML mapping")
    return doc


def _subresource_discovery(plural: str, sub: str) -> Obj:
    if sub == "exec":
        return {
            "name": f"{plural}/exec",
            "singularName": "",
            "namespaced": True,
            "kind": "PodExecOptions",
            "verbs": ["create", "get"],
        }
    if sub == "log":
        return {
            "name": f"{plural}/log",
            "singularName": "",
            "namespaced": True,
            "kind": "Pod",
            "verbs": ["get"],
        }
    return {
        "name": f"{plural}/{sub}",
        "singularName": "",
        "namespaced": True,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    }


def label_selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``,
    ``a`` (exists) and ``!a`` (does not exist), comma-separated and all required."""
    for raw in _SELECTOR_TERM.findall(selector):
        term = raw.strip()
        if not term:
            continue
        set_match = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term)
        if set_match:
            key, op, values = set_match.groups()
            wanted = {v.strip() for v in values.split(",")}
            if (labels.get(key) in wanted) != (op == "in"):
                return False
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field_selector_matches(selector: str, obj: Obj) -> bool:
    """Equality field selectors over dotted paths (``involvedObject.name=checkout``, ``a!=b``)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        path, value = term.replace("!=", "=").replace("==", "=").split("=", 1)
        node: Any = obj
        for part in path.strip().split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if (str(node) == value.strip() if node is not None else value.strip() == "") == negate:
            return False
    return True


def _log_source(pod: Obj, container: str, previous: bool) -> tuple[str | None, str]:
    """(error, log key) following kubelet: a waiting container that ran before serves its last run."""
    name = pod["metadata"]["name"]
    statuses = pod["status"].get("containerStatuses", []) + pod["status"].get("initContainerStatuses", [])
    status: Obj = next((s for s in statuses if s["name"] == container), {})
    state, last = status.get("state", {}), status.get("lastState", {})
    if previous:
        if not last.get("terminated"):
            return f'previous terminated container "{container}" in pod "{name}" not found', ""
        return None, f"previous:{container}"
    if "running" in state or "terminated" in state:
        return None, container
    if last.get("terminated"):
        return None, f"previous:{container}"
    reason = (state.get("waiting") or {}).get("reason", "ContainerCreating")
    reason = _WAITING_WORDS.get(reason, reason)
    return f'container "{container}" in pod "{name}" is waiting to start: {reason}', ""


def _forbidden_read(res: ResourceType, verb: str, namespace: str | None, name: str | None) -> web.Response:
    """The API server's 403 for a read RBAC does not grant, worded as it words it."""
    what = f'{res.qualified} "{name}"' if name else res.qualified
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{what} is forbidden: User "{writes.SERVICE_ACCOUNT}" cannot {verb} resource "{res.plural}" '
        f'in API group "{res.group}" {where}'
    )
    details = {"group": res.group, "kind": res.plural, **({"name": name} if name else {})}
    return status_response(403, "Forbidden", message, details)


def _too_many_requests(retry_after_s: int) -> web.Response:
    """API Priority and Fairness's rejection: a 429 ``Status`` whose details and header say when to retry."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Too many requests, please try again later.",
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": retry_after_s},
        "code": 429,
    }
    return web.json_response(body, status=429, headers={"Retry-After": str(retry_after_s)})


class KubernetesEmulator(Emulator):
    """A Kubernetes API server for one scenario. Start with ``await start()`` or ``async with``."""

    def __init__(
        self,
        scenario: str | Path | Mapping[str, Any] = "healthy",
        *,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.unreachable = False
        """When true, every request's connection is dropped without an answer."""
        self.read_only = False
        """When true, every write is refused with 403 Forbidden, as RBAC refuses a read-only identity."""
        self.namespace_scoped: frozenset[str] | None = None
        """When set, the identity may read only in these namespaces (RoleBindings, no ClusterRole):
        namespaces, nodes, lists across all namespaces and other namespaces answer 403 Forbidden."""
        self.unreadable: frozenset[str] = frozenset()
        """Resources (plural, e.g. ``jobs``) the identity may not read anywhere: 403 Forbidden, as RBAC
        refuses a Role that grants some API groups but not others."""
        self.metrics_server = True
        """When false, metrics.k8s.io is not served (404), as on a cluster without metrics-server."""
        self.pods = PodRuntime(lambda: self.cluster)
        """Pods created through the API: their start, unschedulable mode and exec (``kubernetes_pods``)."""
        self.requests: list[tuple[str, str]] = []
        """(method, path with query) of every request received, for tests."""
        self.latency_s = 0.0
        """Every answer waits this long first: a slow API server, to keep investigations running."""
        self.throttled = 0
        """The next this-many requests answer 429 ``TooManyRequests`` with ``Retry-After``, as API
        Priority and Fairness rejects requests past a priority level's concurrency."""
        self.throttle_retry_after_s = 1
        self.scenario: dict[str, Any] = {}
        self.cluster = Cluster()
        self._server = ServedApp()
        self.load(scenario)

    def load(self, scenario: str | Path | Mapping[str, Any]) -> None:
        """Replace the served objects with another scenario (safe while running).

        Replacing objects is a write: the cluster's revision moves past the old one, as it would."""
        previous = self.cluster.last_resource_version
        self.scenario = load_scenario(scenario)
        self.cluster = build_cluster(self.scenario)
        self.cluster.last_resource_version = max(self.cluster.last_resource_version, previous + 1)

    @property
    def api_url(self) -> str:
        if self.port == 0:
            raise RuntimeError("the Kubernetes emulator has not been started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> KubernetesEmulator:
        app = web.Application(middlewares=[self._gate])
        for method in _VERBS:
            app.router.add_route(method, "/{tail:.*}", self._dispatch)
        self.port = await self._server.serve(app, self.host, self.port)
        return self

    async def stop(self) -> None:
        await self._server.close()

    def write_kubeconfig(
        self, path: str | Path, *, namespace: str | None = None, token: str | None = None
    ) -> Path:
        """Write a kubeconfig whose current context points at this server; returns the path."""
        context: Obj = {"cluster": "emulator", "user": "emulator"}
        if namespace:
            context["namespace"] = namespace
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.api_url}}],
            "users": [{"name": "emulator", "user": {"token": token or self.token}}],
            "contexts": [{"name": "emulator", "context": context}],
            "current-context": "emulator",
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return target

    @web.middleware
    async def _gate(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        if self.unreachable:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return status_response(401, "Unauthorized", "Unauthorized")
        if self.throttled > 0:
            self.throttled -= 1
            return _too_many_requests(self.throttle_retry_after_s)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        response: web.StreamResponse = await handler(request)
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.strip("/")
        if path == "version":
            return web.json_response(_VERSION)
        if not self.metrics_server and (path + "/").startswith("apis/metrics.k8s.io/"):
            return status_response(404, "NotFound", "the server could not find the requested resource")
        if path in ("api", "apis", *_GROUPS):
            if request.method != "GET":
                return writes.method_not_allowed()
            return web.json_response(self._discovery(path))
        for group in _GROUPS:
            if path.startswith(group + "/"):
                return await self._resource(request, group, path[len(group) + 1 :].split("/"))
        return status_response(404, "NotFound", "the server could not find the requested resource")

    def _discovery(self, path: str) -> Obj:
        if path == "api":
            cidr = [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}]
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": cidr}
        if path == "apis":
            version = {"groupVersion": "apps/v1", "version": "v1"}
            groups = [{"name": "apps", "versions": [version], "preferredVersion": version}]
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        resources: list[Obj] = []
        for (group, plural), res in _RESOURCES.items():
            if group != path:
                continue
            verbs = sorted({"get", "list", "watch", *(_VERBS[m] for m in res.writes)})
            resources.append(
                {
                    "name": plural,
                    "singularName": res.kind.lower(),
                    "namespaced": res.namespaced,
                    "kind": res.kind,
                    "verbs": verbs,
                }
            )
            for sub in sorted(res.subresources):
                resources.append(_subresource_discovery(plural, sub))
        return {"kind": "APIResourceList", "groupVersion": path.removeprefix("apis/"), "resources": resources}

    async def _resource(self, request: web.Request, group: str, parts: list[str]) -> web.StreamResponse:
        namespace: str | None = None
        if len(parts) >= 3 and parts[0] == "namespaces":
            namespace, parts = parts[1], parts[2:]
        res = _RESOURCES.get((group, parts[0]))
        if res is None or len(parts) > 3 or (namespace is not None and not res.namespaced):
            return status_response(404, "NotFound", "the server could not find the requested resource")
        if res.plural in self.unreadable and request.method == "GET":
            verb = "list" if len(parts) == 1 else "get"
            return _forbidden_read(res, verb, namespace, parts[1] if len(parts) > 1 else None)
        if self.namespace_scoped is not None and namespace not in self.namespace_scoped:
            verb = "list" if len(parts) == 1 else "get"
            return _forbidden_read(res, verb, namespace, parts[1] if len(parts) > 1 else None)
        objects: list[Obj] = getattr(self.cluster, res.attr)
        if namespace is not None:
            objects = [o for o in objects if o["metadata"].get("namespace") == namespace]
        if len(parts) == 1:
            if request.method == "POST" and "POST" in res.writes:
                if self.read_only:
                    return writes.forbidden(res, "create", "", namespace, None)
                return await self.pods.create(request, res, namespace)
            if request.method != "GET":
                return writes.method_not_allowed()
            return self._list(request, res.kind, res.api_version, objects)
        if res.namespaced and namespace is None:
            return status_response(404, "NotFound", "the server could not find the requested resource")
        name, sub = parts[1], (parts[2] if len(parts) == 3 else None)
        if sub is not None and sub not in res.subresources:
            return status_response(404, "NotFound", "the server could not find the requested resource")
        not_writable = request.method not in res.writes or request.method == "POST"
        if request.method != "GET" and (sub == "log" or (sub is None and not_writable)):
            return writes.method_not_allowed()
        if request.method != "GET" and self.read_only:
            return writes.forbidden(res, _VERBS[request.method], name, namespace, sub)
        found = next((o for o in objects if o["metadata"]["name"] == name), None)
        if found is None:
            return not_found(res.plural, name, res.group)
        return await self._object(request, res, found, sub)

    async def _object(
        self, request: web.Request, res: ResourceType, found: Obj, sub: str | None
    ) -> web.StreamResponse:
        if sub == "log":
            return self._log(request, found)
        if sub == "exec":
            return await self.pods.exec(request, found)
        if sub == "scale":
            if request.method == "PATCH":
                return await writes.patch_scale(self.cluster, res, found, request)
            return writes.read_scale(res, found)
        if request.method == "PATCH":
            return await writes.patch_object(self.cluster, res, found, request)
        if request.method == "DELETE":
            return writes.delete_object(self.cluster, res, found, request)
        partial = partial_metadata(request.headers.get("Accept", ""), found)
        if partial is not None:
            return web.json_response(partial)
        return web.json_response({"kind": res.kind, "apiVersion": res.api_version, **found})

    def _list(self, request: web.Request, kind: str, api_version: str, objects: list[Obj]) -> web.Response:
        labels = request.query.get("labelSelector")
        fields = request.query.get("fieldSelector")
        items = [
            {"kind": kind, "apiVersion": api_version, **o}
            for o in objects
            if (not labels or label_selector_matches(labels, o["metadata"].get("labels") or {}))
            and (not fields or _field_selector_matches(fields, o))
        ]
        meta = {"resourceVersion": str(self.cluster.last_resource_version)}
        return web.json_response(
            {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta, "items": items}
        )

    def _log(self, request: web.Request, pod: Obj) -> web.Response:
        name, ns = pod["metadata"]["name"], pod["metadata"]["namespace"]
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = request.query.get("container")
        if container is None:
            if len(names) != 1:
                choices = " ".join(names)
                return status_response(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: [{choices}]",
                )
            container = names[0]
        if container not in names + [c["name"] for c in pod["spec"].get("initContainers") or []]:
            return status_response(400, "BadRequest", f"container {container} is not valid for pod {name}")
        if not pod["spec"].get("nodeName"):
            return status_response(400, "BadRequest", f"pod {name} does not have a host assigned")
        previous = request.query.get("previous", "false").lower() == "true"
        problem, key = _log_source(pod, container, previous)
        if problem:
            return status_response(400, "BadRequest", problem)
        text = self.cluster.logs.get((ns, name, key), "")
        lines = (text or "").splitlines()
        tail = request.query.get("tailLines")
        if tail is not None and tail.isdigit():
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        body = "".join(line + "\n" for line in lines)
        return web.Response(text=body, content_type="text/plain")
