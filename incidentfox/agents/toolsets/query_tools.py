"""What the query toolsets (prometheus, loki) share in declaring their tools: strict parameter models,
the query text check, the time window fields and how they are read, and a typed ``Tool``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from incidentfox.agents.toolsets.base import Tool, ToolFunction, ToolResult
from incidentfox.agents.toolsets.prometheus_views import iso, parse_time

C = TypeVar("C")
P = TypeVar("P", bound=BaseModel)
DEFAULT_WINDOW = timedelta(hours=1)
QUERY_MAX = 4000
TIME_FORMATS = "RFC3339 (2026-01-31T14:05:00Z), unix seconds, `now` or relative like -30m"


def checked_query(text: str) -> str:
    """Lengths are checked here, not in the JSON schema: strict tool schemas reject length keywords."""
    text = text.strip()
    if not text:
        raise ValueError("the query is empty")
    if len(text) > QUERY_MAX:
        raise ValueError(f"keep it under {QUERY_MAX} characters")
    return text


def start_field() -> Any:
    return Field(default=None, description=f"Window start: {TIME_FORMATS}. Null for 1 hour before end.")


def end_field() -> Any:
    return Field(default=None, description=f"Window end: {TIME_FORMATS}. Null for now.")


class StrictParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def query_window(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The window from ``start`` and ``end`` as given (default the hour until now); ``ValueError``
    when it is unreadable or empty."""
    now = datetime.now(UTC).replace(microsecond=0)
    end_at = parse_time(end, now=now, default=now)
    start_at = parse_time(start, now=now, default=end_at - DEFAULT_WINDOW)
    if start_at >= end_at:
        raise ValueError(f"start ({iso(start_at)}) must be before end ({iso(end_at)})")
    return start_at, end_at


def invalid_params(exc: ValueError) -> ToolResult:
    text = str(exc)
    return ToolResult.failed(text[:1].upper() + text[1:] + ".")


def typed_tool(
    name: str, description: str, params: type[P], run: Callable[[C, P], Awaitable[ToolResult]]
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run))
