"""The connection half of the github toolset: building the PyGithub client and naming failures.

``connect`` reads the team's run-time ``integrations.github``: ``token`` (required) and ``api_url``
(GitHub Enterprise Server's ``https://host/api/v3``; default ``https://api.github.com``). It reads no
environment variable: installation-wide fallbacks (``GITHUB_TOKEN``, ``GITHUB_API_URL``) are filled into
the run-time config by the config service, like every other integration. The API URL passes the egress
policy at connect time and again on every connection the client opens (``incidentfox.egress``), and so
does every log download URL GitHub redirects to.

PyGithub is synchronous and builds its objects lazily (reading an attribute may fetch), so every
interaction with it runs inside ``GitHubClient.call`` on a worker thread. Its retry policy is GitHub's
(``GithubRetry``: 5xx, and 403/429 rate limits honouring ``Retry-After`` and ``X-RateLimit-Reset``),
bounded for an investigation: writes are never retried after a 5xx (the comment may have been
posted), and a rate limit that would need a longer wait than ``max_rate_limit_wait_s`` fails at once
with the reset time instead of blocking a run. ``describe_failure`` turns whatever was raised into one
plain sentence without secrets.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from github import Auth, Github, GithubException, GithubRetry, RateLimitExceededException
from github.GithubException import RateLimitExceededExceedsMaxWait
from github.Repository import Repository
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass, Requester
from urllib3.connectionpool import HTTPConnectionPool

from incidentfox.agents.toolsets.base import ToolResult, lookup_dotted
from incidentfox.egress import EgressRefused, checked_pool_classes, current_policy

T = TypeVar("T")
DEFAULT_API_URL = "https://api.github.com"
USER_AGENT = "IncidentFox"
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_MAX_MESSAGE = 300
NOT_CONFIGURED = (
    "GitHub is not configured for this team: set integrations.github.token (and integrations.github.api_url "
    "for GitHub Enterprise Server)."
)


class GitHubNotConfigured(Exception):
    """No usable GitHub configuration; the message says what to set."""


class BoundedRetry(GithubRetry):
    """``GithubRetry`` with the two limits a run needs.

    A POST or PATCH that got a 5xx may have been applied, so only its rate-limit answers (403/429, which
    GitHub sends before doing anything) are retried. A ``Retry-After`` longer than
    ``max_rate_limit_wait`` raises ``RateLimitExceededExceedsMaxWait`` at once, as ``GithubRetry``
    already does for ``X-RateLimit-Reset``, instead of sleeping in a worker thread.
    """

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() not in _IDEMPOTENT and status_code not in (403, 429):
            return False
        return bool(super().is_retry(method, status_code, has_retry_after))

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> urllib3.Retry:
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and self.max_rate_limit_wait is not None:
            wait = self.parse_retry_after(retry_after)
            if wait > self.max_rate_limit_wait:
                try:
                    body: Any = json.loads(self.get_content(response, url or ""))
                except ValueError:
                    body = None
                raise RateLimitExceededExceedsMaxWait(
                    response.status, body, dict(response.headers), wait=wait
                )
        return super().increment(method, url, response, error, _pool, _stacktrace)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How patient the client is. The defaults suit an investigation; tests pass faster ones."""

    timeout_s: int = 15
    retries: int = 3
    backoff_factor: float = 1.0
    max_rate_limit_wait_s: float = 30.0
    secondary_rate_wait_s: float = 20.0
    seconds_between_requests: float | None = 0.25
    """PyGithub's spacing between requests, which GitHub asks integrations to keep."""
    seconds_between_writes: float | None = 1.0
    per_page: int = 100
    max_log_bytes: int = 16 * 1024 * 1024
    """A job log longer than this is read from its end (where a failed step is)."""

    def retry(self) -> BoundedRetry:
        return BoundedRetry(
            total=self.retries,
            backoff_factor=self.backoff_factor,
            max_rate_limit_wait=self.max_rate_limit_wait_s,
            secondary_rate_wait=self.secondary_rate_wait_s,
            status_forcelist=[*range(500, 600), 429],
            raise_on_status=False,
        )


DEFAULT_OPTIONS = ClientOptions()


