"""Networking objects: LoadBalancer Services the cloud cannot provision, broken Ingresses and
NetworkPolicies that select nothing. (Services without ready endpoints are ``kubernetes``'s own rule.)

* A ``LoadBalancer`` Service with warning events (``SyncLoadBalancerFailed``, ``CreatingLoadBalancerFailed``),
  quoted, and whether it still has no external address.
* An Ingress whose IngressClass does not exist (or that names none while the cluster has no default
  class), whose backend Service does not exist, or whose TLS Secret does not exist (checked as metadata
  only: no Secret's data is read).
* A NetworkPolicy whose non-empty pod selector matches no pod of its namespace: it protects nothing,
  which usually means a label was renamed. An empty selector (every pod, e.g. default-deny) is fine.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client as k8s

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.kind_reads import (
    event_quote,
    events_of,
    labels_match,
    list_cluster,
    list_objects,
    name_of,
    object_finding,
    scope,
    secret_exists,
    selector_text,
)
from incidentfox.agents.rca import Evidence
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient
from incidentfox.agents.toolsets.kubernetes_views import meta

LEGACY_CLASS = "kubernetes.io/ingress.class"
DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"


async def _load_balancer(client: KubernetesClient, svc: k8s.V1Service) -> Finding | None:
    if not svc.spec or svc.spec.type != "LoadBalancer":
        return None
    ns, name = name_of(svc)
    events = await events_of(client, ns, "Service", name)
    if not events:
        return None
    balancer = svc.status.load_balancer if svc.status else None
    addresses = [i.ip or i.hostname for i in (balancer.ingress if balancer else None) or []]
    pending = not addresses
    evidence = [
        Evidence(quote=event_quote(events[0]), source=f"service {ns}/{name} (events)"),
        Evidence(
            quote=f"LoadBalancer Ingress: {', '.join(a for a in addresses if a) or '<pending>'}",
            source=f"service {ns}/{name} (status)",
        ),
    ]
    return object_finding(
        "load_balancer_failed",
        "critical" if pending else "warning",
        "Service",
        ns,
        name,
        summary=f"LoadBalancer service {ns}/{name} "
        + ("has no external address: " if pending else "cannot be updated by the cloud: ")
        + f"{events[0].reason}.",
        root_cause=f"The cloud controller failed to {'create' if pending else 'sync'} the load balancer "
        f"of service {ns}/{name}: {events[0].message}",
        evidence=evidence,
        immediate=(
            "Fix what the cloud provider reports (quota, subnet tags, annotations, IAM permissions of "
            f"the cloud controller), then watch kubectl describe service -n {ns} {name}.",
        ),
        decisive=True,
    )


def _ingress_class(
    ing: k8s.V1Ingress, classes: list[k8s.V1IngressClass] | None
) -> tuple[str | None, bool] | None:
    """(class name, whether it exists) when the Ingress's class is a problem; ``None`` when fine."""
    if classes is None:
        return None
    named = (ing.spec.ingress_class_name if ing.spec else None) or (meta(ing).annotations or {}).get(
        LEGACY_CLASS
    )
    names = {name_of(c)[1] for c in classes}
    if named:
        return None if named in names else (named, False)
    has_default = any((meta(c).annotations or {}).get(DEFAULT_CLASS) == "true" for c in classes)
    return None if has_default else (None, False)


def _backends(ing: k8s.V1Ingress) -> list[tuple[str, str]]:
    """(route as kubectl shows it, service name) of every service backend."""
    found: list[tuple[str, str]] = []
    spec = ing.spec
    if spec is None:
        return found
    if spec.default_backend and spec.default_backend.service:
        found.append(("default backend", spec.default_backend.service.name))
    for rule in spec.rules or []:
        for path in (rule.http.paths if rule.http else None) or []:
            service = path.backend.service if path.backend else None
            if service is not None:
                port = service.port.number or service.port.name if service.port else ""
                found.append((f"{rule.host or '*'}{path.path or '/'} -> {service.name}:{port}", service.name))
    return found


