"""The Anthropic emulator: the Messages API protocol over raw HTTP, and the real Claude Code CLI that
claude-agent-sdk bundles, driven offline through it (text, a Bash tool use, interrupt then resume)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    Message,
    ResultMessage,
    TextBlock,
    ToolUseBlock,
    query,
)

from incidentfox.emulators.anthropic_api import AnthropicEmulator, RecordedRequest, RoutedScript, ScriptStep
from incidentfox.sandboxes.cli_env import offline_cli_env

VERSION = {"anthropic-version": "2023-06-01"}
QUESTION: dict[str, Any] = {"role": "user", "content": "why is checkout down?"}
HELLO: dict[str, Any] = {
    "model": "claude-test",
    "max_tokens": 256,
    "messages": [QUESTION],
}
CLI_TURN_TIMEOUT = 60.0


@pytest.fixture
async def emu() -> AsyncIterator[AnthropicEmulator]:
    async with AnthropicEmulator() as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(emu: AnthropicEmulator, **extra: str) -> dict[str, str]:
    return {"x-api-key": emu.api_key, **VERSION, **extra}


async def post(
    http: aiohttp.ClientSession, emu: AnthropicEmulator, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    url = f"{emu.base_url}/v1/messages"
    async with http.post(url, json=body, headers=auth(emu) if headers is None else headers) as response:
        return response.status, await response.json(), response


async def stream(
    http: aiohttp.ClientSession, emu: AnthropicEmulator, body: dict[str, Any] = HELLO
) -> list[tuple[str, dict[str, Any]]]:
    """POST with ``stream: true`` and parse the SSE answer into ``(event, data)`` pairs."""
    events: list[tuple[str, dict[str, Any]]] = []
    url = f"{emu.base_url}/v1/messages"
    async with http.post(url, json=body | {"stream": True}, headers=auth(emu)) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = (await response.read()).decode()
    for chunk in raw.strip().split("\n\n"):
        name_line, data_line = chunk.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name_line.removeprefix("event: ")
        events.append((data["type"], data))
    return events


def deltas(events: Sequence[tuple[str, dict[str, Any]]], index: int, key: str) -> str:
    return "".join(
        d["delta"][key]
        for name, d in events
        if name == "content_block_delta" and d["index"] == index and key in d["delta"]
    )


# --- the protocol, over raw HTTP (the anthropic package is not a dependency of claude-agent-sdk) ---


async def test_non_streaming_text_answer_and_request_is_recorded(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    emu.enqueue(ScriptStep.text("Checkout pods are crash-looping."))
    body = HELLO | {"system": [{"type": "text", "text": "You are an SRE."}]}
    status, answer, response = await post(http, emu, body)

    assert status == 200
    assert response.headers["request-id"].startswith("req_")
    assert answer["type"] == "message" and answer["role"] == "assistant"
    assert answer["content"] == [{"type": "text", "text": "Checkout pods are crash-looping."}]
    assert answer["stop_reason"] == "end_turn" and answer["stop_sequence"] is None
    assert answer["model"] == "claude-test"
    assert answer["usage"]["input_tokens"] > 0 and answer["usage"]["output_tokens"] > 0
    [request] = emu.requests
    assert request.api_key == emu.api_key and request.authorized
    assert request.system_prompt == "You are an SRE."
    assert request.last_user_text == "why is checkout down?"
    assert request.stream is False
    assert request.delivery.message_id == answer["id"] and request.delivery.status == 200


async def test_stream_sends_the_event_sequence_anthropic_sends(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    emu.enqueue(ScriptStep.text("The api deployment ran out of memory."))
    events = await stream(http, emu)

    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert set(names[3:-3]) == {"content_block_delta"} and len(names[3:-3]) > 1
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["role"] == "assistant"
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    assert deltas(events, 0, "text") == "The api deployment ran out of memory."
    message_delta = events[-2][1]
    assert message_delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert message_delta["usage"]["output_tokens"] > 0
    assert emu.requests[0].delivery.events == names and emu.requests[0].delivery.completed


async def test_stream_of_several_tool_uses_in_one_turn_rebuilds_each_input(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    calls = [
        ("Bash", {"command": "kubectl get pods -n checkout", "description": "list pods"}),
        ("Read", {"file_path": "/srv/app.log"}),
    ]
    emu.enqueue(ScriptStep.tool_uses(calls, text="Let me look.", thinking="Pods first, then the log."))
    events = await stream(http, emu)

    starts = [d["content_block"] for name, d in events if name == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "text", "tool_use", "tool_use"]
    assert deltas(events, 0, "thinking") == "Pods first, then the log."
    assert deltas(events, 0, "signature")
    assert deltas(events, 1, "text") == "Let me look."
    assert [(b["name"], b["input"]) for b in starts[2:]] == [("Bash", {}), ("Read", {})]
    assert json.loads(deltas(events, 2, "partial_json")) == calls[0][1]
    assert json.loads(deltas(events, 3, "partial_json")) == calls[1][1]
    tool_deltas = [d["delta"] for n, d in events if n == "content_block_delta" and d["index"] in (2, 3)]
    assert {d["type"] for d in tool_deltas} == {"input_json_delta"}
    assert tool_deltas[0]["partial_json"] == ""
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert [b["id"] for b in starts[2:]] == emu.requests[0].delivery.tool_use_ids


async def test_non_streaming_tool_use_carries_ids_the_next_request_answers(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    emu.responder = (
        RoutedScript()
        .when_tool_result([ScriptStep.text("Two pods are in CrashLoopBackOff.")])
        .when_user_says("checkout", [ScriptStep.tool_use("Bash", {"command": "kubectl get pods"})])
    )
    _, first, _ = await post(http, emu, HELLO)
    [use] = first["content"]
    assert use["type"] == "tool_use" and use["input"] == {"command": "kubectl get pods"}
    assert first["stop_reason"] == "tool_use"

    result = {
        "type": "tool_result",
        "tool_use_id": use["id"],
        "content": [{"type": "text", "text": "api-1 CrashLoopBackOff"}],
    }
    follow_up = [
        QUESTION,
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [result]},
    ]
    _, second, _ = await post(http, emu, HELLO | {"messages": follow_up})

    assert second["content"][0]["text"] == "Two pods are in CrashLoopBackOff."
    [seen] = emu.requests[1].tool_results
    assert (seen.tool_use_id, seen.text, seen.is_error) == (use["id"], "api-1 CrashLoopBackOff", False)
    assert emu.requests[1].last_user_text == "why is checkout down?"
    assert "kubectl get pods" in emu.requests[1].text()


async def test_routes_by_tools_offered_and_fall_through_to_default_script(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    routed = RoutedScript().when_tool_offered("Bash", [ScriptStep.text("main loop")])
    emu.responder = routed
    emu.enqueue(ScriptStep.text("side request"))
    tool = {"name": "Bash", "description": "run", "input_schema": {"type": "object"}}

    _, main_loop, _ = await post(http, emu, HELLO | {"tools": [tool]})
    _, side, _ = await post(http, emu, HELLO)

    assert main_loop["content"][0]["text"] == "main loop"
    assert side["content"][0]["text"] == "side request"
    assert emu.requests[0].tool_names == ["Bash"]
    assert routed.remaining() == {"tool:Bash": 0} and emu.remaining == 0


async def test_keys_are_checked_in_either_header(emu: AnthropicEmulator, http: aiohttp.ClientSession) -> None:
    emu.enqueue(ScriptStep.text("ok"))
    missing, missing_body, _ = await post(http, emu, HELLO, headers=VERSION)
    wrong, wrong_body, _ = await post(http, emu, HELLO, headers={"x-api-key": "sk-ant-wrong", **VERSION})
    bearer, _, _ = await post(http, emu, HELLO, headers={"Authorization": f"Bearer {emu.api_key}", **VERSION})

    assert (missing, missing_body["type"], missing_body["error"]["type"]) == (
        401,
        "error",
        "authentication_error",
    )
    assert missing_body["error"]["message"] == "x-api-key header is required"
    assert (wrong, wrong_body["error"]["message"]) == (401, "invalid x-api-key")
    assert bearer == 200
    assert [r.authorized for r in emu.requests] == [False, False, True]
    assert emu.requests[1].api_key == "sk-ant-wrong"


async def test_bad_requests_are_invalid_request_errors_and_consume_no_step(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    emu.enqueue(ScriptStep.text("ok"))
    no_version, no_version_body, _ = await post(http, emu, HELLO, headers={"x-api-key": emu.api_key})
    no_max, no_max_body, _ = await post(http, emu, {k: v for k, v in HELLO.items() if k != "max_tokens"})
    bad_role, bad_role_body, _ = await post(
        http, emu, HELLO | {"messages": [{"role": "tool", "content": "x"}]}
    )
    not_json, not_json_body, _ = await post(http, emu, ["not", "an", "object"])

    assert (no_version, no_version_body["error"]["type"]) == (400, "invalid_request_error")
    assert no_version_body["error"]["message"] == "anthropic-version: header is required"
    assert (no_max, no_max_body["error"]["message"]) == (400, "max_tokens: Field required")
    assert bad_role == 400 and "messages.0.role" in bad_role_body["error"]["message"]
    assert (not_json, not_json_body["error"]["type"]) == (400, "invalid_request_error")
    assert emu.remaining == 1
    assert [r.delivery.status for r in emu.requests] == [400, 400, 400]


async def test_http_error_steps_have_the_api_shapes_and_headers(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    emu.enqueue(
        ScriptStep.http_error(429),
        ScriptStep.http_error(529, should_retry=False),
        ScriptStep.http_error(500, "boom", retry_after=0),
    )
    limited, limited_body, limited_response = await post(http, emu, HELLO)
    overloaded, overloaded_body, overloaded_response = await post(http, emu, HELLO)
    failed, failed_body, failed_response = await post(http, emu, HELLO)

    assert (limited, limited_body["error"]["type"]) == (429, "rate_limit_error")
    assert limited_response.headers["retry-after"] == "1"
    assert (overloaded, overloaded_body["error"]) == (
        529,
        {"type": "overloaded_error", "message": "Overloaded"},
    )
    assert overloaded_response.headers["x-should-retry"] == "false"
    assert (failed, failed_body["error"]["type"], failed_body["error"]["message"]) == (
        500,
        "api_error",
        "boom",
    )
    assert failed_response.headers["retry-after"] == "0"
    assert failed_body["request_id"] == failed_response.headers["request-id"]


async def test_delay_is_a_prefix_of_the_next_step(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    emu.enqueue(ScriptStep.delay(0.3), ScriptStep.text("late"))
    started = time.monotonic()
    status, answer, _ = await post(http, emu, HELLO)

    assert time.monotonic() - started >= 0.3
    assert (status, answer["content"][0]["text"]) == (200, "late")
    assert emu.remaining == 0


async def test_exhausted_script_answers_500_without_retry_and_records_failure(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    routed = RoutedScript().when_user_says("checkout", [])
    emu.responder = routed
    status, body, response = await post(http, emu, HELLO)

    assert (status, body["error"]["type"]) == (500, "api_error")
    assert response.headers["x-should-retry"] == "false"
    assert emu.failures == [
        "anthropic emulator: script exhausted at request #0 (route 'user:checkout' has no step left)"
    ]
    assert body["error"]["message"] == emu.failures[0]


async def test_count_tokens_models_and_unknown_paths(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{emu.base_url}/v1/messages/count_tokens",
        json={"model": "m", "messages": HELLO["messages"]},
        headers=auth(emu),
    ) as response:
        counted = await response.json()
    async with http.get(f"{emu.base_url}/v1/models", headers=auth(emu)) as response:
        models = await response.json()
    async with http.get(f"{emu.base_url}/v1/models", headers=VERSION) as response:
        models_unauthorized = response.status
    async with http.head(f"{emu.base_url}/api/hello") as response:
        unknown = response.status

    assert counted["input_tokens"] > 0 and len(emu.token_counts) == 1 and emu.requests == []
    assert [m["id"] for m in models["data"]] == list(emu.models) and models["has_more"] is False
    assert models["data"][0]["type"] == "model"
    assert models_unauthorized == 401
    assert (unknown, emu.unknown) == (404, ["HEAD /api/hello"])


async def test_paced_stream_lets_a_test_cut_in_and_sees_the_client_leave(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    emu.enqueue(ScriptStep.text("word " * 200, pace=0.05))
    url = f"{emu.base_url}/v1/messages"
    async with http.post(url, json=HELLO | {"stream": True}, headers=auth(emu)) as response:
        request = await emu.wait_streaming()
        assert not request.delivery.completed
        response.close()
    await emu.wait_until(lambda: request.delivery.disconnected, timeout=10)

    assert request.delivery.events.count("content_block_delta") < 200
    assert not request.delivery.completed


async def test_waiting_for_a_request_that_never_comes_says_what_did_arrive(
    emu: AnthropicEmulator, http: aiohttp.ClientSession
) -> None:
    emu.enqueue(ScriptStep.text("ok"))
    await post(http, emu, HELLO)

    with pytest.raises(TimeoutError, match=r"#0 200 'why is checkout down\?'"):
        await emu.wait_for_request(2, timeout=0.2)


# --- the real bundled Claude Code CLI, offline ---


@dataclass
class CliWorld:
    emu: AnthropicEmulator
    home: Path
    workdir: Path

    def options(self, **extra: Any) -> ClaudeAgentOptions:
        return ClaudeAgentOptions(
            env=offline_cli_env(self.home, self.emu.base_url, self.emu.api_key),
            cwd=str(self.workdir),
            permission_mode="bypassPermissions",
            setting_sources=[],
            max_turns=4,
            **extra,
        )


@pytest.fixture
async def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CliWorld]:
    """An emulator and a private home and workdir; the host environment carries a canary bearer token
    the CLI must never send (claude-agent-sdk merges ``os.environ`` into the CLI's environment)."""
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "host-canary-token")
    home, workdir = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    workdir.mkdir()
    async with AnthropicEmulator() as emulator:
        yield CliWorld(emulator, home, workdir)


