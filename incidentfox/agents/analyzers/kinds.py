"""The hook for analyzers of further resource kinds (workloads, networking, scaling, admission).

``analyze_kubernetes`` awaits every function of ``KIND_ANALYZERS`` beside its own pod, node, storage
and service rules, and ranks and links their findings with the rest. Each has the signature::

    async def analyze(client: KubernetesClient, namespace: str | None) -> list[Finding]

``namespace`` is the namespace scanned, or ``None`` for the client's default namespace or, without
one, every namespace (as the toolset's list tools read it). An analyzer reads the cluster through the
toolset's functions, returns its findings (each with a ``kind`` listed in ``findings.KIND_RANK``), and
returns ``[]`` when the cluster cannot be read: the scan reports an unreachable API once, itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from incidentfox.agents.analyzers import admission, networking, scaling, workloads
from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient

KindAnalyzer = Callable[[KubernetesClient, str | None], Awaitable[list[Finding]]]

KIND_ANALYZERS: tuple[KindAnalyzer, ...] = (
    workloads.analyze,
    networking.analyze,
    scaling.analyze,
    admission.analyze,
)
