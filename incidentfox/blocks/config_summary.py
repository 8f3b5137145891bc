"""A team's config at a glance: claims, effective config with sources, integration health, recent runs.

The same team blocks appear on the App Home (one group per team) and in the ephemeral answer to
``/incidentfox config`` (``render_config_summary``). The input is a ``TeamOverview``, gathered by
``handlers/slack/overview.py``; values arrive already redacted (``••••last4``), and every value set
above the team shows where it comes from ("from org acme"), because that is where to change it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from incidentfox.agents.toolsets.health import HealthLine
from incidentfox.blocks.command_replies import RunLine, run_line
from incidentfox.blocks.components import (
    Block,
    actions,
    button,
    code,
    context,
    header,
    packed_sections,
    section,
)
from incidentfox.blocks.limits import FALLBACK_TEXT_MAX, fit_message, mrkdwn, one_line, truncate
from incidentfox.blocks.schedules import ScheduleLine, schedule_blocks

NodeKind = Literal["org", "unit", "team"]
EDIT_ACTION_PREFIX = "team_edit_"
"""``action_id`` of an Edit button is this prefix plus the form section (``team_edit_routing``)."""
EDIT_BLOCK_PREFIX = "team_edit:"
EDIT_SECTIONS: tuple[tuple[str, str], ...] = (
    ("kubernetes", "Kubernetes"),
    ("github", "GitHub"),
    ("pagerduty", "PagerDuty"),
    ("model", "Model"),
    ("routing", "Routing"),
    ("members", "Members"),
)
"""The Edit buttons, in order: ``config_forms.SECTIONS`` with their labels."""
HIDDEN_PREFIXES: tuple[tuple[str, ...], ...] = (("routing",), ("schedules",))
"""Config shown elsewhere in the summary (claims have their own line, schedules their own part)."""

VALUE_MAX = 200
LIST_ITEMS_MAX = 10
HEALTH_DETAIL_MAX = 400
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,30}")
_HEALTH_ICON = {"ok": "✅", "failing": "❌", "unchecked": "⚪", "off": "⏸️"}


@dataclass(frozen=True, slots=True)
class ConfigLine:
    """One leaf of a team's effective config (redacted) and the node that set it."""

    path: tuple[str, ...]
    value: Any
    source: str
    source_kind: NodeKind

    @property
    def inherited(self) -> bool:
        return self.source_kind != "team"


@dataclass(frozen=True, slots=True)
class TeamClaims:
    """What routes to the team: Slack channels, GitHub repos, PagerDuty services."""

    slack_channel_ids: tuple[str, ...] = ()
    github_repos: tuple[str, ...] = ()
    pagerduty_service_ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.slack_channel_ids or self.github_repos or self.pagerduty_service_ids)


@dataclass(frozen=True, slots=True)
class TeamOverview:
    """Everything the summary shows about one team.

    ``problem`` is set when the team's config could not be loaded; the other parts may then be empty.
    ``member``, ``editable`` and ``edit_note`` describe the person looking: whether the team lists
    them, whether the Edit buttons are shown, and otherwise who can edit.
    """

    org_id: str
    team_id: str
    name: str
    path: tuple[str, ...] = ()
    claims: TeamClaims = field(default_factory=TeamClaims)
    config: tuple[ConfigLine, ...] = ()
    health: tuple[HealthLine, ...] = ()
    recent_runs: tuple[RunLine, ...] = ()
    in_progress: int = 0
    schedules: tuple[ScheduleLine, ...] = ()
    problem: str | None = None
    member: bool = True
    editable: bool = False
    edit_note: str = ""


def edit_value(org_id: str, team_id: str) -> str:
    """The value of a team's Edit buttons; ``parse_edit_value`` reverses it."""
    return f"{org_id}/{team_id}"


def parse_edit_value(value: str) -> tuple[str, str] | None:
    org_id, _, team_id = value.partition("/")
    return (org_id, team_id) if org_id and team_id else None


# -- lines ----------------------------------------------------------------------------------------------


def _item(key: str, item: Any) -> str:
    text = str(item)
    if key.endswith("user_ids") and _USER_ID.fullmatch(text):
        return f"<@{text}>"
    if key.endswith("channel_ids") and _CHANNEL_ID.fullmatch(text):
        return f"<#{text}>"
    return code(text, VALUE_MAX)


def display_value(path: Sequence[str], value: Any) -> str:
    """A config value as safe mrkdwn: scalars as code, user and channel ids as mentions."""
    key = path[-1] if path else ""
    if isinstance(value, bool):
        return code("true" if value else "false", 5)
    if isinstance(value, list):
        if not value:
            return "_(empty list)_"
        shown = ", ".join(_item(key, item) for item in value[:LIST_ITEMS_MAX])
        more = len(value) - LIST_ITEMS_MAX
        return shown + (f" and {more} more" if more > 0 else "")
    if isinstance(value, dict):
        return "_(empty)_"
    return _item(key, value)


