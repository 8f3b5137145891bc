"""Start the emulators a scenario's state files describe, and say how its team reaches them.

Each backend is the project's own emulator over real HTTP on 127.0.0.1, loaded from the state file
(``state``): the team's config points the real toolsets at them, exactly as a team's config would
point them at the real services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from incidentfox.emulators.datadog import DatadogEmulator
from incidentfox.emulators.github import GitHubEmulator
from incidentfox.emulators.github_actions import JobSpec, StepSpec
from incidentfox.emulators.github_models import ChangedFile, WorkflowRun
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.loki import LokiEmulator
from incidentfox.emulators.pagerduty import PagerDutyEmulator
from incidentfox.emulators.pagerduty_seed import CHECKOUT_POLICY_ID, seed_checkout
from incidentfox.emulators.pagerduty_world import PagerDutyWorld
from incidentfox.evals.scenario import Scenario
from incidentfox.evals.state import ago, checked_segments, split_line

WEBHOOK_SECRET = "eval-webhook-secret-0123456789"
STEP = timedelta(minutes=1)


@dataclass
class Backends:
    """The running emulators of one scenario and the team config that reaches them."""

    integrations: dict[str, Any] = field(default_factory=dict)
    routing: dict[str, list[str]] = field(default_factory=dict)
    pagerduty: PagerDutyEmulator | None = None
    incident_id: str | None = None
    github: GitHubEmulator | None = None
    workflow_run: WorkflowRun | None = None


def _loki(emulator: LokiEmulator, state: Mapping[str, Any], now: datetime) -> None:
    for stream in state.get("streams") or []:
        entries = []
        for line in stream["lines"]:
            when, text = split_line(line)
            entries.append((now - ago(when), text))
        emulator.push({str(k): str(v) for k, v in stream["labels"].items()}, entries)


def _datadog(emulator: DatadogEmulator, state: Mapping[str, Any], now: datetime) -> None:
    store = emulator.store
    start = now.replace(second=0, microsecond=0)
    for metric in state.get("metrics") or []:
        points: list[tuple[datetime, float]] = []
        for older, younger, value in checked_segments(metric["points"]):
            at = start - older
            while at <= start - younger:
                points.append((at, value))
                at += STEP
        store.add_metric(str(metric["name"]), [str(t) for t in metric.get("tags") or []], points)
    for event in state.get("events") or []:
        store.add_event(
            {
                "title": str(event["title"]),
                "text": str(event.get("text", "")),
                "date_happened": int((now - ago(event["age"])).timestamp()),
                "tags": [str(t) for t in event.get("tags") or []],
                "source_type_name": str(event.get("source", "my apps")),
                "alert_type": str(event.get("alert_type", "info")),
                "priority": "normal",
            }
        )
    for i, monitor in enumerate(state.get("monitors") or []):
        fired = int((now - ago(monitor.get("age", "10m"))).timestamp())
        created = (now - timedelta(days=60)).isoformat()
        store.add_monitor(
            {
                "id": 7_000_000 + i,
                "name": str(monitor["name"]),
                "type": str(monitor.get("type", "query alert")),
                "query": str(monitor["query"]),
                "message": str(monitor.get("message", "")),
                "tags": [str(t) for t in monitor.get("tags") or []],
                "overall_state": str(monitor["state"]),
                "multi": False,
                "created": created,
                "modified": created,
            },
            [{"name": "*", "status": str(monitor["state"]), "last_triggered_ts": fired}],
        )
    for log in state.get("logs") or []:
        store.add_log(
            now - ago(log["age"]),
            str(log["message"]),
            service=str(log["service"]),
            status=str(log.get("status", "info")),
            host=str(log.get("host", "")),
        )


def _github(emulator: GitHubEmulator, state: Mapping[str, Any]) -> WorkflowRun:
    repo = str(state["repo"])
    emulator.add_repo(repo, files={str(k): str(v) for k, v in (state.get("files") or {}).items()})
    numbers: list[int] = []
    if state.get("pull_request"):
        pr = state["pull_request"]
        created = emulator.add_pull_request(
            repo,
            str(pr["title"]),
            head=str(pr["head"]),
            author=str(pr.get("author", "octocat")),
            body=str(pr.get("body", "")),
            files=[
                ChangedFile.between(str(f["path"]), f.get("old"), f.get("new")) for f in pr.get("files") or []
            ],
        )
        numbers.append(created.number)
    run = state["workflow_run"]
    jobs = [
        JobSpec(
            str(job["name"]),
            [
                StepSpec(
                    str(step["name"]),
                    step.get("conclusion", "success"),
                    output=[str(line) for line in step.get("output") or []],
                    command=step.get("command"),
                )
                for step in job["steps"]
            ],
        )
        for job in run["jobs"]
    ]
    return emulator.add_workflow_run(
        repo,
        jobs=jobs,
        name=str(run.get("name", "CI")),
        pull_requests=numbers,
        actor=str(run.get("actor", "octocat")),
    )


def _pagerduty(state: Mapping[str, Any], service_id: str) -> tuple[PagerDutyWorld, str]:
    world = seed_checkout(PagerDutyWorld())
    service = state["service"]
    world.add_service(
        str(service["name"]),
        CHECKOUT_POLICY_ID,
        service_id=service_id,
        description=str(service.get("description", "")),
    )
    incident = state["incident"]
    created = ago(incident.get("age", "5m"))
    found = world.add_incident(
        service_id,
        str(incident["title"]),
        created_at=created,
        alert_details=dict(incident.get("details") or {}),
    )
    for alert in state.get("alerts") or []:
        world.add_alert(found["id"], str(alert["summary"]), details=dict(alert.get("details") or {}))
    for change in state.get("changes") or []:
        world.add_change_event(
            service_id,
            str(change["summary"]),
            at=ago(change["age"]),
            source=str(change.get("source", "github-actions")),
        )
    return world, str(found["id"])


@asynccontextmanager
async def scenario_backends(scenario: Scenario, index: int) -> AsyncIterator[Backends]:
    """The scenario's emulators, started, and the team config that reaches them; stopped on exit.

    ``index`` makes the identifiers a team claims (the PagerDuty service) unique across a suite.
    """
    now = datetime.now(UTC)
    found = Backends()
    state = scenario.state
    async with AsyncExitStack() as stack:
        if "kubernetes" in state:
            k8s = await stack.enter_async_context(KubernetesEmulator(dict(state["kubernetes"])))
            namespace = scenario.namespace or str(state["kubernetes"].get("namespace", "default"))
            found.integrations["kubernetes"] = {
                "api_url": k8s.api_url,
                "token": k8s.token,
                "namespace": namespace,
            }
        if "loki" in state:
            loki = await stack.enter_async_context(LokiEmulator())
            _loki(loki, state["loki"], now)
            found.integrations["loki"] = loki.integration_config()
        if "datadog" in state:
            datadog = await stack.enter_async_context(DatadogEmulator())
            _datadog(datadog, state["datadog"], now)
            found.integrations["datadog"] = datadog.integration_config()
        if "github" in state:
            github = await stack.enter_async_context(GitHubEmulator())
            found.workflow_run = _github(github, state["github"])
            found.github = github
            found.integrations["github"] = {
                "token": github.token,
                "api_url": github.api_url,
                "webhook_secret": WEBHOOK_SECRET,
                "post_comments": False,
            }
            found.routing["github_repos"] = [str(state["github"]["repo"])]
        if "pagerduty" in state:
            service_id = f"PEV{index:04d}"
            world, found.incident_id = _pagerduty(state["pagerduty"], service_id)
            pagerduty = await stack.enter_async_context(PagerDutyEmulator(world))
            found.pagerduty = pagerduty
            found.integrations["pagerduty"] = pagerduty.integration_config(
                webhook_secret=WEBHOOK_SECRET, post_notes=False
            )
            found.routing["pagerduty_service_ids"] = [service_id]
        yield found
