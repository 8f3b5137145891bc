"""Who may declare MCP servers: stdio commands (run on the IncidentFox host) only org admins; an HTTP
server of its own any editor of the team's config, but never by repointing a server the org declared."""

from __future__ import annotations

from typing import Any

import pytest

from incidentfox.bot.runtime import Runtime
from incidentfox.config.permissions import Principal
from incidentfox.errors import Forbidden
from tests.conftest import Api

TEAM_CONFIG = "/api/v1/orgs/acme/nodes/checkout/config"
ORG_CONFIG = "/api/v1/orgs/acme/nodes/acme/config"
GRAFANA_KEY = "glsa_0123456789"
STDIO = {"command": "npx", "args": ["-y", "@grafana/mcp"], "env": {"GRAFANA_API_KEY": GRAFANA_KEY}}


async def _tokens(api: Api) -> tuple[str, str]:
    """acme's org admin token and checkout's team token, with team tokens allowed to PATCH."""
    admin = await api.create_org("acme")
    await api.create_node("acme", "checkout", "acme", "team", admin)
    team = await api.team_token("acme", "checkout", admin)
    await api.ok("PATCH", ORG_CONFIG, token=admin, json={"access": {"team_tokens_can_patch": True}})
    return admin, team


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"mcp_servers": {"shell": {"command": "sh"}}}, "mcp_servers.shell.command"),
        ({"mcp_servers": {"shell": {"args": ["-c", "id"]}}}, "mcp_servers.shell.args"),
        (
            {"mcp_servers": {"shell": {"env": {"LD_PRELOAD": "/tmp/x.so"}}}},
            "mcp_servers.shell.env.LD_PRELOAD",
        ),
    ],
)
async def test_a_team_token_cannot_set_a_stdio_server(api: Api, patch: dict[str, Any], key: str) -> None:
    _, team = await _tokens(api)
    status, body = await api.call("PATCH", TEAM_CONFIG, token=team, json=patch)
    assert status == 403
    assert body["message"] == (
        f"a team token cannot set `{key}`: a stdio MCP server's command, args and env run on the "
        "IncidentFox host, so only an org admin may set them; a team can add a streamable-HTTP server "
        "instead (`mcp_servers.shell.url`)"
    )
    config = await api.ok("GET", TEAM_CONFIG, token=team)
    assert "mcp_servers" not in config["config"], "nothing was written"


async def test_an_org_admin_sets_a_stdio_server_and_a_team_attaches_it(api: Api) -> None:
    admin, team = await _tokens(api)
    await api.ok("PATCH", TEAM_CONFIG, token=admin, json={"mcp_servers": {"grafana": STDIO}})
    attach = {
        "agents": {"metrics": {"mcp_servers": ["grafana"]}},
        "mcp_servers": {"grafana": {"timeout_s": 20}},
    }
    written = await api.ok("PATCH", TEAM_CONFIG, token=team, json=attach)
    server: dict[str, Any] = written["config"]["mcp_servers"]["grafana"]
    assert server["command"] == "npx" and server["timeout_s"] == 20
    assert server["env"]["GRAFANA_API_KEY"] == "••••6789", (
        "a secret env value is stored encrypted, shown redacted"
    )


async def test_a_team_token_adds_its_own_http_server(api: Api) -> None:
    _, team = await _tokens(api)
    own = {"url": "https://mcp.checkout.example/mcp", "headers": {"Authorization": "Bearer team-own-token"}}
    written = await api.ok("PATCH", TEAM_CONFIG, token=team, json={"mcp_servers": {"tracker": own}})
    assert written["config"]["mcp_servers"]["tracker"]["url"] == own["url"]
    moved = {**own, "url": "https://mcp2.checkout.example/mcp"}
    status, _ = await api.call("PATCH", TEAM_CONFIG, token=team, json={"mcp_servers": {"tracker": moved}})
    assert status == 403, "an existing server is not repointed in place"
    await api.ok("PATCH", TEAM_CONFIG, token=team, json={"mcp_servers": {"tracker": None}})
    again = await api.ok("PATCH", TEAM_CONFIG, token=team, json={"mcp_servers": {"tracker": moved}})
    assert again["config"]["mcp_servers"]["tracker"]["url"] == moved["url"], "removed and added again"


async def test_a_team_cannot_repoint_a_server_an_org_admin_put_in_its_own_config(api: Api) -> None:
    admin, team = await _tokens(api)
    server = {"url": "https://grafana.internal/mcp", "headers": {"Authorization": "Bearer org-set-1234"}}
    await api.ok("PATCH", TEAM_CONFIG, token=admin, json={"mcp_servers": {"grafana": server}})
    patch = {"mcp_servers": {"grafana": {"url": "https://attacker.example/mcp"}}}
    status, body = await api.call("PATCH", TEAM_CONFIG, token=team, json=patch)
    assert status == 403
    assert body["message"].startswith(
        "a team token cannot change `mcp_servers.grafana.url`: the MCP server grafana exists already"
    )


async def test_a_team_cannot_repoint_or_re_head_a_server_the_org_declared(api: Api) -> None:
    admin, team = await _tokens(api)
    org_server = {
        "url": "https://grafana.internal/mcp",
        "headers": {"Authorization": "Bearer org-token-1234"},
    }
    await api.ok("PATCH", ORG_CONFIG, token=admin, json={"mcp_servers": {"grafana": org_server}})
    for patch in (
        {"mcp_servers": {"grafana": {"url": "https://attacker.example/mcp"}}},
        {"mcp_servers": {"grafana": {"headers": {"X-Forward-To": "attacker"}}}},
    ):
        status, body = await api.call("PATCH", TEAM_CONFIG, token=team, json=patch)
        assert status == 403, patch
        assert "the MCP server grafana exists already" in body["message"]
    await api.ok("PATCH", TEAM_CONFIG, token=team, json={"mcp_servers": {"grafana": {"timeout_s": 5}}})
    await api.ok(
        "PATCH", TEAM_CONFIG, token=admin, json={"mcp_servers": {"grafana": {"url": "https://g2/mcp"}}}
    )


async def test_a_slack_team_member_is_held_to_the_same_rules(runtime: Runtime, api: Api) -> None:
    admin, _ = await _tokens(api)
    await api.ok("PATCH", ORG_CONFIG, token=admin, json={"access": {"team_members_can_edit": True}})
    member = Principal(kind="team", org_id="acme", team_node_id="checkout", slack_actor="slack:T1:U0BOB")
    slack_admin = Principal(kind="org_admin", org_id="acme", slack_actor="slack:T1:U0ADMIN")
    with pytest.raises(Forbidden, match=r"a team member cannot set `mcp_servers\.shell\.command`"):
        await runtime.config.write_config(
            member, "acme", "checkout", {"mcp_servers": {"shell": {"command": "sh"}}}, operation="patch"
        )
    own = {"mcp_servers": {"tracker": {"url": "https://mcp.checkout.example/mcp"}}}
    await runtime.config.write_config(member, "acme", "checkout", own, operation="patch")
    await runtime.config.write_config(
        slack_admin, "acme", "checkout", {"mcp_servers": {"grafana": STDIO}}, operation="patch"
    )
    config = await runtime.config.effective_config("acme", "checkout")
    assert sorted(config["mcp_servers"]) == ["grafana", "tracker"]
