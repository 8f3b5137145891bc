"""PagerDuty V3 webhooks end to end over HTTP: a page opens an investigated thread in the team's
channel and gets the RCA back as a note; later events update the same thread, in any order and after
a restart; forged, stale-shaped, duplicate and unclaimed deliveries change nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

from incidentfox.agents.incidents.models import IncidentThread
from incidentfox.agents.incidents.threads import ROOT_EVENT_TYPE
from incidentfox.agents.progress_marker import run_metadata
from incidentfox.agents.runs.models import Run
from incidentfox.config.models import AuditEvent
from incidentfox.emulators.pagerduty import PagerDutyEmulator
from incidentfox.emulators.pagerduty_seed import CHECKOUT_SERVICE_ID, FIRING_INCIDENT_ID, PAYMENTS_SERVICE_ID
from incidentfox.emulators.pagerduty_webhooks import pagerduty_signature
from tests.conftest import ADMIN_TOKEN
from tests.slack_world import CHANNEL, World, world

SECRET = "pd-webhook-secret-for-checkout"
INCIDENT_CHANNEL = "C0INCIDENTS"


@asynccontextmanager
async def paged_world(
    tmp_path: Path, database_url: str | None = None, **pagerduty: Any
) -> AsyncIterator[tuple[World, PagerDutyEmulator]]:
    async with PagerDutyEmulator() as pd, world(tmp_path, team_config={}, database_url=database_url) as w:
        team = {
            "integrations": {
                "kubernetes": {"api_url": w.k8s.api_url, "token": w.k8s.token, "namespace": "prod"},
                "pagerduty": pd.integration_config(webhook_secret=SECRET, **pagerduty),
            },
            "routing": {
                "slack_channel_ids": [CHANNEL, INCIDENT_CHANNEL],
                "pagerduty_service_ids": [CHECKOUT_SERVICE_ID],
            },
        }
        assert w.fox.runtime is not None
        from tests.slack_world import ADMIN

        await w.fox.runtime.config.write_config(ADMIN, "acme", "checkout", team, operation="put")
        assert w.fox.incident_notifier is not None
        w.fox.incident_notifier.poll_s = 0.1
        w.fox.incident_notifier.schedule = type(w.fox.incident_notifier.schedule)(
            base_s=0.05, cap_s=0.2, note_attempts=3
        )
        yield w, pd


def hook_url(w: World) -> str:
    return f"http://127.0.0.1:{w.fox.port}/webhooks/pagerduty"


async def root_message(w: World, channel: str = CHANNEL, timeout: float = 10.0) -> Any:
    call = await w.slack.wait_for(
        "chat.postMessage",
        lambda c: (
            c.ok
            and c.args.get("channel") == channel
            and not c.args.get("thread_ts")
            and "PagerDuty" in str(c.args.get("text"))
        ),
        timeout=timeout,
    )
    return call


async def wait_for(check: Any, what: str, timeout: float = 15.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def incident_row(w: World) -> IncidentThread | None:
    assert w.fox.runtime is not None
    return await w.fox.runtime.incidents.get(f"pagerduty:{FIRING_INCIDENT_ID}")


async def test_a_page_opens_an_investigated_thread_and_gets_the_rca_back_as_a_note(tmp_path: Path) -> None:
    async with paged_world(tmp_path) as (w, pd):
        delivery = await pd.send_webhook(hook_url(w), "incident.triggered", FIRING_INCIDENT_ID, secret=SECRET)
        assert delivery.status == 202, delivery.text
        assert delivery.elapsed_s < 5

        root = await root_message(w)
        blocks = json.dumps(root.args.get("blocks"), ensure_ascii=False)
        assert "checkout-api 5xx error rate above 5%" in blocks
        assert "Triggered" in blocks and "checkout-api" in blocks
        thread = root.response["ts"]
        final = await w.final_update(thread, "CrashLoopBackOff", timeout=20)
        assert final.ok

        notes = await wait_for(lambda: _async(pd.calls_to("create_note", "POST")), "the note on the incident")
        [note] = notes
        content = note.json["note"]["content"]
        assert "IncidentFox RCA" in content and "CrashLoopBackOff" in content
        assert "Slack thread: https://" in content
        assert note.headers.get("From")

        row = await incident_row(w)
        assert row is not None and row.root_ts == thread and row.note is None
        runs = await _runs(w)
        assert [(r.source, r.thread_ts, r.status) for r in runs] == [("pagerduty", thread, "succeeded")]


def root_now(w: World, ts: str) -> str:
    """The root message's blocks as the channel shows them now (edits applied)."""
    [root] = [m for m in w.slack.messages(CHANNEL) if m.ts == ts]
    return json.dumps(root.blocks, ensure_ascii=False)


