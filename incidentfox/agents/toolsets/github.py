"""The github toolset: what changed in the team's repositories and why CI failed, plus the write tools of
``github_writes`` (comment on a pull request or issue, open an issue), which run only once approved.

Every tool takes the run's ``GitHubClient`` (from ``connect``) and a pydantic params model, and returns
a ``ToolResult`` whose ``data`` is compact JSON; ``invocation`` is the equivalent ``gh`` command and
``url`` the page on GitHub. Failures (401, 404, a rate limit, an unreachable API) come back as
``ToolResult.failed`` with one plain sentence; an empty answer is ``ToolResult.no_data``. Large diffs
and files are summarised per file or paged by line range, with a hint to narrow, so that a model sees
whole patches rather than a cut-off one.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar, cast

from github import GithubException
from pydantic import AfterValidator, BaseModel, Field

from incidentfox.agents.toolsets.base import Tool, ToolFunction, ToolResult, Toolset, ToolsetHealth
from incidentfox.agents.toolsets.github_api import (
    ClientOptions,
    GitHubClient,
    GitHubNotConfigured,
    api_failure,
    connect,
    describe_failure,
    github_configured,
)
from incidentfox.agents.toolsets.github_delivery import DELIVERY_INSTRUCTIONS, DELIVERY_TOOLS
from incidentfox.agents.toolsets.github_logs import diagnose_workflow_run
from incidentfox.agents.toolsets.github_views import (
    NO_REPO,
    GitHubParams,
    commit_row,
    file_row,
    iso,
    repo_field,
    repo_name,
)
from incidentfox.agents.toolsets.github_writes import WRITE_INSTRUCTIONS, WRITE_TOOLS

P = TypeVar("P", bound=BaseModel)
PATCH_BUDGET_CHARS = 5_000
"""Patch text one ``pull_request`` answer carries across all files; the rest is summarised per file."""
MAX_PR_FILES = 300
MAX_FILE_LINES = 200
MAX_PULLS_SCANNED = 300


def _checked_time(value: str | None) -> str | None:
    if value is not None:
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError("use an ISO 8601 time, e.g. 2025-03-01T10:00:00Z") from exc
    return value


IsoTime = Annotated[str | None, AfterValidator(_checked_time)]


class RecentChangesParams(GitHubParams):
    repo: str | None = repo_field()
    hours: float = Field(default=24, gt=0, le=720, description="How far back from `until` to look.")
    until: IsoTime = Field(default=None, description="End of the window (ISO 8601, e.g. the incident start).")
    branch: str | None = Field(default=None, description="Branch; null for the default branch.")
    path: str | None = Field(default=None, description="Only commits touching this file or directory.")
    limit: int = Field(default=30, ge=1, le=100, description="At most this many commits and merged PRs.")


class PullRequestParams(GitHubParams):
    repo: str | None = repo_field()
    number: int = Field(ge=1, description="Pull request number.")
    file: str | None = Field(default=None, description="Only this file, with its whole patch.")


class FileContentsParams(GitHubParams):
    repo: str | None = repo_field()
    path: str = Field(description="File or directory path in the repository, e.g. deploy/values.yaml.")
    ref: str | None = Field(
        default=None, description="Commit sha, branch or tag; null for the default branch."
    )
    start_line: int | None = Field(default=None, ge=1, description="First line to return (1-based).")
    end_line: int | None = Field(default=None, ge=1, description="Last line to return.")


class WorkflowFailuresParams(GitHubParams):
    repo: str | None = repo_field()
    run_id: int | None = Field(
        default=None, ge=1, description="Workflow run id; null for the latest failed run."
    )
    branch: str | None = Field(
        default=None, description="With no run_id: the latest failed run on this branch."
    )
    head_sha: str | None = Field(
        default=None, description="With no run_id: the latest failed run of this commit."
    )


class SearchCodeParams(GitHubParams):
    query: str = Field(description="Search terms and qualifiers, e.g. 'PAYMENT_TIMEOUT path:deploy'.")
    repo: str | None = repo_field()
    limit: int = Field(default=20, ge=1, le=50, description="At most this many files.")


def _window(params: RecentChangesParams) -> tuple[datetime, datetime]:
    until = datetime.now(UTC).replace(microsecond=0)
    if params.until:
        parsed = datetime.fromisoformat(params.until.replace("Z", "+00:00"))
        until = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return until - timedelta(hours=params.hours), until


def _pull_row(pr: Any) -> dict[str, Any]:
    return {
        "number": pr.number,
        "title": pr.title,
        "author": pr.user.login if pr.user else None,
        "merged_at": iso(pr.merged_at),
        "base": pr.base.ref,
        "head": pr.head.ref,
        "url": pr.html_url,
    }


async def recent_changes(client: GitHubClient, params: RecentChangesParams) -> ToolResult:
    repo = repo_name(client, params.repo)
    if repo is None:
        return ToolResult.failed(NO_REPO)
    since, until = _window(params)
    branch = params.branch or None
    invocation = (
        f"gh api 'repos/{repo}/commits?since={iso(since)}&until={iso(until)}"
        + (f"&sha={branch}" if branch else "")
        + (f"&path={params.path}" if params.path else "")
        + f"' && gh pr list -R {repo} --state merged"
    )

    def fetch() -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        handle = client.repo(repo)
        query: dict[str, Any] = {"since": since, "until": until}
        if branch:
            query["sha"] = branch
        if params.path:
            query["path"] = params.path
        commits = list(itertools.islice(handle.get_commits(**query), params.limit + 1))
        pulls_query: dict[str, Any] = {"state": "closed", "sort": "updated", "direction": "desc"}
        if branch:
            pulls_query["base"] = branch
        merged: list[dict[str, Any]] = []
        for pr in itertools.islice(handle.get_pulls(**pulls_query), MAX_PULLS_SCANNED):
            if (pr.updated_at is not None and pr.updated_at < since) or len(merged) >= params.limit:
                break
            if pr.merged_at is not None and since <= pr.merged_at <= until:
                merged.append(_pull_row(pr))
        rows = [commit_row(c) for c in commits[: params.limit]]
        return rows, merged, len(commits) > params.limit

    try:
        commits, merged, more = await client.call(fetch)
    except GithubException as exc:
        if exc.status == 409:
            return ToolResult.no_data(
                f"Repository {repo} is empty: it has no commits.", invocation=invocation
            )
        return api_failure(exc, client, f"list recent changes of {repo}", invocation)
    except Exception as exc:
        return api_failure(exc, client, f"list recent changes of {repo}", invocation)
    where = f"{repo} ({branch or 'default branch'}{', ' + params.path if params.path else ''})"
    if not commits and not merged:
        return ToolResult.no_data(
            f"No commits or merged pull requests in {where} between {iso(since)} and {iso(until)}.",
            invocation=invocation,
        )
    data = {
        "repo": repo,
        "branch": branch or "default branch",
        "since": iso(since),
        "until": iso(until),
        "commits": commits,
        "merged_pull_requests": merged,
    }
    if more:
        data["note"] = f"More than {params.limit} commits: pass a shorter window (hours) or a path."
    return ToolResult.ok(data, invocation=invocation)


async def pull_request(client: GitHubClient, params: PullRequestParams) -> ToolResult:
    repo = repo_name(client, params.repo)
    if repo is None:
        return ToolResult.failed(NO_REPO)
    invocation = f"gh pr view {params.number} -R {repo} --json files" + (
        f" && gh pr diff {params.number} -R {repo} -- {params.file}" if params.file else ""
    )

    def fetch() -> tuple[dict[str, Any], list[Any]]:
        pr = client.repo(repo).get_pull(params.number)
        info = {
            "number": pr.number,
            "title": pr.title,
            "state": pr.state,
            "merged": pr.merged,
            "merged_at": iso(pr.merged_at),
            "author": pr.user.login if pr.user else None,
            "base": pr.base.ref,
            "head": pr.head.ref,
            "head_sha": pr.head.sha[:12],
            "additions": pr.additions,
            "deletions": pr.deletions,
            "changed_files": pr.changed_files,
            "url": pr.html_url,
            "body": (pr.body or "")[:1000],
        }
        return info, list(itertools.islice(pr.get_files(), MAX_PR_FILES))

    try:
        info, files = await client.call(fetch)
    except Exception as exc:
        return api_failure(exc, client, f"read pull request #{params.number} of {repo}", invocation)
    if params.file:
        files = [f for f in files if params.file in (f.filename, f.previous_filename)]
        if not files:
            return ToolResult.no_data(
                f"Pull request #{params.number} does not change {params.file}.", invocation=invocation
            )
    budget = [PATCH_BUDGET_CHARS]
    rows = [file_row(f, budget, whole=bool(params.file)) for f in files]
    data: dict[str, Any] = {"pull_request": info, "files": rows}
    omitted = sum(1 for r in rows if r.get("hunks") is not None)
    if omitted:
        data["note"] = f"{omitted} large patch(es) summarised by hunk; pass file=<path> to read one whole."
    return ToolResult.ok(data, invocation=invocation, url=info["url"])


async def file_contents(client: GitHubClient, params: FileContentsParams) -> ToolResult:
    repo = repo_name(client, params.repo)
    if repo is None:
        return ToolResult.failed(NO_REPO)
    path = params.path.strip("/")
    ref = params.ref or None
    invocation = f"gh api 'repos/{repo}/contents/{path}" + (f"?ref={ref}'" if ref else "'")

    def fetch() -> Any:
        handle = client.repo(repo)
        return handle.get_contents(path, ref=ref) if ref else handle.get_contents(path)

    try:
        content = await client.call(fetch)
    except Exception as exc:
        return api_failure(exc, client, f"read {path} in {repo}" + (f" at {ref}" if ref else ""), invocation)
    at = ref or "default branch"
    if isinstance(content, list):
        entries = [{"name": c.name, "type": c.type, "size": c.size} for c in content]
        return ToolResult.ok(
            {"repo": repo, "path": path, "ref": at, "entries": entries}, invocation=invocation
        )
    if content.encoding != "base64":
        return ToolResult.failed(
            f"{path} in {repo} is {content.size} bytes, too large for GitHub's contents API (over 1 MB).",
            invocation=invocation,
        )
    raw = content.decoded_content
    if b"\x00" in raw[:8000]:
        return ToolResult.ok(
            {"repo": repo, "path": path, "ref": at, "binary": True, "size": len(raw)},
            invocation=invocation,
            url=content.html_url,
        )
    lines = raw.decode("utf-8", "replace").splitlines()
    if not lines:
        return ToolResult.no_data(f"{path} in {repo} at {at} is empty.", invocation=invocation)
    first = min(params.start_line or 1, len(lines))
    last = min(params.end_line or first + MAX_FILE_LINES - 1, len(lines), first + 4 * MAX_FILE_LINES - 1)
    data: dict[str, Any] = {
        "repo": repo,
        "path": path,
        "ref": at,
        "total_lines": len(lines),
        "first_line": first,
        "last_line": last,
        "content": "\n".join(lines[first - 1 : last]),
    }
    if first > 1 or last < len(lines):
        data["note"] = f"Lines {first}-{last} of {len(lines)}; pass start_line and end_line for others."
    return ToolResult.ok(data, invocation=invocation, url=content.html_url)


async def workflow_failures(client: GitHubClient, params: WorkflowFailuresParams) -> ToolResult:
    repo = repo_name(client, params.repo)
    if repo is None:
        return ToolResult.failed(NO_REPO)
    run_id = params.run_id
    where = (f" on {params.branch}" if params.branch else "") + (
        f" for {params.head_sha[:12]}" if params.head_sha else ""
    )
    invocation = f"gh run view {run_id or '<latest failed>'} -R {repo} --log-failed"
    if run_id is None:
        filters: dict[str, Any] = {"status": "failure"}
        if params.branch:
            filters["branch"] = params.branch
        if params.head_sha:
            filters["head_sha"] = params.head_sha

        def latest() -> int | None:
            run = next(iter(client.repo(repo).get_workflow_runs(**filters)), None)
            return int(run.id) if run is not None else None

        try:
            run_id = await client.call(latest)
        except Exception as exc:
            return api_failure(exc, client, f"list failed workflow runs of {repo}", invocation)
        if run_id is None:
            return ToolResult.no_data(f"No failed workflow run in {repo}{where}.", invocation=invocation)
        invocation = f"gh run view {run_id} -R {repo} --log-failed"
    try:
        diagnosis = await diagnose_workflow_run(client, repo, run_id)
    except Exception as exc:
        return api_failure(exc, client, f"read workflow run {run_id} of {repo}", invocation)
    if not diagnosis.failed:
        state = diagnosis.conclusion or diagnosis.status
        return ToolResult.no_data(
            f"Workflow run {run_id} ({diagnosis.name}) did not fail: it ended {state}.", invocation=invocation
        )
    data = diagnosis.as_data()
    if not diagnosis.failed_jobs:
        data["note"] = "No job failed: the run may have failed to start (check the workflow file)."
    return ToolResult.ok(data, invocation=invocation, url=diagnosis.url)


def _fragments(item: Any) -> list[str]:
    """The first two ``text_matches`` fragments of a search hit (PyGithub types them as a string)."""
    matches: Any = item.text_matches or []
    return [str(m.get("fragment", "")) for m in matches if isinstance(m, dict)][:2]


async def search_code(client: GitHubClient, params: SearchCodeParams) -> ToolResult:
    repo = repo_name(client, params.repo)
    query = params.query.strip()
    if repo and "repo:" not in query:
        query = f"{query} repo:{repo}"
    invocation = f"gh search code '{query}'"

    def fetch() -> tuple[int, list[dict[str, Any]]]:
        results = client.gh.search_code(query, highlight=True)
        items = list(itertools.islice(results, params.limit))
        rows = [
            {
                "repo": item.repository.full_name,
                "path": item.path,
                "url": item.html_url,
                "fragments": _fragments(item),
            }
            for item in items
        ]
        return results.totalCount, rows

    try:
        total, rows = await client.call(fetch)
    except Exception as exc:
        return api_failure(exc, client, f"search code for {params.query!r}", invocation)
    if not rows:
        return ToolResult.no_data(f"No code matches {query!r}.", invocation=invocation)
    return ToolResult.ok({"query": query, "total_count": total, "files": rows}, invocation=invocation)


HEALTH_OPTIONS = ClientOptions(
    timeout_s=5,
    retries=0,
    max_rate_limit_wait_s=0,
    seconds_between_requests=None,
    seconds_between_writes=None,
)


async def health(config: Mapping[str, Any], options: ClientOptions = HEALTH_OPTIONS) -> ToolsetHealth:
    """One cheap call that proves the token is accepted: ``GET /rate_limit`` (it costs no quota)."""
    if not github_configured(config):
        return ToolsetHealth(configured=False, reason="no integrations.github.token is set")
    try:
        client = await connect(config, options)
    except GitHubNotConfigured as exc:
        return ToolsetHealth.failing(str(exc))
    try:
        core = await client.call(lambda: client.gh.get_rate_limit().resources.core)
    except Exception as exc:
        return ToolsetHealth.failing(describe_failure(exc, client.api_url, "check the token"))
    finally:
        client.close()
    if core.remaining == 0:
        return ToolsetHealth.failing(
            f"GitHub's rate limit for this token is used up until {core.reset.astimezone(UTC):%H:%M} UTC."
        )
    return ToolsetHealth.ok()


def _tool(
    name: str, description: str, params: type[P], run: Callable[[GitHubClient, P], Awaitable[ToolResult]]
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run))


INSTRUCTIONS = f"""You investigate what changed in the team's GitHub repositories and why CI failed.
Start with recent_changes (commits and merged pull requests before the incident: pass until= the
incident's start and a window in hours), then pull_request for a suspicious change (its files and
diff; pass file= to read one large patch whole) and file_contents to read a file at a ref. For a red CI
run use workflow_failures: it names the failed job and step and quotes the decisive log line with the
lines around it. search_code finds where a symbol, config key or error message lives. Quote lines
exactly, with their source: commit sha, PR number, file path and line, or job and step.

