"""An offline GitHub REST API on 127.0.0.1, for PyGithub and for GitHub webhooks.

The real PyGithub talks to it unchanged through its base URL::

    async with GitHubEmulator() as gh:
        gh.add_repo("acme/shop")
        client = github.Github(auth=github.Auth.Token(gh.token), base_url=gh.api_url)

It serves repositories, commits (with a real commit graph, ``sha``/``since``/``until``/``path``
filters), pull requests with their files and unified diff (``Accept: application/vnd.github.diff``),
file contents at a ref (base64), issues and issue comments (create, list, edit), check runs, Actions
workflow runs with jobs and logs (the log endpoints answer 302 to a signed URL, as GitHub does: the
job's plain-text log, or the run's zip), code search, and the delivery endpoints of
``github_routes_delivery`` (compare, deployments and their statuses, releases, a workflow's runs),
paginated with ``Link`` headers. A missing or wrong token answers 401 ``{"message": "Bad
credentials"}``. Every response carries GitHub's ``X-RateLimit-*`` headers; when the budget
(``rate_limit``) is spent, requests answer 403 with ``X-RateLimit-Remaining: 0`` until
``rate_reset``.

Every request is kept in ``calls`` (method, path, query, JSON body, operation name, status).
``fail_next`` injects faults by operation name or path: 5xx, 404, 401, 403 (the primary rate limit,
with ``X-RateLimit-Remaining: 0`` and ``X-RateLimit-Reset``), 403/429 secondary rate limits with
``Retry-After``. ``send_webhook`` signs and POSTs webhook deliveries (``github_webhooks``); the
``*_event`` helpers build their payloads from the seeded world (``github_store``), so that the ids a
webhook names are the ones this API then serves. ``seed_git_repo`` gives a repository real commits
that ``git clone`` fetches from ``clone_url`` over git smart HTTP (``github_git``).
"""

from __future__ import annotations

import fnmatch
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from incidentfox.emulators import github_git
from incidentfox.emulators import github_webhooks as hooks
from incidentfox.emulators.github_models import CheckRun, Repo, WorkflowRun
from incidentfox.emulators.github_render import Obj, Urls, error_json
from incidentfox.emulators.github_routes import JSON_BODY, RATE_LIMIT, GitHubRoutes
from incidentfox.emulators.github_routes_delivery import DeliveryRoutes
from incidentfox.emulators.github_store import GitHubWorld
from incidentfox.emulators.github_webhooks import WebhookDelivery
from incidentfox.emulators.served import Emulator, ServedApp

