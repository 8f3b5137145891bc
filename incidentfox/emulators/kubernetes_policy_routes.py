"""How the emulator serves the kinds of ``kubernetes_policy``: their API groups and resource types, and
metadata-only reads.

A client that asks for ``Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1`` gets
only the object's metadata, as the real API server answers it; that is how a reader checks that a
Secret exists without receiving its data.
"""

from __future__ import annotations

from incidentfox.emulators.kubernetes_fields import Obj
from incidentfox.emulators.kubernetes_writes import ResourceType

POLICY, STORAGE, ADMISSION = (
    "apis/policy/v1",
    "apis/storage.k8s.io/v1",
    "apis/admissionregistration.k8s.io/v1",
)
NETWORKING, CORE = "apis/networking.k8s.io/v1", "api/v1"
POLICY_GROUPS = (POLICY, STORAGE, ADMISSION)
POLICY_RESOURCES: dict[tuple[str, str], ResourceType] = {
    (POLICY, "poddisruptionbudgets"): ResourceType(
        "PodDisruptionBudget", "policy/v1", True, "poddisruptionbudgets", "poddisruptionbudgets", "policy"
    ),
    (NETWORKING, "ingressclasses"): ResourceType(
        "IngressClass", "networking.k8s.io/v1", False, "ingressclasses", "ingressclasses", "networking.k8s.io"
    ),
    (STORAGE, "storageclasses"): ResourceType(
        "StorageClass", "storage.k8s.io/v1", False, "storageclasses", "storageclasses", "storage.k8s.io"
    ),
    (CORE, "resourcequotas"): ResourceType("ResourceQuota", "v1", True, "resourcequotas", "resourcequotas"),
    (CORE, "secrets"): ResourceType("Secret", "v1", True, "secrets", "secrets"),
    (ADMISSION, "validatingwebhookconfigurations"): ResourceType(
        "ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
        False,
        "validatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "admissionregistration.k8s.io",
    ),
    (ADMISSION, "mutatingwebhookconfigurations"): ResourceType(
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
        False,
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
        "admissionregistration.k8s.io",
    ),
}
"""Served resources this module adds to the emulator, keyed like its own table."""


def partial_metadata(accept: str, obj: Obj) -> Obj | None:
    """The ``PartialObjectMetadata`` answer when the ``Accept`` header asks for one, else ``None``."""
    if "as=PartialObjectMetadata" not in accept or "as=PartialObjectMetadataList" in accept:
        return None
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
