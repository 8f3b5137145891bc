"""Quick first findings from the team's alerting integrations: what is firing right now.

A firing Prometheus or Grafana alert, a CloudWatch alarm in ALARM and a Datadog monitor in Alert are
cheap to read (one request each) and often name the broken service outright, so instant triage reads
them beside the Kubernetes analyzers. Each read goes through the toolset's own tool function, with
the run's cached client (``context.clients``), so the result shapes, error answers and secret
handling are the toolsets' own; a read that fails or takes longer than ``CHECK_TIMEOUT_S`` becomes a
plain-words note, never an exception.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.redaction import scrub_text, secret_values
from incidentfox.agents.toolsets.aws import AWS
from incidentfox.agents.toolsets.base import ToolResult, Toolset
from incidentfox.agents.toolsets.datadog import DATADOG
from incidentfox.agents.toolsets.grafana import GRAFANA
from incidentfox.agents.toolsets.prometheus import PROMETHEUS

CHECK_TIMEOUT_S = 1.0
"""How long instant triage waits for one alerting integration; the model can still ask it later."""
MAX_LEADS_PER_CHECK = 5

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Lead:
    """A candidate first finding: the ``resource``, its ``symptom``, the decisive ``evidence`` line and
    its ``source``; ``agent`` names the integration (or analyzers) that found it; ``names`` are the
    words a question may use to point at it (service, alert and object names)."""

    resource: str
    symptom: str
    evidence: str
    source: str
    agent: str
    url: str | None = None
    names: tuple[str, ...] = ()
    decisive: bool = False


@dataclass(frozen=True, slots=True)
class AlertCheck:
    """One cheap read of an alerting integration: which tool, with which arguments, and how each row
    of its ``ok`` data becomes a lead (``None`` for a row that is not firing)."""

    toolset: Toolset
    tool: str
    arguments: Mapping[str, Any]
    lead: Callable[[Row, str | None], Lead | None]


@dataclass(frozen=True, slots=True)
class AlertReport:
    """What the alerting integrations said: leads, most urgent first, and a note per integration."""

    leads: tuple[Lead, ...] = ()
    notes: tuple[str, ...] = ()


_NAME_LABELS = ("service", "job", "app", "deployment", "namespace", "pod", "container", "instance")


def _label_text(labels: Row) -> str:
    shown = [f'{key}="{labels[key]}"' for key in _NAME_LABELS if labels.get(key)]
    return "{" + ", ".join(shown) + "}" if shown else ""


def _alert_lead(row: Row, url: str | None, *, agent: str, source: str, since_key: str) -> Lead | None:
    """A Prometheus (``/api/v1/alerts``) or Grafana (Alertmanager v2) alert row."""
    if row.get("state", "firing") != "firing" or not row.get("alertname"):
        return None
    name = str(row["alertname"])
    labels = row.get("labels") or {}
    annotations = row.get("annotations") or {}
    symptom = str(annotations.get("summary") or annotations.get("description") or f"{name} is firing")
    evidence = f"{name}{_label_text(labels)} firing since {row.get(since_key) or 'an unknown time'}"
    if row.get("value") is not None:
        evidence += f", value {row['value']}"
    link = row.get("generator_url")
    return Lead(
        resource=f"alert {name}",
        symptom=symptom,
        evidence=evidence,
        source=source,
        agent=agent,
        url=str(link) if link else url,
        names=(name, *(str(labels[k]) for k in _NAME_LABELS if labels.get(k))),
    )


def _prometheus_lead(row: Row, url: str | None) -> Lead | None:
    return _alert_lead(row, url, agent="prometheus", source="Prometheus alerts", since_key="active_at")


def _grafana_lead(row: Row, url: str | None) -> Lead | None:
    return _alert_lead(row, url, agent="grafana", source="Grafana alerting", since_key="starts_at")


def _datadog_lead(row: Row, url: str | None) -> Lead | None:
    if row.get("state") != "Alert":
        return None
    groups = ", ".join(str(g) for g in row.get("groups") or [])
    symptom = f"in Alert since {row.get('since') or 'an unknown time'}" + (f" for {groups}" if groups else "")
    tags = tuple(str(t).split(":", 1)[-1] for t in row.get("tags") or [])
    return Lead(
        resource=f"Datadog monitor '{row.get('name')}'",
        symptom=symptom,
        evidence=str(row.get("query") or row.get("message") or row.get("name")),
        source=f"Datadog monitor {row.get('id')}",
        agent="datadog",
        url=str(row.get("url") or url or "") or None,
        names=(str(row.get("name") or ""), *tags),
    )


def _cloudwatch_lead(row: Row, url: str | None) -> Lead | None:
    if row.get("state") != "ALARM":
        return None
    dimensions = row.get("dimensions") or {}
    metric = f"{row.get('namespace', '')} {row.get('metric', '')}".strip()
    symptom = str(row.get("description") or f"{metric} crossed its threshold {row.get('threshold')}")
    return Lead(
        resource=f"CloudWatch alarm {row.get('name')}",
        symptom=symptom,
        evidence=str(row.get("reason") or f"{row.get('name')} in ALARM since {row.get('since')}"),
        source=f"CloudWatch alarm {row.get('name')} (since {row.get('since')})",
        agent="aws",
        url=url,
        names=(str(row.get("name") or ""), *(str(v) for v in dimensions.values())),
    )


CHECKS: tuple[AlertCheck, ...] = (
    AlertCheck(PROMETHEUS, "alerts", {}, _prometheus_lead),
    AlertCheck(GRAFANA, "grafana_firing_alerts", {}, _grafana_lead),
    AlertCheck(DATADOG, "dd_monitors_alerting", {"states": ["Alert"]}, _datadog_lead),
    AlertCheck(AWS, "cloudwatch_alarms", {"state": "ALARM"}, _cloudwatch_lead),
)
"""The alerting integrations instant triage reads, in the order their leads are preferred."""


async def _client(context: InvestigationContext, toolset: Toolset) -> Any:
    client = context.clients.get(toolset.name)
    if client is None:
        client = await toolset.connect(context.config)
        context.clients[toolset.name] = client
    return client


async def _read(context: InvestigationContext, check: AlertCheck) -> ToolResult:
    tool = next(t for t in check.toolset.tools if t.name == check.tool)
    try:
        client = await _client(context, check.toolset)
    except Exception as exc:
        return ToolResult.failed(f"The {check.toolset.name} integration is not available: {exc}")
    return await tool.run(client, tool.params.model_validate(dict(check.arguments)))


async def _check(context: InvestigationContext, check: AlertCheck) -> tuple[list[Lead], str]:
    name = check.toolset.name
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            result = await _read(context, check)
    except TimeoutError:
        return [], f"{name}: not read within {CHECK_TIMEOUT_S:g} s; ask it directly."
    if result.status == "no_data":
        return [], f"{name}: {result.data}"
    if result.status != "ok" or not isinstance(result.data, Mapping):
        return [], f"{name}: could not be read ({result.error or result.status})."
    rows = [r for key in ("alerts", "monitors", "alarms") for r in result.data.get(key) or []]
    leads = [lead for row in rows if isinstance(row, Mapping) and (lead := check.lead(row, result.url))]
    shown = ", ".join(lead.resource for lead in leads[:MAX_LEADS_PER_CHECK])
    return leads[:MAX_LEADS_PER_CHECK], f"{name}: {len(leads)} firing" + (f" ({shown})" if shown else "")


async def check_alerts(context: InvestigationContext) -> AlertReport:
    """Read every alerting integration the team configured, at once; scrubbed of the team's secrets."""
    checks = [c for c in CHECKS if not c.toolset.missing_prerequisites(context.config)]
    if not checks:
        return AlertReport()
    results = await asyncio.gather(*(_check(context, c) for c in checks))
    secrets = secret_values(context.config)
    leads = tuple(_scrubbed(lead, secrets) for found, _ in results for lead in found)
    return AlertReport(leads=leads, notes=tuple(scrub_text(note, secrets) for _, note in results))


def _scrubbed(lead: Lead, secrets: Sequence[str]) -> Lead:
    return Lead(
        resource=scrub_text(lead.resource, secrets),
        symptom=scrub_text(lead.symptom, secrets),
        evidence=scrub_text(lead.evidence, secrets),
        source=scrub_text(lead.source, secrets),
        agent=lead.agent,
        url=lead.url,
        names=lead.names,
        decisive=lead.decisive,
    )


_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]{2,}[a-z0-9]")
_COMMON = frozenset(
    {
        "why",
        "what",
        "when",
        "where",
        "which",
        "failing",
        "failed",
        "broken",
        "down",
        "error",
        "errors",
        "alert",
        "alerts",
        "high",
        "this",
        "that",
        "there",
        "with",
        "from",
        "prod",
        "production",
        "service",
    }
)


def names_question(question: str, lead: Lead) -> bool:
    """Whether the question names what the lead is about (``checkout`` in ``CheckoutHighErrorRate``
    or in a ``service="checkout"`` label)."""
    haystack = " ".join(lead.names).lower()
    words = {w for w in _WORD.findall(question.lower()) if w not in _COMMON}
    return any(word in haystack for word in words)
