"""The demo org in the config service: seeded once, then kept pointed at this process's emulators.

Everything goes through the real ``ConfigService`` API, so it is validated, claimed and audited like
any other write (actor ``demo-seed``). The org claims the emulated Slack workspace and makes the
local person its Slack admin; under the unit ``commerce``, the team ``payments`` claims
``#demo-incidents``, the demo PagerDuty service and the demo repositories, with its Kubernetes,
PagerDuty and GitHub integrations on the emulators.

Seeding is a sequence of idempotent steps (org, unit, team), each one transaction: a step that fails
raises ``DemoSeedError`` with the reason and leaves the earlier steps in place, and the next start
completes the rest. The emulators listen on new ports at every start, so on later starts each
integration the team still uses (its URL on loopback and the emulator's credential) is re-pointed;
one the user pointed elsewhere (a real cluster, from the console) is left alone.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from incidentfox.config.permissions import Principal
from incidentfox.config.service import ConfigService
from incidentfox.egress import EgressRefused, current_policy
from incidentfox.errors import NotFound, UserFacingError
from incidentfox.web.demo_world import (
    CHECKOUT_REPO,
    PAGERDUTY_FROM_EMAIL,
    PAGERDUTY_SERVICE_ID,
    PAYMENTS_REPO,
)
from incidentfox.web.embedded import is_loopback_host

log = logging.getLogger(__name__)

DEMO_ORG_ID = "demo"
DEMO_ORG_NAME = "Demo (sample data)"
UNIT_ID, UNIT_NAME = "commerce", "Commerce (demo)"
TEAM_ID, TEAM_NAME = "payments", "Payments (demo)"
SEED_ACTOR = "demo-seed"
SeedOutcome = Literal["seeded", "repointed", "unchanged", "absent"]


class DemoSeedError(RuntimeError):
    """The demo org could not be (fully) seeded; the message says why and what to do."""


class DemoSeeder(Principal):
    """The global admin's rights, recorded in config history and the audit log as ``demo-seed``."""

    __slots__ = ()

    @property
    def actor(self) -> str:
        return SEED_ACTOR


SEEDER = DemoSeeder(kind="admin")


@dataclass(frozen=True, slots=True)
class DemoEndpoints:
    """Where this process's emulators listen and the credentials they accept (all sample data)."""

    kubernetes_url: str
    kubernetes_token: str
    pagerduty_url: str
    pagerduty_key: str
    pagerduty_ca: str
    github_url: str
    github_token: str

    def integrations(self) -> dict[str, Any]:
        """A fresh ``integrations`` section, with new webhook secrets."""
        return {
            "kubernetes": {"api_url": self.kubernetes_url, "token": self.kubernetes_token},
            "pagerduty": {
                "api_key": self.pagerduty_key,
                "api_url": self.pagerduty_url,
                "from_email": PAGERDUTY_FROM_EMAIL,
                "ca_cert_content": self.pagerduty_ca,
                "webhook_secret": secrets.token_urlsafe(24),
            },
            "github": {
                "token": self.github_token,
                "api_url": self.github_url,
                "webhook_secret": secrets.token_urlsafe(24),
            },
        }

    def repointed(self, integrations: Mapping[str, Any]) -> dict[str, Any]:
        """The merge patch that moves the integrations still on a demo emulator (``_uses``) to this
        start's URLs (and the PagerDuty emulator's new CA); empty when there is nothing to move."""
        wanted: dict[str, tuple[str, str, dict[str, str]]] = {
            "kubernetes": ("token", self.kubernetes_token, {"api_url": self.kubernetes_url}),
            "pagerduty": (
                "api_key",
                self.pagerduty_key,
                {"api_url": self.pagerduty_url, "ca_cert_content": self.pagerduty_ca},
            ),
            "github": ("token", self.github_token, {"api_url": self.github_url}),
        }
        patch: dict[str, Any] = {}
        for name, (key, credential, where) in wanted.items():
            settings = _section(integrations, name)
            if _uses(settings, key, credential) and any(settings.get(k) != v for k, v in where.items()):
                patch[name] = where
        return patch

    async def check_egress(self) -> None:
        """Refuse before writing anything when the installation may not reach loopback."""
        urls = {
            "integrations.kubernetes.api_url": self.kubernetes_url,
            "integrations.pagerduty.api_url": self.pagerduty_url,
            "integrations.github.api_url": self.github_url,
        }
        for setting, url in urls.items():
            try:
                await current_policy().check_url(url, setting=setting)
            except EgressRefused as exc:
                raise DemoSeedError(
                    f"the demo's emulators listen on loopback, which this installation refuses ({exc}); "
                    "set EGRESS_ALLOW_PRIVATE=1 to use the demo, or INCIDENTFOX_DEMO=0 to turn it off"
                ) from exc


