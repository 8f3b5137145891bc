"""No-LLM rules over the kubernetes toolset: from cluster state to findings with quoted evidence.

The rules call the toolset's own tool functions, so they see the same data and the same plain-words
errors a model would. Detected: CrashLoopBackOff (with the decisive line of the previous log),
OOMKilled, ImagePullBackOff/ErrImagePull, unschedulable pods, failing probes (with the error line of
the pod's own log, and the dependency service it names: ``dependencies``), services without ready
endpoints, pending volume claims and NotReady nodes.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from incidentfox.agents.analyzers.dependencies import LOG_SOURCE_SUFFIX, link_dependencies
from incidentfox.agents.analyzers.findings import Finding, rank_findings
from incidentfox.agents.rca import Evidence
from incidentfox.agents.redaction import scrub_text
from incidentfox.agents.toolsets import kubernetes as k8s_tools
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient

Row = dict[str, Any]
LOG_TAIL_LINES = 100
_HEALTHY_STATUSES = {"Running", "Completed", "Succeeded"}
_IMAGE_PULL = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
_STRONG = re.compile(
    r"(?i)\b(fatal|panic|exception|traceback|undefined|unhandled|segmentation fault|cannot|could not|can't"
    r"|unable to|no such|not found|missing|refused|denied|invalid)\b|^\W*error\b|\berror:"
)
_WEAK = re.compile(r"(?i)\b(error|err|fail(?:ed|ure)?|killed|exit(?:ed)?|abort(?:ed)?)\b")
_QUIET_LEVEL = re.compile(r"(?i)\b(info|debug|trace)\b")


def decisive_log_line(log: str) -> str | None:
    """The most telling error line of a log tail: strong words (fatal, panic, exception, undefined,
    ``Error:``) beat weak ones (failed, error); INFO/DEBUG lines count less; later lines win ties."""
    best: tuple[int, int, str] | None = None
    for index, raw in enumerate(log.splitlines()):
        line = raw.strip()
        if not line:
            continue
        score = (
            3 * len(_STRONG.findall(line)) + len(_WEAK.findall(line)) - 3 * bool(_QUIET_LEVEL.search(line))
        )
        if score > 0 and (best is None or (score, index) >= best[:2]):
            best = (score, index, line)
    return best[2] if best else None


def _pod_key(row: Row) -> str:
    return f"pod/{row['namespace']}/{row['name']}"


def _events(detail: Row, reason: str | None = None) -> list[Row]:
    return [e for e in detail.get("events", []) if reason is None or e.get("reason") == reason]


def _last_terminated(container: Row) -> Row:
    last = container.get("last_state") or {}
    return last if last.get("state") == "terminated" else {}


async def _crashloop(client: KubernetesClient, row: Row, container: Row, detail: Row) -> Finding:
    ns, pod, name = row["namespace"], row["name"], container["name"]
    source, line = "previous logs", None
    for previous in (True, False):
        params = k8s_tools.PodLogsParams(
            name=pod, namespace=ns, container=name, previous=previous, tail_lines=LOG_TAIL_LINES
        )
        logs = await k8s_tools.pod_logs(client, params)
        if logs.status == "ok":
            line = decisive_log_line(logs.data["log"])
            source = "previous logs" if previous else "logs"
            if line:
                break
    last = _last_terminated(container)
    reason, code = last.get("reason", "Error"), last.get("exit_code", "?")
    exit_text = f"Last State: Terminated, Reason: {reason}, Exit Code: {code}"
    evidence = [Evidence(quote=exit_text, source=f"pod {ns}/{pod} (container {name} status)")]
    if line:
        evidence.insert(0, Evidence(quote=scrub_text(line), source=f"pod {ns}/{pod} ({source})"))
    restarts = container.get("restarts", row.get("restarts", 0))
    cause = f'its {source} end with: "{scrub_text(line)}"' if line else "its logs show no clear error line"
    return Finding(
        kind="crashloop",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is in CrashLoopBackOff ({restarts} restarts).",
        root_cause=(
            f"Container {name} in pod {ns}/{pod} exits with code {last.get('exit_code', '?')} on start-up "
            f"and has restarted {restarts} times; {cause}."
        ),
        evidence=tuple(evidence),
        immediate_actions=(
            f"Fix what the log line reports for {row.get('workload') or pod} (configuration, environment or "
            "dependency), or roll back to the last working release.",
            f"Confirm with: kubectl logs -n {ns} {pod} -c {name} --previous",
        ),
        follow_up_actions=(
            "Add a start-up check that fails the deploy, not the running pods, on bad config.",
        ),
        decisive=line is not None,
        namespace=ns,
        workload=row.get("workload"),
        key=_pod_key(row),
    )


def _oomkilled(row: Row, container: Row, limit: str | None, last_log_line: str | None) -> Finding:
    ns, pod, name = row["namespace"], row["name"], container["name"]
    last = _last_terminated(container) or container.get("state", {})
    evidence = [
        Evidence(
            quote=f"Last State: Terminated, Reason: OOMKilled, Exit Code: {last.get('exit_code', 137)}",
            source=f"pod {ns}/{pod} (container {name} status)",
        )
    ]
    if limit:
        evidence.append(
            Evidence(quote=f"Limits: memory: {limit}", source=f"pod {ns}/{pod} (container {name} spec)")
        )
    if last_log_line:
        evidence.append(
            Evidence(quote=scrub_text(last_log_line), source=f"pod {ns}/{pod} (previous logs, last line)")
        )
    limit_text = f"its memory limit of {limit}" if limit else "the memory available to it"
    return Finding(
        kind="oomkilled",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is OOMKilled: container {name} exceeds {limit_text}.",
        root_cause=(
            f"Container {name} in pod {ns}/{pod} is killed by the kernel for using more than {limit_text} "
            f"(OOMKilled, exit code 137) and has restarted {container.get('restarts', 0)} times."
        ),
        evidence=tuple(evidence),
        immediate_actions=(
            f"Raise the memory limit of {row.get('workload') or pod}/{name} "
            f"above {limit or 'its current value'}, or reduce the work per process (batch size, cache size).",
        ),
        follow_up_actions=(
            "Profile memory growth and alert on container_memory_working_set_bytes near the limit.",
        ),
        decisive=True,
        namespace=ns,
        workload=row.get("workload"),
        key=_pod_key(row),
    )


def _image_pull(row: Row, container: Row, detail: Row) -> Finding:
    ns, pod, image = row["namespace"], row["name"], container.get("image", "?")
    failed = next((e for e in _events(detail, "Failed") if "pull" in str(e.get("message", "")).lower()), None)
    state = container.get("state", {})
    evidence = [
        Evidence(
            quote=f"{state.get('reason')}: {state.get('message', image)}", source=f"pod {ns}/{pod} (status)"
        )
    ]
    if failed:
        evidence.insert(0, Evidence(quote=str(failed["message"]), source=f"pod {ns}/{pod} (events)"))
    return Finding(
        kind="image_pull",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} cannot pull image {image} ({state.get('reason')}).",
        root_cause=f"The image {image} of container {container['name']} cannot be pulled"
        + (f": {failed['message']}" if failed else "."),
        evidence=tuple(evidence),
        immediate_actions=(
            f"Check that {image} exists in the registry and that the pull secret grants access.",
            f"Roll back {row.get('workload') or pod} to the last image that pulled successfully.",
        ),
        follow_up_actions=("Make CI verify the image tag exists before the deploy step.",),
        decisive=failed is not None,
        namespace=ns,
        workload=row.get("workload"),
        key=_pod_key(row),
    )


def _unschedulable(row: Row, detail: Row) -> Finding:
    ns, pod = row["namespace"], row["name"]
    event = next(iter(_events(detail, "FailedScheduling")), None)
    condition: Row = next((c for c in detail.get("conditions", []) if c.get("type") == "PodScheduled"), {})
    message = str((event or {}).get("message") or condition.get("message") or "")
    claims = detail.get("persistent_volume_claims", [])
    return Finding(
        kind="unschedulable",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is Pending: the scheduler cannot place it.",
        root_cause=f"Pod {ns}/{pod} cannot be scheduled: {message or 'no scheduler message was recorded'}",
        evidence=(Evidence(quote=message, source=f"pod {ns}/{pod} (FailedScheduling event)"),)
        if message
        else (),
        immediate_actions=(
            "Free or add capacity that fits the pod's requests, or lower its requests; check taints and "
            "node selectors named in the scheduler message.",
        ),
        follow_up_actions=("Alert on pods Pending longer than a few minutes.",),
        decisive=bool(message),
        namespace=ns,
        workload=row.get("workload"),
        key=_pod_key(row),
        related=tuple(f"pvc/{ns}/{c}" for c in claims),
    )


async def _own_log_line(client: KubernetesClient, row: Row, detail: Row) -> str | None:
    """The decisive line of the current log of the pod's first container that is not ready."""
    waiting = [c for c in detail.get("containers", []) if not c.get("ready")]
    if not waiting:
        return None
    name = waiting[0]["name"]
    params = k8s_tools.PodLogsParams(
        name=row["name"],
        namespace=row["namespace"],
        container=name,
        previous=False,
        tail_lines=LOG_TAIL_LINES,
    )
    logs = await k8s_tools.pod_logs(client, params)
    return decisive_log_line(logs.data["log"]) if logs.status == "ok" else None


