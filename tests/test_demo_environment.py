"""The demo environment end to end: seeded through the real config service on an empty database,
re-pointed at new emulator ports on a later start without seeding again, leaving alone a team pointed
at a real cluster; and, in no-LLM mode over Socket Mode, "why is checkout failing?" answered with the
failing dependency and its log line, a played PagerDuty page investigated in its own thread, and a
played CI failure explained from its job log."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from incidentfox.bot.assembly import IncidentFox
from incidentfox.config.models import AuditEvent
from incidentfox.config.permissions import Principal
from incidentfox.config.service import ConfigService
from incidentfox.egress import EgressPolicy, install_policy
from incidentfox.emulators.slack import SlackEmulator
from incidentfox.emulators.slack.store import RecordedCall
from incidentfox.web.demo import DEMO_CHANNEL_ID, LOCAL_USER_ID, DemoEnvironment
from incidentfox.web.demo_seed import DEMO_ORG_ID, SEED_ACTOR, TEAM_ID, DemoSeedError
from incidentfox.web.demo_world import (
    DEPLOY_ERROR,
    PAGE_TITLE,
    PAGERDUTY_SERVICE_ID,
    PAYMENTS_REPO,
)
from tests.conftest import make_settings

ADMIN = Principal(kind="admin")
FATAL_LINE = 'level=fatal msg="psp client: environment variable PSP_API_KEY is missing" version=2.8.0'
CHECKOUT_LINE = "cannot reach dependency payments-api.payments:8080"
FINAL_TIMEOUT_S = 30.0


@dataclass
class Demo:
    fox: IncidentFox
    slack: SlackEmulator
    env: DemoEnvironment

    @property
    def config(self) -> ConfigService:
        assert self.fox.runtime is not None
        return self.fox.runtime.config

    async def team_integrations(self) -> dict[str, Any]:
        integrations: dict[str, Any] = (await self.config.effective_config(DEMO_ORG_ID, TEAM_ID))[
            "integrations"
        ]
        return integrations

    async def audit(self) -> list[AuditEvent]:
        assert self.fox.runtime is not None
        async with self.fox.runtime.sessions() as session:
            query = select(AuditEvent).where(AuditEvent.org_id == DEMO_ORG_ID).order_by(AuditEvent.id)
            return list((await session.scalars(query)).all())

    async def root_message(self, needle: str) -> RecordedCall:
        """The bot's new message at the top of the demo channel containing ``needle``."""
        return await self.slack.wait_for(
            "chat.postMessage",
            lambda c: (
                c.ok
                and c.args.get("channel") == DEMO_CHANNEL_ID
                and not c.args.get("thread_ts")
                and needle in json.dumps(c.args, ensure_ascii=False)
            ),
            timeout=10,
        )

    async def final_answer(self, thread_ts: str, needle: str) -> str:
        """The progress message of the thread once it is edited into an answer holding ``needle``,
        as the channel shows it (its blocks, JSON)."""
        progress = await self.slack.wait_for(
            "chat.postMessage",
            lambda c: (
                c.ok and c.args.get("thread_ts") == thread_ts and "Investigating" in str(c.args.get("text"))
            ),
            timeout=10,
        )
        final = await self.slack.wait_for(
            "chat.update",
            lambda c: (
                c.ok
                and c.args.get("ts") == progress.response["ts"]
                and needle in json.dumps(c.args, ensure_ascii=False)
            ),
            timeout=FINAL_TIMEOUT_S,
        )
        return json.dumps(final.args.get("blocks"), ensure_ascii=False)


@asynccontextmanager
async def demo_started(tmp_path: Path, slack: SlackEmulator) -> AsyncIterator[Demo]:
    """IncidentFox on ``tmp_path``'s database, connected to ``slack`` over Socket Mode, with the demo
    started beside it (as ``serve`` runs them in the local workspace)."""
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/fox.db",
        tmp_path,
        slack_bot_token=slack.bot_token,
        slack_app_token=slack.app_token,
        slack_api_url=slack.api_url,
        port=0,
    )
    fox = IncidentFox(settings, update_interval=0.2)
    await fox.start()
    assert fox.runtime is not None
    env = DemoEnvironment(config=fox.runtime.config, slack=slack)
    try:
        await env.start(webhook_base_url=f"http://127.0.0.1:{fox.port}")
        yield Demo(fox=fox, slack=slack, env=env)
    finally:
        await env.stop()
        await fox.stop()


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator() as emulator:
        yield emulator


