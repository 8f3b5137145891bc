"""Which model a run talks to: the team's own endpoint, the installation's, or none (no-LLM mode).

Resolution, for one team's effective config (secrets already decrypted) and the installation
settings (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``INCIDENTFOX_MODEL``, passed in as plain values;
nothing here reads the environment):

1. The team's ``model.base_url`` or ``model.api_key`` set: the team's endpoint is used *as a whole*.
   Its key is never mixed with the installation's: an installation key is never sent to a URL a team
   typed in. A team endpoint without a key is treated as keyless (vLLM / Ollama style).
2. Otherwise the installation endpoint, if ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set.
   ``model.name`` alone in team config only picks another model on that endpoint.
3. Otherwise ``None``: no-LLM mode, the deterministic analyzers produce the RCA.

Tracing export is off unless explicitly enabled (``configure_tracing(enabled=True)``): the SDK's
default exporter would otherwise send traces to api.openai.com whenever an OpenAI key is present.

Every model built here is a ``MeteredChatCompletionsModel``: each call's latency and tokens go to
``incidentfox_model_seconds`` / ``incidentfox_model_tokens_total`` (provider ``openai`` or
``openai_compatible``). Streamed calls ask for the usage chunk (``stream_options.include_usage``)
unless the agent's model settings say otherwise: OpenAI sends it by default, compatible servers only
when asked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agents import (
    AgentOutputSchemaBase,
    Handoff,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    OpenAIChatCompletionsModel,
    Tool,
    TResponseInputItem,
    set_tracing_disabled,
)
from agents.items import TResponseStreamEvent
from openai import AsyncOpenAI
from openai.types.responses.response_prompt_param import ResponsePromptParam

from incidentfox.egress import EgressRefused, current_policy
from incidentfox.observability.metrics import PROCESS_METRICS

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL_NAME = "gpt-4.1-mini"
KEYLESS_API_KEY = "EMPTY"
"""Sent to endpoints configured without a key; the openai client insists on some key, and passing
one explicitly also stops it from falling back to ``OPENAI_API_KEY`` from the environment."""


class ModelConfigError(ValueError):
    """The team's ``model`` config is unusable; the message is plain words naming the key to fix."""


@dataclass(frozen=True, slots=True)
class ModelEndpoint:
    """An OpenAI-compatible endpoint and the model name to ask for. The key never shows in ``repr``."""

    base_url: str
    name: str
    api_key: str = field(repr=False)
    source: str = "installation"
    """``team`` or ``installation``: where the endpoint came from, for logs and the status command."""


def configure_tracing(*, enabled: bool = False) -> None:
    """Turn the SDK's trace export on or off process-wide; call once at startup."""
    set_tracing_disabled(not enabled)


def resolve_endpoint(
    config: Mapping[str, Any],
    *,
    openai_api_key: str | None,
    openai_base_url: str | None,
    default_model: str | None,
) -> ModelEndpoint | None:
    """The endpoint for a team (see the module docstring for the rules); ``None`` means no-LLM mode.

    Raises ``ModelConfigError`` when the team's ``model`` section is malformed.
    """
    team = _team_model_section(config)
    team_name = _optional_str(team, "name")
    team_url = _optional_str(team, "base_url")
    team_key = _optional_str(team, "api_key")
    name = team_name or default_model or DEFAULT_MODEL_NAME
    if team_url is not None or team_key is not None:
        base_url = _checked_url(team_url or OPENAI_DEFAULT_BASE_URL, "model.base_url")
        return ModelEndpoint(base_url=base_url, name=name, api_key=team_key or KEYLESS_API_KEY, source="team")
    if not openai_api_key and not openai_base_url:
        return None
    base_url = _checked_url(openai_base_url or OPENAI_DEFAULT_BASE_URL, "OPENAI_BASE_URL")
    return ModelEndpoint(base_url=base_url, name=name, api_key=openai_api_key or KEYLESS_API_KEY)


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
        timeout_s: float = 120.0,
        max_retries: int = 2,
    ) -> None:
        self._api_key = openai_api_key
        self._base_url = openai_base_url
        self._default_model = default_model
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
        )

    async def checked_model_for(self, config: Mapping[str, Any]) -> OpenAIChatCompletionsModel | None:
        """``model_for``, after the egress policy has allowed a team endpoint's address.

        Raises ``ModelConfigError`` (plain words) when it is refused. The installation's own
        ``OPENAI_BASE_URL`` is set by the global admin and not checked."""
        endpoint = self.endpoint_for(config)
        if endpoint is not None and endpoint.source == "team":
            try:
                await current_policy().check_url(endpoint.base_url, setting="model.base_url")
            except EgressRefused as exc:
                raise ModelConfigError(f"The team's model endpoint was refused: {exc}") from exc
        return self.model_for(config)

    def model_for(self, config: Mapping[str, Any]) -> OpenAIChatCompletionsModel | None:
        """The run's model, or ``None`` for no-LLM mode."""
        endpoint = self.endpoint_for(config)
        if endpoint is None:
            return None
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