async def _probe_failure(client: KubernetesClient, row: Row, detail: Row) -> Finding | None:
    """A pod failing its probes, with the error its own log ends with (often the dependency its
    check calls: ``dependencies`` links that service from the quoted line)."""
    unhealthy = _events(detail, "Unhealthy")
    if not unhealthy:
        return None
    ns, pod = row["namespace"], row["name"]
    probes = {str(e.get("message", "")).split(" probe", 1)[0]: e for e in unhealthy}
    evidence = [
        Evidence(quote=str(e["message"]), source=f"pod {ns}/{pod} (Unhealthy event, x{e.get('count', 1)})")
        for e in probes.values()
    ]
    kinds = " and ".join(sorted(k.lower() for k in probes))
    root_cause = f"The {kinds} probes of pod {ns}/{pod} fail: {unhealthy[0]['message']}"
    own = await _own_log_line(client, row, detail)
    if own is not None:
        line = scrub_text(own)
        evidence.insert(0, Evidence(quote=line, source=f"pod {ns}/{pod} {LOG_SOURCE_SUFFIX}"))
        root_cause += f'; its log says: "{line}"'
    return Finding(
        kind="probe_failure",
        severity="warning",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is failing its {kinds} probes "
        f"(ready {row.get('ready')}, {row.get('restarts', 0)} restarts).",
        root_cause=root_cause,
        evidence=tuple(evidence),
        immediate_actions=(
            "Check why the probed endpoint is slow or failing (load, a dependency) before loosening "
            "the probe.",
        ),
        follow_up_actions=("Make liveness probes cheap and independent of downstream dependencies.",),
        decisive=False,
        namespace=ns,
        workload=row.get("workload"),
        key=_pod_key(row),
    )


