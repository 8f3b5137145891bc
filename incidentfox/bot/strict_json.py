"""The one JSON parsing policy for request bodies (Slack events, Slack form payloads, the config API).

Python's ``json`` accepts documents that are not JSON or that break code further on: ``NaN`` and
``Infinity``, duplicate keys (the last one silently wins, so a signature-checked value can be
shadowed), lone UTF-16 surrogates (they fail later when the text is encoded for the database or a
response) and nesting deep enough to exhaust the interpreter's recursion limit. ``loads_strict``
refuses all of them with ``MalformedJson``, a 400 whose message says what to fix.
"""

from __future__ import annotations

import json
from typing import Any

from incidentfox.errors import BadRequest

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted; Slack payloads and config documents stay far below."""


class MalformedJson(BadRequest):
    code = "malformed_json"


def loads_strict(raw: bytes | str) -> Any:
    """Parse ``raw`` (UTF-8 bytes or text) as strict JSON, or raise ``MalformedJson``."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJson("request body is not UTF-8") from exc
    if not raw.strip():
        raise MalformedJson("request body is empty; send a JSON object")
    try:
        document = json.loads(raw, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except RecursionError as exc:
        raise MalformedJson(f"JSON is nested deeper than {MAX_DEPTH} levels") from exc
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except ValueError as exc:
        # Raised by the hooks below, and by ``int()`` for numbers over Python's digit limit.
        reason = "a number has too many digits" if "digits" in str(exc) else _first_line(exc)
        raise MalformedJson(f"malformed JSON: {reason}") from exc
    _check_depth_and_text(document)
    return document


def loads_strict_object(raw: bytes | str, *, what: str = "request body") -> dict[str, Any]:
    """``loads_strict`` for documents that must be a JSON object."""
    document = loads_strict(raw)
    if not isinstance(document, dict):
        raise MalformedJson(f"{what} must be a JSON object, not {_json_kind(document)}")
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {key[:40]!r}")
        document[key] = value
    return document


def _check_depth_and_text(document: Any) -> None:
    """Walk the parsed document without recursion: refuse deep nesting and unencodable strings."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _require_encodable(value)
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise MalformedJson(f"JSON is nested deeper than {MAX_DEPTH} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    _require_encodable(key)
                    pending.append((item, depth + 1))
            else:
                pending.extend((item, depth + 1) for item in value)


def _require_encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedJson("JSON text holds a lone UTF-16 surrogate escape (such as \\ud800)") from exc


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
