"""``/incidentfox setup``: open the setup modal and turn its submission into config writes.

Opening: a loading view goes up at once (the ``trigger_id`` lives 3 seconds), then the form or a
refusal replaces it. Submitting: the choice and every field are validated, and a claim conflict, a
taken team id or a missing permission comes back as a field error inside the modal. Writes go through
the config service as the Slack user, so history and audit record ``slack:T…:U…``; a new team is
created together with its config in one transaction, so nothing is half-written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.blocks.config_forms import claim_conflict_errors, parse_section
from incidentfox.blocks.setup_modal import (
    ID_BLOCK,
    NAME_BLOCK,
    NEW_ORG_ROOT,
    PARENT_BLOCK,
    SETUP_SECTIONS,
    TEAM_BLOCK,
    SetupChoice,
    SetupForm,
    channel_of,
    parse_choice,
    render_done,
    render_loading,
    render_notice,
    render_setup_form,
)
from incidentfox.config.ids import NODE_ID_PATTERN
from incidentfox.config.merge import merge_patch
from incidentfox.config.permissions import Principal
from incidentfox.config.service import ConfigService
from incidentfox.errors import Conflict, UserFacingError
from incidentfox.handlers.slack.access import Refusal, SlackAccess, SlackUser

log = logging.getLogger(__name__)
_ADMIN = Principal(kind="admin")
NOT_CONNECTED = (
    "This Slack workspace isn't connected to IncidentFox yet. Only a Slack workspace admin or owner can "
    "connect it: ask one of them to run `/incidentfox setup` in a channel. They become the first "
    "IncidentFox admins and can then add you."
)
OTHER_ORG = (
    "This channel is already connected to a team of another IncidentFox org, so it can't be set up "
    "from this workspace. Ask whoever connected it to release it first."
)
OPEN_FAILED = (
    "Sorry, Slack didn't let me open the setup form ({error}). Run `/incidentfox setup` again; "
    "if it keeps failing, check the app's permissions."
)
SAVE_FAILED = "Sorry, I couldn't save that just now. Nothing was changed; press Save again in a moment."


@dataclass(frozen=True, slots=True)
class FieldErrors:
    """Answer the submission with ``response_action: errors``."""

    errors: dict[str, str]


@dataclass(frozen=True, slots=True)
class Saved:
    """Answer the submission with ``response_action: update`` to this view."""

    view: dict[str, Any]


def slug(name: str) -> str:
    """``"Checkout SRE!"`` → ``"checkout-sre"``: a valid node id made from a display name."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")
    return cleaned or "team"


