"""What a deterministic analyzer found, and how findings are ranked against the user's question."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from incidentfox.agents.analyzers.question_scope import QuestionScope, parse_question
from incidentfox.agents.rca import Evidence

FindingKind = Literal[
    "api_error",
    "node_not_ready",
    "pending_pvc",
    "oomkilled",
    "crashloop",
    "image_pull",
    "unschedulable",
    "probe_failure",
    "no_endpoints",
    "webhook_unavailable",
    "quota_exceeded",
    "missing_reference",
    "load_balancer_failed",
    "job_failed",
    "job_misconfigured",
    "scaling_limited",
    "rollout_stuck",
    "disruption_blocked",
    "selects_nothing",
    "node_pressure",
    "node_cordoned",
    "pvc_lost",
    "init_container",
    "container_config",
    "container_start",
    "container_exit",
    "sandbox_failure",
    "mount_failure",
    "evicted",
    "scheduling_gated",
    "log_errors",
    "healthy",
]
Severity = Literal["critical", "warning", "info"]

KIND_RANK: dict[str, int] = {
    "api_error": 0,
    "node_not_ready": 1,
    "pending_pvc": 2,
    "oomkilled": 3,
    "crashloop": 4,
    "image_pull": 5,
    "unschedulable": 6,
    "probe_failure": 7,
    "no_endpoints": 8,
    "webhook_unavailable": 1,
    "quota_exceeded": 2,
    "missing_reference": 2,
    "load_balancer_failed": 3,
    "job_failed": 4,
    "job_misconfigured": 6,
    "scaling_limited": 7,
    "rollout_stuck": 8,
    "disruption_blocked": 8,
    "selects_nothing": 8,
    "node_pressure": 1,
    "pvc_lost": 2,
    "init_container": 4,
    "container_config": 4,
    "container_start": 4,
    "container_exit": 4,
    "sandbox_failure": 5,
    "mount_failure": 5,
    "evicted": 6,
    "scheduling_gated": 6,
    "log_errors": 7,
    "node_cordoned": 8,
    "healthy": 9,
}
"""Causes before symptoms: a NotReady node or an unbound claim explains Pending pods; a crashing or
failing-probe pod explains a service without endpoints. Lower ranks first. An admission webhook that
cannot answer, an exhausted quota or a missing referenced object (storage class, service, secret)
explains a workload short of replicas (``rollout_stuck``), which ranks with the other symptoms."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem (or the all-clear), with quoted evidence and what to do about it.

    ``key`` identifies the affected object (``pod/prod/checkout-7d9``, ``node/worker-2``); ``related``
    lists keys of objects this finding involves (the claim a Pending pod waits for, the pods behind a
    service), so that a cause is preferred together with the workload the question names.
    ``depends_on`` lists keys of what the affected workload calls and reports failing (the service a
    pod's log says it cannot reach, and that service's pods): when the question names this finding,
    the dependency's own findings are about the question too, and may be its cause.
    ``decisive`` means the evidence states the cause outright (a fatal log line, ``OOMKilled``, a
    scheduler message) rather than only the symptom.
    """

    kind: FindingKind
    severity: Severity
    resource: str
    summary: str
    root_cause: str
    evidence: tuple[Evidence, ...] = ()
    immediate_actions: tuple[str, ...] = ()
    follow_up_actions: tuple[str, ...] = ()
    decisive: bool = False
    namespace: str | None = None
    workload: str | None = None
    key: str = ""
    related: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()

    @property
    def recommended_actions(self) -> tuple[str, ...]:
        return self.immediate_actions + self.follow_up_actions

    @property
    def is_problem(self) -> bool:
        return self.kind != "healthy"


def _names(finding: Finding) -> set[str]:
    name = finding.key.rsplit("/", 1)[-1] if finding.key else ""
    names = {name, re.sub(r"-\d+$", "", name)}  # a StatefulSet pod postgres-0 answers to "postgres"
    if finding.workload:
        names.add(finding.workload)
    return {n for n in names if n}


def mentions(question: str, finding: Finding) -> bool:
    """Whether the question names this finding's workload or object (``report worker`` matches
    ``report-worker``)."""
    text = question.lower()
    words = set(re.findall(r"[a-z0-9][a-z0-9.-]*[a-z0-9]|[a-z0-9]", text))
    spaced = " " + re.sub(r"[^a-z0-9]+", " ", text) + " "
    return any(
        name.lower() in words or f" {name.lower().replace('-', ' ')} " in spaced for name in _names(finding)
    )


def about_question(question: str, finding: Finding, scope: QuestionScope | None = None) -> bool:
    """Whether the question is about this finding: it mentions its workload, or names its object or
    namespace ("pod checkout-7d9…", "in namespace shop")."""
    scope = scope if scope is not None else parse_question(question)
    named = bool(finding.key) and scope.names(
        finding.key, finding.namespace, finding.workload, finding.related
    )
    return named or mentions(question, finding)


def relevant_to(question: str, findings: Iterable[Finding]) -> set[str]:
    """Keys of the findings the question is about, plus the causes those findings point to (what
    they involve, and the dependencies they report failing)."""
    found = list(findings)
    scope = parse_question(question)
    direct = [f for f in found if f.key and about_question(question, f, scope)]
    keys = {f.key for f in direct}
    for f in direct:
        keys.update(f.related)
        keys.update(f.depends_on)
    for f in found:
        if (
            f.key not in keys
            and any(k in keys for k in f.related)
            and f.kind in ("node_not_ready", "node_pressure", "pending_pvc", "pvc_lost")
        ):
            keys.add(f.key)
    return keys


def rank_findings(findings: Iterable[Finding], question: str = "") -> list[Finding]:
    """Most likely root cause first: what the question is about, then causes before symptoms, then
    decisive evidence, then severity."""
    found = list(findings)
    relevant = relevant_to(question, found) if question else set()
    return sorted(
        found,
        key=lambda f: (f.key not in relevant, KIND_RANK[f.kind], not f.decisive, f.severity != "critical"),
    )
