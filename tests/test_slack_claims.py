"""Slack channels belong to the org that owns their workspace; workspace claims need proof."""

from __future__ import annotations

from pathlib import Path

import pytest

from incidentfox.config.permissions import Principal
from incidentfox.errors import Forbidden
from tests.slack_world import ADMIN, World, world


async def _rival(w: World) -> None:
    assert w.fox.runtime is not None
    config = w.fox.runtime.config
    async with config.sessions.begin() as session:
        await config.create_org(session, org_id="rival", name="Rival", actor="test")
    await config.create_node(ADMIN, "rival", {"node_id": "ops", "parent_id": "rival", "kind": "team"})


async def test_an_org_cannot_claim_channels_of_a_workspace_it_does_not_own(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await _rival(w)
        assert w.fox.runtime is not None
        config = w.fox.runtime.config
        claim = {"routing": {"slack_channel_ids": ["C0RIVAL", "D0DIRECT"]}}
        with pytest.raises(Forbidden, match="only by the org that owns that workspace"):
            await config.write_config(ADMIN, "rival", "ops", claim, operation="put")
        assert await config.routing.lookup_one("slack_channel", "C0RIVAL") is None
        github_only = {"routing": {"github_repos": ["rival/api"]}}
        await config.write_config(ADMIN, "rival", "ops", github_only, operation="put")

        await config.write_config(ADMIN, "acme", "acme", {}, operation="put")
        await config.write_config(
            ADMIN, "rival", "rival", {"slack": {"workspace_ids": [w.slack.team_id]}}, operation="put"
        )
        await config.write_config(ADMIN, "rival", "ops", claim, operation="put")
        target = await config.routing.lookup_one("slack_channel", "C0RIVAL")
        assert target is not None and target.org_id == "rival"


async def test_only_the_global_admin_or_slack_setup_may_claim_a_workspace(tmp_path: Path) -> None:
    async with world(tmp_path, claim_workspace=False) as w:
        await _rival(w)
        assert w.fox.runtime is not None
        config = w.fox.runtime.config
        ownership = {"slack": {"workspace_ids": [w.slack.team_id]}}
        org_admin = Principal(kind="org_admin", org_id="rival", token_id="tok")
        with pytest.raises(Forbidden, match="cannot claim a Slack workspace through the API"):
            await config.write_config(org_admin, "rival", "rival", ownership, operation="patch")
        assert await config.routing.lookup_one("slack_workspace", w.slack.team_id) is None
        await config.write_config(
            org_admin, "rival", "rival", {"slack": {"admin_user_ids": ["U1"]}}, operation="patch"
        )
        await config.write_config(ADMIN, "rival", "rival", ownership, operation="patch")
        target = await config.routing.lookup_one("slack_workspace", w.slack.team_id)
        assert target is not None and target.org_id == "rival"