def build_model(
    endpoint: ModelEndpoint, *, timeout_s: float = 120.0, max_retries: int = 2
) -> OpenAIChatCompletionsModel:
    """A Chat Completions model over its own client (for one-off use; the worker uses the provider)."""
    client = build_client(endpoint, timeout_s=timeout_s, max_retries=max_retries)
    return MeteredChatCompletionsModel(endpoint.name, client, provider=provider_of(endpoint.base_url))


def provider_of(base_url: str) -> str:
    """The ``provider`` label: ``openai`` for api.openai.com, ``openai_compatible`` for any other."""
    return "openai" if urlsplit(base_url).hostname == "api.openai.com" else "openai_compatible"


class MeteredChatCompletionsModel(OpenAIChatCompletionsModel):
    """The Chat Completions model, recording each call's latency and tokens (``PROCESS_METRICS``).

    Both entry points are covered: ``get_response`` (sub-agents run as tools) and ``stream_response``
    (the planner's streamed run). A failed call is timed too; its tokens are unknown."""

    def __init__(self, model: str, openai_client: AsyncOpenAI, *, provider: str) -> None:
        super().__init__(model=model, openai_client=openai_client)
        self.provider = provider

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> ModelResponse:
        started = time.perf_counter()
        try:
            response = await super().get_response(
                system_instructions,
                input,
                model_settings,
                tools,
                output_schema,
                handoffs,
                tracing,
                previous_response_id=previous_response_id,
                conversation_id=conversation_id,
                prompt=prompt,
            )
        except Exception:
            PROCESS_METRICS.model_call(self.provider, time.perf_counter() - started)
            raise
        usage = response.usage
        PROCESS_METRICS.model_call(
            self.provider,
            time.perf_counter() - started,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )
        return response

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        if model_settings.include_usage is None:
            model_settings = dataclasses.replace(model_settings, include_usage=True)
        started = time.perf_counter()
        recorded = False
        try:
            async for event in super().stream_response(
                system_instructions,
                input,
                model_settings,
                tools,
                output_schema,
                handoffs,
                tracing,
                previous_response_id=previous_response_id,
                conversation_id=conversation_id,
                prompt=prompt,
            ):
                if event.type == "response.completed" and not recorded:
                    recorded = True
                    usage = event.response.usage
                    PROCESS_METRICS.model_call(
                        self.provider,
                        time.perf_counter() - started,
                        input_tokens=usage.input_tokens if usage is not None else 0,
                        output_tokens=usage.output_tokens if usage is not None else 0,
                    )
                yield event
        except Exception:
            if not recorded:
                PROCESS_METRICS.model_call(self.provider, time.perf_counter() - started)
            raise


def _team_model_section(config: Mapping[str, Any]) -> Mapping[str, Any]:
    section = config.get("model")
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ModelConfigError(
            "The team config key `model` must be an object with base_url, api_key and name."
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
