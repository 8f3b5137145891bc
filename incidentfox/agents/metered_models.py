"""The models a run talks to, each call timed and its tokens counted (``PROCESS_METRICS``).

Two adapters, one metering: ``MeteredChatCompletionsModel`` (OpenAI and any OpenAI-compatible
endpoint) and the LiteLLM adapter of openai-agents for Anthropic (``anthropic_model``). Both entry
points are covered: ``get_response`` (sub-agents run as tools) and ``stream_response`` (the planner's
streamed run). A failed call is timed too; its tokens are unknown. Streamed calls ask for the usage
chunk (``include_usage``) unless the agent's model settings say otherwise: OpenAI sends it by default,
compatible servers and LiteLLM only when asked.

LiteLLM is imported on first use only (it takes seconds to import) and told to stay offline: by
default it fetches a model price list and Anthropic's beta-header table from GitHub, which a
self-hosted bot must never do behind its operator's back.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from agents import (
    AgentOutputSchemaBase,
    Handoff,
    Model,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    OpenAIChatCompletionsModel,
    Tool,
    TResponseInputItem,
)
from agents.items import TResponseStreamEvent
from openai import AsyncOpenAI

from incidentfox.observability.metrics import PROCESS_METRICS

LITELLM_OFFLINE_ENV = {
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "true",
}


async def _timed(provider: str, call: Awaitable[ModelResponse]) -> ModelResponse:
    started = time.perf_counter()
    try:
        response = await call
    except Exception:
        PROCESS_METRICS.model_call(provider, time.perf_counter() - started)
        raise
    usage = response.usage
    PROCESS_METRICS.model_call(
        provider,
        time.perf_counter() - started,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
    )
    return response


async def _timed_stream(
    provider: str, events: AsyncIterator[TResponseStreamEvent]
) -> AsyncIterator[TResponseStreamEvent]:
    started = time.perf_counter()
    recorded = False
    try:
        async for event in events:
            if event.type == "response.completed" and not recorded:
                recorded = True
                usage = event.response.usage
                PROCESS_METRICS.model_call(
                    provider,
                    time.perf_counter() - started,
                    input_tokens=usage.input_tokens if usage is not None else 0,
                    output_tokens=usage.output_tokens if usage is not None else 0,
                )
            yield event
    except Exception:
        if not recorded:
            PROCESS_METRICS.model_call(provider, time.perf_counter() - started)
        raise


def _with_usage(settings: ModelSettings) -> ModelSettings:
    if settings.include_usage is None:
        return dataclasses.replace(settings, include_usage=True)
    return settings


class MeteredCalls(Model):
    """Times and counts every call of the model class it is mixed in front of (``provider`` labels it).

    Placed first in the bases, so ``super()`` is the real adapter's implementation."""

    provider: str

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
        prompt: Any | None = None,
    ) -> ModelResponse:
        return await _timed(
            self.provider,
            super().get_response(  # type: ignore[safe-super]
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
            ),
        )

    def stream_response(
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
        prompt: Any | None = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        return _timed_stream(
            self.provider,
            super().stream_response(  # type: ignore[safe-super]
                system_instructions,
                input,
                _with_usage(model_settings),
                tools,
                output_schema,
                handoffs,
                tracing,
                previous_response_id=previous_response_id,
                conversation_id=conversation_id,
                prompt=prompt,
            ),
        )


class MeteredChatCompletionsModel(MeteredCalls, OpenAIChatCompletionsModel):
    """The Chat Completions model, metered; ``provider`` is ``openai`` or ``openai_compatible``."""

    def __init__(self, model: str, openai_client: AsyncOpenAI, *, provider: str) -> None:
        OpenAIChatCompletionsModel.__init__(self, model=model, openai_client=openai_client)
        self.provider = provider


def anthropic_model(name: str, *, base_url: str, api_key: str) -> Model:
    """Anthropic's Messages API through openai-agents' LiteLLM adapter, metered as ``anthropic``."""
    return _metered_litellm_class()(model=f"anthropic/{name}", base_url=base_url, api_key=api_key)


@functools.cache
def _metered_litellm_class() -> type[Any]:
    for key, value in LITELLM_OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    import litellm
    from agents.extensions.models.litellm_model import LitellmModel

    litellm.suppress_debug_info = True
    litellm.telemetry = False

    class MeteredLitellmModel(MeteredCalls, LitellmModel):
        provider = "anthropic"

    return MeteredLitellmModel