async def collect_turn(messages: AsyncIterator[Message]) -> list[Message]:
    """Every message of one turn; the stream ends after its ``ResultMessage``."""
    async with asyncio.timeout(CLI_TURN_TIMEOUT):
        return [message async for message in messages]


def texts(turn: Sequence[Message]) -> list[str]:
    return [
        b.text for m in turn if isinstance(m, AssistantMessage) for b in m.content if isinstance(b, TextBlock)
    ]


def result_of(turn: Sequence[Message]) -> ResultMessage:
    assert isinstance(turn[-1], ResultMessage), turn
    return turn[-1]


def says(text: str) -> Callable[[RecordedRequest], bool]:
    return lambda r: text in r.last_user_text


async def test_cli_answers_a_prompt_offline_with_the_scripted_text(cli: CliWorld) -> None:
    cli.emu.responder = RoutedScript().when_user_says(
        "why is checkout down", [ScriptStep.text("The checkout pods are OOMKilled.")]
    )
    turn = await collect_turn(query(prompt="why is checkout down?", options=cli.options()))

    assert texts(turn) == ["The checkout pods are OOMKilled."]
    assert result_of(turn).subtype == "success" and not result_of(turn).is_error
    [request] = cli.emu.requests
    assert request.stream and request.query.get("beta") == "true"
    assert request.headers["x-api-key"] == cli.emu.api_key
    assert "authorization" not in request.headers
    assert all("host-canary-token" not in v for v in request.headers.values())
    assert "Bash" in request.tool_names
    assert "Claude" in request.system_prompt
    assert cli.emu.failures == []


