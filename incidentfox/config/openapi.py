"""The OpenAPI 3.1 document of the config API, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from incidentfox.config.openapi_parts import ID as _ID
from incidentfox.config.openapi_parts import NODE as _NODE
from incidentfox.config.openapi_parts import ORG as _ORG
from incidentfox.config.openapi_parts import op as _op
from incidentfox.knowledge.openapi import KNOWLEDGE_PATHS

_CONFIG_BODY = {"type": "object", "description": "a config document; null deletes an inherited key (PUT)"}
_TEXT = {"type": "string"}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_RUN_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "required": list(properties), "properties": properties}
    if description:
        schema["description"] = description
    return schema


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_AUDIT_PARAMS = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many events (100)"),
    _query("before_id", {"type": "integer", "minimum": 0}, "only events with a smaller id (the next page)"),
    _query("action", {"type": "string", "maxLength": 64}, "exact action, e.g. config.write"),
    _query("actor", {"type": "string", "maxLength": 200}, "exact actor, e.g. org_admin:tok_… or admin"),
    _query(
        "target",
        {"type": "string", "maxLength": 255},
        "prefix of the target: the node id for node.create, node.update and config.write (a prefix, "
        "so `payments` also matches `payments-eu`; add action=config.write to narrow), the org id for "
        "org.create, the token id (tok_…) for token.issue, token.revoke and auth.failure, `METHOD /path` "
        "for auth.forbidden, the approval id for approval.*",
    ),
]
_RUN_PROPERTIES: dict[str, Any] = {
    "run_id": _TEXT,
    "org_id": _TEXT,
    "team_node_id": _TEXT,
    "status": {"enum": ["queued", "running", "succeeded", "failed", "interrupted"]},
    "source": {"type": "string", "description": "slack, pagerduty, github, incidentio, …"},
    "kind": {"type": "string", "description": "mention, dm, incident, ci_failure, resume, …"},
    "text": {"type": "string", "maxLength": 300, "description": "the question, cut to 300 characters"},
    "origin": {
        "type": ["object", "null"],
        "description": "where a webhook-triggered run came from (incident key, PR, CI run); null from Slack",
    },
    "channel_id": _NULLABLE_TEXT,
    "thread_ts": _NULLABLE_TEXT,
    "created_at": _TIME,
    "started_at": _NULLABLE_TIME,
    "finished_at": _NULLABLE_TIME,
    "duration_s": {"type": ["number", "null"], "description": "from start to finish; null until both"},
}
_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    },
    "Org": _object({"org_id": _ID, "name": _TEXT, "created_at": _TIME}),
    "EffectiveConfig": _object(
        {
            "org_id": _ID,
            "node_id": _ID,
            "chain": {"type": "array", "items": _ID, "description": "root first, the node itself last"},
            "config": {"type": "object", "description": "the merged config, secrets redacted"},
            "sources": {
                "type": "object",
                "additionalProperties": _ID,
                "description": "for each leaf of config (keys joined with '.', e.g. `model.name`; a key "
                "containing '.' makes its path ambiguous), the node that set it. A leaf is any non-object "
                "value (lists included) or an empty object; a key deleted by a null has no entry",
            },
        }
    ),
    "AuditEvent": _object(
        {
            "id": {"type": "integer"},
            "at": _TIME,
            "actor": _TEXT,
            "action": _TEXT,
            "target": _TEXT,
            "detail": {"type": "object"},
        }
    ),
    "Run": _object(_RUN_PROPERTIES),
    "RunDetail": _object(
        {
            **_RUN_PROPERTIES,
            "summary": {**_NULLABLE_TEXT, "description": "the RCA summary; null without an RCA"},
            "error": {**_NULLABLE_TEXT, "description": "why the run failed or stopped, if it did"},
            "feedback": _object(
                {
                    "up": {"type": "integer"},
                    "down": {"type": "integer"},
                    "votes": {
                        "type": "array",
                        "items": _object({"user_id": _TEXT, "vote": {"enum": ["up", "down"]}, "at": _TIME}),
                    },
                }
            ),
        }
    ),
    "TimelineEntry": _object(
        {
            "at": _TIME,
            "kind": {
                "enum": [
                    "started",
                    "thought",
                    "tool_start",
                    "tool_end",
                    "subagent_start",
                    "subagent_end",
                    "first_finding",
                    "similar_incidents",
                    "question",
                    "approval_request",
                    "approval_decided",
                    "interrupted",
                    "resumed",
                    "result",
                    "answer",
                    "error",
                ]
            },
            "text": {"type": "string", "maxLength": 500, "description": "plain text, not mrkdwn"},
        },
        "one persisted progress event",
    ),
}
_AUDIT_PAGE = _object({"events": {"type": "array", "items": _ref("AuditEvent")}})

OPENAPI_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "IncidentFox config API", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": _SCHEMAS,
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/auth/whoami": {"get": _op("Who the token belongs to")},
        "/api/v1/orgs": {
            "get": _op(
                "The orgs this token can see, sorted by org_id",
                auth="any token",
                notes="The admin sees every org; an org admin or a team token only its own.",
                schema=_object({"orgs": {"type": "array", "items": _ref("Org")}}),
            ),
            "post": _op(
                "Create an org and its first org admin token",
                ok=201,
                auth="admin",
                body={
                    "type": "object",
                    "required": ["org_id"],
                    "properties": {"org_id": _ID, "name": {"type": "string"}},
                },
            ),
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
            "get": _op(
                "The merged config, root first, secrets redacted, with the node that set each leaf",
                schema=_ref("EffectiveConfig"),
            ),
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
            "get": _op(
                "Config writes, token events and auth failures, newest first",
                auth="org admin",
                schema=_AUDIT_PAGE,
                params=_AUDIT_PARAMS,
            ),
        },
        "/api/v1/audit": {
            "get": _op(
                "Installation events that belong to no org (webhooks for unclaimed services or repos)",
                auth="admin",
                schema=_AUDIT_PAGE,
                params=_AUDIT_PARAMS,
            ),
        },
        "/api/v1/orgs/{org}/runs": {
            "parameters": [_ORG],
            "get": _op(
                "Runs, newest first, a page at a time",
                auth="org admin, or a team token for its own team",
                notes="A team token lists its own team's runs whether or not it gives `team`; another "
                "team is 403. Pass `next_before` back as `before` for the next page (null: no more).",
                params=[
                    _query("team", _ID, "only this team's runs"),
                    _query("status", _RUN_PROPERTIES["status"], "only runs in this state"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (50)"),
                    _query("before", _RUN_ID, "the next_before of the previous page"),
                ],
                schema=_object(
                    {
                        "runs": {"type": "array", "items": _ref("Run")},
                        "next_before": {**_NULLABLE_TEXT, "description": "the `before` of the next page"},
                    }
                ),
            ),
        },
        "/api/v1/orgs/{org}/runs/{run_id}": {
            "parameters": [_ORG, {"name": "run_id", "in": "path", "required": True, "schema": _RUN_ID}],
            "get": _op(
                "One run with its RCA summary, feedback and timeline",
                auth="org admin, or a team token for its own team's runs",
                schema=_object(
                    {"run": _ref("RunDetail"), "timeline": {"type": "array", "items": _ref("TimelineEntry")}}
                ),
            ),
        },
        **KNOWLEDGE_PATHS,
    },
}
