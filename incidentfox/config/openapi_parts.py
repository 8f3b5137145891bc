"""The pieces every part of the config API's OpenAPI document is built from (operations, the org and
node path parameters, the error schema), shared by ``config/openapi.py`` and the parts it merges in."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}


def op(
    summary: str,
    *,
    body: dict[str, Any] | None = None,
    ok: int = 200,
    auth: str = "",
    schema: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    notes: str = "",
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "description": f"{auth}. {notes}" if auth and notes else auth or notes,
        "responses": {
            str(ok): {
                "description": "success",
                "content": {"application/json": {"schema": schema or {"type": "object"}}},
            },
            "400": {"description": "bad input", "content": {"application/json": {"schema": ERROR}}},
            "401": {
                "description": "missing, invalid, revoked or expired token",
                "content": {"application/json": {"schema": ERROR}},
            },
            "403": {
                "description": "the token does not allow this",
                "content": {"application/json": {"schema": ERROR}},
            },
            "404": {
                "description": "no such org, node or token",
                "content": {"application/json": {"schema": ERROR}},
            },
        },
    }
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        operation["responses"]["413"] = {
            "description": "body over 1 MiB",
            "content": {"application/json": {"schema": ERROR}},
        }
    return operation


ID = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}
ORG = {"name": "org", "in": "path", "required": True, "schema": ID}
NODE = {"name": "node", "in": "path", "required": True, "schema": ID}