async def test_cli_stays_quiet_and_keeps_its_state_in_the_private_home(cli: CliWorld) -> None:
    cli.emu.responder = lambda request: ScriptStep.text("ok")
    turn = await collect_turn(query(prompt="ping", options=cli.options()))

    assert result_of(turn).subtype == "success"
    assert cli.emu.unknown == [], "non-essential traffic (the CLI's HEAD /api/hello) reached the base URL"
    [request] = cli.emu.requests
    assert "ToolSearch" not in request.tool_names, "tools are deferred behind ToolSearch"
    assert not (cli.home / ".claude" / "telemetry").exists(), "the CLI queued telemetry events"
    assert (cli.home / "tmp").is_dir(), "the CLI kept its scratch outside the private home"
    [transcript] = (cli.home / ".claude" / "projects").rglob("*.jsonl")
    assert result_of(turn).session_id in transcript.name and "ping" in transcript.read_text()
    assert sorted(p.name for p in cli.workdir.iterdir()) == []


async def test_cli_runs_a_scripted_bash_tool_use_and_sends_its_result_back(cli: CliWorld) -> None:
    command = {"command": "echo hello > out.txt && cat out.txt", "description": "Write out.txt"}
    cli.emu.responder = (
        RoutedScript()
        .when_tool_result([ScriptStep.text("Wrote out.txt.")])
        .when_user_says("write the file", [ScriptStep.tool_use("Bash", command, text="Writing it.")])
    )
    turn = await collect_turn(query(prompt="write the file", options=cli.options()))

    assert (cli.workdir / "out.txt").read_text() == "hello\n"
    uses = [
        b for m in turn if isinstance(m, AssistantMessage) for b in m.content if isinstance(b, ToolUseBlock)
    ]
    assert [(u.name, u.input) for u in uses] == [("Bash", command)]
    first, second = cli.emu.requests
    [result] = second.tool_results
    assert result.tool_use_id == first.delivery.tool_use_ids[0] == uses[0].id
    assert "hello" in result.text and not result.is_error
    assert texts(turn) == ["Writing it.", "Wrote out.txt."]
    assert result_of(turn).subtype == "success" and result_of(turn).num_turns == 2


