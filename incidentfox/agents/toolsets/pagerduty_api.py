"""The connection half of the pagerduty toolset: the REST API v2 client and naming its failures.

``connect`` reads the team's ``integrations.pagerduty``: ``api_key`` (required), ``api_url``
(default ``https://api.pagerduty.com``; the EU service region is ``https://api.eu.pagerduty.com``),
``from_email`` (the PagerDuty user that notes are written as, sent as the ``From`` header an
account-level key needs for writes) and ``ca_cert_content`` (a PEM CA for an API behind a private
CA). It reads no environment variable. A configured ``api_url`` passes the egress policy
(``incidentfox.egress``) when connecting, and again on every connection the client opens.

The ``pagerduty`` client is synchronous, so every call runs in a worker thread (``asyncio.to_thread``).
Its own retry behaviour does not suit a run: it retries a 429 forever on a fixed backoff and ignores
``Retry-After``, and sleeps 3 + 6 + 12 seconds on a refused connection. So the client gets a transport
that honours ``Retry-After`` (or ``ratelimit-reset``) for up to ``MAX_WAIT_S`` per retry and
``MAX_ATTEMPTS`` attempts, retries GETs after a 5xx once or twice, and then raises ``RateLimited``
(never handing the 429 back to the client's endless loop); network retries are cut to one.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import math
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpcore2
import httpx2
import pagerduty

from incidentfox.agents.toolsets.base import ToolResult, lookup_dotted
from incidentfox.egress import (
    EgressRefused,
    check_addresses,
    current_policy,
    refuse_metadata_name,
    resolve_host_sync,
)

T = TypeVar("T")
Obj = dict[str, Any]
DEFAULT_API_URL = "https://api.pagerduty.com"
API_URL_SETTING = "integrations.pagerduty.api_url"
MAX_WAIT_S = 10.0
"""The longest ``Retry-After`` honoured by waiting; a longer one fails at once and says how long."""
MAX_ATTEMPTS = 3
SERVER_ERROR_BACKOFF_S = 0.5
RETRIED_SERVER_ERRORS = frozenset({500, 502, 503, 504})
REQUEST_TIMEOUT = httpx2.Timeout(20.0, connect=5.0)
_MAX_ERROR_TEXT = 300

NOT_CONFIGURED = (
    "PagerDuty is not configured for this team: set integrations.pagerduty.api_key "
    "(a REST API key from PagerDuty's Integrations > API Access Keys)."
)


class PagerDutyNotConfigured(Exception):
    """No usable PagerDuty configuration; the message says what to set."""


class RateLimited(Exception):
    """PagerDuty kept answering 429; ``retry_after`` is how long it asked to wait, when it said."""

    def __init__(self, retry_after: float | None) -> None:
        super().__init__(f"rate limited (retry after {retry_after} s)")
        self.retry_after = retry_after


def retry_after_seconds(
    headers: Mapping[str, str], now: Callable[[], datetime] | None = None
) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date), else ``ratelimit-reset``."""
    raw = headers.get("retry-after")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                at = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                at = None
            if at is not None:
                current = now() if now else datetime.now(UTC)
                return max(0.0, (at - current).total_seconds())
    reset = headers.get("ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset))
        except ValueError:
            return None
    return None


class EgressCheckedBackend(httpcore2.SyncBackend):
    """Connects only to an address the egress policy allows, and to exactly the address checked, so a
    DNS answer that changes after ``connect``'s check cannot redirect the API key elsewhere."""

    def __init__(self, *, private_allowed: bool, setting: str) -> None:
        self.private_allowed = private_allowed
        self.setting = setting

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        refuse_metadata_name(host, self.setting)
        addresses = resolve_host_sync(host, port)
        if not addresses:
            raise httpcore2.ConnectError(f"host name {host} not found")
        check_addresses(addresses, private_allowed=self.private_allowed, setting=self.setting)
        return super().connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)


