"""Ack latency per source, measured through the real app: Slack events, slash commands and button
presses over HTTP, an event over Socket Mode, and webhook deliveries; refusals are not acks. The
app's ``/metrics`` shows every process-wide family beside its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from incidentfox.blocks.rca import ACTION_FEEDBACK_UP
from incidentfox.emulators.pagerduty import PagerDutyEmulator
from incidentfox.emulators.pagerduty_seed import CHECKOUT_SERVICE_ID, FIRING_INCIDENT_ID
from tests.metric_samples import sample, sample_reaches, scraped_families
from tests.slack_world import ADMIN, CHANNEL, USER, World, signed_headers, world

ACKS = "incidentfox_ack_seconds_count"
PD_SECRET = "pd-webhook-secret-for-checkout"


def acks(source: str) -> float:
    return sample(ACKS, source=source)


@asynccontextmanager
async def acking_world(tmp_path: Path) -> AsyncIterator[tuple[World, PagerDutyEmulator]]:
    async with PagerDutyEmulator() as pd, world(tmp_path, socket_mode=True, team_config={}) as w:
        team = {
            "integrations": {
                "kubernetes": {"api_url": w.k8s.api_url, "token": w.k8s.token, "namespace": "prod"},
                "pagerduty": pd.integration_config(webhook_secret=PD_SECRET, post_notes=False),
            },
            "routing": {"slack_channel_ids": [CHANNEL], "pagerduty_service_ids": [CHECKOUT_SERVICE_ID]},
        }
        assert w.fox.runtime is not None
        await w.fox.runtime.config.write_config(ADMIN, "acme", "checkout", team, operation="put")
        await w.slack.wait_for_connections(1)
        yield w, pd


async def test_slack_acks_are_timed_per_source_over_http_and_socket_mode(tmp_path: Path) -> None:
    async with acking_world(tmp_path) as (w, _):
        before = {source: acks(source) for source in ("slack_event", "slack_command", "slack_action")}

        envelope = await w.slack.send_event(w.mention("why is checkout slow?"), event_id="EvM1")
        await w.slack.wait_for_ack(envelope)
        await sample_reaches(ACKS, before["slack_event"] + 1, source="slack_event")

        mention = w.mention("why is checkout crashlooping?")
        response = await w.post_event(w.slack.make_event_callback(mention, event_id="EvM2"))
        assert response.status == 200
        assert (await w.command("help"))[0] == 200
        press = w.slack.make_block_action(
            ACTION_FEEDBACK_UP, "run_0000", user=USER, channel=CHANNEL, message_ts=mention["ts"]
        )
        assert (await w.post_interactive(press))[0] == 200

        assert {source: acks(source) - count for source, count in before.items()} == {
            "slack_event": 2,
            "slack_command": 1,
            "slack_action": 1,
        }
        assert sample("incidentfox_ack_seconds_bucket", source="slack_command", le="2.5") >= 1


async def test_refused_slack_requests_are_not_acks(tmp_path: Path) -> None:
    async with acking_world(tmp_path) as (w, _):
        before = acks("slack_event")
        forged = '{"type": "event_callback", "event_id": "EvM3"}'
        headers = signed_headers(forged, secret="not-the-signing-secret")
        async with w.http.post(w.url, data=forged, headers=headers) as refused:
            assert refused.status == 401
        broken = '{"type": "event_callback", '
        async with w.http.post(w.url, data=broken, headers=signed_headers(broken)) as malformed:
            assert malformed.status == 400
        assert acks("slack_event") == before


async def test_webhook_deliveries_are_acks_of_their_source_and_forgeries_are_not(tmp_path: Path) -> None:
    async with acking_world(tmp_path) as (w, pd):
        base = f"http://127.0.0.1:{w.fox.port}/webhooks"
        before = {source: acks(source) for source in ("pagerduty", "github", "incidentio")}

        forged = await pd.send_webhook(
            f"{base}/pagerduty", "incident.acknowledged", FIRING_INCIDENT_ID, secret="forged-secret"
        )
        assert forged.status == 401
        assert acks("pagerduty") == before["pagerduty"], "a refused delivery is not an ack"

        delivery = await pd.send_webhook(
            f"{base}/pagerduty", "incident.acknowledged", FIRING_INCIDENT_ID, secret=PD_SECRET
        )
        assert 200 <= delivery.status < 300, delivery.text
        async with w.http.post(
            f"{base}/github",
            data=b"{}",
            headers={"X-GitHub-Event": "star", "Content-Type": "application/json"},
        ) as ignored:
            assert ignored.status == 204
        async with w.http.post(f"{base}/incidentio/acme/checkout", data=b"{}") as refused:
            assert refused.status == 400, "no Standard Webhooks headers: refused"

        assert {source: acks(source) - count for source, count in before.items()} == {
            "pagerduty": 1,
            "github": 1,
            "incidentio": 0,
        }


async def test_metrics_of_the_app_show_every_process_wide_family(tmp_path: Path) -> None:
    async with acking_world(tmp_path) as (w, _):
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvM4"))
        async with w.http.get(f"http://127.0.0.1:{w.fox.port}/metrics") as scraped:
            assert scraped.status == 200
            families = scraped_families(await scraped.text())

    for family in (
        "incidentfox_ack_seconds",
        "incidentfox_runs_started",
        "incidentfox_runs",
        "incidentfox_slack_api_calls",
        "incidentfox_slack_api_ratelimited",
        "incidentfox_tool_calls",
        "incidentfox_tool_seconds",
        "incidentfox_model_seconds",
        "incidentfox_model_tokens",
        "incidentfox_sandboxes_active",
        "incidentfox_http_requests",
        "incidentfox_queue_waiting",
    ):
        assert family in families, f"{family} is missing from /metrics"
    acked = {labels["source"] for labels, _ in families["incidentfox_ack_seconds"] if "source" in labels}
    assert "slack_event" in acked
    methods = {labels["method"] for labels, value in families["incidentfox_slack_api_calls"] if value > 0}
    assert "auth.test" in methods, "the app's own Slack client is metered (its warm-up auth.test)"
    backends = {labels["backend"] for labels, _ in families["incidentfox_sandboxes_active"]}
    assert backends == {"local", "kubernetes", "unsafe-local"}
