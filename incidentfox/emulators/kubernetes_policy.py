"""Policy, storage and admission kinds of the Kubernetes emulator, from compact scenario entries.

    poddisruptionbudgets:
      - {name: checkout, selector: {app: checkout}, min_available: 2}     # or max_unavailable: 0
    networkpolicies:
      - {name: allow-frontend, selector: {app: frontend}, policy_types: [Ingress]}
    ingressclasses:
      - {name: nginx, controller: k8s.io/ingress-nginx, default: true}
    storageclasses:
      - {name: standard, provisioner: ebs.csi.aws.com, default: true}
    resourcequotas:
      - {name: compute, hard: {pods: "10", requests.cpu: "4"}, used: {pods: "10", requests.cpu: "3500m"}}
    secrets:
      - {name: shop-tls, type: kubernetes.io/tls}
    webhooks:
      - {name: policy.example.com, kind: validating, service: policy/policy-webhook, failure_policy: Fail}

A PodDisruptionBudget's status is computed as the disruption controller computes it from the pods its
selector matches: ``expectedPods``, ``currentHealthy`` (ready pods), ``desiredHealthy`` and
``disruptionsAllowed`` with the ``DisruptionAllowed`` condition. Secret values are placeholders;
``partial_metadata`` answers a request that asks for ``PartialObjectMetadata`` (``kubectl get
--output-watch-events``-style metadata-only reads), which is how a reader checks that a Secret exists
without receiving its data.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from incidentfox.emulators.kubernetes_fields import Obj, matches, object_meta, pod_ready

DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
DEFAULT_INGRESS_CLASS = "ingressclass.kubernetes.io/is-default-class"


def _count(value: Any, total: int) -> int:
    """An ``IntOrString`` against ``total``: ``2`` or ``"50%"`` (rounded up, as the controller does)."""
    text = str(value)
    if text.endswith("%"):
        return -(-int(text[:-1]) * total // 100)
    return int(text)


def build_pdb(spec: Mapping[str, Any], namespace: str, pods: list[Obj], now: datetime) -> Obj:
    name = str(spec["name"])
    selector = dict(spec.get("selector") or {"app": name})
    own = [p for p in pods if p["metadata"]["namespace"] == namespace and matches(p, selector)]
    expected = len(own)
    healthy = sum(1 for p in own if pod_ready(p))
    pdb_spec: Obj = {"selector": {"matchLabels": selector}}
    if spec.get("max_unavailable") is not None:
        pdb_spec["maxUnavailable"] = spec["max_unavailable"]
        desired = max(0, expected - _count(spec["max_unavailable"], expected))
    else:
        pdb_spec["minAvailable"] = spec.get("min_available", 1)
        desired = _count(pdb_spec["minAvailable"], expected)
    allowed = max(0, healthy - desired)
    at = object_meta("PodDisruptionBudget", name, namespace, now, spec.get("age", "30d"))["creationTimestamp"]
    allowed_condition: Obj = {
        "type": "DisruptionAllowed",
        "status": "True" if allowed else "False",
        "reason": "SufficientPods" if allowed else "InsufficientPods",
        "message": "",
        "lastTransitionTime": at,
        "observedGeneration": 1,
    }
    return {
        "metadata": object_meta(
            "PodDisruptionBudget", name, namespace, now, spec.get("age", "30d"), generation=1
        ),
        "spec": pdb_spec,
        "status": {
            "observedGeneration": 1,
            "expectedPods": expected,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "disruptionsAllowed": allowed,
            "conditions": [allowed_condition],
        },
    }


def build_network_policy(spec: Mapping[str, Any], namespace: str, now: datetime) -> Obj:
    name = str(spec["name"])
    types = list(spec.get("policy_types") or ["Ingress"])
    policy_spec: Obj = {
        "podSelector": {"matchLabels": dict(spec.get("selector") or {})},
        "policyTypes": types,
    }
    if "Ingress" in types:
        sources = dict(spec.get("from") or {})
        policy_spec["ingress"] = [{"from": [{"podSelector": {"matchLabels": sources}}]}] if sources else []
    if "Egress" in types:
        policy_spec["egress"] = []
    return {
        "metadata": object_meta("NetworkPolicy", name, namespace, now, spec.get("age", "30d"), generation=1),
        "spec": policy_spec,
    }


def build_ingress_class(spec: Mapping[str, Any], now: datetime) -> Obj:
    name = str(spec["name"])
    annotations = {DEFAULT_INGRESS_CLASS: "true"} if spec.get("default") else None
    return {
        "metadata": object_meta(
            "IngressClass", name, None, now, spec.get("age", "90d"), annotations=annotations, generation=1
        ),
        "spec": {"controller": str(spec.get("controller", "k8s.io/ingress-nginx"))},
    }


def build_storage_class(spec: Mapping[str, Any], now: datetime) -> Obj:
    name = str(spec["name"])
    annotations = {DEFAULT_CLASS: "true"} if spec.get("default") else None
    return {
        "metadata": object_meta(
            "StorageClass", name, None, now, spec.get("age", "90d"), annotations=annotations
        ),
        "provisioner": str(spec.get("provisioner", "ebs.csi.aws.com")),
        "reclaimPolicy": str(spec.get("reclaim_policy", "Delete")),
        "volumeBindingMode": str(spec.get("binding_mode", "WaitForFirstConsumer")),
        "allowVolumeExpansion": True,
    }


def build_resource_quota(spec: Mapping[str, Any], namespace: str, now: datetime) -> Obj:
    name = str(spec["name"])
    hard = {str(k): str(v) for k, v in (spec.get("hard") or {}).items()}
    used = {str(k): str(v) for k, v in (spec.get("used") or {}).items()}
    return {
        "metadata": object_meta("ResourceQuota", name, namespace, now, spec.get("age", "30d")),
        "spec": {"hard": hard},
        "status": {"hard": hard, "used": {k: used.get(k, "0") for k in hard}},
    }


def _placeholder(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def build_secret(spec: Mapping[str, Any], namespace: str, now: datetime) -> Obj:
    name = str(spec["name"])
    kind = str(spec.get("type", "Opaque"))
    if kind == "kubernetes.io/tls":
        data = {"tls.crt": _placeholder("certificate"), "tls.key": _placeholder("key")}
    elif kind == "kubernetes.io/dockerconfigjson":
        data = {".dockerconfigjson": _placeholder('{"auths":{}}')}
    else:
        data = {str(k): _placeholder(str(k)) for k in spec.get("keys") or []}
    return {
        "metadata": object_meta("Secret", name, namespace, now, spec.get("age", "30d")),
        "type": kind,
        "data": data,
    }


def build_webhook_configuration(spec: Mapping[str, Any], now: datetime) -> tuple[str, Obj]:
    """(Cluster attribute, object): a validating or mutating configuration with one webhook that calls
    the in-cluster ``service`` (``namespace/name``) on pod creation."""
    name = str(spec["name"])
    mutating = str(spec.get("kind", "validating")) == "mutating"
    service_ns, _, service = str(spec["service"]).rpartition("/")
    hook: Obj = {
        "name": str(spec.get("webhook", name if "." in name else f"{name}.example.com")),
        "clientConfig": {
            "service": {
                "namespace": service_ns or "default",
                "name": service,
                "path": str(spec.get("path", "/validate" if not mutating else "/mutate")),
                "port": int(spec.get("port", 443)),
            },
            "caBundle": _placeholder("ca"),
        },
        "rules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": list(spec.get("resources") or ["pods"]),
                "scope": "*",
            }
        ],
        "failurePolicy": str(spec.get("failure_policy", "Fail")),
        "matchPolicy": "Equivalent",
        "namespaceSelector": {},
        "objectSelector": {},
        "sideEffects": "None",
        "timeoutSeconds": int(spec.get("timeout", 10)),
        "admissionReviewVersions": ["v1"],
    }
    if mutating:
        hook["reinvocationPolicy"] = "Never"
    kind = "MutatingWebhookConfiguration" if mutating else "ValidatingWebhookConfiguration"
    obj = {
        "metadata": object_meta(kind, name, None, now, spec.get("age", "30d"), generation=1),
        "webhooks": [hook],
    }
    return kind.lower() + "s", obj


def build_policy_objects(doc: Mapping[str, Any], cluster: Any, default_ns: str, now: datetime) -> None:
    """Fill ``cluster`` with the scenario's policy, storage and admission objects (after its pods)."""

    def ns(spec: Mapping[str, Any]) -> str:
        return str(spec.get("namespace", default_ns))

    for spec in doc.get("poddisruptionbudgets") or []:
        cluster.poddisruptionbudgets.append(build_pdb(spec, ns(spec), cluster.pods, now))
    for spec in doc.get("networkpolicies") or []:
        cluster.networkpolicies.append(build_network_policy(spec, ns(spec), now))
    for spec in doc.get("ingressclasses") or []:
        cluster.ingressclasses.append(build_ingress_class(spec, now))
    for spec in doc.get("storageclasses") or []:
        cluster.storageclasses.append(build_storage_class(spec, now))
    for spec in doc.get("resourcequotas") or []:
        cluster.resourcequotas.append(build_resource_quota(spec, ns(spec), now))
    for spec in doc.get("secrets") or []:
        cluster.secrets.append(build_secret(spec, ns(spec), now))
    for spec in doc.get("webhooks") or []:
        attr, obj = build_webhook_configuration(spec, now)
        getattr(cluster, attr).append(obj)
