"""The no-LLM analyzer of a failed CI run: read what failed on GitHub, shown as the ``github`` sub-agent.

Which run comes from the run's origin (``InvestigationContext.origin``):

- a failed ``workflow_run``: that run, read by ``diagnose_workflow_run`` (failed jobs, the failed
  step and the decisive log line of each);
- a failed ``check_suite`` of another CI app: its failing check runs and what they report;
- a question asked on a pull request: the latest failed run of the pull request's head commit, when
  there is one (otherwise there is nothing here to analyse and ``None`` is returned).

The client is the run's github toolset client (``context.clients``), so the planner's github tools
reuse it and the worker closes it when the run ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from incidentfox.agents.analyzers.ci_rca import FailedCheck, checks_triage, diagnosis_triage
from incidentfox.agents.analyzers.triage import Triage
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import SubagentEnd, SubagentStart, Thought
from incidentfox.agents.redaction import scrub_text, secret_values
from incidentfox.agents.toolsets.github import GITHUB
from incidentfox.agents.toolsets.github_api import GitHubClient, describe_failure
from incidentfox.agents.toolsets.github_logs import diagnose_workflow_run

AGENT = "github"
FAILING = frozenset({"failure", "timed_out", "startup_failure"})
MAX_CHECKS = 100


@dataclass(frozen=True, slots=True)
class CiTarget:
    """What to read: a workflow run, a check suite, or the latest failed run of a pull request."""

    repo: str
    run_id: int | None = None
    check_suite_id: int | None = None
    head_sha: str | None = None
    pull_number: int | None = None

    @classmethod
    def from_origin(cls, origin: Mapping[str, Any]) -> CiTarget | None:
        repo = origin.get("repo")
        if not isinstance(repo, str) or not repo:
            return None
        head_sha = origin.get("head_sha") if isinstance(origin.get("head_sha"), str) else None
        if origin.get("kind") == "ci_failure":
            run_id, suite = origin.get("run_id"), origin.get("check_suite_id")
            if isinstance(run_id, int):
                return cls(repo, run_id=run_id, head_sha=head_sha)
            if isinstance(suite, int) and head_sha:
                return cls(repo, check_suite_id=suite, head_sha=head_sha)
        number = origin.get("number")
        if origin.get("kind") == "mention" and origin.get("is_pull") and isinstance(number, int):
            return cls(repo, pull_number=number)
        return None

    @property
    def explicit(self) -> bool:
        """The run was started by this failure (not by a question that may be about anything)."""
        return self.pull_number is None


async def _client(context: InvestigationContext) -> GitHubClient:
    client = context.clients.get(GITHUB.name)
    if client is None:
        client = await GITHUB.connect(context.config)
        context.clients[GITHUB.name] = client
    return client


def _latest_failed_run(client: GitHubClient, repo: str, number: int) -> int | None:
    handle = client.repo(repo)
    sha = handle.get_pull(number).head.sha
    run = next(iter(handle.get_workflow_runs(head_sha=sha, status="failure")), None)
    return int(run.id) if run is not None else None


def _failed_checks(client: GitHubClient, repo: str, sha: str, suite_id: int) -> list[FailedCheck]:
    runs = itertools.islice(client.repo(repo).get_commit(sha).get_check_runs(), MAX_CHECKS)
    return [
        FailedCheck(
            name=run.name,
            app=run.app.name if run.app else "a CI app",
            conclusion=run.conclusion,
            title=run.output.title or "",
            summary=run.output.summary or "",
            url=run.details_url or run.html_url,
        )
        for run in runs
        if run.check_suite.id == suite_id and run.conclusion in FAILING
    ]


async def _read(context: InvestigationContext, target: CiTarget) -> Triage | str | None:
    doing = f"read the failed CI run of {target.repo}"
    try:
        client = await _client(context)
    except Exception as exc:
        return f"The GitHub integration is not available: {exc}"
    try:
        run_id = target.run_id
        if target.pull_number is not None:
            run_id = await client.call(_latest_failed_run, client, target.repo, target.pull_number)
            if run_id is None:
                return None
        if run_id is not None:
            return diagnosis_triage(await diagnose_workflow_run(client, target.repo, run_id))
        assert target.check_suite_id is not None and target.head_sha is not None
        checks = await client.call(
            _failed_checks, client, target.repo, target.head_sha, target.check_suite_id
        )
        return checks_triage(target.repo, target.head_sha, checks)
    except Exception as exc:
        return describe_failure(exc, client.api_url, doing)


async def ci_triage(context: InvestigationContext, target: CiTarget) -> Triage | str | None:
    """The failure's RCA and grounding; a plain-words error when GitHub could not be read; ``None``
    when a question's pull request has no failed run."""
    context.emit(SubagentStart(agent=AGENT, task="read the failed CI run: its failed jobs, steps and logs"))
    found = await _read(context, target)
    secrets = secret_values(context.config)
    if found is None:
        context.emit(SubagentEnd(agent=AGENT, summary="no failed CI run on this pull request"))
    elif isinstance(found, str):
        found = scrub_text(found, secrets)
        context.emit(SubagentEnd(agent=AGENT, summary=found))
    else:
        context.emit(Thought(text=scrub_text(found.rca.summary, secrets), agent=AGENT))
        context.emit(SubagentEnd(agent=AGENT, summary=f"confidence {found.rca.confidence.level}"))
    return found
