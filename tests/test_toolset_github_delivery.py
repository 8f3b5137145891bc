"""The github toolset's delivery tools through the real PyGithub against the GitHub emulator: recent
workflow runs, deployments with their latest state, the diff between two refs, one commit, releases,
and their failures in one plain sentence."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from incidentfox.agents.toolsets import github as gt
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.github_api import ClientOptions, GitHubClient, connect
from incidentfox.emulators.github import GitHubEmulator
from incidentfox.emulators.github_actions import JobSpec, StepSpec
from incidentfox.emulators.github_models import ChangedFile, Commit
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


def _bad_deploy(gh: GitHubEmulator) -> tuple[Commit, Commit]:
    """The last good commit and the head of the bad deploy: the commit that lowered the payment
    timeout, then a refactor."""
    good = gh.add_commit("acme/shop", "Log payment latency", author="dana", date=NOW - timedelta(hours=5))
    gh.add_commit(
        "acme/shop",
        "Lower payment timeout to 1s\n\nThe PSP answers in 300 ms at p99.",
        author="erin",
        date=NOW - timedelta(hours=2),
        files={"deploy/values.yaml": NEW},
    )
    bad = gh.add_commit(
        "acme/shop",
        "Rename TIMEOUT",
        author="erin",
        date=NOW - timedelta(hours=1),
        files={"shop/payments.py": "PAYMENT_TIMEOUT = 1\n"},
    )
    return good, bad


def _shop_commits(gh: GitHubEmulator) -> list[Commit]:
    repo = gh.repo("acme/shop")
    assert repo is not None
    return list(repo.commits.values())


async def test_workflow_runs_lists_runs_with_conclusion_sha_and_trigger(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    green = JobSpec("test", [StepSpec("pytest")])
    red = JobSpec("deploy", [StepSpec("helm upgrade", "failure")])
    ci = gh.add_workflow_run("acme/shop", jobs=[green], event="push", started_at=NOW - timedelta(hours=3))
    deploy = gh.add_workflow_run(
        "acme/shop",
        jobs=[red],
        name="Deploy",
        path=".github/workflows/deploy.yml",
        event="workflow_dispatch",
        actor="erin",
        started_at=NOW - timedelta(hours=1),
    )
    everything = await _run(client, "workflow_runs")
    assert everything.status == "ok", everything.error
    assert [r["id"] for r in everything.data["runs"]] == [deploy.id, ci.id], "newest first"
    assert everything.data["by_conclusion"] == {"failure": 1, "success": 1}
    newest = everything.data["runs"][0]
    assert newest["workflow"] == "Deploy" and newest["conclusion"] == "failure"
    assert newest["triggered_by"] == "erin" and newest["event"] == "workflow_dispatch"
    assert newest["head_sha"] == deploy.head_sha[:12]
    assert newest["url"] == f"https://github.com/acme/shop/actions/runs/{deploy.id}"
    only = await _run(client, "workflow_runs", workflow="deploy.yml")
    assert [r["id"] for r in only.data["runs"]] == [deploy.id]
    assert only.invocation == "gh run list -R acme/shop --workflow deploy.yml -L 15"
    assert gh.calls_to("actions.list_workflow_runs")[-1].path.endswith("/actions/workflows/deploy.yml/runs")
    failed = await _run(client, "workflow_runs", conclusion="success")
    assert [r["id"] for r in failed.data["runs"]] == [ci.id]


async def test_workflow_runs_of_nothing_is_no_data_and_an_unknown_workflow_is_404(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    gh.add_workflow_run("acme/shop", jobs=[JobSpec("test", [StepSpec("pytest")])])
    none = await _run(client, "workflow_runs", branch="release-9")
    assert (none.status, none.data) == ("no_data", "No workflow runs in acme/shop with branch=release-9")
    unknown = await _run(client, "workflow_runs", workflow="nightly.yml")
    assert unknown.status == "error" and unknown.error is not None
    assert unknown.error.startswith(
        "Could not list workflow runs of acme/shop (nightly.yml): GitHub answered 404 Not Found."
    )


async def test_deployments_show_the_latest_state_per_environment(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    good, bad = _bad_deploy(gh)
    gh.add_deployment("acme/shop", sha=good.sha, created_at=NOW - timedelta(hours=4))
    gh.add_deployment("acme/shop", environment="staging", created_at=NOW - timedelta(hours=2))
    failed = gh.add_deployment(
        "acme/shop",
        created_at=NOW - timedelta(minutes=50),
        states=("in_progress", "failure"),
        log_url="https://ci.example.com/deploys/77",
    )
    result = await _run(client, "deployments")
    assert result.status == "ok", result.error
    assert result.data["latest_per_environment"] == {
        "production": {
            "sha": bad.sha[:12],
            "state": "failure",
            "at": result.data["deployments"][0]["state_at"],
        },
        "staging": {"sha": bad.sha[:12], "state": "success", "at": result.data["deployments"][1]["state_at"]},
    }
    first = result.data["deployments"][0]
    assert (first["id"], first["creator"], first["log_url"]) == (
        failed.id,
        "deploy-bot",
        "https://ci.example.com/deploys/77",
    )
    production = await _run(client, "deployments", environment="production")
    assert [d["sha"] for d in production.data["deployments"]] == [bad.sha[:12], good.sha[:12]]
    assert [d["state"] for d in production.data["deployments"]] == ["failure", "success"]


async def test_no_deployments_is_no_data(client: GitHubClient) -> None:
    result = await _run(client, "deployments", environment="production")
    assert result.status == "no_data"
    assert result.data == (
        "No GitHub deployments to production in acme/shop: it may deploy without GitHub's deployments API."
    )


async def test_compare_refs_lists_commits_and_real_diffs_since_the_last_good_deploy(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    good, bad = _bad_deploy(gh)
    result = await _run(client, "compare_refs", base=good.sha[:12])
    assert result.status == "ok", result.error
    data = result.data
    assert (data["status"], data["ahead_by"], data["behind_by"], data["total_commits"]) == ("ahead", 2, 0, 2)
    assert [c["message"] for c in data["commits"]] == ["Rename TIMEOUT", "Lower payment timeout to 1s"]
    assert data["commits"][0]["sha"] == bad.sha[:12]
    files = {f["file"]: f for f in data["files"]}
    assert set(files) == {"deploy/values.yaml", "shop/payments.py"}
    assert "-  timeout_s: 5" in files["deploy/values.yaml"]["patch"]
    assert "+  timeout_s: 1" in files["deploy/values.yaml"]["patch"]
    assert (files["deploy/values.yaml"]["additions"], files["deploy/values.yaml"]["deletions"]) == (1, 1)
    assert result.url == f"https://github.com/acme/shop/compare/{good.sha[:12]}...main"
    assert result.invocation == f"gh api 'repos/acme/shop/compare/{good.sha[:12]}...main'"
    one = await _run(client, "compare_refs", base=good.sha, head=bad.sha, file="shop/payments.py")
    assert [f["file"] for f in one.data["files"]] == ["shop/payments.py"]


async def test_compare_refs_summarises_large_patches_by_hunk(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    before = "".join(f"line {i}\n" for i in range(400))
    gh.set_file("acme/shop", "shop/generated.py", before)
    good = gh.add_commit("acme/shop", "Baseline", date=NOW - timedelta(hours=3))
    after = "".join(f"line {i} changed\n" if i % 7 == 0 else f"line {i}\n" for i in range(400))
    gh.add_commit(
        "acme/shop",
        "Regenerate client",
        date=NOW - timedelta(hours=1),
        changes=[ChangedFile.between("shop/generated.py", before, after)],
    )
    result = await _run(client, "compare_refs", base=good.sha)
    [large] = result.data["files"]
    assert large["patch"] is None and large["hunks"][0].startswith("@@ -1,")
    assert "ask with file=shop/generated.py" in large["note"]


async def test_compare_refs_of_identical_refs_is_no_data_and_an_unknown_ref_fails(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    head = gh.add_commit("acme/shop", "Only commit", date=NOW - timedelta(hours=1))
    same = await _run(client, "compare_refs", base=head.sha, head="main")
    assert (same.status, same.data) == ("no_data", f"{head.sha} and main are identical in acme/shop.")
    unknown = await _run(client, "compare_refs", base="v0.0.0-never")
    assert unknown.status == "error" and unknown.error is not None
    assert unknown.error.startswith(
        "Could not compare v0.0.0-never with the default branch in acme/shop: GitHub answered 404 Not Found."
    )


async def test_commit_details_shows_message_stats_and_patches(
    gh: GitHubEmulator, client: GitHubClient
) -> None:
    good, _ = _bad_deploy(gh)
    lowering = next(c for c in _shop_commits(gh) if c.message.startswith("Lower"))
    result = await _run(client, "commit_details", sha=lowering.sha[:10])
    assert result.status == "ok", result.error
    data = result.data
    assert data["sha"] == lowering.sha
    assert data["message"] == "Lower payment timeout to 1s\n\nThe PSP answers in 300 ms at p99."
    assert (data["author"], data["parents"]) == ("erin", [good.sha[:12]])
    assert data["stats"] == {"additions": 1, "deletions": 1, "total": 2}
    [change] = data["files"]
    assert change["file"] == "deploy/values.yaml" and "+  timeout_s: 1" in change["patch"]
    assert result.url == f"https://github.com/acme/shop/commit/{lowering.sha}"
    other = await _run(client, "commit_details", sha=lowering.sha, file="shop/payments.py")
    assert (other.status, other.data) == (
        "no_data",
        f"Commit {lowering.sha} does not change shop/payments.py.",
    )


async def test_commit_details_of_an_unknown_sha_is_one_sentence(client: GitHubClient) -> None:
    result = await _run(client, "commit_details", sha="deadbeef00")
    assert (
        result.error
        == "GitHub refused to read commit deadbeef00 of acme/shop: No commit found for SHA: deadbeef00 (422)."
    )


async def test_releases_newest_first_with_notes(gh: GitHubEmulator, client: GitHubClient) -> None:
    gh.add_release("acme/shop", "v1.4.0", body="Faster checkout.", published_at=NOW - timedelta(days=3))
    gh.add_release(
        "acme/shop", "v1.5.0-rc1", prerelease=True, author="erin", published_at=NOW - timedelta(hours=2)
    )
    result = await _run(client, "releases")
    assert result.status == "ok", result.error
    newest, older = result.data["releases"]
    assert (newest["tag"], newest["prerelease"], newest["author"]) == ("v1.5.0-rc1", True, "erin")
    assert newest["url"] == "https://github.com/acme/shop/releases/tag/v1.5.0-rc1"
    assert (older["tag"], older["notes"], older["published_at"]) == (
        "v1.4.0",
        "Faster checkout.",
        (NOW - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


async def test_no_releases_is_no_data(client: GitHubClient) -> None:
    result = await _run(client, "releases")
    assert (result.status, result.data) == (
        "no_data",
        "acme/shop has no GitHub releases; recent_changes or deployments may show what shipped.",
    )


async def test_a_wrong_token_is_one_sentence(gh: GitHubEmulator) -> None:
    wrong = await connect(_config(gh, token="ghp_wrongtoken000000000000000000000000"), FAST)
    result = await _run(wrong, "deployments")
    wrong.close()
    assert result.error == (
        f"GitHub at {gh.api_url} rejected the token (401 Bad credentials). "
        "Check integrations.github.token in the team's GitHub integration."
    )
    assert "ghp_wrong" not in repr(result)


async def test_an_exhausted_rate_limit_fails_fast(gh: GitHubEmulator, client: GitHubClient) -> None:
    gh.fail_next("repos.compare_commits", 403, reset_in=1800)
    started = time.monotonic()
    result = await _run(client, "compare_refs", base="main")
    assert time.monotonic() - started < 2
    assert result.error is not None and result.error.startswith(
        "GitHub's rate limit for this token is used up, so IncidentFox could not compare main with"
    )


async def test_a_long_secondary_rate_limit_is_reported(gh: GitHubEmulator, client: GitHubClient) -> None:
    gh.fail_next("repos.list_releases", 429, retry_after=120)
    result = await _run(client, "releases")
    assert result.error == (
        "GitHub asked IncidentFox to slow down (secondary rate limit) when asked to list releases of "
        "acme/shop; retry in 120 seconds."
    )


async def test_a_team_without_a_repository_is_asked_to_name_one(gh: GitHubEmulator) -> None:
    config = _config(gh)
    config["routing"] = {}
    bare = await connect(config, FAST)
    result = await _run(bare, "workflow_runs")
    bare.close()
    assert result.error is not None and result.error.startswith("Name the repository (owner/name)")
