"""The connection half of the prometheus toolset: an aiohttp client over Prometheus' HTTP API, its
failures in plain words, and the health check.

``connect`` reads the team's ``integrations.prometheus``: ``url`` (required: the base URL that serves
``/api/v1/...``; for Mimir include its ``/prometheus`` prefix), ``headers`` (sent on every request, e.g.
``Authorization`` or Mimir's ``X-Scope-OrgID``), ``timeout_s`` (default 20) and ``ca_cert_content`` (a
PEM CA for a server behind a private CA). User info in the URL (``https://user:pass@host``) is sent as
basic auth and never shown. Thanos, Mimir and VictoriaMetrics serve the same API.

The URL passes the egress policy (``incidentfox.egress``) when connecting, and every host name is
checked again when a connection is opened (``EgressCheckedResolver``), so a DNS answer that changes
afterwards cannot send the headers elsewhere. Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import json
import math
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from incidentfox.agents.toolsets.base import ToolsetHealth, lookup_dotted
from incidentfox.egress import (
    EgressRefused,
    check_addresses,
    current_policy,
    refuse_metadata_name,
)

URL_SETTING = "integrations.prometheus.url"
DEFAULT_TIMEOUT_S = 20.0
MAX_TIMEOUT_S = 120.0
MAX_BODY_BYTES = 16 * 1024 * 1024
_MAX_ERROR_TEXT = 400
NOT_CONFIGURED = (
    "Prometheus is not configured for this team: set integrations.prometheus.url "
    "(the server's base URL, e.g. http://prometheus.monitoring:9090)."
)
Obj = dict[str, Any]


class PrometheusNotConfigured(Exception):
    """No usable Prometheus configuration; the message says what to set."""


class PrometheusError(Exception):
    """A request that failed; ``str(exc)`` is one plain sentence, ``status`` the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EgressCheckedResolver(AbstractResolver):
    """Resolves with the default resolver and refuses every answer the egress policy does not allow;
    aiohttp then connects to exactly the addresses returned here. (IP literals skip resolvers; the
    configured URL's literal was checked by ``connect``, and redirects are not followed.)"""

    def __init__(self, *, private_allowed: bool, setting: str = URL_SETTING) -> None:
        self.private_allowed = private_allowed
        self.setting = setting
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        refuse_metadata_name(host, self.setting)
        results = await self._resolver.resolve(host, port, family)
        addresses = [ipaddress.ip_address(r["host"].split("%")[0]) for r in results]
        check_addresses(addresses, private_allowed=self.private_allowed, setting=self.setting)
        return results

    async def close(self) -> None:
        await self._resolver.close()


def prometheus_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    settings = lookup_dotted(config, "integrations.prometheus")
    return settings if isinstance(settings, Mapping) else {}


