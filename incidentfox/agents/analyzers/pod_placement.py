"""Rules for a pod that cannot be placed, started or kept on its node.

Unschedulable pods (the scheduler's message read out: taints, node affinity and selectors,
insufficient resources, unbound claims, cordoned nodes), scheduling gates, evictions with the
kubelet's reason, sandbox creation failures (``FailedCreatePodSandBox``: the CNI or runtime) and
volumes that cannot be mounted (``FailedMount``, naming a missing ConfigMap or Secret).
"""

from __future__ import annotations

import re

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.pod_containers import missing_reference
from incidentfox.agents.analyzers.pod_facts import Row, condition, events, pod_key
from incidentfox.agents.rca import Evidence

_TAINT = re.compile(r"(\d+) node\(s\) had untolerated taint \{([^:}]+):?\s*([^}]*)\}")
_SCHEDULER_WORDS = (
    (
        re.compile(r"(\d+) Insufficient (\S+?)[.,]?(?:\s|$)"),
        "{0} node(s) lack free {1} for the pod's requests",
    ),
    (
        re.compile(r"(\d+) node\(s\) didn't match Pod's node affinity/selector"),
        "{0} node(s) do not match the pod's nodeSelector or node affinity",
    ),
    (
        re.compile(r"(\d+) node\(s\) didn't match pod (?:anti-)?affinity rules"),
        "{0} node(s) fail the pod's pod-affinity or anti-affinity rules",
    ),
    (
        re.compile(r"(\d+) node\(s\) didn't satisfy existing pods anti-affinity rules"),
        "{0} node(s) run pods whose anti-affinity rules exclude this pod",
    ),
    (
        re.compile(r"(\d+) node\(s\) had volume node affinity conflict"),
        "{0} node(s) are in another zone than the pod's volume",
    ),
    (re.compile(r"(\d+) node\(s\) were unschedulable"), "{0} node(s) are cordoned"),
    (re.compile(r"(\d+) Too many pods"), "{0} node(s) are at their pod limit"),
    (
        re.compile(r"(\d+) node\(s\) didn't have free ports"),
        "{0} node(s) already use the host ports the pod asks for",
    ),
    (
        re.compile(r"pod has unbound immediate PersistentVolumeClaims"),
        "its PersistentVolumeClaim is not bound",
    ),
)


def scheduler_reading(message: str) -> list[str]:
    """The scheduler's ``0/3 nodes are available: ...`` message in plain words, one clause a cause;
    the preemption half of the message is left out (it repeats the same nodes)."""
    head = message.split(" preemption:", 1)[0]
    reading = [
        f"{count} node(s) carry the taint {key}{'=' + value.strip() if value.strip() else ''} "
        "that the pod does not tolerate"
        for count, key, value in _TAINT.findall(head)
    ]
    for pattern, words in _SCHEDULER_WORDS:
        for match in pattern.finditer(head):
            reading.append(words.format(*match.groups()))
    return reading


def _tainted_node_keys(message: str) -> tuple[str, ...]:
    """Conditions that a taint in the message stands for (``node.kubernetes.io/disk-pressure``)."""
    return tuple(key for _, key, _ in _TAINT.findall(message))


def unschedulable(row: Row, detail: Row) -> Finding:
    ns, pod = row["namespace"], row["name"]
    event = next(iter(events(detail, "FailedScheduling")), None)
    scheduled = condition(detail, "PodScheduled")
    message = str((event or {}).get("message") or scheduled.get("message") or "")
    claims = detail.get("persistent_volume_claims", [])
    reading = scheduler_reading(message)
    root_cause = f"Pod {ns}/{pod} cannot be scheduled: {message or 'no scheduler message was recorded'}"
    if reading:
        root_cause += f" In plain words: {'; '.join(reading)}."
    actions = [
        "Free or add capacity that fits the pod's requests, or lower its requests; check taints and "
        "node selectors named in the scheduler message.",
    ]
    if any("taint" in r for r in reading):
        taints = ", ".join(_tainted_node_keys(message))
        actions.append(f"Add a toleration for {taints} only if the pod belongs on those nodes.")
    if any("nodeSelector" in r for r in reading):
        actions.append(
            "Compare the pod's nodeSelector/affinity with the node labels (kubectl get nodes --show-labels)."
        )
    return Finding(
        kind="unschedulable",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is Pending: the scheduler cannot place it.",
        root_cause=root_cause,
        evidence=(Evidence(quote=message, source=f"pod {ns}/{pod} (FailedScheduling event)"),)
        if message
        else (),
        immediate_actions=tuple(actions),
        follow_up_actions=("Alert on pods Pending longer than a few minutes.",),
        decisive=bool(message),
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
        related=tuple(f"pvc/{ns}/{c}" for c in claims),
    )


def is_gated(detail: Row) -> bool:
    return bool(detail.get("scheduling_gates")) or condition(detail, "PodScheduled").get("reason") == (
        "SchedulingGated"
    )


def scheduling_gated(row: Row, detail: Row) -> Finding:
    ns, pod = row["namespace"], row["name"]
    gates = list(detail.get("scheduling_gates") or [])
    scheduled = condition(detail, "PodScheduled")
    message = str(scheduled.get("message") or "Scheduling is blocked due to non-empty scheduling gates")
    evidence = [
        Evidence(
            quote=f"PodScheduled=False SchedulingGated: {message}", source=f"pod {ns}/{pod} (conditions)"
        )
    ]
    if gates:
        evidence.insert(
            0, Evidence(quote="Scheduling Gates: " + ", ".join(gates), source=f"pod {ns}/{pod} (spec)")
        )
    named = ", ".join(gates) or "its scheduling gates"
    return Finding(
        kind="scheduling_gated",
        severity="warning",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is held back by scheduling gate{'s' if len(gates) != 1 else ''} {named}.",
        root_cause=f"Pod {ns}/{pod} is not considered by the scheduler until {named} "
        "is removed from spec.schedulingGates; the controller that added it has not removed it.",
        evidence=tuple(evidence),
        immediate_actions=(
            f"Find the controller that owns {named} (a queueing system such as Kueue, or an admission "
            "webhook) and check why it has not admitted the pod.",
        ),
        follow_up_actions=("Alert on pods gated for longer than the queue's expected wait.",),
        decisive=bool(gates),
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
    )