@dataclass(frozen=True, slots=True)
class DemoSlack:
    """The emulated Slack workspace the demo org claims, its local admin and the demo channel."""

    workspace_id: str
    admin_user_id: str
    channel_id: str


def _section(integrations: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = integrations.get(name)
    return value if isinstance(value, Mapping) else {}


def _uses(settings: Mapping[str, Any], key: str, credential: str) -> bool:
    """Whether the team still talks to a demo emulator: its credential is the emulator's and its URL
    is on loopback (a URL the user typed for a real service is neither)."""
    url = settings.get("api_url")
    if settings.get(key) != credential or not isinstance(url, str):
        return False
    return is_loopback_host(urlsplit(url).hostname or "")


def team_config(endpoints: DemoEndpoints, slack: DemoSlack) -> dict[str, Any]:
    """The payments team's own config: its claims, its integrations on the emulators, and approvals a
    single person can give (in the demo, whoever asks for a write action is also its approver)."""
    return {
        "approvals": {"allow_self_approval": True},
        "integrations": endpoints.integrations(),
        "routing": {
            "slack_channel_ids": [slack.channel_id],
            "pagerduty_service_ids": [PAGERDUTY_SERVICE_ID],
            "github_repos": [PAYMENTS_REPO, CHECKOUT_REPO],
        },
    }


async def _node_ids(config: ConfigService) -> set[str] | None:
    """The demo org's node ids, or ``None`` when there is no demo org."""
    try:
        nodes = await config.list_nodes(SEEDER, DEMO_ORG_ID)
    except NotFound:
        return None
    return {str(n["node_id"]) for n in nodes}


async def ensure_demo_org(config: ConfigService, endpoints: DemoEndpoints, slack: DemoSlack) -> SeedOutcome:
    """Seed the demo org on an empty installation, complete a half-seeded one, and re-point its
    integrations at ``endpoints``. ``absent`` when the installation has other orgs and no demo org
    (the demo is not forced onto it)."""
    try:
        return await _ensure(config, endpoints, slack)
    except UserFacingError as exc:
        raise DemoSeedError(f"the demo org could not be seeded: {exc}") from exc


async def _ensure(config: ConfigService, endpoints: DemoEndpoints, slack: DemoSlack) -> SeedOutcome:
    created = False
    if await config.org_count() == 0:
        await endpoints.check_egress()
        await config.create_org_for_workspace(
            org_id=DEMO_ORG_ID,
            name=DEMO_ORG_NAME,
            workspace_id=slack.workspace_id,
            admin_user_id=slack.admin_user_id,
            actor=SEED_ACTOR,
        )
        created = True
    nodes = await _node_ids(config)
    if nodes is None:
        return "absent"
    if UNIT_ID not in nodes:
        unit = {"node_id": UNIT_ID, "parent_id": DEMO_ORG_ID, "kind": "unit", "name": UNIT_NAME}
        await config.create_node(SEEDER, DEMO_ORG_ID, unit)
        created = True
    if TEAM_ID not in nodes:
        await endpoints.check_egress()
        body = {"node_id": TEAM_ID, "parent_id": UNIT_ID, "name": TEAM_NAME}
        await config.create_team_with_config(SEEDER, DEMO_ORG_ID, body, team_config(endpoints, slack))
        return "seeded"
    current = await config.effective_config(DEMO_ORG_ID, TEAM_ID)
    patch = endpoints.repointed(_section(current, "integrations"))
    if not patch:
        return "seeded" if created else "unchanged"
    await endpoints.check_egress()
    await config.write_config(SEEDER, DEMO_ORG_ID, TEAM_ID, {"integrations": patch}, operation="patch")
    log.info("demo: re-pointed integrations=%s of team %s/%s", sorted(patch), DEMO_ORG_ID, TEAM_ID)
    return "seeded" if created else "repointed"


async def webhook_secret(config: ConfigService, integration: str) -> str | None:
    """The demo team's current webhook secret for ``pagerduty`` or ``github`` (what the emulator
    signs its deliveries with, as the real sender signs with the secret configured there)."""
    current = await config.effective_config_shared(DEMO_ORG_ID, TEAM_ID)
    value = _section(_section(current, "integrations"), integration).get("webhook_secret")
    return value if isinstance(value, str) and value else None
