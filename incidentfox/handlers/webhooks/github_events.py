"""GitHub webhook payloads: their shape, and what each event we act on means for a thread.

Only the fields IncidentFox uses are declared; anything else GitHub sends is ignored, so new fields
never break a delivery. A payload without the declared fields is a 400. Everything here is plain
text: rendering (and escaping) happens in ``blocks/``.

- A completed ``workflow_run`` (or a ``check_suite`` of another CI app) with a failing conclusion is a
  CI failure; its thread is the pull request's (``github:{owner/repo}#{number}``), or the run's own
  when it belongs to no pull request. GitHub Actions also reports each run as a ``check_suite``: that
  one is left to the ``workflow_run`` event, so one failure makes one investigation.
- An ``issue_comment`` or ``pull_request_review_comment`` that mentions the bot's handle is a question
  on that issue or pull request, whose thread it joins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from incidentfox.blocks.limits import one_line

FAILING = frozenset({"failure", "timed_out", "startup_failure"})
ACTIONS_APP = "github-actions"
DEFAULT_HANDLE = "@incidentfox"
QUESTION_MAX = 2_000
OWN_MARKER = "<!-- incidentfox:"
"""Every comment IncidentFox writes starts with a hidden marker of this form."""
_REPO = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Account(_Lenient):
    login: str = Field(min_length=1, max_length=100)
    type: str = "User"


class Repository(_Lenient):
    full_name: str = Field(min_length=3, max_length=140, pattern=_REPO)
    html_url: str | None = None


class PullRef(_Lenient):
    number: int = Field(ge=1)


class WorkflowRun(_Lenient):
    id: int = Field(ge=1)
    name: str | None = None
    conclusion: str | None = None
    head_branch: str | None = None
    head_sha: str = Field(min_length=7, max_length=64)
    html_url: str | None = None
    display_title: str | None = None
    run_attempt: int = 1
    pull_requests: list[PullRef] = Field(default_factory=list)
    updated_at: AwareDatetime | None = None


class App(_Lenient):
    slug: str | None = None
    name: str | None = None


class CheckSuite(_Lenient):
    id: int = Field(ge=1)
    conclusion: str | None = None
    head_branch: str | None = None
    head_sha: str = Field(min_length=7, max_length=64)
    app: App | None = None
    pull_requests: list[PullRef] = Field(default_factory=list)
    updated_at: AwareDatetime | None = None


class WorkflowRunEvent(_Lenient):
    action: str
    workflow_run: WorkflowRun
    repository: Repository
    sender: Account | None = None


class CheckSuiteEvent(_Lenient):
    action: str
    check_suite: CheckSuite
    repository: Repository
    sender: Account | None = None


class Issue(_Lenient):
    number: int = Field(ge=1)
    title: str | None = None
    html_url: str | None = None
    pull_request: dict[str, Any] | None = None
    """Present when the issue is a pull request's conversation."""


class Comment(_Lenient):
    id: int = Field(ge=1)
    body: str | None = None
    html_url: str | None = None
    user: Account
    created_at: AwareDatetime | None = None
    path: str | None = None
    line: int | None = None


class PullRequest(_Lenient):
    number: int = Field(ge=1)
    title: str | None = None
    html_url: str | None = None


class IssueCommentEvent(_Lenient):
    action: str
    issue: Issue
    comment: Comment
    repository: Repository
    sender: Account


class ReviewCommentEvent(_Lenient):
    action: str
    comment: Comment
    pull_request: PullRequest
    repository: Repository
    sender: Account


class PingEvent(_Lenient):
    zen: str | None = None
    hook_id: int | None = None
    repository: Repository | None = None


MODELS: dict[str, type[BaseModel]] = {
    "ping": PingEvent,
    "workflow_run": WorkflowRunEvent,
    "check_suite": CheckSuiteEvent,
    "issue_comment": IssueCommentEvent,
    "pull_request_review_comment": ReviewCommentEvent,
}
"""The events IncidentFox reads (``X-GitHub-Event``); any other one is answered 204."""


def thread_key(repo: str, number: int | None, *, run: str) -> str:
    """``github:{owner/repo}#{number}`` for a pull request or issue, else ``github:{owner/repo}/{run}``."""
    name = repo.lower()
    return f"github:{name}#{number}" if number is not None else f"github:{name}/{run}"


