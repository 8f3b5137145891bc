"""The knowledge routes' part of the config API's OpenAPI document (``config/openapi.py`` merges it)."""

from __future__ import annotations

from typing import Any

from incidentfox.config.openapi_parts import NODE as _NODE
from incidentfox.config.openapi_parts import ORG as _ORG
from incidentfox.config.openapi_parts import op as _op

_BASE = "/api/v1/orgs/{org}/nodes/{node}/knowledge"
_AUTH = "org admin, or a team token for its own team"
_PATH = {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}
_SKIPPED = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "reason": {"type": "string"}},
    },
    "description": "documents that could not be read, each with the reason; they were not added",
}
_UPLOAD = {
    "type": "object",
    "properties": {
        "added": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "title": {"type": "string"},
                    "passages": {"type": "integer"},
                },
            },
        },
        "skipped": _SKIPPED,
    },
}
_NOT_READ = "When no document could be read the answer is 400 `unreadable_runbook` with `details.skipped`."

KNOWLEDGE_PATHS: dict[str, Any] = {
    _BASE: {
        "parameters": [_ORG, _NODE],
        "get": _op(
            "The team's runbooks and past incidents, and whether search uses embeddings",
            auth=_AUTH,
            notes="`search.mode` is `hybrid` (BM25 and embeddings) or `keyword` with the `reason` the "
            "embedding model could not load.",
        ),
    },
    _BASE + "/search": {
        "parameters": [_ORG, _NODE],
        "get": _op(
            "Search the team's runbooks and past incidents; each result cites its source",
            auth=_AUTH,
            params=[
                {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "kind", "in": "query", "schema": {"enum": ["runbook", "incident"]}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 20}},
            ],
        ),
    },
    _BASE + "/runbooks": {
        "parameters": [_ORG, _NODE],
        "post": _op(
            "Add or replace markdown runbooks",
            ok=201,
            auth=_AUTH,
            body={
                "type": "object",
                "required": ["documents"],
                "properties": {
                    "documents": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 50,
                        "items": {
                            "type": "object",
                            "required": ["path", "content"],
                            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                        },
                    }
                },
            },
            schema=_UPLOAD,
            notes="A document that cannot be read is skipped and listed in `skipped` with the reason. "
            + _NOT_READ,
        ),
    },
    _BASE + "/github": {
        "parameters": [_ORG, _NODE],
        "post": _op(
            "Import or refresh the markdown runbooks under a path of a repository the team claims",
            auth=_AUTH,
            body={
                "type": "object",
                "required": ["repo"],
                "properties": {
                    "repo": {"type": "string", "description": "owner/name, listed in routing.github_repos"},
                    "path": {"type": "string", "description": "the folder (or one file); empty for the root"},
                    "ref": {
                        "type": ["string", "null"],
                        "description": "branch, tag or sha; null for default",
                    },
                },
            },
            notes="Reads with the team's GitHub integration. Answers `added`, `skipped` (with reasons), "
            "`removed` (runbooks of that path whose file is gone) and `more` (over 200 files: the rest were "
            "not read). GitHub's refusal is 400 `github_import_failed` with its reason.",
        ),
    },
    _BASE + "/runbooks/{path}": {
        "parameters": [_ORG, _NODE, _PATH],
        "put": _op(
            "Add or replace one runbook sent as the raw markdown file",
            ok=201,
            auth=_AUTH,
            schema=_UPLOAD,
            notes="The body is the file itself (text/markdown, UTF-8). " + _NOT_READ,
        ),
        "delete": _op("Remove one runbook", ok=204, auth=_AUTH),
    },
}
