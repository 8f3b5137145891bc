"""The pagerduty toolset's service tools through the real ``pagerduty`` client against the emulator
over HTTPS: what is open now, change events against an incident's start, a service's setup and an
escalation policy with who is on call, and their failures in one sentence."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from incidentfox.agents.toolsets import pagerduty as pt
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.pagerduty_api import PagerDutyClient, connect
from incidentfox.emulators.pagerduty import PagerDutyEmulator
from incidentfox.emulators.pagerduty_seed import (
    BOB_ID,
    CHECKOUT_CHANGES_ID,
    CHECKOUT_POLICY_ID,
    CHECKOUT_SERVICE_ID,
    DEPLOY_SUMMARY,
    FIRING_INCIDENT_ID,
    FIRING_TITLE,
    PAYMENTS_POLICY_ID,
    PAYMENTS_SERVICE_ID,
)
from tests.toolset_calls import run_tool


@pytest.fixture
async def pd() -> AsyncIterator[PagerDutyEmulator]:
    async with PagerDutyEmulator() as emulator:
        yield emulator


def _config(pd: PagerDutyEmulator, services: list[str] | None = None, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"integrations": {"pagerduty": pd.integration_config(**overrides)}}
    if services is not None:
        config["routing"] = {"pagerduty_service_ids": services}
    return config


@pytest.fixture
async def client(pd: PagerDutyEmulator) -> AsyncIterator[PagerDutyClient]:
    connected = await connect(_config(pd, [CHECKOUT_SERVICE_ID]))
    yield connected
    connected.close()


async def _run(client: PagerDutyClient, name: str, /, **args: Any) -> ToolResult:
    return await run_tool(pt.PAGERDUTY, client, name, **args)


def test_the_service_tools_are_reads_the_model_is_told_about() -> None:
    tools = {t.name: t for t in pt.PAGERDUTY.tools}
    for name in ("open_incidents", "change_events", "service_details", "escalation_policy"):
        assert not tools[name].writes
        assert name in pt.PAGERDUTY.instructions


async def test_open_incidents_of_the_teams_services_triggered_first_with_age(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    result = await _run(client, "open_incidents")
    assert result.status == "ok", result.error
    data = result.data
    assert data["scope"] == f"services {CHECKOUT_SERVICE_ID}"
    assert (data["total"], data["by_status"], data["by_urgency"]) == (
        2,
        {"triggered": 1, "acknowledged": 1},
        {"high": 1, "low": 1},
    )
    firing, disk = data["incidents"]
    assert (firing["id"], firing["status"], firing["urgency"], firing["title"]) == (
        FIRING_INCIDENT_ID,
        "triggered",
        "high",
        FIRING_TITLE,
    )
    assert firing["age_minutes"] in (12, 13)
    assert firing["url"] == f"https://acme.pagerduty.com/incidents/{FIRING_INCIDENT_ID}"
    assert (disk["status"], disk["age_minutes"] // 60, disk["acknowledged_by"]) == (
        "acknowledged",
        20,
        ["Alice Nguyen"],
    )
    [call] = pd.calls_to("incidents")
    assert call.query["statuses[]"] == ["triggered", "acknowledged"]
    assert call.query["service_ids[]"] == [CHECKOUT_SERVICE_ID]
    assert call.param("date_range") == "all", "an incident open for months still counts"


async def test_open_incidents_by_urgency_or_service_and_none_open_is_no_data(client: PagerDutyClient) -> None:
    low = await _run(client, "open_incidents", urgency="low")
    assert [i["title"] for i in low.data["incidents"]] == ["checkout-db-0 disk usage above 85%"]
    payments = await _run(client, "open_incidents", service_ids=[PAYMENTS_SERVICE_ID])
    assert (payments.status, payments.data) == (
        "no_data",
        f"No triggered or acknowledged incidents on services {PAYMENTS_SERVICE_ID}",
    )


async def test_open_incidents_without_team_services_looks_at_all(pd: PagerDutyEmulator) -> None:
    pd.world.add_incident(PAYMENTS_SERVICE_ID, "payments-api p99 latency above 1s", urgency="low")
    client = await connect(_config(pd))
    result = await _run(client, "open_incidents")
    client.close()
    assert result.data["scope"] == "all services"
    assert result.data["by_service"] == {"checkout-api": 2, "payments-api": 1}


async def test_change_events_of_an_incident_are_timed_against_its_start(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    result = await _run(client, "change_events", incident_id=FIRING_INCIDENT_ID, hours=48)
    assert result.status == "ok", result.error
    newest, older = result.data["change_events"]
    assert (newest["summary"], newest["minutes_before_incident"]) == (DEPLOY_SUMMARY, 2)
    assert newest["details"] == {"version": "2.14.0", "sha": "a41f9e2c0d77", "actor": "erin"}
    assert newest["integration"] == "GitHub Actions deploys"
    assert newest["links"] == [
        {"text": "Deploy run", "href": "https://github.com/acme/shop/actions/runs/9100000042"}
    ]
    assert older["minutes_before_incident"] == 27 * 60 - 12
    assert result.invocation.startswith(f"GET /services/{CHECKOUT_SERVICE_ID}/change_events?since=")
    [call] = pd.calls_to("service_change_events")
    assert call.param("since") and call.param("until")
    recent = await _run(client, "change_events", service_id=CHECKOUT_SERVICE_ID, hours=1)
    assert [e["summary"] for e in recent.data["change_events"]] == [DEPLOY_SUMMARY]
    assert "minutes_before_incident" not in recent.data["change_events"][0]


async def test_change_events_none_in_the_window_is_no_data(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    quiet = await _run(client, "change_events", service_id=PAYMENTS_SERVICE_ID)
    assert (quiet.status, quiet.data) == (
        "no_data",
        f"PagerDuty received no change events for service {PAYMENTS_SERVICE_ID} in the last 24 hours "
        "(deploys may not be sent to PagerDuty).",
    )
    pd.world.add_change_event(PAYMENTS_SERVICE_ID, "Rotate PSP credentials", at=timedelta(minutes=5))
    account = await _run(client, "change_events", hours=1)
    assert sorted(e["summary"] for e in account.data["change_events"]) == [
        DEPLOY_SUMMARY,
        "Rotate PSP credentials",
    ]
    assert account.invocation.startswith("GET /change_events?since=")


async def test_change_events_of_an_unknown_service_is_a_plain_404(client: PagerDutyClient) -> None:
    result = await _run(client, "change_events", service_id="PNOSUCH")
    assert (
        result.error
        == "Could not list change events of service PNOSUCH: PagerDuty has nothing with that id (404)."
    )


async def test_service_details_show_setup_policy_integrations_and_counts(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    result = await _run(client, "service_details", incident_id=FIRING_INCIDENT_ID)
    assert result.status == "ok", result.error
    data = result.data
    assert (data["id"], data["name"], data["status"]) == (CHECKOUT_SERVICE_ID, "checkout-api", "critical")
    assert data["teams"] == ["Checkout"]
    assert data["integrations"] == [
        {"name": "Prometheus Alertmanager", "type": "events_api_v2_inbound_integration"},
        {"name": "GitHub Actions deploys", "type": "events_api_v2_inbound_integration"},
    ]
    policy = data["escalation_policy"]
    assert (policy["id"], policy["name"]) == (CHECKOUT_POLICY_ID, "Checkout Escalation")
    assert [(lv["level"], lv["delay_minutes"], lv["targets"]) for lv in policy["levels"]] == [
        (1, 30, [{"name": "Checkout Primary", "type": "schedule"}]),
        (2, 30, [{"name": "Checkout Secondary", "type": "schedule"}]),
    ]
    assert (data["incidents_last_30_days"], data["open_incident_count"]) == (6, 2)
    assert result.url == f"https://acme.pagerduty.com/service-directory/{CHECKOUT_SERVICE_ID}"
    assert "integration_key" not in str(data)
    [call] = pd.calls_to("service")
    assert call.query["include[]"] == ["escalation_policies", "integrations", "teams"]
    assert CHECKOUT_CHANGES_ID not in str(data)


async def test_service_details_need_a_service_or_incident_and_a_missing_one_is_404(
    client: PagerDutyClient,
) -> None:
    nothing = await _run(client, "service_details")
    assert nothing.error == "Give service_id, or incident_id to describe its service."
    missing = await _run(client, "service_details", service_id="PNOSUCH")
    assert missing.error == "Could not read service PNOSUCH: PagerDuty has nothing with that id (404)."


async def test_escalation_policy_shows_levels_with_who_is_on_call_now(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    result = await _run(client, "escalation_policy", incident_id=FIRING_INCIDENT_ID)
    assert result.status == "ok", result.error
    data = result.data
    assert (data["name"], data["services"], data["teams"]) == (
        "Checkout Escalation",
        ["checkout-api"],
        ["Checkout"],
    )
    assert [(lv["level"], lv["on_call_now"]) for lv in data["levels"]] == [
        (1, ["Alice Nguyen"]),
        (2, ["Carol Smith"]),
    ]
    assert "warning" not in data
    assert result.url == f"https://acme.pagerduty.com/escalation_policies/{CHECKOUT_POLICY_ID}"
    payments = await _run(client, "escalation_policy", escalation_policy_id=PAYMENTS_POLICY_ID)
    assert payments.data["levels"] == [
        {
            "level": 1,
            "delay_minutes": 30,
            "targets": [{"name": "Carol Smith", "type": "user"}],
            "on_call_now": ["Carol Smith"],
        }
    ]
    lonely = pd.world.add_escalation_policy("Lonely", levels=[[BOB_ID]])
    unstaffed = await _run(client, "escalation_policy", escalation_policy_id=lonely["id"])
    assert unstaffed.data["warning"] == "Nobody is on call now at level(s) 1."


async def test_a_rejected_key_is_one_sentence(pd: PagerDutyEmulator) -> None:
    secret = "u+wrongKeyThatMustNotLeak99"
    client = await connect(_config(pd, [CHECKOUT_SERVICE_ID], api_key=secret))
    result = await _run(client, "open_incidents")
    client.close()
    assert result.error == (
        f"PagerDuty at {pd.api_url} rejected the API key (401 Unauthorized). "
        "Check integrations.pagerduty.api_key."
    )
    assert secret not in str(result)


async def test_a_short_rate_limit_is_waited_out_and_a_long_one_fails_in_plain_words(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    pd.fail_next("service_change_events", 429, retry_after=1)
    started = time.monotonic()
    waited = await _run(client, "change_events", service_id=CHECKOUT_SERVICE_ID)
    assert waited.status == "ok" and time.monotonic() - started >= 1
    pd.fail_next("escalation_policy", 429, retry_after=120)
    refused = await _run(client, "escalation_policy", escalation_policy_id=CHECKOUT_POLICY_ID)
    assert refused.error == (
        "PagerDuty is rate-limiting IncidentFox (429) and asked it to wait about 120 s; could not read "
        f"escalation policy {CHECKOUT_POLICY_ID}. Try again later."
    )


async def test_a_refused_request_quotes_pagerdutys_error(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    pd.fail_next("incidents", 400, message="Invalid Input Provided")
    result = await _run(client, "open_incidents")
    assert (
        result.error
        == "PagerDuty refused to list open incidents of services PCHKOUT: Invalid Input Provided (400)."
    )
