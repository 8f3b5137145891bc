"""The setup modal of ``/incidentfox setup``: create a team for a channel, or join it to a team.

It opens as a loading view at once (the ``trigger_id`` lives 3 seconds) and is replaced by the form
when the org tree has been read. Its submission is parsed here into a ``SetupChoice`` plus the config
patches of the shared config forms; the flow in ``handlers/slack/setup.py`` validates and writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    InputBlock,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from incidentfox.blocks.components import Block, context, header, section
from incidentfox.blocks.config_forms import VALUE, section_blocks, submitted
from incidentfox.blocks.limits import PRIVATE_METADATA_MAX, fit_view, mrkdwn, one_line, truncate

SETUP_CALLBACK_ID = "team_setup_modal"
NEW_TEAM = "+new"
NEW_ORG_ROOT = "+org"
"""The parent option of a form that creates the org: its id is chosen when the form is saved."""
TEAM_BLOCK, NAME_BLOCK, ID_BLOCK, PARENT_BLOCK = "setup_team", "setup_name", "setup_id", "setup_parent"
SETUP_SECTIONS = ("routing", "kubernetes", "github", "pagerduty", "model")
_SECTION_TITLES = {
    "routing": "What this team owns",
    "kubernetes": "Kubernetes",
    "github": "GitHub",
    "pagerduty": "PagerDuty",
    "model": "Model",
}
_OPTIONS_MAX = 100
_OPTION_TEXT_MAX = 75
_TITLE = "IncidentFox setup"


@dataclass(frozen=True, slots=True)
class SetupForm:
    """What the form offers: the channel, the org (or the workspace it will create), teams, parents."""

    channel_id: str
    org_name: str
    claiming: bool
    """True when submitting creates the org for this workspace, with the submitter as its admin."""
    teams: Sequence[tuple[str, str]]
    """``(team_id, name)`` of the org's existing teams."""
    parents: Sequence[tuple[str, str]]
    """``(node_id, label)`` of the org root and its units."""
    org_admin: bool


@dataclass(frozen=True, slots=True)
class SetupChoice:
    """What the submitter chose: a new team (name, id, parent) or an existing team to join."""

    join_team: str | None
    name: str
    team_id: str
    parent_id: str


def _modal(
    blocks: list[Block], *, metadata: str, submit: str | None = None, title: str = _TITLE
) -> dict[str, Any]:
    view = View(
        type="modal",
        callback_id=SETUP_CALLBACK_ID,
        title=PlainTextObject(text=title),
        submit=PlainTextObject(text=submit) if submit else None,
        close=PlainTextObject(text="Close" if submit is None else "Cancel"),
        private_metadata=metadata[:PRIVATE_METADATA_MAX],
        blocks=fit_view(blocks),
    )
    return view.to_dict()


def metadata_for(channel_id: str) -> str:
    return json.dumps({"channel": channel_id})


def channel_of(view: Mapping[str, Any]) -> str:
    """The channel a setup modal was opened for (from its private_metadata), ``""`` when unreadable."""
    try:
        loaded = json.loads(str(view.get("private_metadata") or "{}"))
    except ValueError:
        return ""
    channel = loaded.get("channel") if isinstance(loaded, dict) else None
    return channel if isinstance(channel, str) and re.fullmatch(r"[CDG][A-Z0-9]{2,30}", channel) else ""


def render_loading(channel_id: str) -> dict[str, Any]:
    """Opened at once, inside the trigger_id's 3 seconds; replaced with ``views.update``."""
    return _modal([section("⏳ Reading your org's teams…")], metadata=metadata_for(channel_id))


def render_notice(channel_id: str, text: str) -> dict[str, Any]:
    """A form-less modal: a refusal, or an apology when Slack or the database failed."""
    return _modal([section(text)], metadata=metadata_for(channel_id))


def _option(value: str, label: str) -> Option:
    return Option(value=value, text=PlainTextObject(text=truncate(one_line(label), _OPTION_TEXT_MAX)))


