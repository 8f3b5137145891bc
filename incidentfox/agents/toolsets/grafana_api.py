"""The connection half of the grafana toolset: an aiohttp client over Grafana's HTTP API, its failures
in plain words, and the health check.

``connect`` reads the team's ``integrations.grafana``: ``url`` (required: Grafana's base URL, e.g.
``https://grafana.example.com`` or a Grafana Cloud stack), ``api_key`` (a service account token, sent
as ``Authorization: Bearer``), ``org_id`` (sent as ``X-Grafana-Org-Id``), ``timeout_s`` (default 20)
and ``enabled: false``.

Grafana's query endpoint is ``POST /api/ds/query``, so this client sends POSTs as well as GETs; both go
through ``http_backend.send`` and its session (the URL passes the egress policy, every host name is
checked again when connecting, redirects are not followed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from incidentfox.agents.toolsets.base import ToolsetHealth
from incidentfox.agents.toolsets.http_backend import (
    BackendError,
    HttpBackend,
    QueryParams,
    check_backend_health,
    in_trouble,
    open_session,
    open_target,
    redirected,
    send,
)

KEY = "integrations.grafana"
_MAX_ERROR_TEXT = 400
NOT_CONFIGURED = (
    "Grafana is not configured for this team: set integrations.grafana.url "
    "(Grafana's base URL, e.g. https://grafana.example.com) and integrations.grafana.api_key."
)


class GrafanaNotConfigured(Exception):
    """No usable Grafana configuration; the message says what to set."""


class GrafanaError(BackendError):
    """A request to Grafana that failed: one plain sentence, ``status``, and Grafana's own message."""

    def __init__(self, message: str, status: int | None = None, detail: str = "") -> None:
        super().__init__(message, status)
        self.detail = detail


GRAFANA_BACKEND = HttpBackend(
    name="Grafana",
    key=KEY,
    possessive="Grafana's",
    not_configured=GrafanaNotConfigured,
    error=GrafanaError,
    not_configured_text=NOT_CONFIGURED,
    narrow_large="narrow it with a shorter window or a more specific query.",
    narrow_slow="(a shorter window, a more specific query)",
)


@dataclass(slots=True)
class GrafanaClient:
    """The per-run connection: an aiohttp session and Grafana's base URL (for requests and links)."""

    session: aiohttp.ClientSession
    url: str
    timeout_s: float

    async def get(self, path: str, params: QueryParams = None, *, doing: str) -> Any:
        """The JSON answer of ``GET path`` (``params`` as pairs when a key repeats, as ``tags`` does);
        raises ``GrafanaError`` in plain words."""
        return await self._send("GET", path, params, None, doing)

    async def post(self, path: str, body: Mapping[str, Any], *, doing: str) -> Any:
        """The JSON answer of ``POST path`` with a JSON ``body``; raises ``GrafanaError``."""
        return await self._send("POST", path, None, body, doing)

    async def _send(
        self,
        method: str,
        path: str,
        params: QueryParams,
        body: Mapping[str, Any] | None,
        doing: str,
    ) -> Any:
        sent = await send(
            self.session,
            GRAFANA_BACKEND,
            self.url,
            path,
            params,
            doing=doing,
            timeout_s=self.timeout_s,
            method=method,
            json=body,
        )
        status = sent.status
        answer = _json(sent.body)
        if 200 <= status < 300:
            if answer is None:
                raise GrafanaError(
                    f"{self.url} answered, but not as Grafana's API (no JSON at {path}); check that "
                    f"{KEY}.url is Grafana's base URL.",
                    status,
                )
            return answer
        detail = error_detail(answer)
        raise GrafanaError(
            describe_status(status, detail, self.url, path, doing, sent.retry_after), status, detail
        )

    async def close(self) -> None:
        await self.session.close()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"")
    except ValueError:
        return None


