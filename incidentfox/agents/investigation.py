"""The investigators the worker runs: the no-LLM analyzers, and the LLM planner grounded by them.

``PlannerInvestigator`` picks per run: when the team (or the installation) has a model configured,
the planner investigates with the analyzers' findings as grounding; otherwise the analyzers alone
produce the RCA (design §7, no-LLM mode).

Which analyzers run depends on where the run came from (``triage``): a failed CI run, or a question
asked on a pull request with a failed run, is read on GitHub; anything else is checked in Kubernetes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from incidentfox.agents.analyzers.ci_failure import CiTarget, ci_triage
from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.first_finding import instant_triage
from incidentfox.agents.analyzers.rca_builder import build_rca
from incidentfox.agents.analyzers.scoped_scan import ClusterReport, ScopedScanner
from incidentfox.agents.analyzers.shared_scan import SharedScans
from incidentfox.agents.analyzers.triage import Triage
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Error, Result, Started, SubagentEnd, SubagentStart, Thought
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.agents.mcp.attach import attached_mcp
from incidentfox.agents.mcp.servers import has_attached_servers
from incidentfox.agents.model_provider import ModelConfigError, TeamModelProvider
from incidentfox.agents.planner import build_planner
from incidentfox.agents.redaction import scrub_rca, scrub_text, secret_values
from incidentfox.agents.run_budgets import RunBudgets
from incidentfox.agents.runner import run_investigation
from incidentfox.agents.specialists import all_toolsets, available_specialists, configured_toolsets
from incidentfox.agents.toolsets.github_api import NOT_CONFIGURED as GITHUB_NOT_CONFIGURED
from incidentfox.agents.toolsets.github_api import github_configured
from incidentfox.agents.toolsets.health import IntegrationHealth
from incidentfox.agents.toolsets.kubernetes import KUBERNETES
from incidentfox.agents.toolsets.kubernetes_api import kubernetes_configured, kubernetes_settings
from incidentfox.knowledge.run_start import run_knowledge
from incidentfox.knowledge.store import KnowledgeBase

log = logging.getLogger(__name__)
HEALTH_TIMEOUT_S = 5.0
"""How long a run waits for an integration's health check (cached a minute per team) before starting."""


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """Why a team cannot be investigated for, in words that name the config keys to set."""
    if config.get("enabled") is False:
        return ["IncidentFox is turned off for this team (`enabled: false` in its config)."]
    if not configured_toolsets(config) and not has_attached_servers(config):
        return [
            "No integration is configured: set `integrations.kubernetes.api_url` and "
            "`integrations.kubernetes.token`, or `integrations.kubernetes.kubeconfig_content`, in the "
            "team's config (or ask the installation's admin to add this org to "
            "INSTALLATION_CREDENTIALS_ORGS to use the installation's kubeconfig); or "
            "`integrations.pagerduty.api_key` for PagerDuty; or `integrations.github.token` for GitHub."
        ]
    return []


MAX_HISTORY_ITEMS = 30
NO_FAILED_RUN = (
    "The pull request's latest commit has no failed CI run, and without a model IncidentFox can only "
    "analyse failed CI runs and the Kubernetes cluster. Configure a model (`model.*` in the team's "
    "config, or OPENAI_API_KEY) to ask it anything else."
)


