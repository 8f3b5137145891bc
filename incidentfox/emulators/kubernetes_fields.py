"""Boilerplate fields of Kubernetes objects, filled in so scenario YAML can stay short.

Helpers for the emulator's object builder: timestamps relative to "now", stable UIDs, object
metadata, container states, probes, container specs and conditions, all in the API's camelCase.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

Obj = dict[str, Any]

_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str | int | None) -> timedelta:
    """``"1h30m"`` -> 90 minutes; a bare int is seconds; ``None`` is zero."""
    if text is None:
        return timedelta()
    if isinstance(text, int):
        return timedelta(seconds=text)
    return timedelta(seconds=sum(int(n) * _SECONDS[u] for n, u in _DURATION.findall(str(text))))


def timestamp(now: datetime, age: str | int | None) -> str:
    return (now - parse_age(age)).strftime("%Y-%m-%dT%H:%M:%SZ")


def uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def object_meta(kind: str, name: str, namespace: str | None, now: datetime, age: Any, **extra: Any) -> Obj:
    meta: Obj = {
        "name": name,
        "uid": uid(kind, namespace or "", name),
        "resourceVersion": str(abs(hash((kind, namespace, name))) % 900000 + 1000),
        "creationTimestamp": timestamp(now, age),
    }
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update({k: v for k, v in extra.items() if v})
    return meta


def container_state(spec: Any, now: datetime) -> Obj:
    """``"running"`` or ``{waiting|terminated|running: {...}}`` in snake or camel case -> V1ContainerState."""
    if spec in (None, "running"):
        return {"running": {"startedAt": timestamp(now, "10m")}}
    if spec == "creating":
        return {"waiting": {"reason": "ContainerCreating"}}
    (kind, raw), *_ = dict(spec).items()
    body: dict[str, Any] = dict(raw or {})
    if kind == "running":
        return {"running": {"startedAt": timestamp(now, body.get("age", "10m"))}}
    if kind == "waiting":
        return {"waiting": {k: v for k, v in body.items() if k in ("reason", "message")}}
    age = parse_age(body.get("age", "1m"))
    finished = now - age
    terminated: Obj = {
        "exitCode": int(body.get("exit_code", body.get("exitCode", 1))),
        "reason": body.get("reason", "Error"),
        "startedAt": timestamp(finished, body.get("ran_for", "20s")),
        "finishedAt": timestamp(now, str(int(age.total_seconds())) + "s"),
        "containerID": "containerd://" + uid("term", str(body)).replace("-", ""),
    }
    if body.get("message"):
        terminated["message"] = str(body["message"])
    return {"terminated": terminated}


def probe(spec: Mapping[str, Any] | None) -> Obj | None:
    if not spec:
        return None
    probe: Obj = {
        "initialDelaySeconds": spec.get("initial_delay", 5),
        "periodSeconds": spec.get("period", 10),
        "timeoutSeconds": spec.get("timeout", 1),
        "successThreshold": 1,
        "failureThreshold": spec.get("failure_threshold", 3),
    }
    if "http" in spec:
        probe["httpGet"] = {"path": spec["http"], "port": spec.get("port", 8080), "scheme": "HTTP"}
    elif "tcp" in spec:
        probe["tcpSocket"] = {"port": spec["tcp"]}
    else:
        probe["exec"] = {"command": list(spec.get("exec", ["true"]))}
    return probe


def container_spec(spec: Mapping[str, Any]) -> Obj:
    container: Obj = {
        "name": spec["name"],
        "image": spec["image"],
        "imagePullPolicy": "IfNotPresent",
        "resources": dict(spec.get("resources") or {}),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if spec.get("ports"):
        container["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in spec["ports"]]
    if spec.get("env"):
        container["env"] = [{"name": k, "value": str(v)} for k, v in spec["env"].items()]
    for key, field_name in (("readiness", "readinessProbe"), ("liveness", "livenessProbe")):
        built = probe(spec.get(key))
        if built:
            container[field_name] = built
    return container


def condition(
    kind: str, status: bool | str, now: datetime, reason: str | None = None, msg: str | None = None
) -> Obj:
    value = status if isinstance(status, str) else ("True" if status else "False")
    cond: Obj = {"type": kind, "status": value, "lastTransitionTime": timestamp(now, "30m")}
    if reason:
        cond["reason"] = reason
    if msg:
        cond["message"] = msg
    return cond


def matches(obj: Obj, selector: Mapping[str, str]) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def pod_ready(pod: Obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
