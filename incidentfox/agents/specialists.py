"""Which sub-agents a team's planner gets: one per specialist whose toolsets the team configured.

A specialist (design §7) is a sub-agent built from one or more toolsets. It is offered when at least
one of its toolsets is available for the team: configured (its prerequisites are present, or for
Kubernetes the installation's kubeconfig stands in) and not turned off with ``enabled: false``. The
function tools are built once per toolset: they hold no per-run state (the run's client and secrets
come from the run context at call time).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents import Tool

from incidentfox.agents.planner import SubagentSpec
from incidentfox.agents.toolsets.aws import AWS
from incidentfox.agents.toolsets.base import Toolset, lookup_dotted
from incidentfox.agents.toolsets.coralogix import CORALOGIX
from incidentfox.agents.toolsets.datadog import DATADOG
from incidentfox.agents.toolsets.datadog_logs import DATADOG_LOGS
from incidentfox.agents.toolsets.elasticsearch import ELASTICSEARCH
from incidentfox.agents.toolsets.function_tools import toolset_function_tools
from incidentfox.agents.toolsets.github import GITHUB
from incidentfox.agents.toolsets.grafana import GRAFANA
from incidentfox.agents.toolsets.kubernetes import KUBERNETES
from incidentfox.agents.toolsets.kubernetes_api import kubernetes_configured
from incidentfox.agents.toolsets.logs import LOGS, configured_sources
from incidentfox.agents.toolsets.loki import LOKI
from incidentfox.agents.toolsets.outputs import output_function_tools
from incidentfox.agents.toolsets.pagerduty import PAGERDUTY
from incidentfox.agents.toolsets.prometheus import PROMETHEUS
from incidentfox.agents.toolsets.slack import SLACK
from incidentfox.agents.toolsets.slack_api import slack_configured
from incidentfox.agents.toolsets.warehouse import WAREHOUSE


def prerequisites_met(toolset: Toolset) -> Callable[[Mapping[str, Any]], bool]:
    def configured(config: Mapping[str, Any]) -> bool:
        if lookup_dotted(config, f"integrations.{toolset.name}.enabled") is False:
            return False
        return not toolset.missing_prerequisites(config)

    return configured


@dataclass(frozen=True, slots=True)
class Specialist:
    name: str
    description: str
    toolsets: tuple[Toolset, ...]
    available: Callable[[Toolset, Mapping[str, Any]], bool]

    def toolsets_for(self, config: Mapping[str, Any], unhealthy: Collection[str] = ()) -> list[Toolset]:
        return [
            toolset
            for toolset in self.toolsets
            if toolset.name not in unhealthy and self.available(toolset, config)
        ]


def _available(toolset: Toolset, config: Mapping[str, Any]) -> bool:
    if toolset is KUBERNETES:
        return kubernetes_configured(config)
    if toolset is LOGS:
        return bool(configured_sources(config))
    if toolset is SLACK:
        return slack_configured(config)
    return prerequisites_met(toolset)(config)


SPECIALISTS: tuple[Specialist, ...] = (
    Specialist(
        name="kubernetes",
        description="Investigates the team's Kubernetes cluster: pods, logs, events, rollouts, "
        "services, nodes and volumes. Give it a specific task.",
        toolsets=(KUBERNETES,),
        available=_available,
    ),
    Specialist(
        name="metrics",
        description="Reads the team's metrics from Prometheus (or Thanos, Mimir, VictoriaMetrics) and "
        "Grafana: what is alerting, which scrape targets are down, PromQL over a time window (error "
        "rates, latency, saturation, memory), the team's dashboards and their panels, and deploy "
        "annotations, and Datadog monitors, metrics, APM service summaries, errored traces and events. "
        "Give it the service and the time window.",
        toolsets=(PROMETHEUS, GRAFANA, DATADOG),
        available=_available,
    ),
    Specialist(
        name="logs",
        description="Reads the team's logs from Grafana Loki, Elasticsearch/OpenSearch, Coralogix or "
        "Datadog: log "
        "lines of a service across every log backend at once, error counts and the most frequent error "
        "messages, lines matching a query with their labels or fields, and log counts over time. Give it "
        "the service (or its labels) and the time window.",
        toolsets=(LOGS, LOKI, ELASTICSEARCH, CORALOGIX, DATADOG_LOGS),
        available=_available,
    ),
    Specialist(
        name="cloud",
        description="Reads the team's AWS account: CloudWatch alarms, metrics and logs, CloudTrail (who "
        "changed what), ECS services, load balancer target health, RDS, EC2, EKS and Lambda. Give it the "
        "service or resource and the time window.",
        toolsets=(AWS,),
        available=_available,
    ),
    Specialist(
        name="data",
        description="Queries the team's data warehouse or database read-only (PostgreSQL, MySQL/MariaDB, "
        "Snowflake) to measure business impact: orders or payments per minute, failure rates, backlogs, "
        "and since when. Give it the metric, the time window and the table if you know it.",
        toolsets=(WAREHOUSE,),
        available=_available,
    ),
    Specialist(
        name="incident-history",
        description="Reads PagerDuty and the team's Slack: an incident's alerts and timeline, past incidents "
        "of the same service, who is on call, earlier IncidentFox investigations and related discussion in "
        "the team's channels. Give it the incident id, the service or the words to look for.",
        toolsets=(PAGERDUTY, SLACK),
        available=_available,
    ),
    Specialist(
        name="github",
        description="Reads the team's GitHub repositories: recent commits and merged pull requests, a "
        "pull request's diff, files at a ref, a failed CI run's failing job, step and log lines, and "
        "code search. Give it the repository and the run id, pull request or time window.",
        toolsets=(GITHUB,),
        available=_available,
    ),
)


_OUTPUT_TOOLS: tuple[Tool, ...] = tuple(output_function_tools())
"""``search_output``/``read_output``: every specialist's over-budget results are kept, not cut."""


@functools.cache
def _tools(toolset: Toolset, agent: str) -> tuple[Tool, ...]:
    return tuple(toolset_function_tools(toolset, agent=agent))


def available_specialists(config: Mapping[str, Any], unhealthy: Collection[str] = ()) -> list[SubagentSpec]:
    """The sub-agents this team's planner gets, each with the tools of its available toolsets.

    ``unhealthy`` names toolsets whose health check just failed: their tools would only return the
    same error, so they are left out, and a specialist left with none is not offered."""
    specs = []
    for specialist in SPECIALISTS:
        toolsets = specialist.toolsets_for(config, unhealthy)
        if not toolsets:
            continue
        specs.append(
            SubagentSpec(
                name=specialist.name,
                description=specialist.description,
                instructions="\n\n".join(t.instructions.strip() for t in toolsets),
                tools=[
                    *(tool for toolset in toolsets for tool in _tools(toolset, specialist.name)),
                    *_OUTPUT_TOOLS,
                ],
            )
        )
    return specs


def all_toolsets() -> tuple[Toolset, ...]:
    """Every toolset a specialist can use, once each (App Home health, ``incidentfox tools``).

    Once by name: ``DATADOG_LOGS`` is the logs agent's share of the ``datadog`` integration, and the
    full ``DATADOG`` (listed first, by the metrics agent) already names its tools and health check."""
    by_name: dict[str, Toolset] = {}
    for specialist in SPECIALISTS:
        for toolset in specialist.toolsets:
            by_name.setdefault(toolset.name, toolset)
    return tuple(by_name.values())


def configured_toolsets(config: Mapping[str, Any]) -> Sequence[Toolset]:
    return [t for specialist in SPECIALISTS for t in specialist.toolsets_for(config)]
