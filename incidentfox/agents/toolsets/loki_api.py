"""The connection half of the loki toolset: an aiohttp client over Loki's HTTP API, its failures in
plain words, and the health check.

``connect`` reads the team's ``integrations.loki``: ``url`` (required: the base URL that serves
``/loki/api/v1/...``, e.g. ``http://loki-gateway.monitoring`` or a Grafana Cloud logs URL), ``headers``
(sent on every request, e.g. ``Authorization``), ``tenant`` (sent as ``X-Scope-OrgID`` for a
multi-tenant Loki), ``timeout_s`` (default 20), ``grafana_url`` and ``grafana_datasource`` (the Loki
data source's uid in Grafana, default ``loki``) for links to Grafana Explore, and ``enabled: false``.
User info in the URL is sent as basic auth and never shown.

The URL passes the egress policy when connecting, and every host name is checked again when a
connection is opened (prometheus_api's ``EgressCheckedResolver``). Redirects are not followed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp

from incidentfox.agents.toolsets.base import ToolsetHealth, lookup_dotted
from incidentfox.agents.toolsets.prometheus_api import EgressCheckedResolver, shown_url
from incidentfox.egress import EgressRefused, current_policy

URL_SETTING = "integrations.loki.url"
DEFAULT_TIMEOUT_S = 20.0
MAX_TIMEOUT_S = 120.0
MAX_BODY_BYTES = 16 * 1024 * 1024
_MAX_ERROR_TEXT = 400
NOT_CONFIGURED = (
    "Loki is not configured for this team: set integrations.loki.url "
    "(the server's base URL, e.g. http://loki-gateway.monitoring)."
)


class LokiNotConfigured(Exception):
    """No usable Loki configuration; the message says what to set."""


class LokiError(Exception):
    """A request that failed; ``str(exc)`` is one plain sentence, ``status`` the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def loki_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    settings = lookup_dotted(config, "integrations.loki")
    return settings if isinstance(settings, Mapping) else {}