async def _ingress(
    client: KubernetesClient,
    ing: k8s.V1Ingress,
    classes: list[k8s.V1IngressClass] | None,
    services: set[tuple[str, str]] | None,
) -> list[Finding]:
    ns, name = name_of(ing)
    found: list[Finding] = []
    problem = _ingress_class(ing, classes)
    if problem is not None:
        named = problem[0]
        available = ", ".join(sorted(name_of(c)[1] for c in classes or [])) or "none"
        quote = (
            f"ingressClassName: {named}" if named else "ingressClassName: <none> (no default IngressClass)"
        )
        found.append(
            object_finding(
                "missing_reference",
                "critical",
                "Ingress",
                ns,
                name,
                summary=f"Ingress {ns}/{name} "
                + (
                    f"uses IngressClass {named}, which does not exist."
                    if named
                    else "names no IngressClass and the cluster has no default one."
                ),
                root_cause=f"No ingress controller serves ingress {ns}/{name}: "
                + (
                    f"IngressClass {named} does not exist"
                    if named
                    else "it has no class and there is no default"
                )
                + f" (classes: {available}).",
                evidence=(
                    Evidence(quote=quote, source=f"ingress {ns}/{name} (spec)"),
                    Evidence(
                        quote=f"IngressClasses: {available}",
                        source="ingressclasses (kubectl get ingressclass)",
                    ),
                ),
                immediate=(f"Set spec.ingressClassName of {name} to one of: {available}.",),
                decisive=True,
            )
        )
    for route, service in _backends(ing) if services is not None else []:
        if (ns, service) in (services or set()):
            continue
        found.append(
            object_finding(
                "missing_reference",
                "critical",
                "Ingress",
                ns,
                name,
                summary=f"Ingress {ns}/{name} routes to service {service}, which does not exist.",
                root_cause=f"Requests for {route.split(' -> ')[0]} through ingress {ns}/{name} get 503: "
                f"its backend service {ns}/{service} does not exist.",
                evidence=(
                    Evidence(quote=route, source=f"ingress {ns}/{name} (rules)"),
                    Evidence(quote=f'services "{service}" not found', source=f"service {ns}/{service} (API)"),
                ),
                immediate=(
                    f"Create service {service} in {ns} or point the ingress at the right service "
                    f"(kubectl get svc -n {ns}).",
                ),
                decisive=True,
                related=[f"service/{ns}/{service}"],
            )
        )
    for tls in (ing.spec.tls if ing.spec else None) or []:
        secret = tls.secret_name
        if not secret or await secret_exists(client, ns, secret) is not False:
            continue
        hosts = ", ".join(tls.hosts or []) or "all hosts"
        found.append(
            object_finding(
                "missing_reference",
                "critical",
                "Ingress",
                ns,
                name,
                summary=f"Ingress {ns}/{name} uses TLS secret {secret}, which does not exist.",
                root_cause=f"HTTPS for {hosts} on ingress {ns}/{name} has no certificate: "
                f"secret {ns}/{secret} does not exist, so the controller serves its default "
                "(untrusted) certificate.",
                evidence=(
                    Evidence(
                        quote=f"tls: hosts [{hosts}], secretName: {secret}",
                        source=f"ingress {ns}/{name} (spec)",
                    ),
                    Evidence(quote=f'secrets "{secret}" not found', source=f"secret {ns}/{secret} (API)"),
                ),
                immediate=(
                    f"Create the TLS secret {secret} in {ns} (or check the cert-manager Certificate "
                    f"that should issue it: kubectl get certificate -n {ns}).",
                ),
                decisive=True,
            )
        )
    return found


def _network_policy(policy: k8s.V1NetworkPolicy, pods: list[k8s.V1Pod]) -> Finding | None:
    ns, name = name_of(policy)
    selector = policy.spec.pod_selector if policy.spec else None
    labels = (selector.match_labels if selector else None) or {}
    if not labels or (selector and selector.match_expressions):
        return None
    if any(meta(p).namespace == ns and labels_match(labels, meta(p).labels) for p in pods):
        return None
    text = selector_text(labels)
    return object_finding(
        "selects_nothing",
        "warning",
        "NetworkPolicy",
        ns,
        name,
        summary=f"NetworkPolicy {ns}/{name} selects no pods ({text}).",
        root_cause=f"The pod selector {text} of NetworkPolicy {ns}/{name} matches no pod in namespace {ns}, "
        "so the policy applies to nothing (a renamed label?).",
        evidence=(
            Evidence(quote=f"podSelector: {text}", source=f"networkpolicy {ns}/{name} (spec)"),
            Evidence(quote=f"No pods match {text}", source=f"pods in {ns} (kubectl get pods -l {text})"),
        ),
        immediate=(
            f"Fix the selector of {name} to the pods' current labels "
            f"(kubectl get pods -n {ns} --show-labels).",
        ),
        decisive=True,
    )


async def analyze(client: KubernetesClient, namespace: str | None) -> list[Finding]:
    """Findings for the LoadBalancer Services, Ingresses and NetworkPolicies of ``namespace``."""
    ns = scope(client, namespace)
    core, networking = client.core, k8s.NetworkingV1Api(client.api)
    reads: list[Any] = await asyncio.gather(
        list_objects(
            client, core.list_namespaced_service, core.list_service_for_all_namespaces, ns, "services"
        ),
        list_objects(
            client,
            networking.list_namespaced_ingress,
            networking.list_ingress_for_all_namespaces,
            ns,
            "ingresses",
        ),
        list_cluster(client, networking.list_ingress_class, "ingressclasses"),
        list_objects(
            client,
            networking.list_namespaced_network_policy,
            networking.list_network_policy_for_all_namespaces,
            ns,
            "networkpolicies",
        ),
        list_objects(client, core.list_namespaced_pod, core.list_pod_for_all_namespaces, ns, "pods"),
    )
    services, ingresses, classes, policies, pods = reads
    names = {name_of(s) for s in services} if services is not None else None
    groups = await asyncio.gather(
        *(_load_balancer(client, s) for s in services or []),
        *(_ingress(client, i, classes, names) for i in ingresses or []),
    )
    found: list[Finding] = []
    for group in groups:
        if isinstance(group, Finding):
            found.append(group)
        elif group:
            found.extend(group)
    if pods is not None:
        found.extend(f for f in (_network_policy(p, pods) for p in policies or []) if f is not None)
    return found
