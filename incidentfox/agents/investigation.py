"""The investigators the worker runs: the no-LLM analyzers, and the LLM planner grounded by them.

``TeamInvestigator`` picks per run: when the team (or the installation) has a model configured, the
planner investigates with the analyzers' findings as grounding; otherwise the analyzers alone
produce the RCA (design §7, no-LLM mode).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from agents import Tool

from incidentfox.agents.analyzers.findings import Finding, rank_findings
from incidentfox.agents.analyzers.kubernetes import analyze_kubernetes
from incidentfox.agents.analyzers.rca_builder import build_rca
from incidentfox.agents.analyzers.shared_scan import SharedScans
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Error, Result, Started, SubagentEnd, SubagentStart, Thought
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.agents.model_provider import ModelConfigError, TeamModelProvider
from incidentfox.agents.planner import SubagentSpec, build_planner
from incidentfox.agents.redaction import scrub_rca, scrub_text, secret_values
from incidentfox.agents.runner import run_investigation
from incidentfox.agents.toolsets.base import lookup_dotted
from incidentfox.agents.toolsets.function_tools import toolset_function_tools
from incidentfox.agents.toolsets.kubernetes import KUBERNETES
from incidentfox.agents.toolsets.kubernetes_api import kubernetes_configured, kubernetes_settings

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_MAX_TURNS = 30


@functools.cache
def kubernetes_tools() -> list[Tool]:
    """The kubernetes sub-agent's function tools, built once: they hold no per-run state (the run's
    client and secrets come from the run context at call time)."""
    return list(toolset_function_tools(KUBERNETES, agent="kubernetes"))


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """Why a team cannot be investigated for, in words that name the config keys to set."""
    if config.get("enabled") is False:
        return ["IncidentFox is turned off for this team (`enabled: false` in its config)."]
    if not kubernetes_configured(config):
        return [
            "No integration is configured: set `integrations.kubernetes.kubeconfig` (a path) or "
            "`integrations.kubernetes.api_url` and `integrations.kubernetes.token` in the team's config, "
            "or KUBECONFIG for the installation."
        ]
    return []


MAX_HISTORY_ITEMS = 30


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


def findings_as_grounding(findings: Sequence[Finding]) -> str:
    """The analyzers' findings as plain text for the planner's instructions."""
    lines = []
    for finding in findings:
        lines.append(f"- [{finding.severity}] {finding.resource}: {finding.summary}")
        lines.extend(f'    evidence ({e.source}): "{e.quote}"' for e in finding.evidence[:3])
    return "\n".join(lines)


async def run_analyzers(
    context: InvestigationContext, question: str, scans: SharedScans
) -> list[Finding] | str:
    """Run the kubernetes analyzers, showing them as a sub-agent; a plain-words error if unavailable.

    The scan itself is shared with the team's other runs that start within seconds (``SharedScans``);
    the findings are ranked against this run's question.
    """
    context.emit(
        SubagentStart(agent="kubernetes", task="deterministic checks of pods, nodes, services, volumes")
    )
    secrets = secret_values(context.config)
    namespace = lookup_dotted(context.config, "integrations.kubernetes.namespace")

    async def scan() -> list[Finding] | str:
        try:
            client = await KUBERNETES.connect(context.config)
        except Exception as exc:
            return scrub_text(f"The Kubernetes integration is not available: {exc}", secrets)
        try:
            return await analyze_kubernetes(client, namespace=namespace)
        finally:
            client.close()

    cluster = json.dumps(kubernetes_settings(context.config), sort_keys=True, default=str)
    key = (context.org_id, context.team_node_id, hashlib.sha256(cluster.encode()).hexdigest())
    scanned = await scans.get(key, scan)
    if isinstance(scanned, str):
        context.emit(SubagentEnd(agent="kubernetes", summary=scanned))
        return scanned
    findings = rank_findings(scanned, question)
    for finding in findings[:5]:
        context.emit(
            Thought(text=scrub_text(f"{finding.resource}: {finding.summary}", secrets), agent="kubernetes")
        )
    problems = sum(1 for f in findings if f.is_problem)
    context.emit(SubagentEnd(agent="kubernetes", summary=f"{problems} problem(s) found"))
    return findings


class AnalyzerInvestigator:
    """No-LLM mode: the deterministic analyzers produce the RCA."""

    def __init__(self, scans: SharedScans | None = None) -> None:
        self._scans = scans or SharedScans()

    async def investigate(
        self, context: InvestigationContext, question: str, history: list[dict[str, Any]]
    ) -> InvestigationOutcome:
        context.emit(Started(summary=question))
        findings = await run_analyzers(context, question, self._scans)
        if isinstance(findings, str):
            context.emit(Error(message=findings))
            return InvestigationOutcome(rca=None, error=findings, history=history)
        rca = scrub_rca(build_rca(findings, question=question), secret_values(context.config))
        context.emit(Result(rca=rca))
        turn = [{"role": "user", "content": question}, {"role": "assistant", "content": rca.summary}]
        return InvestigationOutcome(rca=rca, history=[*history, *turn])


class PlannerInvestigator:
    """LLM mode: the planner delegates to sub-agents with the team's toolsets, grounded by the analyzers."""

    def __init__(self, provider: TeamModelProvider, scans: SharedScans | None = None) -> None:
        self._provider = provider
        self._scans = scans or SharedScans()

    async def investigate(
        self, context: InvestigationContext, question: str, history: list[dict[str, Any]]
    ) -> InvestigationOutcome:
        try:
            model = self._provider.model_for(context.config)
        except ModelConfigError as exc:
            context.emit(Started(summary=question))
            context.emit(Error(message=str(exc)))
            return InvestigationOutcome(rca=None, error=str(exc), history=history)
        if model is None:
            return await AnalyzerInvestigator(self._scans).investigate(context, question, history)
        context.emit(Started(summary=question))
        findings = await run_analyzers(context, question, self._scans)
        grounding = findings_as_grounding(findings) if isinstance(findings, list) else findings
        grounding = scrub_text(grounding, secret_values(context.config))
        kubernetes = SubagentSpec(
            name="kubernetes",
            description="Investigates the team's Kubernetes cluster: pods, logs, events, rollouts, "
            "services, nodes and volumes. Give it a specific task.",
            instructions=KUBERNETES.instructions,
            tools=kubernetes_tools(),
        )
        planner = build_planner(model=model, subagents=[kubernetes], grounding=grounding)
        agent_config = context.config.get("agent")
        agent_settings: Mapping[str, Any] = agent_config if isinstance(agent_config, Mapping) else {}
        outcome = await run_investigation(
            planner=planner,
            context=context,
            question=question,
            history=history,
            timeout_s=float(agent_settings.get("timeout_s", DEFAULT_TIMEOUT_S)),
            max_turns=int(agent_settings.get("max_turns", DEFAULT_MAX_TURNS)),
            announce=False,
        )
        return InvestigationOutcome(
            rca=outcome.rca,
            error=outcome.error,
            history=conversation_only([dict(i) for i in outcome.history]),
        )
