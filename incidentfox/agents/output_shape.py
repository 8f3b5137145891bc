"""An over-budget output as lines the model can search and page through, and its shape in a few words.

``result_lines`` renders a result one line per unit a model would grep for:

* text: its own lines;
* an array: one compact JSON item per line (a string item as itself);
* an object: ``key: value`` for each small field and, for a long text or an array inside it, a
  ``--- path (N lines) ---`` header followed by its lines (nested objects give dotted paths,
  ``data.result``).

Lines longer than ``MAX_LINE_CHARS`` are wrapped onto continuation lines that start with ``↪ ``, so
any stored line can be shown whole. The other functions describe the output for its summary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from incidentfox.agents.toolsets.base import ToolResult

MAX_LINE_CHARS = 2_000
CONTINUED = "↪ "
_INLINE_CHARS = 200
_SHOWN_KEYS = 12
_NEEDLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("error", ("error",)),
    ("exception", ("exception", "traceback")),
    ("fatal", ("fatal", "panic")),
    ("warn", ("warn",)),
    ("timeout", ("timeout", "timed out", "deadline exceeded")),
    ("oom", ("oomkilled", "out of memory")),
)


def clip(text: str, width: int) -> str:
    """``text`` if it fits in ``width`` characters, else its start and how much was left out."""
    if len(text) <= width:
        return text
    return f"{text[:width]}…[+{len(text) - width:,} chars]"


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def result_lines(result: ToolResult) -> list[str]:
    """The result's error (if any) and data, rendered as lines (see the module docstring)."""
    lines: list[str] = []
    if result.error:
        _render(lines, "error", result.error)
    if result.data is not None:
        _render(lines, "", result.data)
    return _wrapped(lines)


def _is_small(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= _INLINE_CHARS and "\n" not in value
    if isinstance(value, Mapping | list | tuple):
        return len(value) <= 10 and len(compact(value)) <= _INLINE_CHARS
    return True


def _render(out: list[str], path: str, value: Any) -> None:
    if isinstance(value, str):
        if not path:
            out.extend(value.splitlines())
        elif _is_small(value):
            out.append(f"{path}: {compact(value)}")
        else:
            text_lines = value.splitlines()
            out.append(f"--- {path} ({len(text_lines):,} lines) ---")
            out.extend(text_lines)
    elif isinstance(value, Mapping):
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else str(key)
            if _is_small(child):
                out.append(f"{child_path}: {compact(child)}")
            else:
                _render(out, child_path, child)
    elif isinstance(value, list | tuple):
        if path:
            out.append(f"--- {path} ({len(value):,} items) ---")
        out.extend(item if isinstance(item, str) and "\n" not in item else compact(item) for item in value)
    else:
        out.append(f"{path}: {compact(value)}" if path else compact(value))


def _wrapped(lines: list[str]) -> list[str]:
    if all(len(line) <= MAX_LINE_CHARS for line in lines):
        return lines
    wrapped: list[str] = []
    room = MAX_LINE_CHARS - len(CONTINUED)
    for line in lines:
        if len(line) <= MAX_LINE_CHARS:
            wrapped.append(line)
            continue
        wrapped.append(line[:MAX_LINE_CHARS])
        wrapped.extend(CONTINUED + line[i : i + room] for i in range(MAX_LINE_CHARS, len(line), room))
    return wrapped


def size_in_bytes(lines: list[str]) -> int:
    """The UTF-8 size of the lines joined with newlines."""
    return sum(len(line.encode("utf-8")) for line in lines) + max(len(lines) - 1, 0)


def mentions(lines: list[str]) -> dict[str, int]:
    """How many lines mention an error, an exception, a fatal error, a warning, a timeout or an OOM
    (case-insensitive); only the non-zero counts."""
    counts = dict.fromkeys((name for name, _ in _NEEDLES), 0)
    for line in lines:
        low = line.lower()
        for name, needles in _NEEDLES:
            for needle in needles:
                if needle in low:
                    counts[name] += 1
                    break
    return {name: count for name, count in counts.items() if count}


def largest_array(
    data: Any, path: str = "", depth: int = 0
) -> tuple[str, list[Any] | tuple[Any, ...]] | None:
    """The longest array in ``data`` (itself, or inside its objects, four levels deep) and its path."""
    if isinstance(data, list | tuple):
        return path, data
    if not isinstance(data, Mapping) or depth >= 4:
        return None
    best: tuple[str, list[Any] | tuple[Any, ...]] | None = None
    for key, child in data.items():
        found = largest_array(child, f"{path}.{key}" if path else str(key), depth + 1)
        if found is not None and (best is None or len(found[1]) > len(best[1])):
            best = found
    return best


def _kind(value: Any) -> str:
    if isinstance(value, str):
        count = value.count("\n") + 1
        return f"text, {count:,} lines" if count > 1 else "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return f"object, {len(value):,} keys"
    if isinstance(value, list | tuple):
        return f"array, {len(value):,} items"
    return type(value).__name__


def describe(data: Any, *, sample_chars: int) -> dict[str, Any]:
    """The shape of a result's data: text and its line count, an array's length and a sample item, or
    an object's keys with their kinds and its largest array with a sample item."""
    if isinstance(data, str):
        return {"type": "text", "lines": data.count("\n") + 1}
    if isinstance(data, list | tuple):
        return {"type": "array", "items": len(data), **_sample(data, sample_chars)}
    if not isinstance(data, Mapping):
        return {"type": _kind(data)}
    keys = list(data)
    shape: dict[str, Any] = {"type": "object", "keys": {str(k): _kind(data[k]) for k in keys[:_SHOWN_KEYS]}}
    if len(keys) > _SHOWN_KEYS:
        shape["more_keys"] = len(keys) - _SHOWN_KEYS
    found = largest_array(data)
    if found is not None and len(found[1]) > 1:
        path, items = found
        shape["largest_array"] = {"path": path, "items": len(items), **_sample(items, sample_chars)}
    return shape


def _sample(items: list[Any] | tuple[Any, ...], sample_chars: int) -> dict[str, str]:
    return {"sample_item": clip(compact(items[0]), sample_chars)} if items and sample_chars else {}
