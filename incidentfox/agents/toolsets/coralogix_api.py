"""The connection half of the coralogix toolset: an aiohttp client over Coralogix's Direct Query HTTP API
and the alert definitions of its Alerts API v3, their failures in plain words, and the health check.

No maintained async Python client exists for DataPrime, so requests are plain HTTP through
``http_backend`` (egress policy on the configured host, checked again on every connection, redirects
not followed, capped reads).

Settings under ``integrations.coralogix``: ``api_key`` (required, a secret: a personal or team key with
the DataQuerying preset, and Alerts for ``cx_alerts``), and either ``domain`` (the account's Coralogix
domain, e.g. ``eu2.coralogix.com``: queries go to ``https://ng-api-http.<domain>``, alert definitions to
``https://api.<domain>``) or ``url`` (one base URL serving both, e.g. a private link or the emulator),
``timeout_s`` (default 20) and ``enabled: false``. The toolset's only prerequisite is ``api_key``; a
missing domain and url is reported by ``connect`` and the health check.

Shapes followed (Coralogix docs "HTTP API queries" and the Coralogix CLI, cx-cli): ``POST
/api/v1/dataprime/query`` with ``{"query", "metadata": {"tier", "syntax", "startDate", "endDate",
"defaultSource", "limit"}}`` answers NDJSON lines ``{"queryId": …}``, ``{"result": {"results": [...]}}``,
``{"warning": {...}}`` and, for a query that fails after the answer started, ``{"error": …}``; ``GET
/mgmt/openapi/latest/alerts/alerts-general/v3`` answers ``{"alertDefs": [...]}``. Error bodies are read
as gRPC-gateway JSON (``message``) or text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from incidentfox.agents.toolsets.base import ToolsetHealth
from incidentfox.agents.toolsets.http_backend import (
    BackendError,
    HttpAnswer,
    HttpBackend,
    in_trouble,
    open_session,
    open_target,
    send,
)
from incidentfox.agents.toolsets.prometheus_views import iso
from incidentfox.egress import EgressRefused

KEY = "integrations.coralogix"
QUERY_PATH = "/api/v1/dataprime/query"
ALERTS_PATH = "/mgmt/openapi/latest/alerts/alerts-general/v3"
MAX_QUERY_BYTES = 8 * 1024 * 1024
_MAX_ERROR_TEXT = 400
_DOMAIN = re.compile(r"^(?=.{4,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
NOT_CONFIGURED = (
    "Coralogix is not configured for this team: set integrations.coralogix.domain (the account's Coralogix "
    "domain, e.g. eu2.coralogix.com) or integrations.coralogix.url, and integrations.coralogix.api_key."
)


class CxNotConfigured(Exception):
    """No usable Coralogix configuration; the message says what to set."""


class CxError(BackendError):
    """A request to Coralogix that failed: one plain sentence, and ``status``."""


CX_BACKEND = HttpBackend(
    name="Coralogix",
    key=KEY,
    possessive="Coralogix's",
    not_configured=CxNotConfigured,
    error=CxError,
    not_configured_text=NOT_CONFIGURED,
    narrow_large="narrow it with a filter, a lower limit or a shorter window.",
    narrow_slow="(a shorter window, a filter on application or subsystem, a lower limit)",
)


def cx_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return CX_BACKEND.settings(config)


@dataclass(slots=True)
class QueryAnswer:
    """The result rows of one query (``metadata``/``labels``/``userData`` objects) and its warnings."""

    results: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CxClient:
    """The per-run connection: one session, the query host and the management API host."""

    session: aiohttp.ClientSession
    query_url: str
    api_url: str
    timeout_s: float

    async def query(
        self,
        query: str,
        *,
        start: datetime,
        end: datetime,
        limit: int,
        doing: str,
        syntax: str = "QUERY_SYNTAX_DATAPRIME",
        tier: str = "TIER_FREQUENT_SEARCH",
    ) -> QueryAnswer:
        """Run one query over ``[start, end)``; raises ``CxError`` saying what went wrong while trying
        to ``doing``."""
        metadata = {
            "tier": tier,
            "syntax": syntax,
            "startDate": iso(start),
            "endDate": iso(end),
            "defaultSource": "logs",
            "limit": limit,
        }
        body = {"query": query, "metadata": metadata}
        sent = await self._send("POST", self.query_url, QUERY_PATH, body, doing)
        if 200 <= sent.status < 300:
            return parse_ndjson(sent.body, self.query_url, doing)
        raise CxError(_describe(sent, self.query_url, QUERY_PATH, doing), sent.status)

    async def alert_defs(self) -> list[dict[str, Any]]:
        """Every alert definition (``alertDefs`` of the Alerts API v3)."""
        doing = "list alert definitions"
        sent = await self._send("GET", self.api_url, ALERTS_PATH, None, doing)
        if not 200 <= sent.status < 300:
            raise CxError(_describe(sent, self.api_url, ALERTS_PATH, doing), sent.status)
        try:
            body = json.loads(sent.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise CxError(
                f"{self.api_url} answered, but not as Coralogix's Alerts API (no JSON at {ALERTS_PATH})."
            )
        return [d for d in body.get("alertDefs") or [] if isinstance(d, dict)]

    async def _send(
        self, method: str, base: str, path: str, body: Mapping[str, Any] | None, doing: str
    ) -> HttpAnswer:
        """The answer, its body capped at ``MAX_QUERY_BYTES``; raises ``CxError`` when there is none."""
        return await send(
            self.session,
            CX_BACKEND,
            base,
            path,
            doing=doing,
            timeout_s=self.timeout_s,
            method=method,
            json=body,
            max_bytes=MAX_QUERY_BYTES,
        )

    async def close(self) -> None:
        await self.session.close()


def parse_ndjson(raw: bytes, url: str, doing: str) -> QueryAnswer:
    """The NDJSON answer of a query as rows and warnings; an ``error`` line raises ``CxError``."""
    answer = QueryAnswer()
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise CxError(
                f"{url} answered, but not as Coralogix's query API (a line that is not JSON); check that "
                f"{KEY}.url or {KEY}.domain points at Coralogix."
            ) from exc
        if not isinstance(item, dict):
            continue
        if "error" in item:
            raise CxError(f"Coralogix failed to {doing}: {_message(item['error'])}.")
        if isinstance(item.get("result"), dict):
            answer.results.extend(r for r in item["result"].get("results") or [] if isinstance(r, dict))
        elif isinstance(item.get("warning"), dict):
            answer.warnings.extend(_warning(kind, detail) for kind, detail in item["warning"].items())
    return answer


def _message(error: Any) -> str:
    text = (error.get("message") or json.dumps(error)) if isinstance(error, dict) else str(error)
    return " ".join(str(text).split())[:_MAX_ERROR_TEXT].rstrip(".")


def _warning(kind: str, detail: Any) -> str:
    if kind == "numberOfResultsLimitWarning" and isinstance(detail, dict):
        return f"results were cut at the limit of {detail.get('numberOfResultsLimit')}"
    if isinstance(detail, dict):
        text = detail.get("warningMessage") or detail.get("message")
        if text:
            return str(text)[:_MAX_ERROR_TEXT]
    return f"{kind}: {json.dumps(detail)[:_MAX_ERROR_TEXT]}"


def _detail(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = str(body.get("message") or body.get("error") or body.get("detail") or "")
    if text.lstrip().startswith("<"):
        return ""
    return " ".join(text.split())[:_MAX_ERROR_TEXT]


def _describe(sent: HttpAnswer, url: str, path: str, doing: str) -> str:
    status, detail, retry = sent.status, _detail(sent.body), sent.retry_after
    if status == 400:
        return (
            f"Coralogix rejected the request to {doing}: {detail or 'bad request'} (400). "
            "Correct it and try again."
        )
    if 300 <= status < 400:
        return (
            f"Coralogix at {url} redirected elsewhere ({status}) when asked to {doing}: point {KEY}.url at "
            f"the API host, or set {KEY}.domain instead."
        )
    if status == 401:
        return (
            f"Coralogix at {url} did not accept the API key (401 {detail or 'Unauthorized'}) when asked to "
            f"{doing}: set a valid key in {KEY}.api_key, created in the same Coralogix domain."
        )
    if status == 403:
        preset = "Alerts" if path == ALERTS_PATH else "DataQuerying"
        return (
            f"Coralogix at {url} refused access (403 {detail or 'Forbidden'}) when asked to {doing}: the key "
            f"in {KEY}.api_key lacks the permission; give it the {preset} preset."
        )
    if status == 404:
        return f"Coralogix at {url} has no {path} (404): check {KEY}.domain or {KEY}.url."
    if status == 429:
        wait = f"try again in {retry} s" if retry and retry.isdigit() else "try again in a minute"
        return (
            f"Coralogix at {url} is rate limiting this key, {wait} (429 {detail or 'Too Many Requests'}); "
            f"could not {doing}."
        )
    if detail and status < 500:
        return f"Coralogix failed to {doing}: {detail} ({status})."
    return in_trouble(CX_BACKEND, status, url, doing)


def _endpoints(settings: Mapping[str, Any]) -> tuple[str, str, str]:
    """The query base URL, the management API base URL and the setting they come from."""
    url = settings.get("url")
    if url:
        if not isinstance(url, str):
            raise CxNotConfigured(f"{KEY}.url must be an http:// or https:// URL.")
        return url, url, f"{KEY}.url"
    domain = settings.get("domain")
    if not domain:
        raise CxNotConfigured(NOT_CONFIGURED)
    host = str(domain).strip().lower().rstrip("/")
    for prefix in ("ng-api-http.", "api."):
        host = host.removeprefix(prefix)
    if not _DOMAIN.match(host):
        raise CxNotConfigured(
            f"{KEY}.domain must be a Coralogix domain such as eu2.coralogix.com; put a full URL in {KEY}.url."
        )
    return f"https://ng-api-http.{host}", f"https://api.{host}", f"{KEY}.domain"


def _api_key(settings: Mapping[str, Any]) -> str:
    key = settings.get("api_key")
    if not key or not isinstance(key, str):
        raise CxNotConfigured(f"Coralogix needs an API key: set {KEY}.api_key (a personal or team API key).")
    return key.strip().removeprefix("Bearer ").strip()


async def connect(config: Mapping[str, Any], *, timeout_s: float | None = None) -> CxClient:
    """Build the run's client from the team's effective config (see the module docstring).

    Raises ``CxNotConfigured`` with plain words when the toolset is off, the key, domain or url is
    missing or unusable, or the egress policy refuses the host. No request is made here.
    """
    settings = cx_settings(config)
    if settings.get("enabled") is False:
        raise CxNotConfigured(f"Coralogix is turned off for this team ({KEY}.enabled is false).")
    key = _api_key(settings)
    query_url, api_url, setting = _endpoints(settings)
    target = await open_target({**settings, "url": query_url}, CX_BACKEND, timeout_s=timeout_s)
    if api_url != query_url:
        try:
            await target.policy.check_url(api_url, setting=setting)
        except EgressRefused as exc:
            raise CxNotConfigured(f"Refused to connect: {exc}") from exc
        api_url = api_url.rstrip("/")
    else:
        api_url = target.url
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/x-ndjson, application/json"}
    session = await open_session(target, CX_BACKEND, headers=headers)
    return CxClient(session, target.url, api_url, target.timeout_s)


async def check_health(config: Mapping[str, Any], *, timeout_s: float) -> ToolsetHealth:
    """``source logs | limit 1`` over the last minute: proves the host serves Coralogix's query API and
    that the key is accepted for querying logs."""
    if not cx_settings(config).get("api_key"):
        return ToolsetHealth(configured=False, reason="no api_key is set")
    try:
        client = await connect(config, timeout_s=timeout_s)
    except CxNotConfigured as exc:
        return ToolsetHealth.failing(str(exc))
    end = datetime.now(UTC)
    try:
        await client.query(
            "source logs | limit 1",
            start=end - timedelta(minutes=1),
            end=end,
            limit=1,
            doing="run a test query",
        )
    except CxError as exc:
        return ToolsetHealth.failing(str(exc))
    finally:
        await client.close()
    return ToolsetHealth.ok()
