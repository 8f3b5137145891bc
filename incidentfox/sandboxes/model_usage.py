"""The token usage of one Anthropic Messages API answer, read as the model proxy relays it.

The proxy is the one door every SRE-agent model call passes (ADR-038), so it is where those calls
are timed and their tokens counted (ADR-043); the SDK's ``ResultMessage`` totals the same tokens per
turn and is deliberately not counted as well. A streamed answer reports usage in ``message_start``
(input, and cached input) and ``message_delta`` (output so far; newer APIs repeat input there), a
plain one in its JSON body's ``usage``. Only the lines that mention ``"usage"`` are parsed; the
rest of the stream passes by untouched.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE_BYTES = 1024 * 1024
"""A partial SSE line longer than this is a content delta, never usage: it is dropped, not kept."""
MAX_BODY_BYTES = 8 * 1024 * 1024
_USAGE = b'"usage"'
INPUT_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class MessagesUsage:
    """Feed it the answer's bytes in order, then ask ``tokens()`` for ``(input, output)``.

    Input counts cached prompt tokens too (read and written), as OpenAI's ``prompt_tokens`` does, so
    the two providers' ``input`` mean the same thing."""

    def __init__(self, *, streamed: bool) -> None:
        self.streamed = streamed
        self._partial_line = b""
        self._body = bytearray()
        self._usage: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> None:
        if not self.streamed:
            if len(self._body) + len(chunk) <= MAX_BODY_BYTES:
                self._body += chunk
            return
        data = self._partial_line + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial_line = data if len(data) <= MAX_LINE_BYTES else b""
            return
        complete, self._partial_line = data[:cut], data[cut + 1 :]
        if _USAGE in complete:
            for line in complete.split(b"\n"):
                if line.startswith(b"data:") and _USAGE in line:
                    self._read_event(line[5:])

    def tokens(self) -> tuple[int, int]:
        """``(input, output)`` tokens of the answer fed so far (0 where it reported none)."""
        if not self.streamed:
            document = _loads(bytes(self._body))
            self._merge(document.get("usage") if document is not None else None)
        usage = self._usage
        return sum(_count(usage.get(name)) for name in INPUT_FIELDS), _count(usage.get("output_tokens"))

    def _read_event(self, payload: bytes) -> None:
        event = _loads(payload)
        if event is None:
            return
        if event.get("type") == "message_start":
            message = event.get("message")
            self._merge(message.get("usage") if isinstance(message, dict) else None)
        else:
            self._merge(event.get("usage"))

    def _merge(self, usage: object) -> None:
        """Later counts replace earlier ones: ``message_delta`` carries the running totals."""
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})


def _loads(raw: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
