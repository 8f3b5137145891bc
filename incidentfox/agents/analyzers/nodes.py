"""Node rules: every condition a node reports, with the pods it affects.

NotReady (the kubelet stopped reporting or reports not ready, with any pressure folded in), then, for
Ready nodes, MemoryPressure, DiskPressure, PIDPressure and NetworkUnavailable (one finding per node,
every condition that is true, with the kubelet's message), and cordoned nodes
(``spec.unschedulable``). Each finding's ``related`` lists the pods on the node, so a pod evicted or
failing there is linked to the node as its cause.
"""

from __future__ import annotations

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.pod_facts import Row, pod_key
from incidentfox.agents.rca import Evidence
from incidentfox.agents.toolsets.base import ToolResult

PRESSURE_ACTIONS: dict[str, str] = {
    "MemoryPressure": "find the pods using the most memory on {node} (kubectl top pods -A --sort-by=memory) "
    "and set memory requests and limits on them",
    "DiskPressure": "free disk on {node}: unused images (crictl rmi --prune), large container logs and "
    "emptyDir volumes; set ephemeral-storage limits",
    "PIDPressure": "find the pod forking processes on {node} and set a pod PID limit",
    "NetworkUnavailable": "check the CNI daemonset's pod on {node} and the node's routes",
}
PRESSURE_WORDS: dict[str, str] = {
    "MemoryPressure": "is low on memory",
    "DiskPressure": "is low on disk",
    "PIDPressure": "is low on process IDs",
    "NetworkUnavailable": "has no working pod network",
}


def _affected(name: str, pods: list[Row]) -> list[Row]:
    return [p for p in pods if p.get("node") == name]


def _names(pods: list[Row]) -> str:
    return ", ".join(f"{p['namespace']}/{p['name']}" for p in pods) or "none"


def not_ready(node: Row, pods: list[Row]) -> Finding:
    name = node["name"]
    on_node = _affected(name, pods)
    reason, message = node.get("ready_reason", "unknown reason"), node.get("ready_message", "")
    quote = f"Ready={node.get('ready')} {reason}: {message}".strip()
    evidence = [Evidence(quote=quote, source=f"node {name} (conditions)")]
    evidence += [
        Evidence(quote=f"{p} is True", source=f"node {name} (conditions)") for p in node.get("pressure", [])
    ]
    if node.get("taints"):
        evidence.append(Evidence(quote="Taints: " + ", ".join(node["taints"]), source=f"node {name} (spec)"))
    return Finding(
        kind="node_not_ready",
        severity="critical",
        resource=f"node {name}",
        summary=f"Node {name} is NotReady ({reason}); pods on it: {_names(on_node)}.",
        root_cause=f"Node {name} is NotReady: {message or reason} "
        f"(last heartbeat {node.get('last_heartbeat', 'unknown')}).",
        evidence=tuple(evidence),
        immediate_actions=(
            f"Check the kubelet and the machine behind {name} (cloud console, journalctl -u kubelet).",
            f"If it does not recover, cordon and drain {name} so its pods reschedule.",
        ),
        follow_up_actions=("Alert on NodeNotReady and keep enough spare capacity to lose one node.",),
        decisive=True,
        key=f"node/{name}",
        related=tuple(pod_key(p) for p in on_node),
    )


def pressure(node: Row, pods: list[Row]) -> Finding:
    name = node["name"]
    on_node = _affected(name, pods)
    conditions: list[str] = list(node.get("pressure", []))
    messages: dict[str, str] = dict(node.get("condition_messages") or {})
    evidence = [
        Evidence(
            quote=f"{c}=True" + (f": {messages[c]}" if messages.get(c) else ""),
            source=f"node {name} (conditions)",
        )
        for c in conditions
    ]
    if node.get("taints"):
        evidence.append(Evidence(quote="Taints: " + ", ".join(node["taints"]), source=f"node {name} (spec)"))
    words = " and ".join(PRESSURE_WORDS.get(c, f"reports {c}") for c in conditions)
    return Finding(
        kind="node_pressure",
        severity="critical" if "NetworkUnavailable" in conditions or on_node else "warning",
        resource=f"node {name}",
        summary=f"Node {name} {words} ({', '.join(conditions)}); pods on it: {_names(on_node)}.",
        root_cause=f"Node {name} {words}: "
        + "; ".join(messages.get(c) or f"{c} is True" for c in conditions)
        + ". The kubelet evicts pods and the scheduler avoids the node until it recovers.",
        evidence=tuple(evidence),
        immediate_actions=tuple(
            PRESSURE_ACTIONS.get(c, f"check {c} on {{node}}").format(node=name).capitalize() + "."
            for c in conditions
        ),
        follow_up_actions=("Alert on node pressure conditions before the kubelet starts evicting.",),
        decisive=True,
        key=f"node/{name}",
        related=tuple(pod_key(p) for p in on_node),
    )


def cordoned(node: Row, pods: list[Row]) -> Finding:
    name = node["name"]
    on_node = _affected(name, pods)
    return Finding(
        kind="node_cordoned",
        severity="info",
        resource=f"node {name}",
        summary=f"Node {name} is cordoned (SchedulingDisabled): no new pods land on it.",
        root_cause=f"Node {name} has spec.unschedulable set (kubectl cordon); the {len(on_node)} pods on it "
        "keep running, but nothing new is scheduled there, which shrinks the cluster's capacity.",
        evidence=(
            Evidence(quote=f"STATUS: {node.get('status')}", source=f"node {name} (kubectl get nodes)"),
        ),
        immediate_actions=(
            f"If the maintenance on {name} is over: kubectl uncordon {name}; otherwise drain it "
            "and make sure the others have room for Pending pods.",
        ),
        decisive=False,
        key=f"node/{name}",
        related=tuple(pod_key(p) for p in on_node),
    )


def node_findings(nodes: ToolResult, pods: list[Row]) -> list[Finding]:
    """Findings for every node that is NotReady, under pressure, or cordoned."""
    found = []
    for node in nodes.data if nodes.status == "ok" else []:
        if node.get("ready") != "True":
            found.append(not_ready(node, pods))
            continue
        if node.get("pressure"):
            found.append(pressure(node, pods))
        if "SchedulingDisabled" in str(node.get("status", "")):
            found.append(cordoned(node, pods))
    return found
