"""Storage rules: persistent volume claims that are not usable.

Pending claims, with the provisioning event that explains them (``ProvisioningFailed``: a
StorageClass that does not exist, a provisioner error) or, without a StorageClass at all, the
missing default class; Lost claims, whose PersistentVolume is gone.
"""

from __future__ import annotations

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.pod_facts import Row
from incidentfox.agents.rca import Evidence
from incidentfox.agents.toolsets import kubernetes as k8s_tools
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient

_EXPLAINING = {"ProvisioningFailed", "FailedBinding", "ClaimLost", "VolumeFailedDelete"}


async def _warning(client: KubernetesClient, ns: str, name: str) -> Row | None:
    """The claim's newest warning event, or else the controller's Normal ``FailedBinding`` event
    (which is how it reports a claim that names no StorageClass)."""
    events = await k8s_tools.get_events(client, k8s_tools.EventsParams(namespace=ns, involved_object=name))
    rows: list[Row] = events.data if events.status == "ok" else []
    return next((e for e in rows if e.get("type") == "Warning" or e.get("reason") in _EXPLAINING), None)


def _pending(pvc: Row, warning: Row | None) -> Finding:
    ns, name = pvc["namespace"], pvc["name"]
    storage_class = pvc.get("storage_class")
    evidence = [Evidence(quote=f"Status: Pending, StorageClass: {storage_class}", source=f"pvc {ns}/{name}")]
    if warning:
        quote = f"{warning['reason']}: {warning['message']}"
        evidence.insert(0, Evidence(quote=quote, source=f"pvc {ns}/{name} (events)"))
    if warning:
        why = f": {warning['message']}"
    elif not storage_class:
        why = (
            "; it names no StorageClass and no volume, so it waits for a default StorageClass or a "
            "matching PersistentVolume that does not exist."
        )
    else:
        why = "; no provisioning event explains why."
    check = (
        f"Check that StorageClass {storage_class} exists and its provisioner is running "
        "(kubectl get storageclass)."
        if storage_class
        else "Set storageClassName on the claim, or mark one StorageClass as the cluster default "
        "(kubectl get storageclass)."
    )
    return Finding(
        kind="pending_pvc",
        severity="critical",
        resource=f"pvc {ns}/{name}",
        summary=f"Volume claim {ns}/{name} is Pending "
        f"({pvc.get('requested', '?')}, class {storage_class or 'none'}).",
        root_cause=f"Persistent volume claim {ns}/{name} is not bound{why}",
        evidence=tuple(evidence),
        immediate_actions=(check,),
        follow_up_actions=("Validate storage classes in manifests before deploying.",),
        decisive=warning is not None or not storage_class,
        namespace=ns,
        key=f"pvc/{ns}/{name}",
    )


def _lost(pvc: Row, warning: Row | None) -> Finding:
    ns, name = pvc["namespace"], pvc["name"]
    volume = pvc.get("volume", "its volume")
    evidence = [Evidence(quote=f"Status: Lost, Volume: {volume}", source=f"pvc {ns}/{name}")]
    if warning:
        evidence.insert(
            0,
            Evidence(quote=f"{warning['reason']}: {warning['message']}", source=f"pvc {ns}/{name} (events)"),
        )
    return Finding(
        kind="pvc_lost",
        severity="critical",
        resource=f"pvc {ns}/{name}",
        summary=f"Volume claim {ns}/{name} is Lost: its PersistentVolume {volume} no longer exists.",
        root_cause=f"Persistent volume claim {ns}/{name} was bound to {volume}, which has been deleted or "
        "can no longer be found; pods that mount the claim cannot start and its data may be gone.",
        evidence=tuple(evidence),
        immediate_actions=(
            f"Check whether {volume} still exists (kubectl get pv {volume}) and restore it from a "
            "snapshot or backup, then recreate the claim.",
        ),
        follow_up_actions=("Use reclaimPolicy Retain for volumes holding data you cannot recreate.",),
        decisive=True,
        namespace=ns,
        key=f"pvc/{ns}/{name}",
    )


async def pvc_findings(client: KubernetesClient, pvcs: ToolResult) -> list[Finding]:
    """Findings for every Pending or Lost claim."""
    found = []
    for pvc in pvcs.data if pvcs.status == "ok" else []:
        phase = pvc.get("phase")
        if phase not in ("Pending", "Lost"):
            continue
        warning = await _warning(client, pvc["namespace"], pvc["name"])
        found.append(_pending(pvc, warning) if phase == "Pending" else _lost(pvc, warning))
    return found
