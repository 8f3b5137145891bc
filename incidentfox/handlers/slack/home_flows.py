"""What the App Home's listeners do: publish the Home, open an Edit modal, save its submission.

Every interaction starts from the Slack user (workspace and user id) and re-derives what they may
see or change: the org is the one that claims their workspace, and a team in a button value or a
modal's metadata is only accepted when it belongs to that org and ``SlackAccess.editor`` allows the
change. Writes go through the config service as that user, so history and audit record
``slack:T…:U…``.

Publishing can take a few seconds (health checks, permalinks), so the listeners hand it to
``spawn``; ``drain`` waits for those tasks on shutdown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Coroutine, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.blocks.config_forms import SECTIONS, claim_conflict_errors, fields_of, parse_section
from incidentfox.blocks.config_summary import EDIT_ACTION_PREFIX, TeamOverview, parse_edit_value
from incidentfox.blocks.edit_modals import (
    EditTarget,
    first_input_block,
    parse_edit_metadata,
    render_edit_modal,
    render_edit_notice,
)
from incidentfox.blocks.home import (
    TEAMS_PER_PAGE,
    HomePage,
    clamp_page,
    page_count,
    page_of_metadata,
    render_home,
    render_home_notice,
)
from incidentfox.config.ids import NODE_ID_PATTERN
from incidentfox.config.permissions import Principal
from incidentfox.config.service import ConfigService
from incidentfox.errors import Conflict, UserFacingError
from incidentfox.handlers.background import BackgroundTasks
from incidentfox.handlers.slack.access import Refusal, SlackAccess, SlackUser
from incidentfox.handlers.slack.notices import SlackNotices
from incidentfox.handlers.slack.overview import TeamOverviews

log = logging.getLogger(__name__)
_ADMIN = Principal(kind="admin")
ERROR_TEXT_MAX = 300
STALE_BUTTON = "This button is out of date. Reopen the IncidentFox Home tab and try again."
OTHER_ORG = "That team belongs to another IncidentFox org, so it can't be changed from this workspace."
TEAM_GONE = "Team {team} no longer exists. Reopen the IncidentFox Home tab to see your teams."
SAVE_FAILED = "Sorry, I couldn't save that just now. Nothing was changed; press Save again in a moment."
OPEN_FAILED = "Sorry, Slack didn't let me open the editor ({error}). Press the Edit button again."
LOAD_FAILED = "Sorry, I couldn't load this team's config just now. Press the Edit button again in a moment."
HOME_FAILED = "Sorry, I couldn't load your teams just now. Reopen this tab in a moment to try again."
TEAM_UNAVAILABLE = "This team couldn't be shown just now. Reopen the tab in a moment to try again."
_IDENTIFIER_BLOCKS = {
    "slack channel": "routing_channels",
    "github repo": "routing_repos",
    "pagerduty service": "routing_services",
}
_CONFIG_PATH = re.compile(r"`([a-z0-9_.\-]+)`")


class HomeFlows:
    """The App Home's services; one instance per app."""

    def __init__(
        self,
        *,
        access: SlackAccess,
        config: ConfigService,
        overview: TeamOverviews,
        notices: SlackNotices,
    ) -> None:
        self._access = access
        self._config = config
        self._overview = overview
        self._notices = notices
        self._background = BackgroundTasks()

    # -- background work -------------------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self._background.spawn(coroutine)

    async def drain(self) -> None:
        await self._background.drain()

    # -- the Home tab ----------------------------------------------------------------------------------

    async def publish(
        self, client: AsyncWebClient, user: SlackUser, *, page: int = 0, notice: str | None = None
    ) -> None:
        """Build and publish the Home; if that fails, publish a short apology instead."""
        try:
            view = render_home(await self.home_page(user, page=page, notice=notice))
        except Exception as exc:
            log.error("home could not be built user=%s error=%s", user.actor, type(exc).__name__)
            view = render_home_notice(HOME_FAILED)
        if not await self._publish(client, user, view):
            await self._publish(client, user, render_home_notice(HOME_FAILED))

    async def _publish(self, client: AsyncWebClient, user: SlackUser, view: dict[str, Any]) -> bool:
        try:
            await client.views_publish(user_id=user.user_id, view=view)
        except SlackApiError as exc:
            log.warning("views.publish failed user=%s error=%s", user.actor, exc.response.get("error"))
            return False
        except Exception as exc:
            log.warning("views.publish failed user=%s error=%s", user.actor, type(exc).__name__)
            return False
        return True

    async def home_page(self, user: SlackUser, *, page: int = 0, notice: str | None = None) -> HomePage:
        """What this user's Home shows on ``page`` (clamped to the pages there are)."""
        org = await self._access.org_of(user.workspace_id)
        if org is None:
            can_claim = await self._access.is_workspace_admin(user)
            return HomePage(user_id=user.user_id, org_id=None, can_claim=can_claim, notice=notice)
        nodes = await self._overview.nodes(org)
        admin = await self._access.is_org_admin(org, user.user_id)
        teams = sorted((n for n in nodes.values() if n["kind"] == "team"), key=lambda n: n["path"])
        memberships = await asyncio.gather(*(self._is_member(org, n["node_id"], user) for n in teams))
        mine = [n["node_id"] for n, member in zip(teams, memberships, strict=True) if member]
        others = [n["node_id"] for n, member in zip(teams, memberships, strict=True) if admin and not member]
        listed = [*mine, *others]
        member_of = set(mine)
        page = clamp_page(page, len(listed))
        shown = listed[page * TEAMS_PER_PAGE : (page + 1) * TEAMS_PER_PAGE]
        overviews = await asyncio.gather(
            *(self._team(org, team, user, nodes, member=team in member_of) for team in shown)
        )
        return HomePage(
            user_id=user.user_id,
            org_id=org,
            org_name=str(nodes.get(org, {}).get("name") or org),
            org_admins=tuple(await self._access.org_admins(org)),
            is_org_admin=admin,
            teams=tuple(overviews),
            page=page,
            page_count=page_count(len(listed)),
            team_count=len(listed),
            notice=notice,
        )

    async def _is_member(self, org: str, team: str, user: SlackUser) -> bool:
        try:
            return await self._access.is_team_member(org, team, user.user_id)
        except Exception as exc:
            log.warning("membership unknown org=%s team=%s error=%s", org, team, type(exc).__name__)
            return False

    async def _team(
        self, org: str, team: str, user: SlackUser, nodes: Mapping[str, Any], *, member: bool
    ) -> TeamOverview:
        try:
            overview = await self._overview.overview(org, team, nodes=nodes)
        except Exception as exc:
            log.warning("team overview failed org=%s team=%s error=%s", org, team, type(exc).__name__)
            name = str((nodes.get(team) or {}).get("name") or team)
            return TeamOverview(org, team, name, path=(org, team), problem=TEAM_UNAVAILABLE, member=member)
        if overview.problem is not None:
            return dataclasses.replace(overview, member=member)
        try:
            editor = await self._access.editor(org, team, user)
        except Exception as exc:
            log.warning("edit rights unknown org=%s team=%s error=%s", org, team, type(exc).__name__)
            editor = Refusal("")
        if isinstance(editor, Refusal):
            return dataclasses.replace(overview, member=member, editable=False, edit_note=editor.message)
        return dataclasses.replace(overview, member=member, editable=True)

    # -- the Edit modals -------------------------------------------------------------------------------

    async def open_editor(
        self, client: AsyncWebClient, body: Mapping[str, Any], action: Mapping[str, Any]
    ) -> None:
        """Open the Edit modal a button asked for, or a modal saying why it can't be edited."""
        user = SlackUser.from_body(body)
        part = str(action.get("action_id") or "").removeprefix(EDIT_ACTION_PREFIX)
        ids = parse_edit_value(str(action.get("value") or ""))
        page = page_of_metadata((body.get("view") or {}).get("private_metadata"))
        if part not in SECTIONS or ids is None:
            view = render_edit_notice("Can't edit", STALE_BUTTON)
        else:
            try:
                view = await self._editor_view(user, EditTarget(ids[0], ids[1], part, page))
            except Exception as exc:
                log.error("edit modal could not be built user=%s error=%s", user.actor, type(exc).__name__)
                view = render_edit_notice("Can't edit", LOAD_FAILED)
        try:
            await client.views_open(trigger_id=body.get("trigger_id"), view=view)
        except Exception as exc:
            error = (
                str(exc.response.get("error") or "unknown error")
                if isinstance(exc, SlackApiError)
                else "no answer from Slack"
            )
            log.warning("edit modal could not open user=%s error=%s", user.actor, error)
            self._apologize(client, body, user, OPEN_FAILED.format(error=error), page)

    async def _editor_view(self, user: SlackUser, target: EditTarget) -> dict[str, Any]:
        checked = await self._check_target(user, target)
        if isinstance(checked, Refusal):
            return render_edit_notice("Can't edit", checked.message)
        principal, name = checked
        current = (await self._config.get_config(principal, target.org_id, target.team_id))["config"]
        org_admin = principal.kind == "org_admin"
        return render_edit_modal(target, team_name=name, current=current, org_admin=org_admin)

    async def _check_target(self, user: SlackUser, target: EditTarget) -> tuple[Principal, str] | Refusal:
        """The principal to write as and the team's name, or why this user can't edit that team."""
        valid = NODE_ID_PATTERN.fullmatch(target.org_id) and NODE_ID_PATTERN.fullmatch(target.team_id)
        if not valid:
            return Refusal(STALE_BUTTON)
        if await self._access.org_of(user.workspace_id) != target.org_id:
            return Refusal(OTHER_ORG)
        node = (await self._overview.nodes(target.org_id)).get(target.team_id)
        if node is None or node["kind"] != "team":
            return Refusal(TEAM_GONE.format(team=target.team_id))
        editor = await self._access.editor(target.org_id, target.team_id, user)
        if isinstance(editor, Refusal):
            return editor
        return editor, str(node["name"])

    def _apologize(
        self, client: AsyncWebClient, body: Mapping[str, Any], user: SlackUser, text: str, page: int
    ) -> None:
        """In the channel when the button was on a message, else as a notice on top of the Home."""
        if (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id"):
            self._notices.ephemeral_in(dict(body), text)
        else:
            self.spawn(self.publish(client, user, page=page, notice=text))

    async def submit_edit(
        self, client: AsyncWebClient, body: Mapping[str, Any], view: Mapping[str, Any]
    ) -> dict[str, str] | None:
        """Save a submitted Edit modal; field errors (by ``block_id``) to show in it, or ``None``."""
        anchor = first_input_block(view) or "value"
        target = parse_edit_metadata(view.get("private_metadata"))
        if target is None:
            return {anchor: STALE_BUTTON}
        user = SlackUser.from_body(body)
        try:
            problem = await self._save(user, target, view, anchor)
        except Exception as exc:
            log.error("edit could not be saved user=%s error=%s", user.actor, type(exc).__name__)
            problem = {anchor: SAVE_FAILED}
        if problem is None:
            self.spawn(self.publish(client, user, page=target.page))
        return problem

    async def _save(
        self, user: SlackUser, target: EditTarget, view: Mapping[str, Any], anchor: str
    ) -> dict[str, str] | None:
        checked = await self._check_target(user, target)
        if isinstance(checked, Refusal):
            return {anchor: _short(checked.message)}
        principal, _ = checked
        current = (await self._config.get_config(principal, target.org_id, target.team_id))["config"]
        values = (view.get("state") or {}).get("values") or {}
        org_admin = principal.kind == "org_admin"
        patch, errors = parse_section(target.section, values, current, org_admin=org_admin)
        if errors:
            return {block: _short(message) for block, message in errors.items()}
        return await self._write(principal, target, patch, anchor) if patch else None

    async def _write(
        self, principal: Principal, target: EditTarget, patch: dict[str, Any], anchor: str
    ) -> dict[str, str] | None:
        try:
            await self._config.write_config(
                principal, target.org_id, target.team_id, patch, operation="patch"
            )
        except Conflict as exc:
            return _conflict_errors(exc, anchor)
        except UserFacingError as exc:
            return {_field_of(exc, target.section, anchor): _short(exc.message)}
        except Exception as exc:
            log.error(
                "team config edit failed org=%s team=%s section=%s actor=%s error=%s",
                target.org_id,
                target.team_id,
                target.section,
                principal.actor,
                type(exc).__name__,
            )
            return {anchor: SAVE_FAILED}
        log.info(
            "team config edited from Slack org=%s team=%s section=%s actor=%s",
            target.org_id,
            target.team_id,
            target.section,
            principal.actor,
        )
        return None


def _short(text: str) -> str:
    return text if len(text) <= ERROR_TEXT_MAX else text[: ERROR_TEXT_MAX - 1].rstrip() + "…"


def _conflict_errors(exc: Conflict, anchor: str) -> dict[str, str]:
    """Each claim held by another team on the field that claims it; the holder is never named (the
    config service's message names only the identifiers)."""
    if exc.code != "routing_conflict":
        return {anchor: _short(exc.message)}
    fallback = "routing_channels" if anchor.startswith("routing") else anchor
    return claim_conflict_errors(exc.message, fallback=fallback, limit=ERROR_TEXT_MAX)


def _field_of(exc: UserFacingError, section: str, anchor: str) -> str:
    """The input an error is about: a config path named in the message, or a routing kind."""
    fields = fields_of(section)
    for path in _CONFIG_PATH.findall(exc.message):
        for field in fields:
            if ".".join(field.path) == path:
                return field.block_id
    lowered = exc.message.lower()
    for words, block in _IDENTIFIER_BLOCKS.items():
        if words in lowered and any(f.block_id == block for f in fields):
            return block
    return anchor
