"""Routing claims: indexed, unique per identifier, written with the config, and looked up in order."""

from __future__ import annotations

import asyncio
from typing import Any

from incidentfox.bot.runtime import Runtime
from incidentfox.config.routing import RouteTarget
from tests.conftest import Api


async def _teams(api: Api) -> str:
    token = await api.create_org("acme")
    await api.create_node("acme", "payments", "acme", "unit", token)
    for team in ("checkout", "search"):
        await api.create_node("acme", team, "payments", "team", token)
    return token


def _routing(**claims: Any) -> dict[str, Any]:
    return {"routing": claims}


async def test_a_claimed_channel_repo_and_service_route_to_the_team(api: Api, runtime: Runtime) -> None:
    token = await _teams(api)
    await api.ok(
        "PUT",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json=_routing(
            slack_channel_ids=["c0checkout"], github_repos=["Acme/Checkout"], pagerduty_service_ids=["pchk1"]
        ),
    )
    for query in ("slack_channel_id=C0CHECKOUT", "github_repo=acme/checkout", "pagerduty_service_id=PCHK1"):
        body = await api.ok("GET", f"/api/v1/routing/lookup?{query}")
        assert body == {"org_id": "acme", "team_node_id": "checkout"}
    assert await runtime.config.routing.lookup(slack_channel_id="C0CHECKOUT") == RouteTarget(
        "acme", "checkout"
    )
    status, body = await api.call("GET", "/api/v1/routing/lookup?slack_channel_id=C0NOBODY")
    assert (status, body["error"]) == (404, "not_routed")


async def test_lookup_order_is_pagerduty_then_slack_then_github(api: Api) -> None:
    token = await _teams(api)
    await api.ok(
        "PUT",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json=_routing(slack_channel_ids=["C0SHARED"]),
    )
    await api.ok(
        "PUT",
        "/api/v1/orgs/acme/nodes/search/config",
        token=token,
        json=_routing(pagerduty_service_ids=["PSEARCH"], github_repos=["acme/search"]),
    )
    body = await api.ok(
        "GET", "/api/v1/routing/lookup?slack_channel_id=C0SHARED&pagerduty_service_id=PSEARCH"
    )
    assert body["team_node_id"] == "search"
    body = await api.ok("GET", "/api/v1/routing/lookup?slack_channel_id=C0SHARED&github_repo=acme/search")
    assert body["team_node_id"] == "checkout"
    body = await api.ok("GET", "/api/v1/routing/lookup?slack_channel_id=C0UNCLAIMED&github_repo=acme/search")
    assert body["team_node_id"] == "search"


async def test_a_conflicting_claim_gets_409_naming_no_team_and_changes_neither_config(api: Api) -> None:
    token = await _teams(api)
    await api.ok(
        "PUT",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json={**_routing(slack_channel_ids=["C0CHECKOUT"]), "owner": "a"},
    )
    await api.ok("PUT", "/api/v1/orgs/acme/nodes/search/config", token=token, json={"owner": "b"})
    status, body = await api.call(
        "PUT",
        "/api/v1/orgs/acme/nodes/search/config",
        token=token,
        json={**_routing(slack_channel_ids=["C0SEARCH", "c0checkout"]), "owner": "c"},
    )
    assert (status, body["error"]) == (409, "routing_conflict")
    assert "C0CHECKOUT" in body["message"]
    assert "checkout" not in body["message"].replace("C0CHECKOUT", "")
    search = await api.ok("GET", "/api/v1/orgs/acme/nodes/search/config", token=token)
    assert (search["version"], search["config"]) == (1, {"owner": "b"})
    checkout = await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/config", token=token)
    assert checkout["version"] == 1
    status, _ = await api.call("GET", "/api/v1/routing/lookup?slack_channel_id=C0SEARCH")
    assert status == 404, "the half of the claim that did not conflict was not written either"
    assert (await api.ok("GET", "/api/v1/routing/lookup?slack_channel_id=C0CHECKOUT"))[
        "team_node_id"
    ] == "checkout"