class PagerDutyTransport(httpx2.HTTPTransport):
    """httpx's transport plus PagerDuty's retry rules (see the module docstring)."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        backend: httpcore2.NetworkBackend | None = None,
        max_wait_s: float = MAX_WAIT_S,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        if backend is not None:
            # httpx takes no network backend, so the pool is rebuilt with the egress-checked one.
            self._pool = httpcore2.ConnectionPool(ssl_context=ssl_context, network_backend=backend)
        self.max_wait_s = max_wait_s
        self.max_attempts = max_attempts
        self._sleep = sleep

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        attempt = 1
        while True:
            response = super().handle_request(request)
            status = response.status_code
            if status != 429 and not (status in RETRIED_SERVER_ERRORS and request.method == "GET"):
                return response
            wait = retry_after_seconds(response.headers)
            give_up = attempt >= self.max_attempts or (wait is not None and wait > self.max_wait_s)
            if give_up and status != 429:
                return response
            response.close()
            if give_up:
                raise RateLimited(wait)
            self._sleep(wait if wait is not None else SERVER_ERROR_BACKOFF_S * attempt)
            attempt += 1


@dataclass(slots=True)
class PagerDutyClient:
    """The per-run connection: the ``pagerduty`` client and where it points."""

    api: pagerduty.RestApiV2Client
    api_url: str
    from_email: str | None = None
    service_ids: tuple[str, ...] = ()
    """The team's PagerDuty services (``routing.pagerduty_service_ids``): the default scope of tools
    that look across services."""

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one blocking client method in a worker thread."""
        return await asyncio.to_thread(method, *args, **kwargs)

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The unwrapped entity at ``path`` (``/incidents/X`` → the incident)."""
        return await self.call(self.api.rget, path, params=dict(params or {}))

    async def list(self, path: str, params: Mapping[str, Any] | None = None, *, limit: int) -> list[Obj]:
        """Up to ``limit`` items of an index, following ``offset``/``more`` pages of up to 100."""
        api = self.api

        def take() -> list[Obj]:
            items = api.iter_all(path, params=dict(params or {}), page_size=min(limit, 100))
            return list(itertools.islice(items, limit))

        return await asyncio.to_thread(take)

    def close(self) -> None:
        self.api.close()


def pagerduty_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    settings = lookup_dotted(config, "integrations.pagerduty")
    return settings if isinstance(settings, Mapping) else {}


def _ssl_context(settings: Mapping[str, Any]) -> ssl.SSLContext:
    context = httpx2.create_ssl_context()
    ca = settings.get("ca_cert_content")
    if ca:
        try:
            context.load_verify_locations(cadata=str(ca))
        except (ssl.SSLError, ValueError) as exc:
            raise PagerDutyNotConfigured(
                "integrations.pagerduty.ca_cert_content is not a PEM certificate; paste the CA's PEM text."
            ) from exc
    return context


async def connect(
    config: Mapping[str, Any], *, timeout: httpx2.Timeout = REQUEST_TIMEOUT, max_wait_s: float = MAX_WAIT_S
) -> PagerDutyClient:
    """Build the run's client from the team's effective config (see the module docstring).

    Raises ``PagerDutyNotConfigured`` with plain words when nothing usable is configured or the
    egress policy refuses the API's address. No request is made here.
    """
    settings = pagerduty_settings(config)
    api_key = settings.get("api_key")
    if not api_key:
        raise PagerDutyNotConfigured(NOT_CONFIGURED)
    configured_url = settings.get("api_url")
    url = str(configured_url or DEFAULT_API_URL).rstrip("/")
    if not url.startswith("https://"):
        raise PagerDutyNotConfigured(f"{API_URL_SETTING} must be an https:// URL.")
    backend: EgressCheckedBackend | None = None
    if configured_url:
        policy = current_policy()
        try:
            await policy.check_url(url, setting=API_URL_SETTING)
        except EgressRefused as exc:
            raise PagerDutyNotConfigured(f"Refused to connect: {exc}") from exc
        backend = EgressCheckedBackend(
            private_allowed=await policy.private_allowed(), setting=API_URL_SETTING
        )
    transport = PagerDutyTransport(_ssl_context(settings), backend=backend, max_wait_s=max_wait_s)
    from_email = str(settings.get("from_email") or "").strip() or None
    api = pagerduty.RestApiV2Client(str(api_key), default_from=from_email, transport=transport)
    api.url = url
    api.timeout = timeout  # type: ignore[assignment]  # typed int, passed to httpx as is
    api.max_network_attempts = 1
    api.sleep_timer = 0.25
    routed = lookup_dotted(config, "routing.pagerduty_service_ids")
    service_ids = tuple(str(s) for s in routed if isinstance(s, str)) if isinstance(routed, list) else ()
    return PagerDutyClient(api=api, api_url=url, from_email=from_email, service_ids=service_ids)


def error_detail(response: httpx2.Response | None) -> str:
    """The message of PagerDuty's error envelope, shortened; nothing from any other kind of body
    (an ``api_url`` may point at something else, whose answer must not reach Slack or a model)."""
    if response is None:
        return ""
    try:
        body = json.loads(response.content or b"")
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return error[:_MAX_ERROR_TEXT]
    if not isinstance(error, dict):
        return ""
    parts = [str(error.get("message") or "")]
    errors = error.get("errors")
    if isinstance(errors, list):
        parts.extend(str(e) for e in errors[:3])
    return ": ".join(p for p in parts if p).rstrip(".")[:_MAX_ERROR_TEXT]


def _network_cause(exc: BaseException | None) -> str:
    text = repr(exc).lower()
    if "certificate" in text:
        return (
            "its TLS certificate is not trusted; set integrations.pagerduty.ca_cert_content for a private CA"
        )
    if "refused" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text:
        return "timed out"
    if "not found" in text or "name or service not known" in text:
        return "host name not found"
    return "connection dropped"


def describe_failure(exc: BaseException, api_url: str, doing: str) -> str:
    """One sentence for what went wrong while trying to ``doing`` (e.g. "read incident Q3X")."""
    if isinstance(exc, RateLimited):
        wait = f" and asked it to wait about {math.ceil(exc.retry_after)} s" if exc.retry_after else ""
        return f"PagerDuty is rate-limiting IncidentFox (429){wait}; could not {doing}. Try again later."
    if isinstance(exc, EgressRefused):
        return f"Refused to {doing}: {exc}"
    response = exc.response if isinstance(exc, pagerduty.Error) else None
    if response is not None and response.status_code >= 400:
        status, detail = response.status_code, error_detail(response)
        if status == 401:
            return (
                f"PagerDuty at {api_url} rejected the API key (401 Unauthorized). "
                "Check integrations.pagerduty.api_key."
            )
        if status == 403:
            because = f": {detail}" if detail else ""
            return (
                f"PagerDuty did not allow IncidentFox to {doing} (403 Forbidden{because}). "
                "The API key may be read-only or lack access to it."
            )
        if status == 404:
            return f"Could not {doing}: PagerDuty has nothing with that id (404)."
        if 400 <= status < 500:
            return f"PagerDuty refused to {doing}: {detail or 'the request was not valid'} ({status})."
        return (
            f"PagerDuty at {api_url} answered {status} when asked to {doing}; "
            "it may be having trouble, try again in a minute."
        )
    if response is not None:
        return f"PagerDuty at {api_url} sent a response IncidentFox could not read when asked to {doing}."
    if isinstance(exc, pagerduty.Error | httpx2.TransportError | OSError):
        cause = exc.__cause__ if isinstance(exc, pagerduty.Error) and exc.__cause__ else exc
        return f"PagerDuty API at {api_url} is unreachable ({_network_cause(cause)}); could not {doing}."
    return f"Could not {doing}: {type(exc).__name__}."


def api_failure(exc: BaseException, client: PagerDutyClient, doing: str, invocation: str) -> ToolResult:
    return ToolResult.failed(describe_failure(exc, client.api_url, doing), invocation=invocation)
