"""Which model a run talks to: the team's own endpoint, the installation's, or none (no-LLM mode).

Resolution, for one team's effective config (secrets already decrypted) and the installation
settings (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``INCIDENTFOX_MODEL``, ``ANTHROPIC_API_KEY``,
``ANTHROPIC_BASE_URL``, passed in as plain values; nothing here reads the environment):

1. The team's ``model.base_url`` or ``model.api_key`` set: the team's endpoint is used *as a whole*.
   Its key is never mixed with the installation's: an installation key is never sent to a URL a team
   typed in. A team endpoint without a key is treated as keyless (vLLM / Ollama style).
2. Otherwise the installation endpoint of the team's provider: for OpenAI (the default) if
   ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set, for Anthropic if ``ANTHROPIC_API_KEY`` is.
   ``model.name`` alone in team config only picks another model on that endpoint.
3. Otherwise ``None``: no-LLM mode, the deterministic analyzers produce the RCA. A team that asks for
   Anthropic with no key anywhere gets a ``ModelConfigError`` instead: it chose a model on purpose.

``model.provider`` is ``openai`` (also any OpenAI-compatible server: vLLM, Ollama, a LiteLLM proxy)
or ``anthropic`` (Anthropic's Messages API through openai-agents' LiteLLM adapter).

Tracing export is off unless explicitly enabled (``configure_tracing(enabled=True)``): the SDK's
default exporter would otherwise send traces to api.openai.com whenever an OpenAI key is present.

Every model built here is metered (``metered_models``): each call's latency and tokens go to
``incidentfox_model_seconds`` / ``incidentfox_model_tokens_total`` with the provider ``openai``,
``openai_compatible`` or ``anthropic``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from agents import Model, set_tracing_disabled
from openai import AsyncOpenAI

from incidentfox.agents.metered_models import MeteredChatCompletionsModel, anthropic_model
from incidentfox.egress import EgressRefused, current_policy

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MODEL_NAME = "gpt-4.1-mini"
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-5"
KEYLESS_API_KEY = "EMPTY"
"""Sent to endpoints configured without a key; the openai client insists on some key, and passing
one explicitly also stops it from falling back to ``OPENAI_API_KEY`` from the environment."""
ApiKind = Literal["openai", "anthropic"]
PROVIDERS: Mapping[str, ApiKind] = {
    "openai": "openai",
    "openai_compatible": "openai",
    "anthropic": "anthropic",
}


class ModelConfigError(ValueError):
    """The team's ``model`` config is unusable; the message is plain words naming the key to fix."""


@dataclass(frozen=True, slots=True)
class ModelEndpoint:
    """An endpoint, the API it speaks and the model name to ask for. The key never shows in ``repr``."""

    base_url: str
    name: str
    api_key: str = field(repr=False)
    source: str = "installation"
    """``team`` or ``installation``: where the endpoint came from, for logs and the status command."""
    api: ApiKind = "openai"
    """Which API the endpoint speaks: OpenAI's Chat Completions or Anthropic's Messages."""


def configure_tracing(*, enabled: bool = False) -> None:
    """Turn the SDK's trace export on or off process-wide; call once at startup."""
    set_tracing_disabled(not enabled)


def resolve_endpoint(
    config: Mapping[str, Any],
    *,
    openai_api_key: str | None,
    openai_base_url: str | None,
    default_model: str | None,
    anthropic_api_key: str | None = None,
    anthropic_base_url: str | None = None,
) -> ModelEndpoint | None:
    """The endpoint for a team (see the module docstring for the rules); ``None`` means no-LLM mode.

    Raises ``ModelConfigError`` when the team's ``model`` section is malformed.
    """
    team = _team_model_section(config)
    api = _api_of(team)
    team_name = _optional_str(team, "name")
    team_url = _optional_str(team, "base_url")
    team_key = _optional_str(team, "api_key")
    if api == "anthropic":
        name = team_name or DEFAULT_ANTHROPIC_MODEL
        default_url, install_key, install_url = (
            ANTHROPIC_DEFAULT_BASE_URL,
            anthropic_api_key,
            anthropic_base_url,
        )
    else:
        name = team_name or default_model or DEFAULT_MODEL_NAME
        default_url, install_key, install_url = OPENAI_DEFAULT_BASE_URL, openai_api_key, openai_base_url
    if team_url is not None or team_key is not None:
        base_url = _checked_url(team_url or default_url, "model.base_url")
        return ModelEndpoint(base_url, name, team_key or KEYLESS_API_KEY, source="team", api=api)
    if api == "anthropic" and not install_key:
        raise ModelConfigError(
            "The team's `model.provider` is anthropic, but there is no Anthropic key: set `model.api_key` "
            "in team config or ANTHROPIC_API_KEY for the installation."
        )
    if not install_key and not install_url:
        return None
    setting = "ANTHROPIC_BASE_URL" if api == "anthropic" else "OPENAI_BASE_URL"
    base_url = _checked_url(install_url or default_url, setting)
    return ModelEndpoint(base_url, name, install_key or KEYLESS_API_KEY, api=api)