def config_line(line: ConfigLine) -> str:
    text = f"• `{mrkdwn('.'.join(line.path), 200)}`: {display_value(line.path, line.value)}"
    if line.inherited:
        text += f"  _from {line.source_kind} {mrkdwn(line.source, 80)}_"
    return text


def shown_config(lines: Sequence[ConfigLine]) -> list[ConfigLine]:
    return [line for line in lines if not any(line.path[: len(p)] == p for p in HIDDEN_PREFIXES)]


def health_line(line: HealthLine) -> str:
    icon = _HEALTH_ICON.get(line.status, "•")
    detail = line.detail or ("ok" if line.status == "ok" else line.status)
    return f"{icon} *{mrkdwn(line.integration, 60)}*: {mrkdwn(one_line(detail), HEALTH_DETAIL_MAX)}"


def claims_text(claims: TeamClaims) -> str:
    if not claims:
        return "*Claims*\nNo channels, repos or PagerDuty services route to this team yet."
    parts = ["*Claims*"]
    if claims.slack_channel_ids:
        parts.append("Channels: " + display_value(("slack_channel_ids",), list(claims.slack_channel_ids)))
    if claims.github_repos:
        parts.append("GitHub repos: " + display_value(("github_repos",), list(claims.github_repos)))
    if claims.pagerduty_service_ids:
        services = list(claims.pagerduty_service_ids)
        parts.append("PagerDuty services: " + display_value(("pagerduty_service_ids",), services))
    return "\n".join(parts)


# -- blocks ---------------------------------------------------------------------------------------------


def _status_context(team: TeamOverview) -> Block:
    where = " › ".join(mrkdwn(node, 63) for node in team.path) or mrkdwn(team.team_id, 63)
    bits = [where]
    if team.in_progress:
        bits.append(f"🔄 {team.in_progress} running now")
    if not team.member:
        bits.append("you see it as an org admin")
    return context(*bits)


def edit_buttons(team: TeamOverview) -> Block:
    value = edit_value(team.org_id, team.team_id)
    return actions(
        [
            button(f"Edit {label}", action_id=EDIT_ACTION_PREFIX + name, value=value)
            for name, label in EDIT_SECTIONS
        ],
        block_id=EDIT_BLOCK_PREFIX + value,
    )


def team_blocks(team: TeamOverview, *, config_lines_max: int | None = None) -> list[Block]:
    """The blocks of one team. ``config_lines_max`` caps the config list (the Home shows many teams)."""
    blocks: list[Block] = [header(f"Team {team.name}"), _status_context(team)]
    if team.problem is not None:
        blocks.append(section(f"⚠️ {mrkdwn(team.problem, 1000)}"))
        return blocks
    blocks.append(section(claims_text(team.claims)))
    lines = shown_config(team.config)
    hidden = 0
    if config_lines_max is not None and len(lines) > config_lines_max:
        hidden = len(lines) - config_lines_max
        lines = lines[:config_lines_max]
    config_text = [config_line(line) for line in lines] or ["No settings yet."]
    if hidden:
        config_text.append(f"_…and {hidden} more; `/incidentfox config` in the team's channel lists all._")
    blocks.extend(packed_sections(["*Effective config* (secrets redacted)", *config_text]))
    health = [health_line(line) for line in team.health] or ["No integrations configured yet."]
    blocks.extend(packed_sections(["*Integration health*", *health]))
    blocks.extend(schedule_blocks(team.schedules))
    runs = [run_line(run) for run in team.recent_runs] or ["No investigations yet."]
    blocks.extend(packed_sections(["*Recent runs*", *runs]))
    if team.editable:
        blocks.append(edit_buttons(team))
    elif team.edit_note:
        blocks.append(context(team.edit_note))
    return blocks


def render_config_summary(overview: TeamOverview) -> list[Block]:
    """The ephemeral answer to ``/incidentfox config``: one team, every setting, within message limits."""
    return fit_message(team_blocks(overview))


def config_summary_text(overview: TeamOverview) -> str:
    """Notification and screen-reader text for ``render_config_summary``."""
    if overview.problem is not None:
        text = f"Config of team {overview.name}: {overview.problem}"
    else:
        failing = [line.integration for line in overview.health if line.status == "failing"]
        health = f"failing: {', '.join(failing)}" if failing else "no failing integrations"
        settings = len(shown_config(overview.config))
        text = f"Config of team {overview.name}: {settings} settings, {health}"
    return truncate(one_line(text), FALLBACK_TEXT_MAX)
