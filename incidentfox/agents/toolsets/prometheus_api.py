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

import json
import math
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from incidentfox.agents.toolsets.base import ToolsetHealth
from incidentfox.agents.toolsets.http_backend import (
    BackendError,
    HttpBackend,
    check_backend_health,
    fetch,
    forbidden,
    header_setting,
    in_trouble,
    open_session,
    open_target,
    redirected,
    unauthorized,
)
from incidentfox.agents.toolsets.http_backend import (
    EgressCheckedResolver as EgressCheckedResolver,
)

URL_SETTING = "integrations.prometheus.url"
_MAX_ERROR_TEXT = 400
NOT_CONFIGURED = (
    "Prometheus is not configured for this team: set integrations.prometheus.url "
    "(the server's base URL, e.g. http://prometheus.monitoring:9090)."
)
Obj = dict[str, Any]


class PrometheusNotConfigured(Exception):
    """No usable Prometheus configuration; the message says what to set."""


class PrometheusError(BackendError):
    """A request to Prometheus that failed: one plain sentence, and ``status``."""


PROMETHEUS_BACKEND = HttpBackend(
    name="Prometheus",
    key="integrations.prometheus",
    possessive="Prometheus'",
    not_configured=PrometheusNotConfigured,
    error=PrometheusError,
    not_configured_text=NOT_CONFIGURED,
    narrow_large="narrow it with label matchers or a shorter range.",
    narrow_slow="(a shorter range, fewer series)",
    tls_hint="; set integrations.prometheus.ca_cert_content for a private CA",
)


def prometheus_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return PROMETHEUS_BACKEND.settings(config)


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
        status, raw = await fetch(
            self.session, PROMETHEUS_BACKEND, self.url, path, params, doing=doing, timeout_s=self.timeout_s
        )
        return _unwrap(raw, status, self.url, path, doing)

    async def close(self) -> None:
        await self.session.close()


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
        return redirected(PROMETHEUS_BACKEND, status, url, doing)
    if status == 401:
        return unauthorized(PROMETHEUS_BACKEND, url, doing)
    if status == 403:
        return forbidden(PROMETHEUS_BACKEND, url, doing, " (for Mimir, check X-Scope-OrgID).")
    if status == 404:
        return (
            f"Prometheus at {url} has no {path} (404): check that {URL_SETTING} is the server's base URL "
            "(for Mimir include /prometheus), or this backend does not offer it."
        )
    if status == 429:
        return f"Prometheus at {url} is rate-limiting IncidentFox (429); could not {doing}. Try again later."
    if detail:
        return f"Prometheus refused to {doing}: {detail} ({code})."
    return in_trouble(PROMETHEUS_BACKEND, status, url, doing)


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
    target = await open_target(settings, PROMETHEUS_BACKEND, timeout_s=timeout_s)
    ssl_context = _ssl_context(settings)
    headers = header_setting(settings.get("headers"), PROMETHEUS_BACKEND)
    session = await open_session(target, PROMETHEUS_BACKEND, headers=headers, ssl_context=ssl_context)
    return PrometheusClient(session=session, url=target.url, timeout_s=target.timeout_s)


async def check_health(config: Mapping[str, Any], *, timeout_s: float) -> ToolsetHealth:
    """One cheap call: the build info (or ``vector(1)`` where a backend lacks that endpoint), which proves
    that the URL serves Prometheus' API and that the headers are accepted."""

    async def probe(client: PrometheusClient) -> None:
        try:
            await client.get("/api/v1/status/buildinfo", None, doing="read its build info")
        except PrometheusError as exc:
            if exc.status != 404:
                raise
            await client.get("/api/v1/query", {"query": "vector(1)"}, doing="run a test query")

    return await check_backend_health(
        config, PROMETHEUS_BACKEND, lambda: connect(config, timeout_s=timeout_s), probe
    )
