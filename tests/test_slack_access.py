"""Slack roles: org admins (ids or a user group), team members, approvers, workspace admins."""

from __future__ import annotations

from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.config.permissions import Principal
from incidentfox.handlers.slack.access import Refusal, SlackAccess, SlackUser
from tests.slack_world import ADMIN, World, world

CAROL, DAVE, ERIN = "U0CAROL", "U0DAVE", "U0ERIN"


async def _access(w: World) -> SlackAccess:
    assert w.fox.runtime is not None
    config = w.fox.runtime.config
    await config.write_config(
        ADMIN,
        "acme",
        "acme",
        {"slack": {"workspace_ids": [w.slack.team_id], "admin_usergroup_id": "S0ADMINS"}},
        operation="patch",
    )
    await config.write_config(
        ADMIN,
        "acme",
        "checkout",
        {"slack": {"member_user_ids": [DAVE]}, "approvals": {"approver_user_ids": [ERIN]}},
        operation="patch",
    )
    w.slack.add_usergroup("S0ADMINS", [CAROL])
    return SlackAccess(config, AsyncWebClient(token=w.slack.bot_token, base_url=w.slack.api_url))


async def test_org_admins_come_from_a_user_group_and_may_edit_any_team(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        access = await _access(w)
        assert await access.org_of(w.slack.team_id) == "acme"
        assert await access.is_org_admin("acme", CAROL)
        assert not await access.is_org_admin("acme", DAVE)
        editor = await access.editor("acme", "checkout", SlackUser(w.slack.team_id, CAROL))
        assert editor == Principal(
            kind="org_admin", org_id="acme", slack_actor=f"slack:{w.slack.team_id}:{CAROL}"
        )
        assert await access.teams_of("acme", CAROL) == ["checkout"]


async def test_team_members_edit_only_when_the_org_allows_it(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        access = await _access(w)
        dave = SlackUser(w.slack.team_id, DAVE)
        refused = await access.editor("acme", "checkout", dave)
        assert isinstance(refused, Refusal) and "team members may not edit" in refused.message
        assert w.fox.runtime is not None
        await w.fox.runtime.config.write_config(
            ADMIN, "acme", "acme", {"access": {"team_members_can_edit": True}}, operation="patch"
        )
        member = await access.editor("acme", "checkout", dave)
        assert isinstance(member, Principal) and member.kind == "team" and member.team_node_id == "checkout"
        written = await w.fox.runtime.config.write_config(
            member,
            "acme",
            "checkout",
            {"integrations": {"kubernetes": {"namespace": "payments"}}},
            operation="patch",
        )
        assert written["config"]["integrations"]["kubernetes"]["namespace"] == "payments"
        history = await w.fox.runtime.config.history(ADMIN, "acme", "checkout")
        assert history[0]["actor"] == f"slack:{w.slack.team_id}:{DAVE}"
        outsider = await access.editor("acme", "checkout", SlackUser(w.slack.team_id, ERIN))
        assert isinstance(outsider, Refusal) and "a member of team *checkout*" in outsider.message


async def test_approvers_self_approval_and_who_to_ask(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        access = await _access(w)
        assert await access.approval_refusal("acme", "checkout", ERIN, requester=DAVE) is None
        assert await access.approval_refusal("acme", "checkout", CAROL, requester=DAVE) is None
        own = await access.approval_refusal("acme", "checkout", ERIN, requester=ERIN)
        assert own is not None and "someone else has to approve" in own.message
        nobody = await access.approval_refusal("acme", "checkout", DAVE, requester=ERIN)
        assert nobody is not None and f"<@{ERIN}>" in nobody.message
        assert w.fox.runtime is not None
        await w.fox.runtime.config.write_config(
            ADMIN, "acme", "checkout", {"approvals": {"allow_self_approval": True}}, operation="patch"
        )
        assert await access.approval_refusal("acme", "checkout", ERIN, requester=ERIN) is None


async def test_a_failed_slack_lookup_is_not_cached(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        access = await _access(w)
        w.slack.add_user("U0OWNER", is_owner=True)
        owner = SlackUser(w.slack.team_id, "U0OWNER")
        w.slack.fail_next("users.info", status=200, error="fatal_error")
        assert not await access.is_workspace_admin(owner)
        assert await access.is_workspace_admin(owner)
        assert await access.is_workspace_admin(owner)
        assert len(w.slack.calls("users.info")) == 2
