"""Delivery tools of the github toolset: what CI ran, what was deployed and released, and what differs
between two refs.

* ``workflow_runs``: recent Actions runs of a repository, branch or workflow with their conclusion,
  head sha and who triggered them, and counts by conclusion.
* ``deployments``: GitHub deployments newest first with the latest status of each, and per environment
  the newest deployment and its state.
* ``compare_refs``: the commits and changed files between two refs (the last good deploy and now).
* ``commit_details``: one commit's message, author, parents, stats and files with their patches.
* ``releases``: recent releases with their tags, dates and notes.

Each returns a ``ToolResult`` like the tools of ``github``; failures are one plain sentence.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel, Field

from incidentfox.agents.toolsets.base import Tool, ToolFunction, ToolResult
from incidentfox.agents.toolsets.github_api import GitHubClient, api_failure
from incidentfox.agents.toolsets.github_views import (
    NO_REPO,
    GitHubParams,
    commit_row,
    file_row,
    first_line,
    iso,
    login,
    repo_field,
    repo_name,
)

P = TypeVar("P", bound=BaseModel)
PATCH_BUDGET_CHARS = 5_000
"""Patch text one ``compare_refs`` or ``commit_details`` answer carries; the rest is summarised."""
MAX_COMPARE_COMMITS = 50
MAX_COMPARE_SCAN = 1_000
"""Commits read from a comparison (four of GitHub's 250-commit pages); the newest are shown."""
MAX_FILES = 300
BODY_CHARS = 600
Conclusion = Literal["success", "failure", "cancelled", "skipped", "timed_out", "action_required"]


class WorkflowRunsParams(GitHubParams):
    repo: str | None = repo_field()
    workflow: str | None = Field(
        default=None, description="Workflow file name (deploy.yml) or id; null for every workflow."
    )
    branch: str | None = Field(default=None, description="Only runs on this branch.")
    conclusion: Conclusion | None = Field(default=None, description="Only runs that ended this way.")
    event: str | None = Field(default=None, description="Only runs triggered by this event (push...).")
    limit: int = Field(default=15, ge=1, le=50, description="At most this many runs, newest first.")


class DeploymentsParams(GitHubParams):
    repo: str | None = repo_field()
    environment: str | None = Field(default=None, description="Only this environment (production...).")
    limit: int = Field(default=10, ge=1, le=30, description="At most this many deployments, newest first.")


class CompareRefsParams(GitHubParams):
    repo: str | None = repo_field()
    base: str = Field(description="The older ref: a sha, branch or tag, e.g. the last good deploy's sha.")
    head: str | None = Field(default=None, description="The newer ref; null for the default branch.")
    file: str | None = Field(default=None, description="Only this file, with its whole patch.")


class CommitDetailsParams(GitHubParams):
    repo: str | None = repo_field()
    sha: str = Field(description="Commit sha (7+ characters), branch or tag.")
    file: str | None = Field(default=None, description="Only this file, with its whole patch.")


class ReleasesParams(GitHubParams):
    repo: str | None = repo_field()
    limit: int = Field(default=10, ge=1, le=30, description="At most this many releases, newest first.")


def _run_row(run: Any) -> dict[str, Any]:
    triggered_by = run.triggering_actor or run.actor
    return {
        "id": run.id,
        "workflow": run.name,
        "run_number": run.run_number,
        "title": first_line(run.display_title),
        "event": run.event,
        "status": run.status,
        "conclusion": run.conclusion,
        "branch": run.head_branch,
        "head_sha": (run.head_sha or "")[:12],
        "triggered_by": login(triggered_by),
        "attempt": run.run_attempt,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "url": run.html_url,
    }


async def workflow_runs(client: GitHubClient, params: WorkflowRunsParams) -> ToolResult:
    repo = repo_name(client, params.repo)
    if repo is None:
        return ToolResult.failed(NO_REPO)
    filters: dict[str, Any] = {}
    if params.branch:
        filters["branch"] = params.branch
    if params.conclusion:
        filters["status"] = params.conclusion
    if params.event:
        filters["event"] = params.event
    flags = "".join(f" --{k} {v}" for k, v in filters.items())
    workflow = f" --workflow {params.workflow}" if params.workflow else ""
    invocation = f"gh run list -R {repo}{workflow}{flags} -L {params.limit}"

    def fetch() -> list[dict[str, Any]]:
        handle = client.repo(repo)
        source = handle.get_workflow(params.workflow) if params.workflow else None
        runs = source.get_runs(**filters) if source is not None else handle.get_workflow_runs(**filters)
        return [_run_row(r) for r in itertools.islice(runs, params.limit)]

    doing = f"list workflow runs of {repo}" + (f" ({params.workflow})" if params.workflow else "")
    try:
        rows = await client.call(fetch)
    except Exception as exc:
        return api_failure(exc, client, doing, invocation)
    if not rows:
        asked = ", ".join(f"{k}={v}" for k, v in filters.items())
        return ToolResult.no_data(
            f"No workflow runs in {repo}{workflow}" + (f" with {asked}" if asked else ""),
            invocation=invocation,
        )
    data = {
        "repo": repo,
        "by_conclusion": dict(Counter(str(r["conclusion"] or r["status"]) for r in rows)),
        "runs": rows,
    }
    return ToolResult.ok(data, invocation=invocation)


def _deployment_row(deployment: Any) -> dict[str, Any]:
    latest = next(iter(deployment.get_statuses()), None)
    return {
        "id": deployment.id,
        "environment": deployment.environment,
        "ref": deployment.ref,
        "sha": (deployment.sha or "")[:12],
        "creator": login(deployment.creator),
        "created_at": iso(deployment.created_at),
        "description": first_line(deployment.description) or None,
        "state": latest.state if latest is not None else None,
        "state_at": iso(latest.created_at) if latest is not None else None,
        "log_url": (latest.log_url or latest.target_url or None) if latest is not None else None,
    }


async def deployments(client: GitHubClient, params: DeploymentsParams) -> ToolResult:
    repo = repo_name(client, params.repo)
    if repo is None:
        return ToolResult.failed(NO_REPO)
    query = f"?environment={params.environment}" if params.environment else ""
    invocation = f"gh api 'repos/{repo}/deployments{query}' (+ each one's statuses)"

    def fetch() -> list[dict[str, Any]]:
        handle = client.repo(repo)
        found = (
            handle.get_deployments(environment=params.environment)
            if params.environment
            else handle.get_deployments()
        )
        return [_deployment_row(d) for d in itertools.islice(found, params.limit)]

    try:
        rows = await client.call(fetch)
    except Exception as exc:
        return api_failure(exc, client, f"list deployments of {repo}", invocation)
    if not rows:
        where = f" to {params.environment}" if params.environment else ""
        return ToolResult.no_data(
            f"No GitHub deployments{where} in {repo}: it may deploy without GitHub's deployments API.",
            invocation=invocation,
        )
    environments: dict[str, dict[str, Any]] = {}
    for row in rows:
        environments.setdefault(
            str(row["environment"]), {"sha": row["sha"], "state": row["state"], "at": row["state_at"]}
        )
    return ToolResult.ok(
        {"repo": repo, "latest_per_environment": environments, "deployments": rows}, invocation=invocation
    )


def _files(files: list[Any], only: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of ``files`` (or only the one named ``only``, whole) and a note when patches were cut."""
    if only:
        files = [f for f in files if only in (f.filename, f.previous_filename)]
    budget = [PATCH_BUDGET_CHARS]
    rows = [file_row(f, budget, whole=bool(only)) for f in files]
    omitted = sum(1 for r in rows if r.get("hunks") is not None)
    note = (
        f"{omitted} large patch(es) summarised by hunk; pass file=<path> to read one whole."
        if omitted
        else None
    )
    return rows, note


async def compare_refs(client: GitHubClient, params: CompareRefsParams) -> ToolResult:
    repo = repo_name(client, params.repo)
    if repo is None:
        return ToolResult.failed(NO_REPO)
    invocation = f"gh api 'repos/{repo}/compare/{params.base}...{params.head or '<default branch>'}'"

    def fetch() -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
        handle = client.repo(repo)
        head = params.head or handle.default_branch
        comparison = handle.compare(params.base, head)
        info = {
            "base": params.base,
            "head": head,
            "status": comparison.status,
            "ahead_by": comparison.ahead_by,
            "behind_by": comparison.behind_by,
            "total_commits": comparison.total_commits,
            "url": comparison.html_url,
        }
        commits = list(itertools.islice(comparison.commits, MAX_COMPARE_SCAN))[-MAX_COMPARE_COMMITS:]
        return info, [commit_row(c) for c in reversed(commits)], list(comparison.files[:MAX_FILES])

    try:
        info, commits, files = await client.call(fetch)
    except Exception as exc:
        return api_failure(
            exc,
            client,
            f"compare {params.base} with {params.head or 'the default branch'} in {repo}",
            invocation,
        )
    invocation = f"gh api 'repos/{repo}/compare/{params.base}...{info['head']}'"
    if info["status"] == "identical":
        return ToolResult.no_data(
            f"{params.base} and {info['head']} are identical in {repo}.", invocation=invocation
        )
    rows, note = _files(files, params.file)
    if params.file and not rows:
        return ToolResult.no_data(
            f"{params.file} did not change between {params.base} and {info['head']}.", invocation=invocation
        )
    data: dict[str, Any] = {**info, "commits": commits, "files": rows}
    if info["total_commits"] > len(commits):
        data["commits_not_shown"] = info["total_commits"] - len(commits)
    if note:
        data["note"] = note
    return ToolResult.ok(data, invocation=invocation, url=info["url"])


async def commit_details(client: GitHubClient, params: CommitDetailsParams) -> ToolResult:
    repo = repo_name(client, params.repo)
    if repo is None:
        return ToolResult.failed(NO_REPO)
    invocation = f"gh api 'repos/{repo}/commits/{params.sha}'"

    def fetch() -> tuple[dict[str, Any], list[Any]]:
        commit = client.repo(repo).get_commit(params.sha)
        git = commit.commit
        info = {
            "sha": commit.sha,
            "message": (git.message or "")[:2000],
            "author": login(commit.author) or git.author.name,
            "authored_at": iso(git.author.date),
            "committer": login(commit.committer) or git.committer.name,
            "committed_at": iso(git.committer.date),
            "parents": [p.sha[:12] for p in commit.parents],
            "stats": {
                "additions": commit.stats.additions,
                "deletions": commit.stats.deletions,
                "total": commit.stats.total,
            },
            "url": commit.html_url,
        }
        return info, list(itertools.islice(commit.files, MAX_FILES))

    try:
        info, files = await client.call(fetch)
    except Exception as exc:
        return api_failure(exc, client, f"read commit {params.sha} of {repo}", invocation)
    rows, note = _files(files, params.file)
    if params.file and not rows:
        return ToolResult.no_data(
            f"Commit {params.sha} does not change {params.file}.", invocation=invocation
        )
    data: dict[str, Any] = {**info, "files": rows}
    if len(info["parents"]) > 1:
        data["merge"] = "A merge commit: files are its changes against the first parent."
    if note:
        data["note"] = note
    return ToolResult.ok(data, invocation=invocation, url=info["url"])


async def releases(client: GitHubClient, params: ReleasesParams) -> ToolResult:
    repo = repo_name(client, params.repo)
    if repo is None:
        return ToolResult.failed(NO_REPO)
    invocation = f"gh release list -R {repo} -L {params.limit}"

    def fetch() -> list[dict[str, Any]]:
        return [
            {
                "tag": r.tag_name,
                "name": r.name,
                "published_at": iso(r.published_at),
                "created_at": iso(r.created_at),
                "author": login(r.author),
                "target": r.target_commitish,
                "draft": r.draft,
                "prerelease": r.prerelease,
                "notes": " ".join((r.body or "").split())[:BODY_CHARS] or None,
                "url": r.html_url,
            }
            for r in itertools.islice(client.repo(repo).get_releases(), params.limit)
        ]

    try:
        rows = await client.call(fetch)
    except Exception as exc:
        return api_failure(exc, client, f"list releases of {repo}", invocation)
    if not rows:
        return ToolResult.no_data(
            f"{repo} has no GitHub releases; recent_changes or deployments may show what shipped.",
            invocation=invocation,
        )
    return ToolResult.ok({"repo": repo, "releases": rows}, invocation=invocation)


def _tool(
    name: str, description: str, params: type[P], run: Callable[[GitHubClient, P], Awaitable[ToolResult]]
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run))


DELIVERY_INSTRUCTIONS = """To learn what shipped: deployments shows GitHub deployments per environment with
their latest state (the sha running in production, and whether the last deploy failed); releases
lists recent releases. workflow_runs lists recent Actions runs (filter by workflow file such as
deploy.yml, branch or conclusion) to see when a deploy pipeline last ran, who triggered it and on
which sha. compare_refs shows the commits and file changes between two refs: pass base= the sha of
the last good deploy and head= the current one to see exactly what a bad deploy changed.
commit_details reads one commit's message, stats and patches."""

DELIVERY_TOOLS = (
    _tool(
        "workflow_runs",
        "Recent GitHub Actions runs of a repository (optionally one workflow, branch, event or "
        "conclusion), newest first: conclusion, head sha, branch, who triggered it, with counts.",
        WorkflowRunsParams,
        workflow_runs,
    ),
    _tool(
        "deployments",
        "GitHub deployments newest first with their latest status (success, failure, in_progress...), "
        "and the newest deployment per environment.",
        DeploymentsParams,
        deployments,
    ),
    _tool(
        "compare_refs",
        "Commits and changed files (with patches, large ones summarised) between two refs, e.g. the "
        "last good deploy's sha and the current one.",
        CompareRefsParams,
        compare_refs,
    ),
    _tool(
        "commit_details",
        "One commit: full message, author, parents, line stats and its files with patches.",
        CommitDetailsParams,
        commit_details,
    ),
    _tool(
        "releases",
        "Recent releases newest first: tag, name, publish date, author, target and notes.",
        ReleasesParams,
        releases,
    ),
)
