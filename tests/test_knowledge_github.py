"""Runbooks imported from a path of a GitHub repository the team claims, read with the team's own
GitHub integration from the GitHub emulator over real HTTP: cited by their GitHub path and linked to
the file, refreshed when files go away, and GitHub's refusals as one plain sentence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from incidentfox.agents.toolsets.github_api import ClientOptions
from incidentfox.bot.runtime import Runtime
from incidentfox.bot.server import create_app
from incidentfox.db.engine import SessionFactory
from incidentfox.emulators.github import GitHubEmulator
from incidentfox.knowledge import views
from incidentfox.knowledge.github_source import GitHubSourceError, import_github_runbooks
from incidentfox.knowledge.store import KnowledgeBase
from tests.conftest import Api
from tests.knowledge_world import EMBEDDER, RUNBOOKS, TEAM, migrated

REPO = "acme/platform-docs"
FAST = ClientOptions(
    timeout_s=5,
    retries=0,
    backoff_factor=0,
    max_rate_limit_wait_s=0,
    seconds_between_requests=None,
    seconds_between_writes=None,
)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    async with migrated(database_url) as factory:
        yield factory


@pytest.fixture
async def gh() -> AsyncIterator[GitHubEmulator]:
    async with GitHubEmulator() as emulator:
        emulator.add_repo(
            REPO,
            files={
                "README.md": "# Platform docs\n\nIndex of everything the platform team writes.",
                "runbooks/postgres-connections.md": RUNBOOKS["runbooks/postgres-connections.md"],
                "runbooks/network/dns-resolution.md": RUNBOOKS["runbooks/dns-resolution.md"],
                "runbooks/network/diagram.txt": "not markdown, never imported",
                "runbooks/draft.md": "---\ntitle: Draft, its fence never closed\n\n# Draft\n\nTo be written.",
            },
        )
        yield emulator


def _config(gh: GitHubEmulator, **github: Any) -> dict[str, Any]:
    return {
        "routing": {"github_repos": [REPO]},
        "integrations": {"github": {"token": gh.token, "api_url": gh.api_url, **github}},
    }


async def test_markdown_under_the_path_becomes_cited_runbooks(
    sessions: SessionFactory, gh: GitHubEmulator
) -> None:
    knowledge = KnowledgeBase(sessions, EMBEDDER)
    imported = await import_github_runbooks(
        knowledge, TEAM, _config(gh), repo=REPO, path="runbooks/", options=FAST
    )
    assert [a.path for a in imported.report.added] == [
        "github/acme/platform-docs/runbooks/postgres-connections.md",
        "github/acme/platform-docs/runbooks/network/dns-resolution.md",
    ]
    assert [(s.path, s.reason) for s in imported.report.skipped] == [
        (
            "github/acme/platform-docs/runbooks/draft.md",
            "its front matter starts with '---' on the first line but is never closed by another '---'",
        )
    ]
    found = await knowledge.search(TEAM, "service hostnames stopped resolving inside the cluster", limit=1)
    top = found.hits[0]
    assert top.citation.startswith("runbook github/acme/platform-docs/runbooks/network/dns-resolution.md § ")
    assert top.url == "https://github.com/acme/platform-docs/blob/main/runbooks/network/dns-resolution.md"

    del gh.repos[REPO].base_files["runbooks/postgres-connections.md"]
    again = await import_github_runbooks(
        knowledge, TEAM, _config(gh), repo=REPO, path="runbooks", options=FAST
    )
    assert again.removed == ["github/acme/platform-docs/runbooks/postgres-connections.md"]
    assert {d["source"] for d in await knowledge.documents(TEAM)} == {
        "github/acme/platform-docs/runbooks/network/dns-resolution.md"
    }


async def test_github_refusals_are_one_plain_sentence(sessions: SessionFactory, gh: GitHubEmulator) -> None:
    knowledge = KnowledgeBase(sessions, EMBEDDER)
    with pytest.raises(GitHubSourceError, match=r"does not claim the repository acme/other"):
        await import_github_runbooks(knowledge, TEAM, _config(gh), repo="acme/other", path="", options=FAST)
    wrong = _config(gh, token="ghp_wrongtoken000000000000000000000000")
    with pytest.raises(GitHubSourceError) as refused:
        await import_github_runbooks(knowledge, TEAM, wrong, repo=REPO, path="runbooks", options=FAST)
    assert str(refused.value) == (
        f"GitHub at {gh.api_url} rejected the token (401 Bad credentials). "
        "Check integrations.github.token in the team's GitHub integration."
    )
    assert "ghp_wrong" not in str(refused.value)
    with pytest.raises(
        GitHubSourceError, match=r"Could not read nowhere in acme/platform-docs: GitHub answered 404"
    ):
        await import_github_runbooks(knowledge, TEAM, _config(gh), repo=REPO, path="nowhere", options=FAST)
    gh.fail_next("*", 429, retry_after=30)
    with pytest.raises(GitHubSourceError, match=r"rate limit"):
        await import_github_runbooks(knowledge, TEAM, _config(gh), repo=REPO, path="runbooks", options=FAST)
    assert await knowledge.documents(TEAM) == []


async def test_the_config_api_imports_with_the_teams_integration(
    runtime: Runtime, gh: GitHubEmulator
) -> None:
    app = create_app(runtime)
    views.add_routes(app, KnowledgeBase(runtime.sessions, EMBEDDER))
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        api = Api(client)
        org = await api.create_org("acme")
        await api.create_node("acme", "payments", "acme", "team", org)
        await api.ok("PATCH", "/api/v1/orgs/acme/nodes/payments/config", token=org, json=_config(gh))
        path = "/api/v1/orgs/acme/nodes/payments/knowledge/github"
        body = await api.ok("POST", path, token=org, json={"repo": REPO, "path": "runbooks", "ref": None})
        assert len(body["added"]) == 2 and body["removed"] == [] and body["more"] is False
        assert "never closed" in body["skipped"][0]["reason"]
        status, refused = await api.call("POST", path, token=org, json={"repo": "acme/elsewhere", "path": ""})
        assert status == 400 and refused["error"] == "github_import_failed"
        assert "routing.github_repos" in refused["message"]
    finally:
        await client.close()
