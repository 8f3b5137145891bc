"""Scoring an RCA against a scenario's expected facts, and the optional LLM judge.

The fact checks are deterministic: the root-cause resource named in the summary or root cause, the
required phrases and regexes anywhere in the RCA, each required evidence source matched by some
evidence item's source, and no forbidden claim. The judge, when a model is configured, reads the
question, the criteria and the RCA and answers ``{"verdict": "pass"|"fail", "reason": ...}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from openai import AsyncOpenAI, OpenAIError

from incidentfox.agents.rca import RootCauseAnalysis
from incidentfox.evals.scenario import CITE_ALIASES, Expectations, Scenario

Verdict = Literal["pass", "fail"]
Status = Literal["pass", "fail", "unscored"]
JUDGE_INSTRUCTIONS = """\
You grade a root-cause analysis (RCA) written by an AI SRE for an on-call engineer.
You get the question or alert it answered, the criteria a right answer meets, and the RCA.
The RCA passes only if it meets every criterion; a claim that contradicts a criterion fails it.
Judge the substance, not the wording. Answer with JSON only:
{"verdict": "pass" or "fail", "reason": "one sentence"}
"""


@dataclass(frozen=True, slots=True)
class Check:
    """One fact check: what was checked, whether it held, and what was found when it did not."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class JudgeVerdict:
    verdict: Verdict | None
    reason: str


@dataclass(frozen=True, slots=True)
class Score:
    checks: tuple[Check, ...] = ()
    judge: JudgeVerdict | None = None

    @property
    def status(self) -> Status:
        """pass/fail from the checks and the judge; ``unscored`` when neither could say anything."""
        verdicts = [c.ok for c in self.checks]
        if self.judge is not None and self.judge.verdict is not None:
            verdicts.append(self.judge.verdict == "pass")
        if not verdicts:
            return "unscored"
        return "pass" if all(verdicts) else "fail"

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "judge": None
            if self.judge is None
            else {"verdict": self.judge.verdict, "reason": self.judge.reason},
        }


def rca_text(rca: RootCauseAnalysis) -> str:
    """Everything the RCA says, as one text for phrase and regex checks."""
    parts = [rca.summary, rca.root_cause, rca.confidence.why]
    parts += [f"{e.quote} ({e.source})" for e in rca.evidence]
    parts += [*rca.immediate_actions, *rca.follow_up_actions, *rca.caveats]
    return "\n".join(parts)


def _names(text: str, name: str) -> bool:
    """``name`` in ``text`` not glued to a longer name before it (``orders`` matches ``orders-7d9f``)."""
    return re.search(rf"(?<![A-Za-z0-9_.-]){re.escape(name)}", text, re.IGNORECASE) is not None


def _cited(rca: RootCauseAnalysis, wanted: str) -> bool:
    pattern = CITE_ALIASES.get(wanted.lower(), wanted)
    return any(re.search(pattern, f"{e.source} {e.url or ''}", re.IGNORECASE) for e in rca.evidence)


def fact_checks(
    expect: Expectations, rca: RootCauseAnalysis | None, error: str | None = None
) -> tuple[Check, ...]:
    """The deterministic checks of ``expect`` on ``rca`` (a run that ended without one fails them all)."""
    if rca is None:
        return (Check("answered", False, error or "the run produced no RCA"),) if expect.has_facts else ()
    text = rca_text(rca)
    headline = f"{rca.summary}\n{rca.root_cause}"
    checks: list[Check] = []
    if expect.root_cause is not None:
        ok = _names(headline, expect.root_cause.name)
        checks.append(
            Check(f"root cause names {expect.root_cause.label()}", ok, "" if ok else rca.root_cause[:200])
        )
    for phrase in expect.must_include:
        checks.append(Check(f"mentions {phrase!r}", phrase.lower() in text.lower()))
    for pattern in expect.must_match:
        checks.append(Check(f"matches /{pattern}/", re.search(pattern, text, re.IGNORECASE) is not None))
    for source in expect.cite:
        sources = "; ".join(e.source for e in rca.evidence) or "no evidence"
        ok = _cited(rca, source)
        checks.append(Check(f"cites {source}", ok, "" if ok else sources[:200]))
    for phrase in expect.forbidden:
        ok = phrase.lower() not in text.lower()
        checks.append(Check(f"does not claim {phrase!r}", ok))
    for pattern in expect.forbidden_match:
        ok = re.search(pattern, text, re.IGNORECASE) is None
        checks.append(Check(f"does not match /{pattern}/", ok))
    return tuple(checks)


def judge_criteria(scenario: Scenario) -> list[str]:
    """What the judge is told a right answer states: the scenario's criteria and its facts."""
    expect = scenario.expect
    criteria = list(expect.judge)
    if expect.root_cause is not None:
        criteria.append(f"Identifies {expect.root_cause.label()} as where the root cause lies.")
    criteria += [f"Says (in any words) that: {phrase}" for phrase in expect.must_include]
    criteria += [f"Does not claim: {phrase}" for phrase in expect.forbidden]
    return criteria


class Judge:
    """The LLM judge: one chat completion per RCA through the configured OpenAI-compatible model."""

    def __init__(self, client: AsyncOpenAI, model: str) -> None:
        self._client = client
        self._model = model

    async def grade(self, scenario: Scenario, rca: RootCauseAnalysis | None, question: str) -> JudgeVerdict:
        if rca is None:
            return JudgeVerdict("fail", "The run produced no RCA.")
        criteria = "\n".join(f"- {c}" for c in judge_criteria(scenario))
        prompt = f"Question or alert:\n{question}\n\nCriteria:\n{criteria}\n\nRCA:\n{rca_text(rca)}"
        try:
            answer = await self._client.chat.completions.create(
                model=self._model,
                messages=[
                    {"role": "system", "content": JUDGE_INSTRUCTIONS},
                    {"role": "user", "content": prompt},
                ],
                temperature=0,
            )
        except OpenAIError as exc:
            return JudgeVerdict(None, f"the judge could not answer ({type(exc).__name__})")
        content = (answer.choices[0].message.content or "") if answer.choices else ""
        return parse_verdict(content)


def parse_verdict(content: str) -> JudgeVerdict:
    """The judge's JSON answer (a fenced block is accepted); unreadable answers give no verdict."""
    found = re.search(r"\{.*\}", content, re.DOTALL)
    try:
        data = json.loads(found.group(0)) if found else None
    except ValueError:
        data = None
    if not isinstance(data, Mapping) or data.get("verdict") not in ("pass", "fail"):
        return JudgeVerdict(None, f"the judge's answer was not a verdict: {content[:120]!r}")
    verdict: Verdict = "pass" if data["verdict"] == "pass" else "fail"
    return JudgeVerdict(verdict, str(data.get("reason", "")))


def rca_from_json(data: Mapping[str, Any] | None) -> RootCauseAnalysis | None:
    return None if data is None else RootCauseAnalysis.from_dict(dict(data))


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One scenario's run in one mode (``no-llm`` or ``model``)."""

    scenario: Scenario
    mode: str
    score: Score
    duration_s: float
    rca: RootCauseAnalysis | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "category": self.scenario.category,
            "format": self.scenario.source_format,
            "mode": self.mode,
            "duration_s": round(self.duration_s, 2),
            **self.score.to_dict(),
            "error": self.error,
            "rca": None if self.rca is None else self.rca.to_dict(),
        }