def _where(repo: str, number: int | None, branch: str | None, *, is_pull: bool = True) -> str:
    if number is not None:
        return f"{repo} {'PR' if is_pull else 'issue'} #{number}"
    return f"{repo} {branch}" if branch else repo


# -- CI failures ----------------------------------------------------------------------------------


def failed_ci(event: WorkflowRunEvent | CheckSuiteEvent) -> bool:
    """A completed run or suite with a failing conclusion (not a success, cancel, skip or neutral);
    a GitHub Actions suite is left to its ``workflow_run`` event."""
    if isinstance(event, CheckSuiteEvent):
        app = event.check_suite.app
        if app is not None and app.slug == ACTIONS_APP:
            return False
        conclusion = event.check_suite.conclusion
    else:
        conclusion = event.workflow_run.conclusion
    return event.action == "completed" and conclusion in FAILING


@dataclass(frozen=True, slots=True)
class CiFailure:
    """A failed run or suite, whichever event reported it."""

    repo: str
    workflow: str
    conclusion: str
    head_sha: str
    branch: str | None
    pulls: list[int]
    url: str | None
    subject: str | None
    actor: str | None
    run_id: int | None = None
    run_attempt: int = 1
    check_suite_id: int | None = None

    @classmethod
    def of(cls, event: WorkflowRunEvent | CheckSuiteEvent) -> CiFailure:
        repo = event.repository
        actor = event.sender.login if event.sender else None
        if isinstance(event, WorkflowRunEvent):
            run = event.workflow_run
            return cls(
                repo=repo.full_name,
                workflow=run.name or "CI",
                conclusion=run.conclusion or "failure",
                head_sha=run.head_sha,
                branch=run.head_branch,
                pulls=[p.number for p in run.pull_requests],
                url=run.html_url,
                subject=run.display_title,
                actor=actor,
                run_id=run.id,
                run_attempt=run.run_attempt,
            )
        suite = event.check_suite
        pulls = [p.number for p in suite.pull_requests]
        checks_page = f"{repo.html_url}/pull/{pulls[0]}/checks" if pulls and repo.html_url else None
        return cls(
            repo=repo.full_name,
            workflow=(suite.app.name or suite.app.slug or "Checks") if suite.app else "Checks",
            conclusion=suite.conclusion or "failure",
            head_sha=suite.head_sha,
            branch=suite.head_branch,
            pulls=pulls,
            url=checks_page,
            subject=None,
            actor=actor,
            check_suite_id=suite.id,
        )

    @property
    def number(self) -> int | None:
        return self.pulls[0] if self.pulls else None

    @property
    def key(self) -> str:
        own = f"runs/{self.run_id}" if self.run_id is not None else f"check-suites/{self.check_suite_id}"
        return thread_key(self.repo, self.number, run=own)

    def state(self) -> dict[str, Any]:
        """What the thread's root message shows about the failure."""
        return {
            "source": "github",
            "kind": "ci_failure",
            "repo": self.repo,
            "number": self.number,
            "is_pull": True,
            "subject": self.subject,
            "workflow": self.workflow,
            "conclusion": self.conclusion,
            "branch": self.branch,
            "sha": self.head_sha[:7],
            "actor": self.actor,
            "url": self.url,
        }

    def origin(self) -> dict[str, Any]:
        """What the investigation and the PR comment need: the run (or suite), its commit and its PRs."""
        origin: dict[str, Any] = {
            "kind": "ci_failure",
            "repo": self.repo,
            "workflow": self.workflow,
            "url": self.url,
            "head_sha": self.head_sha,
            "head_branch": self.branch,
            "pull_numbers": self.pulls,
        }
        if self.run_id is not None:
            origin.update(run_id=self.run_id, run_attempt=self.run_attempt)
        else:
            origin["check_suite_id"] = self.check_suite_id
        return origin

    def question(self) -> str:
        where = _where(self.repo, self.number, self.branch)
        if self.run_id is not None:
            what = (
                f"GitHub Actions workflow '{self.workflow}' (run {self.run_id}, attempt {self.run_attempt})"
            )
        else:
            what = f"The checks of {self.workflow} (check suite {self.check_suite_id})"
        return one_line(
            f"{what} ended {self.conclusion} on {where} at commit {self.repo}@{self.head_sha[:7]}. "
            "Which job and step failed, and why?"
        )