@dataclass(slots=True)
class GitHubClient:
    """The per-run connection: a lazy PyGithub client and a session for downloads GitHub redirects to."""

    gh: Github
    api_url: str
    downloads: requests.Session
    options: ClientOptions = DEFAULT_OPTIONS
    default_repo: str | None = None
    _repos: dict[str, Repository] = field(default_factory=dict)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` (which may touch PyGithub objects freely) on a worker thread."""
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    def repo(self, full_name: str) -> Repository:
        """A lazy repository handle: no request until something is read from it."""
        key = full_name.lower()
        if key not in self._repos:
            self._repos[key] = self.gh.get_repo(full_name)
        return self._repos[key]

    def download_text(self, url: str) -> str:
        """GET a pre-signed URL (no token is sent) and decode it; a body longer than
        ``max_log_bytes`` keeps its end. Raises ``requests`` errors, or ``GithubException`` on a
        non-2xx answer."""
        cap = self.options.max_log_bytes
        with self.downloads.get(url, timeout=self.options.timeout_s, stream=True) as response:
            if response.status_code >= 400:
                raise GithubException(response.status_code, None, dict(response.headers))
            data = bytearray()
            for chunk in response.iter_content(64 * 1024):
                data.extend(chunk)
                if len(data) > 2 * cap:
                    del data[: len(data) - cap]
        return bytes(data[-cap:]).decode("utf-8", "replace")

    def close(self) -> None:
        self.gh.close()
        self.downloads.close()


def github_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    settings = lookup_dotted(config, "integrations.github")
    return settings if isinstance(settings, Mapping) else {}


def github_configured(config: Mapping[str, Any]) -> bool:
    settings = github_settings(config)
    return settings.get("enabled") is not False and bool(settings.get("token"))


def default_repo(config: Mapping[str, Any]) -> str | None:
    """The repository a tool uses when none is named: the first the team claims in ``routing``."""
    repos = lookup_dotted(config, "routing.github_repos")
    if isinstance(repos, list) and repos and isinstance(repos[0], str):
        return repos[0]
    return None


def _checked_connection_classes(
    pools: dict[str, type[HTTPConnectionPool]],
) -> tuple[type[HTTPRequestsConnectionClass], type[HTTPSRequestsConnectionClass]]:
    """PyGithub's connection classes whose requests sessions apply the egress policy on connect."""

    class CheckedHTTP(HTTPRequestsConnectionClass):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.adapter.poolmanager.pool_classes_by_scheme = pools

    class CheckedHTTPS(HTTPSRequestsConnectionClass):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.adapter.poolmanager.pool_classes_by_scheme = pools

    return CheckedHTTP, CheckedHTTPS


def _enforce_egress_on(requester: Requester, pools: dict[str, type[HTTPConnectionPool]]) -> None:
    """Make this client's connections (and only this client's) check the egress policy on connect.

    PyGithub offers only a process-wide hook (``Requester.injectConnectionClasses``), which would change
    every other client in the process, so the classes are set on this requester instance. A test
    asserts they are in use, so a PyGithub upgrade that renames them fails loudly.
    """
    http, https = _checked_connection_classes(pools)
    scheme = urlsplit(requester.base_url).scheme
    setattr(requester, "_Requester__httpConnectionClass", http)  # noqa: B010
    setattr(requester, "_Requester__httpsConnectionClass", https)  # noqa: B010
    setattr(requester, "_Requester__connectionClass", https if scheme == "https" else http)  # noqa: B010


def _checked_session(pools: dict[str, type[HTTPConnectionPool]], retries: int) -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(max_retries=urllib3.Retry(total=retries, backoff_factor=0.5))
    adapter.poolmanager.pool_classes_by_scheme = pools
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


async def connect(config: Mapping[str, Any], options: ClientOptions = DEFAULT_OPTIONS) -> GitHubClient:
    """Build the run's client from the team's effective config (see the module docstring).

    Raises ``GitHubNotConfigured`` with plain words when there is no token or the egress policy
    refuses the API's address. No request is made here; a bad token is reported by the first call.
    """
    settings = github_settings(config)
    if settings.get("enabled") is False:
        raise GitHubNotConfigured(
            "GitHub is turned off for this team (integrations.github.enabled is false)."
        )
    token = settings.get("token")
    if not token or not isinstance(token, str):
        raise GitHubNotConfigured(NOT_CONFIGURED)
    api_url = str(settings.get("api_url") or DEFAULT_API_URL).rstrip("/")
    setting = "integrations.github.api_url"
    policy = current_policy()
    try:
        await policy.check_url(api_url, setting=setting)
    except EgressRefused as exc:
        raise GitHubNotConfigured(f"Refused to connect: {exc}") from exc
    pools = checked_pool_classes(private_allowed=await policy.private_allowed(), setting=setting)
    gh = Github(
        auth=Auth.Token(token),
        base_url=api_url,
        timeout=options.timeout_s,
        user_agent=USER_AGENT,
        per_page=options.per_page,
        retry=options.retry(),
        seconds_between_requests=options.seconds_between_requests,
        seconds_between_writes=options.seconds_between_writes,
        lazy=True,
    )
    _enforce_egress_on(gh.requester, pools)
    return GitHubClient(
        gh=gh,
        api_url=api_url,
        downloads=_checked_session(pools, options.retries),
        options=options,
        default_repo=default_repo(config),
    )


def shown_url(url: str) -> str:
    """``url`` without user info, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def github_message(exc: GithubException) -> str:
    """GitHub's ``message`` from an error body, shortened; nothing from any other kind of body."""
    data = exc.data
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"][:_MAX_MESSAGE]
    return ""


def _header(exc: GithubException, name: str) -> str | None:
    headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
    return headers.get(name.lower())


def _rate_limit_sentence(exc: GithubException, doing: str) -> str:
    reset = _header(exc, "x-ratelimit-reset")
    retry_after = _header(exc, "retry-after")
    if _header(exc, "x-ratelimit-remaining") == "0" and reset and reset.isdigit():
        at = datetime.fromtimestamp(int(reset), UTC)
        minutes = max(0, round((at - datetime.now(UTC)).total_seconds() / 60))
        return (
            f"GitHub's rate limit for this token is used up, so IncidentFox could not {doing}; "
            f"it resets at {at:%H:%M} UTC (in about {minutes} minute{'s' if minutes != 1 else ''})."
        )
    wait = retry_after if retry_after and retry_after.isdigit() else None
    when = f"retry in {wait} seconds" if wait else "retry in a few minutes"
    return f"GitHub asked IncidentFox to slow down (secondary rate limit) when asked to {doing}; {when}."


def _network_cause(exc: BaseException) -> str:
    text = repr(exc).lower()
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text or "timeout" in text:
        return "timed out"
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "resolve" in text:
        return "host name not found"
    return "connection dropped"


def describe_failure(exc: BaseException, api_url: str, doing: str) -> str:
    """One sentence for what went wrong while trying to ``doing`` (e.g. "read pull request #42")."""
    url = shown_url(api_url)
    if isinstance(exc, GithubException):
        status, message = exc.status, github_message(exc)
        rate_limited = _header(exc, "x-ratelimit-remaining") == "0" or bool(_header(exc, "retry-after"))
        if isinstance(exc, RateLimitExceededException) or status == 429 or (status == 403 and rate_limited):
            return _rate_limit_sentence(exc, doing)
        if status == 401:
            return (
                f"GitHub at {url} rejected the token (401 Bad credentials). "
                "Check integrations.github.token in the team's GitHub integration."
            )
        if status == 403:
            detail = f": {message}" if message else ""
            return (
                f"The GitHub token may not {doing} (403 Forbidden{detail}). Give it access to the repository."
            )
        if status == 404:
            return (
                f"Could not {doing}: GitHub answered 404 Not Found. Check the name or number, and that the "
                "token can see the repository (GitHub answers 404 for private repositories it cannot)."
            )
        if status == 410:
            return (
                f"Could not {doing}: GitHub no longer has it (410 Gone; logs expire after the "
                "repository's retention period)."
            )
        if status in (409, 422):
            return f"GitHub refused to {doing}: {message or 'the request was not accepted'} ({status})."
        return f"GitHub at {url} answered {status} when asked to {doing}; try again in a minute."
    if isinstance(exc, EgressRefused):
        return f"Refused to {doing}: {exc}"
    if isinstance(exc, requests.exceptions.RetryError):
        return f"GitHub at {url} kept failing when asked to {doing}; try again in a minute."
    if isinstance(exc, requests.exceptions.RequestException | urllib3.exceptions.HTTPError | OSError):
        return f"GitHub at {url} is unreachable ({_network_cause(exc)}); could not {doing}."
    return f"Could not {doing}: {type(exc).__name__}."


def api_failure(exc: BaseException, client: GitHubClient, doing: str, invocation: str) -> ToolResult:
    return ToolResult.failed(describe_failure(exc, client.api_url, doing), invocation=invocation)
