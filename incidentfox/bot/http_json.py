"""Reading JSON request bodies and writing JSON responses, with errors people can act on."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from incidentfox.bot.strict_json import MalformedJson, loads_strict, loads_strict_object
from incidentfox.errors import PayloadTooLarge

_JSON_MEDIA_TYPES = frozenset({"application/json", "application/x-www-form-urlencoded"})
"""What a JSON body may be labelled: JSON itself, or curl's default for ``-d`` (the README's walkthrough)."""


async def read_json(request: web.Request) -> Any:
    """The body as strict JSON: 413 over the size limit, 400 for malformed JSON or a wrong media type."""
    raw = await _read_body(request)
    return loads_strict(raw)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    raw = await _read_body(request)
    return loads_strict_object(raw)


async def _read_body(request: web.Request) -> bytes:
    media_type = request.content_type if "Content-Type" in request.headers else ""
    if media_type and media_type not in _JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        raise MalformedJson(f"send the body as Content-Type: application/json, not {media_type[:60]}")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge("request body is larger than 1 MiB") from exc


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def _dumps(data: Any) -> str:
    """UTF-8 JSON as written (``••••last4`` stays readable in curl output)."""
    return json.dumps(data, ensure_ascii=False)
