"""The App Home tab: the viewer's teams, each with claims, config and sources, health and recent runs.

Three shapes, decided by ``HomePage``:
- the workspace is not claimed by any org: how to claim it (and whether this viewer can);
- the viewer is on no team: how to get one (``/incidentfox setup``) and who the org admins are;
- otherwise one page of teams (``TEAMS_PER_PAGE``), the viewer's own first, then, for an org admin,
  the org's other teams, with Previous/Next buttons whose value is the page to show.
A page stays far below Slack's 100 blocks per view; ``fit_view`` is the last guard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.views import View

from incidentfox.blocks.components import Block, actions, button, context, divider, header, section
from incidentfox.blocks.config_summary import TeamOverview, team_blocks
from incidentfox.blocks.limits import PRIVATE_METADATA_MAX, fit_view, mrkdwn

HOME_CALLBACK_ID = "incidentfox_home"
ACTION_PAGE_PREVIOUS = "home_page_previous"
ACTION_PAGE_NEXT = "home_page_next"
PAGES_BLOCK_ID = "home_pages"
TEAMS_PER_PAGE = 5
"""Ten blocks or so per team: five teams keep a page near 60 blocks and its health checks and
permalinks quick to gather."""
HOME_CONFIG_LINES_MAX = 25
_MAX_ADMINS_NAMED = 5


@dataclass(frozen=True, slots=True)
class HomePage:
    """What the Home tab shows one person.

    ``org_id`` is ``None`` when no org claims the workspace; ``can_claim`` is then whether this person
    is a Slack workspace admin who may claim it. ``teams`` is the current page only; ``page`` counts
    from 0. ``notice`` is a short line shown on top (an apology when something failed).
    """

    user_id: str
    org_id: str | None
    org_name: str = ""
    org_admins: tuple[str, ...] = ()
    is_org_admin: bool = False
    can_claim: bool = False
    teams: tuple[TeamOverview, ...] = ()
    page: int = 0
    page_count: int = 1
    team_count: int = 0
    notice: str | None = None


def page_count(team_count: int) -> int:
    return max(1, -(-team_count // TEAMS_PER_PAGE))


def clamp_page(page: int, team_count: int) -> int:
    return min(max(page, 0), page_count(team_count) - 1)


def home_metadata(page: int) -> str:
    return json.dumps({"page": page})


def page_of_metadata(private_metadata: str | None) -> int:
    """The page a published Home was showing (``0`` when unknown)."""
    try:
        value = json.loads(private_metadata or "{}").get("page", 0)
    except (ValueError, AttributeError):
        return 0
    return value if isinstance(value, int) and value >= 0 else 0


def _admins(page: HomePage) -> str:
    if not page.org_admins:
        return "nobody yet"
    named = ", ".join(f"<@{user}>" for user in page.org_admins[:_MAX_ADMINS_NAMED])
    more = len(page.org_admins) - _MAX_ADMINS_NAMED
    return named + (f" and {more} more" if more > 0 else "")


def _unclaimed(page: HomePage) -> list[Block]:
    blocks = [section("This Slack workspace isn't connected to an IncidentFox org yet.")]
    if page.can_claim:
        blocks.append(
            section(
                "As a workspace admin you can connect it: run `/incidentfox setup` in the channel your "
                "team uses for incidents. The form creates the org, makes you its first IncidentFox admin "
                "and sets up the team for that channel."
            )
        )
    else:
        blocks.append(
            section(
                "Only a Slack workspace admin or owner can connect it: ask one to run "
                "`/incidentfox setup` in your team's incident channel. They become the first IncidentFox "
                "admins and can then add you to a team."
            )
        )
    return blocks


def _no_team(page: HomePage) -> list[Block]:
    org = mrkdwn(page.org_name or page.org_id or "", 100)
    if page.is_org_admin:
        first = (
            f"*{org}* has no teams yet. Run `/incidentfox setup` in a team's incident channel to create "
            "the first one; I answer there once it exists."
        )
    else:
        first = (
            f"You're not on any IncidentFox team of *{org}* yet. To get one, run `/incidentfox setup` in "
            "your team's incident channel, or ask an org admin to add you to the team's members."
        )
    return [section(first), context(f"Org admins: {_admins(page)}")]


def _pages(page: HomePage) -> list[Block]:
    if page.page_count <= 1:
        return []
    buttons = []
    if page.page > 0:
        buttons.append(button("◀ Previous", action_id=ACTION_PAGE_PREVIOUS, value=str(page.page - 1)))
    if page.page < page.page_count - 1:
        buttons.append(button("Next ▶", action_id=ACTION_PAGE_NEXT, value=str(page.page + 1)))
    shown = f"Page {page.page + 1} of {page.page_count} · {page.team_count} teams"
    return [context(shown), actions(buttons, block_id=PAGES_BLOCK_ID)]


def _teams(page: HomePage) -> list[Block]:
    blocks: list[Block] = []
    group: bool | None = None
    org = mrkdwn(page.org_name or page.org_id or "", 100)
    for team in page.teams:
        if page.is_org_admin and team.member != group:
            group = team.member
            title = "*Your teams*" if team.member else f"*Other teams of {org}* (you're an org admin)"
            blocks.append(section(title))
        blocks.extend(team_blocks(team, config_lines_max=HOME_CONFIG_LINES_MAX))
        blocks.append(divider())
    return blocks


def home_blocks(page: HomePage) -> list[Block]:
    """The Home tab's blocks before the 100-block guard."""
    blocks: list[Block] = [header("IncidentFox")]
    if page.org_id is not None:
        role = " · you're an org admin" if page.is_org_admin else ""
        blocks.append(context(f"Org *{mrkdwn(page.org_name or page.org_id, 100)}*{role}"))
    if page.notice:
        blocks.append(section(f"⚠️ {mrkdwn(page.notice, 600)}"))
    if page.org_id is None:
        return [*blocks, *_unclaimed(page)]
    if page.team_count == 0:
        return [*blocks, *_no_team(page)]
    blocks.extend(_teams(page))
    blocks.extend(_pages(page))
    blocks.append(
        context(
            "Mention @IncidentFox in a team's channel to investigate · `/incidentfox config` there shows "
            "the same summary · `/incidentfox setup` adds a team."
        )
    )
    return blocks


def render_home(page: HomePage) -> dict[str, Any]:
    """The ``views.publish`` view; ``private_metadata`` remembers the page for the next re-publish."""
    view = View(
        type="home",
        callback_id=HOME_CALLBACK_ID,
        blocks=fit_view(home_blocks(page)),
        private_metadata=home_metadata(page.page)[:PRIVATE_METADATA_MAX],
    )
    return view.to_dict()


def render_home_notice(text: str) -> dict[str, Any]:
    """A Home tab holding only an apology: what to publish when the real Home cannot be built."""
    view = View(
        type="home",
        callback_id=HOME_CALLBACK_ID,
        blocks=[header("IncidentFox"), section(f"⚠️ {mrkdwn(text, 600)}")],
        private_metadata=home_metadata(0),
    )
    return view.to_dict()