def _select(block_id: str, label: str, options: list[Option], hint: str) -> Block:
    element = StaticSelectElement(action_id=VALUE, options=options[:_OPTIONS_MAX], initial_option=options[0])
    return InputBlock(
        block_id=block_id, label=PlainTextObject(text=label), element=element, hint=PlainTextObject(text=hint)
    ).to_dict()


def _text(block_id: str, label: str, *, placeholder: str, hint: str) -> Block:
    element = PlainTextInputElement(
        action_id=VALUE, placeholder=PlainTextObject(text=placeholder), max_length=200
    )
    return InputBlock(
        block_id=block_id,
        label=PlainTextObject(text=label),
        element=element,
        hint=PlainTextObject(text=hint),
        optional=True,
    ).to_dict()


def render_setup_form(form: SetupForm) -> dict[str, Any]:
    """The form: team (new or existing), name, id, parent unit, then what the team owns and uses."""
    intro = (
        f"Sets up IncidentFox for <#{form.channel_id}>. "
        "Secrets you type are stored encrypted and never shown again."
    )
    blocks: list[Block] = [section(intro)]
    if form.claiming:
        blocks.append(
            section(
                f"This Slack workspace is not connected to IncidentFox yet. Submitting creates the org "
                f"*{mrkdwn(form.org_name, 100)}* for it, with you as its admin."
            )
        )
    team_options = [_option(NEW_TEAM, "➕ Create a new team")]
    team_options += [_option(team_id, f"Join {name} ({team_id})") for team_id, name in form.teams]
    blocks.append(
        _select(TEAM_BLOCK, "Team", team_options, "Join an existing team to add this channel to its claims.")
    )
    blocks.append(
        _text(NAME_BLOCK, "New team name", placeholder="Checkout SRE", hint="Needed for a new team.")
    )
    blocks.append(
        _text(
            ID_BLOCK,
            "New team id",
            placeholder="checkout-sre",
            hint="Lowercase letters, digits and dashes; made from the name when empty.",
        )
    )
    parents = [_option(node_id, label) for node_id, label in form.parents]
    blocks.append(
        _select(PARENT_BLOCK, "Parent unit", parents, "Where the new team inherits its config from.")
    )
    blocks.append(
        context("Joining a team: fields you fill replace that team's values; empty ones keep them.")
    )
    current = {"routing": {"slack_channel_ids": [form.channel_id]}}
    for name in SETUP_SECTIONS:
        blocks.append(header(_SECTION_TITLES[name]))
        blocks.extend(section_blocks(name, current, org_admin=form.org_admin))
    return _modal(blocks, metadata=metadata_for(form.channel_id), submit="Save")


def render_done(*, team_name: str, channel_id: str, created: bool, org_created: str | None) -> dict[str, Any]:
    """Shown in place of the form after a successful submission: what happened and what to do next."""
    lines = []
    if org_created:
        lines.append(
            f"✅ Connected this workspace to IncidentFox as org *{mrkdwn(org_created, 100)}*; "
            "you are its admin."
        )
    verb = "Created team" if created else "Joined"
    lines.append(f"✅ {verb} *{mrkdwn(team_name, 100)}*; it now answers in <#{channel_id}>.")
    lines.append(
        "Next: mention @IncidentFox in that channel with a question, e.g. _why is checkout crashlooping?_ "
        "Open the IncidentFox App Home to see the team's config, integration health and runs."
    )
    return _modal([section("\n".join(lines))], metadata=metadata_for(channel_id), title="Team ready")


def parse_choice(values: Mapping[str, Any]) -> SetupChoice:
    """The team part of a submission (validation of names and ids is the flow's job)."""

    def picked(block_id: str) -> str:
        option = submitted(values, block_id).get("selected_option")
        return str(option.get("value") or "") if isinstance(option, Mapping) else ""

    def typed(block_id: str) -> str:
        return str(submitted(values, block_id).get("value") or "").strip()

    team = picked(TEAM_BLOCK)
    return SetupChoice(
        join_team=team if team and team != NEW_TEAM else None,
        name=typed(NAME_BLOCK),
        team_id=typed(ID_BLOCK),
        parent_id="" if picked(PARENT_BLOCK) == NEW_ORG_ROOT else picked(PARENT_BLOCK),
    )
