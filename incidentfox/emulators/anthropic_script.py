"""What a test scripts into the Anthropic emulator, and what the emulator records of each request.

A ``ScriptStep`` is one answer to one ``POST /v1/messages``: an assistant message (text, one or more
``tool_use`` blocks, optionally preceded by a ``thinking`` block), an HTTP error, or a delay prefix.
``RoutedScript`` picks steps per caller (the main agent loop, a side request, a sub-agent) by a
predicate on the ``RecordedRequest``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from incidentfox.emulators import scripting
from incidentfox.emulators.scripting import ScriptExhausted as ScriptExhausted

StepKind = Literal["text", "tool_use", "http_error", "delay"]

ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
"""The ``error.type`` Anthropic answers with each HTTP status."""

DEFAULT_ERROR_MESSAGES: Mapping[int, str] = {
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    529: "Overloaded",
}


def error_type_for(status: int) -> str:
    """Anthropic's ``error.type`` for an HTTP status (unlisted 5xx are ``api_error``)."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


@dataclass(frozen=True, slots=True)
class ScriptedToolUse:
    """A scripted ``tool_use`` block: the tool's name and its input object."""

    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ScriptStep:
    """One scripted answer. Build it with the class methods; the fields are for the server."""

    kind: StepKind
    content: str | None = None
    """The assistant text, or the error message of an ``http_error`` step."""
    thinking: str | None = None
    calls: tuple[ScriptedToolUse, ...] = ()
    status: int = 200
    retry_after: float | None = None
    should_retry: bool | None = None
    seconds: float = 0.0
    pace: float = 0.0
    """Seconds the server waits before each streamed delta: a slow model, for interrupt tests."""

    @classmethod
    def text(cls, content: str, *, thinking: str | None = None, pace: float = 0.0) -> ScriptStep:
        """An assistant message with one text block; ``stop_reason: end_turn``."""
        return cls(kind="text", content=content, thinking=thinking, pace=pace)

    @classmethod
    def tool_use(
        cls,
        name: str,
        input: Mapping[str, Any],
        *,
        text: str | None = None,
        thinking: str | None = None,
        pace: float = 0.0,
    ) -> ScriptStep:
        """One ``tool_use`` block, e.g. ``("Bash", {"command": "ls"})``, optionally after assistant
        ``text`` ("Let me look."); ``stop_reason: tool_use``."""
        return cls.tool_uses([(name, input)], text=text, thinking=thinking, pace=pace)

    @classmethod
    def tool_uses(
        cls,
        calls: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        text: str | None = None,
        thinking: str | None = None,
        pace: float = 0.0,
    ) -> ScriptStep:
        """Several ``tool_use`` blocks in one assistant turn (parallel tool use)."""
        uses = tuple(ScriptedToolUse(name, dict(args)) for name, args in calls)
        if not uses:
            raise ValueError("a tool_use step needs at least one tool use")
        return cls(kind="tool_use", content=text, thinking=thinking, calls=uses, pace=pace)

    @classmethod
    def http_error(
        cls,
        status: int = 500,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        should_retry: bool | None = None,
    ) -> ScriptStep:
        """An Anthropic-shaped JSON error (``{"type": "error", "error": {type, message}}``).

        ``retry_after`` sets the ``retry-after`` header (429 defaults to 1 s); ``should_retry`` sets
        ``x-should-retry``, which Anthropic's clients obey over their own retry rules.
        """
        if retry_after is None and status == 429:
            retry_after = 1.0
        text = message or DEFAULT_ERROR_MESSAGES.get(status, f"The emulated model failed ({status})")
        return cls(
            kind="http_error", status=status, content=text, retry_after=retry_after, should_retry=should_retry
        )

    @classmethod
    def delay(cls, seconds: float) -> ScriptStep:
        """Sleep before answering the same request with the following step (before any byte is sent)."""
        return cls(kind="delay", seconds=seconds)

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.calls else "end_turn"

    @property
    def error_type(self) -> str:
        return error_type_for(self.status)


@dataclass(slots=True)
class Delivery:
    """How the answer to one request went; the server updates it while it answers."""

    status: int | None = None
    message_id: str | None = None
    tool_use_ids: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    """The SSE event names written so far, in order (streaming only)."""
    completed: bool = False
    """The whole answer was written."""
    disconnected: bool = False
    """The client went away before the answer was complete (an interrupt, a timeout)."""


