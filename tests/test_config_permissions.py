"""The permission matrix: admin / org admin / team token × own / other org × read / write."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import ADMIN_TOKEN, Api


@dataclass
class World:
    acme_admin: str
    globex_admin: str
    checkout: str
    search: str
    globex_team: str


async def _world(api: Api) -> World:
    acme, globex = await api.create_org("acme"), await api.create_org("globex")
    await api.create_node("acme", "checkout", "acme", "team", acme)
    await api.create_node("acme", "search", "acme", "team", acme)
    await api.create_node("globex", "billing", "globex", "team", globex)
    return World(
        acme_admin=acme,
        globex_admin=globex,
        checkout=await api.team_token("acme", "checkout", acme),
        search=await api.team_token("acme", "search", acme),
        globex_team=await api.team_token("globex", "billing", globex),
    )


READ = ("GET", "/api/v1/orgs/acme/nodes/checkout/config", None)
READ_EFFECTIVE = ("GET", "/api/v1/orgs/acme/nodes/checkout/effective-config", None)
PATCH = ("PATCH", "/api/v1/orgs/acme/nodes/checkout/config", {"labels": {"tier": "1"}})
PUT = ("PUT", "/api/v1/orgs/acme/nodes/checkout/config", {"labels": {"tier": "2"}})
CREATE_NODE = ("POST", "/api/v1/orgs/acme/nodes", {"node_id": "web", "parent_id": "acme", "kind": "team"})
AUDIT = ("GET", "/api/v1/orgs/acme/audit", None)
ISSUE_TOKEN: tuple[str, str, object] = ("POST", "/api/v1/orgs/acme/nodes/checkout/tokens", {})
CREATE_ORG = ("POST", "/api/v1/orgs", {"org_id": "initech"})
LOOKUP = ("GET", "/api/v1/routing/lookup?slack_channel_id=C0001", None)

# (who, operation, expected status); the team's org has not allowed team writes here.
MATRIX = [
    ("admin", READ, 200),
    ("admin", PUT, 200),
    ("admin", PATCH, 200),
    ("admin", CREATE_ORG, 201),
    ("admin", LOOKUP, 404),
    ("admin", AUDIT, 200),
    ("acme_admin", READ, 200),
    ("acme_admin", READ_EFFECTIVE, 200),
    ("acme_admin", PUT, 200),
    ("acme_admin", PATCH, 200),
    ("acme_admin", CREATE_NODE, 201),
    ("acme_admin", AUDIT, 200),
    ("acme_admin", ISSUE_TOKEN, 201),
    ("acme_admin", CREATE_ORG, 403),
    ("acme_admin", LOOKUP, 403),
    ("globex_admin", READ, 403),
    ("globex_admin", READ_EFFECTIVE, 403),
    ("globex_admin", PUT, 403),
    ("globex_admin", PATCH, 403),
    ("globex_admin", CREATE_NODE, 403),
    ("globex_admin", AUDIT, 403),
    ("globex_admin", ISSUE_TOKEN, 403),
    ("checkout", READ, 200),
    ("checkout", READ_EFFECTIVE, 200),
    ("checkout", PATCH, 403),
    ("checkout", PUT, 403),
    ("checkout", CREATE_NODE, 403),
    ("checkout", AUDIT, 403),
    ("checkout", ISSUE_TOKEN, 403),
    ("checkout", LOOKUP, 403),
    ("search", READ, 403),
    ("search", READ_EFFECTIVE, 403),
    ("search", PATCH, 403),
    ("search", PUT, 403),
    ("globex_team", READ, 403),
    ("globex_team", PATCH, 403),
    ("globex_team", AUDIT, 403),
]


@pytest.mark.parametrize(
    ("who", "operation", "expected"), MATRIX, ids=lambda v: v if isinstance(v, str) else None
)
async def test_permission_matrix(
    api: Api, who: str, operation: tuple[str, str, object], expected: int
) -> None:
    world = await _world(api)
    token = ADMIN_TOKEN if who == "admin" else getattr(world, who)
    method, path, body = operation
    before = await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/config")
    status, response = await api.call(method, path, token=token, json=body)
    assert status == expected, response
    after = await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/config")
    if expected >= 400:
        assert response["message"]
        assert after == before, "a refused request must not change anything"


async def test_team_token_can_patch_its_own_team_only_when_the_org_allows(api: Api) -> None:
    world = await _world(api)
    await api.ok(
        "PATCH",
        "/api/v1/orgs/acme/nodes/acme/config",
        token=world.acme_admin,
        json={"access": {"team_tokens_can_patch": True}},
    )
    body = await api.ok("PATCH", PATCH[1], token=world.checkout, json={"labels": {"tier": "1"}})
    assert body["config"] == {"labels": {"tier": "1"}}
    status, _ = await api.call("PUT", PUT[1], token=world.checkout, json={"labels": {}})
    assert status == 403
    status, _ = await api.call(
        "PATCH", "/api/v1/orgs/acme/nodes/search/config", token=world.checkout, json={"a": 1}
    )
    assert status == 403
    status, _ = await api.call(
        "PATCH",
        "/api/v1/orgs/acme/nodes/acme/config",
        token=world.checkout,
        json={"access": {"team_tokens_can_patch": False}},
    )
    assert status == 403
    history = await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/config/history", token=world.checkout)
    assert history["history"][0]["actor"].startswith("team:checkout:tok_")


async def test_whoami_names_each_kind_of_token(api: Api) -> None:
    world = await _world(api)
    assert await api.ok("GET", "/api/v1/auth/whoami") == {
        "auth_kind": "admin",
        "org_id": None,
        "team_node_id": None,
    }
    assert await api.ok("GET", "/api/v1/auth/whoami", token=world.acme_admin) == {
        "auth_kind": "org_admin",
        "org_id": "acme",
        "team_node_id": None,
    }
    assert await api.ok("GET", "/api/v1/auth/whoami", token=world.checkout) == {
        "auth_kind": "team",
        "org_id": "acme",
        "team_node_id": "checkout",
    }


async def test_forbidden_attempts_are_audited_in_the_target_org(api: Api) -> None:
    world = await _world(api)
    status, _ = await api.call("GET", READ[1], token=world.globex_admin)
    assert status == 403
    events = (await api.ok("GET", "/api/v1/orgs/acme/audit?action=auth.forbidden", token=world.acme_admin))[
        "events"
    ]
    assert len(events) == 1
    assert events[0]["actor"].startswith("org_admin:tok_")
    assert events[0]["target"] == "GET /api/v1/orgs/acme/nodes/checkout/config"


async def test_team_tokens_cannot_redirect_where_inherited_secrets_go(api: Api) -> None:
    world = await _world(api)
    await api.ok(
        "PATCH",
        "/api/v1/orgs/acme/nodes/acme/config",
        token=world.acme_admin,
        json={
            "access": {"team_tokens_can_patch": True},
            "model": {"api_key": "sk-org-key-0123456789", "base_url": "https://llm.internal/v1"},
        },
    )
    for patch in (
        {"model": {"base_url": "https://attacker.example/v1"}},
        {"integrations": {"kubernetes": {"api_url": "https://attacker.example"}}},
        {"integrations": {"kubernetes": {"kubeconfig": "/root/.kube/config"}}},
        {"mcp_servers": {"shell": {"command": "sh"}}},
    ):
        status, body = await api.call("PATCH", PATCH[1], token=world.checkout, json=patch)
        assert status == 403, patch
        assert "org admin" in body["message"]
    ok = await api.ok(
        "PATCH", PATCH[1], token=world.checkout, json={"integrations": {"kubernetes": {"namespace": "x"}}}
    )
    assert ok["config"] == {"integrations": {"kubernetes": {"namespace": "x"}}}
    await api.ok(
        "PATCH", PATCH[1], token=world.acme_admin, json={"model": {"base_url": "https://llm2.internal/v1"}}
    )
