"""GitHub webhooks from the emulator: documented payload shapes, and a sender that signs and POSTs
them the way GitHub's Hookshot does.

A delivery is one POST of the minified JSON body with ``Content-Type: application/json``,
``User-Agent: GitHub-Hookshot/<version>``, ``X-GitHub-Event``, ``X-GitHub-Delivery`` (a UUID),
``X-GitHub-Hook-ID``, ``X-GitHub-Hook-Installation-Target-Type``/``-ID`` and, when the hook has a
secret, ``X-Hub-Signature`` (HMAC-SHA1, legacy) and ``X-Hub-Signature-256``
(``sha256=<hex HMAC-SHA256 of the exact body bytes>``).

The payload builders take the emulator's own objects, so the ids in a payload (run id, PR number,
comment id) are the ones the emulated API serves afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from incidentfox.emulators import github_render as render
from incidentfox.emulators import github_render_actions as actions_render
from incidentfox.emulators.github_models import CheckRun, IssueComment, Repo, ReviewComment, User, WorkflowRun
from incidentfox.emulators.github_render import Obj, Urls, iso, node_id

HOOKSHOT_USER_AGENT = "GitHub-Hookshot/8e03811"
ZEN = "Keep it logically awesome."


def signature_256(secret: str | bytes, body: bytes) -> str:
    """``X-Hub-Signature-256``: ``sha256=`` and the hex HMAC-SHA256 of the body under the secret."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def signature_sha1(secret: str | bytes, body: bytes) -> str:
    """The legacy ``X-Hub-Signature`` GitHub still sends beside the SHA-256 one."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One delivery as sent, and the receiver's answer."""

    url: str
    event: str
    delivery_id: str
    headers: dict[str, str]
    body: bytes
    status: int
    response_text: str

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


