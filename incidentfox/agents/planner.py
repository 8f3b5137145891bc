"""The planner: an openai-agents ``Agent`` that delegates to sub-agents and answers with an RCA.

Each sub-agent (kubernetes, logs, metrics, github, incident-history, whichever the team enabled) is
built from a ``SubagentSpec`` and offered to the planner as a tool with ``Agent.as_tool``, named
``ask_<name>``. The planner's ``output_type`` is ``RcaOutput``, a pydantic mirror of
``rca.RootCauseAnalysis`` that the SDK turns into a strict JSON schema for structured output;
``RcaOutput.to_rca()`` converts it back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agents import Agent, AgentOutputSchema, Model, ModelSettings, RunContextWrapper, Tool
from agents.mcp import MCPServer
from agents.tool import ToolErrorFunction
from pydantic import BaseModel, Field

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.rca import Confidence, Evidence, FirstFindingCheck, RootCauseAnalysis
from incidentfox.agents.toolsets.outputs import offers_output_tools, output_function_tools

PLANNER_NAME = "planner"
KNOWN_SUBAGENTS: tuple[str, ...] = (
    "kubernetes",
    "logs",
    "metrics",
    "github",
    "incident-history",
    "data",
    "cloud",
)
"""The sub-agents of design §7; a spec may use another name, these are the ones the worker builds."""

_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,40}$")

PLANNER_INSTRUCTIONS = """\
You are IncidentFox, an SRE investigating a production problem for an on-call engineer.

How to work:
- You cannot see any system yourself. Delegate each question to a specialist tool (ask_kubernetes,
  ask_logs, ...) with a concrete, self-contained task: name the service, namespace, time window and
  what you want back. Ask several specialists when the question spans systems.
- Before calling tools, say in one short sentence what you are about to check and why.
- Base every conclusion on what the specialists returned. Quote the exact lines that matter as
  evidence, each with its source (tool, object, namespace or URL). Never invent evidence, log lines,
  metrics, commits or URLs; if nothing supports a claim, do not make it.
- If a specialist fails or finds nothing, say so in the caveats and lower your confidence.
- Confidence is high only when quoted evidence directly shows the cause; medium when it is the most
  likely explanation; low when evidence is thin or missing. Say why.
- Recommend immediate actions (to stop the impact) and follow-up actions (to prevent a recurrence).
  Do not claim to have performed an action unless a specialist reports that it ran after approval;
  if an action was refused or not approved in time, say so and by whom.
- Finish with the structured root-cause analysis.
"""

SUBAGENT_GUIDANCE = """\

You are a specialist answering one task from the lead investigator. Use your tools; do not guess.
Reply with what you found, quoting the exact lines that matter and where each came from (tool,
object, namespace, URL). If a tool returned no data or an error, say so plainly. Never invent output.
"""

GROUNDING_HEADER = """\

Findings from IncidentFox's deterministic checks, already verified against the team's systems.
Treat them as evidence you may quote (with their sources); confirm or extend them with the specialists:
"""

FIRST_FINDING_HEADER = """
The on-call engineer was already shown this first finding from the deterministic checks. Test it with
the specialists rather than repeating it; in `first_finding`, say whether your investigation
confirmed it (it is the cause, or its direct symptom) or overturned it (the cause lies elsewhere),
and why in one sentence:
"""


class EvidenceOutput(BaseModel):
    """One piece of evidence: a line quoted verbatim from a specialist's result."""

    quote: str = Field(description="The exact line, copied verbatim from a tool or specialist result.")
    source: str = Field(description="Where the line came from, e.g. 'pod prod/checkout-7d9 (previous logs)'.")
    url: str | None = Field(default=None, description="A link to the source, only if a tool returned one.")


class ConfidenceOutput(BaseModel):
    level: Literal["high", "medium", "low"]
    why: str = Field(description="One sentence on why this confidence level.")


class FirstFindingOutput(BaseModel):
    verdict: Literal["confirmed", "overturned"]
    why: str = Field(description="One sentence: the evidence that confirms or overturns the first finding.")


class RcaOutput(BaseModel):
    """The planner's structured answer; mirrors ``rca.RootCauseAnalysis``."""

    summary: str = Field(description="Two or three sentences for the on-call engineer.")
    root_cause: str = Field(description="The most likely root cause, or 'unknown' with what is missing.")
    evidence: list[EvidenceOutput] = Field(default_factory=list)
    confidence: ConfidenceOutput
    immediate_actions: list[str] = Field(default_factory=list, description="Steps to stop the impact now.")
    follow_up_actions: list[str] = Field(default_factory=list, description="Steps to prevent a recurrence.")
    caveats: list[str] = Field(
        default_factory=list, description="What could not be checked, or is uncertain."
    )
    first_finding: FirstFindingOutput | None = Field(
        default=None,
        description="Whether the investigation confirmed or overturned the first finding shown to the "
        "engineer; null when none was shown.",
    )

    def to_rca(self) -> RootCauseAnalysis:
        return RootCauseAnalysis(
            summary=self.summary,
            root_cause=self.root_cause,
            evidence=tuple(Evidence(quote=e.quote, source=e.source, url=e.url) for e in self.evidence),
            confidence=Confidence(level=self.confidence.level, why=self.confidence.why),
            immediate_actions=tuple(self.immediate_actions),
            follow_up_actions=tuple(self.follow_up_actions),
            caveats=tuple(self.caveats),
            first_finding=None
            if self.first_finding is None
            else FirstFindingCheck(verdict=self.first_finding.verdict, why=self.first_finding.why),
        )


