"""Slack channels and DMs may be claimed only by the org that owns their workspace (design §6).

Without this, any org could claim any unclaimed channel id and then receive the questions asked
there. The installation talks to one Slack workspace (its bot token's), so a channel or DM claim is
checked against the org that claims that workspace (``slack.workspace_ids``), read in the same
transaction as the claim. Workspace claims themselves carry proof only when they come from the
global admin or from ``/incidentfox setup`` by a Slack workspace admin, so only those may add them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.config.models import RoutingClaim
from incidentfox.config.permissions import Principal
from incidentfox.config.routing import SLACK_CHANNEL, SLACK_WORKSPACE, Claim
from incidentfox.errors import Forbidden, Unavailable

log = logging.getLogger(__name__)
WorkspaceOfInstallation = Callable[[], Awaitable[str | None]]


def require_may_claim_workspaces(principal: Principal, added: set[Claim]) -> None:
    """Only the global admin, or a Slack workspace admin through ``/incidentfox setup``, may add one."""
    if not any(kind == SLACK_WORKSPACE for kind, _ in added):
        return
    if principal.kind == "admin" or principal.slack_actor:
        return
    raise Forbidden(
        "an org cannot claim a Slack workspace through the API: a Slack workspace admin connects it "
        "by running /incidentfox setup, or the installation admin adds it to slack.workspace_ids"
    )


class SlackClaimPolicy:
    """Checks new channel and DM claims against the owner of the installation's workspace."""

    def __init__(self, workspace_of_installation: WorkspaceOfInstallation) -> None:
        self._workspace_of_installation = workspace_of_installation

    async def check(self, session: AsyncSession, org_id: str, added: set[Claim]) -> None:
        if not any(kind == SLACK_CHANNEL for kind, _ in added):
            return
        workspace = await self._workspace_of_installation()
        if workspace is None:
            raise Unavailable(
                "Slack could not be asked which workspace this installation serves, so the channel "
                "claim cannot be checked; try again in a minute"
            )
        owner = await session.scalar(
            select(RoutingClaim.org_id).where(
                RoutingClaim.kind == SLACK_WORKSPACE, RoutingClaim.identifier == workspace
            )
        )
        if owner != org_id:
            raise Forbidden(
                f"Slack channels of workspace {workspace} can be claimed only by the org that owns that "
                "workspace; a Slack workspace admin connects it with /incidentfox setup, or the "
                "installation admin adds it to the org's slack.workspace_ids"
            )


def cached_workspace_of(auth_test: Callable[[], Awaitable[Any]]) -> WorkspaceOfInstallation:
    """The bot token's workspace (``auth.test`` ``team_id``), asked once; a failure is not cached."""
    known: list[str] = []

    async def workspace() -> str | None:
        if known:
            return known[0]
        try:
            answer = await auth_test()
        except Exception as exc:
            log.warning("auth.test failed while checking a channel claim error=%s", type(exc).__name__)
            return None
        team = answer.get("team_id")
        if isinstance(team, str) and team:
            known.append(team)
            return team
        return None

    return workspace
