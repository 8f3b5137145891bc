"""The pod and the NetworkPolicy of one Kubernetes sandbox, as plain API dictionaries.

The pod: non-root (``runAsNonRoot``, a fixed uid and gid), no privilege escalation, every capability
dropped, a read-only root filesystem, ``seccompProfile: RuntimeDefault``, an optional
``runtimeClassName`` (gVisor, Kata), cpu and memory requests equal to limits (Guaranteed QoS: the
sandbox is never the first evicted and never takes more than it was given), an ``emptyDir`` workdir
at ``/work`` and an ``emptyDir`` ``/tmp``, both with a ``sizeLimit`` (the kubelet evicts a pod over
it), no service-account token, no service environment variables, and labels linking org, team, run
and thread. Kubernetes has no per-pod process limit: set the kubelet's ``podPidsLimit`` on the nodes
that run sandboxes.

The NetworkPolicy selects the one pod: no ingress; egress only to the model proxy's port on the
proxy's pods (``ProxyEndpoint.pod_labels`` in its namespace) or, given no labels, to the proxy's IP.
DNS is allowed (to ``kube-dns`` in ``kube-system``) only when the proxy's host is a name rather than
an address, because the resolver is a way out too (a DNS tunnel through the cluster's upstream
resolver); give the proxy as an IP (its Service's ClusterIP) to keep it shut. A NetworkPolicy is
enforced only by a CNI plugin that implements it (Calico, Cilium; not flannel alone).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incidentfox.sandboxes.backends.base import SandboxSpec, checked_env

Manifest = dict[str, Any]

PREFIX = "incidentfox.dev"
LAST_ACTIVE = f"{PREFIX}/last-active"
WORKDIR = "/work"
HOME = "/work/.home"
_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
_KEEP_ALIVE = ("/bin/sh", "-c", 'mkdir -p "$HOME" && exec sleep infinity')


def label_value(text: str) -> str:
    """``text`` when it is a valid label value, else a readable prefix of it plus a hash of all of it."""
    if _LABEL_VALUE.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    readable = re.sub(r"[^-A-Za-z0-9_.]", "-", text)[:40].strip("-_.")
    return f"{readable}-{digest}" if readable else digest


def thread_label(thread_key: str) -> str:
    """A thread key (``channel:ts``) as a label value: a hash, the same for every sandbox of a thread."""
    return hashlib.sha256(thread_key.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class PodSettings:
    """How this installation's sandbox pods are made; the spec says how big and whose they are."""

    namespace: str
    image: str
    """An image with the Claude Code CLI, ``/bin/sh``, ``env`` and ``timeout`` in it."""
    container: str = "sandbox"
    command: tuple[str, ...] = _KEEP_ALIVE
    """What the container runs while the session lasts: something that waits."""
    run_as: int = 1000
    allow_dns: bool | None = None
    """``None``: DNS only when the proxy's host is a name."""
    dns_labels: Mapping[str, str] = field(default_factory=lambda: {"k8s-app": "kube-dns"})
    dns_namespace: str = "kube-system"
    image_pull_policy: str = "IfNotPresent"
    cli_path: str = "/usr/local/bin/claude"
    """The Claude Code CLI inside the image (the host's bundled CLI is not there)."""


def sandbox_labels(spec: SandboxSpec, sandbox_id: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "incidentfox",
        "app.kubernetes.io/component": "sandbox",
        f"{PREFIX}/sandbox": sandbox_id,
        f"{PREFIX}/org": label_value(spec.org_id),
        f"{PREFIX}/team": label_value(spec.team_id),
        f"{PREFIX}/run": label_value(spec.run_id),
        f"{PREFIX}/session": label_value(spec.session_id),
        f"{PREFIX}/thread": thread_label(spec.thread_key),
    }


def _quantity_cpu(cpus: float) -> str:
    return f"{max(round(cpus * 1000), 1)}m"


def pod_manifest(spec: SandboxSpec, sandbox_id: str, name: str, settings: PodSettings, now: str) -> Manifest:
    resources = {"cpu": _quantity_cpu(spec.cpus), "memory": str(spec.memory_bytes)}
    base_env = {"HOME": HOME, "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    env = checked_env(base_env, spec.env)
    drop_all = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": settings.run_as,
        "runAsGroup": settings.run_as,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod_spec: Manifest = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 5,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as,
            "runAsGroup": settings.run_as,
            "fsGroup": settings.run_as,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": settings.container,
                "image": settings.image,
                "imagePullPolicy": settings.image_pull_policy,
                "command": list(settings.command),
                "workingDir": WORKDIR,
                "env": [{"name": k, "value": v} for k, v in env.items()],
                "resources": {"requests": dict(resources), "limits": dict(resources)},
                "securityContext": drop_all,
                "volumeMounts": [
                    {"name": "work", "mountPath": WORKDIR},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "work", "emptyDir": {"sizeLimit": str(spec.workdir_bytes)}},
            {"name": "tmp", "emptyDir": {"sizeLimit": str(spec.tmp_bytes)}},
        ],
    }
    if spec.runtime_class:
        pod_spec["runtimeClassName"] = spec.runtime_class
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": sandbox_labels(spec, sandbox_id),
            "annotations": {LAST_ACTIVE: now},
        },
        "spec": pod_spec,
    }


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _proxy_rule(spec: SandboxSpec, settings: PodSettings) -> Manifest | None:
    proxy = spec.proxy
    if proxy is None:
        return None
    if not proxy.port:
        raise ValueError("the model proxy endpoint has no port")
    if proxy.pod_labels:
        namespace = proxy.namespace or settings.namespace
        peer: Manifest = {
            "podSelector": {"matchLabels": dict(proxy.pod_labels)},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        }
    elif proxy.host and _is_address(proxy.host):
        bits = 32 if ipaddress.ip_address(proxy.host).version == 4 else 128
        peer = {"ipBlock": {"cidr": f"{proxy.host}/{bits}"}}
    else:
        raise ValueError("the model proxy needs its pods' labels or an IP address for the NetworkPolicy")
    return {"to": [peer], "ports": [{"protocol": "TCP", "port": proxy.port}]}


def _dns_rule(settings: PodSettings) -> Manifest:
    return {
        "to": [
            {
                "podSelector": {"matchLabels": dict(settings.dns_labels)},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": settings.dns_namespace}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def network_policy_manifest(spec: SandboxSpec, sandbox_id: str, name: str, settings: PodSettings) -> Manifest:
    """Deny all ingress; allow egress to the proxy (and DNS when it is needed, see the module doc)."""
    egress = [rule for rule in [_proxy_rule(spec, settings)] if rule is not None]
    host = spec.proxy.host if spec.proxy else None
    wants_dns = settings.allow_dns if settings.allow_dns is not None else bool(host and not _is_address(host))
    if wants_dns:
        egress.append(_dns_rule(settings))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": sandbox_labels(spec, sandbox_id),
        },
        "spec": {
            "podSelector": {"matchLabels": {f"{PREFIX}/sandbox": sandbox_id}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": egress,
        },
    }
