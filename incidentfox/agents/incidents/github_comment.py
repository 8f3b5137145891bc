"""The GitHub write-back: the CI analysis on the pull request a failed run belongs to (one comment per
pull request, edited on later failures), and the answer to a comment that mentioned the bot (a reply
in the same place: the issue or pull request's conversation, or the line comment's review thread).

Owed unless the team turned comments off (``integrations.github.post_comments: false``) or gave no
token to write with. Delivery is made idempotent by a hidden marker per comment, so a retry after
GitHub took a write but failed to answer never posts it twice.

Failures: a rate limit (403/429 with ``Retry-After`` or ``X-RateLimit-Remaining: 0``) is retried after
the wait GitHub names, a 5xx or a network failure with backoff; anything else (bad token, no
permission, the pull request gone) cannot succeed by retrying and is reported at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import requests
import urllib3
from github import GithubException, RateLimitExceededException
from github.GithubException import RateLimitExceededExceedsMaxWait

from incidentfox.agents.incidents.writeback import DeliveryContext, WriteBack, WriteBackFailed
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.agents.toolsets.base import lookup_dotted
from incidentfox.agents.toolsets.github_api import (
    ClientOptions,
    GitHubNotConfigured,
    connect,
    describe_failure,
    github_configured,
)
from incidentfox.agents.toolsets.github_writes import reply_to_review_comment, upsert_marked_comment
from incidentfox.blocks.github_markdown import CI_MARKER, answer_comment, answer_marker, ci_comment

log = logging.getLogger(__name__)
KIND = "github_comment"
MAX_PULLS = 3
"""A run's head commit may be on several pull requests; the analysis goes on the first few."""
SECONDARY_WAIT_S = 60.0
"""GitHub's advice for a secondary rate limit that names no wait: at least a minute."""
WRITE_OPTIONS = ClientOptions(
    timeout_s=15,
    retries=0,
    max_rate_limit_wait_s=0,
    secondary_rate_wait_s=0,
    seconds_between_requests=None,
    seconds_between_writes=None,
)
"""No waiting inside the client: the notifier owns retries and waits, and never blocks a thread."""


def _ci_writes(origin: Mapping[str, Any], outcome: InvestigationOutcome) -> list[WriteBack]:
    repo = str(origin["repo"])
    body = ci_comment(
        workflow=str(origin.get("workflow") or "CI"),
        run_url=origin.get("url"),
        sha=str(origin.get("head_sha") or ""),
        rca=outcome.rca,
        error=outcome.error,
    )
    numbers = [n for n in origin.get("pull_numbers") or [] if isinstance(n, int)][:MAX_PULLS]
    return [
        WriteBack(KIND, f"ci:{repo}#{n}", body, {"repo": repo, "number": n, "marker": CI_MARKER})
        for n in numbers
    ]


def _answer(origin: Mapping[str, Any], outcome: InvestigationOutcome) -> list[WriteBack]:
    comment_id = int(origin["comment_id"])
    body = answer_comment(
        comment_id=comment_id,
        asker=origin.get("author"),
        question_url=origin.get("comment_url"),
        rca=outcome.rca,
        error=outcome.error,
    )
    target = {
        "repo": str(origin["repo"]),
        "number": int(origin["number"]),
        "marker": answer_marker(comment_id),
        "reply_to": comment_id if origin.get("comment_kind") == "review" else None,
    }
    return [WriteBack(KIND, f"answer:{comment_id}", body, target)]


def _rate_limit_wait(exc: GithubException) -> float | None:
    """How long GitHub asked to wait, when ``exc`` is a rate limit; ``None`` when it is not one."""
    if isinstance(exc, RateLimitExceededExceedsMaxWait) and exc.wait is not None:
        return float(exc.wait)
    headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
    retry_after, reset = headers.get("retry-after", ""), headers.get("x-ratelimit-reset", "")
    exhausted = headers.get("x-ratelimit-remaining") == "0"
    if not isinstance(exc, RateLimitExceededException) and not (
        exc.status in (403, 429) and (retry_after or exhausted)
    ):
        return None
    if retry_after.isdigit():
        return float(retry_after)
    if exhausted and reset.isdigit():
        return max(0.0, int(reset) - time.time())
    return SECONDARY_WAIT_S


def _failure(exc: Exception, api_url: str, doing: str) -> WriteBackFailed:
    if isinstance(exc, GithubException):
        wait = _rate_limit_wait(exc)
        if wait is not None:
            return WriteBackFailed(describe_failure(exc, api_url, doing), retry_after=wait)
        if exc.status >= 500:
            return WriteBackFailed(f"GitHub kept answering {exc.status} when IncidentFox tried to {doing}.")
        return WriteBackFailed(describe_failure(exc, api_url, doing), final=True)
    transient = isinstance(exc, requests.exceptions.RequestException | urllib3.exceptions.HTTPError | OSError)
    return WriteBackFailed(describe_failure(exc, api_url, doing), final=not transient)


class GitHubComment:
    kind = KIND

    def owed(
        self, origin: Mapping[str, Any], outcome: InvestigationOutcome, config: Mapping[str, Any]
    ) -> list[WriteBack]:
        if not str(origin.get("incident_key") or "").startswith("github:") or not origin.get("repo"):
            return []
        if lookup_dotted(config, "integrations.github.post_comments") is False:
            return []
        if not github_configured(config):
            return []
        if origin.get("kind") == "ci_failure":
            return _ci_writes(origin, outcome)
        if origin.get("kind") == "mention" and origin.get("comment_id") and origin.get("number"):
            return _answer(origin, outcome)
        return []

    async def deliver(self, write: WriteBack, context: DeliveryContext) -> None:
        repo, number = str(write.target.get("repo")), int(write.target.get("number") or 0)
        marker, reply_to = str(write.target.get("marker")), write.target.get("reply_to")
        what = "the answer" if write.key.startswith("answer:") else "the CI analysis"
        doing = f"post {what} on {repo}#{number}"
        try:
            client = await connect(context.config, WRITE_OPTIONS)
        except GitHubNotConfigured as exc:
            raise WriteBackFailed(f"Could not {doing}: {exc}", final=True) from exc
        try:
            if isinstance(reply_to, int):
                posted = await reply_to_review_comment(
                    client, repo, number, reply_to, write.content, marker=marker
                )
            else:
                posted = await upsert_marked_comment(client, repo, number, write.content, marker=marker)
        except Exception as exc:
            raise _failure(exc, client.api_url, doing) from exc
        finally:
            client.close()
        log.info(
            "github comment %s repo=%s number=%d", "posted" if posted.created else "edited", repo, number
        )
