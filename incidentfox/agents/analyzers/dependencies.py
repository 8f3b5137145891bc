"""Which service a failing pod says it cannot reach, read from the log line quoted as its evidence.

A pod whose readiness check calls a downstream service fails its probe when that service is down:
the pod looks like the problem, but the cause is the dependency. Its log usually names it, as a
cluster DNS name (``payments-api.payments``, ``payments-api.payments.svc.cluster.local:8080``), as
``name:port`` in its own namespace (``redis:6379``), or by the service's cluster IP
(``dial tcp 10.96.0.14:8080``). A name counts only when it is a service the scan listed, so ordinary
words and external hosts (``api.psp.example``) are never taken for one.

``link_dependencies`` records what a probe failure depends on (the service and the pods behind it)
in ``Finding.depends_on``, so that a question about the failing pod also finds its dependency's
problems, and the RCA can name the dependency as the cause.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from incidentfox.agents.analyzers.findings import Finding

Row = Mapping[str, Any]
LOG_SOURCE_SUFFIX = "(logs)"
"""The end of an evidence source that quotes a pod's own log line (``pod shop/checkout-7d9 (logs)``)."""

LINKED_KINDS = frozenset({"probe_failure", "init_container", "log_errors"})
"""Findings whose quoted log line may name a dependency: a failing probe, an init container waiting
on a service, a healthy-looking pod logging errors about one."""
_HOST = re.compile(r"[a-z0-9][-a-z0-9.]*[a-z0-9](?::\d{1,5})?")
_CLUSTER_SUFFIXES = ((), ("svc",), ("svc", "cluster", "local"))


def _service_key(namespace: str, name: str) -> str:
    return f"service/{namespace}/{name}"


def services_named(line: str, namespace: str, services: Iterable[Row]) -> list[Row]:
    """The listed services ``line`` names, in the order it names them (each once).

    ``namespace`` is the pod's own, where a bare ``name:port`` resolves."""
    by_name = {(str(s["namespace"]), str(s["name"])): s for s in services}
    by_ip = {str(s["cluster_ip"]): s for s in by_name.values() if s.get("cluster_ip") not in (None, "None")}
    found: list[Row] = []
    for token in _HOST.findall(line.lower()):
        host, _, port = token.partition(":")
        parts = host.split(".")
        candidate = by_ip.get(host)
        if candidate is None and len(parts) >= 2 and tuple(parts[2:]) in _CLUSTER_SUFFIXES:
            candidate = by_name.get((parts[1], parts[0]))
        if candidate is None and len(parts) == 1 and port:
            candidate = by_name.get((namespace, parts[0]))
        if candidate is not None and candidate not in found:
            found.append(candidate)
    return found


def _pods_behind(service: Row) -> tuple[str, ...]:
    namespace = service["namespace"]
    addresses = [*service.get("ready_addresses", []), *service.get("not_ready_addresses", [])]
    return tuple(f"pod/{namespace}/{a['pod']}" for a in addresses if a.get("pod"))


def _dependencies(finding: Finding, services: Sequence[Row]) -> tuple[str, ...]:
    if finding.kind not in LINKED_KINDS or not finding.namespace:
        return ()
    keys: list[str] = []
    for evidence in finding.evidence:
        if not evidence.source.endswith(LOG_SOURCE_SUFFIX):
            continue
        for service in services_named(evidence.quote, finding.namespace, services):
            pods = _pods_behind(service)
            if finding.key in pods:
                continue
            keys += [_service_key(str(service["namespace"]), str(service["name"])), *pods]
    return tuple(dict.fromkeys(keys))


def link_dependencies(findings: list[Finding], services: Sequence[Row]) -> list[Finding]:
    """``findings`` with ``depends_on`` filled in for the probe failures (and ``LINKED_KINDS``) whose
    log line names a service other than the pod's own."""
    linked = []
    for finding in findings:
        depends_on = _dependencies(finding, services)
        linked.append(dataclasses.replace(finding, depends_on=depends_on) if depends_on else finding)
    return linked