async def _async(value: Any) -> Any:
    return value


async def _runs(w: World) -> list[Run]:
    assert w.fox.runtime is not None
    async with w.fox.runtime.sessions() as session:
        return list((await session.scalars(select(Run))).all())


async def test_updates_land_on_the_same_thread_even_out_of_order_and_after_a_restart(tmp_path: Path) -> None:
    async with paged_world(tmp_path, post_notes=False) as (w, pd):
        incident = pd.world.incidents[FIRING_INCIDENT_ID]
        incident["status"] = "acknowledged"
        from datetime import UTC, datetime, timedelta

        now = datetime.now(UTC)
        early = await pd.send_webhook(
            hook_url(w), "incident.acknowledged", FIRING_INCIDENT_ID, secret=SECRET, occurred_at=now
        )
        assert early.status == 200, early.text
        incident["status"] = "triggered"
        opened = await pd.send_webhook(
            hook_url(w),
            "incident.triggered",
            FIRING_INCIDENT_ID,
            secret=SECRET,
            occurred_at=now - timedelta(seconds=30),
        )
        assert opened.status == 202
        root = await root_message(w)
        thread = root.response["ts"]
        await w.final_update(thread, "CrashLoopBackOff", timeout=20)

        async def acknowledged_line() -> bool:
            return any("Acknowledged" in (m.text or "") for m in w.slack.messages(CHANNEL, thread))

        await wait_for(acknowledged_line, "the acknowledged line in the thread")
        await wait_for(
            lambda: _async("Acknowledged" in root_now(w, thread)),
            "the root message showing the newer state, not the older triggered one",
        )

        await w.restart()
        assert w.fox.incident_notifier is not None
        w.fox.incident_notifier.poll_s = 0.1
        incident["status"] = "resolved"
        resolved = await pd.send_webhook(hook_url(w), "incident.resolved", FIRING_INCIDENT_ID, secret=SECRET)
        assert resolved.status == 200

        async def resolved_line() -> bool:
            return any("Resolved" in (m.text or "") for m in w.slack.messages(CHANNEL, thread))

        await wait_for(resolved_line, "the resolved line in the same thread after a restart")
        roots = [
            c
            for c in w.slack.calls("chat.postMessage")
            if c.ok and c.args.get("channel") == CHANNEL and not c.args.get("thread_ts")
        ]
        assert len(roots) == 1, "one thread per incident"
        assert len(await _runs(w)) == 1, "updates start no investigation"


async def test_any_one_of_several_signatures_is_enough_and_forged_or_missing_ones_change_nothing(
    tmp_path: Path,
) -> None:
    async with paged_world(tmp_path) as (w, pd):
        forged = await pd.send_webhook(
            hook_url(w), "incident.triggered", FIRING_INCIDENT_ID, secret="not-the-secret"
        )
        unsigned = await pd.send_webhook(hook_url(w), "incident.triggered", FIRING_INCIDENT_ID, secret=None)
        assert (forged.status, unsigned.status) == (401, 401)
        assert "signature" in forged.text and SECRET not in forged.text
        assert await _runs(w) == [] and await incident_row(w) is None

        rotated = await pd.send_webhook(
            hook_url(w),
            "incident.triggered",
            FIRING_INCIDENT_ID,
            secret=SECRET,
            extra_signatures=["v1=" + "0" * 64],
            extra_secrets=["an-old-secret"],
        )
        assert rotated.status == 202
        await root_message(w)


async def test_the_same_delivery_twice_or_at_once_makes_exactly_one_run(tmp_path: Path) -> None:
    async with paged_world(tmp_path, post_notes=False) as (w, pd):
        request = pd.build_webhook("incident.triggered", FIRING_INCIDENT_ID, secret=SECRET)
        answers = await asyncio.gather(*(pd.redeliver(hook_url(w), request) for _ in range(5)))
        assert sorted(a.status for a in answers) == [200, 200, 200, 200, 202]
        again = await pd.redeliver(hook_url(w), request)
        assert again.status == 200 and json.loads(again.text)["outcome"] == "duplicate"
        root = await root_message(w)
        await w.final_update(root.response["ts"], "CrashLoopBackOff", timeout=20)
        assert len(await _runs(w)) == 1


