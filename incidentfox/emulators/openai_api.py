"""An OpenAI-compatible model API on 127.0.0.1, driven by a per-test script.

The real ``openai`` client (and openai-agents' ``OpenAIChatCompletionsModel`` over it) talks to this
server over real HTTP. Each ``POST /v1/chat/completions`` consumes the next ``ScriptStep`` and answers
with it, either as one JSON body or, when the request says ``stream: true``, as SSE chunks shaped like
OpenAI's (``delta.content`` / ``delta.tool_calls`` fragments, ``finish_reason``, a usage chunk and
``data: [DONE]``).

Which step answers a request:

* a ``responder`` (any callable, e.g. ``RoutedScript``) is asked first; it returns a step, or ``None``
  to fall through to the default script. This is how a planner and its sub-agents are scripted in one
  emulator: route on the tools offered or on the system prompt.
* otherwise the default script's next step is popped.
* ``ScriptStep.delay`` steps are prefixes: the server sleeps, then answers the same request with the
  following step.

Exhausted script: when no step is left for a request, the server answers HTTP 500 with
``{"error": {"type": "script_exhausted", "code": "script_exhausted", "message": ...}}`` naming the
request number, and appends the message to ``emulator.failures`` so a test can assert on it (the
openai client surfaces it as ``openai.InternalServerError``).

Every chat request, authorized or not, is kept in ``emulator.requests`` as a ``RecordedRequest``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

from aiohttp import web

from incidentfox.emulators import scripting
from incidentfox.emulators.scripting import ScriptedAnswers, ScriptExhausted

StepKind = Literal["text", "tool_calls", "json", "garbage", "http_error", "delay"]
GarbageWhere = Literal["content", "body"]

DEFAULT_API_KEY = "sk-emulator-0123456789abcdef"
DEFAULT_MODEL = "emulator-model"


@dataclass(frozen=True, slots=True)
class ScriptedToolCall:
    """A scripted function call; ``arguments`` is a dict or a raw (possibly broken) JSON string."""

    name: str
    arguments: Mapping[str, Any] | str

    @property
    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True, slots=True)
class ScriptStep:
    """One scripted answer. Build it with the class methods; the fields are for the server."""

    kind: StepKind
    content: str | None = None
    calls: tuple[ScriptedToolCall, ...] = ()
    status: int = 200
    seconds: float = 0.0
    garbage_where: GarbageWhere = "content"

    @classmethod
    def text(cls, content: str) -> ScriptStep:
        """An assistant message with plain text; ``finish_reason: stop``."""
        return cls(kind="text", content=content)

    @classmethod
    def json(cls, obj: Any) -> ScriptStep:
        """An assistant message whose content is ``obj`` as JSON: a final structured output."""
        return cls(kind="json", content=json.dumps(obj))

    @classmethod
    def tool_calls(
        cls, calls: Iterable[tuple[str, Mapping[str, Any] | str]], *, text: str | None = None
    ) -> ScriptStep:
        """One or more function calls, e.g. ``[("ask_kubernetes", {"input": "list pods"})]``, optionally
        with assistant ``text`` in the same message ("Let me check the pods.")."""
        return cls(kind="tool_calls", content=text, calls=tuple(ScriptedToolCall(n, a) for n, a in calls))

    @classmethod
    def garbage(cls, where: GarbageWhere = "content") -> ScriptStep:
        """Malformed output. ``content``: a well-formed response whose message content is not valid JSON
        (breaks structured output). ``body``: HTTP 200 whose body is not JSON / not SSE at all."""
        return cls(kind="garbage", garbage_where=where)

    @classmethod
    def http_error(cls, status: int = 500, message: str = "The emulated model failed") -> ScriptStep:
        """An OpenAI-style JSON error with the given HTTP status."""
        return cls(kind="http_error", status=status, content=message)

    @classmethod
    def delay(cls, seconds: float) -> ScriptStep:
        """Sleep before answering the same request with the following step (for timeout tests)."""
        return cls(kind="delay", seconds=seconds)


GARBAGE_CONTENT = "Sure! {root_cause: the pods, evidence: [unterminated"
GARBAGE_BODY = "<html><body>502 upstream sent garbage</body></html>"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A chat request as received. ``authorization`` is the raw header (tests check the key)."""

    index: int
    path: str
    body: dict[str, Any]
    authorization: str | None
    authorized: bool
    at: float

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream", False))

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages")
        return list(messages) if isinstance(messages, list) else []

    @property
    def roles(self) -> list[str]:
        return [str(m.get("role")) for m in self.messages]

    @property
    def tools(self) -> list[dict[str, Any]]:
        tools = self.body.get("tools")
        return list(tools) if isinstance(tools, list) else []

    @property
    def tool_names(self) -> list[str]:
        return [str(t.get("function", {}).get("name")) for t in self.tools]

    @property
    def system_prompt(self) -> str:
        """The first system (or developer) message's text; ``""`` when there is none."""
        for message in self.messages:
            if message.get("role") in ("system", "developer"):
                return _text_of(message.get("content"))
        return ""

    def text(self) -> str:
        """All message text joined, for "did the model see X" assertions."""
        parts = [_text_of(m.get("content")) for m in self.messages]
        for message in self.messages:
            for call in message.get("tool_calls") or ():
                parts.append(str(call.get("function", {}).get("arguments", "")))
        return "\n".join(parts)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


Responder = scripting.Responder[RecordedRequest, ScriptStep]
"""Picks the step for a request, or returns ``None`` to use the default script (see ``scripting``)."""