MAX_CLIENTS = 32


class TeamModelProvider:
    """Builds the model for each run and shares one HTTP client per distinct endpoint.

    Create one per process with the installation settings; call ``model_for(effective_config)`` per
    run and ``aclose()`` at shutdown. Sharing clients keeps hundreds of concurrent runs on a few
    connection pools instead of one pool per run.
    """

    def __init__(
        self,
        *,
        openai_api_key: str | None,
        openai_base_url: str | None,
        default_model: str | None,
        anthropic_api_key: str | None = None,
        anthropic_base_url: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 0,
    ) -> None:
        """``max_retries`` is the HTTP client's own; 0 because the agents' runner retries transient
        failures itself (``run_budgets``), and the two would multiply."""
        self._api_key = openai_api_key
        self._base_url = openai_base_url
        self._default_model = default_model
        self._anthropic_key = anthropic_api_key
        self._anthropic_url = anthropic_base_url
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._clients: OrderedDict[tuple[str, str], AsyncOpenAI] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def endpoint_for(self, config: Mapping[str, Any]) -> ModelEndpoint | None:
        return resolve_endpoint(
            config,
            openai_api_key=self._api_key,
            openai_base_url=self._base_url,
            default_model=self._default_model,
            anthropic_api_key=self._anthropic_key,
            anthropic_base_url=self._anthropic_url,
        )

    async def checked_model_for(self, config: Mapping[str, Any]) -> Model | None:
        """``model_for``, after the egress policy has allowed a team endpoint's address.

        Raises ``ModelConfigError`` (plain words) when it is refused. The installation's own
        ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` is set by the global admin and not checked."""
        endpoint = self.endpoint_for(config)
        if endpoint is not None and endpoint.source == "team":
            try:
                await current_policy().check_url(endpoint.base_url, setting="model.base_url")
            except EgressRefused as exc:
                raise ModelConfigError(f"The team's model endpoint was refused: {exc}") from exc
        return self.model_for(config)

    def model_for(self, config: Mapping[str, Any]) -> Model | None:
        """The run's model, or ``None`` for no-LLM mode."""
        endpoint = self.endpoint_for(config)
        if endpoint is None:
            return None
        if endpoint.api == "anthropic":
            return anthropic_model(endpoint.name, base_url=endpoint.base_url, api_key=endpoint.api_key)
        key = (endpoint.base_url, endpoint.api_key)
        client = self._clients.get(key)
        if client is None:
            client = build_client(endpoint, timeout_s=self._timeout_s, max_retries=self._max_retries)
            self._clients[key] = client
            self._evict_oldest()
        else:
            self._clients.move_to_end(key)
        return MeteredChatCompletionsModel(endpoint.name, client, provider=provider_of(endpoint.base_url))

    def _evict_oldest(self) -> None:
        """Keep at most ``MAX_CLIENTS`` pools; a rotated key must not leave its old pool open forever."""
        while len(self._clients) > MAX_CLIENTS:
            _, client = self._clients.popitem(last=False)
            task = asyncio.get_running_loop().create_task(client.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def build_client(endpoint: ModelEndpoint, *, timeout_s: float = 120.0, max_retries: int = 2) -> AsyncOpenAI:
    """An ``AsyncOpenAI`` with every setting explicit, so no environment variable leaks in."""
    return AsyncOpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        timeout=timeout_s,
        max_retries=max_retries,
    )


def provider_of(base_url: str) -> str:
    """The ``provider`` label: ``openai`` for api.openai.com, ``openai_compatible`` for any other."""
    return "openai" if urlsplit(base_url).hostname == "api.openai.com" else "openai_compatible"


def _api_of(section: Mapping[str, Any]) -> ApiKind:
    provider = _optional_str(section, "provider")
    if provider is None:
        return "openai"
    api = PROVIDERS.get(provider.lower())
    if api is None:
        known = ", ".join(PROVIDERS)
        raise ModelConfigError(f"The team config key `model.provider` is {provider!r}; use one of: {known}.")
    return api


def _team_model_section(config: Mapping[str, Any]) -> Mapping[str, Any]:
    section = config.get("model")
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ModelConfigError(
            "The team config key `model` must be an object with provider, base_url, api_key and name."
        )
    return section


def _optional_str(section: Mapping[str, Any], key: str) -> str | None:
    value = section.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ModelConfigError(f"The team config key `model.{key}` must be a string.")
    return value.strip() or None


def _checked_url(url: str, setting: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ModelConfigError(f"`{setting}` must be an http(s) URL such as https://api.openai.com/v1.")
    return url.rstrip("/")
