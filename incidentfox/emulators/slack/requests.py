"""Reading a Web API request as Slack does: the bearer token, and the arguments merged from the query
string and a JSON or form body (JSON-string fields such as ``blocks`` decoded)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aiohttp import web

from incidentfox.emulators.slack.validation import decode_json_field

_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


async def parse_args(request: web.Request) -> dict[str, Any]:
    """Merge query string and body (JSON or form); decode JSON-string fields. ``ValueError`` on bad JSON."""
    args: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = json.loads(await request.text() or "{}")
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            args.update(body)
        else:
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key in _JSON_FIELDS:
        if key in args:
            # An undecodable string stays as is; validation then answers invalid_blocks / invalid_arguments.
            with contextlib.suppress(ValueError):
                args[key] = decode_json_field(args[key])
    return args