{DELIVERY_INSTRUCTIONS}

{WRITE_INSTRUCTIONS}"""

GITHUB = Toolset(
    name="github",
    description="The team's GitHub repositories: recent commits and merged pull requests, pull request "
    "diffs, files at a ref, failed Actions runs with their decisive log lines, code search, recent "
    "workflow runs, deployments, releases, commits and the diff between two refs; comment "
    "on a pull request or issue, or open an issue, once approved in Slack.",
    instructions=INSTRUCTIONS,
    connect=connect,
    health_check=health,
    prerequisites=("integrations.github.token",),
    tools=(
        _tool(
            "recent_changes",
            "Commits and merged pull requests of a repository in a time window (what changed before "
            "an incident), newest first.",
            RecentChangesParams,
            recent_changes,
        ),
        _tool(
            "pull_request",
            "A pull request: title, state, author, branches and its changed files with their patches "
            "(large patches summarised by hunk).",
            PullRequestParams,
            pull_request,
        ),
        _tool(
            "file_contents",
            "A file's text at a commit, branch or tag (by line range), or a directory's entries.",
            FileContentsParams,
            file_contents,
        ),
        _tool(
            "workflow_failures",
            "A failed GitHub Actions run: its failed jobs, the failed step and the decisive log line of "
            "each, with about 20 lines around it. Without run_id, the latest failed run.",
            WorkflowFailuresParams,
            workflow_failures,
        ),
        _tool(
            "search_code",
            "Search code (default branch) for terms with GitHub qualifiers such as path: or extension:.",
            SearchCodeParams,
            search_code,
        ),
        *DELIVERY_TOOLS,
        *WRITE_TOOLS,
    ),
)