async def test_releasing_a_claim_lets_another_team_take_it_and_the_cache_follows(
    api: Api, runtime: Runtime
) -> None:
    token = await _teams(api)
    await api.ok(
        "PUT",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json=_routing(slack_channel_ids=["C0MOVE"]),
    )
    assert await runtime.config.routing.lookup(slack_channel_id="C0MOVE") == RouteTarget("acme", "checkout")
    await api.ok("PATCH", "/api/v1/orgs/acme/nodes/checkout/config", token=token, json={"routing": None})
    assert await runtime.config.routing.lookup(slack_channel_id="C0MOVE") is None
    await api.ok(
        "PATCH",
        "/api/v1/orgs/acme/nodes/search/config",
        token=token,
        json=_routing(slack_channel_ids=["C0MOVE"]),
    )
    assert await runtime.config.routing.lookup(slack_channel_id="C0MOVE") == RouteTarget("acme", "search")


async def test_claims_are_validated_and_only_teams_may_claim(api: Api) -> None:
    token = await _teams(api)
    for bad in (
        _routing(slack_channel_ids="C0ONE"),
        _routing(github_repos=["not a repo"]),
        _routing(slack_channel_ids=[42]),
        {"routing": ["C0ONE"]},
    ):
        status, body = await api.call("PUT", "/api/v1/orgs/acme/nodes/checkout/config", token=token, json=bad)
        assert (status, body["error"]) == (400, "invalid_routing"), bad
    status, body = await api.call(
        "PUT",
        "/api/v1/orgs/acme/nodes/payments/config",
        token=token,
        json=_routing(slack_channel_ids=["C0UNIT"]),
    )
    assert (status, body["error"]) == (400, "invalid_routing")
    assert "only teams" in body["message"]


async def test_a_lookup_racing_a_claim_never_caches_a_stale_miss(api: Api, runtime: Runtime) -> None:
    token = await _teams(api)
    routing = runtime.config.routing
    original = routing._session_factory
    claimed = asyncio.Event()

    class SlowSession:
        """Reads the table, then lets a claim commit before the lookup finishes."""

        def __init__(self) -> None:
            self._inner = original()

        async def __aenter__(self) -> Any:
            return await self._inner.__aenter__()

        async def __aexit__(self, *exc: Any) -> None:
            await claimed.wait()
            await self._inner.__aexit__(*exc)

    routing._session_factory = SlowSession  # type: ignore[assignment]
    pending = asyncio.create_task(routing.lookup(slack_channel_id="C0RACE"))
    await asyncio.sleep(0.1)
    routing._session_factory = original
    await api.ok(
        "PATCH",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json=_routing(slack_channel_ids=["C0RACE"]),
    )
    claimed.set()
    assert await pending is None, "the racing read saw the table before the claim"
    assert await routing.lookup(slack_channel_id="C0RACE") == RouteTarget("acme", "checkout")


async def test_releasing_several_claims_at_once_frees_each_of_them(api: Api, runtime: Runtime) -> None:
    token = await _teams(api)
    await api.ok(
        "PUT",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json=_routing(slack_channel_ids=["C0ONE", "C0TWO", "C0KEEP"], github_repos=["acme/checkout"]),
    )
    await api.ok(
        "PUT",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json=_routing(slack_channel_ids=["C0KEEP"]),
    )
    for channel in ("C0ONE", "C0TWO"):
        assert await runtime.config.routing.lookup(slack_channel_id=channel) is None
    assert await runtime.config.routing.lookup(github_repo="acme/checkout") is None
    assert await runtime.config.routing.lookup(slack_channel_id="C0KEEP") == RouteTarget("acme", "checkout")
    await api.ok(
        "PUT",
        "/api/v1/orgs/acme/nodes/search/config",
        token=token,
        json=_routing(slack_channel_ids=["C0ONE", "C0TWO"], github_repos=["acme/checkout"]),
    )
