"""The config service REST API (design §6), mounted under ``/api/v1``."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from incidentfox.bot.http_json import json_response, read_json, read_json_object
from incidentfox.config import audit
from incidentfox.config.audit import INSTALLATION_AUDIT_ORG
from incidentfox.config.openapi import OPENAPI_DOCUMENT
from incidentfox.config.permissions import Principal, require_admin, require_org_admin
from incidentfox.config.service import ConfigService, WriteOperation
from incidentfox.config.token_service import TokenService
from incidentfox.errors import BadRequest, Forbidden, NotFound

CONFIG_SERVICE = web.AppKey("config_service", ConfigService)
TOKEN_SERVICE = web.AppKey("token_service", TokenService)
_DECIMAL = re.compile(r"[0-9]{1,18}")
Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]


def authenticated(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Resolve the bearer token once; audit a forbidden attempt against the org in the path."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        tokens = request.app[TOKEN_SERVICE]
        principal = await tokens.authenticate(request.headers.get("Authorization"))
        try:
            return await handler(request, principal)
        except Forbidden:
            org_id = request.match_info.get("org")
            if org_id:
                await tokens.record_forbidden(principal, org_id, f"{request.method} {request.path}")
            raise

    return wrapper


@authenticated
async def whoami(request: web.Request, principal: Principal) -> web.StreamResponse:
    return json_response(principal.whoami())


@authenticated
async def create_org(request: web.Request, principal: Principal) -> web.StreamResponse:
    require_admin(principal)
    body = await read_json_object(request)
    config, tokens = request.app[CONFIG_SERVICE], request.app[TOKEN_SERVICE]
    async with config.sessions.begin() as session:
        node = await config.create_org(
            session, org_id=body.get("org_id"), name=body.get("name"), actor=principal.actor
        )
        token, row = tokens.issue(
            session,
            org_id=node.org_id,
            team_node_id=None,
            actor=principal.actor,
            label="created with the org",
        )
    return json_response(
        {"org_id": node.org_id, "name": node.name, "admin_token": token, "admin_token_id": row.token_id},
        status=201,
    )


@authenticated
async def list_orgs(request: web.Request, principal: Principal) -> web.StreamResponse:
    return json_response({"orgs": await request.app[CONFIG_SERVICE].list_orgs(principal)})


@authenticated
async def list_nodes(request: web.Request, principal: Principal) -> web.StreamResponse:
    return json_response(
        {"nodes": await request.app[CONFIG_SERVICE].list_nodes(principal, request.match_info["org"])}
    )


@authenticated
async def create_node(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = await read_json_object(request)
    node = await request.app[CONFIG_SERVICE].create_node(principal, request.match_info["org"], body)
    return json_response(node, status=201)


@authenticated
async def get_node(request: web.Request, principal: Principal) -> web.StreamResponse:
    org, node = request.match_info["org"], request.match_info["node"]
    return json_response(await request.app[CONFIG_SERVICE].get_node(principal, org, node))


@authenticated
async def update_node(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = await read_json_object(request)
    org, node = request.match_info["org"], request.match_info["node"]
    return json_response(await request.app[CONFIG_SERVICE].move_node(principal, org, node, body))


@authenticated
async def get_config(request: web.Request, principal: Principal) -> web.StreamResponse:
    org, node = request.match_info["org"], request.match_info["node"]
    result = await request.app[CONFIG_SERVICE].get_config(principal, org, node)
    return json_response(result, headers={"ETag": f'"{result["version"]}"'})


@authenticated
async def write_config(request: web.Request, principal: Principal) -> web.StreamResponse:
    org, node = request.match_info["org"], request.match_info["node"]
    body = await read_json(request)
    operation: WriteOperation = "patch" if request.method == "PATCH" else "put"
    result = await request.app[CONFIG_SERVICE].write_config(
        principal, org, node, body, operation=operation, if_match=_if_match(request)
    )
    return json_response(result, headers={"ETag": f'"{result["version"]}"'})


@authenticated
async def config_history(request: web.Request, principal: Principal) -> web.StreamResponse:
    org, node = request.match_info["org"], request.match_info["node"]
    limit = int_query(request, "limit", 50, maximum=500)
    return json_response(
        {"history": await request.app[CONFIG_SERVICE].history(principal, org, node, limit=limit)}
    )


@authenticated
async def effective(request: web.Request, principal: Principal) -> web.StreamResponse:
    org, node = request.match_info["org"], request.match_info["node"]
    return json_response(await request.app[CONFIG_SERVICE].effective_config_view(principal, org, node))


@authenticated
async def issue_team_token(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = await _optional_object(request)
    org, node = request.match_info["org"], request.match_info["node"]
    return json_response(await request.app[TOKEN_SERVICE].issue_for(principal, org, node, body), status=201)


@authenticated
async def issue_org_token(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = await _optional_object(request)
    return json_response(
        await request.app[TOKEN_SERVICE].issue_for(principal, request.match_info["org"], None, body),
        status=201,
    )


@authenticated
async def revoke_token(request: web.Request, principal: Principal) -> web.StreamResponse:
    org, node = request.match_info["org"], request.match_info.get("node")
    result = await request.app[TOKEN_SERVICE].revoke(principal, org, node, request.match_info["token_id"])
    return json_response(result)


@authenticated
async def list_tokens(request: web.Request, principal: Principal) -> web.StreamResponse:
    return json_response(
        {"tokens": await request.app[TOKEN_SERVICE].list_tokens(principal, request.match_info["org"])}
    )


@authenticated
async def routing_lookup(request: web.Request, principal: Principal) -> web.StreamResponse:
    require_admin(principal)
    keys = ("pagerduty_service_id", "slack_channel_id", "github_repo")
    given = {key: request.query.get(key) for key in keys}
    if not any(given.values()):
        raise BadRequest("give one of slack_channel_id, github_repo or pagerduty_service_id")
    target = await request.app[CONFIG_SERVICE].routing.lookup(**given)
    if target is None:
        raise NotFound("no team claims this identifier", code="not_routed")
    return json_response({"org_id": target.org_id, "team_node_id": target.team_node_id})


@authenticated
async def audit_log(request: web.Request, principal: Principal) -> web.StreamResponse:
    org = request.match_info["org"]
    require_org_admin(principal, org)
    return await _audit_events(request, org)


@authenticated
async def installation_audit_log(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Events that belong to no org, such as webhook deliveries for a service or repo nobody claims."""
    require_admin(principal)
    return await _audit_events(request, INSTALLATION_AUDIT_ORG)


