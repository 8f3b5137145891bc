"""The root-cause analysis: the shape every investigation ends with (design §7)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

ConfidenceLevel = Literal["high", "medium", "low"]
FirstFindingVerdict = Literal["confirmed", "overturned"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """A quoted line and where it came from, e.g. ``pod prod/checkout-7d9 (previous logs)``."""

    quote: str
    source: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Confidence:
    level: ConfidenceLevel
    why: str


@dataclass(frozen=True, slots=True)
class FirstFindingCheck:
    """Whether the investigation confirmed or overturned the first finding shown in the live message
    (``finding``, as shown), and ``why`` in one sentence."""

    verdict: FirstFindingVerdict
    why: str
    finding: str = ""


@dataclass(frozen=True, slots=True)
class RootCauseAnalysis:
    """Summary, root cause, evidence, confidence, recommended actions and caveats."""

    summary: str
    root_cause: str
    evidence: tuple[Evidence, ...] = ()
    confidence: Confidence = field(default_factory=lambda: Confidence("low", "no evidence gathered"))
    immediate_actions: tuple[str, ...] = ()
    follow_up_actions: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    first_finding: FirstFindingCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; ``first_finding`` only when the run had one, so older readers see no change."""
        data = dataclasses.asdict(self)
        if self.first_finding is None:
            del data["first_finding"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RootCauseAnalysis:
        confidence = data.get("confidence") or {}
        return cls(
            summary=str(data.get("summary", "")),
            root_cause=str(data.get("root_cause", "")),
            evidence=tuple(
                Evidence(quote=str(e["quote"]), source=str(e["source"]), url=e.get("url"))
                for e in data.get("evidence", ())
            ),
            confidence=Confidence(level=confidence.get("level", "low"), why=str(confidence.get("why", ""))),
            immediate_actions=tuple(str(a) for a in data.get("immediate_actions", ())),
            follow_up_actions=tuple(str(a) for a in data.get("follow_up_actions", ())),
            caveats=tuple(str(c) for c in data.get("caveats", ())),
            first_finding=_first_finding(data.get("first_finding")),
        )


def _first_finding(data: Any) -> FirstFindingCheck | None:
    if not isinstance(data, dict) or data.get("verdict") not in ("confirmed", "overturned"):
        return None
    return FirstFindingCheck(
        verdict=data["verdict"], why=str(data.get("why", "")), finding=str(data.get("finding", ""))
    )
