"""The connection half of the loki toolset: an aiohttp client over Loki's HTTP API, its failures in
plain words, and the health check.

``connect`` reads the team's ``integrations.loki``: ``url`` (required: the base URL that serves
``/loki/api/v1/...``, e.g. ``http://loki-gateway.monitoring`` or a Grafana Cloud logs URL), ``headers``
(sent on every request, e.g. ``Authorization``), ``tenant`` (sent as ``X-Scope-OrgID`` for a
multi-tenant Loki), ``timeout_s`` (default 20), ``grafana_url`` and ``grafana_datasource`` (the Loki
data source's uid in Grafana, default ``loki``) for links to Grafana Explore, and ``enabled: false``.
User info in the URL is sent as basic auth and never shown.

The URL passes the egress policy when connecting, and every host name is checked again when a
connection is opened (http_backend's ``EgressCheckedResolver``). Redirects are not followed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

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
    shown_url,
    unauthorized,
)

URL_SETTING = "integrations.loki.url"
_MAX_ERROR_TEXT = 400
NOT_CONFIGURED = (
    "Loki is not configured for this team: set integrations.loki.url "
    "(the server's base URL, e.g. http://loki-gateway.monitoring)."
)


class LokiNotConfigured(Exception):
    """No usable Loki configuration; the message says what to set."""


class LokiError(BackendError):
    """A request to Loki that failed: one plain sentence, and ``status``."""


LOKI_BACKEND = HttpBackend(
    name="Loki",
    key="integrations.loki",
    possessive="Loki's",
    not_configured=LokiNotConfigured,
    error=LokiError,
    not_configured_text=NOT_CONFIGURED,
    narrow_large="narrow it with a line filter, a lower limit or a shorter window.",
    narrow_slow="(a shorter window, a more specific selector, a line filter)",
)


def loki_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return LOKI_BACKEND.settings(config)


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
        return await fetch(
            self.session, LOKI_BACKEND, self.url, path, params, doing=doing, timeout_s=self.timeout_s
        )

    async def close(self) -> None:
        await self.session.close()


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
        return redirected(LOKI_BACKEND, status, url, doing)
    if status == 401 and "org id" in detail.lower():
        return (
            f"Loki at {url} is multi-tenant and needs a tenant (401 {detail}) when asked to {doing}: set "
            "integrations.loki.tenant (sent as X-Scope-OrgID)."
        )
    if status == 401:
        return unauthorized(LOKI_BACKEND, url, doing)
    if status == 403:
        return forbidden(LOKI_BACKEND, url, doing, " to this tenant.")
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
    return in_trouble(LOKI_BACKEND, status, url, doing)


def _headers(settings: Mapping[str, Any]) -> dict[str, str]:
    headers = header_setting(settings.get("headers") or {}, LOKI_BACKEND)
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
    target = await open_target(settings, LOKI_BACKEND, timeout_s=timeout_s)
    headers = _headers(settings)
    grafana = _grafana_url(settings)
    session = await open_session(target, LOKI_BACKEND, headers=headers)
    datasource = str(settings.get("grafana_datasource") or "loki")
    return LokiClient(
        session, target.url, target.timeout_s, grafana_url=grafana, grafana_datasource=datasource
    )


async def check_health(config: Mapping[str, Any], *, timeout_s: float) -> ToolsetHealth:
    """``GET /ready``, then the label names of the last hour: proves that the URL serves Loki's API
    and that the headers and tenant are accepted."""

    async def probe(client: LokiClient) -> None:
        await client.ready()
        end = datetime.now(UTC)
        window = {"start": to_ns(end - timedelta(hours=1)), "end": to_ns(end)}
        await client.get("/loki/api/v1/labels", window, doing="list label names")

    return await check_backend_health(
        config, LOKI_BACKEND, lambda: connect(config, timeout_s=timeout_s), probe
    )