@dataclass(frozen=True, slots=True)
class RecordedToolResult:
    """A ``tool_result`` block the client sent back: which tool use it answers and its text."""

    tool_use_id: str
    text: str
    is_error: bool


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as received. ``headers`` has lower-cased names; ``delivery`` tracks the answer."""

    index: int
    path: str
    query: Mapping[str, str]
    body: dict[str, Any]
    headers: Mapping[str, str]
    authorized: bool
    at: float
    delivery: Delivery = field(default_factory=Delivery)

    @property
    def api_key(self) -> str | None:
        """The credential sent, from ``x-api-key`` or ``Authorization: Bearer``."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream", False))

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages")
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    @property
    def roles(self) -> list[str]:
        return [str(m.get("role")) for m in self.messages]

    @property
    def system_prompt(self) -> str:
        """``system`` as one string (Anthropic accepts a string or a list of text blocks)."""
        return _text_of(self.body.get("system"))

    @property
    def tools(self) -> list[dict[str, Any]]:
        tools = self.body.get("tools")
        return [t for t in tools if isinstance(t, dict)] if isinstance(tools, list) else []

    @property
    def tool_names(self) -> list[str]:
        return [str(t.get("name")) for t in self.tools]

    @property
    def last_user_text(self) -> str:
        """What the human typed last: the last text block of the latest user message that has one.

        Claude Code's ``<system-reminder>`` blocks are skipped, and only the last block counts because
        the CLI merges consecutive prompts into one message (after an interrupt it sends the cut-off
        prompt, ``[Request interrupted by user]`` and the new prompt together).
        """
        for message in reversed(self.messages):
            if message.get("role") != "user":
                continue
            typed = [t for t in _text_blocks(message.get("content")) if not _is_reminder(t)]
            if typed:
                return typed[-1]
        return ""

    @property
    def tool_results(self) -> list[RecordedToolResult]:
        """The ``tool_result`` blocks of the last message, when it is a user message."""
        if not self.messages or self.messages[-1].get("role") != "user":
            return []
        content = self.messages[-1].get("content")
        blocks = content if isinstance(content, list) else []
        return [
            RecordedToolResult(
                tool_use_id=str(b.get("tool_use_id", "")),
                text=_text_of(b.get("content")),
                is_error=bool(b.get("is_error", False)),
            )
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "tool_result"
        ]

    @property
    def has_tool_result(self) -> bool:
        return bool(self.tool_results)

    def text(self) -> str:
        """All message text, tool inputs and tool results joined, for "did the model see X" checks."""
        parts: list[str] = [self.system_prompt]
        for message in self.messages:
            content = message.get("content")
            parts.append(_text_of(content))
            for block in content if isinstance(content, list) else ():
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_use":
                    parts.append(json.dumps(block.get("input", {})))
                elif block.get("type") == "tool_result":
                    parts.append(_text_of(block.get("content")))
        return "\n".join(p for p in parts if p)


def _text_blocks(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, list):
        return [
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and b.get("text")
        ]
    return []


def _is_reminder(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith("<system-reminder>") and stripped.endswith("</system-reminder>")


def _text_of(content: Any) -> str:
    """The text of a string or of the ``text`` blocks of a content list, joined."""
    return "".join(_text_blocks(content))


Responder = scripting.Responder[RecordedRequest, ScriptStep]
"""Picks the step for a request, or returns ``None`` to use the default script (see ``scripting``)."""


class RoutedScript(scripting.RoutedScript[RecordedRequest, ScriptStep]):
    """A responder with one ordered script per caller, routed by a predicate on the request.

    Routes are tried in the order they were added; the first whose predicate matches owns the request.
    A request that no route matches falls through to the emulator's default script. Put
    ``when_tool_result`` first when the same conversation later carries tool results.
    """

    __slots__ = ()

    def when_tool_result(self, steps: Sequence[ScriptStep], *, tool_use_id: str | None = None) -> Self:
        """Route requests whose last message carries a ``tool_result`` (for ``tool_use_id`` if given)."""
        if tool_use_id is None:
            return self.when("tool_result", lambda r: r.has_tool_result, steps)
        return self.when(
            f"tool_result:{tool_use_id}",
            lambda r: any(t.tool_use_id == tool_use_id for t in r.tool_results),
            steps,
        )

    def when_user_says(self, text: str, steps: Sequence[ScriptStep]) -> Self:
        """Route requests whose latest user text contains ``text`` and that carry no tool result."""
        return self.when(f"user:{text}", lambda r: not r.has_tool_result and text in r.last_user_text, steps)

    def when_tool_offered(self, tool_name: str, steps: Sequence[ScriptStep]) -> Self:
        """Route requests that offer ``tool_name`` (the CLI's main loop offers ``Bash``)."""
        return self.when(f"tool:{tool_name}", lambda r: tool_name in r.tool_names, steps)

    def when_system_contains(self, text: str, steps: Sequence[ScriptStep]) -> Self:
        """Route requests whose system prompt contains ``text``."""
        return self.when(f"system:{text}", lambda r: text in r.system_prompt, steps)
