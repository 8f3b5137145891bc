"""No-LLM rules over the kubernetes toolset: from cluster state to findings with quoted evidence.

The rules call the toolset's own tool functions, so they see the same data and the same plain-words
errors a model would. ``analyze_kubernetes`` lists pods, nodes, volume claims and services once and
hands them to one module per resource kind:

* ``pods`` (with ``pod_containers``, ``pod_placement``, ``pod_logs``): every waiting and terminated
  reason of containers, init containers and sidecars (CrashLoopBackOff with the decisive line of the
  previous log, OOMKilled, exit codes with their meaning, CreateContainerConfigError naming the
  missing ConfigMap/Secret/key, RunContainerError, image pulls), evictions, scheduling gates,
  unschedulable pods with the scheduler's message read out (taints, affinity, resources), sandbox and
  mount failures, failing probes with the probe's answer, error lines in healthy-looking pods' logs;
* ``nodes``: NotReady, memory/disk/PID pressure, network unavailable, cordoned;
* ``storage``: Pending claims (with the provisioning event) and Lost ones;
* ``services``: services without ready endpoints;
* ``kinds.KIND_ANALYZERS``: the analyzers of further kinds (workloads, networking, scaling...).

Findings are linked (``dependencies``: the service a failing pod's log names) and ranked, causes
before symptoms (``findings.rank_findings``).
"""

from __future__ import annotations

import asyncio
import logging

from incidentfox.agents.analyzers.dependencies import link_dependencies
from incidentfox.agents.analyzers.findings import Finding, rank_findings
from incidentfox.agents.analyzers.kinds import KIND_ANALYZERS
from incidentfox.agents.analyzers.nodes import node_findings
from incidentfox.agents.analyzers.pod_facts import LOG_TAIL_LINES, Row, decisive_log_line
from incidentfox.agents.analyzers.pod_logs import log_error_findings
from incidentfox.agents.analyzers.pods import needs_look, pod_findings
from incidentfox.agents.analyzers.services import service_findings
from incidentfox.agents.analyzers.storage import pvc_findings
from incidentfox.agents.toolsets import kubernetes as k8s_tools
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient

__all__ = ["LOG_TAIL_LINES", "analyze_kubernetes", "decisive_log_line"]
log = logging.getLogger(__name__)


def _api_error(result: ToolResult) -> Finding:
    return Finding(
        kind="api_error",
        severity="critical",
        resource="kubernetes api",
        summary="Could not read the cluster: " + (result.error or "the Kubernetes API did not answer."),
        root_cause=result.error or "The Kubernetes API did not answer.",
        immediate_actions=(
            "Check that the cluster's API server is up and reachable from IncidentFox.",
            "Check the team's Kubernetes integration (kubeconfig, API URL, token).",
        ),
        key="kubernetes/api",
    )


async def _kind_findings(client: KubernetesClient, namespace: str | None) -> list[Finding]:
    """The findings of every analyzer in ``KIND_ANALYZERS``; one that raises is logged and skipped,
    so a bug in one kind's rules never hides the others' findings."""
    results = await asyncio.gather(
        *(analyze(client, namespace) for analyze in KIND_ANALYZERS), return_exceptions=True
    )
    found: list[Finding] = []
    for analyze, result in zip(KIND_ANALYZERS, results, strict=True):
        if isinstance(result, BaseException):
            log.warning(
                "kubernetes analyzer failed analyzer=%s error=%s",
                getattr(analyze, "__qualname__", analyze),
                type(result).__name__,
            )
            continue
        found += result
    return found


def _healthy(
    client: KubernetesClient, namespace: str | None, pods: list[Row], listed: dict[str, ToolResult]
) -> Finding:
    def count(result: ToolResult) -> int:
        return len(result.data) if result.status == "ok" else 0

    counts = [
        f"{len(pods)} pods",
        f"{count(listed['nodes'])} nodes",
        f"{count(listed['services'])} services",
        f"{count(listed['pvcs'])} volume claims",
    ]
    where = (
        f"namespace {namespace or client.default_namespace}"
        if namespace or client.default_namespace
        else "all namespaces"
    )
    checked = f"Checked {', '.join(counts)} in {where}"
    return Finding(
        kind="healthy",
        severity="info",
        resource=where,
        summary=f"{checked}: all pods running and ready, nodes Ready, services have endpoints, claims bound.",
        root_cause=checked,
        namespace=namespace or client.default_namespace,
    )


async def analyze_kubernetes(
    client: KubernetesClient, *, namespace: str | None = None, question: str = ""
) -> list[Finding]:
    """Every finding in ``namespace`` (or the client's default, or all namespaces), best root cause first.

    Returns a single ``api_error`` finding when the cluster cannot be read, and a single ``healthy``
    finding describing what was checked when nothing is wrong.
    """
    pods = await k8s_tools.list_pods(client, k8s_tools.ListPodsParams(namespace=namespace))
    if pods.status == "error":
        return [_api_error(pods)]
    pod_rows: list[Row] = pods.data if pods.status == "ok" else []
    nodes, pvcs, services = await asyncio.gather(
        k8s_tools.list_nodes(client, k8s_tools.NodesParams()),
        k8s_tools.list_pvcs(client, k8s_tools.NamespacedListParams(namespace=namespace)),
        k8s_tools.services_and_endpoints(client, k8s_tools.ServicesParams(namespace=namespace)),
    )
    looked = [row for row in pod_rows if needs_look(row)]
    per_pod, quiet_pods, by_kind = await asyncio.gather(
        asyncio.gather(*(pod_findings(client, row) for row in looked)),
        log_error_findings(client, [row for row in pod_rows if not needs_look(row)]),
        _kind_findings(client, namespace),
    )
    findings = [f for group in per_pod for f in group]
    findings += node_findings(nodes, pod_rows)
    findings += await pvc_findings(client, pvcs)
    findings += await service_findings(client, services)
    findings += quiet_pods
    findings += by_kind
    findings = link_dependencies(findings, services.data if services.status == "ok" else [])
    if not findings:
        return [_healthy(client, namespace, pod_rows, {"nodes": nodes, "services": services, "pvcs": pvcs})]
    return rank_findings(findings, question)
