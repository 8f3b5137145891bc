"""The connection half of the elasticsearch toolset: an aiohttp client over the search REST API of
Elasticsearch or OpenSearch, its failures in plain words, and the health check.

Settings under ``integrations.elasticsearch``: ``url`` (required, e.g. ``https://es.internal:9200``;
``user:password@`` in it is sent as basic auth and never shown), ``index`` (the default index pattern,
``logs-*``), ``api_key`` (sent as ``Authorization: ApiKey …``), ``headers``, ``timeout_s`` (default 20),
``timestamp_field`` (``@timestamp``), ``message_field`` (``message``), ``service_field``
(``service.name``), ``kibana_url`` for links to Discover, and ``enabled: false``.

Searches are sent as ``GET /{index}/_search?source=…&source_content_type=application/json`` (which both
Elasticsearch and OpenSearch document), so the shared GET of ``http_backend`` serves them: the URL
passes the egress policy, every host name is checked again when connecting, redirects are not followed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

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
)

KEY = "integrations.elasticsearch"
_MAX_ERROR_TEXT = 400
NOT_CONFIGURED = (
    "Elasticsearch is not configured for this team: set integrations.elasticsearch.url "
    "(the cluster's URL, e.g. https://es.internal:9200)."
)


class EsNotConfigured(Exception):
    """No usable Elasticsearch configuration; the message says what to set."""


class EsError(BackendError):
    """A request to Elasticsearch that failed: one plain sentence, and ``status``."""


ES_BACKEND = HttpBackend(
    name="Elasticsearch",
    key=KEY,
    possessive="Elasticsearch's",
    not_configured=EsNotConfigured,
    error=EsError,
    not_configured_text=NOT_CONFIGURED,
    narrow_large="narrow it with a query, a lower limit or a shorter window.",
    narrow_slow="(a shorter window, a narrower index pattern, a more specific query)",
)


@dataclass(slots=True)
class EsClient:
    """The per-run connection and the team's field names."""

    session: aiohttp.ClientSession
    url: str
    timeout_s: float
    index: str = "logs-*"
    timestamp_field: str = "@timestamp"
    message_field: str = "message"
    service_field: str = "service.name"
    kibana_url: str | None = None

    async def search(self, index: str, body: Mapping[str, Any], *, doing: str) -> dict[str, Any]:
        """The search answer for ``body`` over ``index``; raises ``EsError`` in plain words."""
        params = {
            "source": json.dumps(body, separators=(",", ":")),
            "source_content_type": "application/json",
        }
        path = f"/{quote(index, safe=',*')}/_search"
        status, raw = await fetch(
            self.session, ES_BACKEND, self.url, path, params, doing=doing, timeout_s=self.timeout_s
        )
        answer = _json(raw)
        if 200 <= status < 300 and isinstance(answer, dict) and "hits" in answer:
            return answer
        if 200 <= status < 300:
            raise EsError(
                f"{self.url} answered, but not as Elasticsearch's search API; check {KEY}.url.", status
            )
        raise EsError(describe_status(status, answer, self.url, index, doing), status)

    async def read(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        index: str,
        doing: str,
        shape: type[list[Any] | dict[str, Any]],
    ) -> Any:
        """``GET path`` answered with JSON of ``shape`` (a list or an object); raises ``EsError`` in plain
        words. ``index`` names what was asked about in a 403 or 404."""
        status, raw = await fetch(
            self.session, ES_BACKEND, self.url, path, params, doing=doing, timeout_s=self.timeout_s
        )
        answer = _json(raw)
        if 200 <= status < 300 and isinstance(answer, shape):
            return answer
        if 200 <= status < 300:
            raise EsError(f"{self.url} answered, but not as Elasticsearch's API; check {KEY}.url.", status)
        raise EsError(describe_status(status, answer, self.url, index, doing), status)

    async def info(self) -> str:
        """``GET /``: ``Elasticsearch 8.13.4`` or ``OpenSearch 2.13.0``; raises ``EsError`` otherwise."""
        doing = "identify the cluster"
        status, raw = await fetch(
            self.session, ES_BACKEND, self.url, "/", None, doing=doing, timeout_s=self.timeout_s
        )
        answer = _json(raw)
        if not 200 <= status < 300:
            raise EsError(describe_status(status, answer, self.url, self.index, doing), status)
        version = answer.get("version") if isinstance(answer, dict) else None
        if not isinstance(version, Mapping) or "number" not in version:
            raise EsError(
                f"{self.url} answered, but not as Elasticsearch or OpenSearch (no version at /); check "
                f"{KEY}.url.",
                status,
            )
        name = "OpenSearch" if version.get("distribution") == "opensearch" else "Elasticsearch"
        return f"{name} {version['number']}"

    async def close(self) -> None:
        await self.session.close()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"")
    except ValueError:
        return None


