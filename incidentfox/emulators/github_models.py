"""The GitHub emulator's data: users, repositories with a real commit graph, pull requests, issues,
comments, check runs and workflow runs. Plain dataclasses; ``github_store`` seeds them.

A repository's files are ``base_files`` (the tree before any seeded commit) with each commit's
changes applied along the first-parent chain, so "a file at a ref" is answered from history.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from incidentfox.emulators.github_actions import Job

FileStatus = Literal["added", "modified", "removed", "renamed"]


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def fake_sha(*parts: object) -> str:
    """A stable 40-hex id derived from ``parts`` (commit and tree shas of seeded data)."""
    return hashlib.sha1("\x00".join(str(p) for p in parts).encode()).hexdigest()


def git_blob_sha(content: bytes) -> str:
    """The sha git gives a blob with this content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\x00" % len(content) + content).hexdigest()


@dataclass(slots=True)
class User:
    login: str
    id: int
    type: str = "User"
    name: str = ""

    @property
    def email(self) -> str:
        return f"{self.login.replace('[bot]', '')}@users.noreply.github.com"


@dataclass(slots=True)
class ChangedFile:
    """One file of a commit or pull request, with its unified-diff ``patch`` (hunks only, as GitHub
    returns it: no ``---``/``+++`` header)."""

    filename: str
    patch: str = ""
    status: FileStatus = "modified"
    previous_filename: str | None = None
    content: str | None = None
    """The file's text after the change; commits apply it to the tree. ``None`` leaves the tree as it
    was (a patch-only change), except for a removal."""

    @property
    def additions(self) -> int:
        return sum(1 for line in self.patch.splitlines() if line.startswith("+"))

    @property
    def deletions(self) -> int:
        return sum(1 for line in self.patch.splitlines() if line.startswith("-"))

    @classmethod
    def between(cls, filename: str, before: str | None, after: str | None) -> ChangedFile:
        """The change from ``before`` to ``after`` (``None`` = absent), with a real unified diff."""
        old = (before or "").splitlines()
        new = (after or "").splitlines()
        lines = list(difflib.unified_diff(old, new, lineterm="", n=3))
        patch = "\n".join(line for line in lines[2:])
        status: FileStatus = "added" if before is None else "removed" if after is None else "modified"
        return cls(filename=filename, patch=patch, status=status, content=after)


@dataclass(slots=True)
class Commit:
    sha: str
    message: str
    author: User
    date: datetime
    parents: list[str]
    files: list[ChangedFile] = field(default_factory=list)


@dataclass(slots=True)
class PullRequest:
    number: int
    id: int
    title: str
    body: str
    user: User
    head: str
    base: str
    head_sha: str
    base_sha: str
    created_at: datetime
    updated_at: datetime
    state: Literal["open", "closed"] = "open"
    closed_at: datetime | None = None
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    merged_by: User | None = None
    files: list[ChangedFile] = field(default_factory=list)
    draft: bool = False
    labels: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Issue:
    """An issue, or the issue side of a pull request (``is_pull``): they share one number space."""

    number: int
    id: int
    title: str
    body: str
    user: User
    created_at: datetime
    updated_at: datetime
    is_pull: bool = False
    state: Literal["open", "closed"] = "open"
    closed_at: datetime | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)


@dataclass(slots=True)
class IssueComment:
    id: int
    number: int
    body: str
    user: User
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class ReviewComment:
    id: int
    number: int
    body: str
    user: User
    path: str
    line: int
    commit_id: str
    diff_hunk: str
    created_at: datetime
    in_reply_to: int | None = None


@dataclass(slots=True)
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: datetime
    completed_at: datetime | None
    check_suite_id: int
    title: str = ""
    summary: str = ""
    text: str = ""
    app_slug: str = "github-actions"


@dataclass(slots=True)
class WorkflowRun:
    id: int
    name: str
    workflow_id: int
    path: str
    run_number: int
    event: str
    status: str
    conclusion: str | None
    head_branch: str
    head_sha: str
    pull_requests: list[int]
    created_at: datetime
    updated_at: datetime
    actor: User
    check_suite_id: int
    display_title: str
    jobs: list[int] = field(default_factory=list)
    run_attempt: int = 1


@dataclass(slots=True)
class DeploymentStatus:
    id: int
    state: str
    """``error``, ``failure``, ``inactive``, ``in_progress``, ``queued``, ``pending`` or ``success``."""
    creator: User
    created_at: datetime
    description: str = ""
    log_url: str = ""
    environment_url: str = ""


@dataclass(slots=True)
class Deployment:
    """A deployment of ``sha`` (``ref`` as asked) to ``environment``; ``statuses`` oldest first."""

    id: int
    sha: str
    ref: str
    environment: str
    creator: User
    created_at: datetime
    task: str = "deploy"
    description: str = ""
    production_environment: bool = False
    statuses: list[DeploymentStatus] = field(default_factory=list)


@dataclass(slots=True)
class Release:
    id: int
    tag_name: str
    target_commitish: str
    name: str
    body: str
    author: User
    created_at: datetime
    published_at: datetime | None
    draft: bool = False
    prerelease: bool = False


@dataclass(slots=True)
class Repo:
    id: int
    owner: User
    name: str
    default_branch: str
    private: bool
    description: str
    created_at: datetime
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    base_files: dict[str, str] = field(default_factory=dict)
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    comments: dict[int, IssueComment] = field(default_factory=dict)
    review_comments: dict[int, ReviewComment] = field(default_factory=dict)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    runs: dict[int, WorkflowRun] = field(default_factory=dict)
    jobs: dict[int, Job] = field(default_factory=dict)
    deployments: dict[int, Deployment] = field(default_factory=dict)
    releases: dict[int, Release] = field(default_factory=dict)
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"

    def resolve(self, ref: str | None) -> Commit | None:
        """A branch name (``main``, ``refs/heads/main``), a full sha or a prefix of at least 7."""
        ref = (ref or self.default_branch).removeprefix("refs/heads/").removeprefix("heads/")
        sha = self.branches.get(ref, ref)
        if sha in self.commits:
            return self.commits[sha]
        if len(sha) >= 7:
            found = [c for s, c in self.commits.items() if s.startswith(sha.lower())]
            if len(found) == 1:
                return found[0]
        return None

    def history(self, head: Commit) -> list[Commit]:
        """Every commit reachable from ``head``, newest first (by commit date, then graph order)."""
        seen: dict[str, Commit] = {}
        pending = [head.sha]
        while pending:
            sha = pending.pop()
            if sha in seen or sha not in self.commits:
                continue
            seen[sha] = self.commits[sha]
            pending.extend(self.commits[sha].parents)
        order = {sha: i for i, sha in enumerate(seen)}
        return sorted(seen.values(), key=lambda c: (-c.date.timestamp(), order[c.sha]))

    def tree(self, commit: Commit | None) -> dict[str, str]:
        """Path → text of every file at ``commit`` (the base files when there is no commit)."""
        chain: list[Commit] = []
        node = commit
        while node is not None:
            chain.append(node)
            node = self.commits.get(node.parents[0]) if node.parents else None
        files = dict(self.base_files)
        for change in (f for c in reversed(chain) for f in c.files):
            if change.status == "removed":
                files.pop(change.filename, None)
                continue
            if change.previous_filename:
                moved = files.pop(change.previous_filename, None)
                if change.content is None and moved is not None:
                    files[change.filename] = moved
            if change.content is not None:
                files[change.filename] = change.content
        return files