async def test_cli_interrupt_mid_stream_ends_the_turn_and_the_session_continues(cli: CliWorld) -> None:
    long_story = " ".join(f"line{n}" for n in range(400))
    cli.emu.responder = (
        RoutedScript()
        .when_user_says("tell me everything", [ScriptStep.text(long_story, pace=0.05)])
        .when_user_says("still there", [ScriptStep.text("Yes, still here.")])
    )
    async with ClaudeSDKClient(options=cli.options()) as client:
        await client.query("tell me everything")
        streaming = await cli.emu.wait_streaming(where=says("tell me everything"), timeout=CLI_TURN_TIMEOUT)
        await client.interrupt()
        interrupted = await collect_turn(client.receive_response())
        await cli.emu.wait_until(lambda: streaming.delivery.disconnected, timeout=10)

        await client.query("are you still there?")
        resumed = await collect_turn(client.receive_response())

    assert result_of(interrupted).subtype == "error_during_execution" and result_of(interrupted).is_error
    assert not streaming.delivery.completed
    assert streaming.delivery.events.count("content_block_delta") < 400
    assert result_of(resumed).subtype == "success"
    assert texts(resumed) == ["Yes, still here."]
    assert result_of(resumed).session_id == result_of(interrupted).session_id
    follow_up = cli.emu.requests[-1]
    assert "tell me everything" in follow_up.text() and "still there" in follow_up.last_user_text
    assert cli.emu.failures == []


def test_recorded_request_reads_tool_results_only_from_the_last_message() -> None:
    earlier = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "old"}
    body = {
        "messages": [
            {"role": "user", "content": [earlier]},
            {"role": "assistant", "content": [{"type": "text", "text": "done"}]},
            {"role": "user", "content": "next question"},
        ]
    }
    request = RecordedRequest(
        index=0, path="/v1/messages", query={}, body=body, headers={}, authorized=True, at=0.0
    )

    assert request.tool_results == [] and not request.has_tool_result
    assert request.last_user_text == "next question"
    assert request.roles == ["user", "assistant", "user"]
