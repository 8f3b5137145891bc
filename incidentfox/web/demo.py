"""The demo environment of the local workspace: a sample org whose integrations run in this process.

With no Slack credentials and ``INCIDENTFOX_DEMO`` on, ``serve`` starts a ``DemoEnvironment`` beside
the embedded Slack emulator::

    demo = DemoEnvironment(config=runtime.config, slack=embedded.emulator, local_user_id="U0LOCALUSER")
    await demo.start(webhook_base_url=f"http://127.0.0.1:{port}")
    ...
    message = await demo.play("pagerduty-page")   # a toast for the page
    await demo.stop()

It runs the Kubernetes emulator on the ``demo`` scenario (a shop whose checkout is never Ready because
payments-api crash-loops), the PagerDuty emulator with the payments on-call and its history, and the
GitHub emulator with the pull request that caused it (``demo_world``). ``demo_seed`` seeds the demo
org on an empty installation and re-points it at this start's emulators later on. The channel
``#demo-incidents`` gets a pinned welcome message (``blocks.demo_welcome``). ``play`` sends the
webhooks PagerDuty and GitHub would send, signed with the team's secrets, to IncidentFox's own
``/webhooks/*`` routes: the demo exercises the same pipeline as production.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from incidentfox.blocks.demo_welcome import welcome_blocks, welcome_text
from incidentfox.config.secrets import SecretsUnreadable
from incidentfox.config.service import ConfigService
from incidentfox.emulators.github import GitHubEmulator
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.pagerduty import PagerDutyEmulator
from incidentfox.emulators.served import Emulator
from incidentfox.emulators.slack import SlackEmulator
from incidentfox.errors import NotFound
from incidentfox.web.demo_seed import (
    DemoEndpoints,
    DemoSeedError,
    DemoSlack,
    SeedOutcome,
    ensure_demo_org,
    webhook_secret,
)
from incidentfox.web.demo_world import (
    DEPLOY_WORKFLOW,
    GITHUB_WEB_URL,
    PAGE_TITLE,
    PAGERDUTY_WEB_URL,
    PAYMENTS_REPO,
    add_failed_deploy,
    add_page,
    pagerduty_world,
    seed_github,
)

log = logging.getLogger(__name__)

DEMO_CHANNEL_ID = "C0DEMOINCIDENTS"
DEMO_CHANNEL_TOPIC = "Sample incidents of the IncidentFox demo (sample data, nothing leaves this machine)"
LOCAL_USER_ID = "U0LOCALUSER"
KUBERNETES_TOKEN = "demo-cluster-token-sample-data"
PAGERDUTY_API_KEY = "demo-pagerduty-key-sample-data"
GITHUB_TOKEN = "demo-github-token-sample-data"
"""The emulators' credentials: sample data, useless anywhere else. The team's config holding them
is how a later start recognises that the team still uses the demo emulators."""


@dataclass(frozen=True, slots=True)
class DemoAction:
    """A button of the workspace's Demo menu."""

    id: str
    label: str
    description: str


PAGERDUTY_PAGE = DemoAction(
    "pagerduty-page",
    "Play a PagerDuty page",
    "PagerDuty pages the payments on-call because checkout's order success rate fell below 95%. "
    "IncidentFox opens a thread in the demo channel and investigates.",
)
CI_FAILURE = DemoAction(
    "ci-failure",
    "Play a failing CI run",
    f"GitHub reports that the {DEPLOY_WORKFLOW} workflow of {PAYMENTS_REPO} failed waiting for the "
    "rollout. IncidentFox reads the failed job's log and explains it in the demo channel.",
)


