"""Slack listeners of the App Home: the tab opening, its page buttons, Edit buttons and Edit modals.

Each listener acks and hands the work to ``HomeFlows``. Publishing the Home runs in the background
(``HomeFlows.spawn``): in HTTP mode Bolt answers Slack only when a listener returns, and a Home can
take a few seconds to gather.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.blocks.config_summary import EDIT_ACTION_PREFIX
from incidentfox.blocks.edit_modals import EDIT_CALLBACK_ID
from incidentfox.blocks.home import ACTION_PAGE_NEXT, ACTION_PAGE_PREVIOUS, page_of_metadata
from incidentfox.config.service import ConfigService
from incidentfox.handlers.slack.access import SlackAccess, SlackUser
from incidentfox.handlers.slack.home_flows import HomeFlows
from incidentfox.handlers.slack.notices import SlackNotices
from incidentfox.handlers.slack.overview import TeamOverviews

_PAGE_ACTIONS = re.compile(f"^({ACTION_PAGE_PREVIOUS}|{ACTION_PAGE_NEXT})$")
_EDIT_ACTIONS = re.compile(f"^{EDIT_ACTION_PREFIX}[a-z]+$")


def _page(value: Any) -> int:
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 6 else 0


def register_home(
    app: AsyncApp,
    *,
    access: SlackAccess,
    config: ConfigService,
    overview: TeamOverviews,
    notices: SlackNotices,
) -> HomeFlows:
    """Register the App Home listeners; the returned ``HomeFlows`` is drained on shutdown."""
    flows = HomeFlows(access=access, config=config, overview=overview, notices=notices)

    @app.event("app_home_opened")
    async def on_home_opened(body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user = SlackUser(str(body.get("team_id") or ""), str(event.get("user") or ""))
        page = page_of_metadata((event.get("view") or {}).get("private_metadata"))
        flows.spawn(flows.publish(client, user, page=page))

    @app.action(_PAGE_ACTIONS)
    async def on_page(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        flows.spawn(flows.publish(client, SlackUser.from_body(body), page=_page(action.get("value"))))

    @app.action(_EDIT_ACTIONS)
    async def on_edit(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        await flows.open_editor(client, body, action)

    @app.view(EDIT_CALLBACK_ID)
    async def on_edit_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        errors = await flows.submit_edit(client, body, view)
        if errors:
            await ack(response_action="errors", errors=errors)
        else:
            await ack()

    return flows
