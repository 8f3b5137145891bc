"""Write tools of the github toolset: comment on a pull request or issue, open an issue.

The tools are declared ``writes=True``: the function-tool adapter runs them only after a person
approved the exact action in Slack (``agents/approvals``). Their params therefore name the repository
explicitly (a write never guesses it), carry a reason shown to the approver, and describe the action
with a preview of the text that will be posted. Failures come back as ``ToolResult.failed`` with one
plain sentence, as the read tools' do.

``upsert_marked_comment`` is not a tool: it is the write-back a configured integration makes without
asking (design §6), such as the CI analysis on a pull request. It keeps one comment per pull request,
found by a hidden marker and edited on later runs instead of piling up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, cast

from github.GithubException import GithubException
from github.NamedUser import NamedUser
from github.Organization import Organization
from pydantic import AfterValidator, BaseModel, Field

from incidentfox.agents.approvals.models import ActionDescription
from incidentfox.agents.toolsets.base import Tool, ToolFunction, ToolResult
from incidentfox.agents.toolsets.github_api import GitHubClient, api_failure
from incidentfox.agents.toolsets.write_params import Reason, WriteParams

P = TypeVar("P", bound=BaseModel)
REPO_PATTERN = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
MAX_BODY_CHARS = 65_536
"""GitHub refuses a comment or issue body longer than this."""
MAX_TITLE_CHARS = 256
PREVIEW_CHARS = 160


def _checked_body(text: str) -> str:
    if not text.strip():
        raise ValueError("the text to post is empty")
    if len(text) > MAX_BODY_CHARS:
        raise ValueError(f"GitHub accepts at most {MAX_BODY_CHARS} characters; shorten the text")
    return text


def _checked_title(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise ValueError("the issue needs a title")
    if len(text) > MAX_TITLE_CHARS:
        raise ValueError(f"keep the title under {MAX_TITLE_CHARS} characters")
    return text


def _checked_labels(labels: list[str]) -> list[str]:
    if len(labels) > 10 or any(not label.strip() or len(label) > 50 for label in labels):
        raise ValueError("give at most 10 labels of 1 to 50 characters")
    return [label.strip() for label in labels]


Body = Annotated[str, AfterValidator(_checked_body)]
Title = Annotated[str, AfterValidator(_checked_title)]
Labels = Annotated[list[str], AfterValidator(_checked_labels)]


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def _repo() -> Any:
    return Field(pattern=REPO_PATTERN, description="owner/name of the repository (required).")


def _reason() -> Any:
    return Field(description="One sentence for the person who must approve this: why it helps now.")


class CommentParams(WriteParams):
    repo: str = _repo()
    number: int = Field(ge=1, description="Pull request or issue number.")
    body: Body = Field(description="The comment, in GitHub Markdown.")
    reason: Reason = _reason()

    def describe_action(self) -> ActionDescription:
        target = f"{self.repo}#{self.number}: “{_preview(self.body)}”"
        return ActionDescription("comment on", target, self.reason)


class OpenIssueParams(WriteParams):
    repo: str = _repo()
    title: Title = Field(description="The issue's title.")
    body: Body = Field(description="The issue's description, in GitHub Markdown.")
    labels: Labels = Field(default_factory=list, description="Existing label names to apply.")
    reason: Reason = _reason()

    def describe_action(self) -> ActionDescription:
        return ActionDescription("open an issue in", f"{self.repo}: “{_preview(self.title)}”", self.reason)


async def comment(client: GitHubClient, params: CommentParams) -> ToolResult:
    invocation = f"gh issue comment {params.number} -R {params.repo}"

    def post() -> Any:
        return client.repo(params.repo).get_issue(params.number).create_comment(params.body)

    try:
        posted = await client.call(post)
    except Exception as exc:
        return api_failure(exc, client, f"comment on {params.repo}#{params.number}", invocation)
    data = {
        "summary": f"Commented on {params.repo}#{params.number}.",
        "comment_id": posted.id,
        "url": posted.html_url,
    }
    return ToolResult.ok(data, invocation=invocation, url=posted.html_url)


async def open_issue(client: GitHubClient, params: OpenIssueParams) -> ToolResult:
    invocation = f"gh issue create -R {params.repo} --title {params.title!r}"

    def create() -> Any:
        return client.repo(params.repo).create_issue(
            title=params.title, body=params.body, labels=list(params.labels)
        )

    try:
        issue = await client.call(create)
    except Exception as exc:
        return api_failure(exc, client, f"open an issue in {params.repo}", invocation)
    data = {
        "summary": f"Opened issue {params.repo}#{issue.number}: {params.title}",
        "number": issue.number,
        "url": issue.html_url,
    }
    return ToolResult.ok(data, invocation=invocation, url=issue.html_url)


@dataclass(frozen=True, slots=True)
class PostedComment:
    comment_id: int
    url: str
    created: bool
    """False when an earlier comment with the same marker was edited instead."""


def _marked(body: str, marker: str) -> tuple[str, str]:
    """The hidden tag of ``marker`` and ``body`` carrying it (as its first line unless it has it)."""
    tag = f"<!-- {marker} -->"
    return tag, body if tag in body else f"{tag}\n{body}"


Author = NamedUser | Organization


def _authored_by_token(client: GitHubClient) -> Callable[[Author | None], bool]:
    """Whether a comment's author is the identity of this token, so that a marker someone else
    copied into their own comment can never make IncidentFox edit it.

    A personal or fine-grained token has a user (``GET /user``); a GitHub App installation token has
    none (GitHub answers 403), and its comments are by the app's bot account.
    """
    try:
        login: str | None = client.gh.get_user().login
    except GithubException:
        login = None

    def ours(user: Author | None) -> bool:
        if user is None:
            return False
        return user.login == login if login else user.type == "Bot"

    return ours


def upsert_marked_comment_sync(
    client: GitHubClient, repo: str, number: int, body: str, marker: str
) -> PostedComment:
    """The blocking body of ``upsert_marked_comment`` (runs on a worker thread)."""
    issue = client.repo(repo).get_issue(number)
    tag, text = _marked(body, marker)
    ours = _authored_by_token(client)
    earlier = [c for c in issue.get_comments() if tag in (c.body or "") and ours(c.user)]
    if earlier:
        target = earlier[-1]
        target.edit(text)
        return PostedComment(target.id, target.html_url, created=False)
    posted = issue.create_comment(text)
    return PostedComment(posted.id, posted.html_url, created=True)


async def upsert_marked_comment(
    client: GitHubClient, repo: str, number: int, body: str, *, marker: str = "incidentfox:ci-analysis"
) -> PostedComment:
    """Post ``body`` on pull request or issue ``number``, or edit the comment posted before with the
    same ``marker`` (kept as a hidden HTML comment in the text). Raises what PyGithub raises;
    ``describe_failure`` words it."""
    return await client.call(upsert_marked_comment_sync, client, repo, number, body, marker)


def reply_to_review_comment_sync(
    client: GitHubClient, repo: str, number: int, comment_id: int, body: str, marker: str
) -> PostedComment:
    """The blocking body of ``reply_to_review_comment`` (runs on a worker thread)."""
    pull = client.repo(repo).get_pull(number)
    tag, text = _marked(body, marker)
    ours = _authored_by_token(client)
    earlier = [c for c in pull.get_review_comments() if tag in (c.body or "") and ours(c.user)]
    if earlier:
        return PostedComment(earlier[-1].id, earlier[-1].html_url, created=False)
    posted = pull.create_review_comment_reply(comment_id, text)
    return PostedComment(posted.id, posted.html_url, created=True)


async def reply_to_review_comment(
    client: GitHubClient, repo: str, number: int, comment_id: int, body: str, *, marker: str
) -> PostedComment:
    """Reply in the review thread of line comment ``comment_id`` on pull request ``number``, unless a
    reply carrying ``marker`` is there already (a retry after GitHub took the first one)."""
    return await client.call(reply_to_review_comment_sync, client, repo, number, comment_id, body, marker)


def _write_tool(
    name: str, description: str, params: type[P], run: Callable[[GitHubClient, P], Awaitable[ToolResult]]
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run), writes=True)


WRITE_INSTRUCTIONS = """Writes to GitHub run only after a person approves them in Slack: comment (on a pull
request or issue) and open_issue. Use one only when the user asked for it or the finding belongs on
GitHub, name the repository explicitly, keep the text factual with its evidence, and give the reason in
one sentence. The tool waits for the decision and says whether it ran; never retry a refused action."""

WRITE_TOOLS: tuple[Tool, ...] = (
    _write_tool(
        "comment",
        "Post a comment on a pull request or issue. Needs approval in Slack.",
        CommentParams,
        comment,
    ),
    _write_tool(
        "open_issue",
        "Open an issue in a repository (e.g. a follow-up from an incident). Needs approval in Slack.",
        OpenIssueParams,
        open_issue,
    ),
)
