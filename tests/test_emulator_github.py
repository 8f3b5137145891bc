"""The GitHub emulator speaks the REST API the real PyGithub expects, over real HTTP, and sends webhooks
signed as GitHub's Hookshot signs them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import github
import pytest
import requests
from aiohttp import web
from github import Auth, Github, GithubException, GithubRetry

from incidentfox.emulators.github import GitHubEmulator
from incidentfox.emulators.github_actions import JobSpec, StepSpec
from incidentfox.emulators.github_models import ChangedFile, PullRequest, Repo, WorkflowRun

T = TypeVar("T")
NOW = datetime.now(UTC).replace(microsecond=0)
OLD_CONFIG = "timeout_s: 5\nretries: 3\n"
NEW_CONFIG = "timeout_s: 1\nretries: 3\n"
PYTEST_OUTPUT = [
    "collected 12 items",
    "tests/test_checkout.py ...F",
    "=================================== FAILURES ===================================",
    "____________________________ test_charge_succeeds _____________________________",
    ">       assert response.status_code == 200",
    "E       assert 504 == 200",
    "FAILED tests/test_checkout.py::test_charge_succeeds - assert 504 == 200",
]


def _client(gh: GitHubEmulator, *, token: str | None = None, retries: int = 0, per_page: int = 30) -> Github:
    return Github(
        auth=Auth.Token(token or gh.token),
        base_url=gh.api_url,
        per_page=per_page,
        retry=GithubRetry(total=retries, backoff_factor=0, secondary_rate_wait=0, max_rate_limit_wait=2),
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


async def _sync(fn: Callable[[], T]) -> T:
    """PyGithub blocks, and the emulator runs on this loop: call it from a worker thread."""
    return await asyncio.to_thread(fn)


def _auth(gh: GitHubEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {gh.token}"}


async def _get(url: str, headers: dict[str, str] | None = None) -> requests.Response:
    return await asyncio.to_thread(requests.get, url, headers=headers or {}, timeout=5)


def _shop(gh: GitHubEmulator) -> Repo:
    repo = gh.repo("acme/shop")
    assert repo is not None
    return repo


@pytest.fixture
async def gh() -> AsyncIterator[GitHubEmulator]:
    async with GitHubEmulator() as emulator:
        emulator.add_repo("acme/shop", files={"deploy/config.yaml": OLD_CONFIG, "README.md": "# shop\n"})
        emulator.add_commit("acme/shop", "Add health endpoint", author="dana", date=NOW - timedelta(days=3))
        yield emulator


def _merged_timeout_pr(gh: GitHubEmulator) -> PullRequest:
    change = ChangedFile.between("deploy/config.yaml", OLD_CONFIG, NEW_CONFIG)
    return gh.add_pull_request(
        "acme/shop",
        "Lower the payment timeout",
        head="lower-timeout",
        author="sam",
        files=[change],
        created_at=NOW - timedelta(hours=5),
        merged_at=NOW - timedelta(hours=2),
    )


def _failed_run(gh: GitHubEmulator, pr: PullRequest) -> WorkflowRun:
    steps = [
        StepSpec("Checkout", command="actions/checkout@v4"),
        StepSpec("Run tests", "failure", PYTEST_OUTPUT, command="pytest -q", seconds=6),
        StepSpec("Upload coverage"),
    ]
    return gh.add_workflow_run(
        "acme/shop",
        pull_requests=[pr.number],
        jobs=[JobSpec("lint", [StepSpec("Ruff")]), JobSpec("test", steps)],
    )


async def test_repository_and_commit_history_through_pygithub(gh: GitHubEmulator) -> None:
    pr = _merged_timeout_pr(gh)
    client = _client(gh)

    def read() -> tuple[Any, ...]:
        repo = client.get_repo("acme/shop")
        history = [(c.commit.message.splitlines()[0], c.author.login) for c in repo.get_commits()]
        recent = [c.sha for c in repo.get_commits(since=NOW - timedelta(hours=3))]
        on_branch = [c.commit.message for c in repo.get_commits(sha="lower-timeout")]
        touching = [c.sha for c in repo.get_commits(path="deploy/config.yaml")]
        return repo.full_name, repo.default_branch, repo.private, history, recent, on_branch, touching

    full_name, branch, private, history, recent, on_branch, touching = await _sync(read)
    assert (full_name, branch, private) == ("acme/shop", "main", True)
    assert history == [
        ("Merge pull request #1 from acme/lower-timeout", "sam"),
        ("Lower the payment timeout", "sam"),
        ("Add health endpoint", "dana"),
    ]
    assert recent == [pr.merge_commit_sha]
    assert on_branch == ["Lower the payment timeout", "Add health endpoint"]
    assert len(touching) == 2
    assert {c.name for c in gh.calls} == {"repos.get", "repos.list_commits"}
    assert gh.calls_to("repos.list_commits")[1].query["since"] == (NOW - timedelta(hours=3)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


async def test_lists_paginate_with_link_headers(gh: GitHubEmulator) -> None:
    for n in range(4):
        gh.add_commit("acme/shop", f"change {n}", date=NOW - timedelta(hours=10 - n))
    client = _client(gh, per_page=2)

    def read() -> tuple[list[str], int]:
        commits = client.get_repo("acme/shop").get_commits()
        return [c.commit.message for c in commits], commits.totalCount

    messages, total = await _sync(read)
    assert messages == ["change 3", "change 2", "change 1", "change 0", "Add health endpoint"]
    assert total == 5, "totalCount comes from the rel=last link of a per_page=1 request"
    pages = [c.query.get("page", "1") for c in gh.calls_to("repos.list_commits")]
    assert pages[:3] == ["1", "2", "3"]
    raw = await _get(f"{gh.api_url}/repos/acme/shop/commits?per_page=2&page=2", _auth(gh))
    links = raw.headers["Link"]
    assert f'<{gh.api_url}/repos/acme/shop/commits?per_page=2&page=3>; rel="next"' in links
    assert 'rel="last"' in links and 'rel="prev"' in links and 'rel="first"' in links


async def test_pull_request_files_and_unified_diff(gh: GitHubEmulator) -> None:
    pr = _merged_timeout_pr(gh)
    client = _client(gh)

    def read() -> tuple[Any, ...]:
        found = client.get_repo("acme/shop").get_pull(pr.number)
        files = [(f.filename, f.status, f.additions, f.deletions, f.patch) for f in found.get_files()]
        _, diff = client.requester.requestJsonAndCheck(
            "GET", found.url, headers={"Accept": "application/vnd.github.diff"}
        )
        return found.title, found.merged, found.merge_commit_sha, found.head.ref, files, diff["data"]

    title, merged, merge_sha, head, files, diff = await _sync(read)
    assert (title, merged, merge_sha, head) == (
        "Lower the payment timeout",
        True,
        pr.merge_commit_sha,
        "lower-timeout",
    )
    assert files == [
        ("deploy/config.yaml", "modified", 1, 1, "@@ -1,2 +1,2 @@\n-timeout_s: 5\n+timeout_s: 1\n retries: 3")
    ]
    assert diff.startswith("diff --git a/deploy/config.yaml b/deploy/config.yaml\n--- a/deploy/config.yaml\n")
    assert "\n-timeout_s: 5\n+timeout_s: 1\n" in diff


async def test_contents_at_a_ref_follow_the_history(gh: GitHubEmulator) -> None:
    pr = _merged_timeout_pr(gh)
    client = _client(gh)
    before = _shop(gh).commits[pr.merge_commit_sha or ""].parents[0]

    def read() -> tuple[Any, ...]:
        repo = client.get_repo("acme/shop")
        now = repo.get_contents("deploy/config.yaml")
        then = repo.get_contents("deploy/config.yaml", ref=before)
        listing = repo.get_contents("deploy")
        return now, then, listing

    now, then, listing = await _sync(read)
    assert now.decoded_content.decode() == NEW_CONFIG and now.encoding == "base64"
    assert then.decoded_content.decode() == OLD_CONFIG
    assert now.html_url == "https://github.com/acme/shop/blob/main/deploy/config.yaml"
    assert [(e.name, e.type) for e in listing] == [("config.yaml", "file")]
    with pytest.raises(github.UnknownObjectException):
        await _sync(lambda: client.get_repo("acme/shop").get_contents("missing.txt"))
    with pytest.raises(GithubException) as bad_ref:
        await _sync(lambda: client.get_repo("acme/shop").get_contents("README.md", ref="no-such-branch"))
    assert bad_ref.value.status == 404 and "No commit found for the ref" in bad_ref.value.data["message"]


async def test_issue_comments_are_created_listed_and_edited(gh: GitHubEmulator) -> None:
    pr = _merged_timeout_pr(gh)
    client = _client(gh)

    def write() -> tuple[Any, ...]:
        issue = client.get_repo("acme/shop").get_issue(pr.number)
        posted = issue.create_comment("CI failed in step Run tests")
        posted.edit("CI failed in step Run tests (edited)")
        listed = [(c.id, c.body, c.user.login) for c in issue.get_comments()]
        return posted, listed, issue.pull_request is not None

    posted, listed, is_pull = await _sync(write)
    assert is_pull
    assert posted.html_url == f"https://github.com/acme/shop/pull/{pr.number}#issuecomment-{posted.id}"
    assert listed == [(posted.id, "CI failed in step Run tests (edited)", "incidentfox[bot]")]
    writes = [(c.method, c.path, c.json, c.status) for c in gh.calls if c.method != "GET"]
    assert writes == [
        (
            "POST",
            f"/repos/acme/shop/issues/{pr.number}/comments",
            {"body": "CI failed in step Run tests"},
            201,
        ),
        (
            "PATCH",
            f"/repos/acme/shop/issues/comments/{posted.id}",
            {"body": "CI failed in step Run tests (edited)"},
            200,
        ),
    ]
    with pytest.raises(GithubException) as empty:
        await _sync(lambda: client.get_repo("acme/shop").get_issue(pr.number).create_comment(" "))
    assert empty.value.status == 422


async def test_issues_are_opened_by_the_tokens_identity(gh: GitHubEmulator) -> None:
    client = _client(gh)
    issue = await _sync(
        lambda: client.get_repo("acme/shop").create_issue(
            "Checkout timeouts", body="RCA", labels=["incident"]
        )
    )
    assert (issue.number, issue.user.login, [label.name for label in issue.labels]) == (
        1,
        "incidentfox[bot]",
        ["incident"],
    )
    assert _shop(gh).issues[1].title == "Checkout timeouts"


async def test_workflow_runs_jobs_steps_and_check_runs(gh: GitHubEmulator) -> None:
    pr = _merged_timeout_pr(gh)
    run = _failed_run(gh, pr)
    gh.add_workflow_run(
        "acme/shop", head_branch="main", event="push", jobs=[JobSpec("lint", [StepSpec("Ruff")])]
    )
    client = _client(gh)

    def read() -> tuple[Any, ...]:
        repo = client.get_repo("acme/shop")
        found = repo.get_workflow_run(run.id)
        jobs = [
            (j.name, j.conclusion, [(s.number, s.name, s.conclusion) for s in j.steps]) for j in found.jobs()
        ]
        failed = [r.id for r in repo.get_workflow_runs(status="failure")]
        checks = [(c.name, c.conclusion) for c in repo.get_commit(found.head_sha).get_check_runs()]
        return found, jobs, failed, checks

    found, jobs, failed, checks = await _sync(read)
    assert (found.conclusion, found.head_branch, found.head_sha) == ("failure", "lower-timeout", pr.head_sha)
    assert [p.number for p in found.pull_requests] == [pr.number]
    assert jobs[1] == (
        "test",
        "failure",
        [
            (1, "Set up job", "success"),
            (2, "Checkout", "success"),
            (3, "Run tests", "failure"),
            (4, "Upload coverage", "skipped"),
            (5, "Complete job", "success"),
        ],
    )
    assert failed == [run.id]
    assert sorted(checks) == [("lint", "success"), ("test", "failure")]


async def test_job_logs_redirect_to_a_signed_plain_text_log(gh: GitHubEmulator) -> None:
    run = _failed_run(gh, _merged_timeout_pr(gh))
    job = _shop(gh).jobs[run.jobs[1]]
    client = _client(gh)
    location = await _sync(lambda: client.get_repo("acme/shop").get_workflow_run(run.id).jobs()[1].logs_url())
    assert location.startswith(f"{gh.api_url}/_blobs/job-logs/{job.id}?")
    assert gh.calls_to("actions.download_job_logs_for_workflow_run")[0].status == 302
    log = await _get(location)
    assert log.status_code == 200 and log.text == job.log
    lines = log.text.splitlines()
    assert lines[0].endswith("Z Current runner version: '2.321.0'") and lines[0][:4].isdigit()
    assert any(line.endswith(" ##[group]Run pytest -q") for line in lines)
    assert lines[-2].endswith(" ##[error]Process completed with exit code 1.")
    step = next(s for s in job.steps if s.name == "Run tests")
    failed_at = datetime.fromisoformat(next(x for x in lines if "FAILED tests" in x).split(" ")[0])
    assert step.started_at <= failed_at < step.completed_at
    assert (await _get(location.replace("sig=", "sig=0"))).status_code == 403


async def test_run_logs_redirect_to_a_zip_of_job_and_step_logs(gh: GitHubEmulator) -> None:
    run = _failed_run(gh, _merged_timeout_pr(gh))
    response = await _get(f"{gh.api_url}/repos/acme/shop/actions/runs/{run.id}/logs", _auth(gh))
    assert [r.status_code for r in response.history] == [302]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert {"0_lint.txt", "1_test.txt", "test/3_Run tests.txt", "test/1_Set up job.txt"} <= set(names)
    step_log = archive.read("test/3_Run tests.txt").decode()
    assert "FAILED tests/test_checkout.py::test_charge_succeeds" in step_log
    assert "Current runner version" not in step_log


async def test_code_search_with_qualifiers_and_text_matches(gh: GitHubEmulator) -> None:
    gh.add_repo("acme/infra", files={"deploy/config.yaml": "timeout_s: 30\n"})
    client = _client(gh)

    def search(query: str) -> list[tuple[str, str, Any]]:
        return [
            (r.repository.full_name, r.path, r.text_matches)
            for r in client.search_code(query, highlight=True)
        ]

    everywhere = await _sync(lambda: search("timeout_s"))
    scoped = await _sync(lambda: search("timeout_s repo:acme/shop extension:yaml"))
    assert [(repo, path) for repo, path, _ in everywhere] == [
        ("acme/infra", "deploy/config.yaml"),
        ("acme/shop", "deploy/config.yaml"),
    ]
    assert len(scoped) == 1 and scoped[0][2][0]["matches"][0]["text"] == "timeout_s"
    assert await _sync(lambda: search("nothing-like-this")) == []
    with pytest.raises(GithubException) as no_terms:
        await _sync(lambda: search("repo:acme/shop"))
    assert no_terms.value.status == 422


async def test_a_wrong_or_missing_token_is_bad_credentials(gh: GitHubEmulator) -> None:
    with pytest.raises(github.BadCredentialsException):
        await _sync(lambda: _client(gh, token="ghp_wrong").get_repo("acme/shop").full_name)
    missing = await _get(f"{gh.api_url}/repos/acme/shop")
    assert missing.status_code == 401 and missing.json()["message"] == "Bad credentials"
    assert [c.authorized for c in gh.calls] == [False, False]


async def test_injected_primary_rate_limit_has_github_headers(gh: GitHubEmulator) -> None:
    gh.fail_next("repos.get", 403, reset_in=600)
    limited = await _get(f"{gh.api_url}/repos/acme/shop", _auth(gh))
    assert limited.status_code == 403
    assert limited.json()["message"].startswith("API rate limit exceeded")
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert abs(int(limited.headers["X-RateLimit-Reset"]) - (time.time() + 600)) < 5
    assert (await _get(f"{gh.api_url}/repos/acme/shop", _auth(gh))).status_code == 200
    gh.fail_next("/repos/acme/*", 403, reset_in=600)
    with pytest.raises(github.RateLimitExceededException):
        await _sync(lambda: _client(gh, retries=2).get_repo("acme/shop").full_name)


async def test_pygithub_retries_transient_failures_against_the_emulator(gh: GitHubEmulator) -> None:
    gh.fail_next("repos.get", 502, times=2)
    gh.fail_next("pulls.list", 403, reset_in=-5)
    gh.fail_next("search.code", 429, retry_after=0)
    client = _client(gh, retries=3)

    def read() -> tuple[str, int, int]:
        repo = client.get_repo("acme/shop")
        return repo.full_name, len(list(repo.get_pulls())), client.search_code("shop").totalCount

    assert await _sync(read) == ("acme/shop", 0, 1)
    assert [c.status for c in gh.calls_to("repos.get")] == [502, 502, 200]
    assert [c.status for c in gh.calls_to("pulls.list")] == [403, 200]
    secondary = gh.calls_to("search.code")[0]
    assert secondary.status == 429


async def test_spending_the_rate_budget_answers_403_until_reset() -> None:
    async with GitHubEmulator(rate_limit=2) as gh:
        gh.add_repo("acme/shop")
        answers = [await _get(f"{gh.api_url}/repos/acme/shop", _auth(gh)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 403]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]


async def _receiver() -> tuple[web.AppRunner, str, list[tuple[dict[str, str], bytes]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=202, text="queued")

    app = web.Application()
    app.router.add_post("/webhooks/github", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/github", received


async def test_send_webhook_signs_the_exact_body_like_hookshot(gh: GitHubEmulator) -> None:
    run = _failed_run(gh, _merged_timeout_pr(gh))
    runner, url, received = await _receiver()
    try:
        delivery = await gh.send_webhook(url, "workflow_run", gh.workflow_run_event(run), secret="s3cret")
    finally:
        await runner.cleanup()
    [(headers, body)] = received
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == expected
    assert headers["X-Hub-Signature"] == "sha1=" + hmac.new(b"s3cret", body, hashlib.sha1).hexdigest()
    assert headers["X-GitHub-Event"] == "workflow_run"
    assert uuid.UUID(headers["X-GitHub-Delivery"]).version == 4
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert headers["Content-Type"] == "application/json"
    assert headers["X-GitHub-Hook-Installation-Target-ID"] == str(_shop(gh).id)
    assert (delivery.status, delivery.response_text, gh.deliveries) == (202, "queued", [delivery])
    forged = "sha256=" + hmac.new(b"other", body, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(forged, headers["X-Hub-Signature-256"])


async def test_workflow_run_and_check_suite_payloads_name_what_the_api_serves(gh: GitHubEmulator) -> None:
    pr = _merged_timeout_pr(gh)
    run = _failed_run(gh, pr)
    payload = gh.workflow_run_event(run)
    wr = payload["workflow_run"]
    assert (payload["action"], wr["conclusion"], wr["status"], wr["name"]) == (
        "completed",
        "failure",
        "completed",
        "CI",
    )
    assert (wr["head_branch"], wr["head_sha"], wr["id"]) == ("lower-timeout", pr.head_sha, run.id)
    assert wr["html_url"] == f"https://github.com/acme/shop/actions/runs/{run.id}"
    assert (
        wr["pull_requests"][0]["number"] == pr.number
        and wr["pull_requests"][0]["head"]["ref"] == "lower-timeout"
    )
    assert payload["repository"]["full_name"] == "acme/shop" and payload["workflow"]["path"] == run.path
    api = await _sync(lambda: _client(gh).get_repo("acme/shop").get_workflow_run(wr["id"]))
    assert (api.head_sha, api.jobs_url) == (wr["head_sha"], wr["jobs_url"])
    suite = gh.check_suite_event(run)["check_suite"]
    assert (suite["conclusion"], suite["head_sha"], suite["app"]["slug"]) == (
        "failure",
        pr.head_sha,
        "github-actions",
    )
    assert suite["pull_requests"][0]["number"] == pr.number and suite["latest_check_runs_count"] == 2


async def test_comment_payloads_and_ping(gh: GitHubEmulator) -> None:
    pr = _merged_timeout_pr(gh)
    issue = gh.add_issue("acme/shop", "Flaky deploys")
    on_pr = gh.issue_comment_event("acme/shop", pr.number, "@incidentfox why did CI fail?", author="sam")
    on_issue = gh.issue_comment_event("acme/shop", issue.number, "@incidentfox look", author="sam")
    assert on_pr["action"] == "created" and on_pr["comment"]["body"] == "@incidentfox why did CI fail?"
    assert on_pr["issue"]["pull_request"]["html_url"] == f"https://github.com/acme/shop/pull/{pr.number}"
    assert "pull_request" not in on_issue["issue"]
    listed = await _sync(lambda: list(_client(gh).get_repo("acme/shop").get_issue(pr.number).get_comments()))
    assert [c.id for c in listed] == [on_pr["comment"]["id"]]
    review = gh.review_comment_event(
        "acme/shop", pr.number, "@incidentfox is 1s enough?", path="deploy/config.yaml", line=1
    )
    assert review["comment"]["path"] == "deploy/config.yaml" and review["comment"]["line"] == 1
    assert review["pull_request"]["number"] == pr.number and review["comment"]["diff_hunk"].startswith("@@")
    ping = gh.ping_event("acme/shop", "https://bot.example.com/webhooks/github")
    assert ping["hook"]["config"]["url"] == "https://bot.example.com/webhooks/github" and ping["zen"]
    assert json.loads(json.dumps(ping)) == ping


async def test_files_in_contents_are_base64_in_60_column_lines(gh: GitHubEmulator) -> None:
    gh.set_file("acme/shop", "src/big.py", "x = 1\n" * 40)
    body = (await _get(f"{gh.api_url}/repos/acme/shop/contents/src/big.py", _auth(gh))).json()
    assert all(len(line) <= 60 for line in body["content"].splitlines())
    assert base64.b64decode(body["content"]).decode() == "x = 1\n" * 40
    assert body["sha"] == hashlib.sha1(b"blob 240\x00" + b"x = 1\n" * 40).hexdigest()