def is_evicted(detail: Row) -> bool:
    return detail.get("reason") == "Evicted"


def evicted(row: Row, detail: Row) -> Finding:
    ns, pod = row["namespace"], row["name"]
    message = str(detail.get("message") or "")
    event = next(iter(events(detail, "Evicted")), None)
    resource = re.search(r"low on resource: ([\w./-]*\w)", message or str((event or {}).get("message", "")))
    evidence = [
        Evidence(
            quote=f"Status: Failed, Reason: Evicted, Message: {message}".rstrip(),
            source=f"pod {ns}/{pod} (status)",
        )
    ]
    if event and event.get("message") != message:
        evidence.append(Evidence(quote=str(event["message"]), source=f"pod {ns}/{pod} (Evicted event)"))
    node = row.get("node") or detail.get("node")
    why = f"its node ran low on {resource.group(1)}" if resource else f"the kubelet evicted it: {message}"
    return Finding(
        kind="evicted",
        severity="warning",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} was evicted" + (f" from node {node}" if node else "") + f": {why}.",
        root_cause=f"The kubelet evicted pod {ns}/{pod}"
        + (f" from node {node}" if node else "")
        + f" because {why}"
        + (f': "{message.strip()}"' if resource and message else "")
        + ".",
        evidence=tuple(evidence),
        immediate_actions=(
            f"Check the pressure on node {node} (kubectl describe node {node})."
            if node
            else "Check node pressure.",
            f"Set requests (and limits) for {resource.group(1) if resource else 'the resource'} on "
            f"{row.get('workload') or pod} so the scheduler accounts for it.",
        ),
        follow_up_actions=(f"Delete the evicted pod objects: kubectl delete pod -n {ns} {pod}",),
        decisive=bool(message),
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
        related=(f"node/{node}",) if node else (),
    )


_SANDBOX_CAUSES = (
    (
        ("plugin type=", "cni", "failed to setup network", "network plugin"),
        "the node's CNI network plugin failed",
    ),
    (("no ip addresses available", "failed to allocate"), "the node has run out of pod IP addresses"),
    (("pause", "sandbox image"), "the sandbox (pause) image cannot be pulled"),
    (("runtimeclass", "runtime handler"), "the pod's RuntimeClass handler is not configured on the node"),
)


def sandbox_failure(row: Row, detail: Row) -> Finding | None:
    failed = events(detail, "FailedCreatePodSandBox", "FailedCreatePodSandbox")
    if not failed:
        return None
    ns, pod = row["namespace"], row["name"]
    message = str(failed[0].get("message", ""))
    lowered = message.lower()
    cause = next((c for needles, c in _SANDBOX_CAUSES if any(n in lowered for n in needles)), None)
    node = row.get("node")
    return Finding(
        kind="sandbox_failure",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is stuck in ContainerCreating: its sandbox cannot be created"
        + (f" on node {node}" if node else "")
        + ".",
        root_cause=f"The kubelet cannot create the pod sandbox of {ns}/{pod}"
        + (f": {cause}" if cause else "")
        + f" ({message}).",
        evidence=(
            Evidence(
                quote=message,
                source=f"pod {ns}/{pod} (FailedCreatePodSandBox event, x{failed[0].get('count', 1)})",
            ),
        ),
        immediate_actions=(
            f"Check the CNI and container runtime on node {node or 'the pod’s node'} "
            "(the CNI daemonset's pods, journalctl -u containerd).",
            "If only one node is affected, cordon it so new pods land elsewhere.",
        ),
        follow_up_actions=("Alert on FailedCreatePodSandBox events per node.",),
        decisive=True,
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
        related=(f"node/{node}",) if node else (),
    )


def mount_failure(row: Row, detail: Row) -> Finding | None:
    failed = events(detail, "FailedMount", "FailedAttachVolume")
    if not failed:
        return None
    ns, pod = row["namespace"], row["name"]
    message = str(failed[0].get("message", ""))
    missing = missing_reference(message)
    volume = re.search(r'for volume "([^"]+)"', message)
    what = f"volume {volume.group(1)}" if volume else "a volume"
    return Finding(
        kind="container_config" if missing else "mount_failure",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is stuck in ContainerCreating: {what} cannot be mounted"
        + (f" ({missing} is missing)." if missing else "."),
        root_cause=f"The kubelet cannot mount {what} of pod {ns}/{pod}"
        + (f": it refers to {missing}, which does not exist" if missing else "")
        + f" ({message}).",
        evidence=(
            Evidence(
                quote=message,
                source=f"pod {ns}/{pod} ({failed[0].get('reason')} event, x{failed[0].get('count', 1)})",
            ),
        ),
        immediate_actions=(
            f"Create {missing} in namespace {ns}, or fix the volume in {row.get('workload') or pod}'s spec."
            if missing
            else "Check the volume's claim, its PersistentVolume and the CSI driver on the node.",
        ),
        follow_up_actions=("Deploy ConfigMaps and Secrets before (or with) the workloads that mount them.",),
        decisive=True,
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
        related=tuple(f"pvc/{ns}/{c}" for c in detail.get("persistent_volume_claims", [])),
    )
