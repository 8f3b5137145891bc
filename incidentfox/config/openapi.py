"""The OpenAPI 3.1 document of the config API, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _op(summary: str, *, body: dict[str, Any] | None = None, ok: int = 200, auth: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": auth,
        "responses": {
            str(ok): {
                "description": "success",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "400": {"description": "bad input", "content": {"application/json": {"schema": _ERROR}}},
            "401": {
                "description": "missing, invalid, revoked or expired token",
                "content": {"application/json": {"schema": _ERROR}},
            },
            "403": {
                "description": "the token does not allow this",
                "content": {"application/json": {"schema": _ERROR}},
            },
            "404": {
                "description": "no such org, node or token",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        op["responses"]["413"] = {
            "description": "body over 1 MiB",
            "content": {"application/json": {"schema": _ERROR}},
        }
    return op


_ID = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}
_ORG = {"name": "org", "in": "path", "required": True, "schema": _ID}
_NODE = {"name": "node", "in": "path", "required": True, "schema": _ID}
_CONFIG_BODY = {"type": "object", "description": "a config document; null deletes an inherited key (PUT)"}

OPENAPI_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "IncidentFox config API", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/auth/whoami": {"get": _op("Who the token belongs to")},
        "/api/v1/orgs": {
            "post": _op(
                "Create an org and its first org admin token",
                ok=201,
                auth="admin",
                body={
                    "type": "object",
                    "required": ["org_id"],
                    "properties": {"org_id": _ID, "name": {"type": "string"}},
                },
            )
        },
        "/api/v1/routing/lookup": {
            "get": {
                **_op(
                    "Which team owns an identifier (PD service, then Slack channel, then GitHub repo)",
                    auth="admin",
                ),
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": "string"}}
                    for n in ("pagerduty_service_id", "slack_channel_id", "github_repo")
                ],
            }
        },
        "/api/v1/orgs/{org}/nodes": {
            "parameters": [_ORG],
            "get": _op("List the org's tree", auth="org admin"),
            "post": _op(
                "Create a unit or team",
                ok=201,
                auth="org admin",
                body={
                    "type": "object",
                    "required": ["node_id", "kind"],
                    "properties": {
                        "node_id": _ID,
                        "parent_id": _ID,
                        "name": {"type": "string"},
                        "kind": {"enum": ["unit", "team"]},
                    },
                },
            ),
        },
        "/api/v1/orgs/{org}/nodes/{node}": {
            "parameters": [_ORG, _NODE],
            "get": _op("Read a node"),
            "patch": _op(
                "Rename a node or move it under another parent",
                auth="org admin",
                body={"type": "object", "properties": {"parent_id": _ID, "name": {"type": "string"}}},
            ),
        },
        "/api/v1/orgs/{org}/nodes/{node}/config": {
            "parameters": [_ORG, _NODE],
            "get": _op("The node's own config, secrets redacted"),
            "put": _op(
                "Replace the node's own config (stored as given, nulls included)",
                auth="org admin",
                body=_CONFIG_BODY,
            ),
            "patch": _op(
                "RFC 7396 merge-patch the node's own config",
                body=_CONFIG_BODY,
                auth="org admin, or the team's token where the org allows",
            ),
        },
        "/api/v1/orgs/{org}/nodes/{node}/config/history": {
            "parameters": [_ORG, _NODE],
            "get": _op("Versions of the node's config with who and what changed"),
        },
        "/api/v1/orgs/{org}/nodes/{node}/effective-config": {
            "parameters": [_ORG, _NODE],
            "get": _op("The merged config, root first, secrets redacted"),
        },
        "/api/v1/orgs/{org}/nodes/{node}/tokens": {
            "parameters": [_ORG, _NODE],
            "post": _op(
                "Issue a team token (shown once)",
                ok=201,
                auth="org admin",
                body={
                    "type": "object",
                    "properties": {"label": {"type": "string"}, "expires_in_seconds": {"type": "integer"}},
                },
            ),
        },
        "/api/v1/orgs/{org}/nodes/{node}/tokens/{token_id}": {
            "parameters": [
                _ORG,
                _NODE,
                {"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "delete": _op("Revoke a team token", auth="org admin"),
        },
        "/api/v1/orgs/{org}/tokens": {
            "parameters": [_ORG],
            "get": _op("List the org's tokens (metadata only)", auth="org admin"),
            "post": _op("Issue another org admin token (shown once)", ok=201, auth="org admin"),
        },
        "/api/v1/orgs/{org}/tokens/{token_id}": {
            "parameters": [
                _ORG,
                {"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "delete": _op("Revoke a token", auth="org admin"),
        },
        "/api/v1/orgs/{org}/audit": {
            "parameters": [_ORG],
            "get": _op("Config writes, token events and auth failures", auth="org admin"),
        },
        "/api/v1/audit": {
            "get": _op(
                "Installation events that belong to no org (webhooks for unclaimed services or repos)",
                auth="admin",
            ),
        },
    },
}
