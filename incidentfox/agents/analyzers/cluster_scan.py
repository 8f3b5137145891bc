"""One analyzer pass over one namespace (or all of them), stamped with when and at which revision it read.

A Kubernetes list answers with the ``resourceVersion`` of the store at the time of the read (etcd's
revision, which every write advances), so a scan records the revision of a one-item pod list taken
just before it starts. If a later one-item list answers with the same revision, nothing the scan
read can have changed since, and the scan may be reused (``SharedScans``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.kubernetes import analyze_kubernetes
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, describe_failure


@dataclass(frozen=True, slots=True)
class ClusterScan:
    """The findings of one scan, where it looked, when, and the revision the cluster was at."""

    findings: tuple[Finding, ...]
    namespace: str | None
    """The namespace scanned; ``None`` for every namespace at once."""
    read_at: datetime
    revision: str | None
    """The cluster's ``resourceVersion`` read just before the scan; ``None`` when it could not be read."""

    @property
    def where(self) -> str:
        return f"namespace {self.namespace}" if self.namespace else "all namespaces"

    @property
    def failed(self) -> Finding | None:
        """The ``api_error`` finding when the scan could not read the cluster at all."""
        return next((f for f in self.findings if f.kind == "api_error"), None)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.is_problem and f.kind != "api_error"]


@dataclass(frozen=True, slots=True)
class NamespaceListing:
    """The namespaces the credentials can list, or why they cannot (e.g. 403 under RBAC)."""

    names: tuple[str, ...] | None
    error: str | None = None


async def cluster_revision(client: KubernetesClient, namespace: str | None) -> str | None:
    """The cluster's current ``resourceVersion``, from a one-item pod list where the scan reads pods."""
    try:
        if namespace:
            pods = await client.call(client.core.list_namespaced_pod, namespace, limit=1)
        else:
            pods = await client.call(client.core.list_pod_for_all_namespaces, limit=1)
    except Exception:
        return None
    version = pods.metadata.resource_version if pods.metadata else None
    return str(version) if version else None


async def list_namespaces(client: KubernetesClient) -> NamespaceListing:
    try:
        listed = await client.call(client.core.list_namespace)
    except Exception as exc:
        return NamespaceListing(names=None, error=describe_failure(exc, client, "list namespaces"))
    return NamespaceListing(names=tuple(sorted(str(n.metadata.name) for n in listed.items if n.metadata)))


async def scan_namespace(client: KubernetesClient, namespace: str | None) -> ClusterScan:
    """Run every analyzer over ``namespace``, or over all namespaces when it is ``None``.

    The client's own default namespace is set aside, so ``None`` really means every namespace.
    """
    read_at = datetime.now(UTC)
    revision = await cluster_revision(client, namespace)
    scoped = dataclasses.replace(client, default_namespace=namespace)
    findings = await analyze_kubernetes(scoped, namespace=namespace)
    return ClusterScan(findings=tuple(findings), namespace=namespace, read_at=read_at, revision=revision)