RCA_OUTPUT_SCHEMA = AgentOutputSchema(RcaOutput)
"""Built once: openai-agents would otherwise rebuild the JSON schema of ``RcaOutput`` on every turn."""


@dataclass(frozen=True, slots=True)
class SubagentSpec:
    """A specialist: its name (``kubernetes``), what the planner is told it is for, its instructions
    (usually the toolsets' instructions joined) and its ready-made tools and MCP servers."""

    name: str
    description: str
    instructions: str
    tools: Sequence[Tool] = ()
    mcp_servers: Sequence[MCPServer] = field(default=())

    @property
    def tool_name(self) -> str:
        return subagent_tool_name(self.name)


def subagent_tool_name(name: str) -> str:
    """The planner-facing tool name for a sub-agent: ``incident-history`` -> ``ask_incident_history``."""
    return "ask_" + name.replace("-", "_")


def build_subagent(
    spec: SubagentSpec, *, model: Model, model_settings: ModelSettings | None = None
) -> Agent[InvestigationContext]:
    return Agent[InvestigationContext](
        name=spec.name,
        instructions=spec.instructions.rstrip() + "\n" + SUBAGENT_GUIDANCE,
        model=model,
        model_settings=model_settings or ModelSettings(),
        tools=list(spec.tools),
        mcp_servers=list(spec.mcp_servers),
    )


def build_planner(
    *,
    model: Model,
    subagents: Sequence[SubagentSpec],
    grounding: str | None = None,
    first_finding: str = "",
    extra_instructions: str = "",
    subagent_max_turns: int = 8,
    model_settings: ModelSettings | None = None,
    planner_tools: Sequence[Tool] = (),
) -> Agent[InvestigationContext]:
    """The planner agent for one run.

    ``grounding`` is the no-LLM analyzers' findings as text; ``first_finding`` the top one as shown in
    the live message, which the planner must confirm or overturn; ``extra_instructions`` is team-specific
    guidance from config (runbook hints); ``model_settings`` (retries of transient model failures, see
    ``run_budgets``) apply to the planner and every sub-agent. Sub-agents get ``subagent_max_turns``
    turns each; a failing sub-agent becomes a tool result the planner can reason about, not a failed
    run. When the sub-agents keep over-budget outputs (they offer ``search_output``), the planner can
    read them too. ``planner_tools`` are the planner's own tools (its MCP servers' tools).
    """
    _check_names(subagents)
    tools: list[Tool] = [
        build_subagent(spec, model=model, model_settings=model_settings).as_tool(
            tool_name=spec.tool_name,
            tool_description=spec.description,
            max_turns=subagent_max_turns,
            failure_error_function=_subagent_failure_message(spec.name),
        )
        for spec in subagents
    ]
    if any(offers_output_tools(spec.tools) for spec in subagents):
        tools.extend(output_function_tools())
    tools.extend(planner_tools)
    instructions = PLANNER_INSTRUCTIONS
    if not subagents and not planner_tools:
        instructions += (
            "\nNo specialists are available for this team: say so and answer from the findings only.\n"
        )
    if extra_instructions.strip():
        instructions += "\nTeam guidance:\n" + extra_instructions.strip() + "\n"
    if grounding and grounding.strip():
        instructions += GROUNDING_HEADER + grounding.strip() + "\n"
    if first_finding.strip():
        instructions += FIRST_FINDING_HEADER + first_finding.strip() + "\n"
    return Agent[InvestigationContext](
        name=PLANNER_NAME,
        instructions=instructions,
        model=model,
        model_settings=model_settings or ModelSettings(),
        tools=tools,
        output_type=RCA_OUTPUT_SCHEMA,
    )


def _check_names(subagents: Sequence[SubagentSpec]) -> None:
    seen: set[str] = set()
    for spec in subagents:
        if not _NAME_RE.match(spec.name):
            raise ValueError(f"sub-agent name {spec.name!r} must match {_NAME_RE.pattern}")
        if spec.name in seen:
            raise ValueError(f"sub-agent {spec.name!r} is given twice")
        seen.add(spec.name)


def _subagent_failure_message(name: str) -> ToolErrorFunction:
    """What the planner reads when a sub-agent fails: plain words and the error type, no details
    (exception text can carry endpoint responses that have no business in a prompt)."""

    def message(_ctx: RunContextWrapper[Any], error: Exception) -> str:
        return (
            f"The {name} specialist could not finish ({type(error).__name__}). "
            "Carry on with the evidence you have and mention this in the caveats."
        )

    return message
