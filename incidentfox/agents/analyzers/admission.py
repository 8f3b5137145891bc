"""Admission webhooks that cannot answer: the API server calls them on every matching create or
update, so a webhook whose Service is missing or has no ready endpoints blocks pod creation cluster-wide
(``failurePolicy: Fail``) or silently skips its checks (``Ignore``).

Validating and mutating webhook configurations are cluster-scoped; every broken one is reported,
whatever namespace is analyzed, since it breaks creates everywhere its selectors match. The warning
event that shows the damage (``failed calling webhook "…"`` on a ReplicaSet) is quoted when the
analyzed namespace has one, and the workload's finding names the webhook (``related``), so the two
are read as one root cause.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.kind_reads import event_quote, list_cluster, name_of, scope
from incidentfox.agents.rca import Evidence
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient

Hook = k8s.V1ValidatingWebhook | k8s.V1MutatingWebhook


async def _endpoints(client: KubernetesClient, ns: str, name: str) -> tuple[str, int, int] | None:
    """("missing" | "ok", ready, not ready) for the webhook's Service; ``None`` when unreadable."""
    try:
        await client.call(client.core.read_namespaced_service, name, ns)
    except ApiException as exc:
        return ("missing", 0, 0) if exc.status == 404 else None
    except Exception:
        return None
    try:
        endpoints = await client.call(client.core.read_namespaced_endpoints, name, ns)
    except ApiException as exc:
        return ("ok", 0, 0) if exc.status == 404 else None
    except Exception:
        return None
    subsets = endpoints.subsets or []
    return (
        "ok",
        sum(len(s.addresses or []) for s in subsets),
        sum(len(s.not_ready_addresses or []) for s in subsets),
    )


async def _warning_mentioning(client: KubernetesClient, namespace: str | None, hook: str) -> Evidence | None:
    """The newest warning event in scope that names the webhook (``failed calling webhook "hook"``)."""
    core = client.core
    try:
        found = await (
            client.call(core.list_namespaced_event, namespace, field_selector="type=Warning")
            if namespace
            else client.call(core.list_event_for_all_namespaces, field_selector="type=Warning")
        )
    except Exception:
        return None
    needle = f'webhook "{hook}"'
    for event in sorted(found.items or [], key=lambda e: str(e.last_timestamp or ""), reverse=True):
        if needle in str(event.message or ""):
            obj = event.involved_object
            where = f"{str(obj.kind).lower()} {obj.namespace}/{obj.name} (events)"
            return Evidence(quote=event_quote(event), source=where)
    return None


async def _hook(
    client: KubernetesClient, kind: str, config: str, hook: Hook, namespace: str | None
) -> Finding | None:
    service = hook.client_config.service if hook.client_config else None
    if service is None:
        return None
    state = await _endpoints(client, service.namespace, service.name)
    if state is None:
        return None
    status, ready, not_ready = state
    if status == "ok" and ready > 0:
        return None
    svc = f"{service.namespace}/{service.name}"
    policy = hook.failure_policy or "Fail"
    blocks = policy == "Fail"
    if status == "missing":
        problem = f"its service {svc} does not exist"
        quote = f'services "{service.name}" not found'
        source = f"service {svc} (API)"
    else:
        problem = f"its service {svc} has no ready endpoints ({not_ready} not ready)"
        quote = f"Endpoints {svc}: ready addresses: 0; not ready: {not_ready}"
        source = f"service {svc} (endpoints)"
    rules = (
        ", ".join(f"{'/'.join(r.operations or [])} {','.join(r.resources or [])}" for r in hook.rules or [])
        or "all requests"
    )
    evidence = [
        Evidence(quote=quote, source=source),
        Evidence(
            quote=f"webhook {hook.name}: clientConfig.service {svc}, failurePolicy: {policy}, rules: {rules}",
            source=f"{kind.lower()} {config}",
        ),
    ]
    seen = await _warning_mentioning(client, namespace, hook.name)
    if seen is not None:
        evidence.insert(0, seen)
    effect = (
        f"the API server rejects every {rules} it matches (failurePolicy Fail)"
        if blocks
        else f"its checks are skipped for {rules} (failurePolicy Ignore)"
    )
    return Finding(
        kind="webhook_unavailable",
        severity="critical" if blocks else "warning",
        resource=f"{kind.lower()} {config} (webhook {hook.name})",
        summary=f"Admission webhook {hook.name} cannot be called: {problem}.",
        root_cause=f"Admission webhook {hook.name} ({kind} {config}) cannot be reached because {problem}; "
        f"{effect}.",
        evidence=tuple(evidence),
        immediate_actions=(
            f"Bring back the webhook's pods behind {svc} (kubectl get pods,endpoints -n {service.namespace}),"
            f" or, if it is abandoned, delete {kind.lower()} {config}.",
        ),
        follow_up_actions=(
            "Run webhook servers with 2+ replicas and a PodDisruptionBudget, and scope them with "
            "namespaceSelector so they never gate their own namespace.",
        ),
        decisive=True,
        namespace=service.namespace,
        workload=service.name,
        key=f"webhook/{hook.name}",
        related=(f"service/{svc}",),
    )


async def analyze(client: KubernetesClient, namespace: str | None) -> list[Finding]:
    """Findings for the validating and mutating webhooks whose Service cannot answer."""
    ns = scope(client, namespace)
    admission = k8s.AdmissionregistrationV1Api(client.api)
    reads: list[Any] = await asyncio.gather(
        list_cluster(
            client, admission.list_validating_webhook_configuration, "validatingwebhookconfigurations"
        ),
        list_cluster(client, admission.list_mutating_webhook_configuration, "mutatingwebhookconfigurations"),
    )
    hooks = [
        (kind, name_of(config)[1], hook)
        for kind, configs in zip(
            ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"), reads, strict=True
        )
        for config in configs or []
        for hook in config.webhooks or []
    ]
    found = await asyncio.gather(*(_hook(client, kind, config, hook, ns) for kind, config, hook in hooks))
    return [f for f in found if f is not None]