def conversation_only(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a thread remembers: the questions and the answers, not every tool call and output.

    Tool outputs (up to the output budget each) would make every follow-up resend the whole
    investigation and soon overflow the model's context; the answers already carry the evidence.
    """
    kept = [
        item
        for item in items
        if item.get("role") in ("user", "assistant") and item.get("type", "message") == "message"
    ]
    return kept[-MAX_HISTORY_ITEMS:]


def findings_as_grounding(findings: Sequence[Finding], notes: Sequence[str] = ()) -> str:
    """The analyzers' findings as plain text for the planner's instructions, then where they looked."""
    lines = []
    for finding in findings:
        lines.append(f"- [{finding.severity}] {finding.resource}: {finding.summary}")
        lines.extend(f'    evidence ({e.source}): "{e.quote}"' for e in finding.evidence[:3])
    lines.extend(f"Note: {note}" for note in notes)
    return "\n".join(lines)


async def run_analyzers(
    context: InvestigationContext, question: str, scans: SharedScans
) -> ClusterReport | str:
    """Run the kubernetes analyzers where the question points, showing them as a sub-agent; a
    plain-words error if the cluster is unavailable.

    Each scan is shared with the team's other runs while fresh or provably unchanged
    (``SharedScans``); the findings are ranked against this run's question (``ScopedScanner``).
    """
    context.emit(
        SubagentStart(agent="kubernetes", task="deterministic checks of pods, nodes, services, volumes")
    )
    secrets = secret_values(context.config)
    cluster = json.dumps(kubernetes_settings(context.config), sort_keys=True, default=str)
    key = (context.org_id, context.team_node_id, hashlib.sha256(cluster.encode()).hexdigest())
    scanner = ScopedScanner(lambda: KUBERNETES.connect(context.config), scans, key)
    report = await scanner.report(question)
    if isinstance(report, str):
        report = scrub_text(report, secrets)
        context.emit(SubagentEnd(agent="kubernetes", summary=report))
        return report
    for finding in report.findings[:5]:
        context.emit(
            Thought(text=scrub_text(f"{finding.resource}: {finding.summary}", secrets), agent="kubernetes")
        )
    problems = sum(1 for f in report.findings if f.is_problem)
    context.emit(SubagentEnd(agent="kubernetes", summary=f"{problems} problem(s) found"))
    return report


async def kubernetes_triage(context: InvestigationContext, question: str, scans: SharedScans) -> Triage | str:
    report = await run_analyzers(context, question, scans)
    if isinstance(report, str):
        return report
    return Triage(
        rca=build_rca(report.findings, question=question, notes=report.notes, unchecked=report.unchecked),
        grounding=findings_as_grounding(report.findings, (*report.notes, *report.unchecked)),
        findings=tuple(report.findings),
    )


async def triage(
    context: InvestigationContext, question: str, scans: SharedScans, *, answer_required: bool
) -> Triage | str | None:
    """The deterministic checks for this run: a plain-words error when they could not run; ``None``
    when there is nothing to check and no answer is required (the planner then works without).

    A failed CI run is read on GitHub; so is the pull request a question was asked on, when its
    head commit has a failed run. Otherwise the Kubernetes analyzers run, when the team has a
    cluster or an answer is required of them (no-LLM mode).
    """
    target = CiTarget.from_origin(context.origin)
    if target is not None and target.explicit and not github_configured(context.config):
        return f"IncidentFox cannot read this CI run. {GITHUB_NOT_CONFIGURED}"
    if target is not None and github_configured(context.config):
        found = await ci_triage(context, target)
        if found is not None or target.explicit:
            return found
        if answer_required and not kubernetes_configured(context.config):
            return NO_FAILED_RUN
    if answer_required or kubernetes_configured(context.config):
        return await kubernetes_triage(context, question, scans)
    return None


class AnalyzerInvestigator:
    """No-LLM mode: the deterministic analyzers produce the RCA."""

    def __init__(self, scans: SharedScans | None = None) -> None:
        self._scans = scans or SharedScans()

    async def investigate(
        self, context: InvestigationContext, question: str, history: list[dict[str, Any]]
    ) -> InvestigationOutcome:
        context.emit(Started(summary=question))
        found = await triage(context, question, self._scans, answer_required=True)
        if not isinstance(found, Triage):
            error = found or "Nothing could be checked for this question."
            context.emit(Error(message=error))
            return InvestigationOutcome(rca=None, error=error, history=history)
        rca = scrub_rca(found.rca, secret_values(context.config))
        context.emit(Result(rca=rca))
        turn = [{"role": "user", "content": question}, {"role": "assistant", "content": rca.summary}]
        return InvestigationOutcome(rca=rca, history=[*history, *turn])


class PlannerInvestigator:
    """LLM mode: the planner delegates to sub-agents with the team's toolsets, grounded by the analyzers."""

    def __init__(
        self,
        provider: TeamModelProvider,
        scans: SharedScans | None = None,
        health: IntegrationHealth | None = None,
        knowledge: KnowledgeBase | None = None,
    ) -> None:
        self._provider = provider
        self._knowledge = knowledge
        self._scans = scans or SharedScans()
        self._health = health or IntegrationHealth(all_toolsets(), timeout_s=HEALTH_TIMEOUT_S)

    async def investigate(
        self, context: InvestigationContext, question: str, history: list[dict[str, Any]]
    ) -> InvestigationOutcome:
        try:
            model = await self._provider.checked_model_for(context.config)
        except ModelConfigError as exc:
            context.emit(Started(summary=question))
            context.emit(Error(message=str(exc)))
            return InvestigationOutcome(rca=None, error=str(exc), history=history)
        if model is None:
            return await AnalyzerInvestigator(self._scans).investigate(context, question, history)
        context.emit(Started(summary=question))
        checks = triage(context, question, self._scans, answer_required=False)
        instant, failing, known = await asyncio.gather(
            instant_triage(context, question, checks),
            self._failing(context),
            run_knowledge(self._knowledge, context, question),
        )
        for name, reason in failing.items():
            context.emit(Thought(text=f"Not using {name}: its health check failed ({reason})."))
        grounding = scrub_text(instant.grounding(), secret_values(context.config))
        budgets = RunBudgets.from_config(context.config)
        context.scratch.max_calls = budgets.max_tool_calls
        async with attached_mcp(context) as mcp:
            subagents = mcp.subagents(available_specialists(context.config, unhealthy=failing))
            planner = build_planner(
                model=model,
                subagents=subagents,
                grounding=grounding,
                first_finding=instant.first_finding_text(),
                model_settings=budgets.model_settings(),
                extra_instructions=_left_out(failing) + known.instructions + mcp.planner_note(),
                planner_tools=[*known.tools, *mcp.planner_tools(subagents)],
            )
            outcome = await run_investigation(
                planner=planner,
                context=context,
                question=question,
                history=history,
                timeout_s=budgets.timeout_s,
                max_turns=budgets.max_turns,
                announce=False,
            )
        return InvestigationOutcome(
            rca=instant.with_verdict(outcome.rca),
            error=outcome.error,
            history=conversation_only([dict(i) for i in outcome.history]),
        )

    async def _failing(self, context: InvestigationContext) -> dict[str, str]:
        """The team's integrations whose health check fails now (cached a minute), with the reason."""
        lines = await self._health.check(context.org_id, context.team_node_id, context.config)
        offered = {toolset.name for toolset in configured_toolsets(context.config)}
        return {
            line.integration: line.detail
            for line in lines
            if line.status == "failing" and line.integration in offered
        }


def _left_out(failing: Mapping[str, str]) -> str:
    if not failing:
        return ""
    names = ", ".join(sorted(failing))
    return (
        f"These integrations failed their health check and were left out: {names}. Say so in the "
        "caveats if their evidence would have mattered.\n"
    )
