"""Who a Slack user is to IncidentFox, resolved once per interaction (design §6 and §8).

- An org owns Slack workspaces (``slack.workspace_ids`` in its config, unique like routing claims).
- Org admins: org config ``slack.admin_user_ids`` and ``slack.admin_usergroup_id``. They may set up
  and edit any team of the org and approve any write action.
- Team members: team config ``slack.member_user_ids`` and ``slack.member_usergroup_id``. They may edit
  their team when the org's ``access.team_members_can_edit`` is true.
- Approvers: team config ``approvals.approver_user_ids`` / ``approvals.approver_usergroup_id``, plus the
  org admins.

Every refusal says which role is needed and who has it, so the user knows whom to ask.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.config.permissions import Principal
from incidentfox.config.routing import SLACK_CHANNEL, SLACK_WORKSPACE
from incidentfox.config.service import ConfigService

log = logging.getLogger(__name__)
_MAX_NAMED = 5
RUN_OF_ANOTHER_ORG = (
    "That investigation belongs to another IncidentFox org, so you can't act on it from here."
)
RUN_OF_ANOTHER_CHANNEL = "That button doesn't belong to an investigation of this channel."


@dataclass(frozen=True, slots=True)
class SlackUser:
    """A person acting from Slack: their workspace (``T…``) and user id (``U…``)."""

    workspace_id: str
    user_id: str

    @property
    def actor(self) -> str:
        """How history and audit record this person."""
        return f"slack:{self.workspace_id}:{self.user_id}"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> SlackUser:
        """From a slash command (``team_id``/``user_id``) or an interactive payload (``team``/``user``)."""
        team = body.get("team")
        user = body.get("user")
        workspace = team.get("id") if isinstance(team, Mapping) else body.get("team_id")
        user_id = user.get("id") if isinstance(user, Mapping) else body.get("user_id") or user
        return cls(workspace_id=str(workspace or ""), user_id=str(user_id or ""))


@dataclass(frozen=True, slots=True)
class Refusal:
    """A polite, specific "no": ``message`` names the role needed and who has it."""

    message: str


def mention_list(user_ids: list[str]) -> str:
    """``<@U1>, <@U2>`` (at most five, then "and N more"); "nobody yet" for an empty list."""
    if not user_ids:
        return "nobody yet"
    named = ", ".join(f"<@{user}>" for user in user_ids[:_MAX_NAMED])
    more = len(user_ids) - _MAX_NAMED
    return f"{named} and {more} more" if more > 0 else named


def _ids(section: Any, key: str) -> list[str]:
    values = section.get(key) if isinstance(section, Mapping) else None
    return [str(v) for v in values if isinstance(v, str)] if isinstance(values, list) else []


def _group(section: Any, key: str) -> str | None:
    value = section.get(key) if isinstance(section, Mapping) else None
    return value if isinstance(value, str) and value else None


class SlackAccess:
    """Answers "who is this user to IncidentFox?" from the config tree and the Slack directory.

    Slack lookups (``users.info``, ``usergroups.users.list``) are cached for ``ttl_s`` seconds: a user
    opening App Home twice should not cost four API calls, and a role change shows within a minute.
    """

    def __init__(self, config: ConfigService, client: AsyncWebClient, *, ttl_s: float = 60.0) -> None:
        self._config = config
        self._client = client
        self._ttl_s = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}

    # -- ownership ------------------------------------------------------------------------------------

    async def org_of(self, workspace_id: str) -> str | None:
        """The org that claims this Slack workspace, if any."""
        if not workspace_id:
            return None
        target = await self._config.routing.lookup_one(SLACK_WORKSPACE, workspace_id)
        return target.org_id if target else None

    async def team_of_channel(self, channel_id: str) -> tuple[str, str] | None:
        """``(org_id, team_id)`` of the team that claims this channel, if any."""
        target = await self._config.routing.lookup_one(SLACK_CHANNEL, channel_id)
        return (target.org_id, target.team_node_id) if target else None

    # -- roles ----------------------------------------------------------------------------------------

    async def is_workspace_admin(self, user: SlackUser) -> bool:
        """A Slack workspace admin or owner (``users.info``); ``False`` when Slack cannot say."""
        profile = await self._cached("user", user.user_id, self._user_info)
        return bool(profile) and bool(
            profile.get("is_admin") or profile.get("is_owner") or profile.get("is_primary_owner")
        )

    async def org_admins(self, org_id: str) -> list[str]:
        """The org's Slack admins named in its config (without user-group members)."""
        org = await self._config.effective_config_shared(org_id, org_id)
        return _ids(org.get("slack"), "admin_user_ids")

    async def is_org_admin(self, org_id: str, user_id: str) -> bool:
        org = await self._config.effective_config_shared(org_id, org_id)
        return await self._listed(org.get("slack"), "admin_user_ids", "admin_usergroup_id", user_id)

    async def is_team_member(self, org_id: str, team_id: str, user_id: str) -> bool:
        team = await self._config.effective_config_shared(org_id, team_id)
        return await self._listed(team.get("slack"), "member_user_ids", "member_usergroup_id", user_id)

    async def teams_of(self, org_id: str, user_id: str) -> list[str]:
        """Team ids of the org that list this user as a member (every team for an org admin)."""
        admin = await self.is_org_admin(org_id, user_id)
        teams: list[str] = []
        for node in await self._config.list_nodes(Principal(kind="admin"), org_id):
            if node["kind"] != "team":
                continue
            if admin or await self.is_team_member(org_id, node["node_id"], user_id):
                teams.append(node["node_id"])
        return teams

    # -- decisions ------------------------------------------------------------------------------------

    def admin_principal(self, org_id: str, user: SlackUser) -> Principal:
        """The config-service principal of an org admin acting from Slack."""
        return Principal(kind="org_admin", org_id=org_id, slack_actor=user.actor)

    async def editor(self, org_id: str, team_id: str, user: SlackUser) -> Principal | Refusal:
        """The principal to write ``team_id``'s config as, or why this user may not."""
        if await self.is_org_admin(org_id, user.user_id):
            return self.admin_principal(org_id, user)
        org = await self._config.effective_config_shared(org_id, org_id)
        access = org.get("access")
        members_can_edit = isinstance(access, Mapping) and access.get("team_members_can_edit") is True
        if members_can_edit and await self.is_team_member(org_id, team_id, user.user_id):
            return Principal(kind="team", org_id=org_id, team_node_id=team_id, slack_actor=user.actor)
        admins = mention_list(await self.org_admins(org_id))
        if members_can_edit:
            need = f"a member of team *{team_id}* or an IncidentFox admin of this org"
        else:
            need = "an IncidentFox admin of this org (team members may not edit in this org)"
        return Refusal(f"Only {need} can change team *{team_id}*. Org admins: {admins}.")

    async def org_admin_or_refusal(self, org_id: str, user: SlackUser, doing: str) -> Principal | Refusal:
        if await self.is_org_admin(org_id, user.user_id):
            return self.admin_principal(org_id, user)
        admins = mention_list(await self.org_admins(org_id))
        return Refusal(f"Only an IncidentFox admin of this org can {doing}. Org admins: {admins}.")

    async def approval_refusal(
        self, org_id: str, team_id: str, user_id: str, *, requester: str
    ) -> Refusal | None:
        """``None`` when ``user_id`` may approve a write action of a run of ``team_id``."""
        team = await self._config.effective_config_shared(org_id, team_id)
        approvals = team.get("approvals")
        self_ok = isinstance(approvals, Mapping) and approvals.get("allow_self_approval") is True
        if user_id == requester and not self_ok:
            return Refusal(
                "You asked for this investigation, so someone else has to approve its actions "
                "(this team does not allow self-approval)."
            )
        if await self.is_org_admin(org_id, user_id):
            return None
        if await self._listed(approvals, "approver_user_ids", "approver_usergroup_id", user_id):
            return None
        approvers = _ids(approvals, "approver_user_ids") + await self.org_admins(org_id)
        return Refusal(
            f"Only the approvers of team *{team_id}* or an org admin can approve this. "
            f"Who can: {mention_list(list(dict.fromkeys(approvers)))}."
        )

    async def run_refusal(
        self, user: SlackUser, *, run_org: str, run_channel: str | None, clicked_in: str | None
    ) -> Refusal | None:
        """``None`` when a button press may act on a run: the run belongs to the org that owns the
        presser's workspace, and the button sits in the run's own channel (a forged value cannot
        reach another team's run)."""
        owner = await self.org_of(user.workspace_id)
        if owner is not None and owner != run_org:
            return Refusal(RUN_OF_ANOTHER_ORG)
        if clicked_in and run_channel and clicked_in != run_channel:
            return Refusal(RUN_OF_ANOTHER_CHANNEL)
        return None

    async def run_control_refusal(
        self, user_id: str, *, org_id: str, team_id: str, requester: str, doing: str
    ) -> Refusal | None:
        """``None`` when ``user_id`` may press Interrupt, Resume or feedback on a run of ``team_id``:
        the person who asked, the team's members and org admins, or anyone when the team's
        ``access.run_buttons`` is ``anyone``."""
        team = await self._config.effective_config_shared(org_id, team_id)
        access = team.get("access")
        if isinstance(access, Mapping) and access.get("run_buttons") == "anyone":
            return None
        if user_id == requester or await self.is_team_member(org_id, team_id, user_id):
            return None
        if await self.is_org_admin(org_id, user_id):
            return None
        members = _ids(team.get("slack"), "member_user_ids")
        who = list(dict.fromkeys([requester, *members, *await self.org_admins(org_id)]))
        return Refusal(
            f"Only the person who asked, members of team *{team_id}* and org admins can {doing} "
            f"this investigation. Who can: {mention_list([u for u in who if u])}."
        )

    # -- Slack lookups ----------------------------------------------------------------------------------

    async def _listed(self, section: Any, users_key: str, group_key: str, user_id: str) -> bool:
        if user_id in _ids(section, users_key):
            return True
        group = _group(section, group_key)
        return group is not None and user_id in await self._cached("group", group, self._group_members)

    async def _cached(self, kind: str, key: str, load: Any) -> Any:
        hit = self._cache.get((kind, key))
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        value, ok = await load(key)
        if ok:
            self._cache[(kind, key)] = (now, value)
        return value

    async def _user_info(self, user_id: str) -> tuple[dict[str, Any], bool]:
        """The profile, and whether Slack answered (a failure is not cached: it denies only once)."""
        try:
            response = await self._client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning("users.info failed user=%s error=%s", user_id, exc.response.get("error"))
            return {}, False
        user = response.get("user")
        return (user if isinstance(user, dict) else {}), True

    async def _group_members(self, group_id: str) -> tuple[frozenset[str], bool]:
        try:
            response = await self._client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            log.warning("usergroups.users.list failed group=%s error=%s", group_id, exc.response.get("error"))
            return frozenset(), False
        users = response.get("users")
        return (frozenset(str(u) for u in users) if isinstance(users, list) else frozenset()), True