def happened_at(
    event: WorkflowRunEvent | CheckSuiteEvent | IssueCommentEvent | ReviewCommentEvent,
) -> datetime:
    """When the run or suite last changed, or the comment was written (now, when GitHub did not say)."""
    if isinstance(event, WorkflowRunEvent):
        at = event.workflow_run.updated_at
    elif isinstance(event, CheckSuiteEvent):
        at = event.check_suite.updated_at
    else:
        at = event.comment.created_at
    return at or datetime.now(UTC)


# -- questions asked with the bot's handle ----------------------------------------------------------


def bot_handle(configured: Any) -> str:
    """``@name`` from ``integrations.github.bot_handle`` (with or without its ``@``)."""
    text = str(configured).strip() if isinstance(configured, str) and configured.strip() else DEFAULT_HANDLE
    return text if text.startswith("@") else f"@{text}"


def _handle_pattern(handle: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w@/.-]){re.escape(handle)}(?![\w-])", re.IGNORECASE)


def _asking_lines(body: str) -> list[str]:
    """The comment's own lines: not those quoting another comment (``>``), nor inside code fences."""
    lines, fenced = [], False
    for line in body.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced and not line.lstrip().startswith(">"):
            lines.append(line)
    return lines


def asks(body: str | None, handle: str) -> bool:
    """Whether the comment mentions ``handle`` as a whole word (any case) outside quotes and code."""
    pattern = _handle_pattern(handle)
    return any(pattern.search(line) for line in _asking_lines(body or ""))


def question_of(body: str, handle: str) -> str:
    """The comment's question: its own lines without the handle, on one line."""
    text = one_line(_handle_pattern(handle).sub(" ", " ".join(_asking_lines(body))))
    return text[:QUESTION_MAX] or "What is wrong here?"


def by_the_bot(event: IssueCommentEvent | ReviewCommentEvent, handle: str) -> bool:
    """Written by a bot (IncidentFox's own comments included), or carrying IncidentFox's marker."""
    name = handle.removeprefix("@").lower()
    for account in (event.sender, event.comment.user):
        login = account.login.lower()
        if account.type == "Bot" or login in (name, f"{name}[bot]"):
            return True
    return OWN_MARKER in (event.comment.body or "")


def _subject(event: IssueCommentEvent | ReviewCommentEvent) -> tuple[int, bool, str | None, str | None]:
    """The number, whether it is a pull request, the title and the page of what was commented on."""
    if isinstance(event, IssueCommentEvent):
        issue = event.issue
        return issue.number, issue.pull_request is not None, issue.title, issue.html_url
    pull = event.pull_request
    return pull.number, True, pull.title, pull.html_url


def mention_key(event: IssueCommentEvent | ReviewCommentEvent) -> str:
    return thread_key(event.repository.full_name, _subject(event)[0], run="")


def conversation_state(event: IssueCommentEvent | ReviewCommentEvent) -> dict[str, Any]:
    """The root message of a thread that a question opens (a CI failure's thread keeps its own)."""
    number, is_pull, title, url = _subject(event)
    return {
        "source": "github",
        "kind": "conversation",
        "repo": event.repository.full_name,
        "number": number,
        "is_pull": is_pull,
        "subject": title,
        "author": event.comment.user.login,
        "url": url,
    }


def mention_origin(event: IssueCommentEvent | ReviewCommentEvent) -> dict[str, Any]:
    number, is_pull, _, _ = _subject(event)
    comment = event.comment
    origin: dict[str, Any] = {
        "kind": "mention",
        "repo": event.repository.full_name,
        "number": number,
        "is_pull": is_pull,
        "comment_id": comment.id,
        "comment_kind": "issue" if isinstance(event, IssueCommentEvent) else "review",
        "comment_url": comment.html_url,
        "author": comment.user.login,
    }
    if comment.path:
        origin.update(path=comment.path, line=comment.line)
    return origin


def mention_question(event: IssueCommentEvent | ReviewCommentEvent, handle: str) -> str:
    number, is_pull, title, _ = _subject(event)
    comment = event.comment
    where = _where(event.repository.full_name, number, None, is_pull=is_pull)
    on_line = f" (on {comment.path} line {comment.line})" if comment.path else ""
    titled = f' "{one_line(title)[:200]}"' if title else ""
    return one_line(
        f"{comment.user.login} asked on {where}{titled}{on_line}: {question_of(comment.body or '', handle)}"
    )
