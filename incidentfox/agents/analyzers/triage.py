"""What the deterministic checks of one run found, in the two forms the investigators use."""

from __future__ import annotations

from dataclasses import dataclass

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.rca import RootCauseAnalysis


@dataclass(frozen=True, slots=True)
class Triage:
    """``rca`` is the answer the findings support on their own (the no-LLM mode's RCA); ``grounding``
    is the same findings as plain text for the planner's instructions; ``findings`` are the ranked
    Kubernetes findings behind them (empty for a CI run, whose RCA says it all)."""

    rca: RootCauseAnalysis
    grounding: str
    findings: tuple[Finding, ...] = ()
