"""The PagerDuty emulator's change events and service includes, in the REST API v2's shapes, read
by the real ``pagerduty`` client over HTTPS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pagerduty
import pytest

from incidentfox.emulators.pagerduty import PagerDutyEmulator
from incidentfox.emulators.pagerduty_seed import (
    BOT_EMAIL,
    CHECKOUT_CHANGES_ID,
    CHECKOUT_POLICY_ID,
    CHECKOUT_SERVICE_ID,
    CHECKOUT_TEAM_ID,
    DEPLOY_SUMMARY,
    PAYMENTS_SERVICE_ID,
)
from incidentfox.emulators.pagerduty_world import iso

T = TypeVar("T")


@pytest.fixture
async def pd() -> AsyncIterator[PagerDutyEmulator]:
    async with PagerDutyEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(pd: PagerDutyEmulator) -> Iterator[Any]:
    c = pagerduty.RestApiV2Client(pd.api_key, default_from=BOT_EMAIL, verify=pd.client_ssl_context())
    c.url = pd.api_url
    c.max_network_attempts = 0
    yield c
    c.close()


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_change_events_newest_first_in_the_apis_shape(pd: PagerDutyEmulator, client: Any) -> None:
    events = await _call(client.rget, "/change_events")
    assert [e["summary"] for e in events] == [DEPLOY_SUMMARY, "Deploy checkout-api 2.13.4 to prod"]
    newest = events[0]
    assert newest["type"] == "change_event" and newest["source"] == "github-actions"
    assert newest["services"][0]["id"] == CHECKOUT_SERVICE_ID
    assert newest["services"][0]["self"] == f"{pd.api_url}/services/{CHECKOUT_SERVICE_ID}"
    assert newest["integration"] == {
        "id": CHECKOUT_CHANGES_ID,
        "type": "inbound_integration_reference",
        "summary": "GitHub Actions deploys",
    }
    assert newest["custom_details"]["version"] == "2.14.0"


async def test_change_events_filter_by_window_service_team_and_integration(
    pd: PagerDutyEmulator, client: Any
) -> None:
    pd.world.add_change_event(PAYMENTS_SERVICE_ID, "Rotate PSP credentials", at=timedelta(minutes=3))
    since = iso(pd.world.now - timedelta(hours=1))
    recent = await _call(client.rget, "/change_events", params={"since": since})
    assert sorted(e["summary"] for e in recent) == [DEPLOY_SUMMARY, "Rotate PSP credentials"]
    mine = await _call(client.rget, f"/services/{PAYMENTS_SERVICE_ID}/change_events")
    assert [e["summary"] for e in mine] == ["Rotate PSP credentials"]
    team = await _call(client.rget, "/change_events", params={"team_ids[]": [CHECKOUT_TEAM_ID]})
    assert {e["services"][0]["id"] for e in team} == {CHECKOUT_SERVICE_ID}
    wired = await _call(client.rget, "/change_events", params={"integration_ids[]": [CHECKOUT_CHANGES_ID]})
    assert len(wired) == 2
    page = await _call(client.jget, "/change_events", params={"limit": 1, "total": "true"})
    assert (len(page["change_events"]), page["more"], page["total"]) == (1, True, 3)


async def test_change_events_refuse_a_backwards_window_and_an_unknown_service(
    pd: PagerDutyEmulator, client: Any
) -> None:
    params = {"since": iso(pd.world.now), "until": iso(pd.world.now - timedelta(hours=1))}
    with pytest.raises(pagerduty.Error) as backwards:
        await _call(client.rget, "/change_events", params=params)
    assert backwards.value.response is not None
    assert backwards.value.response.status_code == 400
    assert backwards.value.response.json()["error"]["errors"] == ["'since' must be before 'until'"]
    with pytest.raises(pagerduty.Error) as unknown:
        await _call(client.rget, "/services/PNOSUCH/change_events")
    assert unknown.value.response is not None and unknown.value.response.status_code == 404


async def test_a_service_includes_its_policy_teams_and_integrations_when_asked(client: Any) -> None:
    plain = await _call(client.rget, f"/services/{CHECKOUT_SERVICE_ID}")
    assert plain["escalation_policy"]["type"] == "escalation_policy_reference"
    assert [i["type"] for i in plain["integrations"]] == ["events_api_v2_inbound_integration_reference"] * 2
    params = {"include[]": ["escalation_policies", "teams", "integrations"]}
    full = await _call(client.rget, f"/services/{CHECKOUT_SERVICE_ID}", params=params)
    assert full["escalation_policy"]["id"] == CHECKOUT_POLICY_ID
    assert len(full["escalation_policy"]["escalation_rules"]) == 2
    assert full["teams"][0]["name"] == "Checkout"
    assert [i["name"] for i in full["integrations"]] == ["Prometheus Alertmanager", "GitHub Actions deploys"]
    assert full["integrations"][0]["service"]["id"] == CHECKOUT_SERVICE_ID


async def test_change_events_take_faults_by_route_name(pd: PagerDutyEmulator, client: Any) -> None:
    pd.fail_next("service_change_events", 429, retry_after=0)
    body = await _call(client.jget, f"/services/{CHECKOUT_SERVICE_ID}/change_events")
    assert len(body["change_events"]) == 2, "the client retried the 429"
    assert [c.status for c in pd.calls_to("service_change_events")] == [429, 200]
