"""What the deterministic checks of one run found, in the two forms the investigators use."""

from __future__ import annotations

from dataclasses import dataclass

from incidentfox.agents.rca import RootCauseAnalysis


@dataclass(frozen=True, slots=True)
class Triage:
    """``rca`` is the answer the findings support on their own (the no-LLM mode's RCA); ``grounding``
    is the same findings as plain text for the planner's instructions."""

    rca: RootCauseAnalysis
    grounding: str
