"""The connection half of the datadog toolset: the official ``datadog-api-client`` configured only from
the team's config, its failures in plain words, and the health check.

``connect`` reads the team's ``integrations.datadog``: ``api_key`` and ``app_key`` (both required; an
application key with read scopes such as ``metrics_read``, ``logs_read_data``, ``monitors_read``,
``apm_read``, ``events_read``), ``site`` (default ``datadoghq.com``; ``us3.datadoghq.com``,
``datadoghq.eu``, …) or ``url`` (a full API base URL, e.g. a proxy), ``app_url`` (where links point;
derived from ``site`` by default), ``timeout_s`` (default 20) and ``enabled: false``.

Nothing is read from the host: the client would take ``DD_SITE``, ``DD_API_KEY`` and ``DD_APP_KEY``
from the environment, so the host is always set explicitly and both keys are required. The API URL
passes the egress policy when connecting, and every connection the client's urllib3 pools open is
checked again (``checked_pool_classes``). The client's own retries are off (no waiting out a 429 for
minutes inside a run), redirects are not followed, and every call runs in a worker thread
(``asyncio.to_thread``) under the configured timeout.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import urllib3
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, ApiTypeError, ApiValueError
from datadog_api_client.model_utils import data_to_dict
from datadog_api_client.v1.api.authentication_api import AuthenticationApi
from datadog_api_client.v1.api.monitors_api import MonitorsApi

from incidentfox.agents.toolsets.base import ToolsetHealth
from incidentfox.agents.toolsets.http_backend import BackendError, HttpBackend, shown_url, timeout_setting
from incidentfox.egress import EgressRefused, checked_pool_classes, current_policy

DEFAULT_SITE = "datadoghq.com"
HEALTH_TIMEOUT_S = 5.0
_SITE = re.compile(r"^(?=.{4,100}$)[a-z0-9]+(?:[.-][a-z0-9]+)*\.[a-z]{2,}$")
_MAX_DETAIL = 300
NOT_CONFIGURED = (
    "Datadog is not configured for this team: set integrations.datadog.api_key and app_key (an "
    "application key with read scopes), and site if the account is not on datadoghq.com."
)


class DatadogNotConfigured(Exception):
    """No usable Datadog configuration; the message says what to set."""


class DatadogError(BackendError):
    """A call to Datadog that failed: one plain sentence, and ``status``."""


DATADOG_BACKEND = HttpBackend(
    name="Datadog",
    key="integrations.datadog",
    possessive="Datadog's",
    not_configured=DatadogNotConfigured,
    error=DatadogError,
    not_configured_text=NOT_CONFIGURED,
    narrow_large="narrow the query or shorten the window.",
    narrow_slow="(a shorter window, a narrower query)",
)


def datadog_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return DATADOG_BACKEND.settings(config)


@dataclass(slots=True)
class DatadogClient:
    """The per-run connection: one ``ApiClient``, the API URL it asks and the web app links point to."""

    api: ApiClient
    url: str
    app_url: str | None
    timeout_s: float

    async def call(self, work: Callable[[ApiClient], Any], *, doing: str, scope: str) -> Any:
        """``work(api)`` in a worker thread, its answer as the plain JSON Datadog sent; raises
        ``DatadogError`` whose message says what went wrong while trying to ``doing`` (``scope`` is the
        application key scope the call needs)."""
        try:
            async with asyncio.timeout(self.timeout_s + 1):
                answer = await asyncio.to_thread(work, self.api)
        except TimeoutError as exc:
            raise DatadogError(too_slow(self.url, doing)) from exc
        except (
            ApiException,
            urllib3.exceptions.HTTPError,
            EgressRefused,
            ApiValueError,
            ApiTypeError,
        ) as exc:
            raise DatadogError(describe_error(exc, self.url, doing, scope), _status(exc)) from exc
        return data_to_dict(answer)

    async def close(self) -> None:
        self.api.close()


def too_slow(url: str, doing: str) -> str:
    return (
        f"Datadog at {url} did not answer in time when asked to {doing}; narrow it (a shorter window, a "
        "narrower query) or raise integrations.datadog.timeout_s."
    )


def _status(exc: Exception) -> int | None:
    return exc.status if isinstance(exc, ApiException) and exc.status else None


def error_detail(body: Any) -> str:
    """Datadog's own words from an error body: ``{"errors": ["..."]}`` or JSON:API errors with
    ``detail``/``title``."""
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list):
            texts = [
                str(e.get("detail") or e.get("title") or "") if isinstance(e, Mapping) else str(e)
                for e in errors[:3]
            ]
            body = "; ".join(t for t in texts if t)
        else:
            body = ""
    text = " ".join(str(body or "").split())
    return "" if text.startswith("<") else text[:_MAX_DETAIL]


def _header(exc: ApiException, name: str) -> str | None:
    for key, value in (exc.headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def rate_limited(exc: ApiException, doing: str) -> str:
    """A 429 in one sentence with when to retry (``X-RateLimit-Reset`` is seconds until the window
    resets) and which limit was hit."""
    reset = _header(exc, "X-RateLimit-Reset")
    limit, period = _header(exc, "X-RateLimit-Limit"), _header(exc, "X-RateLimit-Period")
    name = _header(exc, "X-RateLimit-Name")
    which = f" ({limit} requests per {period} s{f' for {name}' if name else ''})" if limit and period else ""
    when = f"try again in {reset} s" if reset and reset.isdigit() else "try again in a minute"
    return (
        f"Datadog rate-limited the request to {doing} (429 Too Many Requests){which}: {when}. "
        "Fewer, broader queries cost less of the limit."
    )


def describe_error(exc: Exception, url: str, doing: str, scope: str) -> str:
    """One plain sentence for a failed call: Datadog's own words for a rejected query, which key or
    scope to check for 401/403, when to retry after 429. Never the keys themselves."""
    if isinstance(exc, EgressRefused):
        return f"Refused to {doing}: {exc}"
    if isinstance(exc, ApiValueError | ApiTypeError):
        return f"Could not {doing}: the request is not valid ({' '.join(str(exc).split())[:_MAX_DETAIL]})."
    if isinstance(exc, urllib3.exceptions.HTTPError):
        return _network_failure(exc, url, doing)
    assert isinstance(exc, ApiException)
    status = int(exc.status or 0)
    detail = error_detail(exc.body)
    if status == 400:
        reason = detail or "bad request"
        return f"Datadog rejected the request to {doing}: {reason} (400). Correct it and try again."
    if status == 401:
        return (
            f"Datadog did not accept the credentials (401 Unauthorized) when asked to {doing}: check "
            "integrations.datadog.api_key and app_key."
        )
    if status == 403:
        return (
            f"Datadog refused access (403 {detail or 'Forbidden'}) when asked to {doing}: check that "
            "integrations.datadog.api_key and app_key belong to the same organisation, that the "
            f"application key has the {scope} scope, and that site matches the account's Datadog site."
        )
    if status == 404:
        return (
            f"Datadog at {url} has no such endpoint (404) when asked to {doing}: check "
            "integrations.datadog.site or url."
        )
    if status == 429:
        return rate_limited(exc, doing)
    if 300 <= status < 400:
        return (
            f"Datadog at {url} redirected elsewhere ({status}) when asked to {doing}: point "
            "integrations.datadog.url at the API (https://api.<site>) or set site instead."
        )
    if status == 0:
        return f"Datadog at {url} is unreachable (its TLS certificate is not trusted); could not {doing}."
    return (
        f"Datadog answered {status}{f' ({detail})' if detail else ''} when asked to {doing}; it may be "
        "having trouble, try again in a minute."
    )


def _network_failure(exc: urllib3.exceptions.HTTPError, url: str, doing: str) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, urllib3.exceptions.TimeoutError):
        return too_slow(url, doing)
    if isinstance(reason, urllib3.exceptions.SSLError):
        cause = "its TLS certificate is not trusted"
    elif isinstance(reason, urllib3.exceptions.NameResolutionError):
        cause = "host name not found"
    elif "refused" in repr(reason).lower():
        cause = "connection refused"
    else:
        cause = "connection dropped"
    return f"Datadog at {url} is unreachable ({cause}); could not {doing}."


def _text(settings: Mapping[str, Any], key: str) -> str | None:
    value = settings.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DatadogNotConfigured(f"integrations.datadog.{key} must be text.")
    return value.strip()


def _app_url_for_site(site: str) -> str:
    """Where a person opens Datadog for ``site``: ``app.`` for the sites named after the domain
    (datadoghq.com, datadoghq.eu, ddog-gov.com), the site itself for the regional ones (us3., ap1.)."""
    return f"https://app.{site}" if site.count(".") == 1 else f"https://{site}"


def _http_url(raw: str, setting: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DatadogNotConfigured(f"{setting} must be an http:// or https:// URL.")
    if parts.username or parts.password or parts.query:
        raise DatadogNotConfigured(f"{setting} must not carry user info or a query.")
    return shown_url(raw)


def endpoints(settings: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """The API URL, the setting it came from, and the web app's URL (``None`` when unknown)."""
    app_url = _text(settings, "app_url")
    app = _http_url(app_url, "integrations.datadog.app_url") if app_url else None
    raw_url = _text(settings, "url")
    if raw_url:
        url = _http_url(raw_url, "integrations.datadog.url")
        host = urlsplit(url).hostname or ""
        derived = url.replace("://api.", "://app.", 1) if host.startswith("api.") else None
        return url, "integrations.datadog.url", app or derived
    site = (_text(settings, "site") or DEFAULT_SITE).lower().removeprefix("https://").rstrip("/")
    if not _SITE.match(site):
        raise DatadogNotConfigured(
            "integrations.datadog.site must be a Datadog site such as datadoghq.com, us5.datadoghq.com "
            "or datadoghq.eu."
        )
    return f"https://api.{site}", "integrations.datadog.site", app or _app_url_for_site(site)


