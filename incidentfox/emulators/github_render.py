"""The GitHub emulator's JSON: each object in the shape GitHub's REST API documents, with the fields
PyGithub builds its objects from (``url``, ``html_url``, ``number``, ``sha``, the ``*_url`` links it
follows), so that lazily completed objects and paginated properties work against the emulator.

API links are absolute on the emulator (``Urls.api``); web links (``html_url``) use ``Urls.html``,
``https://github.com`` unless the emulator was told otherwise.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from incidentfox.emulators.github_models import (
    ChangedFile,
    Commit,
    Issue,
    IssueComment,
    PullRequest,
    Repo,
    ReviewComment,
    User,
    fake_sha,
    git_blob_sha,
)

Obj = dict[str, Any]


def iso(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None


def node_id(kind: str, number: int | str) -> str:
    return base64.b64encode(f"0:{kind}{number}".encode()).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class Urls:
    api: str
    html: str

    def repo(self, repo: Repo) -> str:
        return f"{self.api}/repos/{repo.full_name}"

    def web(self, repo: Repo) -> str:
        return f"{self.html}/{repo.full_name}"


def user_json(urls: Urls, user: User) -> Obj:
    return {
        "login": user.login,
        "id": user.id,
        "node_id": node_id("User", user.id),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
        "gravatar_id": "",
        "url": f"{urls.api}/users/{quote(user.login)}",
        "html_url": f"{urls.html}/{quote(user.login)}",
        "type": user.type,
        "site_admin": False,
    }


def repo_json(urls: Urls, repo: Repo) -> Obj:
    api, web = urls.repo(repo), urls.web(repo)
    return {
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": user_json(urls, repo.owner),
        "html_url": web,
        "description": repo.description or None,
        "fork": False,
        "url": api,
        "commits_url": f"{api}/commits{{/sha}}",
        "contents_url": f"{api}/contents/{{+path}}",
        "issues_url": f"{api}/issues{{/number}}",
        "issue_comment_url": f"{api}/issues/comments{{/number}}",
        "pulls_url": f"{api}/pulls{{/number}}",
        "hooks_url": f"{api}/hooks",
        "clone_url": f"{web}.git",
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.created_at),
        "pushed_at": iso(max((c.date for c in repo.commits.values()), default=repo.created_at)),
        "default_branch": repo.default_branch,
        "visibility": "private" if repo.private else "public",
        "archived": False,
        "disabled": False,
        "open_issues_count": sum(1 for i in repo.issues.values() if i.state == "open"),
        "topics": [],
        "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
    }


def changed_file_json(urls: Urls, repo: Repo, change: ChangedFile, ref: str) -> Obj:
    path = quote(change.filename)
    body: Obj = {
        "sha": git_blob_sha((change.content or "").encode()),
        "filename": change.filename,
        "status": change.status,
        "additions": change.additions,
        "deletions": change.deletions,
        "changes": change.additions + change.deletions,
        "blob_url": f"{urls.web(repo)}/blob/{ref}/{path}",
        "raw_url": f"{urls.web(repo)}/raw/{ref}/{path}",
        "contents_url": f"{urls.repo(repo)}/contents/{path}?ref={ref}",
    }
    if change.patch:
        body["patch"] = change.patch
    if change.previous_filename:
        body["previous_filename"] = change.previous_filename
    return body


def commit_json(urls: Urls, repo: Repo, commit: Commit, *, detail: bool = False) -> Obj:
    api = urls.repo(repo)
    person = {"name": commit.author.login, "email": commit.author.email, "date": iso(commit.date)}
    body: Obj = {
        "sha": commit.sha,
        "node_id": node_id("Commit", commit.sha[:12]),
        "commit": {
            "author": person,
            "committer": person,
            "message": commit.message,
            "tree": {
                "sha": fake_sha("tree", commit.sha),
                "url": f"{api}/git/trees/{fake_sha('tree', commit.sha)}",
            },
            "url": f"{api}/git/commits/{commit.sha}",
            "comment_count": 0,
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        },
        "url": f"{api}/commits/{commit.sha}",
        "html_url": f"{urls.web(repo)}/commit/{commit.sha}",
        "comments_url": f"{api}/commits/{commit.sha}/comments",
        "author": user_json(urls, commit.author),
        "committer": user_json(urls, commit.author),
        "parents": [
            {"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{urls.web(repo)}/commit/{p}"}
            for p in commit.parents
        ],
    }
    if detail:
        additions = sum(f.additions for f in commit.files)
        deletions = sum(f.deletions for f in commit.files)
        body["stats"] = {"total": additions + deletions, "additions": additions, "deletions": deletions}
        body["files"] = [changed_file_json(urls, repo, f, commit.sha) for f in commit.files]
    return body


def _branch_ref(urls: Urls, repo: Repo, branch: str, sha: str) -> Obj:
    return {
        "label": f"{repo.owner.login}:{branch}",
        "ref": branch,
        "sha": sha,
        "user": user_json(urls, repo.owner),
        "repo": repo_json(urls, repo),
    }


def pull_json(urls: Urls, repo: Repo, pr: PullRequest, *, detail: bool = False) -> Obj:
    api, web = f"{urls.repo(repo)}/pulls/{pr.number}", f"{urls.web(repo)}/pull/{pr.number}"
    issue_api = f"{urls.repo(repo)}/issues/{pr.number}"
    body: Obj = {
        "url": api,
        "id": pr.id,
        "node_id": node_id("PullRequest", pr.id),
        "html_url": web,
        "diff_url": f"{web}.diff",
        "patch_url": f"{web}.patch",
        "issue_url": issue_api,
        "commits_url": f"{api}/commits",
        "review_comments_url": f"{api}/comments",
        "review_comment_url": f"{urls.repo(repo)}/pulls/comments{{/number}}",
        "comments_url": f"{issue_api}/comments",
        "statuses_url": f"{urls.repo(repo)}/statuses/{pr.head_sha}",
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": user_json(urls, pr.user),
        "body": pr.body or None,
        "labels": [label_json(urls, repo, name) for name in pr.labels],
        "milestone": None,
        "created_at": iso(pr.created_at),
        "updated_at": iso(pr.updated_at),
        "closed_at": iso(pr.closed_at),
        "merged_at": iso(pr.merged_at),
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": _branch_ref(urls, repo, pr.head, pr.head_sha),
        "base": _branch_ref(urls, repo, pr.base, pr.base_sha),
        "_links": {
            "self": {"href": api},
            "html": {"href": web},
            "issue": {"href": issue_api},
            "comments": {"href": f"{issue_api}/comments"},
            "commits": {"href": f"{api}/commits"},
        },
        "author_association": "MEMBER",
        "auto_merge": None,
        "draft": pr.draft,
    }
    if detail:
        additions = sum(f.additions for f in pr.files)
        deletions = sum(f.deletions for f in pr.files)
        body.update(
            merged=pr.merged_at is not None,
            mergeable=None if pr.state == "closed" else True,
            mergeable_state="unknown" if pr.state == "closed" else "clean",
            merged_by=user_json(urls, pr.merged_by) if pr.merged_by else None,
            comments=sum(1 for c in repo.comments.values() if c.number == pr.number),
            review_comments=sum(1 for c in repo.review_comments.values() if c.number == pr.number),
            commits=1,
            additions=additions,
            deletions=deletions,
            changed_files=len(pr.files),
        )
    return body


def pull_diff_of(files: Sequence[ChangedFile]) -> str:
    """Changed files as one unified diff, as ``Accept: application/vnd.github.diff`` answers for a
    pull request or a commit."""
    parts: list[str] = []
    for change in files:
        old = change.previous_filename or change.filename
        head = [f"diff --git a/{old} b/{change.filename}"]
        if change.status == "added":
            head += ["new file mode 100644", "--- /dev/null", f"+++ b/{change.filename}"]
        elif change.status == "removed":
            head += ["deleted file mode 100644", f"--- a/{old}", "+++ /dev/null"]
        else:
            if change.previous_filename:
                head += [f"rename from {old}", f"rename to {change.filename}"]
            head += [f"--- a/{old}", f"+++ b/{change.filename}"]
        parts.append("\n".join([*head, change.patch]) if change.patch else "\n".join(head))
    return "\n".join(parts) + "\n" if parts else ""


def label_json(urls: Urls, repo: Repo, name: str) -> Obj:
    return {
        "id": int(fake_sha("label", name)[:8], 16),
        "node_id": node_id("Label", name),
        "url": f"{urls.repo(repo)}/labels/{quote(name)}",
        "name": name,
        "color": "d73a4a",
        "default": False,
        "description": None,
    }


def issue_json(urls: Urls, repo: Repo, issue: Issue) -> Obj:
    api = f"{urls.repo(repo)}/issues/{issue.number}"
    kind = "pull" if issue.is_pull else "issues"
    body: Obj = {
        "url": api,
        "repository_url": urls.repo(repo),
        "labels_url": f"{api}/labels{{/name}}",
        "comments_url": f"{api}/comments",
        "events_url": f"{api}/events",
        "html_url": f"{urls.web(repo)}/{kind}/{issue.number}",
        "id": issue.id,
        "node_id": node_id("Issue", issue.id),
        "number": issue.number,
        "title": issue.title,
        "user": user_json(urls, issue.user),
        "labels": [label_json(urls, repo, name) for name in issue.labels],
        "state": issue.state,
        "state_reason": "completed" if issue.state == "closed" else None,
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": sum(1 for c in repo.comments.values() if c.number == issue.number),
        "created_at": iso(issue.created_at),
        "updated_at": iso(issue.updated_at),
        "closed_at": iso(issue.closed_at),
        "author_association": "MEMBER",
        "body": issue.body or None,
    }
    if issue.is_pull:
        pr = repo.pulls[issue.number]
        body["pull_request"] = {
            "url": f"{urls.repo(repo)}/pulls/{issue.number}",
            "html_url": f"{urls.web(repo)}/pull/{issue.number}",
            "diff_url": f"{urls.web(repo)}/pull/{issue.number}.diff",
            "patch_url": f"{urls.web(repo)}/pull/{issue.number}.patch",
            "merged_at": iso(pr.merged_at),
        }
    return body


def comment_json(urls: Urls, repo: Repo, comment: IssueComment) -> Obj:
    kind = "pull" if repo.issues[comment.number].is_pull else "issues"
    return {
        "url": f"{urls.repo(repo)}/issues/comments/{comment.id}",
        "html_url": f"{urls.web(repo)}/{kind}/{comment.number}#issuecomment-{comment.id}",
        "issue_url": f"{urls.repo(repo)}/issues/{comment.number}",
        "id": comment.id,
        "node_id": node_id("IssueComment", comment.id),
        "user": user_json(urls, comment.user),
        "created_at": iso(comment.created_at),
        "updated_at": iso(comment.updated_at),
        "author_association": "NONE" if comment.user.type == "Bot" else "MEMBER",
        "body": comment.body,
        "performed_via_github_app": None,
    }


def review_comment_json(urls: Urls, repo: Repo, comment: ReviewComment) -> Obj:
    api = f"{urls.repo(repo)}/pulls/comments/{comment.id}"
    web = f"{urls.web(repo)}/pull/{comment.number}#discussion_r{comment.id}"
    pull_api = f"{urls.repo(repo)}/pulls/{comment.number}"
    body: Obj = {
        "url": api,
        "pull_request_review_id": comment.id + 7,
        "id": comment.id,
        "node_id": node_id("PullRequestReviewComment", comment.id),
        "diff_hunk": comment.diff_hunk,
        "path": comment.path,
        "commit_id": comment.commit_id,
        "original_commit_id": comment.commit_id,
        "user": user_json(urls, comment.user),
        "body": comment.body,
        "created_at": iso(comment.created_at),
        "updated_at": iso(comment.created_at),
        "html_url": web,
        "pull_request_url": pull_api,
        "author_association": "MEMBER",
        "_links": {"self": {"href": api}, "html": {"href": web}, "pull_request": {"href": pull_api}},
        "start_line": None,
        "original_start_line": None,
        "start_side": None,
        "line": comment.line,
        "original_line": comment.line,
        "side": "RIGHT",
        "subject_type": "line",
    }
    if comment.in_reply_to is not None:
        body["in_reply_to_id"] = comment.in_reply_to
    return body


def content_json(urls: Urls, repo: Repo, path: str, text: str, ref: str) -> Obj:
    data = text.encode()
    encoded = base64.b64encode(data).decode()
    api = f"{urls.repo(repo)}/contents/{quote(path)}?ref={quote(ref)}"
    sha = git_blob_sha(data)
    web = f"{urls.web(repo)}/blob/{ref}/{quote(path)}"
    git = f"{urls.repo(repo)}/git/blobs/{sha}"
    return {
        "type": "file",
        "encoding": "base64",
        "size": len(data),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n",
        "sha": sha,
        "url": api,
        "git_url": git,
        "html_url": web,
        "download_url": f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{quote(path)}",
        "_links": {"self": api, "git": git, "html": web},
    }


def directory_entry_json(urls: Urls, repo: Repo, path: str, kind: str, ref: str, size: int) -> Obj:
    api = f"{urls.repo(repo)}/contents/{quote(path)}?ref={quote(ref)}"
    web = f"{urls.web(repo)}/{'blob' if kind == 'file' else 'tree'}/{ref}/{quote(path)}"
    sha = fake_sha("entry", repo.full_name, path, ref)
    return {
        "type": kind,
        "size": size,
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": sha,
        "url": api,
        "git_url": f"{urls.repo(repo)}/git/{'blobs' if kind == 'file' else 'trees'}/{sha}",
        "html_url": web,
        "download_url": None,
        "_links": {"self": api, "html": web},
    }


def error_json(message: str, status: int, **extra: Any) -> Obj:
    docs = "https://docs.github.com/rest"
    return {"message": message, "documentation_url": docs, "status": str(status), **extra}
