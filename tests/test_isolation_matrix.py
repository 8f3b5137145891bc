"""Isolation: every token × every config-API route × nodes of two orgs, generated as a property.

No principal of one org reads or writes anything of another org, a team token reaches only its own
team, and a refused request changes nothing. Each org's secrets carry a marker, so a leak through any
answer (config, effective config, history, audit, tokens) is seen. The Slack side of the matrix
(buttons on another org's run, App Home edits of another org's team, claims of another org's
workspace) is covered in ``test_slack_run_actions.py``, ``test_slack_home.py`` and
``test_slack_claims.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_TOKEN, Api

ORGS = ("alpha", "beta")
TEAMS = ("red", "blue")
DENIED = {401, 403, 404}


def marker(org: str, node: str) -> str:
    return f"canary-{org}-{node}-0123456789"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    org: str | None
    team: str | None
    token: str | None


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    writes: bool
    body: Any = None


def routes(org: str, node: str) -> list[Route]:
    base = f"/api/v1/orgs/{org}"
    at = f"{base}/nodes/{node}"
    return [
        Route("GET", f"{base}/nodes", False),
        Route("POST", f"{base}/nodes", True, {"node_id": "intruder", "parent_id": org, "kind": "team"}),
        Route("GET", at, False),
        Route("PATCH", at, True, {"name": "renamed"}),
        Route("GET", f"{at}/config", False),
        Route("PUT", f"{at}/config", True, {"x": 1}),
        Route("PATCH", f"{at}/config", True, {"x": 2}),
        Route("GET", f"{at}/config/history", False),
        Route("GET", f"{at}/effective-config", False),
        Route("POST", f"{at}/tokens", True, {}),
        Route("GET", f"{base}/tokens", False),
        Route("POST", f"{base}/tokens", True, {}),
        Route("GET", f"{base}/audit", False),
        Route("GET", "/api/v1/routing/lookup?slack_channel_id=C0ALPHARED", False),
    ]


class Tenants:
    """Two orgs, each with two teams and a secret marker in every node's config."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.principals: list[Principal] = [
            Principal("admin", None, None, ADMIN_TOKEN),
            Principal("anonymous", None, None, None),
            Principal("bogus", None, None, "alpha.not-a-real-token"),
        ]

    async def build(self) -> Tenants:
        for org in ORGS:
            org_token = await self.api.create_org(org)
            self.principals.append(Principal(f"{org}-admin", org, None, org_token))
            await self.api.ok(
                "PUT",
                f"/api/v1/orgs/{org}/nodes/{org}/config",
                token=org_token,
                json={"integrations": {"kubernetes": {"token": marker(org, org)}}},
            )
            for team in TEAMS:
                await self.api.create_node(org, team, org, "team", org_token)
                await self.api.ok(
                    "PUT",
                    f"/api/v1/orgs/{org}/nodes/{team}/config",
                    token=org_token,
                    json={
                        "integrations": {"github": {"token": marker(org, team)}},
                        "routing": {"slack_channel_ids": [f"C0{org.upper()}{team.upper()}"]},
                    },
                )
                team_token = await self.api.team_token(org, team, org_token)
                self.principals.append(Principal(f"{org}-{team}", org, team, team_token))
        return self

    async def versions(self) -> dict[tuple[str, str], Any]:
        seen: dict[tuple[str, str], Any] = {}
        for org in ORGS:
            for node in (org, *TEAMS):
                body = await self.api.ok("GET", f"/api/v1/orgs/{org}/nodes/{node}/config")
                node_body = await self.api.ok("GET", f"/api/v1/orgs/{org}/nodes/{node}")
                seen[(org, node)] = (body["version"], node_body["name"])
            nodes = await self.api.ok("GET", f"/api/v1/orgs/{org}/nodes")
            seen[(org, "*")] = sorted(n["node_id"] for n in nodes["nodes"])
            tokens = await self.api.ok("GET", f"/api/v1/orgs/{org}/tokens")
            seen[(org, "tokens")] = json.dumps(tokens, sort_keys=True)
        return seen


_worlds: dict[int, Tenants] = {}


async def tenants(api: Api) -> Tenants:
    if id(api) not in _worlds:
        _worlds.clear()
        _worlds[id(api)] = await Tenants(api).build()
    return _worlds[id(api)]


def reach(principal: Principal, org: str, node: str) -> str:
    """``cross`` (another org), ``sibling`` (a team token on another node of its org) or ``own``."""
    if principal.org is None:
        return "own" if principal.name == "admin" else "cross"
    if principal.org != org:
        return "cross"
    if principal.team is not None and principal.team != node:
        return "sibling"
    return "own"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    who=st.integers(0, 8),
    org=st.sampled_from(ORGS),
    node=st.sampled_from(("alpha", "beta", *TEAMS)),
    route_index=st.integers(0, 13),
)
async def test_no_principal_reads_or_writes_across_tenants(
    api: Api, who: int, org: str, node: str, route_index: int
) -> None:
    world = await tenants(api)
    principal = world.principals[who]
    node = org if node in ORGS else node
    route = routes(org, node)[route_index]
    before = await world.versions() if route.writes else None
    status, body = await api.call(route.method, route.path, token=principal.token, json=route.body)
    answer = json.dumps(body)
    relation = reach(principal, org, node)
    if route.path.startswith("/api/v1/routing/") and principal.name != "admin":
        relation = "cross"
    if relation != "own":
        assert status in DENIED, (principal.name, route, status, body)
        if route.writes:
            assert await world.versions() == before, (principal.name, route)
    for other in ORGS:
        if principal.org is not None and other != principal.org:
            for other_node in (other, *TEAMS):
                assert marker(other, other_node) not in answer, (principal.name, route)
    assert status < 500, (principal.name, route, status, body)
