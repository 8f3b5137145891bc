"""networking.k8s.io/v1 Ingresses and core/v1 ConfigMaps for the Kubernetes emulator, from compact
scenario entries.

    ingresses:
      - {name: shop, class: nginx, address: 203.0.113.10, tls: [shop.example.com],
         rules: [{host: shop.example.com, paths: [{path: /, service: frontend, port: 80}]}]}
    configmaps:
      - {name: checkout-config, data: {PAYMENT_TIMEOUT_S: "1"}, age: 30d,
         changes: [{manager: kubectl-edit, age: 20m, keys: [PAYMENT_TIMEOUT_S]}]}

A config map's ``managedFields`` say who last wrote which keys and when, as server-side field
tracking records them: the creating manager (``helm`` by default, an ``Update`` at creation time, owning
every key) and then one entry per ``changes`` item, which takes over the keys it names (they leave the
earlier entries, as ownership moves on the API server).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from incidentfox.emulators.kubernetes_fields import Obj, object_meta, timestamp


def build_ingress(spec: Mapping[str, Any], namespace: str, now: datetime) -> Obj:
    name = str(spec["name"])
    rules = []
    for rule in spec.get("rules") or []:
        paths = [
            {
                "path": str(p.get("path", "/")),
                "pathType": str(p.get("path_type", "Prefix")),
                "backend": {
                    "service": {"name": str(p["service"]), "port": {"number": int(p.get("port", 80))}}
                },
            }
            for p in rule.get("paths") or []
        ]
        entry: Obj = {"http": {"paths": paths}}
        if rule.get("host"):
            entry["host"] = str(rule["host"])
        rules.append(entry)
    ingress_spec: Obj = {"rules": rules}
    if spec.get("class"):
        ingress_spec["ingressClassName"] = str(spec["class"])
    if spec.get("tls"):
        ingress_spec["tls"] = [{"hosts": list(spec["tls"]), "secretName": f"{name}-tls"}]
    if spec.get("default_service"):
        ingress_spec["defaultBackend"] = {
            "service": {"name": str(spec["default_service"]), "port": {"number": 80}}
        }
    balancer = [{"ip": str(spec["address"])}] if spec.get("address") else []
    return {
        "metadata": object_meta("Ingress", name, namespace, now, spec.get("age", "30d"), generation=1),
        "spec": ingress_spec,
        "status": {"loadBalancer": {"ingress": balancer} if balancer else {}},
    }


def _fields(keys: list[str], *, owns_map: bool = False) -> Obj:
    """``fieldsV1`` owning ``keys`` of ``data`` (and the map itself, ``.``, for its creator)."""
    return {"f:data": {**({".": {}} if owns_map else {}), **{f"f:{key}": {} for key in keys}}}


def build_configmap(spec: Mapping[str, Any], namespace: str, now: datetime) -> Obj:
    name = str(spec["name"])
    data = {str(k): str(v) for k, v in (spec.get("data") or {}).items()}
    created = spec.get("age", "30d")
    managed: list[Obj] = [
        {
            "manager": str(spec.get("manager", "helm")),
            "operation": "Update",
            "apiVersion": "v1",
            "time": timestamp(now, created),
            "fieldsType": "FieldsV1",
            "fieldsV1": _fields(sorted(data), owns_map=True),
        }
    ]
    for change in spec.get("changes") or []:
        keys = [str(k) for k in change.get("keys") or []]
        for earlier in managed:
            for key in keys:
                earlier["fieldsV1"]["f:data"].pop(f"f:{key}", None)
        managed.append(
            {
                "manager": str(change.get("manager", "kubectl-edit")),
                "operation": str(change.get("operation", "Update")),
                "apiVersion": "v1",
                "time": timestamp(now, change.get("age", "10m")),
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields(keys),
            }
        )
    labels = dict(spec.get("labels") or {})
    meta = object_meta("ConfigMap", name, namespace, now, created, labels=labels, managedFields=managed)
    return {"metadata": meta, "data": data}