async def _pod_findings(client: KubernetesClient, row: Row) -> list[Finding]:
    described = await k8s_tools.describe_pod(
        client, k8s_tools.PodParams(name=row["name"], namespace=row["namespace"])
    )
    if described.status != "ok":
        return []
    detail: Row = described.data
    found: list[Finding] = []
    for container in detail.get("containers", []):
        state, last = container.get("state", {}), _last_terminated(container)
        if "OOMKilled" in (state.get("reason"), last.get("reason")):
            params = k8s_tools.PodLogsParams(
                name=row["name"],
                namespace=row["namespace"],
                container=container["name"],
                previous=True,
                tail_lines=5,
            )
            logs = await k8s_tools.pod_logs(client, params)
            tail = logs.data["log"].splitlines()[-1] if logs.status == "ok" else None
            found.append(_oomkilled(row, container, (container.get("limits") or {}).get("memory"), tail))
        elif state.get("reason") == "CrashLoopBackOff":
            found.append(await _crashloop(client, row, container, detail))
        elif state.get("reason") in _IMAGE_PULL:
            found.append(_image_pull(row, container, detail))
    scheduled: Row = next((c for c in detail.get("conditions", []) if c.get("type") == "PodScheduled"), {})
    if scheduled.get("status") == "False":
        found.append(_unschedulable(row, detail))
    if not found:
        probe = await _probe_failure(client, row, detail)
        if probe is not None:
            found.append(probe)
    return found


def _needs_look(row: Row) -> bool:
    ready, _, total = str(row.get("ready", "0/0")).partition("/")
    return row.get("status") not in _HEALTHY_STATUSES or ready != total or int(row.get("restarts", 0)) > 0