class DemoEnvironment:
    """The demo org's emulated integrations, started in-process beside the embedded Slack emulator."""

    def __init__(
        self,
        *,
        config: ConfigService,
        slack: SlackEmulator,
        channel_name: str = "demo-incidents",
        local_user_id: str = LOCAL_USER_ID,
        model_configured: bool = False,
        sre_agent: bool = False,
    ) -> None:
        """``model_configured`` and ``sre_agent`` only change what the welcome message says."""
        self._config = config
        self._slack = slack
        self.channel_name = channel_name
        self.channel_id = DEMO_CHANNEL_ID
        self.local_user_id = local_user_id
        self.model_configured = model_configured
        self.sre_agent = sre_agent
        self.kubernetes = KubernetesEmulator("demo", token=KUBERNETES_TOKEN)
        self.pagerduty = PagerDutyEmulator(
            pagerduty_world(), api_key=PAGERDUTY_API_KEY, web_url=PAGERDUTY_WEB_URL
        )
        self.github = GitHubEmulator(token=GITHUB_TOKEN, html_base=GITHUB_WEB_URL)
        seed_github(self.github)
        self.outcome: SeedOutcome | None = None
        """What ``start`` did to the config: ``seeded``, ``repointed``, ``unchanged`` or ``absent``."""
        self._webhook_base_url: str | None = None

    @property
    def active(self) -> bool:
        """Started, with a demo org to play to."""
        return self._webhook_base_url is not None

    async def start(self, *, webhook_base_url: str) -> None:
        """Start the Kubernetes, PagerDuty and GitHub emulators; seed the ``demo`` org on first start
        (no orgs yet), or re-point the demo team's integrations at this start's emulators when it still
        uses them; open ``#demo-incidents`` with its pinned welcome message.

        An installation with other orgs and no demo org is left alone (``outcome == "absent"``, the
        emulators are stopped again). Raises ``DemoSeedError`` (after logging it) when the org cannot
        be seeded; nothing half-written is left that the next start would not complete."""
        emulators: list[Emulator] = [self.kubernetes, self.pagerduty, self.github]
        seeded = False
        try:
            for emulator in emulators:
                await emulator.start()
            self.outcome = await ensure_demo_org(self._config, self._endpoints(), self._claims())
            seeded = True
        except DemoSeedError as exc:
            log.error("demo: not started: %s", exc)
            raise
        except SecretsUnreadable:
            raise
        except Exception:
            log.exception("demo: not started: an emulator or the config service failed")
            raise
        finally:
            if not seeded:
                await self.stop()
        if self.outcome == "absent":
            log.info("demo: not seeded: this installation already has orgs and none of them is the demo")
            await self.stop()
            return
        self._webhook_base_url = webhook_base_url.rstrip("/")
        self._open_channel()
        log.info(
            "demo: %s; cluster=%s pagerduty=%s github=%s channel=#%s",
            self.outcome,
            self.kubernetes.api_url,
            self.pagerduty.api_url,
            self.github.api_url,
            self.channel_name,
        )

    async def stop(self) -> None:
        self._webhook_base_url = None
        for emulator in (self.github, self.pagerduty, self.kubernetes):
            await emulator.stop()

    @property
    def actions(self) -> list[DemoAction]:
        """What the Demo menu offers."""
        return [PAGERDUTY_PAGE, CI_FAILURE]

    async def play(self, action_id: str) -> str:
        """Send the action's signed webhook to IncidentFox, as PagerDuty or GitHub would; a short
        plain-words message for a toast. ``ValueError`` for an unknown action."""
        if action_id == PAGERDUTY_PAGE.id:
            return await self._page()
        if action_id == CI_FAILURE.id:
            return await self._ci_failure()
        known = ", ".join(a.id for a in self.actions)
        raise ValueError(f"unknown demo action {action_id!r}; the actions are {known}")

    async def _page(self) -> str:
        base = self._base_url()
        secret = await self._secret("pagerduty")
        incident = add_page(self.pagerduty.world)
        try:
            delivery = await self.pagerduty.send_webhook(
                f"{base}/webhooks/pagerduty", "incident.triggered", incident["id"], secret=secret
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _unreachable("PagerDuty page", base, exc)
        done = (
            f"PagerDuty paged the payments on-call: “{PAGE_TITLE}”. "
            f"IncidentFox is investigating in #{self.channel_name}."
        )
        return _toast("PagerDuty page", delivery.status, delivery.text, done=done)

    async def _ci_failure(self) -> str:
        base = self._base_url()
        secret = await self._secret("github")
        run = add_failed_deploy(self.github)
        try:
            delivery = await self.github.send_webhook(
                f"{base}/webhooks/github", "workflow_run", self.github.workflow_run_event(run), secret=secret
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _unreachable("GitHub delivery", base, exc)
        done = (
            f"GitHub reported the failed {DEPLOY_WORKFLOW} run {run.id} of {PAYMENTS_REPO}. "
            f"IncidentFox is reading its log in #{self.channel_name}."
        )
        return _toast("GitHub delivery", delivery.status, delivery.response_text, done=done)

    def _base_url(self) -> str:
        if self._webhook_base_url is None:
            raise RuntimeError("the demo environment is not started")
        return self._webhook_base_url

    async def _secret(self, integration: str) -> str | None:
        try:
            return await webhook_secret(self._config, integration)
        except NotFound:
            return None

    def _endpoints(self) -> DemoEndpoints:
        return DemoEndpoints(
            kubernetes_url=self.kubernetes.api_url,
            kubernetes_token=KUBERNETES_TOKEN,
            pagerduty_url=self.pagerduty.api_url,
            pagerduty_key=PAGERDUTY_API_KEY,
            pagerduty_ca=self.pagerduty.ca_cert_pem,
            github_url=self.github.api_url,
            github_token=GITHUB_TOKEN,
        )

    def _claims(self) -> DemoSlack:
        return DemoSlack(
            workspace_id=self._slack.team_id, admin_user_id=self.local_user_id, channel_id=self.channel_id
        )

    def _open_channel(self) -> None:
        """``#demo-incidents`` with its topic, and the welcome message pinned once."""
        slack = self._slack
        if self.channel_id not in slack.workspace.channels:
            slack.add_channel(self.channel_id, self.channel_name)
            slack.workspace.channels[self.channel_id]["topic"] = {"value": DEMO_CHANNEL_TOPIC}
        if slack.pinned(self.channel_id):
            return
        blocks = welcome_blocks(model_configured=self.model_configured, sre_agent=self.sre_agent)
        message = slack.post_as_bot(self.channel_id, welcome_text(), blocks=blocks)
        slack.pin(self.channel_id, message.ts)


def _outcome(text: str) -> tuple[str | None, list[str]]:
    try:
        body: Any = json.loads(text) if text else {}
    except ValueError:
        return None, []
    if not isinstance(body, dict):
        return None, []
    problems = body.get("problems")
    return body.get("outcome"), [str(p) for p in problems] if isinstance(problems, list) else []


def _toast(what: str, status: int, text: str, *, done: str) -> str:
    """What IncidentFox's answer to a played delivery means, in a sentence."""
    outcome, problems = _outcome(text)
    if status == 202 and outcome == "accepted":
        return done
    if outcome == "unrouted":
        return f"IncidentFox got the {what}, but no team claims it any more, so nothing was started."
    if outcome == "misconfigured":
        return f"IncidentFox got the {what}, but the team is not set up for it: {' '.join(problems)}"
    if status == 401:
        return f"IncidentFox refused the {what}: its signature does not match the team's webhook secret."
    return f"IncidentFox answered the {what} with HTTP {status}."


def _unreachable(what: str, base: str, exc: BaseException) -> str:
    log.warning("demo: %s not delivered to %s: %s", what, base, type(exc).__name__)
    return f"The {what} could not be delivered: IncidentFox did not answer at {base}."
