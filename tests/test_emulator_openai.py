"""The OpenAI-compatible emulator, exercised with the real openai client and openai-agents models."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from incidentfox.emulators.openai_api import OpenAIEmulator, RecordedRequest, RoutedScript, ScriptStep

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "why is checkout down?"}]


@pytest.fixture(autouse=True)
def _no_tracing() -> None:
    set_tracing_disabled(True)


@pytest.fixture
async def emu() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emulator:
        yield emulator


_open_clients: list[AsyncOpenAI] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _open_clients:
        await _open_clients.pop().close()


def client_for(emu: OpenAIEmulator, *, api_key: str | None = None, timeout: float = 10.0) -> AsyncOpenAI:
    key = api_key or emu.api_key
    client = AsyncOpenAI(base_url=emu.base_url, api_key=key, max_retries=0, timeout=timeout)
    _open_clients.append(client)
    return client


async def ask(
    client: AsyncOpenAI, messages: list[ChatCompletionMessageParam] = USER, *, model: str = "m", **extra: Any
) -> ChatCompletion:
    return await client.chat.completions.create(model=model, messages=messages, **extra)


async def ask_stream(client: AsyncOpenAI, **extra: Any) -> AsyncStream[ChatCompletionChunk]:
    return await client.chat.completions.create(model="m", messages=USER, stream=True, **extra)


async def test_non_streaming_text_answer_and_request_is_recorded(emu: OpenAIEmulator) -> None:
    emu.enqueue(ScriptStep.text("Checkout pods are crash-looping."))
    reply = await ask(client_for(emu), model="gpt-test")

    assert reply.choices[0].message.content == "Checkout pods are crash-looping."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    [request] = emu.requests
    assert request.model == "gpt-test"
    assert request.stream is False
    assert request.authorization == f"Bearer {emu.api_key}"
    assert request.messages == USER
    assert emu.base_url.endswith("/v1")


async def test_streaming_text_arrives_in_pieces_with_usage(emu: OpenAIEmulator) -> None:
    emu.enqueue(ScriptStep.text("The api deployment ran out of memory."))
    stream = await ask_stream(client_for(emu), stream_options={"include_usage": True})
    pieces: list[str] = []
    finish: list[str | None] = []
    usage_seen = False
    async for chunk in stream:
        if chunk.usage is not None:
            usage_seen = chunk.usage.total_tokens > 0
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish.append(choice.finish_reason)

    assert "".join(pieces) == "The api deployment ran out of memory."
    assert len([p for p in pieces if p]) > 1
    assert finish[-1] == "stop"
    assert usage_seen
    assert emu.requests[0].stream is True


async def test_streaming_tool_calls_reassemble_from_fragments(emu: OpenAIEmulator) -> None:
    args = {"namespace": "prod", "selector": "app=checkout", "previous": True}
    emu.enqueue(ScriptStep.tool_calls([("get_pod_logs", args), ("list_pods", {"namespace": "prod"})]))
    stream = await ask_stream(client_for(emu))
    calls: dict[int, dict[str, str]] = {}
    finish: str | None = None
    async for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for frag in choice.delta.tool_calls or ():
                call = calls.setdefault(frag.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += frag.id or ""
                if frag.function is not None:
                    call["name"] += frag.function.name or ""
                    call["arguments"] += frag.function.arguments or ""

    assert finish == "tool_calls"
    assert [c["name"] for c in calls.values()] == ["get_pod_logs", "list_pods"]
    assert json.loads(calls[0]["arguments"]) == args
    assert json.loads(calls[1]["arguments"]) == {"namespace": "prod"}
    assert calls[0]["id"] != calls[1]["id"]


async def test_non_streaming_tool_calls_and_json_answer(emu: OpenAIEmulator) -> None:
    emu.enqueue(ScriptStep.tool_calls([("list_pods", {"namespace": "prod"})], text="Checking pods."))
    emu.enqueue(ScriptStep.json({"summary": "oom", "items": [1, 2]}))
    client = client_for(emu)

    first = await ask(client)
    second = await ask(client)

    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.content == "Checking pods."
    [call] = message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "list_pods"
    assert json.loads(call.function.arguments) == {"namespace": "prod"}
    assert json.loads(second.choices[0].message.content or "") == {"summary": "oom", "items": [1, 2]}
    assert emu.remaining == 0


async def test_wrong_api_key_is_401_and_consumes_no_step(emu: OpenAIEmulator) -> None:
    emu.enqueue(ScriptStep.text("never sent"))
    with pytest.raises(openai.AuthenticationError) as caught:
        await ask(client_for(emu, api_key="sk-wrong"))

    assert caught.value.status_code == 401
    assert emu.remaining == 1
    assert emu.requests[0].authorized is False
    assert "sk-wrong" not in str(caught.value)


async def test_models_list_and_unknown_path_404_json(emu: OpenAIEmulator) -> None:
    models = await client_for(emu).models.list()
    assert [m.id for m in models.data] == ["emulator-model"]

    async with aiohttp.ClientSession() as http, http.get(emu.base_url + "/nope") as resp:
        body = await resp.json()
    assert resp.status == 404
    assert body["error"]["code"] == "not_found"


async def test_http_error_step_surfaces_status(emu: OpenAIEmulator) -> None:
    emu.enqueue(ScriptStep.http_error(503, "overloaded"))
    with pytest.raises(openai.APIStatusError) as caught:
        await ask(client_for(emu))
    assert caught.value.status_code == 503


async def test_garbage_body_fails_to_parse(emu: OpenAIEmulator) -> None:
    emu.enqueue(ScriptStep.garbage("body"), ScriptStep.garbage("body"))
    with pytest.raises(json.JSONDecodeError):
        await ask(client_for(emu))
    stream = await ask_stream(client_for(emu))
    with pytest.raises(json.JSONDecodeError):
        await anext(aiter(stream))


async def test_exhausted_script_answers_500_the_test_can_see(emu: OpenAIEmulator) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await ask(client_for(emu))
    assert "script exhausted at request #0" in str(caught.value)
    assert emu.failures == [
        "openai emulator: script exhausted at request #0 (default script has no step left)"
    ]


async def test_delay_outlasts_client_timeout_and_stop_is_prompt() -> None:
    emu = await OpenAIEmulator([ScriptStep.delay(30), ScriptStep.text("too late")]).start()
    began = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await ask(client_for(emu, timeout=0.3))
    assert time.monotonic() - began < 2.0
    stopping = time.monotonic()
    await emu.stop()
    assert time.monotonic() - stopping < 2.0


async def test_step_after_delay_belongs_to_the_delayed_request(emu: OpenAIEmulator) -> None:
    first_seen = asyncio.Event()

    def note_arrival(_request: RecordedRequest) -> None:
        first_seen.set()

    emu.responder = note_arrival  # returns None: the default script answers
    emu.enqueue(ScriptStep.delay(0.3), ScriptStep.text("slow"), ScriptStep.text("fast"))
    client = client_for(emu)
    slow = asyncio.create_task(ask(client))
    await asyncio.wait_for(first_seen.wait(), 5)
    fast = await ask(client)
    assert fast.choices[0].message.content == "fast"
    assert (await slow).choices[0].message.content == "slow"


async def test_routed_script_routes_by_tools_and_system_prompt_then_falls_back() -> None:
    routes = (
        RoutedScript()
        .when_tool_offered("ask_kubernetes", [ScriptStep.text("planner step")])
        .when_system_contains("You are the logs specialist", [ScriptStep.text("logs step")])
    )
    async with OpenAIEmulator([ScriptStep.text("default step")], responder=routes) as emu:
        client = client_for(emu)
        tool = {"type": "function", "function": {"name": "ask_kubernetes", "parameters": {"type": "object"}}}
        logs_sys: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": "You are the logs specialist."},
            *USER,
        ]
        answers = [await ask(client, logs_sys), await ask(client, tools=[tool]), await ask(client)]
        assert [a.choices[0].message.content for a in answers] == [
            "logs step",
            "planner step",
            "default step",
        ]
        assert emu.requests[1].tool_names == ["ask_kubernetes"]
        assert emu.requests[0].system_prompt == "You are the logs specialist."

        with pytest.raises(openai.InternalServerError):
            await ask(client, tools=[tool])
        assert "route 'tool:ask_kubernetes' has no step left" in emu.failures[0]
        assert routes.remaining() == {"tool:ask_kubernetes": 0, "system:You are the logs specialist": 0}


@function_tool
def get_pod_status(namespace: str) -> str:
    """The status of every pod in a namespace."""
    return f"{namespace}/checkout-7d9 CrashLoopBackOff restarts=7"


@pytest.mark.parametrize("streamed", [False, True])
async def test_agents_sdk_model_runs_a_tool_loop_against_the_emulator(
    emu: OpenAIEmulator, streamed: bool
) -> None:
    emu.enqueue(
        ScriptStep.tool_calls([("get_pod_status", {"namespace": "prod"})]),
        ScriptStep.text("checkout-7d9 is crash-looping (7 restarts)."),
    )
    model = OpenAIChatCompletionsModel(model="emulator-model", openai_client=client_for(emu))
    agent = Agent(name="sre", instructions="You are an SRE.", model=model, tools=[get_pod_status])

    if streamed:
        run = Runner.run_streamed(agent, "why is checkout down?")
        names = [e.name async for e in run.stream_events() if e.type == "run_item_stream_event"]
        assert names == ["tool_called", "tool_output", "message_output_created"]
        final = run.final_output
    else:
        final = (await Runner.run(agent, "why is checkout down?")).final_output

    assert final == "checkout-7d9 is crash-looping (7 restarts)."
    first, second = emu.requests
    assert [r.stream for r in emu.requests] == [streamed, streamed]
    assert first.tool_names == ["get_pod_status"]
    assert first.system_prompt == "You are an SRE."
    assert second.roles == ["system", "user", "assistant", "tool"]
    assert "prod/checkout-7d9 CrashLoopBackOff restarts=7" in second.text()