def _node_findings(nodes: ToolResult, pods: list[Row]) -> list[Finding]:
    found = []
    for node in nodes.data if nodes.status == "ok" else []:
        if node.get("ready") == "True":
            continue
        name = node["name"]
        on_node = [p for p in pods if p.get("node") == name]
        reason, message = node.get("ready_reason", "unknown reason"), node.get("ready_message", "")
        quote = f"Ready={node.get('ready')} {reason}: {message}".strip()
        evidence = [Evidence(quote=quote, source=f"node {name} (conditions)")]
        evidence += [
            Evidence(quote=f"{p} is True", source=f"node {name} (conditions)")
            for p in node.get("pressure", [])
        ]
        if node.get("taints"):
            evidence.append(
                Evidence(quote="Taints: " + ", ".join(node["taints"]), source=f"node {name} (spec)")
            )
        affected = ", ".join(f"{p['namespace']}/{p['name']}" for p in on_node) or "none"
        found.append(
            Finding(
                kind="node_not_ready",
                severity="critical",
                resource=f"node {name}",
                summary=f"Node {name} is NotReady ({reason}); pods on it: {affected}.",
                root_cause=f"Node {name} is NotReady: {message or reason} "
                f"(last heartbeat {node.get('last_heartbeat', 'unknown')}).",
                evidence=tuple(evidence),
                immediate_actions=(
                    f"Check the kubelet and the machine behind {name} "
                    "(cloud console, journalctl -u kubelet).",
                    f"If it does not recover, cordon and drain {name} so its pods reschedule.",
                ),
                follow_up_actions=("Alert on NodeNotReady and keep enough spare capacity to lose one node.",),
                decisive=True,
                key=f"node/{name}",
                related=tuple(_pod_key(p) for p in on_node),
            )
        )
    return found


async def _pvc_findings(client: KubernetesClient, pvcs: ToolResult) -> list[Finding]:
    found = []
    for pvc in pvcs.data if pvcs.status == "ok" else []:
        if pvc.get("phase") != "Pending":
            continue
        ns, name = pvc["namespace"], pvc["name"]
        events = await k8s_tools.get_events(
            client, k8s_tools.EventsParams(namespace=ns, involved_object=name, warnings_only=True)
        )
        warning = events.data[0] if events.status == "ok" else None
        evidence = [
            Evidence(
                quote=f"Status: Pending, StorageClass: {pvc.get('storage_class')}", source=f"pvc {ns}/{name}"
            )
        ]
        if warning:
            quote = f"{warning['reason']}: {warning['message']}"
            evidence.insert(0, Evidence(quote=quote, source=f"pvc {ns}/{name} (events)"))
        found.append(
            Finding(
                kind="pending_pvc",
                severity="critical",
                resource=f"pvc {ns}/{name}",
                summary=f"Volume claim {ns}/{name} is Pending "
                f"({pvc.get('requested', '?')}, class {pvc.get('storage_class')}).",
                root_cause=f"Persistent volume claim {ns}/{name} is not bound"
                + (f": {warning['message']}" if warning else "; no provisioning event explains why."),
                evidence=tuple(evidence),
                immediate_actions=(
                    f"Check that StorageClass {pvc.get('storage_class')} exists and its provisioner "
                    "is running "
                    "(kubectl get storageclass).",
                ),
                follow_up_actions=("Validate storage classes in manifests before deploying.",),
                decisive=warning is not None,
                namespace=ns,
                key=f"pvc/{ns}/{name}",
            )
        )
    return found


async def _service_findings(client: KubernetesClient, services: ToolResult) -> list[Finding]:
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
                related=tuple(_pod_key(p) for p in matching),
            )
        )
    return found


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
    per_pod = await asyncio.gather(*(_pod_findings(client, row) for row in pod_rows if _needs_look(row)))
    findings = [f for group in per_pod for f in group]
    findings += _node_findings(nodes, pod_rows)
    findings += await _pvc_findings(client, pvcs)
    findings += await _service_findings(client, services)
    findings = link_dependencies(findings, services.data if services.status == "ok" else [])
    if not findings:
        counts = [
            f"{len(pod_rows)} pods",
            f"{len(nodes.data) if nodes.status == 'ok' else 0} nodes",
            f"{len(services.data) if services.status == 'ok' else 0} services",
            f"{len(pvcs.data) if pvcs.status == 'ok' else 0} volume claims",
        ]
        where = (
            f"namespace {namespace or client.default_namespace}"
            if namespace or client.default_namespace
            else "all namespaces"
        )
        checked = f"Checked {', '.join(counts)} in {where}"
        return [
            Finding(
                kind="healthy",
                severity="info",
                resource=where,
                summary=f"{checked}: all pods running and ready, nodes Ready, "
                "services have endpoints, claims bound.",
                root_cause=checked,
                namespace=namespace or client.default_namespace,
            )
        ]
    return rank_findings(findings, question)