DEFAULT_TOKEN = "ghs_emulator0123456789abcdefABCDEF0123"
PRIMARY_RATE_LIMIT = "API rate limit exceeded for installation ID 4242."
SECONDARY_RATE_LIMIT = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)
_SERVER_ERRORS = {500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass(slots=True)
class RecordedCall:
    """One request as received. ``name`` is the operation (``pulls.get``); ``status`` what was answered."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    name: str
    accept: str
    authorized: bool
    status: int = 0


@dataclass(slots=True)
class _Fault:
    target: str
    status: int
    times: int
    retry_after: int | None
    message: str | None
    reset_in: int
    matched: int = field(default=0)

    def matches(self, name: str, path: str) -> bool:
        return self.target in ("*", name) or (
            self.target.startswith("/") and fnmatch.fnmatch(path, self.target)
        )


class GitHubEmulator(GitHubWorld, Emulator):
    """The emulated API server; seed it with the ``GitHubWorld`` helpers (``add_repo``, …)."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        html_base: str = "https://github.com",
        bot_login: str = "incidentfox[bot]",
        rate_limit: int = 5000,
    ) -> None:
        super().__init__(bot_login=bot_login)
        self.token = token
        self.host = host
        self.port = port
        self.html_base = html_base.rstrip("/")
        self.rate_limit = rate_limit
        """Requests allowed per window; past it, 403 with ``X-RateLimit-Remaining: 0``."""
        self.rate_used = 0
        self.rate_reset = int(time.time()) + 3600
        self.calls: list[RecordedCall] = []
        self.deliveries: list[WebhookDelivery] = []
        self.hook_id = 4_200_001
        self._faults: list[_Fault] = []
        self._routes = GitHubRoutes(self, lambda: self.urls)
        self._git = github_git.GitRepos()
        self._server = ServedApp()

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(middlewares=[self._gate], client_max_size=4 * 1024 * 1024)
        self._routes.names.update(self._git.register(app))
        self._routes.names.update(DeliveryRoutes(self._routes).register(app))
        self._routes.register(app)
        self.port = await self._server.serve(app, self.host, self.port)
        return self

    async def stop(self) -> None:
        await self._server.close()
        self._git.cleanup()

    @property
    def api_url(self) -> str:
        """The base URL to give PyGithub (``base_url=``): where api.github.com would be."""
        if self.port == 0:
            raise RuntimeError("the GitHub emulator has not been started")
        return f"http://{self.host}:{self.port}"

    def clone_url(self, full_name: str) -> str:
        """Where ``git clone`` finds ``full_name`` (``https://github.com/owner/repo.git`` on GitHub): the
        emulator's own base, which is both its API and its web base for git."""
        return f"{self.api_url}/{full_name}.git"

    def seed_git_repo(self, full_name: str, files: dict[str, str], *, branch: str = "main") -> str:
        """A real bare repository for ``full_name`` whose ``branch`` holds ``files`` in one commit (a
        later call adds a commit); served over git smart HTTP. Also seeds the REST repository if
        absent. Returns the commit's sha."""
        if self.repo(full_name) is None:
            self.add_repo(full_name, default_branch=branch, files=files)
        return self._git.seed(full_name, files, branch=branch)

    def git_repo_path(self, full_name: str) -> Path:
        """The bare repository behind ``full_name`` (for tests that inspect it)."""
        return self._git.path(full_name)

    @property
    def urls(self) -> Urls:
        return Urls(api=self.api_url, html=self.html_base)

    @property
    def rate_remaining(self) -> int:
        return max(0, self.rate_limit - self.rate_used)

    # -- faults and recorded calls ------------------------------------------------------------------

    def fail_next(
        self,
        target: str,
        status: int = 500,
        *,
        retry_after: int | None = None,
        times: int = 1,
        message: str | None = None,
        reset_in: int = 60,
    ) -> None:
        """Make the next ``times`` requests for ``target`` fail with ``status``.

        ``target`` is an operation name (``pulls.get``, ``actions.download_job_logs_for_workflow_run``),
        a path or path glob (``/repos/acme/shop/pulls/*``), or ``*``. A 403 without ``message`` is
        GitHub's primary rate limit (``X-RateLimit-Remaining: 0``, ``X-RateLimit-Reset`` in
        ``reset_in`` seconds, which may be negative); with ``retry_after`` it is a secondary rate limit.
        A 429 is a secondary rate limit. ``retry_after`` adds a ``Retry-After`` header to any status.
        """
        self._faults.append(_Fault(target, status, times, retry_after, message, reset_in))

    def clear_faults(self) -> None:
        self._faults.clear()

    def calls_to(self, target: str) -> list[RecordedCall]:
        """The recorded calls of one operation name, or whose path matches a path glob."""
        return [c for c in self.calls if c.name == target or fnmatch.fnmatch(c.path, target)]

    # -- webhooks -----------------------------------------------------------------------------------

    def _repo_of(self, full_name: str) -> Repo:
        repo = self.repo(full_name)
        if repo is None:
            raise KeyError(f"seed the repository {full_name!r} first with add_repo")
        return repo

    def _run_repo(self, run: WorkflowRun) -> Repo:
        return next(r for r in self.repos.values() if r.runs.get(run.id) is run)

    def workflow_run_event(self, run: WorkflowRun, *, action: str = "completed") -> Obj:
        """The ``workflow_run`` payload GitHub sends when ``run`` completes."""
        return hooks.workflow_run_payload(self.urls, self._run_repo(run), run, action=action)

    def check_suite_event(self, run: WorkflowRun, *, action: str = "completed") -> Obj:
        """The ``check_suite`` payload for the suite of ``run``."""
        return hooks.check_suite_payload(self.urls, self._run_repo(run), run, action=action)

    def app_check_suite_event(self, full_name: str, check: CheckRun, *, action: str = "completed") -> Obj:
        """The ``check_suite`` payload of another CI app's suite holding ``check`` (``add_check_run``)."""
        return hooks.app_check_suite_payload(self.urls, self._repo_of(full_name), check, action=action)

    def issue_comment_event(self, full_name: str, number: int, body: str, *, author: str = "octocat") -> Obj:
        """Post a comment on issue or pull request ``number`` and return its ``issue_comment`` payload."""
        repo = self._repo_of(full_name)
        comment = self.add_issue_comment(full_name, number, body, author=author)
        return hooks.issue_comment_payload(self.urls, repo, comment)

    def review_comment_event(
        self, full_name: str, number: int, body: str, *, path: str, line: int, author: str = "octocat"
    ) -> Obj:
        """Post a line comment on pull request ``number``; return its ``pull_request_review_comment``
        payload."""
        repo = self._repo_of(full_name)
        comment = self.add_review_comment(full_name, number, body, path=path, line=line, author=author)
        return hooks.review_comment_payload(self.urls, repo, comment)

    def ping_event(self, full_name: str, url: str, *, events: list[str] | None = None) -> Obj:
        """The ``ping`` GitHub sends when a hook pointing at ``url`` is created on ``full_name``."""
        repo = self._repo_of(full_name)
        subscribed = events or ["workflow_run", "check_suite", "issue_comment", "pull_request_review_comment"]
        return hooks.ping_payload(
            self.urls, repo, hook_id=self.hook_id, url=url, events=subscribed, sender=self.user("octocat")
        )

    async def send_webhook(
        self,
        url: str,
        event: str,
        payload: Obj,
        *,
        secret: str | bytes | None = None,
        delivery_id: str | None = None,
    ) -> WebhookDelivery:
        """POST one signed delivery to ``url``; it is also kept in ``deliveries``. A redelivery is the
        same payload sent again with the same ``delivery_id``."""
        repository = payload.get("repository")
        target = int(repository["id"]) if isinstance(repository, dict) and "id" in repository else 0
        delivery = await hooks.deliver(
            url,
            event,
            payload,
            secret=secret,
            hook_id=self.hook_id,
            target_id=target,
            delivery_id=delivery_id or str(uuid.uuid4()),
        )
        self.deliveries.append(delivery)
        return delivery

    # -- the gate every request passes --------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            return github_git.basic_password(value) == self.token
        return scheme.lower() in ("token", "bearer") and value.strip() == self.token

    def _rate_headers(self, name: str) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.rate_remaining),
            "X-RateLimit-Reset": str(self.rate_reset),
            "X-RateLimit-Used": str(min(self.rate_used, self.rate_limit)),
            "X-RateLimit-Resource": "search" if name == "search.code" else "core",
        }

    def _fault_response(self, fault: _Fault, name: str) -> web.Response:
        headers = self._rate_headers(name)
        message = fault.message
        if fault.status == 403 and message is None:
            if fault.retry_after is None:
                message = PRIMARY_RATE_LIMIT
                headers.update(
                    {
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Used": str(self.rate_limit),
                        "X-RateLimit-Reset": str(int(time.time()) + fault.reset_in),
                    }
                )
            else:
                message = SECONDARY_RATE_LIMIT
        elif fault.status == 429 and message is None:
            message = SECONDARY_RATE_LIMIT
        elif message is None:
            defaults = {401: "Bad credentials", 404: "Not Found", 409: "Conflict", 422: "Validation Failed"}
            message = defaults.get(fault.status) or _SERVER_ERRORS.get(fault.status, "Server Error")
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        return web.json_response(error_json(message, fault.status), status=fault.status, headers=headers)

    def _take_fault(self, name: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(name, path):
                fault.times -= 1
                fault.matched += 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def _gate(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        name = self._routes.names.get(request.match_info.route, "unknown")
        body: Any = None
        if request.can_read_body and name not in github_git.GIT_OPERATIONS:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except (ValueError, UnicodeDecodeError):
                body = raw.decode("utf-8", "replace")
        request[JSON_BODY] = body
        call = RecordedCall(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            json=body,
            name=name,
            accept=request.headers.get("Accept", ""),
            authorized=self._authorized(request),
        )
        self.calls.append(call)
        response = await self._answer(request, handler, call)
        call.status = response.status
        return response

    async def _answer(
        self, request: web.Request, handler: Callable[[web.Request], Any], call: RecordedCall
    ) -> web.StreamResponse:
        signed_blob, git = call.name == "blobs.get", call.name in github_git.GIT_OPERATIONS
        if not signed_blob and not call.authorized:
            return (
                github_git.unauthorized()
                if git
                else web.json_response(error_json("Bad credentials", 401), status=401)
            )
        fault = self._take_fault(call.name, call.path)
        if fault is not None:
            return self._fault_response(fault, call.name)
        if signed_blob or git:
            response: web.StreamResponse = await handler(request)
            return response
        if self.rate_remaining == 0 and call.name != "rate_limit.get":
            if time.time() < self.rate_reset:
                return self._fault_response(
                    _Fault("*", 403, 1, None, None, int(self.rate_reset - time.time())), call.name
                )
            self.rate_used, self.rate_reset = 0, int(time.time()) + 3600
        if call.name != "rate_limit.get":
            self.rate_used += 1
        request[RATE_LIMIT] = (self.rate_limit, self.rate_remaining, self.rate_reset, self.rate_used)
        response = await handler(request)
        response.headers.update(self._rate_headers(call.name))
        response.headers["X-GitHub-Request-Id"] = uuid.uuid4().hex[:20].upper()
        return response