class RoutedScript(scripting.RoutedScript[RecordedRequest, ScriptStep]):
    """A responder with one ordered script per caller, routed by a predicate on the request.

    Routes are tried in the order they were added; the first whose predicate matches owns the request.
    A request that no route matches falls through to the emulator's default script.
    """

    __slots__ = ()

    def when_tool_offered(self, tool_name: str, steps: Sequence[ScriptStep]) -> Self:
        """Route requests that offer ``tool_name`` (e.g. the planner offers ``ask_kubernetes``)."""
        return self.when(f"tool:{tool_name}", lambda r: tool_name in r.tool_names, steps)

    def when_system_contains(self, text: str, steps: Sequence[ScriptStep]) -> Self:
        """Route requests whose first system message contains ``text``."""
        return self.when(f"system:{text}", lambda r: text in r.system_prompt, steps)


class OpenAIEmulator(ScriptedAnswers[RecordedRequest, ScriptStep]):
    """The emulated API server. Use ``async with OpenAIEmulator([...]) as emu:`` or ``start()/stop()``."""

    def __init__(
        self,
        script: Sequence[ScriptStep] = (),
        *,
        responder: Responder | None = None,
        api_key: str = DEFAULT_API_KEY,
        models: Sequence[str] = (DEFAULT_MODEL,),
    ) -> None:
        self.api_key = api_key
        self.models = tuple(models)
        self.responder = responder
        self.requests: list[RecordedRequest] = []
        self.failures: list[str] = []
        self._script: deque[ScriptStep] = deque(script)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._stopping = asyncio.Event()
        self._ids = itertools.count(1)

    async def start(self) -> Self:
        self._stopping.clear()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the OpenAI emulator is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return _unauthorized()
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "incidentfox-emulator"}
            for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return _error(
            404, f"Unknown path {request.method} {request.path}", "invalid_request_error", "not_found"
        )

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        authorized = self._authorized(request)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object", "invalid_request_error", "bad_json")
        recorded = RecordedRequest(
            index=len(self.requests),
            path=request.path,
            body=body,
            authorization=request.headers.get("Authorization"),
            authorized=authorized,
            at=time.monotonic(),
        )
        self.requests.append(recorded)
        if not authorized:
            return _unauthorized()
        try:
            step = await self._next_answer(recorded)
        except ScriptExhausted as exc:
            message = f"openai emulator: script exhausted at request #{recorded.index} ({exc})"
            self.failures.append(message)
            return _error(500, message, "script_exhausted", "script_exhausted")
        if step is None:
            return web.Response(status=503, text="emulator stopping")
        if step.kind == "http_error":
            return _error(step.status, step.content or "error", "server_error", f"http_{step.status}")
        if step.kind == "garbage" and step.garbage_where == "body":
            if recorded.stream:
                return web.Response(
                    status=200, text=f"data: {GARBAGE_BODY}\n\n", content_type="text/event-stream"
                )
            return web.Response(status=200, text=GARBAGE_BODY, content_type="application/json")
        completion = _Completion.from_step(step, f"chatcmpl-emu-{next(self._ids)}", recorded, self._ids)
        if recorded.stream:
            return await self._stream(request, completion, recorded)
        return web.json_response(completion.as_body())

    def _delay_seconds(self, step: ScriptStep) -> float | None:
        return step.seconds if step.kind == "delay" else None

    async def _stream(
        self, request: web.Request, completion: _Completion, recorded: RecordedRequest
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        include_usage = bool((recorded.body.get("stream_options") or {}).get("include_usage"))
        try:
            for chunk in completion.as_chunks(include_usage=include_usage):
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"


def _error(status: int, message: str, type_: str, code: str) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return web.json_response(body, status=status)


def _unauthorized() -> web.Response:
    return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


@dataclass(frozen=True, slots=True)
class _Completion:
    """A completed assistant turn, renderable as one body or as SSE chunks."""

    id: str
    model: str
    content: str | None
    tool_calls: tuple[tuple[str, ScriptedToolCall], ...]
    prompt_tokens: int
    completion_tokens: int

    @classmethod
    def from_step(
        cls, step: ScriptStep, completion_id: str, request: RecordedRequest, ids: Iterable[int]
    ) -> _Completion:
        content = GARBAGE_CONTENT if step.kind == "garbage" else step.content
        calls = tuple((f"call_emu_{n}", call) for call, n in zip(step.calls, ids, strict=False))
        produced = (content or "") + "".join(c.name + c.arguments_json for _, c in calls)
        return cls(
            id=completion_id,
            model=request.model or DEFAULT_MODEL,
            content=content,
            tool_calls=calls,
            prompt_tokens=_estimate_tokens(request.text()),
            completion_tokens=_estimate_tokens(produced),
        )

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"

    @property
    def usage(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": total,
        }

    def as_body(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json}}
                for cid, c in self.tool_calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": self.finish_reason, "logprobs": None}
            ],
            "usage": self.usage,
        }

    def as_chunks(self, *, include_usage: bool) -> list[dict[str, Any]]:
        """The SSE payloads: role, content pieces, tool-call fragments, finish, then usage if asked."""
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if self.content:
            deltas.extend({"content": piece} for piece in _pieces(self.content))
        for index, (cid, call) in enumerate(self.tool_calls):
            head = {
                "index": index,
                "id": cid,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            deltas.append({"tool_calls": [head]})
            for piece in _pieces(call.arguments_json, size=16):
                deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        chunks = [self._chunk([{"index": 0, "delta": d, "finish_reason": None}]) for d in deltas]
        chunks.append(self._chunk([{"index": 0, "delta": {}, "finish_reason": self.finish_reason}]))
        if include_usage:
            chunks.append(self._chunk([], usage=self.usage))
        return chunks

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": choices,
            "usage": usage,
        }


def _pieces(text: str, size: int = 0) -> list[str]:
    """Split ``text`` into stream fragments: words (with their trailing space), or fixed-size slices."""
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + ([words[-1]] if words[-1] else [])