async def _audit_events(request: web.Request, org: str) -> web.StreamResponse:
    limit = int_query(request, "limit", 100, maximum=1000)
    before = int_query(request, "before_id", None, maximum=None)
    filters = audit.AuditFilter.from_query(request.query)
    async with request.app[CONFIG_SERVICE].sessions() as session:
        events = await audit.list_events(session, org, limit=limit, before_id=before, filters=filters)
    return json_response({"events": events})


async def openapi(_request: web.Request) -> web.StreamResponse:
    return json_response(OPENAPI_DOCUMENT)


def add_routes(app: web.Application) -> None:
    r = app.router
    base = "/api/v1"
    org = base + "/orgs/{org}"
    node = org + "/nodes/{node}"
    r.add_get(base + "/openapi.json", openapi)
    r.add_get(base + "/auth/whoami", whoami)
    r.add_get(base + "/orgs", list_orgs)
    r.add_post(base + "/orgs", create_org)
    r.add_get(base + "/routing/lookup", routing_lookup)
    r.add_get(base + "/audit", installation_audit_log)
    r.add_get(org + "/nodes", list_nodes)
    r.add_post(org + "/nodes", create_node)
    r.add_get(node, get_node)
    r.add_patch(node, update_node)
    r.add_get(node + "/config", get_config)
    r.add_put(node + "/config", write_config)
    r.add_patch(node + "/config", write_config)
    r.add_get(node + "/config/history", config_history)
    r.add_get(node + "/effective-config", effective)
    r.add_post(node + "/tokens", issue_team_token)
    r.add_delete(node + "/tokens/{token_id}", revoke_token)
    r.add_get(org + "/tokens", list_tokens)
    r.add_post(org + "/tokens", issue_org_token)
    r.add_delete(org + "/tokens/{token_id}", revoke_token)
    r.add_get(org + "/audit", audit_log)


def _if_match(request: web.Request) -> int | None:
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not _DECIMAL.fullmatch(value):
        raise BadRequest('If-Match must be a config version such as "3"')
    return int(value)


def int_query(request: web.Request, name: str, default: int | None, *, maximum: int | None) -> Any:
    """A decimal query parameter (``default`` when absent), between 1 and ``maximum`` when one is given."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not _DECIMAL.fullmatch(raw) or (maximum is not None and not 1 <= int(raw) <= maximum):
        bound = f" between 1 and {maximum}" if maximum else ""
        raise BadRequest(f"{name} must be an integer{bound}")
    return int(raw)


async def _optional_object(request: web.Request) -> dict[str, Any]:
    if request.content_length in (None, 0) and not request.can_read_body:
        return {}
    return await read_json_object(request)
