"""What the github tools share in reading PyGithub objects into compact rows, and in their parameters:
times in RFC3339, a commit's first line, changed files with their patches while a patch budget lasts
(summarised by hunk past it), the repository a tool uses when none is named."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from incidentfox.agents.toolsets.github_api import GitHubClient
from incidentfox.agents.toolsets.github_writes import REPO_PATTERN

FILE_PATCH_CHARS = 2_500
"""The longest patch shown whole when a file is not asked for by name."""
HUNK = re.compile(r"^@@ [^@]+ @@.*$", re.MULTILINE)
NO_REPO = "Name the repository (owner/name): this team has no GitHub repository in routing.github_repos."


class GitHubParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def repo_field() -> Any:
    return Field(
        default=None, pattern=REPO_PATTERN, description="owner/name; null for the team's repository."
    )


def repo_name(client: GitHubClient, repo: str | None) -> str | None:
    return repo or client.default_repo


def iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None


def first_line(text: str | None, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def login(user: Any) -> str | None:
    """A PyGithub user's login, or ``None`` when GitHub names nobody."""
    return str(user.login) if user is not None else None


def commit_row(commit: Any) -> dict[str, Any]:
    author = commit.author.login if commit.author else commit.commit.author.name
    return {
        "sha": commit.sha[:12],
        "time": iso(commit.commit.author.date),
        "author": author,
        "message": first_line(commit.commit.message),
        "url": commit.html_url,
    }


def file_row(change: Any, budget: list[int], *, whole: bool) -> dict[str, Any]:
    """One changed file; its patch while the answer's patch budget (``budget[0]`` characters) lasts,
    else a per-file summary of its hunks."""
    row: dict[str, Any] = {
        "file": change.filename,
        "status": change.status,
        "additions": change.additions,
        "deletions": change.deletions,
    }
    if change.previous_filename:
        row["previous_file"] = change.previous_filename
    patch = change.patch or ""
    if not patch:
        row["patch"] = None
        row["note"] = "no patch: a binary file, or too large for GitHub to show"
    elif whole or (len(patch) <= FILE_PATCH_CHARS and len(patch) <= budget[0]):
        row["patch"] = patch
        budget[0] -= len(patch)
    else:
        row["patch"] = None
        row["hunks"] = HUNK.findall(patch)[:12]
        row["note"] = f"patch of {len(patch)} characters omitted; ask with file={change.filename}"
    return row