async def test_first_start_seeds_the_demo_org_its_claims_and_audit_through_the_config_service(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    async with demo_started(tmp_path, slack) as demo:
        assert demo.env.outcome == "seeded"
        nodes = await demo.config.list_nodes(ADMIN, DEMO_ORG_ID)
        assert [(n["node_id"], n["kind"], n["name"]) for n in nodes] == [
            ("demo", "org", "Demo (sample data)"),
            ("commerce", "unit", "Commerce (demo)"),
            ("payments", "team", "Payments (demo)"),
        ]
        org = (await demo.config.get_config(ADMIN, DEMO_ORG_ID, DEMO_ORG_ID))["config"]
        assert org["slack"] == {"workspace_ids": [slack.team_id], "admin_user_ids": [LOCAL_USER_ID]}

        routing = demo.config.routing
        for key in (
            {"slack_channel_id": DEMO_CHANNEL_ID},
            {"pagerduty_service_id": PAGERDUTY_SERVICE_ID},
            {"github_repo": PAYMENTS_REPO},
        ):
            target = await routing.lookup(**key)
            assert target is not None and (target.org_id, target.team_node_id) == (DEMO_ORG_ID, TEAM_ID), key

        integrations = await demo.team_integrations()
        assert integrations["kubernetes"]["api_url"] == demo.env.kubernetes.api_url
        assert integrations["pagerduty"]["api_url"] == demo.env.pagerduty.api_url
        assert integrations["pagerduty"]["ca_cert_content"] == demo.env.pagerduty.ca_cert_pem
        assert integrations["github"]["api_url"] == demo.env.github.api_url
        shown = (await demo.config.get_config(ADMIN, DEMO_ORG_ID, TEAM_ID))["config"]["integrations"]
        assert shown["kubernetes"]["token"].startswith("••••"), "secrets are stored sealed and shown redacted"
        assert shown["pagerduty"]["webhook_secret"].startswith("••••")

        rows = await demo.audit()
        assert {r.actor for r in rows} == {SEED_ACTOR}
        assert [(r.action, r.target) for r in rows] == [
            ("org.create", "demo"),
            ("config.write", "demo"),
            ("node.create", "commerce"),
            ("node.create", "payments"),
            ("config.write", "payments"),
        ]

        channel = slack.workspace.channels[DEMO_CHANNEL_ID]
        assert channel["name"] == "demo-incidents"
        [pinned_ts] = slack.pinned(DEMO_CHANNEL_ID)
        [welcome] = slack.messages(DEMO_CHANNEL_ID)
        assert welcome.ts == pinned_ts and welcome.user == slack.bot_user_id and welcome.bot_id
        blocks = json.dumps(welcome.blocks, ensure_ascii=False)
        assert "Welcome to the IncidentFox demo" in blocks and "INCIDENTFOX_DEMO=0" in blocks


async def test_a_later_start_repoints_the_team_at_the_new_emulators_without_seeding_again(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    async with demo_started(tmp_path, slack) as first:
        before = await first.team_integrations()
        seeded_rows = len(await first.audit())
    async with demo_started(tmp_path, slack) as second:
        assert second.env.outcome == "repointed"
        after = await second.team_integrations()
        assert (
            after["kubernetes"]["api_url"] == second.env.kubernetes.api_url != before["kubernetes"]["api_url"]
        )
        assert after["pagerduty"]["api_url"] == second.env.pagerduty.api_url
        assert after["pagerduty"]["ca_cert_content"] == second.env.pagerduty.ca_cert_pem
        assert after["pagerduty"]["ca_cert_content"] != before["pagerduty"]["ca_cert_content"]
        assert after["github"]["api_url"] == second.env.github.api_url
        for integration in ("pagerduty", "github"):
            assert after[integration]["webhook_secret"] == before[integration]["webhook_secret"]
        assert len(await second.config.list_nodes(ADMIN, DEMO_ORG_ID)) == 3
        rows = await second.audit()
        [repoint] = rows[seeded_rows:]
        assert (repoint.action, repoint.target, repoint.actor) == ("config.write", TEAM_ID, SEED_ACTOR)
        assert len(slack.pinned(DEMO_CHANNEL_ID)) == 1, "the welcome is pinned once per workspace"


async def test_a_team_pointed_at_a_real_cluster_from_the_console_is_left_alone(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    real = {"api_url": "https://k8s.prod.example.com:6443", "token": "real-cluster-token-0123456789"}
    async with demo_started(tmp_path, slack) as first:
        patch = {"integrations": {"kubernetes": real}}
        await first.config.write_config(ADMIN, DEMO_ORG_ID, TEAM_ID, patch, operation="patch")
    async with demo_started(tmp_path, slack) as second:
        after = await second.team_integrations()
        assert after["kubernetes"] == real
        assert after["github"]["api_url"] == second.env.github.api_url, "what still uses the demo moves"


async def test_an_installation_that_already_has_orgs_gets_no_demo(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/fox.db", tmp_path, port=0)
    fox = IncidentFox(settings)
    await fox.start()
    try:
        assert fox.runtime is not None
        async with fox.runtime.config.sessions.begin() as session:
            await fox.runtime.config.create_org(session, org_id="acme", name="Acme", actor="test")
        env = DemoEnvironment(config=fox.runtime.config, slack=slack)
        await env.start(webhook_base_url=f"http://127.0.0.1:{fox.port}")
        assert env.outcome == "absent" and not env.active
        assert await fox.runtime.config.org_count() == 1
        assert DEMO_CHANNEL_ID not in slack.workspace.channels
        with pytest.raises(RuntimeError, match="not started"):
            await env.play("pagerduty-page")
    finally:
        await fox.stop()


async def test_seeding_refused_by_the_egress_policy_fails_loudly_and_writes_nothing(
    tmp_path: Path, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/fox.db", tmp_path, port=0)
    fox = IncidentFox(settings)
    await fox.start()
    try:
        assert fox.runtime is not None
        install_policy(EgressPolicy(allow_private=False))
        env = DemoEnvironment(config=fox.runtime.config, slack=slack)
        with caplog.at_level(logging.ERROR), pytest.raises(DemoSeedError, match="EGRESS_ALLOW_PRIVATE"):
            await env.start(webhook_base_url=f"http://127.0.0.1:{fox.port}")
        assert any("demo: not started" in r.getMessage() for r in caplog.records)
        assert await fox.runtime.config.org_count() == 0
        assert DEMO_CHANNEL_ID not in slack.workspace.channels
    finally:
        await fox.stop()


async def test_why_is_checkout_failing_names_payments_api_and_quotes_its_log_line(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    async with demo_started(tmp_path, slack) as demo:
        await slack.wait_for_connections()
        mention = slack.make_app_mention(DEMO_CHANNEL_ID, LOCAL_USER_ID, "why is checkout failing?")
        await slack.wait_for_ack(await slack.send_event(mention))

        answer = await demo.final_answer(mention["ts"], "PSP_API_KEY is missing")
        assert "checkout depends on payments-api, which is failing" in answer
        assert "payments/payments-api-6d8f7b9c4-k2x7p" in answer and "CrashLoopBackOff" in answer
        assert FATAL_LINE.replace('"', '\\"') in answer, "the decisive log line is quoted verbatim"
        assert "previous logs" in answer
        assert CHECKOUT_LINE in answer, "checkout's own log line links it to its dependency"
        assert "🟢 High" in answer


async def test_playing_a_pagerduty_page_opens_a_thread_and_investigates_it(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    async with demo_started(tmp_path, slack) as demo:
        toast = await demo.env.play("pagerduty-page")
        assert toast.startswith("PagerDuty paged the payments on-call") and "#demo-incidents" in toast

        root = await demo.root_message(PAGE_TITLE)
        assert "PagerDuty" in str(root.args.get("text"))
        answer = await demo.final_answer(root.response["ts"], "PSP_API_KEY is missing")
        assert "payments/payments-api-6d8f7b9c4-k2x7p" in answer

        second = await demo.env.play("pagerduty-page")
        assert second.startswith("PagerDuty paged"), "every play is a new incident, not a duplicate"
        await slack.wait_for(
            "chat.postMessage",
            lambda c: (
                c.ok
                and c.args.get("channel") == DEMO_CHANNEL_ID
                and not c.args.get("thread_ts")
                and PAGE_TITLE in json.dumps(c.args, ensure_ascii=False)
                and c.response["ts"] != root.response["ts"]
            ),
            timeout=10,
        )


async def test_playing_a_ci_failure_explains_the_failed_step_from_its_log(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    async with demo_started(tmp_path, slack) as demo:
        toast = await demo.env.play("ci-failure")
        assert toast.startswith("GitHub reported the failed Deploy run") and PAYMENTS_REPO in toast

        root = await demo.root_message("CI failed")
        assert PAYMENTS_REPO in json.dumps(root.args, ensure_ascii=False)
        answer = await demo.final_answer(root.response["ts"], "exceeded its progress deadline")
        assert "Wait for rollout" in answer and "deploy (production)" in answer
        assert DEPLOY_ERROR.replace('"', '\\"') in answer


async def test_an_unknown_action_is_refused(tmp_path: Path, slack: SlackEmulator) -> None:
    async with demo_started(tmp_path, slack) as demo:
        assert [a.id for a in demo.env.actions] == ["pagerduty-page", "ci-failure"]
        with pytest.raises(ValueError, match="unknown demo action 'reboot-prod'"):
            await demo.env.play("reboot-prod")
