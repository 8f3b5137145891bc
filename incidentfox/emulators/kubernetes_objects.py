"""Turn a compact scenario document into fully populated Kubernetes API objects.

The scenario YAML states only what matters to a story (a pod's state, its previous log, an event);
this module fills in everything a real API server would return, so that the strict pydantic models
of the ``kubernetes`` client (v37) accept the responses unchanged. Derived objects are computed the
way the control plane would: deployment status from its pods, endpoints from service selectors and
pod readiness, replica sets from deployments (see ``kubernetes_workloads``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from incidentfox.emulators.kubernetes_batch import build_cronjob, build_job
from incidentfox.emulators.kubernetes_fields import (
    Obj,
    condition,
    container_spec,
    container_state,
    matches,
    object_meta,
    pod_ready,
    timestamp,
    uid,
)
from incidentfox.emulators.kubernetes_ingress_config import build_configmap, build_ingress
from incidentfox.emulators.kubernetes_metrics import build_hpa, build_pod_metrics
from incidentfox.emulators.kubernetes_pod_status import (
    add_init_containers,
    add_node_conditions,
    add_pod_status,
)
from incidentfox.emulators.kubernetes_policy import build_policy_objects
from incidentfox.emulators.kubernetes_workloads import build_daemonset, build_deployment, build_statefulset

_EVENT_SOURCES = {
    "FailedScheduling": "default-scheduler",
    "Scheduled": "default-scheduler",
    "ProvisioningFailed": "persistentvolume-controller",
    "ExternalProvisioning": "persistentvolume-controller",
    "NodeNotReady": "node-controller",
    "ScalingReplicaSet": "deployment-controller",
    "SuccessfulCreate": "replicaset-controller",
    "FailedCreate": "replicaset-controller",
    "SyncLoadBalancerFailed": "service-controller",
    "FailedGetResourceMetric": "horizontal-pod-autoscaler",
    "FailedGetScale": "horizontal-pod-autoscaler",
}


@dataclass(slots=True)
class Cluster:
    """Every object of a scenario, as the API server would return it."""

    namespaces: list[Obj] = field(default_factory=list)
    pods: list[Obj] = field(default_factory=list)
    events: list[Obj] = field(default_factory=list)
    deployments: list[Obj] = field(default_factory=list)
    replicasets: list[Obj] = field(default_factory=list)
    statefulsets: list[Obj] = field(default_factory=list)
    daemonsets: list[Obj] = field(default_factory=list)
    services: list[Obj] = field(default_factory=list)
    endpoints: list[Obj] = field(default_factory=list)
    nodes: list[Obj] = field(default_factory=list)
    persistentvolumeclaims: list[Obj] = field(default_factory=list)
    networkpolicies: list[Obj] = field(default_factory=list)
    horizontalpodautoscalers: list[Obj] = field(default_factory=list)
    jobs: list[Obj] = field(default_factory=list)
    cronjobs: list[Obj] = field(default_factory=list)
    ingresses: list[Obj] = field(default_factory=list)
    configmaps: list[Obj] = field(default_factory=list)
    poddisruptionbudgets: list[Obj] = field(default_factory=list)
    ingressclasses: list[Obj] = field(default_factory=list)
    storageclasses: list[Obj] = field(default_factory=list)
    resourcequotas: list[Obj] = field(default_factory=list)
    secrets: list[Obj] = field(default_factory=list)
    validatingwebhookconfigurations: list[Obj] = field(default_factory=list)
    mutatingwebhookconfigurations: list[Obj] = field(default_factory=list)
    """Policy, storage and admission kinds (``kubernetes_policy``)."""
    podmetrics: list[Obj] = field(default_factory=list)
    """metrics.k8s.io PodMetrics, from the ``usage`` of a scenario's containers."""
    logs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(namespace, pod, container) -> current log; previous logs are keyed with a ``previous:`` prefix."""
    last_resource_version: int = 5_000_000
    """Above every generated ``resourceVersion``, so the versions writes hand out only grow."""

    def next_resource_version(self) -> str:
        """A new ``resourceVersion`` for an object a write changed."""
        self.last_resource_version += 1
        return str(self.last_resource_version)


class _Builder:
    def __init__(self, doc: Mapping[str, Any], now: datetime) -> None:
        self.doc = doc
        self.now = now
        self.default_ns = str(doc.get("namespace", "default"))
        self.cluster = Cluster()
        self.node_ips: dict[str, str] = {}

    def build(self) -> Cluster:
        for i, spec in enumerate(self.doc.get("nodes") or []):
            self.cluster.nodes.append(self._node(spec, i))
        for i, spec in enumerate(self.doc.get("pods") or []):
            self.cluster.pods.append(self._pod(spec, i))
            usage = {str(c["name"]): c["usage"] for c in spec.get("containers") or [] if c.get("usage")}
            found = build_pod_metrics(self.cluster.pods[-1], usage, self.now)
            if found is not None:
                self.cluster.podmetrics.append(found)
        for spec in self.doc.get("deployments") or []:
            self._deployment(spec)
        for spec in self.doc.get("statefulsets") or []:
            self.cluster.statefulsets.append(
                build_statefulset(spec, self._ns(spec), self.cluster.pods, self.now)
            )
        schedulable = sum(1 for n in self.cluster.nodes if not n["spec"].get("unschedulable"))
        for spec in self.doc.get("daemonsets") or []:
            self.cluster.daemonsets.append(
                build_daemonset(spec, self._ns(spec), self.cluster.pods, schedulable, self.now)
            )
        for spec in self.doc.get("hpas") or []:
            self.cluster.horizontalpodautoscalers.append(build_hpa(spec, self._ns(spec), self.now))
        for spec in self.doc.get("services") or []:
            self._service(spec)
        for spec in self.doc.get("pvcs") or []:
            self.cluster.persistentvolumeclaims.append(self._pvc(spec))
        for spec in self.doc.get("jobs") or []:
            self.cluster.jobs.append(build_job(spec, self._ns(spec), self.now))
        for spec in self.doc.get("cronjobs") or []:
            self.cluster.cronjobs.append(build_cronjob(spec, self._ns(spec), self.cluster.jobs, self.now))
        for spec in self.doc.get("ingresses") or []:
            self.cluster.ingresses.append(build_ingress(spec, self._ns(spec), self.now))
        for spec in self.doc.get("configmaps") or []:
            self.cluster.configmaps.append(build_configmap(spec, self._ns(spec), self.now))
        build_policy_objects(self.doc, self.cluster, self.default_ns, self.now)
        for i, spec in enumerate(self.doc.get("events") or []):
            self.cluster.events.append(self._event(spec, i))
        self._namespaces()
        return self.cluster

    def _ns(self, spec: Mapping[str, Any]) -> str:
        return str(spec.get("namespace", self.default_ns))

    def _namespaces(self) -> None:
        names = {*(self.doc.get("namespaces") or []), "default", "kube-system"}
        kinds = (
            "pods",
            "events",
            "deployments",
            "statefulsets",
            "daemonsets",
            "services",
            "persistentvolumeclaims",
            "jobs",
            "cronjobs",
            "ingresses",
            "configmaps",
        )
        for kind in kinds:
            names.update(o["metadata"]["namespace"] for o in getattr(self.cluster, kind))
        for name in sorted(names):
            meta = object_meta(
                "Namespace", name, None, self.now, "30d", labels={"kubernetes.io/metadata.name": name}
            )
            self.cluster.namespaces.append(
                {"metadata": meta, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            )

    def _node(self, spec: Mapping[str, Any], index: int) -> Obj:
        name = str(spec["name"])
        ip = f"10.0.0.{10 + index}"
        self.node_ips[name] = ip
        ready = spec.get("ready", True)
        pressure = set(spec.get("pressure") or [])
        conditions = [
            condition(kind, kind in pressure, self.now, f"KubeletHas{'' if kind in pressure else 'No'}{kind}")
            for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")
        ]
        if ready is True:
            conditions.append(
                condition("Ready", True, self.now, "KubeletReady", "kubelet is posting ready status")
            )
        else:
            status = "Unknown" if str(ready).lower() == "unknown" else "False"
            reason = spec.get("reason", "NodeStatusUnknown" if status == "Unknown" else "KubeletNotReady")
            message = spec.get("message", "Kubelet stopped posting node status.")
            conditions.append(condition("Ready", status, self.now, reason, message))
        add_node_conditions(conditions, spec, self.now)
        for cond in conditions:
            cond["lastHeartbeatTime"] = timestamp(self.now, spec.get("heartbeat_age", "20s"))
        roles = {f"node-role.kubernetes.io/{r}": "" for r in spec.get("roles") or []}
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **roles}
        node_spec: Obj = {"podCIDR": f"10.244.{index}.0/24"}
        if spec.get("taints"):
            node_spec["taints"] = [
                {
                    "key": t["key"],
                    "effect": t.get("effect", "NoSchedule"),
                    **({"value": t["value"]} if "value" in t else {}),
                }
                for t in spec["taints"]
            ]
        if spec.get("unschedulable"):
            node_spec["unschedulable"] = True
        capacity = {
            "cpu": str(spec.get("cpu", "4")),
            "memory": str(spec.get("memory", "16Gi")),
            "pods": "110",
        }
        return {
            "metadata": object_meta("Node", name, None, self.now, spec.get("age", "30d"), labels=labels),
            "spec": node_spec,
            "status": {
                "conditions": conditions,
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                "capacity": capacity,
                "allocatable": capacity,
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": uid("boot", name),
                    "containerRuntimeVersion": "containerd://1.7.24",
                    "kernelVersion": "6.1.0-28-amd64",
                    "kubeProxyVersion": "v1.33.0",
                    "kubeletVersion": "v1.33.0",
                    "machineID": uid("machine", name).replace("-", ""),
                    "operatingSystem": "linux",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "systemUUID": uid("system", name),
                },
            },
        }

    def _pod(self, spec: Mapping[str, Any], index: int) -> Obj:
        name, ns = str(spec["name"]), self._ns(spec)
        node = spec.get("node")
        owner_refs: list[Obj] | None = None
        owner_kind = str(spec.get("owner_kind", "ReplicaSet"))
        if spec.get("owner"):
            owner_name = name.rsplit("-", 1)[0] if owner_kind == "ReplicaSet" else str(spec["owner"])
            owner_refs = [
                {
                    "apiVersion": "apps/v1",
                    "kind": owner_kind,
                    "name": owner_name,
                    "uid": uid(owner_kind, ns, owner_name),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        labels = dict(spec.get("labels") or {"app": str(spec.get("owner") or name)})
        if owner_refs and owner_kind == "ReplicaSet":
            labels["pod-template-hash"] = owner_refs[0]["name"].rsplit("-", 1)[-1]
        statuses: list[Obj] = []
        containers: list[Obj] = []
        for c in spec.get("containers") or []:
            containers.append(container_spec(c))
            state = container_state(c.get("state"), self.now)
            status: Obj = {
                "name": c["name"],
                "image": c["image"],
                "imageID": ""
                if "waiting" in state
                else f"{c['image'].split(':')[0]}@sha256:{uid(c['image'])}",
                "ready": bool(c.get("ready", "running" in state)),
                "restartCount": int(c.get("restarts", 0)),
                "started": "running" in state,
                "state": state,
                "lastState": container_state(c["last"], self.now) if c.get("last") else {},
            }
            if "running" in state:
                status["containerID"] = "containerd://" + uid("ctr", ns, name, c["name"]).replace("-", "")
            statuses.append(status)
            self.cluster.logs[(ns, name, c["name"])] = str(c.get("log", ""))
            if c.get("previous_log") is not None:
                self.cluster.logs[(ns, name, "previous:" + c["name"])] = str(c["previous_log"])
        all_ready = bool(statuses) and all(s["ready"] for s in statuses)
        phase = spec.get("phase", "Running" if node else "Pending")
        conditions = [
            condition(
                "PodScheduled",
                bool(node),
                self.now,
                None if node else "Unschedulable",
                spec.get("unschedulable"),
            ),
        ]
        if node:
            reason = None if all_ready else "ContainersNotReady"
            not_ready = [s["name"] for s in statuses if not s["ready"]]
            msg = None if all_ready else f"containers with unready status: [{' '.join(not_ready)}]"
            conditions += [
                condition("Initialized", True, self.now),
                condition("ContainersReady", all_ready, self.now, reason, msg),
                condition("Ready", all_ready, self.now, reason, msg),
            ]
        pod_spec: Obj = {
            "containers": containers,
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
        }
        if node:
            pod_spec["nodeName"] = node
        if spec.get("pvcs"):
            pod_spec["volumes"] = [
                {"name": f"vol-{i}", "persistentVolumeClaim": {"claimName": claim}}
                for i, claim in enumerate(spec["pvcs"])
            ]
        status_obj: Obj = {"phase": phase, "conditions": conditions, "qosClass": "Burstable"}
        if node:
            ip = f"10.244.{index // 250}.{index % 250 + 2}"
            status_obj.update(
                hostIP=self.node_ips.get(node, "10.0.0.99"),
                podIP=ip,
                podIPs=[{"ip": ip}],
                startTime=timestamp(self.now, spec.get("age", "1h")),
                containerStatuses=statuses,
            )
        meta = object_meta(
            "Pod", name, ns, self.now, spec.get("age", "1h"), labels=labels, ownerReferences=owner_refs
        )
        pod = {"metadata": meta, "spec": pod_spec, "status": status_obj}
        add_init_containers(pod, spec, self.now, self.cluster.logs)
        add_pod_status(pod, spec, self.now)
        return pod

    def _deployment(self, spec: Mapping[str, Any]) -> None:
        deployment, *replicasets = build_deployment(spec, self._ns(spec), self.cluster.pods, self.now)
        self.cluster.deployments.append(deployment)
        self.cluster.replicasets.extend(replicasets)

    def _service(self, spec: Mapping[str, Any]) -> None:
        name, ns = str(spec["name"]), self._ns(spec)
        selector = dict(spec.get("selector") or {"app": name})
        ports = []
        for p in spec.get("ports") or [80]:
            port, _, target = str(p).partition(":")
            ports.append(
                {"name": f"p{port}", "port": int(port), "targetPort": int(target or port), "protocol": "TCP"}
            )
        index = len(self.cluster.services)
        self.cluster.services.append(
            {
                "metadata": object_meta(
                    "Service", name, ns, self.now, spec.get("age", "5d"), labels={"app": name}
                ),
                "spec": {
                    "type": spec.get("type", "ClusterIP"),
                    "clusterIP": "None" if spec.get("headless") else f"10.96.0.{index + 10}",
                    "clusterIPs": ["None" if spec.get("headless") else f"10.96.0.{index + 10}"],
                    "selector": selector,
                    "ports": ports,
                    "sessionAffinity": "None",
                },
                "status": {
                    "loadBalancer": {"ingress": [{"ip": str(spec["lb_address"])}]}
                    if spec.get("lb_address")
                    else {}
                },
            }
        )
        ready: list[Obj] = []
        not_ready: list[Obj] = []
        for pod in self.cluster.pods:
            if (
                pod["metadata"]["namespace"] != ns
                or not matches(pod, selector)
                or not pod["status"].get("podIP")
            ):
                continue
            address = {
                "ip": pod["status"]["podIP"],
                "nodeName": pod["spec"]["nodeName"],
                "targetRef": {
                    "kind": "Pod",
                    "name": pod["metadata"]["name"],
                    "namespace": ns,
                    "uid": pod["metadata"]["uid"],
                },
            }
            (ready if pod_ready(pod) else not_ready).append(address)
        endpoint: Obj = {
            "metadata": object_meta(
                "Endpoints", name, ns, self.now, spec.get("age", "5d"), labels={"app": name}
            )
        }
        if ready or not_ready:
            subset: Obj = {
                "ports": [{"name": p["name"], "port": p["targetPort"], "protocol": "TCP"} for p in ports]
            }
            if ready:
                subset["addresses"] = ready
            if not_ready:
                subset["notReadyAddresses"] = not_ready
            endpoint["subsets"] = [subset]
        self.cluster.endpoints.append(endpoint)

    def _pvc(self, spec: Mapping[str, Any]) -> Obj:
        name, ns = str(spec["name"]), self._ns(spec)
        phase = spec.get("phase", "Bound")
        request = str(spec.get("request", "10Gi"))
        pvc_spec: Obj = {
            "accessModes": list(spec.get("access_modes") or ["ReadWriteOnce"]),
            "resources": {"requests": {"storage": request}},
            "storageClassName": spec.get("storage_class", "standard"),
            "volumeMode": "Filesystem",
        }
        status: Obj = {"phase": phase}
        if phase in ("Bound", "Lost"):
            pvc_spec["volumeName"] = "pvc-" + uid("PersistentVolumeClaim", ns, name)
        if phase == "Bound":
            status.update(accessModes=pvc_spec["accessModes"], capacity={"storage": request})
        meta = object_meta(
            "PersistentVolumeClaim",
            name,
            ns,
            self.now,
            spec.get("age", "1h"),
            finalizers=["kubernetes.io/pvc-protection"],
        )
        return {"metadata": meta, "spec": pvc_spec, "status": status}

    def _event(self, spec: Mapping[str, Any], index: int) -> Obj:
        kind, _, obj_name = str(spec["object"]).partition("/")
        ns = str(spec.get("namespace", "default")) if kind == "Node" else self._ns(spec)
        reason = str(spec["reason"])
        component = spec.get("source", _EVENT_SOURCES.get(reason, "kubelet"))
        namespaced = kind != "Node"
        involved: Obj = {
            "kind": kind,
            "name": obj_name,
            "uid": uid(kind, ns if namespaced else "", obj_name),
            "apiVersion": "apps/v1" if kind in ("Deployment", "ReplicaSet") else "v1",
        }
        if namespaced:
            involved["namespace"] = ns
        if spec.get("field_path"):
            involved["fieldPath"] = spec["field_path"]
        last = spec.get("age", "1m")
        name = f"{obj_name}.{uuid.uuid5(uuid.NAMESPACE_OID, f'{index}{reason}').hex[:16]}"
        return {
            "metadata": object_meta("Event", name, ns, self.now, last),
            "involvedObject": involved,
            "reason": reason,
            "message": str(spec["message"]),
            "source": {"component": component, **({"host": spec["host"]} if spec.get("host") else {})},
            "firstTimestamp": timestamp(self.now, spec.get("first_age", last)),
            "lastTimestamp": timestamp(self.now, last),
            "count": int(spec.get("count", 1)),
            "type": spec.get("type", "Warning"),
            "reportingComponent": component,
            "reportingInstance": spec.get("host", ""),
        }


def build_cluster(doc: Mapping[str, Any], now: datetime | None = None) -> Cluster:
    """All API objects described by a scenario document, timed relative to ``now``."""
    return _Builder(doc, now or datetime.now(UTC)).build()