async def deliver(
    url: str,
    event: str,
    payload: Obj,
    *,
    secret: str | bytes | None,
    hook_id: int,
    target_id: int,
    delivery_id: str | None = None,
    timeout_s: float = 10.0,
) -> WebhookDelivery:
    """POST one webhook delivery to ``url`` (GitHub gives receivers 10 seconds)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    delivery = delivery_id or str(uuid.uuid4())
    headers = {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "User-Agent": HOOKSHOT_USER_AGENT,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": str(hook_id),
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": str(target_id),
    }
    if secret is not None:
        headers["X-Hub-Signature"] = signature_sha1(secret, body)
        headers["X-Hub-Signature-256"] = signature_256(secret, body)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        text = await response.text()
        return WebhookDelivery(url, event, delivery, headers, body, response.status, text)


def _sender(urls: Urls, user: User) -> Obj:
    return render.user_json(urls, user)


def _head_commit(repo: Repo, run: WorkflowRun) -> Obj:
    commit = repo.commits.get(run.head_sha)
    person = {"name": run.actor.login, "email": run.actor.email}
    return {
        "id": run.head_sha,
        "tree_id": render.fake_sha("tree", run.head_sha),
        "message": commit.message if commit else run.display_title,
        "timestamp": iso(commit.date if commit else run.created_at),
        "author": person,
        "committer": person,
    }


def workflow_run_payload(urls: Urls, repo: Repo, run: WorkflowRun, *, action: str = "completed") -> Obj:
    """``workflow_run``: the run as the API serves it, its workflow, the repository and the sender."""
    workflow = {
        "id": run.workflow_id,
        "node_id": node_id("Workflow", run.workflow_id),
        "name": run.name,
        "path": run.path,
        "state": "active",
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.created_at),
        "url": f"{urls.repo(repo)}/actions/workflows/{run.workflow_id}",
        "html_url": f"{urls.web(repo)}/blob/{repo.default_branch}/{run.path}",
        "badge_url": f"{urls.web(repo)}/workflows/{run.name}/badge.svg",
    }
    return {
        "action": action,
        "workflow_run": actions_render.run_json(urls, repo, run),
        "workflow": workflow,
        "repository": render.repo_json(urls, repo),
        "sender": _sender(urls, run.actor),
    }


def check_suite_payload(urls: Urls, repo: Repo, run: WorkflowRun, *, action: str = "completed") -> Obj:
    """``check_suite`` for the suite GitHub Actions created for ``run``."""
    commit = repo.commits.get(run.head_sha)
    before = commit.parents[0] if commit and commit.parents else "0" * 40
    suite = {
        "id": run.check_suite_id,
        "node_id": node_id("CheckSuite", run.check_suite_id),
        "head_branch": run.head_branch,
        "head_sha": run.head_sha,
        "status": run.status,
        "conclusion": run.conclusion,
        "url": f"{urls.repo(repo)}/check-suites/{run.check_suite_id}",
        "before": before,
        "after": run.head_sha,
        "pull_requests": actions_render.run_json(urls, repo, run)["pull_requests"],
        "app": actions_render.app_json("github-actions"),
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "rerequestable": True,
        "runs_rerequestable": True,
        "latest_check_runs_count": len(run.jobs),
        "check_runs_url": f"{urls.repo(repo)}/check-suites/{run.check_suite_id}/check-runs",
        "head_commit": _head_commit(repo, run),
    }
    return {
        "action": action,
        "check_suite": suite,
        "repository": render.repo_json(urls, repo),
        "sender": _sender(urls, run.actor),
    }


def app_check_suite_payload(urls: Urls, repo: Repo, check: CheckRun, *, action: str = "completed") -> Obj:
    """``check_suite`` for the suite another CI app (not GitHub Actions) reported ``check`` in."""
    pulls = actions_render.check_run_json(urls, repo, check)["pull_requests"]
    suite = {
        "id": check.check_suite_id,
        "node_id": node_id("CheckSuite", check.check_suite_id),
        "head_branch": next((p["head"]["ref"] for p in pulls), repo.default_branch),
        "head_sha": check.head_sha,
        "status": check.status,
        "conclusion": check.conclusion,
        "url": f"{urls.repo(repo)}/check-suites/{check.check_suite_id}",
        "pull_requests": pulls,
        "app": actions_render.app_json(check.app_slug),
        "created_at": iso(check.started_at),
        "updated_at": iso(check.completed_at or check.started_at),
        "latest_check_runs_count": 1,
        "check_runs_url": f"{urls.repo(repo)}/check-suites/{check.check_suite_id}/check-runs",
    }
    return {
        "action": action,
        "check_suite": suite,
        "repository": render.repo_json(urls, repo),
        "sender": _sender(urls, repo.owner),
    }


def issue_comment_payload(urls: Urls, repo: Repo, comment: IssueComment, *, action: str = "created") -> Obj:
    """``issue_comment``; on a pull request ``issue.pull_request`` is present, as GitHub sends it."""
    return {
        "action": action,
        "issue": render.issue_json(urls, repo, repo.issues[comment.number]),
        "comment": render.comment_json(urls, repo, comment),
        "repository": render.repo_json(urls, repo),
        "sender": _sender(urls, comment.user),
    }


def review_comment_payload(urls: Urls, repo: Repo, comment: ReviewComment, *, action: str = "created") -> Obj:
    """``pull_request_review_comment``: the line comment and the pull request it belongs to."""
    return {
        "action": action,
        "comment": render.review_comment_json(urls, repo, comment),
        "pull_request": render.pull_json(urls, repo, repo.pulls[comment.number]),
        "repository": render.repo_json(urls, repo),
        "sender": _sender(urls, comment.user),
    }


def ping_payload(urls: Urls, repo: Repo, *, hook_id: int, url: str, events: list[str], sender: User) -> Obj:
    """``ping``: sent once when a hook is created, with the hook's configuration."""
    hook_api = f"{urls.repo(repo)}/hooks/{hook_id}"
    created = iso(repo.created_at)
    return {
        "zen": ZEN,
        "hook_id": hook_id,
        "hook": {
            "type": "Repository",
            "id": hook_id,
            "name": "web",
            "active": True,
            "events": events,
            "config": {"content_type": "json", "insecure_ssl": "0", "url": url},
            "updated_at": created,
            "created_at": created,
            "url": hook_api,
            "test_url": f"{hook_api}/test",
            "ping_url": f"{hook_api}/pings",
            "deliveries_url": f"{hook_api}/deliveries",
            "last_response": {"code": None, "status": "unused", "message": None},
        },
        "repository": render.repo_json(urls, repo),
        "sender": _sender(urls, sender),
    }
