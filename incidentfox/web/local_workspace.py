"""The local workspace: the embedded Slack, its live feed, its routes and (optionally) the demo."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from incidentfox.bot.http_json import json_response
from incidentfox.bot.settings import Settings
from incidentfox.config.service import ConfigService
from incidentfox.errors import NotFound
from incidentfox.web.demo import DemoEnvironment
from incidentfox.web.demo_seed import DemoSeedError
from incidentfox.web.embedded import EmbeddedSlack
from incidentfox.web.live_feed import LiveFeed
from incidentfox.web.pages import PageAccess, add_page_routes
from incidentfox.web.ui_messages import WorkspaceReader
from incidentfox.web.workspace_api import LocalWorkspaceApi

log = logging.getLogger(__name__)


class DemoAction(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def description(self) -> str: ...


class Demo(Protocol):
    """What the page needs of the demo environment: its buttons, and playing one."""

    @property
    def actions(self) -> list[Any]: ...

    async def play(self, action_id: str) -> str: ...


class LocalWorkspace:
    """Everything behind ``http://127.0.0.1:3000/`` on the embedded default."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded = EmbeddedSlack()
        self.reader = WorkspaceReader(self.embedded.emulator)
        self.feed: LiveFeed | None = None
        self.demo: Demo | None = None
        self.access: PageAccess | None = None
        self._demo_env: DemoEnvironment | None = None

    @property
    def saved_path(self) -> Path:
        """Where the workspace's messages are kept between starts (beside the SQLite database)."""
        return self.settings.data_dir / "local-workspace.json"

    @property
    def slack(self) -> Any:
        return self.embedded.emulator

    async def start(self) -> None:
        """Start Slack in-process and point the settings at it (before the bot is built)."""
        await self.embedded.start(self.settings)
        self.embedded.load(self.saved_path)
        self.feed = LiveFeed(self.embedded.emulator, self.reader, person_id=self.embedded.person.user_id)
        self.access = PageAccess(self.settings, embedded=True)

    async def start_demo(self, config: ConfigService, *, webhook_base_url: str) -> None:
        """Seed (first start) or re-point (later starts) the demo org, unless ``INCIDENTFOX_DEMO=0``."""
        if not self.settings.incidentfox_demo:
            return
        demo = DemoEnvironment(
            config=config,
            slack=self.embedded.emulator,
            local_user_id=self.embedded.person.user_id,
            model_configured=self.settings.openai_api_key is not None,
            sre_agent=self.settings.anthropic_api_key is not None,
        )
        self._demo_env = demo
        try:
            await demo.start(webhook_base_url=webhook_base_url)
        except DemoSeedError as exc:
            log.error("demo: not available: %s", exc)
            return
        if demo.active:
            self.demo = demo

    def end_live_streams(self) -> None:
        """End every page's event stream, so the HTTP server can stop without waiting for them."""
        if self.feed is not None:
            self.feed.close()
            self.feed = None

    async def stop(self) -> None:
        if self._demo_env is not None:
            await self._demo_env.stop()
        self.end_live_streams()
        try:
            self.embedded.save(self.saved_path)
        except OSError as exc:
            log.warning("local workspace: could not save the channels to %s: %s", self.saved_path, exc)
        await self.embedded.stop()

    def add_routes(self, app: web.Application) -> None:
        assert self.feed is not None and self.access is not None, "start() first"
        add_page_routes(app, self.access, self.bootstrap)
        LocalWorkspaceApi(self.embedded, self.feed, self.reader).add_routes(app, self.access.guard)
        app.router.add_post("/ui/api/demo/{action_id}", self.access.guard(self.play_demo))

    def bootstrap(self) -> dict[str, Any]:
        slack, person = self.embedded.emulator, self.embedded.person
        assert self.access is not None
        actions = self.demo.actions if self.demo is not None else []
        return {
            "mode": "workspace",
            "team": {"id": slack.team_id, "name": slack.identity.team_name},
            "me": {"id": person.user_id, "name": person.name},
            "bot": {"user_id": slack.bot_user_id, "name": "IncidentFox"},
            "users": self.reader.users(),
            "channels": self.reader.channels(),
            "console": {
                "token": self.access.console_token,
                "requires_token": self.access.console_token is None,
            },
            "demo": {
                "enabled": self.demo is not None,
                "actions": [{"id": a.id, "label": a.label, "description": a.description} for a in actions],
            },
        }

    async def play_demo(self, request: web.Request) -> web.StreamResponse:
        if self.demo is None:
            raise NotFound("the demo is off (INCIDENTFOX_DEMO=0)")
        action_id = request.match_info["action_id"]
        try:
            message = await self.demo.play(action_id)
        except ValueError as exc:
            raise NotFound(f"there is no demo action {action_id[:40]}") from exc
        return json_response({"ok": True, "message": message})