def shown_url(url: str) -> str:
    """``url`` without user info, query or fragment, for requests, messages and links."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")


@dataclass(slots=True)
class PrometheusClient:
    """The per-run connection: an aiohttp session and the base URL it asks."""

    session: aiohttp.ClientSession
    url: str
    """The base URL without user info (the session sends it as basic auth)."""
    timeout_s: float

    @property
    def query_timeout(self) -> str:
        """The ``timeout`` a query is sent with, so the server gives up when IncidentFox does (whole
        seconds: not every compatible backend reads fractions)."""
        return f"{max(1, math.floor(self.timeout_s))}s"

    async def get(self, path: str, params: Mapping[str, Any] | None, *, doing: str) -> Any:
        """The ``data`` of Prometheus' ``{"status": "success", "data": ...}`` answer at ``path``; raises
        ``PrometheusError`` whose message says what went wrong while trying to ``doing``."""
        data, _ = await self.get_with_warnings(path, params, doing=doing)
        return data

    async def get_with_warnings(
        self, path: str, params: Mapping[str, Any] | None, *, doing: str
    ) -> tuple[Any, list[str]]:
        try:
            async with self.session.get(
                f"{self.url}{path}", params=dict(params or {}), allow_redirects=False
            ) as response:
                raw = await _read_capped(response, doing)
                status = response.status
        except PrometheusError:
            raise
        except EgressRefused as exc:
            raise PrometheusError(f"Refused to {doing}: {exc}") from exc
        except TimeoutError as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} did not answer within {self.timeout_s:g} s when asked to "
                f"{doing}; narrow it (a shorter range, fewer series) or raise "
                "integrations.prometheus.timeout_s."
            ) from exc
        except aiohttp.ClientError as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} is unreachable ({_network_cause(exc)}); could not {doing}."
            ) from exc
        return _unwrap(raw, status, self.url, path, doing)

    async def close(self) -> None:
        await self.session.close()


async def _read_capped(response: aiohttp.ClientResponse, doing: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PrometheusError(
                f"Prometheus' answer was larger than {MAX_BODY_BYTES // 2**20} MB when asked to {doing}; "
                "narrow it with label matchers or a shorter range."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _envelope(raw: bytes) -> Obj | None:
    try:
        body = json.loads(raw or b"")
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("status") in ("success", "error"):
        return body
    return None


def _unwrap(raw: bytes, status: int, url: str, path: str, doing: str) -> tuple[Any, list[str]]:
    body = _envelope(raw)
    if 200 <= status < 300 and body is not None and body["status"] == "success":
        warnings = body.get("warnings")
        return body.get("data"), [str(w) for w in warnings] if isinstance(warnings, list) else []
    if 200 <= status < 300:
        raise PrometheusError(
            f"{url} answered, but not as a Prometheus API (no JSON status envelope at {path}); check that "
            f"{URL_SETTING} is the server's base URL.",
            status,
        )
    detail = str(body.get("error") or "")[:_MAX_ERROR_TEXT] if body else ""
    kind = str(body.get("errorType") or "") if body else ""
    raise PrometheusError(_describe_status(status, detail, kind, url, path, doing), status)


def _describe_status(status: int, detail: str, kind: str, url: str, path: str, doing: str) -> str:
    code = f"{status} {kind}".strip()
    if detail and status == 400:
        return f"Prometheus rejected the request to {doing}: {detail} ({code}). Correct it and try again."
    if detail and status == 422:
        return f"Prometheus could not evaluate the query: {detail} ({code})."
    if detail and status == 503:
        return (
            f"Prometheus gave up when asked to {doing}: {detail} ({code}). "
            "Narrow it (a shorter range, fewer series)."
        )
    if 300 <= status < 400:
        return (
            f"Prometheus at {url} redirected elsewhere ({status}) when asked to {doing}: a login proxy may "
            f"be in front of it. Set integrations.prometheus.headers, or point {URL_SETTING} at the API."
        )
    if status == 401:
        return (
            f"Prometheus at {url} asked for credentials (401 Unauthorized) when asked to {doing}: set or "
            "correct the Authorization header in integrations.prometheus.headers."
        )
    if status == 403:
        return (
            f"Prometheus at {url} refused access (403 Forbidden) when asked to {doing}: the credentials in "
            "integrations.prometheus.headers lack access (for Mimir, check X-Scope-OrgID)."
        )
    if status == 404:
        return (
            f"Prometheus at {url} has no {path} (404): check that {URL_SETTING} is the server's base URL "
            "(for Mimir include /prometheus), or this backend does not offer it."
        )
    if status == 429:
        return f"Prometheus at {url} is rate-limiting IncidentFox (429); could not {doing}. Try again later."
    if detail:
        return f"Prometheus refused to {doing}: {detail} ({code})."
    return (
        f"Prometheus at {url} answered {status} when asked to {doing}; it may be having trouble, "
        "try again in a minute."
    )


def _network_cause(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return (
            "its TLS certificate is not trusted; set integrations.prometheus.ca_cert_content for a private CA"
        )
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "host name not found"
    text = repr(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text:
        return "timed out"
    return "connection dropped"


def _timeout(settings: Mapping[str, Any]) -> float:
    raw = settings.get("timeout_s")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise PrometheusNotConfigured(
            "integrations.prometheus.timeout_s must be a positive number of seconds."
        )
    return min(float(raw), MAX_TIMEOUT_S)


def _headers(settings: Mapping[str, Any]) -> dict[str, str]:
    raw = settings.get("headers")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str | int) for v in raw.values()):
        raise PrometheusNotConfigured(
            "integrations.prometheus.headers must map header names to text, "
            'e.g. {"Authorization": "Bearer …"}.'
        )
    return {str(k): str(v) for k, v in raw.items()}


def _ssl_context(settings: Mapping[str, Any]) -> ssl.SSLContext | bool:
    ca = settings.get("ca_cert_content")
    if not ca:
        return True
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cadata=str(ca))
    except (ssl.SSLError, ValueError) as exc:
        raise PrometheusNotConfigured(
            "integrations.prometheus.ca_cert_content is not a PEM certificate; paste the CA's PEM text."
        ) from exc
    return context


async def connect(config: Mapping[str, Any], *, timeout_s: float | None = None) -> PrometheusClient:
    """Build the run's client from the team's effective config (see the module docstring).

    Raises ``PrometheusNotConfigured`` with plain words when nothing usable is configured or the egress
    policy refuses the URL. No request is made here.
    """
    settings = prometheus_settings(config)
    if settings.get("enabled") is False:
        raise PrometheusNotConfigured(
            "Prometheus is turned off for this team (integrations.prometheus.enabled is false)."
        )
    raw_url = settings.get("url")
    if not raw_url or not isinstance(raw_url, str):
        raise PrometheusNotConfigured(NOT_CONFIGURED)
    parts = urlsplit(raw_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PrometheusNotConfigured(f"{URL_SETTING} must be an http:// or https:// URL.")
    url = shown_url(raw_url.strip())
    policy = current_policy()
    try:
        await policy.check_url(url, setting=URL_SETTING)
    except EgressRefused as exc:
        raise PrometheusNotConfigured(f"Refused to connect: {exc}") from exc
    total = timeout_s if timeout_s is not None else _timeout(settings)
    headers = {"Accept": "application/json", "User-Agent": "IncidentFox"}
    if parts.username:
        headers["Authorization"] = aiohttp.encode_basic_auth(
            unquote(parts.username), unquote(parts.password or "")
        )
    resolver = EgressCheckedResolver(private_allowed=await policy.private_allowed())
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=resolver, ssl=_ssl_context(settings), limit=8),
        timeout=aiohttp.ClientTimeout(total=total, sock_connect=min(total, 5.0)),
        headers={**headers, **_headers(settings)},
    )
    return PrometheusClient(session=session, url=url, timeout_s=total)


async def check_health(config: Mapping[str, Any], *, timeout_s: float) -> ToolsetHealth:
    """One cheap call: the build info (or ``vector(1)`` where a backend lacks that endpoint), which proves
    that the URL serves Prometheus' API and that the headers are accepted."""
    if not prometheus_settings(config).get("url"):
        return ToolsetHealth(configured=False, reason="no url is set")
    try:
        client = await connect(config, timeout_s=timeout_s)
    except PrometheusNotConfigured as exc:
        return ToolsetHealth.failing(str(exc))
    try:
        try:
            await client.get("/api/v1/status/buildinfo", None, doing="read its build info")
        except PrometheusError as exc:
            if exc.status != 404:
                raise
            await client.get("/api/v1/query", {"query": "vector(1)"}, doing="run a test query")
    except PrometheusError as exc:
        return ToolsetHealth.failing(str(exc))
    finally:
        await client.close()
    return ToolsetHealth.ok()