def to_ns(at: datetime) -> str:
    """``at`` as the unix nanoseconds Loki reads exactly."""
    return str((at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000)


@dataclass(slots=True)
class LokiClient:
    """The per-run connection: an aiohttp session, the base URL it asks, and where Grafana is."""

    session: aiohttp.ClientSession
    url: str
    timeout_s: float
    grafana_url: str | None = None
    grafana_datasource: str = "loki"

    async def get(self, path: str, params: Mapping[str, Any] | None, *, doing: str) -> Any:
        """The ``data`` of Loki's ``{"status": "success", "data": ...}`` answer at ``path``; raises
        ``LokiError`` whose message says what went wrong while trying to ``doing``."""
        status, raw = await self._fetch(path, params, doing)
        if 200 <= status < 300:
            try:
                body = json.loads(raw or b"")
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("status") == "success":
                return body.get("data")
            raise LokiError(
                f"{self.url} answered, but not as Loki's API (no JSON status at {path}); check that "
                f"{URL_SETTING} is Loki's base URL.",
                status,
            )
        raise LokiError(_describe_status(status, _detail(raw), self.url, path, doing), status)

    async def ready(self) -> None:
        """``GET /ready``: Loki answers ``ready`` once it can serve; a gateway without it (404) passes."""
        status, raw = await self._fetch("/ready", None, "check it is ready")
        if 200 <= status < 300 or status == 404:
            return
        if status == 503:
            raise LokiError(
                f"Loki at {self.url} is not ready (503: {_detail(raw) or 'no reason given'}).", 503
            )
        raise LokiError(
            _describe_status(status, _detail(raw), self.url, "/ready", "check it is ready"), status
        )

    async def _fetch(self, path: str, params: Mapping[str, Any] | None, doing: str) -> tuple[int, bytes]:
        try:
            async with self.session.get(
                f"{self.url}{path}", params=dict(params or {}), allow_redirects=False
            ) as response:
                return response.status, await _read_capped(response, doing)
        except LokiError:
            raise
        except EgressRefused as exc:
            raise LokiError(f"Refused to {doing}: {exc}") from exc
        except TimeoutError as exc:
            raise LokiError(
                f"Loki at {self.url} did not answer within {self.timeout_s:g} s when asked to {doing}; "
                "narrow it (a shorter window, a more specific selector, a line filter) or raise "
                "integrations.loki.timeout_s."
            ) from exc
        except aiohttp.ClientError as exc:
            raise LokiError(
                f"Loki at {self.url} is unreachable ({_network_cause(exc)}); could not {doing}."
            ) from exc

    async def close(self) -> None:
        await self.session.close()


async def _read_capped(response: aiohttp.ClientResponse, doing: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise LokiError(
                f"Loki's answer was larger than {MAX_BODY_BYTES // 2**20} MB when asked to {doing}; "
                "narrow it with a line filter, a lower limit or a shorter window."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _detail(raw: bytes) -> str:
    """Loki's error text: plain text, or ``error``/``message`` of a JSON body (some gateways)."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = str(body.get("error") or body.get("message") or "")
    if text.lstrip().startswith("<"):
        return ""
    return " ".join(text.split())[:_MAX_ERROR_TEXT]


def _describe_status(status: int, detail: str, url: str, path: str, doing: str) -> str:
    if status == 400:
        return (
            f"Loki rejected the request to {doing}: {detail or 'bad request'} (400). "
            "Correct it and try again."
        )
    if 300 <= status < 400:
        return (
            f"Loki at {url} redirected elsewhere ({status}) when asked to {doing}: a login proxy may be in "
            f"front of it. Set integrations.loki.headers, or point {URL_SETTING} at the API."
        )
    if status == 401 and "org id" in detail.lower():
        return (
            f"Loki at {url} is multi-tenant and needs a tenant (401 {detail}) when asked to {doing}: set "
            "integrations.loki.tenant (sent as X-Scope-OrgID)."
        )
    if status == 401:
        return (
            f"Loki at {url} asked for credentials (401 Unauthorized) when asked to {doing}: set or correct "
            "the Authorization header in integrations.loki.headers."
        )
    if status == 403:
        return (
            f"Loki at {url} refused access (403 Forbidden) when asked to {doing}: the credentials in "
            "integrations.loki.headers lack access to this tenant."
        )
    if status == 404:
        return f"Loki at {url} has no {path} (404): check that {URL_SETTING} is Loki's base URL."
    if status == 429:
        return (
            f"Loki at {url} is rate limited, try again in a minute (429 {detail or 'Too Many Requests'}); "
            f"could not {doing}. A shorter window or a narrower selector costs it less."
        )
    if status in (502, 503, 504) and not detail:
        return (
            f"Loki at {url} answered {status} when asked to {doing}; it may be overloaded, "
            "try a shorter window."
        )
    if detail:
        return f"Loki failed to {doing}: {detail} ({status})."
    return (
        f"Loki at {url} answered {status} when asked to {doing}; it may be having trouble, "
        "try again in a minute."
    )


def _network_cause(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "its TLS certificate is not trusted"
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
        raise LokiNotConfigured("integrations.loki.timeout_s must be a positive number of seconds.")
    return min(float(raw), MAX_TIMEOUT_S)


def _headers(settings: Mapping[str, Any]) -> dict[str, str]:
    raw = settings.get("headers") or {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str | int) for v in raw.values()):
        raise LokiNotConfigured(
            'integrations.loki.headers must map header names to text, e.g. {"Authorization": "Bearer …"}.'
        )
    headers = {str(k): str(v) for k, v in raw.items()}
    tenant = settings.get("tenant")
    if tenant:
        headers["X-Scope-OrgID"] = str(tenant)
    return headers


def _grafana_url(settings: Mapping[str, Any]) -> str | None:
    raw = settings.get("grafana_url")
    if not raw or not isinstance(raw, str):
        return None
    if urlsplit(raw).scheme not in ("http", "https"):
        raise LokiNotConfigured("integrations.loki.grafana_url must be an http:// or https:// URL.")
    return shown_url(raw.strip())


async def connect(config: Mapping[str, Any], *, timeout_s: float | None = None) -> LokiClient:
    """Build the run's client from the team's effective config (see the module docstring).

    Raises ``LokiNotConfigured`` with plain words when nothing usable is configured or the egress
    policy refuses the URL. No request is made here.
    """
    settings = loki_settings(config)
    if settings.get("enabled") is False:
        raise LokiNotConfigured("Loki is turned off for this team (integrations.loki.enabled is false).")
    raw_url = settings.get("url")
    if not raw_url or not isinstance(raw_url, str):
        raise LokiNotConfigured(NOT_CONFIGURED)
    parts = urlsplit(raw_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LokiNotConfigured(f"{URL_SETTING} must be an http:// or https:// URL.")
    url = shown_url(raw_url.strip())
    policy = current_policy()
    try:
        await policy.check_url(url, setting=URL_SETTING)
    except EgressRefused as exc:
        raise LokiNotConfigured(f"Refused to connect: {exc}") from exc
    total = timeout_s if timeout_s is not None else _timeout(settings)
    headers = {"Accept": "application/json", "User-Agent": "IncidentFox"}
    if parts.username:
        headers["Authorization"] = aiohttp.encode_basic_auth(
            unquote(parts.username), unquote(parts.password or "")
        )
    headers.update(_headers(settings))
    grafana = _grafana_url(settings)
    resolver = EgressCheckedResolver(private_allowed=await policy.private_allowed(), setting=URL_SETTING)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=resolver, limit=8),
        timeout=aiohttp.ClientTimeout(total=total, sock_connect=min(total, 5.0)),
        headers=headers,
    )
    datasource = str(settings.get("grafana_datasource") or "loki")
    return LokiClient(session, url, total, grafana_url=grafana, grafana_datasource=datasource)


async def check_health(config: Mapping[str, Any], *, timeout_s: float) -> ToolsetHealth:
    """``GET /ready``, then the label names of the last hour: proves that the URL serves Loki's API
    and that the headers and tenant are accepted."""
    if not loki_settings(config).get("url"):
        return ToolsetHealth(configured=False, reason="no url is set")
    try:
        client = await connect(config, timeout_s=timeout_s)
    except LokiNotConfigured as exc:
        return ToolsetHealth.failing(str(exc))
    try:
        await client.ready()
        end = datetime.now(UTC)
        window = {"start": to_ns(end - timedelta(hours=1)), "end": to_ns(end)}
        await client.get("/loki/api/v1/labels", window, doing="list label names")
    except LokiError as exc:
        return ToolsetHealth.failing(str(exc))
    finally:
        await client.close()
    return ToolsetHealth.ok()
