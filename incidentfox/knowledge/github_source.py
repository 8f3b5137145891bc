"""Runbooks from a path in a GitHub repository the team claims (``routing.github_repos``).

``import_github_runbooks`` reads every markdown file (``.md``, ``.markdown``) under the path, at most
``MAX_FILES`` and ``MAX_DEPTH`` folders deep, with the team's own GitHub integration (the github
toolset's client: same token, egress policy and retries), and adds each as a runbook cited as
``github/{repo}/{path}`` and linked to the file on GitHub. Files that cannot be read as runbooks are
skipped with the reason; runbooks imported earlier from the same path whose file is gone are removed.
GitHub's refusals (bad token, no access, not found, rate limit) come back as one plain sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incidentfox.agents.toolsets.base import lookup_dotted
from incidentfox.agents.toolsets.github_api import (
    DEFAULT_OPTIONS,
    ClientOptions,
    GitHubClient,
    GitHubNotConfigured,
    connect,
    describe_failure,
)
from incidentfox.knowledge.store import KnowledgeBase, TeamKey, UploadReport

MAX_FILES = 200
MAX_DEPTH = 5
MARKDOWN = (".md", ".markdown")
PREFIX = "github"


class GitHubSourceError(Exception):
    """The import could not run; ``str()`` is one plain sentence for the person who asked."""


@dataclass(frozen=True, slots=True)
class MarkdownFile:
    path: str
    raw: bytes
    url: str | None


@dataclass(slots=True)
class GitHubImport:
    repo: str
    path: str
    report: UploadReport
    removed: list[str] = field(default_factory=list)
    more: bool = False
    """True when the path holds more than ``MAX_FILES`` markdown files (the rest were not read)."""


def claimed_repos(config: Mapping[str, Any]) -> set[str]:
    claims = lookup_dotted(config, "routing.github_repos")
    return {str(c).lower() for c in claims} if isinstance(claims, list) else set()


def source_prefix(repo: str, path: str) -> str:
    folder = path.strip("/")
    return f"{PREFIX}/{repo.lower()}/" + (f"{folder}/" if folder else "")


async def import_github_runbooks(
    knowledge: KnowledgeBase,
    team: TeamKey,
    config: Mapping[str, Any],
    *,
    repo: str,
    path: str,
    ref: str | None = None,
    options: ClientOptions = DEFAULT_OPTIONS,
) -> GitHubImport:
    """Import (or refresh) the runbooks under ``path`` of ``repo``; ``GitHubSourceError`` when it
    cannot be read at all."""
    if repo.lower() not in claimed_repos(config):
        raise GitHubSourceError(
            f"The team does not claim the repository {repo}: add it to routing.github_repos first."
        )
    folder = path.strip("/")
    try:
        client = await connect(config, options)
    except GitHubNotConfigured as exc:
        raise GitHubSourceError(str(exc)) from None
    try:
        files, more = await client.call(_markdown_files, client, repo, folder, ref)
    except Exception as exc:
        doing = f"read {folder or 'the top folder'} in {repo}" + (f" at {ref}" if ref else "")
        raise GitHubSourceError(describe_failure(exc, client.api_url, doing)) from None
    finally:
        client.close()
    prefix = source_prefix(repo, folder)
    documents: list[tuple[object, object]] = [(f"{PREFIX}/{repo.lower()}/{f.path}", f.raw) for f in files]
    urls = {f"{PREFIX}/{repo.lower()}/{f.path}": f.url for f in files if f.url}
    report = await knowledge.add_runbooks(team, documents, urls=urls)
    removed = (
        []
        if more
        else await knowledge.remove_runbooks_under(team, prefix, keep=[a.path for a in report.added])
    )
    return GitHubImport(repo=repo, path=folder, report=report, removed=removed, more=more)


def _markdown_files(
    client: GitHubClient, repo: str, folder: str, ref: str | None
) -> tuple[list[MarkdownFile], bool]:
    """Every markdown file under ``folder`` (blocking: runs on the client's worker thread)."""
    handle = client.repo(repo)

    def get(path: str) -> Any:
        return handle.get_contents(path, ref=ref) if ref else handle.get_contents(path)

    found: list[MarkdownFile] = []
    pending: list[tuple[str, int]] = [(folder, 0)]
    while pending:
        where, depth = pending.pop(0)
        listed = get(where)
        if not isinstance(listed, list):
            if listed.path.lower().endswith(MARKDOWN):
                found.append(MarkdownFile(listed.path, listed.decoded_content, listed.html_url))
            continue
        for entry in sorted(listed, key=lambda e: e.path):
            if entry.type == "dir" and depth < MAX_DEPTH:
                pending.append((entry.path, depth + 1))
            elif entry.type == "file" and entry.path.lower().endswith(MARKDOWN):
                if len(found) == MAX_FILES:
                    return found, True
                content = get(entry.path)
                found.append(MarkdownFile(entry.path, content.decoded_content, content.html_url))
    return found, False
