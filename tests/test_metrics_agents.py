"""What the run engine records: tool calls through the one adapter (the Kubernetes emulator behind
it), model calls through the OpenAI emulator (plain and streamed) and through the SRE agent's model
proxy (the Anthropic emulator behind it), and the run counters the worker calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from agents import Agent, Runner

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent
from incidentfox.agents.model_provider import TeamModelProvider, configure_tracing, provider_of
from incidentfox.agents.queue import SHARED_STREAM, team_stream
from incidentfox.agents.toolsets import kubernetes as kt
from incidentfox.agents.toolsets.function_tools import call_tool
from incidentfox.emulators.anthropic_api import AnthropicEmulator
from incidentfox.emulators.anthropic_api import ScriptStep as AnthropicStep
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.openai_api import OpenAIEmulator, ScriptStep
from incidentfox.observability.metrics import PROCESS_METRICS, tenancy_of
from incidentfox.sandboxes.model_proxy import ModelProxy
from incidentfox.sandboxes.model_usage import MessagesUsage
from incidentfox.sandboxes.session_tokens import SessionTokens
from tests.metric_samples import sample

POD = "checkout-7d9f8b6c5-x2k4q"
TOOL_CALLS = "incidentfox_tool_calls_total"
TOOL_TIME = "incidentfox_tool_seconds_count"
MODEL_TIME = "incidentfox_model_seconds_count"
TOKENS = "incidentfox_model_tokens_total"


def _tokens(provider: str) -> tuple[float, float]:
    return sample(TOKENS, provider=provider, kind="input"), sample(TOKENS, provider=provider, kind="output")


# --- tools ------------------------------------------------------------------------------------------


@pytest.fixture
async def k8s() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator("crashloop") as emulator:
        yield emulator


async def test_each_tool_call_is_counted_by_status_and_its_run_is_timed(k8s: KubernetesEmulator) -> None:
    events: list[ProgressEvent] = []
    config = {"integrations": {"kubernetes": {"api_url": k8s.api_url, "token": k8s.token}}}
    ctx = InvestigationContext(
        run_id="run-m1", org_id="acme", team_node_id="sre", config=config, emit=events.append
    )
    logs = next(t for t in kt.KUBERNETES.tools if t.name == "pod_logs")
    ok, failed, timed = (
        sample(TOOL_CALLS, toolset="kubernetes", tool="pod_logs", outcome="ok"),
        sample(TOOL_CALLS, toolset="kubernetes", tool="pod_logs", outcome="error"),
        sample(TOOL_TIME, toolset="kubernetes"),
    )

    good = await call_tool(
        ctx, kt.KUBERNETES, logs, json.dumps({"name": POD, "namespace": "prod"}), call_id="c1", agent="k8s"
    )
    bad = await call_tool(
        ctx, kt.KUBERNETES, logs, json.dumps({"namespace": "prod"}), call_id="c2", agent="k8s"
    )

    assert (good.result.status, bad.result.status) == ("ok", "error")
    assert sample(TOOL_CALLS, toolset="kubernetes", tool="pod_logs", outcome="ok") - ok == 1
    assert sample(TOOL_CALLS, toolset="kubernetes", tool="pod_logs", outcome="error") - failed == 1
    assert sample(TOOL_TIME, toolset="kubernetes") - timed == 1, "arguments that never ran are not timed"
    assert k8s.requests, "the call reached the Kubernetes API"


# --- the openai-agents model ------------------------------------------------------------------------


async def test_model_calls_record_latency_and_the_tokens_the_endpoint_reported() -> None:
    configure_tracing(enabled=False)
    async with OpenAIEmulator([ScriptStep.text("pong"), ScriptStep.text("pong again")]) as emu:
        provider = TeamModelProvider(
            openai_api_key=emu.api_key, openai_base_url=emu.base_url, default_model="emulator-model"
        )
        model = provider.model_for({})
        assert model is not None
        calls, (tokens_in, tokens_out) = (
            sample(MODEL_TIME, provider="openai_compatible"),
            _tokens("openai_compatible"),
        )

        plain = await Runner.run(Agent(name="probe", model=model), "ping")
        streamed = Runner.run_streamed(Agent(name="probe", model=model), "ping once more")
        async for _ in streamed.stream_events():
            pass
        await provider.aclose()

    assert (plain.final_output, streamed.final_output) == ("pong", "pong again")
    assert emu.requests[1].body.get("stream_options") == {"include_usage": True}, (
        "streamed calls ask for usage"
    )
    reported = [r.usage for r in (*plain.raw_responses, *streamed.raw_responses)]
    assert all(u.input_tokens > 0 and u.output_tokens > 0 for u in reported)
    assert sample(MODEL_TIME, provider="openai_compatible") - calls == 2
    assert _tokens("openai_compatible") == (
        tokens_in + sum(u.input_tokens for u in reported),
        tokens_out + sum(u.output_tokens for u in reported),
    )


def test_the_provider_label_tells_openai_from_compatible_endpoints() -> None:
    assert provider_of("https://api.openai.com/v1") == "openai"
    assert provider_of("http://127.0.0.1:8000/v1") == "openai_compatible"


# --- the SRE agent's model proxy ----------------------------------------------------------------------


def _sse_usage(body: bytes) -> tuple[int, int]:
    """What a streamed answer reported: input (with cached) from ``message_start``, output last."""
    input_tokens = output_tokens = 0
    for line in body.decode().splitlines():
        if not line.startswith("data: "):
            continue
        event: dict[str, Any] = json.loads(line[6:])
        if event["type"] == "message_start":
            usage = event["message"]["usage"]
            input_tokens = sum(
                usage.get(k, 0)
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            )
        elif event["type"] == "message_delta":
            output_tokens = event["usage"]["output_tokens"]
    return input_tokens, output_tokens


async def test_the_model_proxy_times_each_anthropic_call_and_counts_its_tokens_once() -> None:
    async with AnthropicEmulator(
        [AnthropicStep.text("The disk is fine."), AnthropicStep.text("Memory too.")]
    ) as emu:
        tokens = SessionTokens()
        proxy = ModelProxy(tokens, api_key=emu.api_key, upstream=emu.base_url)
        await proxy.start()
        headers = {"x-api-key": tokens.issue("sess-m1"), "anthropic-version": "2023-06-01"}
        question = {"model": "claude-emulator-1", "max_tokens": 256}
        calls, (tokens_in, tokens_out) = sample(MODEL_TIME, provider="anthropic"), _tokens("anthropic")
        try:
            async with aiohttp.ClientSession() as http:
                ask = {
                    **question,
                    "stream": True,
                    "messages": [{"role": "user", "content": "check the disk"}],
                }
                async with http.post(proxy.url + "/v1/messages", json=ask, headers=headers) as streamed:
                    assert streamed.status == 200
                    streamed_usage = _sse_usage(await streamed.read())
                ask = {**question, "messages": [{"role": "user", "content": "and the memory?"}]}
                async with http.post(proxy.url + "/v1/messages", json=ask, headers=headers) as plain:
                    assert plain.status == 200
                    usage = (await plain.json())["usage"]
                count = {**question, "messages": [{"role": "user", "content": "how long is this?"}]}
                async with http.post(
                    proxy.url + "/v1/messages/count_tokens", json=count, headers=headers
                ) as counted:
                    assert counted.status == 200
        finally:
            await proxy.stop()

    plain_usage = (
        usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"],
        usage["output_tokens"],
    )
    assert min(*streamed_usage, *plain_usage) > 0
    assert sample(MODEL_TIME, provider="anthropic") - calls == 2, "count_tokens is not a model call"
    assert _tokens("anthropic") == (
        tokens_in + streamed_usage[0] + plain_usage[0],
        tokens_out + streamed_usage[1] + plain_usage[1],
    )


# --- runs ------------------------------------------------------------------------------------------------


def test_runs_are_counted_by_status_source_and_tenancy() -> None:
    started = sample("incidentfox_runs_started_total", source="pagerduty", tenancy="dedicated")
    failed = sample("incidentfox_runs_total", status="failed", source="pagerduty", tenancy="dedicated")
    succeeded = sample("incidentfox_runs_total", status="succeeded", source="slack", tenancy="shared")

    PROCESS_METRICS.run_started("pagerduty", tenancy_of(team_stream("acme", "checkout")))
    PROCESS_METRICS.run_finished("failed", "pagerduty", tenancy_of(team_stream("acme", "checkout")))
    PROCESS_METRICS.run_finished("succeeded", "slack", tenancy_of(SHARED_STREAM))

    assert sample("incidentfox_runs_started_total", source="pagerduty", tenancy="dedicated") - started == 1
    assert (
        sample("incidentfox_runs_total", status="failed", source="pagerduty", tenancy="dedicated") - failed
        == 1
    )
    assert (
        sample("incidentfox_runs_total", status="succeeded", source="slack", tenancy="shared") - succeeded
        == 1
    )


def test_usage_is_read_from_a_streamed_answer_split_anywhere() -> None:
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 12, "cache_read_input_tokens": 30}}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": 'say "usage" twice'}},
        {"type": "message_delta", "usage": {"output_tokens": 7}},
        {"type": "message_delta", "usage": {"output_tokens": 42}},
    ]
    body = "".join(f"event: {e['type']}\r\ndata: {json.dumps(e)}\r\n\r\n" for e in events).encode()
    reader = MessagesUsage(streamed=True)
    for at in range(len(body)):
        reader.feed(body[at : at + 1])

    assert reader.tokens() == (42, 42), "cached input counts as input; the last output total wins"
