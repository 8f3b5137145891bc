"""A scripted assistant turn rendered as Anthropic renders it: one JSON message, or the SSE events.

The streamed sequence is the one the Messages API sends::

    message_start
    content_block_start (index 0) · ping · content_block_delta … · content_block_stop
    content_block_start (index 1) · content_block_delta … · content_block_stop
    …
    message_delta (stop_reason, usage) · message_stop

Deltas are ``thinking_delta`` then ``signature_delta`` for a thinking block, ``text_delta`` for text
(one per word), and ``input_json_delta`` for a tool use (an empty first fragment, then 16-character
fragments of the input JSON, as the API does).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from incidentfox.emulators.anthropic_script import RecordedRequest, ScriptStep

DEFAULT_MODEL = "claude-emulator-1"


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One server-sent event; ``delta`` marks the events a paced stream waits before."""

    name: str
    data: dict[str, Any]
    delta: bool = False

    def encode(self) -> bytes:
        return f"event: {self.name}\ndata: {json.dumps(self.data)}\n\n".encode()


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """The assistant message answering one request, with the ids it was given."""

    id: str
    model: str
    blocks: tuple[dict[str, Any], ...]
    stop_reason: str
    input_tokens: int
    output_tokens: int

    @classmethod
    def from_step(
        cls, step: ScriptStep, request: RecordedRequest, message_id: str, tool_use_ids: list[str]
    ) -> RenderedMessage:
        blocks: list[dict[str, Any]] = []
        if step.thinking:
            blocks.append(
                {"type": "thinking", "thinking": step.thinking, "signature": _signature(step.thinking)}
            )
        if step.content:
            blocks.append({"type": "text", "text": step.content})
        for use, use_id in zip(step.calls, tool_use_ids, strict=True):
            blocks.append({"type": "tool_use", "id": use_id, "name": use.name, "input": dict(use.input)})
        produced = json.dumps(blocks)
        return cls(
            id=message_id,
            model=request.model or DEFAULT_MODEL,
            blocks=tuple(blocks),
            stop_reason=step.stop_reason,
            input_tokens=estimate_tokens(request.text()),
            output_tokens=estimate_tokens(produced),
        )

    def as_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": list(self.blocks),
            "stop_reason": self.stop_reason,
            "stop_sequence": None,
            "usage": self._usage(self.output_tokens),
        }

    def as_events(self) -> Iterator[SseEvent]:
        start = self.as_body() | {"content": [], "stop_reason": None, "usage": self._usage(1)}
        yield SseEvent("message_start", {"type": "message_start", "message": start})
        if not self.blocks:
            yield SseEvent("ping", {"type": "ping"})
        for index, block in enumerate(self.blocks):
            yield SseEvent(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": _empty(block)},
            )
            if index == 0:
                yield SseEvent("ping", {"type": "ping"})
            for delta in _deltas(block):
                yield SseEvent(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    delta=True,
                )
            yield SseEvent("content_block_stop", {"type": "content_block_stop", "index": index})
        yield SseEvent(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": self.output_tokens},
            },
        )
        yield SseEvent("message_stop", {"type": "message_stop"})

    def _usage(self, output_tokens: int) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        }


def _empty(block: dict[str, Any]) -> dict[str, Any]:
    """A block as ``content_block_start`` announces it, before its deltas fill it."""
    if block["type"] == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if block["type"] == "text":
        return {"type": "text", "text": ""}
    return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}


def _deltas(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if block["type"] == "thinking":
        for piece in _words(block["thinking"]):
            yield {"type": "thinking_delta", "thinking": piece}
        yield {"type": "signature_delta", "signature": block["signature"]}
    elif block["type"] == "text":
        for piece in _words(block["text"]):
            yield {"type": "text_delta", "text": piece}
    else:
        arguments = json.dumps(block["input"])
        yield {"type": "input_json_delta", "partial_json": ""}
        for i in range(0, len(arguments), 16):
            yield {"type": "input_json_delta", "partial_json": arguments[i : i + 16]}


def _words(text: str) -> list[str]:
    """Split ``text`` into stream fragments: words with their trailing space."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + ([words[-1]] if words[-1] else [])


def _signature(thinking: str) -> str:
    """A stable opaque signature, as the API attaches to thinking blocks."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    """Anthropic's error envelope."""
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
