"""Reading JSON request bodies and writing JSON responses, with errors people can act on."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from incidentfox.errors import BadRequest, PayloadTooLarge


async def read_json(request: web.Request) -> Any:
    """The request body as JSON: 413 over the size limit, 400 for malformed JSON or a wrong media type."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge("request body is larger than 1 MiB") from exc
    if not raw:
        raise BadRequest("request body is empty; send a JSON object", code="malformed_json")
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise BadRequest("request body is not UTF-8", code="malformed_json") from exc
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", code="malformed_json"
        ) from exc


async def read_json_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", code="malformed_json")
    return body


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def _dumps(data: Any) -> str:
    """UTF-8 JSON as written (``••••last4`` stays readable in curl output)."""
    return json.dumps(data, ensure_ascii=False)