def _reason(answer: Any) -> tuple[str, str]:
    """The type and reason of ES's error body (the root cause's reason when it says more)."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, str):
        return "", error[:_MAX_ERROR_TEXT]
    if not isinstance(error, Mapping):
        return "", ""
    causes = error.get("root_cause") or []
    cause = causes[0] if causes and isinstance(causes[0], Mapping) else error
    kind = str(cause.get("type") or error.get("type") or "")
    reason = " ".join(str(cause.get("reason") or error.get("reason") or "").split())
    return kind, reason[:_MAX_ERROR_TEXT]


def describe_status(status: int, answer: Any, url: str, index: str, doing: str) -> str:
    kind, reason = _reason(answer)
    said = f"{kind}: {reason}" if kind and reason else reason or kind
    if status == 400:
        return (
            f"Elasticsearch rejected the request to {doing}: {said or 'bad request'} (400). "
            "Correct it and try again."
        )
    if 300 <= status < 400:
        return redirected(ES_BACKEND, status, url, doing)
    if status == 401:
        return (
            f"Elasticsearch at {url} asked for credentials (401 {kind or 'Unauthorized'}) when asked to "
            f"{doing}: set or correct {KEY}.api_key, or user:password in {KEY}.url."
        )
    if status == 403:
        return forbidden(ES_BACKEND, url, doing, f" to the index {index}.")
    if status == 404 and kind == "index_not_found_exception":
        return (
            f"Elasticsearch at {url} has no index {index} ({reason}, 404): pass an existing index or "
            f"pattern such as logs-*, or correct {KEY}.index."
        )
    if status == 404:
        return (
            f"Elasticsearch at {url} answered 404 when asked to {doing}: check that {KEY}.url is the "
            "cluster's URL."
        )
    if status == 429:
        return (
            f"Elasticsearch at {url} is rate limited, try again in a minute "
            f"(429 {said or 'Too Many Requests'}); could not {doing}. "
            "A shorter window or a narrower index pattern costs it less."
        )
    if said:
        return f"Elasticsearch failed to {doing}: {said} ({status})."
    return in_trouble(ES_BACKEND, status, url, doing)


def _text_setting(settings: Mapping[str, Any], name: str, default: str) -> str:
    raw = settings.get(name)
    if raw is None:
        return default
    if not isinstance(raw, str) or not raw.strip():
        raise EsNotConfigured(f"{KEY}.{name} must be text, e.g. {default}.")
    return raw.strip()


def _kibana_url(settings: Mapping[str, Any]) -> str | None:
    raw = settings.get("kibana_url")
    if not raw or not isinstance(raw, str):
        return None
    if urlsplit(raw).scheme not in ("http", "https"):
        raise EsNotConfigured(f"{KEY}.kibana_url must be an http:// or https:// URL.")
    return shown_url(raw.strip())


async def connect(config: Mapping[str, Any], *, timeout_s: float | None = None) -> EsClient:
    """Build the run's client from the team's effective config (see the module docstring).

    Raises ``EsNotConfigured`` with plain words when nothing usable is configured or the egress policy
    refuses the URL. No request is made here.
    """
    settings = ES_BACKEND.settings(config)
    target = await open_target(settings, ES_BACKEND, timeout_s=timeout_s)
    headers = header_setting(settings.get("headers"), ES_BACKEND)
    api_key = settings.get("api_key")
    if api_key:
        headers["Authorization"] = f"ApiKey {api_key}"
    fields = {
        "index": _text_setting(settings, "index", "logs-*"),
        "timestamp_field": _text_setting(settings, "timestamp_field", "@timestamp"),
        "message_field": _text_setting(settings, "message_field", "message"),
        "service_field": _text_setting(settings, "service_field", "service.name"),
    }
    kibana = _kibana_url(settings)
    session = await open_session(target, ES_BACKEND, headers=headers)
    return EsClient(session, target.url, target.timeout_s, kibana_url=kibana, **fields)


async def check_health(config: Mapping[str, Any], *, timeout_s: float) -> ToolsetHealth:
    """``GET /``: proves that the URL is Elasticsearch or OpenSearch and that the credentials work."""

    async def probe(client: EsClient) -> None:
        await client.info()

    return await check_backend_health(config, ES_BACKEND, lambda: connect(config, timeout_s=timeout_s), probe)
