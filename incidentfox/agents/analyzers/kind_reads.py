"""Reads the per-kind analyzers need beyond the kubernetes toolset's tools, through the same client.

Every call runs in the client's worker pool (``KubernetesClient.call``) with its timeout. A kind the
identity may not read (403), or a group the cluster does not serve (404), yields ``None`` so that
the analyzer skips that kind instead of reporting a problem it could not see: no finding is better
than a false one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from incidentfox.agents.analyzers.findings import Finding, FindingKind, Severity
from incidentfox.agents.rca import Evidence
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, describe_failure
from incidentfox.agents.toolsets.kubernetes_views import meta, sort_events

log = logging.getLogger(__name__)
PARTIAL_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


def scope(client: KubernetesClient, namespace: str | None) -> str | None:
    """The namespace to analyze: the one asked for, the client's default, or ``None`` for all."""
    return namespace or client.default_namespace


async def list_objects(
    client: KubernetesClient,
    namespaced: Callable[..., Any],
    everywhere: Callable[..., Any],
    namespace: str | None,
    what: str,
    **kwargs: Any,
) -> list[Any] | None:
    """The items of one list call, in ``namespace`` or everywhere; ``None`` when it could not be read."""
    try:
        found = await (
            client.call(namespaced, namespace, **kwargs) if namespace else client.call(everywhere, **kwargs)
        )
    except Exception as exc:  # a kind we cannot read is skipped, not fatal
        log.info(
            "analyzer_read_skipped what=%s reason=%s", what, describe_failure(exc, client, f"list {what}")
        )
        return None
    return list(found.items or [])


async def list_cluster(client: KubernetesClient, method: Callable[..., Any], what: str) -> list[Any] | None:
    """The items of a cluster-scoped list; ``None`` when it could not be read."""
    try:
        found = await client.call(method)
    except Exception as exc:
        log.info(
            "analyzer_read_skipped what=%s reason=%s", what, describe_failure(exc, client, f"list {what}")
        )
        return None
    return list(found.items or [])


async def events_of(
    client: KubernetesClient, namespace: str, kind: str, name: str, *, warnings_only: bool = True
) -> list[k8s.CoreV1Event]:
    """The events of one object, newest first (``kubectl describe``'s Events section)."""
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    if warnings_only:
        selector += ",type=Warning"
    try:
        found = await client.call(client.core.list_namespaced_event, namespace, field_selector=selector)
    except Exception as exc:
        log.info("analyzer_read_skipped what=events reason=%s", describe_failure(exc, client, "list events"))
        return []
    return sort_events(list(found.items or []))


def event_quote(event: k8s.CoreV1Event) -> str:
    """``FailedCreate: Error creating: pods "web-…" is forbidden: exceeded quota: …`` as kubectl shows it."""
    count = f" (x{event.count})" if (event.count or 1) > 1 else ""
    return f"{event.reason}: {event.message}{count}"


async def secret_exists(client: KubernetesClient, namespace: str, name: str) -> bool | None:
    """Whether Secret ``namespace/name`` exists, read as ``PartialObjectMetadata`` so that none of its
    data is transferred; ``None`` when the API would not say (403, outage)."""
    try:
        answer = await client.call(
            client.core.read_namespaced_secret,
            name,
            namespace,
            _preload_content=False,
            _headers={"Accept": PARTIAL_METADATA},
        )
    except ApiException as exc:
        return False if exc.status == 404 else None
    except Exception:
        return None
    release = getattr(answer, "read", None)  # the raw response: drain it so the connection is reused
    if callable(release):
        release()
    return True


def selector_text(selector: k8s.V1LabelSelector | dict[str, str] | None) -> str:
    """A label selector as ``kubectl -l`` takes it: ``app=web,tier in (a,b)``; empty selects all."""
    if selector is None:
        return ""
    if isinstance(selector, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    terms = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for expr in selector.match_expressions or []:
        values = ",".join(expr.values or [])
        terms.append(
            {
                "In": f"{expr.key} in ({values})",
                "NotIn": f"{expr.key} notin ({values})",
                "Exists": expr.key,
                "DoesNotExist": f"!{expr.key}",
            }.get(expr.operator, expr.key)
        )
    return ",".join(terms)


async def pods_matching(client: KubernetesClient, namespace: str, selector: str) -> list[k8s.V1Pod] | None:
    """Pods of ``namespace`` matching a label selector; ``None`` when they could not be listed."""
    try:
        found = await client.call(client.core.list_namespaced_pod, namespace, label_selector=selector or None)
    except Exception as exc:
        log.info("analyzer_read_skipped what=pods reason=%s", describe_failure(exc, client, "list pods"))
        return None
    return list(found.items or [])


def name_of(obj: Any) -> tuple[str, str]:
    """(namespace, name) of an object."""
    m = meta(obj)
    return str(m.namespace or ""), str(m.name or "")


def pod_is_ready(pod: k8s.V1Pod) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def object_finding(
    kind: FindingKind,
    severity: Severity,
    obj_kind: str,
    namespace: str | None,
    name: str,
    *,
    summary: str,
    root_cause: str,
    evidence: Sequence[Evidence],
    immediate: Sequence[str],
    follow_up: Sequence[str] = (),
    decisive: bool = False,
    related: Sequence[str] = (),
    workload: str | None = None,
) -> Finding:
    """A finding about one object, keyed ``deployment/prod/web`` (``ingressclass/nginx`` when
    cluster-scoped) and named ``deployment prod/web`` as the other analyzers name theirs."""
    label = obj_kind.lower()
    where = f"{namespace}/{name}" if namespace else name
    return Finding(
        kind=kind,
        severity=severity,
        resource=f"{label} {where}",
        summary=summary,
        root_cause=root_cause,
        evidence=tuple(evidence),
        immediate_actions=tuple(immediate),
        follow_up_actions=tuple(follow_up),
        decisive=decisive,
        namespace=namespace,
        workload=workload if workload is not None else name,
        key=f"{label}/{where}",
        related=tuple(dict.fromkeys(related)),
    )


def pod_keys(pods: Sequence[k8s.V1Pod]) -> list[str]:
    """The finding keys of pods (``pod/prod/web-7d9-x2k4q``), as the pod analyzer keys its findings."""
    return [f"pod/{ns}/{name}" for ns, name in map(name_of, pods)]


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str] | None) -> bool:
    return all((labels or {}).get(k) == v for k, v in selector.items())
