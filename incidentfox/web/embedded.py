"""The embedded default (design §4): no Slack credentials, so Slack itself runs in-process.

``EmbeddedSlack`` starts the Slack emulator on loopback, fills in the local person and the
workspace's channels, and points the settings at it. The bot then connects over Socket Mode with
the emulator's tokens exactly as it connects to slack.com: there is no second code path in the bot.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import SecretStr

from incidentfox.bot.settings import Settings
from incidentfox.emulators.slack import SlackEmulator, StoredMessage

log = logging.getLogger(__name__)

LOCAL_USER_ID = "U0LOCALUSER"
LOCAL_USER_NAME = "you"
GENERAL_CHANNEL = ("C0GENERAL", "general", "Company-wide announcements and chatter")
BOT_DM_CHANNEL = "D0INCIDENTFOX"
WORKSPACE_NAME = "Local workspace"
RECORDED_CALLS = 2000
"""The emulator's call log is for tests; the local workspace keeps only the newest calls."""


def wants_local_workspace(settings: Settings) -> bool:
    """The embedded default applies when no Slack app is configured and it was not turned off."""
    return settings.local_workspace and settings.slack_bot_token is None


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class LocalPerson:
    """The one human of the local workspace: the person at the browser."""

    user_id: str = LOCAL_USER_ID
    name: str = LOCAL_USER_NAME


class EmbeddedSlack:
    """The in-process Slack workspace behind the local web page."""

    def __init__(self, person: LocalPerson | None = None) -> None:
        self.person = person or LocalPerson()
        self.emulator = SlackEmulator(team_name=WORKSPACE_NAME, max_recorded_calls=RECORDED_CALLS)

    async def start(self, settings: Settings) -> None:
        """Start the emulator and point ``settings`` at it (Socket Mode, as with a real app token).

        Without ``ADMIN_TOKEN`` a random admin token is made for this process only, so the console
        on the same page can sign in as the local admin (it is shown to loopback visitors only).
        """
        slack = self.emulator
        await slack.start()
        slack.add_user(self.person.user_id, name=self.person.name, is_admin=True, is_owner=True)
        slack.add_user(slack.bot_user_id, name="IncidentFox", is_bot=True)
        channel_id, name, topic = GENERAL_CHANNEL
        self.add_channel(channel_id, name, topic=topic)
        slack.workspace.channels[BOT_DM_CHANNEL] = {
            **slack.workspace.channels.get(BOT_DM_CHANNEL, {}),
            "id": BOT_DM_CHANNEL,
            "name": "IncidentFox",
            "is_im": True,
            "is_private": True,
            "is_channel": False,
            "user": slack.bot_user_id,
            "is_member": True,
        }
        settings.slack_bot_token = SecretStr(slack.bot_token)
        settings.slack_app_token = SecretStr(slack.app_token)
        settings.slack_api_url = slack.api_url
        if settings.admin_token is None:
            settings.admin_token = SecretStr(secrets.token_urlsafe(32))
        if settings.egress_allow_private is None:
            settings.egress_allow_private = True
        log.info("local workspace: Slack emulator on %s (no Slack credentials set)", slack.api_url)

    def add_channel(self, channel_id: str, name: str, *, topic: str = "") -> None:
        """A public channel the local person and the bot are both members of."""
        self.emulator.add_channel(channel_id, name)
        self.emulator.workspace.channels[channel_id]["topic"] = {"value": topic}

    def load(self, path: Path) -> None:
        """Bring back the messages and pins of the last run, so a restart keeps the conversation."""
        if not path.exists():
            return
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            messages = [StoredMessage(**m) for m in saved.get("messages", [])]
        except (OSError, ValueError, TypeError) as exc:
            log.warning("local workspace: could not read %s (%s); starting with empty channels", path, exc)
            return
        workspace = self.emulator.workspace
        for message in messages:
            workspace.add_message(message)
        for channel, pins in dict(saved.get("pins", {})).items():
            workspace.pins[str(channel)] = [str(ts) for ts in pins]

    def save(self, path: Path) -> None:
        """Keep the channels' messages and pins for the next start (written atomically)."""
        workspace = self.emulator.workspace
        saved = {
            "messages": [asdict(m) for items in workspace.messages.values() for m in items],
            "pins": workspace.pins,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(saved), encoding="utf-8")
        partial.replace(path)

    async def stop(self) -> None:
        await self.emulator.stop()
