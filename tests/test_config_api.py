"""The config API end to end over loopback HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api


async def _tree(api: Api) -> str:
    """acme (org) -> platform (unit) -> payments (unit) -> checkout (team)."""
    org_token = await api.create_org("acme")
    await api.create_node("acme", "platform", "acme", "unit", org_token)
    await api.create_node("acme", "payments", "platform", "unit", org_token)
    await api.create_node("acme", "checkout", "payments", "team", org_token)
    return org_token


async def _put(api: Api, node: str, document: dict[str, Any], token: str) -> Any:
    return await api.ok("PUT", f"/api/v1/orgs/acme/nodes/{node}/config", token=token, json=document)


async def _effective(api: Api, node: str, token: str) -> dict[str, Any]:
    body = await api.ok("GET", f"/api/v1/orgs/acme/nodes/{node}/effective-config", token=token)
    config: dict[str, Any] = body["config"]
    return config


async def test_config_inherits_down_the_tree_and_null_deletes_at_every_depth(api: Api) -> None:
    token = await _tree(api)
    await _put(
        api,
        "acme",
        {
            "agent": {"timeout_s": 300, "max_turns": 20},
            "model": {"name": "gpt-4.1"},
            "integrations": {"kubernetes": {"namespace": "default", "context": "prod"}},
        },
        token,
    )
    await _put(
        api,
        "platform",
        {"agent": {"timeout_s": 600}, "integrations": {"kubernetes": {"namespace": "platform"}}},
        token,
    )
    await _put(api, "payments", {"agent": {"max_turns": None}, "model": None}, token)
    await _put(
        api, "checkout", {"integrations": {"kubernetes": {"context": None, "namespace": "checkout"}}}, token
    )

    assert await _effective(api, "checkout", token) == {
        "agent": {"timeout_s": 600},
        "integrations": {"kubernetes": {"namespace": "checkout"}},
    }
    assert await _effective(api, "payments", token) == {
        "agent": {"timeout_s": 600},
        "integrations": {"kubernetes": {"namespace": "platform", "context": "prod"}},
    }
    own = await api.ok("GET", "/api/v1/orgs/acme/nodes/payments/config", token=token)
    assert own["config"] == {"agent": {"max_turns": None}, "model": None}, "PUT stores nulls as given"


async def test_patch_merges_own_config_and_a_null_removes_the_own_key(api: Api) -> None:
    token = await _tree(api)
    await _put(api, "acme", {"agent": {"timeout_s": 300}}, token)
    await _put(
        api, "checkout", {"agent": {"timeout_s": None}, "labels": {"tier": "1", "pager": "yes"}}, token
    )
    assert "timeout_s" not in (await _effective(api, "checkout", token)).get("agent", {})

    body = await api.ok(
        "PATCH",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json={"agent": {"timeout_s": None}, "labels": {"pager": None, "owner": "sre"}},
    )
    assert body["config"] == {"agent": {}, "labels": {"tier": "1", "owner": "sre"}}
    effective = await _effective(api, "checkout", token)
    assert effective["agent"] == {"timeout_s": 300}, "removing the own null re-exposes the inherited value"


async def test_every_write_bumps_the_version_and_appends_history(api: Api) -> None:
    token = await _tree(api)
    first = await _put(api, "checkout", {"a": 1}, token)
    second = await api.ok("PATCH", "/api/v1/orgs/acme/nodes/checkout/config", token=token, json={"b": 2})
    third = await _put(api, "checkout", {"b": 3}, token)
    assert [first["version"], second["version"], third["version"]] == [1, 2, 3]
    history = (await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/config/history", token=token))["history"]
    assert [h["version"] for h in history] == [3, 2, 1]
    assert [h["operation"] for h in history] == ["put", "patch", "put"]
    assert sorted(history[0]["diff"], key=lambda op: op["path"]) == [
        {"op": "remove", "path": "/a"},
        {"op": "replace", "path": "/b", "value": 3},
    ]
    assert all(h["actor"].startswith("org_admin:tok_") for h in history)


async def test_if_match_rejects_a_stale_write_without_changing_anything(api: Api) -> None:
    token = await _tree(api)
    await _put(api, "checkout", {"a": 1}, token)
    status, body = await api.call(
        "PUT",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json={"a": 2},
        headers={"If-Match": '"0"'},
    )
    assert status == 412
    assert "version 1" in body["message"]
    own = await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/config", token=token)
    assert own == {"org_id": "acme", "node_id": "checkout", "version": 1, "config": {"a": 1}}
    await api.ok(
        "PUT",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json={"a": 2},
        headers={"If-Match": '"1"'},
    )


async def test_effective_config_cache_is_invalidated_by_an_ancestor_write(api: Api) -> None:
    token = await _tree(api)
    await _put(api, "acme", {"x": 1}, token)
    assert await _effective(api, "checkout", token) == {"x": 1}
    assert await _effective(api, "checkout", token) == {"x": 1}
    await _put(api, "platform", {"x": 2}, token)
    assert await _effective(api, "checkout", token) == {"x": 2}
    await api.ok("PATCH", "/api/v1/orgs/acme/nodes/acme/config", token=token, json={"y": 3})
    assert await _effective(api, "checkout", token) == {"x": 2, "y": 3}


async def test_moving_a_team_changes_what_it_inherits_and_cycles_are_refused(api: Api) -> None:
    token = await _tree(api)
    await api.create_node("acme", "data", "acme", "unit", token)
    await _put(api, "payments", {"owner": "payments"}, token)
    await _put(api, "data", {"owner": "data"}, token)
    assert (await _effective(api, "checkout", token))["owner"] == "payments"
    moved = await api.ok("PATCH", "/api/v1/orgs/acme/nodes/checkout", token=token, json={"parent_id": "data"})
    assert moved["path"] == ["acme", "data", "checkout"]
    assert (await _effective(api, "checkout", token))["owner"] == "data"

    status, body = await api.call(
        "PATCH", "/api/v1/orgs/acme/nodes/platform", token=token, json={"parent_id": "payments"}
    )
    assert (status, body["error"]) == (400, "cycle")
    nodes = (await api.ok("GET", "/api/v1/orgs/acme/nodes", token=token))["nodes"]
    assert {n["node_id"]: n["path"] for n in nodes}["payments"] == ["acme", "platform", "payments"]


async def test_bad_tree_input_gets_clear_errors_and_writes_nothing(api: Api) -> None:
    token = await _tree(api)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"node_id": "Bad_ID", "parent_id": "acme", "kind": "team"}, 400, "invalid_id"),
        ({"node_id": "-leading", "parent_id": "acme", "kind": "team"}, 400, "invalid_id"),
        ({"node_id": "x" * 64, "parent_id": "acme", "kind": "team"}, 400, "invalid_id"),
        ({"node_id": "web", "parent_id": "nope", "kind": "team"}, 400, "unknown_parent"),
        ({"node_id": "web", "parent_id": "checkout", "kind": "team"}, 400, "team_under_team"),
        ({"node_id": "web", "parent_id": "web", "kind": "unit"}, 400, "cycle"),
        ({"node_id": "web", "parent_id": "acme", "kind": "squad"}, 400, "invalid_kind"),
        ({"node_id": "checkout", "parent_id": "acme", "kind": "team"}, 409, "conflict"),
    ]
    for body, status, code in cases:
        got_status, got = await api.call("POST", "/api/v1/orgs/acme/nodes", token=token, json=body)
        assert (got_status, got["error"]) == (status, code), body
        assert got["message"]
    nodes = (await api.ok("GET", "/api/v1/orgs/acme/nodes", token=token))["nodes"]
    assert sorted(n["node_id"] for n in nodes) == ["acme", "checkout", "payments", "platform"]


async def test_malformed_and_oversized_bodies_are_refused_before_any_write(api: Api) -> None:
    token = await _tree(api)
    path = "/api/v1/orgs/acme/nodes/checkout/config"
    status, body = await api.call(
        "PUT", path, token=token, data=b'{"a": ', headers={"Content-Type": "application/json"}
    )
    assert (status, body["error"]) == (400, "malformed_json")
    assert "line 1" in body["message"]
    status, body = await api.call("PUT", path, token=token, json=[1, 2])
    assert (status, body["error"]) == (400, "invalid_config")
    big = b'{"blob": "' + b"x" * (1024 * 1024) + b'"}'
    status, body = await api.call(
        "PUT", path, token=token, data=big, headers={"Content-Type": "application/json"}
    )
    assert (status, body["error"]) == (413, "payload_too_large")
    own = await api.ok("GET", path, token=token)
    assert (own["version"], own["config"]) == (0, {})


async def test_unknown_org_and_node_are_404_for_the_admin(api: Api) -> None:
    await _tree(api)
    status, body = await api.call("GET", "/api/v1/orgs/nope/nodes/x/config")
    assert (status, body["error"]) == (404, "not_found")
    status, body = await api.call("GET", "/api/v1/orgs/acme/nodes/x/effective-config")
    assert status == 404
    assert "'x'" in body["message"]


async def test_non_ascii_digits_and_huge_numbers_are_bad_input_not_a_crash(api: Api) -> None:
    token = await _tree(api)
    path = "/api/v1/orgs/acme/nodes/checkout/config"
    status, body = await api.call("PUT", path, token=token, json={"a": 1}, headers={"If-Match": '"²"'})
    assert (status, body["error"]) == (400, "bad_request")
    for query in ("limit=²", "limit=0", "before_id=99999999999999999999999"):
        status, body = await api.call("GET", f"/api/v1/orgs/acme/audit?{query}", token=token)
        assert status == 400, query
        assert "must be an integer" in body["message"]
