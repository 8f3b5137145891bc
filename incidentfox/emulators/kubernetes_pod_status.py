"""Pod and node status the emulator's object builder adds for the failure kinds beyond the basics.

A scenario's pod may have ``init_containers`` (each like a container, plus ``restart_policy: Always``
for a native sidecar), ``scheduling_gates`` (names), and a pod-level ``reason``/``message`` (an
eviction: ``phase: Failed, reason: Evicted``). A node may have ``network_unavailable`` (True, or the
route controller's message). They are filled in as the kubelet, scheduler and route controller
report them:

* init containers get ``spec.initContainers`` and ``status.initContainerStatuses``; while a regular
  one has not completed, ``Initialized`` is False (``ContainersNotInitialized``) and so are
  ``ContainersReady`` and ``Ready``;
* a gated pod's ``PodScheduled`` is False with reason ``SchedulingGated``;
* pressure conditions carry the kubelet's message ("kubelet has disk pressure").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from incidentfox.emulators.kubernetes_fields import Obj, condition, container_spec, container_state, uid

GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"
PRESSURE_MESSAGES = {
    "MemoryPressure": (
        "kubelet has insufficient memory available",
        "kubelet has sufficient memory available",
    ),
    "DiskPressure": ("kubelet has disk pressure", "kubelet has no disk pressure"),
    "PIDPressure": ("kubelet has insufficient PID available", "kubelet has sufficient PID available"),
}


def _status(c: Mapping[str, Any], ns: str, pod: str, now: datetime) -> Obj:
    state = container_state(c.get("state"), now)
    status: Obj = {
        "name": c["name"],
        "image": c["image"],
        "imageID": "" if "waiting" in state else f"{c['image'].split(':')[0]}@sha256:{uid(c['image'])}",
        "ready": bool(c.get("ready", "running" in state and c.get("restart_policy") == "Always")),
        "restartCount": int(c.get("restarts", 0)),
        "started": "running" in state,
        "state": state,
        "lastState": container_state(c["last"], now) if c.get("last") else {},
    }
    if "waiting" not in state:
        status["containerID"] = "containerd://" + uid("init", ns, pod, c["name"]).replace("-", "")
    return status


def _completed(status: Obj, sidecar: bool) -> bool:
    """Whether an init container no longer holds the pod back: a regular one exited 0, a sidecar has
    started at least once (a sidecar that crashes later does not un-initialize the pod)."""
    if sidecar:
        return bool(status["started"]) or status["restartCount"] > 0
    terminated = status["state"].get("terminated")
    return bool(terminated) and terminated["exitCode"] == 0


def add_init_containers(
    pod: Obj, spec: Mapping[str, Any], now: datetime, logs: dict[tuple[str, str, str], str]
) -> None:
    """``initContainers`` with their statuses and logs; ``Initialized`` False while one is pending."""
    inits = list(spec.get("init_containers") or [])
    if not inits:
        return
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    specs, statuses, pending, unready = [], [], [], []
    for c in inits:
        built = container_spec(c)
        sidecar = c.get("restart_policy") == "Always"
        if sidecar:
            built["restartPolicy"] = "Always"
        specs.append(built)
        status = _status(c, ns, name, now)
        statuses.append(status)
        if not _completed(status, sidecar):
            pending.append(c["name"])
        if sidecar and not status["ready"]:
            unready.append(c["name"])
        logs[(ns, name, c["name"])] = str(c.get("log", ""))
        if c.get("previous_log") is not None:
            logs[(ns, name, "previous:" + c["name"])] = str(c["previous_log"])
    pod["spec"]["initContainers"] = specs
    if pod["spec"].get("nodeName"):
        pod["status"]["initContainerStatuses"] = statuses
    if not pending and not unready:
        return
    incomplete = f"containers with incomplete status: [{' '.join(pending)}]"
    unready_message = f"containers with unready status: [{' '.join(unready)}]"
    for cond in pod["status"]["conditions"]:
        if cond["type"] == "Initialized" and pending:
            cond.update(status="False", reason="ContainersNotInitialized", message=incomplete)
        elif cond["type"] in ("ContainersReady", "Ready"):
            message = unready_message if unready and not pending else incomplete
            cond.update(status="False", reason="ContainersNotReady", message=message)


def add_pod_status(pod: Obj, spec: Mapping[str, Any], now: datetime) -> None:
    """Scheduling gates and the pod-level reason/message (an eviction)."""
    gates = list(spec.get("scheduling_gates") or [])
    if gates:
        pod["spec"]["schedulingGates"] = [{"name": str(g)} for g in gates]
        for cond in pod["status"]["conditions"]:
            if cond["type"] == "PodScheduled":
                cond.update(status="False", reason="SchedulingGated", message=GATED_MESSAGE)
    for key in ("reason", "message"):
        if spec.get(key):
            pod["status"][key] = str(spec[key])


def add_node_conditions(conditions: list[Obj], spec: Mapping[str, Any], now: datetime) -> None:
    """The kubelet's messages on pressure conditions; ``NetworkUnavailable`` when the scenario sets it."""
    for cond in conditions:
        messages = PRESSURE_MESSAGES.get(cond["type"])
        if messages:
            cond.setdefault("message", messages[0] if cond["status"] == "True" else messages[1])
    network = spec.get("network_unavailable")
    if network:
        message = network if isinstance(network, str) else "Node created without a route"
        conditions.insert(0, condition("NetworkUnavailable", True, now, "NoRouteCreated", message))