async def test_an_unclaimed_service_gets_202_and_an_unrouted_audit_event(tmp_path: Path) -> None:
    async with paged_world(tmp_path) as (w, pd):
        payments = next(i for i in pd.world.incidents.values() if i["service"]["id"] == PAYMENTS_SERVICE_ID)
        nobody_can_verify = await pd.send_webhook(
            hook_url(w), "incident.triggered", payments["id"], secret=SECRET
        )
        assert nobody_can_verify.status == 401, "without an installation secret nothing verifies it"
        assert await _unrouted_audits(w) == []

        installation = SecretStr("installation-wide-pd-secret")
        w.fox.settings = w.fox.settings.model_copy(update={"pagerduty_webhook_secret": installation})
        await w.restart()
        forged = await pd.send_webhook(hook_url(w), "incident.triggered", payments["id"], secret=SECRET)
        assert forged.status == 401
        unrouted = await pd.send_webhook(
            hook_url(w), "incident.triggered", payments["id"], secret=installation.get_secret_value()
        )
        assert unrouted.status == 202 and json.loads(unrouted.text) == {"outcome": "unrouted"}
        [audited] = await _unrouted_audits(w)
        assert PAYMENTS_SERVICE_ID in audited.target and audited.actor == "webhook:pagerduty"
        assert await _runs(w) == []

        audit_url = f"http://127.0.0.1:{w.fox.port}/api/v1/audit?action=webhook.unrouted"
        async with w.http.get(audit_url) as anonymous:
            assert anonymous.status == 401
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        orgs_url = f"http://127.0.0.1:{w.fox.port}/api/v1/orgs"
        async with w.http.post(orgs_url, json={"org_id": "globex", "name": "Globex"}, headers=admin) as made:
            org_admin = (await made.json())["admin_token"]
        async with w.http.get(audit_url, headers={"Authorization": f"Bearer {org_admin}"}) as refused:
            assert refused.status == 403, "installation events are the global admin's only"
        async with w.http.get(audit_url, headers=admin) as answer:
            assert answer.status == 200
            [event] = (await answer.json())["events"]
        assert event["action"] == "webhook.unrouted" and PAYMENTS_SERVICE_ID in event["target"]


async def _unrouted_audits(w: World) -> list[AuditEvent]:
    assert w.fox.runtime is not None
    async with w.fox.runtime.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action == "webhook.unrouted")
        return list((await session.scalars(query)).all())


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[]", 400),
        (b'{"event": {"id": "x"}}', 400),
        (
            b'{"event": {"id": "E1", "event_type": "service.updated", "occurred_at": "2026-12-03T10:00:00Z", '
            b'"data": {"id": "PX"}}}',
            204,
        ),
    ],
)
async def test_malformed_or_unhandled_bodies_are_answered_without_a_run(
    tmp_path: Path, body: bytes, status: int
) -> None:
    async with paged_world(tmp_path) as (w, _pd):
        async with w.http.post(
            hook_url(w), data=body, headers={"Content-Type": "application/json"}
        ) as answer:
            assert answer.status == status
        async with w.http.post(hook_url(w), data=b"x" * (1024 * 1024 + 1)) as too_big:
            assert too_big.status == 413
        assert await _runs(w) == []
        assert w.fox.runtime is not None
        async with w.fox.runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(IncidentThread)) == 0


async def test_a_note_pagerduty_keeps_refusing_is_retried_then_reported_in_the_thread(tmp_path: Path) -> None:
    async with paged_world(tmp_path) as (w, pd):
        pd.fail_next("create_note", 429, retry_after=0, times=50)
        delivery = await pd.send_webhook(hook_url(w), "incident.triggered", FIRING_INCIDENT_ID, secret=SECRET)
        assert delivery.status == 202
        thread = (await root_message(w)).response["ts"]
        await w.final_update(thread, "CrashLoopBackOff", timeout=20)

        async def reported() -> list[Any]:
            return [
                m for m in w.slack.messages(CHANNEL, thread) if "PagerDuty is rate-limiting" in (m.text or "")
            ]

        [report] = await wait_for(reported, "the plain-words report in the thread")
        assert "add the RCA as a note" in report.text and "Traceback" not in report.text
        tries = pd.calls_to("create_note", "POST")
        assert len(tries) >= 3, "retried before giving up"
        assert all(c.status == 429 for c in tries)

        async def settled() -> bool:
            """The report is posted before the row is settled, so the row may lag a moment."""
            row = await incident_row(w)
            return row is not None and row.note is None and row.next_at is None

        await wait_for(settled, "the given-up note to be cleared from the incident's owed work")


