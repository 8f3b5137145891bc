"""What the toolsets that read a backend over plain HTTP (Prometheus, Loki, Grafana, …) share: an
aiohttp session that honours the egress policy, reading the common settings, capped reads, and the
failures every such backend has, in plain words. ``HttpBackend`` holds the words that differ between backends.

The configured URL passes the egress policy when connecting, and every host name is checked again when
a connection is opened (``EgressCheckedResolver``), so a DNS answer that changes afterwards cannot send
the headers elsewhere. Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from incidentfox.agents.toolsets.base import ToolsetHealth, lookup_dotted
from incidentfox.egress import (
    EgressPolicy,
    EgressRefused,
    check_addresses,
    current_policy,
    refuse_metadata_name,
)

DEFAULT_TIMEOUT_S = 20.0
MAX_TIMEOUT_S = 120.0
MAX_BODY_BYTES = 16 * 1024 * 1024


class BackendError(Exception):
    """A request that failed; ``str(exc)`` is one plain sentence, ``status`` the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class HttpBackend:
    """The words and exceptions of one backend, for the shared steps and messages."""

    name: str
    """As in messages: ``Prometheus``."""
    key: str
    """Where its settings are: ``integrations.prometheus``."""
    possessive: str
    """``Prometheus'``."""
    not_configured: type[Exception]
    """Raised for settings that cannot be used."""
    error: type[BackendError]
    """Raised for a request that failed."""
    not_configured_text: str
    """What to say when no URL is set."""
    narrow_large: str
    """How to ask for less when an answer is too large: ``narrow it with …``."""
    narrow_slow: str
    """How to ask for less when it is too slow: ``(a shorter range, fewer series)``."""
    tls_hint: str = ""
    """Said after an untrusted TLS certificate."""

    @property
    def url_setting(self) -> str:
        return f"{self.key}.url"

    def settings(self, config: Mapping[str, Any]) -> Mapping[str, Any]:
        settings = lookup_dotted(config, self.key)
        return settings if isinstance(settings, Mapping) else {}


class EgressCheckedResolver(AbstractResolver):
    """Resolves with the default resolver and refuses every answer the egress policy does not allow;
    aiohttp then connects to exactly the addresses returned here. (IP literals skip resolvers; the
    configured URL's literal was checked by ``connect``, and redirects are not followed.)"""

    def __init__(self, *, private_allowed: bool, setting: str = "integrations.prometheus.url") -> None:
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


def shown_url(url: str) -> str:
    """``url`` without user info, query or fragment, for requests, messages and links."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")


async def read_capped(
    response: aiohttp.ClientResponse, backend: HttpBackend, doing: str, max_bytes: int = MAX_BODY_BYTES
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > max_bytes:
            raise backend.error(
                f"{backend.possessive} answer was larger than {max_bytes // 2**20} MB when asked to "
                f"{doing}; {backend.narrow_large}"
            )
        chunks.append(chunk)
    return b"".join(chunks)


QueryParams = Mapping[str, Any] | Sequence[tuple[str, str]] | None
"""A query string: a mapping, or pairs when a key repeats."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What a backend answered: the status, the (capped) body and its ``Retry-After`` header, if any."""

    status: int
    body: bytes
    retry_after: str | None = None


async def send(
    session: aiohttp.ClientSession,
    backend: HttpBackend,
    url: str,
    path: str,
    params: QueryParams = None,
    *,
    doing: str,
    timeout_s: float,
    method: str = "GET",
    json: Mapping[str, Any] | None = None,
    max_bytes: int = MAX_BODY_BYTES,
) -> HttpAnswer:
    """``method url + path`` (with a JSON body when ``json`` is given) without following redirects;
    raises ``backend.error`` in plain words when there is no answer or it is larger than ``max_bytes``."""
    try:
        async with session.request(
            method, f"{url}{path}", params=params, json=json, allow_redirects=False
        ) as response:
            retry_after = response.headers.get("Retry-After")
            return HttpAnswer(
                response.status, await read_capped(response, backend, doing, max_bytes), retry_after
            )
    except BackendError:
        raise
    except EgressRefused as exc:
        raise backend.error(f"Refused to {doing}: {exc}") from exc
    except TimeoutError as exc:
        raise backend.error(
            f"{backend.name} at {url} did not answer within {timeout_s:g} s when asked to {doing}; "
            f"narrow it {backend.narrow_slow} or raise {backend.key}.timeout_s."
        ) from exc
    except aiohttp.ClientError as exc:
        raise backend.error(
            f"{backend.name} at {url} is unreachable ({network_cause(exc, backend.tls_hint)}); "
            f"could not {doing}."
        ) from exc


async def fetch(
    session: aiohttp.ClientSession,
    backend: HttpBackend,
    url: str,
    path: str,
    params: Mapping[str, Any] | None,
    *,
    doing: str,
    timeout_s: float,
) -> tuple[int, bytes]:
    """``GET url + path`` without following redirects: the status and the (capped) body; raises
    ``backend.error`` in plain words when there is no answer. (``send`` for other methods, a JSON body
    or ``Retry-After``.)"""
    answer = await send(session, backend, url, path, dict(params or {}), doing=doing, timeout_s=timeout_s)
    return answer.status, answer.body