def error_detail(answer: Any) -> str:
    """Grafana's own words: ``message`` of an API error, or the first query error of ``/api/ds/query``
    (``{"results": {"A": {"error": "...", "status": 400}}}``)."""
    if not isinstance(answer, Mapping):
        return ""
    results = answer.get("results")
    if isinstance(results, Mapping):
        for ref, result in results.items():
            if isinstance(result, Mapping) and result.get("error"):
                return f"query {ref}: " + " ".join(str(result["error"]).split())[:_MAX_ERROR_TEXT]
    return " ".join(str(answer.get("message") or answer.get("error") or "").split())[:_MAX_ERROR_TEXT]


def describe_status(
    status: int, detail: str, url: str, path: str, doing: str, retry_after: str | None = None
) -> str:
    said = f"{status} {detail}".strip()
    if status == 400:
        return (
            f"Grafana rejected the request to {doing}: {detail or 'bad request'} (400). "
            "Correct it and try again."
        )
    if 300 <= status < 400:
        return redirected(GRAFANA_BACKEND, status, url, doing)
    if status == 401:
        return (
            f"Grafana at {url} did not accept the credentials ({said}) when asked to {doing}: set or correct "
            f"{KEY}.api_key (a service account token)."
        )
    if status == 403:
        return (
            f"Grafana at {url} refused access ({said}) when asked to {doing}: the service account of "
            f"{KEY}.api_key lacks the permission (give it the Viewer role), or {KEY}.org_id is wrong."
        )
    if status == 404:
        return f"Grafana at {url} found nothing at {path} ({said}) when asked to {doing}."
    if status == 429:
        wait = f"in {retry_after} s" if retry_after and retry_after.isdigit() else "in a minute"
        return (
            f"Grafana at {url} is rate limited, try again {wait} ({said or '429 Too Many Requests'}); "
            f"could not {doing}."
        )
    if detail:
        return f"Grafana failed to {doing}: {detail} ({status})."
    return in_trouble(GRAFANA_BACKEND, status, url, doing)


def _headers(settings: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    api_key = settings.get("api_key")
    if api_key is not None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise GrafanaNotConfigured(f"{KEY}.api_key must be a service account token (text).")
        headers["Authorization"] = f"Bearer {api_key.strip()}"
    org_id = settings.get("org_id")
    if org_id is not None:
        if isinstance(org_id, bool) or not str(org_id).isdigit():
            raise GrafanaNotConfigured(f"{KEY}.org_id must be a number, e.g. 1.")
        headers["X-Grafana-Org-Id"] = str(org_id)
    return headers


async def connect(config: Mapping[str, Any], *, timeout_s: float | None = None) -> GrafanaClient:
    """Build the run's client from the team's effective config (see the module docstring).

    Raises ``GrafanaNotConfigured`` with plain words when nothing usable is configured or the egress
    policy refuses the URL. No request is made here.
    """
    settings = GRAFANA_BACKEND.settings(config)
    target = await open_target(settings, GRAFANA_BACKEND, timeout_s=timeout_s)
    headers = _headers(settings)
    session = await open_session(target, GRAFANA_BACKEND, headers=headers)
    return GrafanaClient(session, target.url, target.timeout_s)


async def check_health(config: Mapping[str, Any], *, timeout_s: float) -> ToolsetHealth:
    """``GET /api/health`` (unauthenticated: Grafana is up and its database ok), then one search with
    the token, so that a token Grafana refuses shows as unhealthy with the reason."""

    async def probe(client: GrafanaClient) -> None:
        health = await client.get("/api/health", doing="check its health")
        database = health.get("database") if isinstance(health, Mapping) else None
        if database != "ok":
            raise GrafanaError(
                f"Grafana at {client.url} answered /api/health, but its database is {database or 'unknown'}."
            )
        await client.get("/api/search", {"limit": 1}, doing="search dashboards")

    return await check_backend_health(
        config, GRAFANA_BACKEND, lambda: connect(config, timeout_s=timeout_s), probe
    )