async def test_a_team_that_turned_notes_off_gets_no_note(tmp_path: Path) -> None:
    async with paged_world(tmp_path, post_notes=False) as (w, pd):
        await pd.send_webhook(hook_url(w), "incident.triggered", FIRING_INCIDENT_ID, secret=SECRET)
        thread = (await root_message(w)).response["ts"]
        await w.final_update(thread, "CrashLoopBackOff", timeout=20)
        await asyncio.sleep(0.5)
        assert pd.calls_to("create_note", "POST") == []


async def test_the_same_update_delivered_at_once_posts_one_line(tmp_path: Path, database_url: str) -> None:
    async with paged_world(tmp_path, database_url, post_notes=False) as (w, pd):
        await pd.send_webhook(hook_url(w), "incident.triggered", FIRING_INCIDENT_ID, secret=SECRET)
        thread = (await root_message(w)).response["ts"]
        await w.final_update(thread, "CrashLoopBackOff", timeout=20)
        pd.world.incidents[FIRING_INCIDENT_ID]["status"] = "acknowledged"
        request = pd.build_webhook("incident.acknowledged", FIRING_INCIDENT_ID, secret=SECRET)
        answers = await asyncio.gather(*(pd.redeliver(hook_url(w), request) for _ in range(6)))
        outcomes = sorted(json.loads(a.text)["outcome"] for a in answers)
        assert outcomes == ["duplicate"] * 5 + ["updated"]

        async def acknowledged_lines() -> list[Any]:
            return [m for m in w.slack.messages(CHANNEL, thread) if "Acknowledged" in (m.text or "")]

        await wait_for(acknowledged_lines, "the acknowledged line")
        await asyncio.sleep(0.5)
        assert len(await acknowledged_lines()) == 1


async def test_an_event_time_without_a_utc_offset_is_a_400_not_a_500(tmp_path: Path) -> None:
    """Found by the webhook fuzzer: a signed delivery with a naive ``occurred_at`` answered 500."""
    async with paged_world(tmp_path) as (w, pd):
        request = pd.build_webhook("incident.triggered", FIRING_INCIDENT_ID, secret=SECRET)
        payload = request.payload
        payload["event"]["occurred_at"] = "2026-12-03T10:00:00"
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-PagerDuty-Signature": pagerduty_signature(body, SECRET),
        }
        async with w.http.post(hook_url(w), data=body, headers=headers) as answer:
            assert answer.status == 400
            assert "occurred_at" in await answer.text()
        assert await _runs(w) == [] and await incident_row(w) is None


async def test_a_run_cut_off_after_slack_took_its_root_message_takes_that_thread_over(tmp_path: Path) -> None:
    """The crash came between Slack accepting the incident's root message and the run saving it."""
    async with paged_world(tmp_path, post_notes=False) as (w, pd):
        await w.restart(role="bot")
        accepted = await pd.send_webhook(hook_url(w), "incident.triggered", FIRING_INCIDENT_ID, secret=SECRET)
        assert accepted.status == 202
        [run] = await _runs(w)
        bot = AsyncWebClient(token=w.slack.bot_token, base_url=w.slack.api_url)
        stranded = await bot.chat_postMessage(
            channel=CHANNEL, text="PagerDuty #1: checkout", metadata=run_metadata(run.run_id, ROOT_EVENT_TYPE)
        )
        await w.restart()
        await w.slack.wait_for(
            "chat.update",
            lambda c: c.ok and "CrashLoopBackOff" in json.dumps(c.args),
            timeout=20,
        )
        roots = [
            c
            for c in w.slack.calls("chat.postMessage")
            if c.ok and c.args.get("channel") == CHANNEL and not c.args.get("thread_ts")
        ]
        assert len(roots) == 1, "no second root message"
        [finished] = await _runs(w)
        assert (finished.thread_ts, finished.attempts) == (stranded["ts"], 2)
        progress = await w.progress_post(stranded["ts"])
        assert progress.ok