def _configuration(url: str, api_key: str, app_key: str, timeout_s: float) -> Configuration:
    configuration = Configuration(
        host=url,
        api_key={"apiKeyAuth": api_key, "appKeyAuth": app_key},
        request_timeout=(min(timeout_s, 5.0), timeout_s),
        enable_retry=False,
        retry_policy=urllib3.Retry(total=0, redirect=False, raise_on_status=False),
    )
    configuration.server_variables = {}
    return configuration


async def connect(config: Mapping[str, Any], *, timeout_s: float | None = None) -> DatadogClient:
    """Build the run's client from the team's effective config (see the module docstring).

    Raises ``DatadogNotConfigured`` with plain words when nothing usable is configured or the egress
    policy refuses the API's address. No request is made here.
    """
    settings = datadog_settings(config)
    if settings.get("enabled") is False:
        raise DatadogNotConfigured(
            "Datadog is turned off for this team (integrations.datadog.enabled is false)."
        )
    api_key, app_key = _text(settings, "api_key"), _text(settings, "app_key")
    if not api_key or not app_key:
        raise DatadogNotConfigured(NOT_CONFIGURED)
    url, setting, app_url = endpoints(settings)
    total = timeout_s if timeout_s is not None else timeout_setting(settings, DATADOG_BACKEND)
    policy = current_policy()
    try:
        await policy.check_url(url, setting=setting)
    except EgressRefused as exc:
        raise DatadogNotConfigured(f"Refused to connect: {exc}") from exc
    api = ApiClient(_configuration(url, api_key, app_key, total))
    api.user_agent = f"IncidentFox {api.user_agent}"
    pools = checked_pool_classes(private_allowed=await policy.private_allowed(), setting=setting)
    api.rest_client.pool_manager.pool_classes_by_scheme = pools
    return DatadogClient(api, url, app_url, total)


