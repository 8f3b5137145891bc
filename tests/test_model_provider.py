"""Which model endpoint a run uses: team config over installation settings, or no-LLM mode."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import Agent, Runner
from agents.tracing import trace
from agents.tracing.traces import NoOpTrace

from incidentfox.agents.metered_models import MeteredChatCompletionsModel
from incidentfox.agents.model_provider import (
    DEFAULT_MODEL_NAME,
    KEYLESS_API_KEY,
    OPENAI_DEFAULT_BASE_URL,
    ModelConfigError,
    ModelEndpoint,
    TeamModelProvider,
    configure_tracing,
    resolve_endpoint,
)
from incidentfox.emulators.openai_api import OpenAIEmulator, ScriptStep

INSTALL_KEY = "sk-install-0000aaaa"
TEAM_KEY = "sk-team-1111bbbb"


def resolve(config: dict[str, Any], **install: Any) -> ModelEndpoint | None:
    settings: dict[str, Any] = {"openai_api_key": None, "openai_base_url": None, "default_model": None}
    return resolve_endpoint(config, **{**settings, **install})


def test_nothing_configured_means_no_llm_mode() -> None:
    assert resolve({}) is None
    assert resolve({"model": None}) is None
    assert resolve({"model": {"name": "gpt-4.1"}}) is None


def test_installation_settings_are_the_fallback() -> None:
    endpoint = resolve({}, openai_api_key=INSTALL_KEY, default_model="gpt-4.1")
    assert endpoint == ModelEndpoint(base_url=OPENAI_DEFAULT_BASE_URL, name="gpt-4.1", api_key=INSTALL_KEY)

    local = resolve({}, openai_base_url="http://127.0.0.1:8000/v1/")
    assert local == ModelEndpoint(
        base_url="http://127.0.0.1:8000/v1", name=DEFAULT_MODEL_NAME, api_key=KEYLESS_API_KEY
    )


def test_team_endpoint_overrides_the_installation_as_a_whole() -> None:
    team = {"model": {"base_url": "https://llm.acme.internal/v1", "api_key": TEAM_KEY, "name": "acme-70b"}}
    endpoint = resolve(
        team, openai_api_key=INSTALL_KEY, openai_base_url="http://install/v1", default_model="x"
    )
    assert endpoint == ModelEndpoint("https://llm.acme.internal/v1", "acme-70b", TEAM_KEY, source="team")


def test_installation_key_is_never_sent_to_a_team_url() -> None:
    endpoint = resolve({"model": {"base_url": "https://llm.acme.internal/v1"}}, openai_api_key=INSTALL_KEY)
    assert endpoint is not None
    assert endpoint.api_key == KEYLESS_API_KEY
    assert endpoint.source == "team"


def test_team_model_name_alone_picks_a_model_on_the_installation_endpoint() -> None:
    endpoint = resolve(
        {"model": {"name": "gpt-4.1-nano"}}, openai_api_key=INSTALL_KEY, default_model="gpt-4.1"
    )
    assert endpoint == ModelEndpoint(OPENAI_DEFAULT_BASE_URL, "gpt-4.1-nano", INSTALL_KEY)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"model": "gpt-4.1"}, "`model` must be an object"),
        ({"model": {"api_key": 1234}}, "`model.api_key` must be a string"),
        (
            {"model": {"base_url": "ftp://user:pw@host/v1", "api_key": TEAM_KEY}},
            "`model.base_url` must be an http(s)",
        ),
    ],
)
def test_malformed_team_model_config_is_a_plain_error(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ModelConfigError) as caught:
        resolve(config, openai_api_key=INSTALL_KEY)
    assert fragment in str(caught.value)
    assert "pw@" not in str(caught.value) and TEAM_KEY not in str(caught.value)


def test_endpoint_repr_hides_the_key() -> None:
    assert TEAM_KEY not in repr(ModelEndpoint("https://x/v1", "m", TEAM_KEY))


async def test_provider_model_talks_to_the_team_endpoint_with_the_team_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-must-not-be-used")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    configure_tracing(enabled=False)
    async with OpenAIEmulator([ScriptStep.text("pong")], api_key=TEAM_KEY) as emu:
        provider = TeamModelProvider(
            openai_api_key=INSTALL_KEY, openai_base_url=None, default_model="gpt-4.1", max_retries=0
        )
        config = {"model": {"base_url": emu.base_url, "api_key": TEAM_KEY, "name": "team-model"}}
        model = provider.model_for(config)
        assert model is not None
        result = await Runner.run(Agent(name="probe", model=model), "ping")
        second = provider.model_for(config)
        await provider.aclose()

    assert result.final_output == "pong"
    [request] = emu.requests
    assert request.authorization == f"Bearer {TEAM_KEY}"
    assert request.model == "team-model"
    assert isinstance(model, MeteredChatCompletionsModel) and isinstance(second, MeteredChatCompletionsModel)
    assert second._client is model._client  # one shared client per endpoint
    assert provider.endpoint_for({}) == ModelEndpoint(OPENAI_DEFAULT_BASE_URL, "gpt-4.1", INSTALL_KEY)
    assert (
        TeamModelProvider(openai_api_key=None, openai_base_url=None, default_model=None).model_for({}) is None
    )


def test_tracing_is_off_unless_enabled() -> None:
    configure_tracing(enabled=False)
    assert isinstance(trace("incidentfox probe"), NoOpTrace)


async def test_client_pools_are_bounded_and_evicted_pools_are_closed() -> None:
    from incidentfox.agents.model_provider import MAX_CLIENTS, TeamModelProvider

    provider = TeamModelProvider(openai_api_key=None, openai_base_url=None, default_model="m")
    first = provider.model_for({"model": {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-rotated-0"}})
    assert first is not None
    first_client = next(iter(provider._clients.values()))
    for n in range(1, MAX_CLIENTS + 1):
        provider.model_for({"model": {"base_url": "http://127.0.0.1:9/v1", "api_key": f"sk-rotated-{n}"}})
    assert len(provider._clients) == MAX_CLIENTS
    assert first_client not in provider._clients.values()
    await asyncio.sleep(0.05)
    assert first_client.is_closed(), "the evicted pool is closed without waiting for shutdown"
    await provider.aclose()
