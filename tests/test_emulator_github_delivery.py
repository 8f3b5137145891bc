"""The GitHub emulator's delivery endpoints in GitHub's documented shapes: compare (ahead, behind,
diverged, no common ancestor, paged commits), deployments and their statuses, releases and a
workflow's runs, read over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from incidentfox.emulators.github import GitHubEmulator
from incidentfox.emulators.github_actions import JobSpec, StepSpec

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def gh() -> AsyncIterator[GitHubEmulator]:
    async with GitHubEmulator() as emulator:
        emulator.add_repo("acme/shop", files={"app.py": "A = 1\n"})
        emulator.add_commit("acme/shop", "Root", date=NOW - timedelta(days=3))
        yield emulator


async def _get(gh: GitHubEmulator, path: str, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {gh.token}", "Accept": "application/vnd.github+json"}
    return await asyncio.to_thread(
        requests.get, f"{gh.api_url}{path}", params=params, headers=headers, timeout=5
    )


async def test_compare_reports_ahead_behind_and_diverged_with_real_file_diffs(gh: GitHubEmulator) -> None:
    base = gh.add_commit("acme/shop", "Base", date=NOW - timedelta(hours=5))
    gh.add_commit(
        "acme/shop", "Hotfix on release", branch="release", parents=[base.sha], date=NOW - timedelta(hours=4)
    )
    gh.add_commit("acme/shop", "Change A", files={"app.py": "A = 2\n"}, date=NOW - timedelta(hours=2))
    head = gh.add_commit("acme/shop", "Add B", files={"b.py": "B = 1\n"}, date=NOW - timedelta(hours=1))
    ahead = (await _get(gh, f"/repos/acme/shop/compare/{base.sha[:7]}...main")).json()
    assert (ahead["status"], ahead["ahead_by"], ahead["behind_by"], ahead["total_commits"]) == (
        "ahead",
        2,
        0,
        2,
    )
    assert [c["commit"]["message"] for c in ahead["commits"]] == ["Change A", "Add B"], "oldest first"
    assert ahead["merge_base_commit"]["sha"] == base.sha
    files = {f["filename"]: f for f in ahead["files"]}
    assert files["app.py"]["status"] == "modified" and "-A = 1\n+A = 2" in files["app.py"]["patch"]
    assert files["b.py"]["status"] == "added" and files["b.py"]["additions"] == 1
    assert ahead["html_url"] == f"https://github.com/acme/shop/compare/{base.sha[:7]}...main"
    behind = (await _get(gh, f"/repos/acme/shop/compare/main...{base.sha}")).json()
    assert (behind["status"], behind["ahead_by"], behind["behind_by"], behind["commits"]) == (
        "behind",
        0,
        2,
        [],
    )
    diverged = (await _get(gh, "/repos/acme/shop/compare/release...main")).json()
    assert (diverged["status"], diverged["ahead_by"], diverged["behind_by"]) == ("diverged", 2, 1)
    same = (await _get(gh, f"/repos/acme/shop/compare/{head.sha}...main")).json()
    assert (same["status"], same["files"]) == ("identical", [])


async def test_compare_pages_commits_and_refuses_unknown_or_unrelated_refs(gh: GitHubEmulator) -> None:
    base = gh.add_commit("acme/shop", "Base", date=NOW - timedelta(hours=9))
    for n in range(5):
        gh.add_commit("acme/shop", f"Commit {n}", date=NOW - timedelta(hours=8 - n))
    first = await _get(gh, f"/repos/acme/shop/compare/{base.sha}...main", per_page=2)
    assert [c["commit"]["message"] for c in first.json()["commits"]] == ["Commit 0", "Commit 1"]
    assert 'rel="next"' in first.headers["Link"] and "page=2" in first.headers["Link"]
    last = await _get(gh, f"/repos/acme/shop/compare/{base.sha}...main", per_page=2, page=3)
    assert [c["commit"]["message"] for c in last.json()["commits"]] == ["Commit 4"]
    assert "Link" not in last.headers
    unknown = await _get(gh, "/repos/acme/shop/compare/nope...main")
    assert (unknown.status_code, unknown.json()["message"]) == (404, "Not Found")
    orphan = gh.add_commit("acme/shop", "Orphan", branch="orphan", parents=[], date=NOW)
    unrelated = await _get(gh, f"/repos/acme/shop/compare/{orphan.sha}...main")
    assert unrelated.status_code == 404
    assert unrelated.json()["message"] == f"No common ancestor between {orphan.sha} and main."
    assert [c.name for c in gh.calls][-1] == "repos.compare_commits"


async def test_deployments_filter_newest_first_and_list_statuses_newest_first(gh: GitHubEmulator) -> None:
    older = gh.add_deployment("acme/shop", created_at=NOW - timedelta(hours=3))
    staging = gh.add_deployment("acme/shop", environment="staging", created_at=NOW - timedelta(hours=2))
    newer = gh.add_deployment(
        "acme/shop", created_at=NOW - timedelta(hours=1), states=("queued", "in_progress", "failure")
    )
    everything = (await _get(gh, "/repos/acme/shop/deployments")).json()
    assert [d["id"] for d in everything] == [newer.id, staging.id, older.id]
    production = (await _get(gh, "/repos/acme/shop/deployments", environment="production")).json()
    assert [d["id"] for d in production] == [newer.id, older.id]
    assert (
        production[0]["production_environment"] is True and production[0]["creator"]["login"] == "deploy-bot"
    )
    assert production[0]["statuses_url"].endswith(f"/deployments/{newer.id}/statuses")
    statuses = (await _get(gh, f"/repos/acme/shop/deployments/{newer.id}/statuses")).json()
    assert [s["state"] for s in statuses] == ["failure", "in_progress", "queued"]
    assert statuses[0]["environment"] == "production"
    missing = await _get(gh, "/repos/acme/shop/deployments/42/statuses")
    assert missing.status_code == 404


async def test_releases_newest_first_with_drafts(gh: GitHubEmulator) -> None:
    gh.add_release("acme/shop", "v1.0.0", published_at=NOW - timedelta(days=2))
    gh.add_release("acme/shop", "v1.1.0", draft=True, published_at=NOW)
    releases = (await _get(gh, "/repos/acme/shop/releases")).json()
    assert [(r["tag_name"], r["draft"], r["published_at"] is None) for r in releases] == [
        ("v1.1.0", True, True),
        ("v1.0.0", False, False),
    ]
    assert releases[1]["html_url"] == "https://github.com/acme/shop/releases/tag/v1.0.0"


async def test_a_workflows_runs_by_file_name_or_id_and_an_unknown_workflow_is_404(gh: GitHubEmulator) -> None:
    job = JobSpec("build", [StepSpec("make")])
    ci = gh.add_workflow_run("acme/shop", jobs=[job])
    deploy = gh.add_workflow_run("acme/shop", jobs=[job], name="Deploy", path=".github/workflows/deploy.yml")
    by_file = (await _get(gh, "/repos/acme/shop/actions/workflows/deploy.yml/runs")).json()
    assert (by_file["total_count"], by_file["workflow_runs"][0]["id"]) == (1, deploy.id)
    by_id = (
        await _get(gh, f"/repos/acme/shop/actions/workflows/{ci.workflow_id}/runs", status="success")
    ).json()
    assert [r["id"] for r in by_id["workflow_runs"]] == [ci.id]
    unknown = await _get(gh, "/repos/acme/shop/actions/workflows/nightly.yml/runs")
    assert unknown.status_code == 404


async def test_the_delivery_endpoints_need_the_token_and_take_faults(gh: GitHubEmulator) -> None:
    anonymous = await asyncio.to_thread(requests.get, f"{gh.api_url}/repos/acme/shop/releases", timeout=5)
    assert (anonymous.status_code, anonymous.json()["message"]) == (401, "Bad credentials")
    gh.fail_next("repos.list_deployments", 429)
    limited = await _get(gh, "/repos/acme/shop/deployments")
    assert limited.status_code == 429 and "secondary rate limit" in limited.json()["message"]
