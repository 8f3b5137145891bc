"""Findings -> ``RootCauseAnalysis``: the no-LLM answer, and the grounding given to a model."""

from __future__ import annotations

from collections.abc import Sequence

from incidentfox.agents.analyzers.findings import Finding, about_question, rank_findings
from incidentfox.agents.rca import Confidence, Evidence, RootCauseAnalysis

MAX_EVIDENCE = 8
_SCOPE_CAVEAT = (
    "Based on the Kubernetes API only; application metrics and external dependencies were not checked."
)


def _unreachable(finding: Finding) -> RootCauseAnalysis:
    return RootCauseAnalysis(
        summary="Could not investigate: the Kubernetes API could not be read.",
        root_cause=f"Undetermined. {finding.root_cause}",
        confidence=Confidence("low", "Nothing in the cluster could be checked, so no cause can be named."),
        immediate_actions=finding.immediate_actions,
        caveats=("The cluster may be healthy or broken; this run could not tell.",),
    )


def _all_clear(
    finding: Finding | None, question: str, notes: tuple[str, ...], unchecked: tuple[str, ...]
) -> RootCauseAnalysis:
    checked = finding.summary if finding else "No Kubernetes objects were checked."
    confidence = (
        Confidence("low", "Part of the cluster could not be checked: " + " ".join(unchecked))
        if unchecked
        else Confidence(
            "medium",
            "Every pod, node, service and volume claim checked looks healthy; the cause may lie elsewhere.",
        )
    )
    return RootCauseAnalysis(
        summary="No problems found in Kubernetes.",
        root_cause=f"No Kubernetes problems found. {checked}",
        confidence=confidence,
        follow_up_actions=(
            "Look at application logs, metrics and recent deploys of the affected service.",
            "Check external dependencies (databases, third-party APIs) the service calls.",
        ),
        caveats=(*notes, *unchecked, _SCOPE_CAVEAT)
        + ((f'Question asked: "{question}"',) if question else ()),
    )


def _confidence(primary: Finding, question: str, matched: bool) -> Confidence:
    if question and not matched and any(ch.isalpha() for ch in question):
        return Confidence(
            "low" if not primary.decisive else "medium",
            "No finding names what the question asks about; "
            f"the strongest problem found is {primary.resource}.",
        )
    if primary.decisive and primary.evidence:
        first = primary.evidence[0]
        return Confidence("high", f'The decisive evidence was found: "{first.quote}" ({first.source}).')
    return Confidence(
        "medium", f"The symptom is clear ({primary.summary}) but no line states its cause outright."
    )


def _dependent_asked_about(primary: Finding, problems: Sequence[Finding], question: str) -> Finding | None:
    """The finding the question is about that depends on ``primary``, when ``primary`` itself is not
    what the question names (the question asks about the symptom, the cause is its dependency)."""
    if not question or about_question(question, primary):
        return None
    return next(
        (f for f in problems if primary.key in f.depends_on and about_question(question, f)),
        None,
    )


def _name_of(finding: Finding) -> str:
    return finding.workload or finding.resource


def _distinct_evidence(primary: Finding, others: Sequence[Finding]) -> tuple[Evidence, ...]:
    """The primary's evidence, then the first of each other finding's whose quote is not shown yet
    (three replicas logging the same fatal line are one piece of evidence)."""
    evidence: list[Evidence] = list(primary.evidence)
    for other in others:
        if len(evidence) >= MAX_EVIDENCE:
            break
        if other.evidence and all(other.evidence[0].quote != e.quote for e in evidence):
            evidence.append(other.evidence[0])
    return tuple(evidence[:MAX_EVIDENCE])


def build_rca(
    findings: Sequence[Finding],
    *,
    question: str = "",
    notes: Sequence[str] = (),
    unchecked: Sequence[str] = (),
) -> RootCauseAnalysis:
    """The RCA for a set of findings: the best-ranked problem is the root cause, the others are
    listed as related evidence. High confidence only when the cause is stated outright (a fatal log
    line, OOMKilled, a scheduler message).

    ``notes`` (where the scan looked, when it read the cluster) and ``unchecked`` (what could not be
    read, e.g. other namespaces under RBAC) become caveats; an all-clear with anything unchecked is
    only low confidence.

    When the question names a workload whose failing check reports a dependency (``depends_on``) and
    that dependency's problem is the root cause, the summary says so: "checkout depends on
    payments-api, which is failing: …", and the root cause adds what the dependent pod reports."""
    api_errors = [f for f in findings if f.kind == "api_error"]
    if api_errors:
        return _unreachable(api_errors[0])
    problems = rank_findings([f for f in findings if f.is_problem], question)
    if not problems:
        healthy = next((f for f in findings if f.kind == "healthy"), None)
        return _all_clear(healthy, question, tuple(notes), tuple(unchecked))
    primary, others = problems[0], problems[1:]
    summary, root_cause = primary.summary, primary.root_cause
    dependent = _dependent_asked_about(primary, problems, question)
    if dependent is not None:
        summary = f"{_name_of(dependent)} depends on {_name_of(primary)}, which is failing: {summary}"
        root_cause = f"{root_cause} {dependent.root_cause}"
    if others:
        summary += f" {len(others)} related problem{'s' if len(others) != 1 else ''} also found."
    return RootCauseAnalysis(
        summary=summary,
        root_cause=root_cause,
        evidence=_distinct_evidence(primary, others),
        confidence=_confidence(primary, question, any(about_question(question, f) for f in problems)),
        immediate_actions=primary.immediate_actions,
        follow_up_actions=primary.follow_up_actions + tuple(f"Also: {o.summary}" for o in others[:4]),
        caveats=(*notes, *unchecked, _SCOPE_CAVEAT),
    )