async def check_health(config: Mapping[str, Any], *, timeout_s: float) -> ToolsetHealth:
    """``GET /api/v1/validate`` proves the API key; one page of one monitor proves the application key
    (validate does not read it), so a wrong application key is reported too."""
    settings = datadog_settings(config)
    if not settings.get("api_key") and not settings.get("app_key"):
        return ToolsetHealth(configured=False, reason="no api_key or app_key is set")
    try:
        client = await connect(config, timeout_s=timeout_s)
    except DatadogNotConfigured as exc:
        return ToolsetHealth.failing(str(exc))
    try:
        return await _probe(client)
    finally:
        await client.close()


async def _probe(client: DatadogClient) -> ToolsetHealth:
    try:
        await client.call(
            lambda api: AuthenticationApi(api).validate(), doing="validate the API key", scope=""
        )
    except DatadogError as exc:
        if exc.status == 403:
            return ToolsetHealth.failing(
                "Datadog rejected the API key (403 Forbidden): check integrations.datadog.api_key and that "
                "site matches the account's Datadog site."
            )
        return ToolsetHealth.failing(str(exc))
    try:
        await client.call(
            lambda api: MonitorsApi(api).list_monitors(page_size=1),
            doing="list one monitor",
            scope="monitors_read",
        )
    except DatadogError as exc:
        if exc.status == 403:
            return ToolsetHealth.failing(
                "The Datadog API key is valid but the application key was refused (403 Forbidden): check "
                "integrations.datadog.app_key (same organisation, monitors_read scope)."
            )
        return ToolsetHealth.failing(str(exc))
    return ToolsetHealth.ok()


async def health(config: Mapping[str, Any]) -> ToolsetHealth:
    """The toolsets' health check, bounded to a few seconds."""
    return await check_health(config, timeout_s=HEALTH_TIMEOUT_S)


def window_s(start: datetime, end: datetime) -> tuple[int, int]:
    """A window as the whole unix seconds the v1 APIs read."""
    return int(start.timestamp()), int(end.timestamp())


def ms(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