def network_cause(exc: BaseException, tls_hint: str = "") -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return f"its TLS certificate is not trusted{tls_hint}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "host name not found"
    text = repr(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text:
        return "timed out"
    return "connection dropped"


def redirected(backend: HttpBackend, status: int, url: str, doing: str) -> str:
    return (
        f"{backend.name} at {url} redirected elsewhere ({status}) when asked to {doing}: a login proxy may "
        f"be in front of it. Set {backend.key}.headers, or point {backend.url_setting} at the API."
    )


def unauthorized(backend: HttpBackend, url: str, doing: str) -> str:
    return (
        f"{backend.name} at {url} asked for credentials (401 Unauthorized) when asked to {doing}: set or "
        f"correct the Authorization header in {backend.key}.headers."
    )


def forbidden(backend: HttpBackend, url: str, doing: str, lacking: str) -> str:
    return (
        f"{backend.name} at {url} refused access (403 Forbidden) when asked to {doing}: the credentials "
        f"in {backend.key}.headers lack access{lacking}"
    )


def in_trouble(backend: HttpBackend, status: int, url: str, doing: str) -> str:
    return (
        f"{backend.name} at {url} answered {status} when asked to {doing}; it may be having trouble, "
        "try again in a minute."
    )


def timeout_setting(
    settings: Mapping[str, Any],
    backend: HttpBackend,
    default: float = DEFAULT_TIMEOUT_S,
    maximum: float = MAX_TIMEOUT_S,
) -> float:
    raw = settings.get("timeout_s")
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise backend.not_configured(f"{backend.key}.timeout_s must be a positive number of seconds.")
    return min(float(raw), maximum)


def header_setting(raw: object, backend: HttpBackend) -> dict[str, str]:
    """The configured ``headers`` (``raw``; none when ``None``) as text."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str | int) for v in raw.values()):
        raise backend.not_configured(
            f'{backend.key}.headers must map header names to text, e.g. {{"Authorization": "Bearer …"}}.'
        )
    return {str(k): str(v) for k, v in raw.items()}


@dataclass(slots=True)
class Target:
    """A configured URL that the egress policy allows, before a session is opened."""

    url: str
    """The base URL without user info (the session sends it as basic auth)."""
    timeout_s: float
    headers: dict[str, str]
    """``Accept``, ``User-Agent`` and basic auth from the URL's user info."""
    policy: EgressPolicy


async def open_target(
    settings: Mapping[str, Any], backend: HttpBackend, *, timeout_s: float | None = None
) -> Target:
    """The common first steps of ``connect``: raises ``backend.not_configured`` with plain words when
    the backend is turned off, no usable URL is set, the egress policy refuses it or the timeout is
    not a number."""
    if settings.get("enabled") is False:
        raise backend.not_configured(
            f"{backend.name} is turned off for this team ({backend.key}.enabled is false)."
        )
    raw_url = settings.get("url")
    if not raw_url or not isinstance(raw_url, str):
        raise backend.not_configured(backend.not_configured_text)
    parts = urlsplit(raw_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise backend.not_configured(f"{backend.url_setting} must be an http:// or https:// URL.")
    url = shown_url(raw_url.strip())
    policy = current_policy()
    try:
        await policy.check_url(url, setting=backend.url_setting)
    except EgressRefused as exc:
        raise backend.not_configured(f"Refused to connect: {exc}") from exc
    total = timeout_s if timeout_s is not None else timeout_setting(settings, backend)
    headers = {"Accept": "application/json", "User-Agent": "IncidentFox"}
    if parts.username:
        headers["Authorization"] = aiohttp.encode_basic_auth(
            unquote(parts.username), unquote(parts.password or "")
        )
    return Target(url, total, headers, policy)


async def open_session(
    target: Target,
    backend: HttpBackend,
    *,
    headers: Mapping[str, str],
    ssl_context: ssl.SSLContext | bool = True,
) -> aiohttp.ClientSession:
    """A session to ``target`` whose connections pass the egress policy, sending ``headers`` too."""
    resolver = EgressCheckedResolver(
        private_allowed=await target.policy.private_allowed(), setting=backend.url_setting
    )
    total = target.timeout_s
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=resolver, ssl=ssl_context, limit=8),
        timeout=aiohttp.ClientTimeout(total=total, sock_connect=min(total, 5.0)),
        headers={**target.headers, **headers},
    )


class Closable(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=Closable)


async def check_backend_health(
    config: Mapping[str, Any],
    backend: HttpBackend,
    connect: Callable[[], Awaitable[ClientT]],
    probe: Callable[[ClientT], Awaitable[None]],
) -> ToolsetHealth:
    """Not configured without a URL; else ``connect()``, then ``probe`` the client (which raises
    ``backend.error``), and always close it."""
    if not backend.settings(config).get("url"):
        return ToolsetHealth(configured=False, reason="no url is set")
    try:
        client = await connect()
    except backend.not_configured as exc:
        return ToolsetHealth.failing(str(exc))
    try:
        await probe(client)
    except backend.error as exc:
        return ToolsetHealth.failing(str(exc))
    finally:
        await client.close()
    return ToolsetHealth.ok()
