"""Tokens: format, hashing at rest, revocation, expiry, and the audit trail of issue, revoke and failures."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select

from incidentfox.bot.runtime import Runtime
from incidentfox.config.models import ApiToken
from tests.conftest import Api


async def test_tokens_have_the_documented_formats_and_only_a_keyed_hash_is_stored(
    api: Api, runtime: Runtime
) -> None:
    org_token = await api.create_org("acme")
    await api.create_node("acme", "checkout", "acme", "team", org_token)
    team_token = await api.team_token("acme", "checkout", org_token)
    assert re.fullmatch(r"acme\.[A-Za-z0-9_-]{43,}", org_token)
    assert re.fullmatch(r"acme\.checkout\.[A-Za-z0-9_-]{43,}", team_token)
    async with runtime.sessions() as session:
        rows = (await session.scalars(select(ApiToken))).all()
    stored = " ".join(f"{r.token_id} {r.token_hash} {r.label}" for r in rows)
    assert org_token not in stored
    assert team_token not in stored
    assert org_token.split(".")[-1] not in stored
    assert all(re.fullmatch(r"[0-9a-f]{64}", r.token_hash) for r in rows)


async def test_wrong_revoked_and_expired_tokens_get_401_and_are_audited(api: Api) -> None:
    org_token = await api.create_org("acme")
    await api.create_node("acme", "checkout", "acme", "team", org_token)
    path = "/api/v1/orgs/acme/nodes/checkout/config"
    team = await api.ok(
        "POST", "/api/v1/orgs/acme/nodes/checkout/tokens", token=org_token, json={"label": "ci"}, expect=201
    )
    assert (await api.call("GET", path, token=team["token"]))[0] == 200

    forged = team["token"][:-4] + ("AAAA" if not team["token"].endswith("AAAA") else "BBBB")
    status, body = await api.call("GET", path, token=forged)
    assert (status, body["message"]) == (401, "invalid token")
    for bad in (None, "", "garbage", "acme.short"):
        status, body = await api.call("GET", path, token=bad)
        assert status == 401
        assert body["error"] == "unauthorized"

    revoked = await api.ok(
        "DELETE", f"/api/v1/orgs/acme/nodes/checkout/tokens/{team['token_id']}", token=org_token
    )
    assert revoked["revoked_at"]
    status, body = await api.call("GET", path, token=team["token"])
    assert (status, body["message"]) == (401, "token has been revoked")

    short = await api.ok(
        "POST",
        "/api/v1/orgs/acme/nodes/checkout/tokens",
        token=org_token,
        json={"expires_in_seconds": 1},
        expect=201,
    )
    await asyncio.sleep(1.2)
    status, body = await api.call("GET", path, token=short["token"])
    assert status == 401
    assert body["message"].startswith("token expired at ")

    events = (await api.ok("GET", "/api/v1/orgs/acme/audit", token=org_token))["events"]
    actions = [e["action"] for e in reversed(events)]
    assert actions.count("token.issue") == 3
    assert actions.count("token.revoke") == 1
    failures = [e["detail"]["reason"] for e in reversed(events) if e["action"] == "auth.failure"]
    assert failures[0] == "invalid token"
    assert "token has been revoked" in failures
    assert any(f.startswith("token expired") for f in failures)
    assert all(team["token"] not in str(e) for e in events)


async def test_a_token_of_another_org_is_refused(api: Api) -> None:
    acme = await api.create_org("acme")
    globex = await api.create_org("globex")
    await api.create_node("globex", "billing", "globex", "team", globex)
    globex_team = await api.team_token("globex", "billing", globex)
    for token in (acme, globex_team):
        status, body = await api.call("GET", "/api/v1/orgs/globex/nodes/billing/config", token=token)
        if token == globex_team:
            assert status == 200
        else:
            assert status == 403
            assert "globex" in body["message"]


async def test_team_tokens_are_only_issued_for_teams_and_revoked_in_their_own_org(api: Api) -> None:
    acme = await api.create_org("acme")
    globex = await api.create_org("globex")
    await api.create_node("acme", "platform", "acme", "unit", acme)
    status, body = await api.call("POST", "/api/v1/orgs/acme/nodes/platform/tokens", token=acme, json={})
    assert status == 400
    assert "unit" in body["message"]
    second_admin = await api.ok(
        "POST", "/api/v1/orgs/acme/tokens", token=acme, json={"label": "rotation"}, expect=201
    )
    status, _ = await api.call(
        "DELETE", f"/api/v1/orgs/globex/tokens/{second_admin['token_id']}", token=globex
    )
    assert status == 404
    await api.ok("DELETE", f"/api/v1/orgs/acme/tokens/{second_admin['token_id']}", token=acme)
    status, _ = await api.call("GET", "/api/v1/orgs/acme/audit", token=second_admin["token"])
    assert status == 401
    listed = (await api.ok("GET", "/api/v1/orgs/acme/tokens", token=acme))["tokens"]
    assert {t["token_id"] for t in listed} >= {second_admin["token_id"]}
    assert all("token" not in t for t in listed)
