"""The HTTP conventions of PagerDuty's REST API v2, for the emulator: the error envelope
``{"error": {"message", "code", "errors"}}`` with PagerDuty's codes, ``[]`` filters, timestamps,
``sort_by``, and classic pagination (``limit`` default 25 and at most 100, ``offset``, ``more``,
``total`` only when ``total=true``, ``offset + limit`` at most 10 000)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from incidentfox.emulators.pagerduty_world import Obj, parse_time

MAX_LIMIT, DEFAULT_LIMIT, MAX_POSITION = 100, 25, 10_000
ERRORS = {
    400: ("Invalid Input Provided", 2001),
    401: ("Authentication failed", 2006),
    403: ("Access Denied", 2010),
    404: ("Not Found", 2100),
    429: ("Rate Limit Exceeded", 2020),
}
INTERNAL_ERROR = ("An internal error has occurred. PagerDuty team has been notified.", 2000)
_SORTABLE = {"incident_number", "created_at", "resolved_at", "urgency"}


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One request as received: ``query`` keeps repeated keys (``statuses[]``); ``status`` is what
    the emulator answered (0 when it dropped the connection)."""

    method: str
    path: str
    route: str
    query: dict[str, list[str]]
    json: Any
    headers: dict[str, str]
    status: int
    at: float

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


def error_response(
    status: int, message: str | None = None, errors: Sequence[str] = (), *, code: int | None = None
) -> web.Response:
    """PagerDuty's error envelope for ``status``."""
    default_message, default_code = ERRORS.get(status, INTERNAL_ERROR)
    error: Obj = {"message": message or default_message, "code": code or default_code}
    if errors:
        error["errors"] = list(errors)
    return web.json_response({"error": error}, status=status)


class BadInput(Exception):
    """A query the API would reject with 400; the message goes into ``errors``."""


def list_param(request: web.Request, name: str) -> list[str]:
    """Values of a ``[]`` filter; the API also takes the bare name."""
    return [*request.query.getall(f"{name}[]", []), *request.query.getall(name, [])]


def flag_param(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").lower() == "true"


def time_param(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise BadInput(f"Invalid time value for '{name}': {raw}") from exc


def int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise BadInput(f"'{name}' must be an integer") from exc


def paginate(request: web.Request, key: str, items: list[Obj]) -> web.Response:
    """Classic pagination over ``items`` (already filtered, sorted and rendered)."""
    limit = int_param(request, "limit", DEFAULT_LIMIT)
    offset = int_param(request, "offset", 0)
    if limit < 1 or offset < 0:
        raise BadInput("'limit' must be positive and 'offset' must not be negative")
    limit = min(limit, MAX_LIMIT)
    if offset + limit > MAX_POSITION:
        raise BadInput(f"Offset plus limit must not exceed {MAX_POSITION}")
    page = items[offset : offset + limit]
    return web.json_response(
        {
            key: page,
            "limit": limit,
            "offset": offset,
            "more": offset + len(page) < len(items),
            "total": len(items) if flag_param(request, "total") else None,
        }
    )


def sort_incidents(incidents: list[Obj], sort_by: str | None) -> list[Obj]:
    fields = [part.strip() for part in (sort_by or "incident_number:asc").split(",") if part.strip()]
    if len(fields) > 2:
        raise BadInput("sort_by takes at most two fields")
    ordered = list(incidents)
    for spec in reversed(fields):
        name, _, direction = spec.partition(":")
        if name not in _SORTABLE or direction not in ("", "asc", "desc"):
            raise BadInput(f"Invalid sort_by value: {spec}")
        ordered.sort(key=_sort_key(name), reverse=direction == "desc")
    return ordered


def _sort_key(name: str) -> Callable[[Obj], tuple[bool, Any]]:
    """Missing values last (first when descending), as a nullable column sorts."""

    def key(incident: Obj) -> tuple[bool, Any]:
        value = incident.get(name)
        return value is None, value if value is not None else ""

    return key
