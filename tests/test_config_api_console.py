"""What the config console needs from the config API: the org list, where each effective value comes
from, and audit filters. Over loopback HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from incidentfox.bot.runtime import Runtime
from incidentfox.handlers.webhooks.receipt import audit_unrouted
from tests.conftest import ADMIN_TOKEN, Api

GITHUB_TOKEN = "ghp_" + "A1b2C3d4" * 5


async def _tree(api: Api) -> str:
    """acme (org) -> platform (unit) -> payments (unit) -> checkout (team); acme -> payments-eu (team)."""
    org_token = await api.create_org("acme")
    await api.create_node("acme", "platform", "acme", "unit", org_token)
    await api.create_node("acme", "payments", "platform", "unit", org_token)
    await api.create_node("acme", "checkout", "payments", "team", org_token)
    await api.create_node("acme", "payments-eu", "acme", "team", org_token)
    return org_token


async def _put(api: Api, node: str, document: dict[str, Any], token: str) -> None:
    await api.ok("PUT", f"/api/v1/orgs/acme/nodes/{node}/config", token=token, json=document)


async def _audit(
    api: Api, token: str = ADMIN_TOKEN, path: str = "/api/v1/orgs/acme/audit", **query: Any
) -> list[Any]:
    body = await api.ok("GET", f"{path}?{urlencode(query)}", token=token)
    events: list[Any] = body["events"]
    return events


async def _token_id(api: Api, org_token: str) -> str:
    tokens = (await api.ok("GET", "/api/v1/orgs/acme/tokens", token=org_token))["tokens"]
    token_id: str = next(t["token_id"] for t in tokens if t["kind"] == "org_admin")
    return token_id


# -- GET /api/v1/orgs ---------------------------------------------------------------------------------


async def test_the_admin_lists_every_org_sorted_and_each_other_token_only_its_own(
    api: Api, runtime: Runtime
) -> None:
    await api.create_org("zeta")
    acme_token = await api.create_org("acme")
    beta_token = await api.create_org("beta")
    await api.create_node("acme", "checkout", "acme", "team", acme_token)
    team_token = await api.team_token("acme", "checkout", acme_token)
    await audit_unrouted(runtime.sessions, sender="pagerduty", what="service PNOBODY", delivery_id="d-1")

    orgs = (await api.ok("GET", "/api/v1/orgs"))["orgs"]
    assert [o["org_id"] for o in orgs] == ["acme", "beta", "zeta"], "sorted, no installation org"
    assert orgs[0]["name"] == "Acme"
    assert set(orgs[0]) == {"org_id", "name", "created_at"}
    assert orgs[0]["created_at"].startswith("20")

    assert [o["org_id"] for o in (await api.ok("GET", "/api/v1/orgs", token=beta_token))["orgs"]] == ["beta"]
    assert [o["org_id"] for o in (await api.ok("GET", "/api/v1/orgs", token=team_token))["orgs"]] == ["acme"]
    status, _ = await api.call("POST", "/api/v1/orgs", token=team_token, json={"org_id": "mine"})
    assert status == 403, "a team token reads its org; it never creates one"
    assert (await api.call("GET", "/api/v1/orgs", token=None))[0] == 401


# -- effective-config sources -------------------------------------------------------------------------


async def test_sources_name_the_node_that_set_each_leaf_and_forget_keys_deleted_by_null(api: Api) -> None:
    token = await _tree(api)
    await _put(
        api,
        "acme",
        {
            "model": {"name": "gpt-4.1", "provider": "openai"},
            "agent": {"timeout_s": 300},
            "integrations": {"github": {"token": GITHUB_TOKEN, "post_comments": True}},
        },
        token,
    )
    await _put(api, "platform", {"agent": {"timeout_s": 600}}, token)
    await _put(api, "payments", {"model": {"name": None}}, token)
    await _put(
        api,
        "checkout",
        {"integrations": {"github": {"post_comments": None}}, "labels": {"app.kubernetes.io/name": "co"}},
        token,
    )

    body = await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/effective-config", token=token)
    assert body["chain"] == ["acme", "platform", "payments", "checkout"]
    assert body["sources"] == {
        "agent.timeout_s": "platform",
        "integrations.github.token": "acme",
        "labels.app.kubernetes.io/name": "checkout",
        "model.provider": "acme",
    }
    assert body["config"]["integrations"]["github"] == {"token": "••••" + GITHUB_TOKEN[-4:]}
    assert GITHUB_TOKEN not in str(body)
    assert "name" not in body["config"]["model"]

    team_token = await api.team_token("acme", "checkout", token)
    as_team = await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/effective-config", token=team_token)
    assert as_team["sources"] == body["sources"]


async def test_sources_follow_a_write_to_an_ancestor_at_once(api: Api, runtime: Runtime) -> None:
    token = await _tree(api)
    await _put(api, "acme", {"agent": {"timeout_s": 300}}, token)
    path = "/api/v1/orgs/acme/nodes/checkout/effective-config"
    assert (await api.ok("GET", path, token=token))["sources"] == {"agent.timeout_s": "acme"}
    assert (await runtime.config.effective_config("acme", "checkout"))["agent"] == {"timeout_s": 300}

    await _put(api, "payments", {"agent": {"timeout_s": 900, "max_turns": 5}}, token)
    body = await api.ok("GET", path, token=token)
    assert body["sources"] == {"agent.timeout_s": "payments", "agent.max_turns": "payments"}
    assert body["config"] == {"agent": {"timeout_s": 900, "max_turns": 5}}
    assert (await runtime.config.effective_config("acme", "checkout"))["agent"]["timeout_s"] == 900

    await _put(api, "checkout", {"agent": None}, token)
    body = await api.ok("GET", path, token=token)
    assert (body["config"], body["sources"]) == ({}, {})


async def test_an_empty_object_left_by_deleting_every_inherited_key_is_its_own_leaf(api: Api) -> None:
    token = await _tree(api)
    await _put(api, "acme", {"agent": {"timeout_s": 300}}, token)
    await _put(api, "checkout", {"agent": {"timeout_s": None}}, token)
    body = await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/effective-config", token=token)
    assert body["config"] == {"agent": {}}
    assert body["sources"] == {"agent": "acme"}


# -- audit filters ------------------------------------------------------------------------------------


async def test_audit_filters_by_exact_actor_and_action(api: Api) -> None:
    token = await _tree(api)
    first_admin = await _token_id(api, token)
    second = await api.ok("POST", "/api/v1/orgs/acme/tokens", token=token, json={}, expect=201)
    await _put(api, "checkout", {"a": 1}, token)
    await _put(api, "checkout", {"a": 2}, second["token"])
    await api.team_token("acme", "checkout", second["token"])

    mine = await _audit(api, token, actor=f"org_admin:{second['token_id']}")
    assert [e["action"] for e in mine] == ["token.issue", "config.write"]
    assert all(e["actor"] == f"org_admin:{second['token_id']}" for e in mine)
    writes = await _audit(api, token, actor=f"org_admin:{first_admin}", action="config.write")
    assert [(e["target"], e["detail"]["version"]) for e in writes] == [("checkout", 1)]
    assert await _audit(api, token, actor=f"org_admin:{first_admin[:-1]}") == [], "actor is exact"


async def test_audit_target_is_a_case_sensitive_prefix_without_wildcards(api: Api) -> None:
    token = await _tree(api)
    await _put(api, "payments", {"a": 1}, token)
    await _put(api, "payments-eu", {"a": 1}, token)
    await _put(api, "checkout", {"a": 1}, token)
    await api.team_token("acme", "checkout", token)

    writes = await _audit(api, token, target="payments", action="config.write")
    assert [e["target"] for e in writes] == ["payments-eu", "payments"]
    node_events = await _audit(api, token, target="payments-eu")
    assert [e["action"] for e in node_events] == ["config.write", "node.create"]
    assert [e["action"] for e in await _audit(api, token, target="tok_")] == ["token.issue", "token.issue"]
    assert await _audit(api, token, target="to_") == [], "_ is a character, not a wildcard"
    assert await _audit(api, token, target="%") == []
    assert await _audit(api, token, target="PAYMENTS") == [], "prefixes are case-sensitive"


async def test_a_refused_request_is_found_by_the_path_it_asked_for(api: Api) -> None:
    token = await _tree(api)
    team_token = await api.team_token("acme", "checkout", token)
    assert (await api.call("GET", "/api/v1/orgs/acme/nodes/payments/config", token=team_token))[0] == 403
    refused = await _audit(api, token, target="GET /api/v1/orgs/acme/nodes/payments")
    assert [(e["action"], e["target"]) for e in refused] == [
        ("auth.forbidden", "GET /api/v1/orgs/acme/nodes/payments/config")
    ]


async def test_audit_filters_page_with_before_id(api: Api) -> None:
    token = await _tree(api)
    for value in range(5):
        await _put(api, "checkout", {"a": value}, token)
    first = await _audit(api, token, action="config.write", target="checkout", limit=2)
    second = await _audit(
        api, token, action="config.write", target="checkout", limit=2, before_id=first[-1]["id"]
    )
    third = await _audit(
        api, token, action="config.write", target="checkout", limit=2, before_id=second[-1]["id"]
    )
    versions = [e["detail"]["version"] for e in first + second + third]
    assert versions == [5, 4, 3, 2, 1]


async def test_installation_audit_takes_the_same_filters(api: Api, runtime: Runtime) -> None:
    await api.create_org("acme")
    await audit_unrouted(runtime.sessions, sender="pagerduty", what="service PNOBODY", delivery_id="d-1")
    await audit_unrouted(runtime.sessions, sender="github", what="repo nobody/here", delivery_id="d-2")
    events = await _audit(api, path="/api/v1/audit", actor="webhook:github")
    assert [e["target"] for e in events] == ["repo nobody/here"]
    events = await _audit(api, path="/api/v1/audit", target="service P")
    assert [e["actor"] for e in events] == ["webhook:pagerduty"]


async def test_audit_filters_refuse_long_values_and_control_characters_in_plain_words(api: Api) -> None:
    token = await _tree(api)
    cases = {
        "actor": ("x" * 201, "actor must be at most 200 characters"),
        "target": ("x" * 256, "target must be at most 255 characters"),
        "action": ("x" * 65, "action must be at most 64 characters"),
    }
    for name, (value, message) in cases.items():
        for path, as_token in (("/api/v1/orgs/acme/audit", token), ("/api/v1/audit", ADMIN_TOKEN)):
            status, body = await api.call("GET", f"{path}?{urlencode({name: value})}", token=as_token)
            assert (status, body["error"]) == (400, "invalid_filter"), (name, path)
            assert message in body["message"]
    status, body = await api.call("GET", "/api/v1/orgs/acme/audit?target=pay%00ments", token=token)
    assert (status, body["error"]) == (400, "invalid_filter")
    assert "control characters" in body["message"]


async def test_an_org_admin_cannot_filter_another_orgs_audit(api: Api) -> None:
    await _tree(api)
    globex = await api.create_org("globex")
    status, _ = await api.call("GET", "/api/v1/orgs/acme/audit?target=checkout", token=globex)
    assert status == 403
