"""Instant triage: the first finding, shown in the live message before the model's first answer.

When an LLM run starts, its deterministic checks (the Kubernetes analyzers or the failed CI run,
``investigation.triage``) and quick reads of the team's alerting integrations (``alert_checks``) run
at once. The best lead among them is emitted as a ``FirstFinding`` event, which the live message
shows on top as soon as its next edit may go out; the model then gets every lead as grounding, is
asked to confirm or overturn the first one, and its verdict is kept in the RCA
(``RootCauseAnalysis.first_finding``).

Which lead comes first: one the question names (its workload, alert or service), then one whose
evidence states the cause outright (a fatal log line, OOMKilled, a failed CI step's error), then the
analyzers' before the alerts'.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from dataclasses import dataclass

from incidentfox.agents.analyzers.alert_checks import AlertReport, Lead, check_alerts, names_question
from incidentfox.agents.analyzers.findings import Finding, about_question
from incidentfox.agents.analyzers.triage import Triage
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import FirstFinding, Thought
from incidentfox.agents.rca import RootCauseAnalysis
from incidentfox.agents.redaction import scrub_text, secret_values

_NOT_LEADS = frozenset({"api_error", "healthy"})


@dataclass(frozen=True, slots=True)
class InstantTriage:
    """The run's deterministic checks (``found``, as ``investigation.triage`` returns them), what the
    alerting integrations said, and the first finding shown (``None`` when nothing was found)."""

    found: Triage | str | None
    alerts: AlertReport
    first: FirstFinding | None

    def grounding(self) -> str:
        """Every lead as plain text for the planner: the analyzers' findings, then what is firing."""
        parts = [self.found.grounding if isinstance(self.found, Triage) else self.found or ""]
        lines = [
            f'- [firing] {lead.resource}: {lead.symptom}\n    evidence ({lead.source}): "{lead.evidence}"'
            for lead in self.alerts.leads
        ]
        lines.extend(f"Note: {note}" for note in self.alerts.notes)
        if lines:
            parts.append("Alerting integrations, read just now:\n" + "\n".join(lines))
        return "\n".join(p for p in parts if p.strip())

    def first_finding_text(self) -> str:
        """The first finding as the engineer saw it, for the planner to confirm or overturn."""
        if self.first is None:
            return ""
        text = f"{self.first.resource}: {self.first.symptom}"
        if self.first.evidence:
            text += f'\n    evidence ({self.first.source}): "{self.first.evidence}"'
        return text

    def with_verdict(self, rca: RootCauseAnalysis | None) -> RootCauseAnalysis | None:
        """``rca`` with the first finding it confirmed or overturned named as shown; without a first
        finding, a verdict the model gave anyway is dropped (there was nothing to judge)."""
        if rca is None or rca.first_finding is None:
            return rca
        if self.first is None:
            return dataclasses.replace(rca, first_finding=None)
        shown = f"{self.first.resource}: {self.first.symptom}"
        return dataclasses.replace(rca, first_finding=dataclasses.replace(rca.first_finding, finding=shown))


def finding_lead(finding: Finding, question: str) -> tuple[bool, Lead]:
    """A Kubernetes finding as a lead, and whether the question is about it."""
    evidence = finding.evidence[0] if finding.evidence else None
    lead = Lead(
        resource=finding.resource,
        symptom=finding.summary,
        evidence=evidence.quote if evidence else "",
        source=evidence.source if evidence else "",
        agent="kubernetes",
        url=evidence.url if evidence else None,
        decisive=finding.decisive,
    )
    return bool(question) and about_question(question, finding), lead


def triage_leads(found: Triage | str | None, question: str) -> list[tuple[bool, Lead]]:
    """The leads of the deterministic checks: the Kubernetes problems, or the failed CI run."""
    if not isinstance(found, Triage):
        return []
    if found.findings:
        return [finding_lead(f, question) for f in found.findings if f.kind not in _NOT_LEADS]
    rca = found.rca
    if not rca.evidence:
        return []
    evidence = rca.evidence[0]
    lead = Lead(
        resource="failed CI run",
        symptom=rca.summary,
        evidence=evidence.quote,
        source=evidence.source,
        agent="github",
        url=evidence.url,
        decisive=rca.confidence.level == "high",
    )
    return [(True, lead)]


def top_lead(found: Triage | str | None, alerts: AlertReport, question: str) -> Lead | None:
    """The lead to show first (see the module docstring), or ``None``."""
    candidates = triage_leads(found, question)
    candidates += [(names_question(question, lead), lead) for lead in alerts.leads]
    ranked = sorted(
        enumerate(candidates), key=lambda item: (not item[1][0], not item[1][1].decisive, item[0])
    )
    return ranked[0][1][1] if ranked else None


async def instant_triage(
    context: InvestigationContext, question: str, checks: Awaitable[Triage | str | None]
) -> InstantTriage:
    """Run the deterministic ``checks`` and the alert reads at once, then show the first finding."""
    found, alerts = await asyncio.gather(checks, check_alerts(context))
    for firing in alerts.leads[:3]:
        context.emit(Thought(text=f"{firing.resource}: {firing.symptom}", agent=firing.agent))
    lead = top_lead(found, alerts, question)
    first = None
    if lead is not None:
        secrets = secret_values(context.config)
        first = FirstFinding(
            resource=scrub_text(lead.resource, secrets),
            symptom=scrub_text(lead.symptom, secrets),
            evidence=scrub_text(lead.evidence, secrets),
            source=scrub_text(lead.source, secrets),
            url=lead.url,
            agent=lead.agent,
        )
        context.emit(first)
    return InstantTriage(found=found, alerts=alerts, first=first)


KUBERNETES_APIS = (
    "CoreV1Api",
    "AppsV1Api",
    "BatchV1Api",
    "NetworkingV1Api",
    "AutoscalingV2Api",
    "PolicyV1Api",
    "StorageV1Api",
    "AdmissionregistrationV1Api",
    "CustomObjectsApi",
    "VersionApi",
)


def load_client_modules() -> None:
    """Import the Kubernetes API classes the analyzers use. The client loads each lazily, on first
    use, and ``CoreV1Api`` alone takes over a second of CPU: paid inside the first run it would stall
    the event loop, and with it every live message, right when the first finding should show. The
    worker calls this in a thread before it takes runs."""
    from kubernetes import client

    for name in KUBERNETES_APIS:
        getattr(client, name)
