"""The Edit modals of the App Home: one part of a team's own config (``config_forms`` sections).

``private_metadata`` carries the org, team, section and the Home page to return to. It is only a
hint: the submission handler checks again that the team belongs to the submitter's org and that
they may edit it, so a forged metadata string gains nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import PlainTextObject
from slack_sdk.models.views import View

from incidentfox.blocks.components import Block, context, section
from incidentfox.blocks.config_forms import SECTIONS, fields_of, section_blocks
from incidentfox.blocks.config_summary import EDIT_SECTIONS
from incidentfox.blocks.limits import (
    MODAL_TITLE_MAX,
    PRIVATE_METADATA_MAX,
    fit_view,
    mrkdwn,
    one_line,
    truncate,
)
from incidentfox.config.ids import NODE_ID_PATTERN

EDIT_CALLBACK_ID = "team_config_edit"
_LABELS = dict(EDIT_SECTIONS)
_HINTS = {
    "kubernetes": "Either the API URL with a token, or (org admins) the contents of a kubeconfig file.",
    "github": "Used to read the repos this team claims and to comment on their failed CI runs.",
    "pagerduty": "Used to read incidents of the services this team claims and to add RCA notes.",
    "model": "The model that investigates for this team. Empty fields inherit the org's setting.",
    "routing": "Channels, repos and services route to one team each; one held elsewhere is refused.",
    "members": "Members see the team on their Home; approvers may approve write actions.",
}


@dataclass(frozen=True, slots=True)
class EditTarget:
    """Which part of which team a modal edits, and the Home page to re-publish afterwards."""

    org_id: str
    team_id: str
    section: str
    page: int = 0


def edit_metadata(target: EditTarget) -> str:
    data = {"org": target.org_id, "team": target.team_id, "section": target.section, "page": target.page}
    return json.dumps(data, separators=(",", ":"))


def parse_edit_metadata(private_metadata: str | None) -> EditTarget | None:
    """The target of a submitted modal; ``None`` for anything malformed."""
    try:
        data = json.loads(private_metadata or "")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    org, team, part, page = data.get("org"), data.get("team"), data.get("section"), data.get("page", 0)
    if not (isinstance(org, str) and NODE_ID_PATTERN.fullmatch(org)):
        return None
    if not (isinstance(team, str) and NODE_ID_PATTERN.fullmatch(team)) or part not in SECTIONS:
        return None
    return EditTarget(org, team, str(part), page if isinstance(page, int) and page >= 0 else 0)


def section_label(part: str) -> str:
    return _LABELS.get(part, part.title())


def _title(text: str) -> PlainTextObject:
    return PlainTextObject(text=truncate(one_line(text), MODAL_TITLE_MAX), emoji=True)


def render_edit_modal(
    target: EditTarget, *, team_name: str, current: Mapping[str, Any], org_admin: bool
) -> dict[str, Any]:
    """The form for ``target.section``, prefilled from the team's own config (``current``, redacted)."""
    notes = [f"Team *{mrkdwn(team_name, 100)}* · {mrkdwn(_HINTS.get(target.section, ''), 300)}"]
    if any(field.secret for field in fields_of(target.section)):
        notes.append("Secrets are never shown: leave a secret empty to keep it.")
    notes.append("An emptied field inherits the org's value again.")
    blocks: list[Block] = [
        context(*notes),
        *section_blocks(target.section, current, org_admin=org_admin),
    ]
    view = View(
        type="modal",
        callback_id=EDIT_CALLBACK_ID,
        title=_title(f"Edit {section_label(target.section)}"),
        submit=_title("Save"),
        close=_title("Cancel"),
        private_metadata=edit_metadata(target)[:PRIVATE_METADATA_MAX],
        blocks=fit_view(blocks),
    )
    return view.to_dict()


def render_edit_notice(title: str, text: str) -> dict[str, Any]:
    """A modal with one message and a Close button: a refusal, or a team that is gone."""
    view = View(
        type="modal",
        callback_id=EDIT_CALLBACK_ID + "_notice",
        title=_title(title),
        close=_title("Close"),
        blocks=[section(text)],
    )
    return view.to_dict()


def first_input_block(view: Mapping[str, Any]) -> str | None:
    """The ``block_id`` of a modal's first input: where an error about the whole form is shown."""
    for block in view.get("blocks") or []:
        if isinstance(block, Mapping) and block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    return None