class SetupFlow:
    def __init__(self, *, config: ConfigService, access: SlackAccess, client: AsyncWebClient) -> None:
        self._config = config
        self._access = access
        self._client = client

    # -- opening ------------------------------------------------------------------------------------

    async def open(self, body: Mapping[str, Any]) -> str | None:
        """Open the modal for the command's channel; a plain-words problem when Slack refused."""
        channel = str(body.get("channel_id") or "")
        try:
            opened = await self._client.views_open(
                trigger_id=body.get("trigger_id"), view=render_loading(channel)
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "unknown error")
            log.warning("setup modal could not open channel=%s error=%s", channel, error)
            return OPEN_FAILED.format(error=error)
        form = await self._form(SlackUser.from_body(body), channel)
        view = render_notice(channel, form.message) if isinstance(form, Refusal) else render_setup_form(form)
        try:
            await self._client.views_update(view_id=opened["view"]["id"], view=view)
        except SlackApiError as exc:
            log.warning(
                "setup modal could not update channel=%s error=%s", channel, exc.response.get("error")
            )
            return OPEN_FAILED.format(error=exc.response.get("error") or "unknown error")
        return None

    async def _form(self, user: SlackUser, channel: str) -> SetupForm | Refusal:
        org = await self._access.org_of(user.workspace_id)
        if org is None:
            if not await self._access.is_workspace_admin(user):
                return Refusal(NOT_CONNECTED)
            name = await self._workspace_name(user.workspace_id)
            return SetupForm(
                channel,
                name,
                True,
                teams=[],
                parents=[(NEW_ORG_ROOT, f"{name} (the new org)")],
                org_admin=True,
            )
        owner = await self._access.team_of_channel(channel)
        if owner is not None and owner[0] != org:
            return Refusal(OTHER_ORG)
        allowed = await self._access.org_admin_or_refusal(org, user, "set up teams")
        if isinstance(allowed, Refusal):
            return allowed
        if owner is not None:
            return Refusal(
                f"This channel already belongs to team *{owner[1]}*. Open the IncidentFox App Home to "
                "change its config, or mention @IncidentFox here to investigate."
            )
        nodes = await self._config.list_nodes(_ADMIN, org)
        org_name = next((n["name"] for n in nodes if n["kind"] == "org"), org)
        teams = [(n["node_id"], n["name"]) for n in nodes if n["kind"] == "team"]
        parents = [(org, f"{org_name} (the org)")] + [
            (n["node_id"], " / ".join(n["path"][1:])) for n in nodes if n["kind"] == "unit"
        ]
        return SetupForm(channel, org_name, False, teams=teams, parents=parents, org_admin=True)

    async def _workspace_name(self, workspace_id: str) -> str:
        try:
            response = await self._client.team_info(team=workspace_id)
            name = (response.get("team") or {}).get("name")
        except SlackApiError as exc:
            log.warning("team.info failed workspace=%s error=%s", workspace_id, exc.response.get("error"))
            name = None
        return str(name or workspace_id)

    # -- submitting ---------------------------------------------------------------------------------

    async def submit(self, body: Mapping[str, Any], view: Mapping[str, Any]) -> FieldErrors | Saved:
        user = SlackUser.from_body(body)
        channel = channel_of(view)
        values = (view.get("state") or {}).get("values") or {}
        choice = parse_choice(values)
        document, errors = self._document(values, channel)
        if choice.join_team is None:
            errors.update(_new_team_errors(choice))
        if errors:
            return FieldErrors(errors)
        try:
            return await self._save(user, channel, choice, document)
        except Conflict as exc:
            return FieldErrors(_conflict_errors(exc))
        except UserFacingError as exc:
            return FieldErrors({_field_of(exc): exc.message})
        except Exception as exc:
            log.error(
                "setup could not be saved channel=%s actor=%s error=%s",
                channel,
                user.actor,
                type(exc).__name__,
            )
            return FieldErrors({TEAM_BLOCK: SAVE_FAILED})

    def _document(self, values: Mapping[str, Any], channel: str) -> tuple[dict[str, Any], dict[str, str]]:
        document: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name in SETUP_SECTIONS:
            patch, problems = parse_section(name, values, {}, org_admin=True)
            document = merge_patch(document, patch)
            errors.update(problems)
        routing = document.setdefault("routing", {})
        channels = routing.get("slack_channel_ids") or []
        routing["slack_channel_ids"] = (
            channels if channel in channels or not channel else [channel, *channels]
        )
        return document, errors

    async def _save(
        self, user: SlackUser, channel: str, choice: SetupChoice, document: dict[str, Any]
    ) -> FieldErrors | Saved:
        org = await self._access.org_of(user.workspace_id)
        org_created: str | None = None
        if org is None:
            if not await self._access.is_workspace_admin(user):
                return FieldErrors({TEAM_BLOCK: NOT_CONNECTED})
            name = await self._workspace_name(user.workspace_id)
            org = await self._create_org(user, name)
            org_created = name
        principal = await self._access.org_admin_or_refusal(org, user, "set up teams")
        if isinstance(principal, Refusal):
            return FieldErrors({TEAM_BLOCK: principal.message})
        if choice.join_team is not None:
            team_name = await self._join(principal, org, choice.join_team, document)
            return Saved(
                render_done(team_name=team_name, channel_id=channel, created=False, org_created=None)
            )
        team_id = choice.team_id or slug(choice.name)
        document["slack"] = {"member_user_ids": [user.user_id]}
        body = {"node_id": team_id, "parent_id": choice.parent_id or org, "name": choice.name}
        await self._config.create_team_with_config(principal, org, body, document)
        log.info("team created from Slack org=%s team=%s actor=%s", org, team_id, user.actor)
        done = render_done(team_name=choice.name, channel_id=channel, created=True, org_created=org_created)
        return Saved(done)

    async def _create_org(self, user: SlackUser, name: str) -> str:
        base = slug(name)
        for org_id in (base, f"{base}-{user.workspace_id.lower()}"[:63]):
            try:
                await self._config.create_org_for_workspace(
                    org_id=org_id,
                    name=name,
                    workspace_id=user.workspace_id,
                    admin_user_id=user.user_id,
                    actor=user.actor,
                )
            except Conflict as exc:
                if exc.code == "routing_conflict":
                    raise Conflict(
                        "Someone connected this workspace to IncidentFox just now; "
                        "run `/incidentfox setup` again.",
                        code="workspace_claimed",
                    ) from exc
                continue
            log.info(
                "org created for Slack workspace org=%s workspace=%s actor=%s",
                org_id,
                user.workspace_id,
                user.actor,
            )
            return org_id
        raise Conflict(
            f"An IncidentFox org named {base!r} already exists; ask its admin to add this workspace."
        )

    async def _join(self, principal: Principal, org: str, team: str, document: dict[str, Any]) -> str:
        """Add the channel (and any filled fields) to an existing team; list claims are unioned."""
        current = (await self._config.get_config(principal, org, team))["config"]
        patch = _without_nulls(document)
        routing = patch.get("routing", {})
        held = current.get("routing") if isinstance(current.get("routing"), dict) else {}
        for key, wanted in list(routing.items()):
            existing = held.get(key)
            routing[key] = list(dict.fromkeys([*(existing if isinstance(existing, list) else []), *wanted]))
        await self._config.write_config(principal, org, team, patch, operation="patch")
        node = await self._config.get_node(principal, org, team)
        return str(node["name"])


def _without_nulls(document: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            value = _without_nulls(value)
        if value is not None and value != {}:
            cleaned[key] = value
    return cleaned


def _new_team_errors(choice: SetupChoice) -> dict[str, str]:
    if not choice.name:
        return {NAME_BLOCK: "Give the new team a name, or pick an existing team to join."}
    if len(choice.name) > 200:
        return {NAME_BLOCK: "Keep the name under 200 characters."}
    if choice.team_id and not NODE_ID_PATTERN.fullmatch(choice.team_id):
        return {
            ID_BLOCK: "Use lowercase letters, digits and dashes (at most 63), "
            "starting with a letter or digit."
        }
    return {}


def _conflict_errors(exc: Conflict) -> dict[str, str]:
    """A claim held elsewhere goes on the field that claims it (never naming the holder)."""
    if exc.code == "routing_conflict":
        return claim_conflict_errors(exc.message, fallback=TEAM_BLOCK)
    if "already exists" in exc.message:
        return {ID_BLOCK: "That team id is taken in this org; choose another."}
    return {TEAM_BLOCK: exc.message}


def _field_of(exc: UserFacingError) -> str:
    if exc.code in ("invalid_node_id", "invalid_id"):
        return ID_BLOCK
    if exc.code == "unknown_parent":
        return PARENT_BLOCK
    if exc.code == "invalid_routing":
        return "routing_repos"
    return TEAM_BLOCK
