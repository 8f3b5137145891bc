"""The Anthropic Messages API on 127.0.0.1, driven by a per-test script.

The real Claude Code CLI (spawned by claude-agent-sdk with ``ANTHROPIC_BASE_URL`` pointing here) and
any Anthropic client talk to this server over real HTTP. Each ``POST /v1/messages`` consumes the next
``ScriptStep`` and answers with it, as one JSON message or, when the request says ``stream: true``, as
the SSE events Anthropic sends (see ``anthropic_render``). ``POST /v1/messages/count_tokens`` and
``GET /v1/models`` answer too; they consume no step.

Note the base URL: Anthropic clients and the CLI take the host *without* ``/v1``
(``ANTHROPIC_BASE_URL=http://127.0.0.1:PORT``), unlike OpenAI's.

Which step answers a request (the same rules as ``OpenAIEmulator``):

* a ``responder`` (any callable, e.g. ``RoutedScript``) is asked first; it returns a step, or ``None``
  to fall through to the default script;
* otherwise the default script's next step is popped;
* ``ScriptStep.delay`` steps are prefixes: the server sleeps, then answers the same request with the
  following step.

Requests are checked as the API checks them: a key in ``x-api-key`` or ``Authorization: Bearer``
(else 401 ``authentication_error``), an ``anthropic-version`` header and a well-formed body (else 400
``invalid_request_error``). Every parsed ``/v1/messages`` request, accepted or not, is kept in
``emulator.requests``; ``delivery`` on each says how the answer went (events written, completed, or
the client gone mid-stream). Tests wait on ``wait_for_request`` / ``wait_streaming`` / ``wait_until``
rather than sleeping.

Exhausted script: the server answers HTTP 500 ``api_error`` with ``x-should-retry: false`` (so clients
do not retry into the same hole), naming the request number, and appends the message to
``emulator.failures``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Self

from aiohttp import web

from incidentfox.emulators.anthropic_render import (
    DEFAULT_MODEL,
    RenderedMessage,
    error_body,
    estimate_tokens,
)
from incidentfox.emulators.anthropic_script import (
    Delivery,
    RecordedRequest,
    RecordedToolResult,
    Responder,
    RoutedScript,
    ScriptedToolUse,
    ScriptExhausted,
    ScriptStep,
)
from incidentfox.emulators.scripting import ScriptedAnswers
from incidentfox.emulators.served import Emulator, ServedApp

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_MODEL",
    "AnthropicEmulator",
    "Delivery",
    "RecordedRequest",
    "RecordedToolResult",
    "Responder",
    "RoutedScript",
    "ScriptExhausted",
    "ScriptStep",
    "ScriptedToolUse",
]

DEFAULT_API_KEY = "sk-ant-emulator-0123456789abcdef"
MAX_BODY_BYTES = 64 * 1024 * 1024
"""The CLI resends the whole conversation with its tool schemas on every turn: allow big bodies."""


class AnthropicEmulator(Emulator, ScriptedAnswers[RecordedRequest, ScriptStep]):
    """The emulated API server. Use ``async with AnthropicEmulator([...]) as emu:`` or ``start()/stop()``."""

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
        """Every ``POST /v1/messages`` with a JSON object body, in arrival order."""
        self.token_counts: list[RecordedRequest] = []
        """Every ``POST /v1/messages/count_tokens``."""
        self.unknown: list[str] = []
        """``"METHOD /path"`` of requests to paths the API does not have (answered 404)."""
        self.failures: list[str] = []
        """One message per request the script had no step for (each answered 500)."""
        self._script: deque[ScriptStep] = deque(script)
        self._server = ServedApp()
        self._port: int | None = None
        self._stopping = asyncio.Event()
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)

    async def start(self) -> Self:
        self._stopping.clear()
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model_id}", self._get_model)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._port = await self._server.serve(app, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        self._stopping.set()
        await self._server.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: what ``ANTHROPIC_BASE_URL`` and ``Anthropic(base_url=...)`` take."""
        if self._port is None:
            raise RuntimeError("the Anthropic emulator is not started")
        return f"http://127.0.0.1:{self._port}"

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 30.0) -> None:
        """Return once ``predicate()`` holds; it is re-checked whenever a request arrives or an answer
        progresses. Raises ``TimeoutError`` after ``timeout`` seconds."""
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
        except TimeoutError:
            seen = "; ".join(
                f"#{r.index} {r.delivery.status} {r.last_user_text[:60]!r}" for r in self.requests
            )
            raise TimeoutError(
                f"anthropic emulator: still waiting after {timeout:g}s; requests so far: {seen or 'none'}"
            ) from None

    async def wait_for_request(
        self,
        number: int = 1,
        *,
        where: Callable[[RecordedRequest], bool] | None = None,
        timeout: float = 30.0,
    ) -> RecordedRequest:
        """The ``number``-th ``/v1/messages`` request (1-based) matching ``where`` (any when ``None``),
        once it has arrived."""
        found: list[RecordedRequest] = []

        def arrived() -> bool:
            found[:] = [r for r in self.requests if where is None or where(r)]
            return len(found) >= number

        await self.wait_until(arrived, timeout=timeout)
        return found[number - 1]

    async def wait_streaming(
        self,
        number: int = 1,
        *,
        where: Callable[[RecordedRequest], bool] | None = None,
        timeout: float = 30.0,
    ) -> RecordedRequest:
        """The request ``wait_for_request`` names, once its answer has streamed its first content
        delta: the moment a test interrupts "mid-stream" (script that answer with a ``pace``)."""
        request = await self.wait_for_request(number, where=where, timeout=timeout)
        await self.wait_until(lambda: "content_block_delta" in request.delivery.events, timeout=timeout)
        return request

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        if body is None:
            return self._error(400, "invalid_request_error", "The request body is not valid JSON")
        recorded = self._record(request, body)
        self.requests.append(recorded)
        await self._notify()
        rejected = self._reject(recorded, needs_max_tokens=True)
        if rejected is not None:
            return await self._finish(recorded, rejected)
        try:
            step = await self._next_answer(recorded)
        except ScriptExhausted as exc:
            message = f"anthropic emulator: script exhausted at request #{recorded.index} ({exc})"
            self.failures.append(message)
            answer = self._error(500, "api_error", message, should_retry=False)
            return await self._finish(recorded, answer)
        if step is None:
            return await self._finish(recorded, web.Response(status=503, text="emulator stopping"))
        if step.kind == "http_error":
            answer = self._error(
                step.status,
                step.error_type,
                step.content or "error",
                retry_after=step.retry_after,
                should_retry=step.should_retry,
            )
            return await self._finish(recorded, answer)
        recorded.delivery.message_id = f"msg_emu_{next(self._ids):06d}"
        recorded.delivery.tool_use_ids.extend(f"toolu_emu_{next(self._ids):06d}" for _ in step.calls)
        rendered = RenderedMessage.from_step(
            step, recorded, recorded.delivery.message_id, recorded.delivery.tool_use_ids
        )
        if recorded.stream:
            return await self._stream(request, recorded, rendered, step.pace)
        answer = web.json_response(rendered.as_body(), headers=self._headers())
        return await self._finish(recorded, answer)

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        if body is None:
            return self._error(400, "invalid_request_error", "The request body is not valid JSON")
        recorded = self._record(request, body, index=len(self.token_counts))
        self.token_counts.append(recorded)
        rejected = self._reject(recorded, needs_max_tokens=False)
        if rejected is not None:
            return await self._finish(recorded, rejected)
        answer = web.json_response(
            {"input_tokens": estimate_tokens(recorded.text())}, headers=self._headers()
        )
        return await self._finish(recorded, answer)

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._unauthorized(request)
        data = [_model_info(m) for m in self.models]
        body = {
            "data": data,
            "has_more": False,
            "first_id": self.models[0] if self.models else None,
            "last_id": self.models[-1] if self.models else None,
        }
        return web.json_response(body, headers=self._headers())

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._unauthorized(request)
        model_id = request.match_info["model_id"]
        if model_id not in self.models:
            return self._error(404, "not_found_error", f"model: {model_id}")
        return web.json_response(_model_info(model_id), headers=self._headers())

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        self.unknown.append(f"{request.method} {request.path}")
        return self._error(404, "not_found_error", f"Not Found: {request.method} {request.path}")

    def _record(
        self, request: web.Request, body: dict[str, Any], index: int | None = None
    ) -> RecordedRequest:
        return RecordedRequest(
            index=len(self.requests) if index is None else index,
            path=request.path,
            query=dict(request.query),
            body=body,
            headers={k.lower(): v for k, v in request.headers.items()},
            authorized=self._authorized(request),
            at=time.monotonic(),
        )

    def _reject(self, recorded: RecordedRequest, *, needs_max_tokens: bool) -> web.Response | None:
        """The 401/400 answer the API would give this request, or ``None`` when it is acceptable."""
        if not recorded.authorized:
            if recorded.api_key is None:
                return self._error(401, "authentication_error", "x-api-key header is required")
            return self._error(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in recorded.headers:
            return self._error(400, "invalid_request_error", "anthropic-version: header is required")
        roles = ("user", "assistant", "system") if _per_turn_control(recorded) else ("user", "assistant")
        problem = _body_problem(recorded.body, roles=roles, needs_max_tokens=needs_max_tokens)
        if problem is not None:
            return self._error(400, "invalid_request_error", problem)
        return None

    async def _finish(self, recorded: RecordedRequest, answer: web.Response) -> web.Response:
        recorded.delivery.status = answer.status
        recorded.delivery.completed = True
        await self._notify()
        return answer

    def _delay_seconds(self, step: ScriptStep) -> float | None:
        return step.seconds if step.kind == "delay" else None

    async def _stream(
        self, request: web.Request, recorded: RecordedRequest, message: RenderedMessage, pace: float
    ) -> web.StreamResponse:
        headers = self._headers() | {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
        }
        response = web.StreamResponse(status=200, headers=headers)
        recorded.delivery.status = 200
        delivery = recorded.delivery
        try:
            await response.prepare(request)
            for event in message.as_events():
                if event.delta and pace and await self._stopped_within(pace):
                    return response
                if request.transport is None or request.transport.is_closing():
                    raise ConnectionResetError("client went away")
                await response.write(event.encode())
                delivery.events.append(event.name)
                await self._notify()
            await response.write_eof()
            delivery.completed = True
        except ConnectionError:
            delivery.disconnected = True
        await self._notify()
        return response

    def _authorized(self, request: web.Request) -> bool:
        return (
            request.headers.get("x-api-key") == self.api_key
            or request.headers.get("Authorization") == f"Bearer {self.api_key}"
        )

    def _unauthorized(self, request: web.Request) -> web.Response:
        sent = "x-api-key" in request.headers or "Authorization" in request.headers
        message = "invalid x-api-key" if sent else "x-api-key header is required"
        return self._error(401, "authentication_error", message)

    def _headers(self) -> dict[str, str]:
        return {"request-id": f"req_emu_{next(self._ids):06d}"}

    def _error(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        retry_after: float | None = None,
        should_retry: bool | None = None,
    ) -> web.Response:
        headers = self._headers()
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        if should_retry is not None:
            headers["x-should-retry"] = "true" if should_retry else "false"
        body = error_body(error_type, message, headers["request-id"])
        return web.json_response(body, status=status, headers=headers)


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _per_turn_control(recorded: RecordedRequest) -> bool:
    """Whether the request opted into the beta that allows ``system`` messages between turns (the
    CLI sends its environment notes that way; refused, it falls back to user messages)."""
    return "per-turn-control-" in recorded.headers.get("anthropic-beta", "")


def _body_problem(body: dict[str, Any], *, roles: tuple[str, ...], needs_max_tokens: bool) -> str | None:
    """What the API would say is wrong with a Messages body (its wording), or ``None``."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if needs_max_tokens:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            return "max_tokens: Field required"
        if max_tokens < 1:
            return "max_tokens: Input should be greater than or equal to 1"
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "messages: Field required"
    if not messages:
        return "messages: at least one message is required"
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in roles:
            return f"messages.{n}.role: Input should be " + " or ".join(repr(r) for r in roles)
        if "content" not in message:
            return f"messages.{n}.content: Field required"
    return None


def _model_info(model_id: str) -> dict[str, Any]:
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": "2025-01-01T00:00:00Z"}
