"""The github toolset through the real PyGithub against the GitHub emulator: what changed, pull request
diffs, files, failed CI runs with their decisive log line, code search, the write tools behind approval,
and every failure in one plain sentence."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from agents.tool_context import ToolContext

from incidentfox.agents.approvals.gate import Action
from incidentfox.agents.approvals.models import ActionRequest
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent
from incidentfox.agents.toolsets import github as gt
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.function_tools import toolset_function_tools
from incidentfox.agents.toolsets.github_api import ClientOptions, GitHubClient, GitHubNotConfigured, connect
from incidentfox.agents.toolsets.github_writes import upsert_marked_comment
from incidentfox.egress import EgressPolicy, install_policy
from incidentfox.emulators.github import GitHubEmulator
from incidentfox.emulators.github_actions import JobSpec, StepSpec
from incidentfox.emulators.github_models import ChangedFile, PullRequest, Repo
from tests.github_actions_log import RUN_START, actions_log
from tests.toolset_calls import run_tool

FAST = ClientOptions(
    timeout_s=5,
    retries=2,
    backoff_factor=0,
    max_rate_limit_wait_s=2,
    secondary_rate_wait_s=0,
    seconds_between_requests=None,
    seconds_between_writes=None,
)
NOW = datetime.now(UTC).replace(microsecond=0)
OLD = "payment:\n  timeout_s: 5\n  retries: 3\n"
NEW = "payment:\n  timeout_s: 1\n  retries: 3\n"
REASON = "the on-call asked for the CI analysis on the PR"


def _job_with_raw_log() -> JobSpec:
    steps = [
        StepSpec("Checkout"),
        StepSpec("Run tests", "failure", seconds=10),
    ]
    return JobSpec("test (3.11)", steps, log=actions_log())


def _shop(gh: GitHubEmulator) -> Repo:
    repo = gh.repo("acme/shop")
    assert repo is not None
    return repo


@pytest.fixture
async def gh() -> AsyncIterator[GitHubEmulator]:
    async with GitHubEmulator() as emulator:
        emulator.add_repo("acme/shop", files={"deploy/values.yaml": OLD, "shop/payments.py": "TIMEOUT = 5\n"})
        emulator.add_commit("acme/shop", "Add checkout service", author="dana", date=NOW - timedelta(days=2))
        yield emulator


def _config(gh: GitHubEmulator, **github: Any) -> dict[str, Any]:
    return {
        "integrations": {"github": {"token": gh.token, "api_url": gh.api_url, **github}},
        "routing": {"github_repos": ["acme/shop"]},
    }


@pytest.fixture
async def client(gh: GitHubEmulator) -> AsyncIterator[GitHubClient]:
    connected = await connect(_config(gh), FAST)
    yield connected
    connected.close()


async def _run(client: GitHubClient, tool_name: str, /, **args: Any) -> ToolResult:
    return await run_tool(gt.GITHUB, client, tool_name, **args)


def _timeout_pr(gh: GitHubEmulator, *, merged_hours_ago: float = 1) -> PullRequest:
    return gh.add_pull_request(
        "acme/shop",
        "Lower the payment timeout",
        head="lower-timeout",
        author="sam",
        files=[ChangedFile.between("deploy/values.yaml", OLD, NEW)],
        created_at=NOW - timedelta(hours=merged_hours_ago + 3),
        merged_at=NOW - timedelta(hours=merged_hours_ago),
    )


def test_the_toolset_declares_its_tools_prerequisites_and_writes() -> None:
    reads = ["recent_changes", "pull_request", "file_contents", "workflow_failures", "search_code"]
    reads += ["workflow_runs", "deployments", "compare_refs", "commit_details", "releases"]
    assert [t.name for t in gt.GITHUB.tools] == [*reads, "comment", "open_issue"]
    assert [t.name for t in gt.GITHUB.tools if t.writes] == ["comment", "open_issue"]
    assert gt.GITHUB.prerequisites == ("integrations.github.token",)
    assert gt.GITHUB.missing_prerequisites({"integrations": {"github": {}}}) == ["integrations.github.token"]


async def test_connect_needs_a_token_and_passes_the_egress_policy(gh: GitHubEmulator) -> None:
    with pytest.raises(GitHubNotConfigured, match=r"integrations\.github\.token"):
        await connect({"integrations": {"github": {"api_url": gh.api_url}}})
    install_policy(EgressPolicy(allow_private=False))
    with pytest.raises(GitHubNotConfigured, match="private or loopback"):
        await connect(_config(gh), FAST)
    assert gh.calls == []


async def test_every_connection_of_the_client_checks_the_egress_policy(client: GitHubClient) -> None:
    assert (await _run(client, "file_contents", path="shop/payments.py")).status == "ok"
    requester_connection = client.gh.requester._Requester__connection  # type: ignore[attr-defined]
    pools = requester_connection.adapter.poolmanager.pool_classes_by_scheme
    assert pools["http"].__name__ == "CheckedHTTPConnectionPool"
    downloads: Any = client.downloads.get_adapter("https://results.example.com/log")
    assert downloads.poolmanager.pool_classes_by_scheme["https"].__name__ == "CheckedHTTPSConnectionPool"


async def test_recent_changes_lists_commits_and_merged_prs_in_the_window(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    pr = _timeout_pr(gh)
    gh.add_pull_request("acme/shop", "Still open", head="wip", created_at=NOW - timedelta(hours=1))
    gh.add_pull_request(
        "acme/shop",
        "Old change",
        head="old",
        created_at=NOW - timedelta(days=3, hours=2),
        merged_at=NOW - timedelta(days=3),
    )
    result = await _run(client, "recent_changes", hours=6)
    assert result.status == "ok", result.error
    assert [c["message"] for c in result.data["commits"]] == [
        f"Merge pull request #{pr.number} from acme/lower-timeout",
        "Lower the payment timeout",
    ]
    assert result.data["commits"][0]["sha"] == (pr.merge_commit_sha or "")[:12]
    assert [(p["number"], p["title"], p["author"]) for p in result.data["merged_pull_requests"]] == [
        (pr.number, "Lower the payment timeout", "sam")
    ]
    assert result.invocation.startswith("gh api 'repos/acme/shop/commits?since=")
    until = (NOW - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier = await _run(client, "recent_changes", hours=6, until=until)
    assert earlier.status == "no_data"
    assert earlier.data.startswith("No commits or merged pull requests in acme/shop (default branch) between")


async def test_recent_changes_of_an_empty_repository_is_no_data(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    gh.add_repo("acme/new")
    result = await _run(client, "recent_changes", repo="acme/new")
    assert (result.status, result.data) == ("no_data", "Repository acme/new is empty: it has no commits.")


async def test_pull_request_shows_small_patches_and_summarises_large_ones(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    big_before = "".join(f"line {n}\n" for n in range(400))
    big_after = "".join(f"line {n} changed\n" if n % 3 == 0 else f"line {n}\n" for n in range(400))
    pr = gh.add_pull_request(
        "acme/shop",
        "Tune payments",
        head="tune",
        files=[
            ChangedFile.between("deploy/values.yaml", OLD, NEW),
            ChangedFile.between("shop/generated.py", big_before, big_after),
        ],
    )
    result = await _run(client, "pull_request", number=pr.number)
    assert result.status == "ok", result.error
    small, large = result.data["files"]
    assert small["patch"] == "@@ -1,3 +1,3 @@\n payment:\n-  timeout_s: 5\n+  timeout_s: 1\n   retries: 3"
    assert large["patch"] is None and large["additions"] == 134 and large["deletions"] == 134
    assert large["hunks"][0].startswith("@@ -1,")
    assert "ask with file=shop/generated.py" in large["note"]
    assert result.url == f"https://github.com/acme/shop/pull/{pr.number}"
    whole = await _run(client, "pull_request", number=pr.number, file="shop/generated.py")
    assert [f["file"] for f in whole.data["files"]] == ["shop/generated.py"]
    assert whole.data["files"][0]["patch"].count("\n+line") == 134


async def test_file_contents_at_a_ref_and_by_line_range(gh: GitHubEmulator, client: GitHubClient) -> None:
    pr = _timeout_pr(gh)
    now = await _run(client, "file_contents", path="deploy/values.yaml")
    before = await _run(
        client,
        "file_contents",
        path="deploy/values.yaml",
        ref=_shop(gh).commits[pr.merge_commit_sha or ""].parents[0],
    )
    ranged = await _run(client, "file_contents", path="deploy/values.yaml", start_line=2, end_line=2)
    listing = await _run(client, "file_contents", path="deploy")
    assert now.data["content"] == NEW.rstrip("\n") and now.data["total_lines"] == 3
    assert before.data["content"] == OLD.rstrip("\n")
    assert (ranged.data["content"], ranged.data["first_line"]) == ("  timeout_s: 1", 2)
    assert "pass start_line and end_line" in ranged.data["note"]
    assert listing.data["entries"] == [{"name": "values.yaml", "type": "file", "size": len(NEW)}]
    missing = await _run(client, "file_contents", path="nope.txt")
    assert missing.status == "error"
    assert missing.error == (
        "Could not read nope.txt in acme/shop: GitHub answered 404 Not Found. Check the name or number, and "
        "that the token can see the repository (GitHub answers 404 for private repositories it cannot)."
    )


async def test_workflow_failures_quotes_the_first_error_with_its_step(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    pr = _timeout_pr(gh)
    run = gh.add_workflow_run(
        "acme/shop",
        pull_requests=[pr.number],
        started_at=RUN_START,
        jobs=[JobSpec("lint", [StepSpec("Ruff")]), _job_with_raw_log()],
    )
    result = await _run(client, "workflow_failures")
    assert result.status == "ok", result.error
    assert result.invocation == f"gh run view {run.id} -R acme/shop --log-failed"
    [job] = result.data["failed_jobs"]
    assert (job["job"], job["step"], job["step_number"]) == ("test (3.11)", "Run tests", 3)
    assert job["error_line"] == "Traceback (most recent call last):"
    assert job["decisive_lines"] == [
        "Traceback (most recent call last):",
        "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='psp.example.com'): Read timed out.",
    ]
    excerpt = job["excerpt"].splitlines()
    assert 15 <= len(excerpt) <= 21
    assert "FAILED tests/test_checkout.py::test_charge_times_out - requests.exceptions.ReadTimeout" in excerpt
    assert "1 failed, 41 passed in 2.51s" in excerpt, "timestamps and colour codes are stripped"
    assert result.data["run"]["pull_requests"] == [pr.number]
    assert result.data["summary"] == (
        f"CI (run {run.id}) on lower-timeout failed in job 'test (3.11)', step 'Run tests': "
        "Traceback (most recent call last):"
    )
    assert [c.name for c in gh.calls].count("actions.download_job_logs_for_workflow_run") == 1


async def test_workflow_failures_of_a_green_run_or_none_is_no_data(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    green = gh.add_workflow_run(
        "acme/shop", head_branch="main", event="push", jobs=[JobSpec("lint", [StepSpec("Ruff")])]
    )
    ok = await _run(client, "workflow_failures", run_id=green.id)
    none = await _run(client, "workflow_failures", branch="main")
    assert (ok.status, ok.data) == (
        "no_data",
        f"Workflow run {green.id} (CI) did not fail: it ended success.",
    )
    assert (none.status, none.data) == ("no_data", "No failed workflow run in acme/shop on main.")


async def test_an_unreadable_job_log_still_names_the_failed_step(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    run = gh.add_workflow_run(
        "acme/shop", jobs=[JobSpec("test", [StepSpec("Run tests", "failure", ["boom"])])]
    )
    gh.fail_next("blobs.get", 404, times=5)
    result = await _run(client, "workflow_failures", run_id=run.id)
    [job] = result.data["failed_jobs"]
    assert (job["step"], job.get("error_line")) == ("Run tests", None)
    assert job["note"].startswith("Could not read the log of job 'test': GitHub answered 404")


async def test_search_code_scopes_to_the_teams_repository(gh: GitHubEmulator, client: GitHubClient) -> None:
    gh.add_repo("acme/other", files={"x.py": "TIMEOUT = 9\n"})
    found = await _run(client, "search_code", query="TIMEOUT language:python")
    nothing = await _run(client, "search_code", query="no_such_symbol")
    assert found.data["files"] == [
        {
            "repo": "acme/shop",
            "path": "shop/payments.py",
            "url": found.data["files"][0]["url"],
            "fragments": ["TIMEOUT = 5\n"],
        }
    ]
    assert found.data["query"] == "TIMEOUT language:python repo:acme/shop"
    assert (nothing.status, nothing.data) == ("no_data", "No code matches 'no_such_symbol repo:acme/shop'.")


async def test_a_wrong_token_is_one_sentence_without_the_token(gh: GitHubEmulator) -> None:
    wrong = await connect(_config(gh, token="ghp_wrongtoken000000000000000000000000"), FAST)
    result = await _run(wrong, "recent_changes")
    wrong.close()
    assert result.status == "error"
    assert result.error == (
        f"GitHub at {gh.api_url} rejected the token (401 Bad credentials). "
        "Check integrations.github.token in the team's GitHub integration."
    )
    assert "ghp_wrong" not in repr(result)
    assert len(gh.calls) == 1, "a 401 is not retried"


async def test_a_forbidden_read_names_the_missing_access(gh: GitHubEmulator, client: GitHubClient) -> None:
    gh.fail_next("pulls.get", 403, message="Resource not accessible by integration")
    result = await _run(client, "pull_request", number=3)
    assert result.error == (
        "The GitHub token may not read pull request #3 of acme/shop (403 Forbidden: Resource not "
        "accessible by integration). Give it access to the repository."
    )


async def test_an_exhausted_rate_limit_fails_fast_with_the_reset_time(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    gh.fail_next("pulls.get", 403, reset_in=1800)
    started = time.monotonic()
    result = await _run(client, "pull_request", number=1)
    assert time.monotonic() - started < 2
    reset = datetime.fromtimestamp(int(time.time()) + 1800, UTC)
    assert result.status == "error" and result.error is not None
    assert result.error.startswith(
        "GitHub's rate limit for this token is used up, so IncidentFox could not read"
    )
    assert f"it resets at {reset:%H:%M} UTC (in about 30 minutes)" in result.error
    assert len(gh.calls_to("pulls.get")) == 1


async def test_a_long_secondary_rate_limit_is_not_slept_through(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    gh.fail_next("search.code", 429, retry_after=120)
    started = time.monotonic()
    result = await _run(client, "search_code", query="TIMEOUT")
    assert time.monotonic() - started < 2
    assert result.error == (
        "GitHub asked IncidentFox to slow down (secondary rate limit) when asked to search code for "
        "'TIMEOUT'; retry in 120 seconds."
    )


async def test_transient_failures_and_short_rate_limits_are_retried(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    gh.fail_next("repos.get_content", 503)
    gh.fail_next("repos.list_commits", 403, reset_in=-5)
    gh.fail_next("pulls.list", 429)
    contents = await _run(client, "file_contents", path="shop/payments.py")
    changes = await _run(client, "recent_changes", hours=72)
    assert (contents.status, changes.status) == ("ok", "ok")
    assert [c["message"] for c in changes.data["commits"]] == ["Add checkout service"]
    assert [c.status for c in gh.calls_to("repos.get_content")] == [503, 200]
    assert [c.status for c in gh.calls_to("repos.list_commits")] == [403, 200]
    assert [c.status for c in gh.calls_to("pulls.list")] == [429, 200]


async def test_a_persistent_server_error_is_reported_after_retries(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    gh.fail_next("actions.list_workflow_runs_for_repo", 502, times=10)
    result = await _run(client, "workflow_failures")
    assert result.error == (
        f"GitHub at {gh.api_url} answered 502 when asked to list failed workflow runs of acme/shop; "
        "try again in a minute."
    )
    assert len(gh.calls_to("actions.list_workflow_runs_for_repo")) == 3


async def test_github_down_is_unreachable(gh: GitHubEmulator) -> None:
    config = _config(gh)
    await gh.stop()
    client = await connect(config, FAST)
    result = await _run(client, "pull_request", number=7)
    client.close()
    assert result.error == (
        f"GitHub at {config['integrations']['github']['api_url']} is unreachable (connection refused); "
        "could not read pull request #7 of acme/shop."
    )


class RecordingGate:
    """An approval gate whose approver approves (or denies) every request; it records what was asked."""

    def __init__(self, approve: bool) -> None:
        self.approve = approve
        self.asked: list[ActionRequest] = []

    async def run_when_approved(
        self, request: ActionRequest, action: Action, *, deadline: asyncio.Timeout | None = None
    ) -> ToolResult:
        self.asked.append(request)
        if self.approve:
            return await action()
        return ToolResult.failed(f"{request.tool} was not run: the approver denied it.")


def _comment(pr: PullRequest, body: str = "Root cause: timeout 1s") -> dict[str, Any]:
    return {"repo": "acme/shop", "number": pr.number, "body": body, "reason": REASON}


async def _invoke(
    gh: GitHubEmulator, client: GitHubClient, tool_name: str, gate: RecordingGate | None, args: dict[str, Any]
) -> tuple[dict[str, Any], list[ProgressEvent]]:
    events: list[ProgressEvent] = []
    ctx = InvestigationContext(
        run_id="r", org_id="o", team_node_id="t", config=_config(gh), emit=events.append
    )
    ctx.clients["github"] = client
    if gate is not None:
        ctx.approvals = gate
    tool = next(t for t in toolset_function_tools(gt.GITHUB, agent="github") if t.name == tool_name)
    raw = json.dumps(args)
    out = await tool.on_invoke_tool(
        ToolContext(ctx, tool_name=tool_name, tool_call_id="c1", tool_arguments=raw), raw
    )
    return json.loads(out), events


async def test_without_an_approver_a_comment_never_reaches_github(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    pr = _timeout_pr(gh)
    out, events = await _invoke(gh, client, "comment", None, _comment(pr))
    assert out["status"] == "approval_required"
    assert [c for c in gh.calls if c.method != "GET"] == []
    assert [e.kind for e in events] == ["tool_start", "tool_end"]


async def test_an_approved_comment_is_posted_once_and_a_denied_one_never(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    pr = _timeout_pr(gh)
    approving = RecordingGate(approve=True)
    out, _ = await _invoke(gh, client, "comment", approving, _comment(pr))
    assert out["status"] == "ok", out
    [asked] = approving.asked
    assert (asked.description.action, asked.description.target, asked.description.reason) == (
        "comment on",
        f"acme/shop#{pr.number}: “Root cause: timeout 1s”",
        REASON,
    )
    [posted] = [c for c in gh.calls if c.method == "POST"]
    assert (posted.path, posted.json) == (
        f"/repos/acme/shop/issues/{pr.number}/comments",
        {"body": "Root cause: timeout 1s"},
    )
    assert out["data"]["url"].startswith(f"https://github.com/acme/shop/pull/{pr.number}#issuecomment-")
    denied, _ = await _invoke(gh, client, "comment", RecordingGate(approve=False), _comment(pr, "x"))
    assert denied["status"] == "error"
    assert len([c for c in gh.calls if c.method == "POST"]) == 1


async def test_an_approved_issue_is_opened_with_its_labels(gh: GitHubEmulator, client: GitHubClient) -> None:
    title, body = "Payment timeout too low for the PSP", "The PSP answers in 1.4 s at p99."
    args = {"repo": "acme/shop", "title": title, "body": body, "labels": ["incident"], "reason": REASON}
    out, _ = await _invoke(gh, client, "open_issue", RecordingGate(approve=True), args)
    assert out["status"] == "ok"
    issue = _shop(gh).issues[out["data"]["number"]]
    assert (issue.title, issue.body, issue.labels, issue.user.login) == (
        title,
        body,
        ["incident"],
        "incidentfox[bot]",
    )


async def test_a_comment_that_got_a_server_error_is_not_posted_again(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    pr = _timeout_pr(gh)
    gh.fail_next("issues.create_comment", 502)
    tool = next(t for t in gt.GITHUB.tools if t.name == "comment")
    params = tool.params.model_validate(_comment(pr, "hi"))
    result = await tool.run(client, params)
    assert result.error == (
        f"GitHub at {gh.api_url} answered 502 when asked to comment on acme/shop#{pr.number}; "
        "try again in a minute."
    )
    assert len(gh.calls_to("issues.create_comment")) == 1


def test_write_params_refuse_empty_text_and_need_a_reason() -> None:
    comment = next(t for t in gt.GITHUB.tools if t.name == "comment").params
    with pytest.raises(ValueError, match="empty"):
        comment.model_validate({"repo": "acme/shop", "number": 1, "body": "  ", "reason": REASON})
    with pytest.raises(ValueError, match="why this action helps"):
        comment.model_validate({"repo": "acme/shop", "number": 1, "body": "x", "reason": " "})
    with pytest.raises(ValueError, match="pattern"):
        comment.model_validate({"repo": "not a repo", "number": 1, "body": "x", "reason": REASON})
    schema = json.dumps(comment.model_json_schema())
    assert "minLength" not in schema and "maxLength" not in schema


async def test_the_ci_write_back_edits_its_earlier_comment(gh: GitHubEmulator, client: GitHubClient) -> None:
    pr = _timeout_pr(gh)
    gh.add_issue_comment("acme/shop", pr.number, "LGTM", author="dana")
    first = await upsert_marked_comment(client, "acme/shop", pr.number, "CI failed: step Run tests")
    second = await upsert_marked_comment(client, "acme/shop", pr.number, "CI failed again: step Lint")
    assert (first.created, second.created, second.comment_id) == (True, False, first.comment_id)
    bodies = [c.body for c in _shop(gh).comments.values()]
    assert bodies == ["LGTM", "<!-- incidentfox:ci-analysis -->\nCI failed again: step Lint"]


async def test_the_ci_write_back_never_edits_someone_elses_comment_that_copies_its_marker(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    pr = _timeout_pr(gh)
    spoof = gh.add_issue_comment(
        "acme/shop", pr.number, "<!-- incidentfox:ci-analysis -->\nmine", author="mallory"
    )
    posted = await upsert_marked_comment(client, "acme/shop", pr.number, "CI failed: step Run tests")
    assert posted.created and posted.comment_id != spoof.id
    assert _shop(gh).comments[spoof.id].body == "<!-- incidentfox:ci-analysis -->\nmine"
    again = await upsert_marked_comment(client, "acme/shop", pr.number, "CI failed again")
    assert (again.created, again.comment_id) == (False, posted.comment_id), "its own comment is edited"


async def test_health_check(gh: GitHubEmulator) -> None:
    fast = ClientOptions(
        retries=0, max_rate_limit_wait_s=0, seconds_between_requests=None, seconds_between_writes=None
    )
    assert await gt.health(_config(gh), fast) == gt.ToolsetHealth.ok()
    unconfigured = await gt.health({"integrations": {}}, fast)
    assert (unconfigured.configured, unconfigured.healthy) == (False, False)
    bad = await gt.health(_config(gh, token="ghp_nope"), fast)
    assert bad.reason.startswith(f"GitHub at {gh.api_url} rejected the token (401 Bad credentials).")
    gh.rate_used = gh.rate_limit
    spent = await gt.health(_config(gh), fast)
    assert spent.reason.startswith("GitHub's rate limit for this token is used up until ")
