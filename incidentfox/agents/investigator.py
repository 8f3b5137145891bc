"""The interface between the worker and whatever investigates: an LLM planner or the no-LLM analyzers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.rca import RootCauseAnalysis


@dataclass(frozen=True, slots=True)
class InvestigationOutcome:
    """Exactly one of ``rca``, ``answer`` and ``error`` is set. ``answer`` is an agent's own reply (the
    SRE agent's), shown as it is rather than as an RCA. ``history`` is the thread's conversation to
    persist. ``dig_deeper``: the RCA may offer to continue in an SRE agent sandbox (the agent is on)."""

    rca: RootCauseAnalysis | None
    error: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    answer: str | None = None
    dig_deeper: bool = False


class Investigator(Protocol):
    async def investigate(
        self, context: InvestigationContext, question: str, history: list[dict[str, Any]]
    ) -> InvestigationOutcome:
        """Investigate, emitting progress through ``context.emit``; never raise for expected failures."""
        ...
