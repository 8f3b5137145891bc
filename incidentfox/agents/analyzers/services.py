"""Service rules: services whose selector leads to no ready pod.

A service with a selector and no ready endpoint is either mis-selecting (no pod matches: the
decisive cause) or fronting pods that are all unready (a symptom: ``related`` lists those pods, so
their own findings rank first as the cause).
"""

from __future__ import annotations

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.pod_facts import Row, pod_key
from incidentfox.agents.rca import Evidence
from incidentfox.agents.toolsets import kubernetes as k8s_tools
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient


async def service_findings(client: KubernetesClient, services: ToolResult) -> list[Finding]:
    """Findings for every service with a selector and no ready endpoint."""
    found = []
    for svc in services.data if services.status == "ok" else []:
        if svc.get("has_ready_endpoints") or not svc.get("selector"):
            continue
        ns, name = svc["namespace"], svc["name"]
        selector = ",".join(f"{k}={v}" for k, v in svc["selector"].items())
        pods = await k8s_tools.list_pods(
            client, k8s_tools.ListPodsParams(namespace=ns, label_selector=selector)
        )
        matching: list[Row] = pods.data if pods.status == "ok" else []
        if matching:
            what = f"all {len(matching)} pods it selects ({selector}) are not ready"
        else:
            what = f"its selector {selector} matches no pods in namespace {ns}"
        evidence = (
            Evidence(
                quote=f"Selector: {selector}; ready addresses: 0; "
                f"not ready: {len(svc['not_ready_addresses'])}",
                source=f"service {ns}/{name} (endpoints)",
            ),
        )
        found.append(
            Finding(
                kind="no_endpoints",
                severity="critical" if not matching else "warning",
                resource=f"service {ns}/{name}",
                summary=f"Service {ns}/{name} has no ready endpoints: {what}.",
                root_cause=f"Traffic to service {ns}/{name} has nowhere to go: {what}.",
                evidence=evidence,
                immediate_actions=(
                    f"Fix the selector of service {name} or the pod labels so they match "
                    f"(kubectl get pods -n {ns} --show-labels)."
                    if not matching
                    else f"Fix the pods behind {name}; see their findings.",
                ),
                decisive=not matching,
                namespace=ns,
                workload=name,
                key=f"service/{ns}/{name}",
                related=tuple(pod_key(p) for p in matching),
            )
        )
    return found
