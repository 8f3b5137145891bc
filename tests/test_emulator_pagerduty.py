"""The PagerDuty emulator answers the real ``pagerduty`` client over HTTPS as PagerDuty's REST API v2
does, fails on demand, and sends V3 webhooks signed as PagerDuty signs them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import httpx2
import pagerduty
import pytest
from aiohttp import web

from incidentfox.emulators.pagerduty import DEFAULT_API_KEY, PagerDutyEmulator
from incidentfox.emulators.pagerduty_seed import (
    ALICE_ID,
    BOB_ID,
    BOT_EMAIL,
    CAROL_ID,
    CHECKOUT_POLICY_ID,
    CHECKOUT_PRIMARY_SCHEDULE_ID,
    CHECKOUT_SERVICE_ID,
    FIRING_INCIDENT_ID,
    FIRING_TITLE,
    PAYMENTS_SERVICE_ID,
)
from incidentfox.emulators.pagerduty_webhooks import USER_AGENT
from incidentfox.emulators.pagerduty_world import PagerDutyWorld, iso

T = TypeVar("T")


@pytest.fixture
async def pd() -> AsyncIterator[PagerDutyEmulator]:
    async with PagerDutyEmulator() as emulator:
        yield emulator


def _client(pd: PagerDutyEmulator, *, key: str | None = None, sender: str | None = BOT_EMAIL) -> Any:
    client = pagerduty.RestApiV2Client(key or pd.api_key, default_from=sender, verify=pd.client_ssl_context())
    client.url = pd.api_url
    client.max_network_attempts = 0
    return client


@pytest.fixture
def client(pd: PagerDutyEmulator) -> Iterator[Any]:
    c = _client(pd)
    yield c
    c.close()


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The client is synchronous; the emulator needs the event loop free to answer it."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> pagerduty.Error:
    with pytest.raises(pagerduty.Error) as caught:
        await _call(fn, *args, **kwargs)
    return caught.value


def _body(error: pagerduty.Error) -> Any:
    assert error.response is not None
    return error.response.json()


async def test_the_real_client_reads_a_wrapped_incident_with_links_back_to_the_emulator(
    pd: PagerDutyEmulator, client: Any
) -> None:
    incident = await _call(client.rget, f"/incidents/{FIRING_INCIDENT_ID}")
    assert incident["title"] == FIRING_TITLE
    assert incident["status"] == "triggered"
    assert incident["self"] == f"{pd.api_url}/incidents/{FIRING_INCIDENT_ID}"
    assert incident["service"]["summary"] == "checkout-api"
    assert incident["service"]["self"] == f"{pd.api_url}/services/{CHECKOUT_SERVICE_ID}"
    assert incident["alert_counts"] == {"all": 2, "triggered": 2, "resolved": 0}
    assert [a["assignee"]["id"] for a in incident["assignments"]] == [ALICE_ID]
    call = pd.calls[-1]
    assert (call.method, call.route, call.status) == ("GET", "incident", 200)
    assert call.headers["Authorization"] == f"Token token={DEFAULT_API_KEY}"
    assert call.headers["Accept"] == "application/vnd.pagerduty+json;version=2"
    assert call.headers["From"] == BOT_EMAIL


async def test_a_wrong_or_missing_token_is_401_in_pagerdutys_error_envelope(pd: PagerDutyEmulator) -> None:
    wrong = _client(pd, key="not-the-key")
    error = await _error(wrong.rget, f"/incidents/{FIRING_INCIDENT_ID}")
    assert isinstance(error, pagerduty.HttpError)
    assert error.response is not None and error.response.status_code == 401
    assert _body(error) == {"error": {"message": "Authentication failed", "code": 2006}}
    with httpx2.Client(verify=pd.client_ssl_context()) as raw:
        response = await _call(raw.get, f"{pd.api_url}/services")
    assert response.status_code == 401
    assert [c.status for c in pd.calls] == [401, 401]


async def test_unknown_ids_and_paths_are_404(pd: PagerDutyEmulator, client: Any) -> None:
    missing = await _error(client.rget, "/incidents/QNOSUCHINCIDENT")
    assert missing.response is not None and missing.response.status_code == 404
    assert _body(missing)["error"]["code"] == 2100
    service = await _error(client.rget, "/services/PNOPE00")
    assert service.response is not None and service.response.status_code == 404
    response = await _call(client.get, "/nothing/here")
    assert response.status_code == 404


async def test_iter_all_follows_limit_offset_and_more_across_pages(
    pd: PagerDutyEmulator, client: Any
) -> None:
    for n in range(57):
        pd.world.add_incident(
            PAYMENTS_SERVICE_ID, f"payments blip {n}", status="resolved", created_at=timedelta(hours=n)
        )
    found = await _call(
        client.list_all, "/incidents", params={"service_ids[]": [PAYMENTS_SERVICE_ID]}, page_size=20
    )
    assert len(found) == 58
    assert len({i["id"] for i in found}) == 58
    pages = pd.calls_to("incidents")
    assert [(c.param("offset"), c.param("limit")) for c in pages] == [("0", "20"), ("20", "20"), ("40", "20")]
    last = await _call(
        client.jget, "/incidents", params={"service_ids[]": [PAYMENTS_SERVICE_ID], "offset": 40}
    )
    assert (last["more"], last["offset"], last["limit"], len(last["incidents"])) == (False, 40, 25, 18)
    assert last["total"] is None


async def test_pagination_caps_limit_counts_total_on_request_and_refuses_past_ten_thousand(
    client: Any,
) -> None:
    capped = await _call(client.jget, "/users", params={"limit": 500, "total": "true"})
    assert capped["limit"] == 100
    assert capped["total"] == 4
    assert capped["more"] is False
    error = await _error(client.jget, "/incidents", params={"offset": 9990, "limit": 20})
    assert error.response is not None and error.response.status_code == 400
    assert _body(error)["error"]["code"] == 2001


async def test_incident_filters_by_status_service_urgency_and_created_window(
    pd: PagerDutyEmulator, client: Any
) -> None:
    pd.world.add_incident(
        CHECKOUT_SERVICE_ID, "very old page", status="resolved", created_at=timedelta(days=40)
    )
    week = {"since": iso(pd.world.now - timedelta(days=7)), "until": iso(pd.world.now + timedelta(minutes=1))}
    resolved = await _call(
        client.list_all,
        "/incidents",
        params={"service_ids[]": [CHECKOUT_SERVICE_ID], "statuses[]": ["resolved"], **week},
    )
    assert sorted(i["title"] for i in resolved) == [
        FIRING_TITLE,
        FIRING_TITLE,
        "checkout-api p99 latency above 2s",
    ]
    high_open = await _call(
        client.list_all,
        "/incidents",
        params={"urgencies[]": ["high"], "statuses[]": ["triggered", "acknowledged"]},
    )
    assert [i["id"] for i in high_open] == [FIRING_INCIDENT_ID]
    default_window = await _call(client.list_all, "/incidents")
    everything = await _call(client.list_all, "/incidents", params={"date_range": "all"})
    assert "very old page" not in {i["title"] for i in default_window}
    assert len(everything) == len(default_window) + 1
    bad = await _error(client.jget, "/incidents", params={"statuses[]": ["on_fire"]})
    assert _body(bad)["error"]["errors"] == [
        "Statuses must be a list of triggered, acknowledged, or resolved."
    ]
    bad_time = await _error(client.jget, "/incidents", params={"since": "yesterday-ish"})
    assert bad_time.response is not None and bad_time.response.status_code == 400


async def test_sort_by_orders_incidents(client: Any) -> None:
    newest_first = await _call(client.list_all, "/incidents", params={"sort_by": "created_at:desc"})
    created = [i["created_at"] for i in newest_first]
    assert created == sorted(created, reverse=True)
    assert newest_first[0]["id"] == FIRING_INCIDENT_ID
    by_number = await _call(client.list_all, "/incidents")
    numbers = [i["incident_number"] for i in by_number]
    assert numbers == sorted(numbers)


async def test_alerts_and_log_entries_of_an_incident(pd: PagerDutyEmulator, client: Any) -> None:
    alerts = await _call(client.list_all, f"/incidents/{FIRING_INCIDENT_ID}/alerts")
    assert [a["summary"] for a in alerts] == [FIRING_TITLE, "KubePodCrashLooping checkout-7d9f8b6c5-x2k4q"]
    assert alerts[0]["body"]["details"]["error_rate"] == "7.2%"
    assert alerts[1]["self"] == f"{pd.api_url}/incidents/{FIRING_INCIDENT_ID}/alerts/{alerts[1]['id']}"
    entries = await _call(client.list_all, f"/incidents/{FIRING_INCIDENT_ID}/log_entries")
    assert [e["type"] for e in entries] == [
        "annotate_log_entry",
        "notify_log_entry",
        "assign_log_entry",
        "trigger_log_entry",
    ]
    overview = await _call(
        client.list_all, f"/incidents/{FIRING_INCIDENT_ID}/log_entries", params={"is_overview": "true"}
    )
    assert "notify_log_entry" not in {e["type"] for e in overview}
    assert len(overview) == 3


async def test_a_note_needs_a_from_header_naming_a_user_as_the_real_api_does(
    pd: PagerDutyEmulator, client: Any
) -> None:
    anonymous = _client(pd, sender=None)
    missing = await _error(anonymous.rpost, f"/incidents/{FIRING_INCIDENT_ID}/notes", json={"content": "hi"})
    assert missing.response is not None and missing.response.status_code == 400
    assert "From header" in _body(missing)["error"]["errors"][0]
    stranger = _client(pd, sender="mallory@evil.example")
    unknown = await _error(stranger.rpost, f"/incidents/{FIRING_INCIDENT_ID}/notes", json={"content": "hi"})
    assert _body(unknown)["error"] == {"message": "Requester User Not Found", "code": 1008}
    assert len(pd.world.notes[FIRING_INCIDENT_ID]) == 1

    note = await _call(
        client.rpost, f"/incidents/{FIRING_INCIDENT_ID}/notes", json={"content": "Rolled back."}
    )
    assert note["content"] == "Rolled back."
    assert note["user"]["summary"] == "IncidentFox"
    posted = pd.calls_to("create_note")[-1]
    assert posted.json == {"note": {"content": "Rolled back."}}
    assert posted.status == 201
    notes = await _call(client.rget, f"/incidents/{FIRING_INCIDENT_ID}/notes")
    assert [n["content"] for n in notes][-1] == "Rolled back."
    newest = (await _call(client.jget, f"/incidents/{FIRING_INCIDENT_ID}/log_entries"))["log_entries"][0]
    assert (newest["type"], newest["channel"]["summary"]) == ("annotate_log_entry", "Rolled back.")
    blank = await _error(client.rpost, f"/incidents/{FIRING_INCIDENT_ID}/notes", json={"content": "  "})
    assert blank.response is not None and blank.response.status_code == 400


async def test_a_user_level_key_is_its_user_and_an_account_key_is_recognised_as_such(client: Any) -> None:
    assert await _call(lambda: client.api_key_access) == "account"
    async with PagerDutyEmulator(key_user_id=ALICE_ID) as alices:
        alice = _client(alices, sender=None)
        assert await _call(lambda: alice.api_key_access) == "user"
        me = await _call(alice.rget, "/users/me")
        assert (me["id"], me["email"]) == (ALICE_ID, "alice@acme.example")
        note = await _call(alice.rpost, f"/incidents/{FIRING_INCIDENT_ID}/notes", json={"content": "on it"})
        assert note["user"]["id"] == ALICE_ID


async def test_oncalls_filter_by_policy_schedule_window_and_earliest(
    pd: PagerDutyEmulator, client: Any
) -> None:
    now = await _call(client.list_all, "/oncalls", params={"escalation_policy_ids[]": [CHECKOUT_POLICY_ID]})
    assert [(o["escalation_level"], o["user"]["id"]) for o in now] == [(1, ALICE_ID), (2, CAROL_ID)]
    two_weeks = {"since": iso(pd.world.now), "until": iso(pd.world.now + timedelta(days=14))}
    primary = await _call(
        client.list_all, "/oncalls", params={"schedule_ids[]": [CHECKOUT_PRIMARY_SCHEDULE_ID], **two_weeks}
    )
    assert [o["user"]["id"] for o in primary] == [ALICE_ID, BOB_ID]
    pd.world.add_oncall(
        ALICE_ID,
        CHECKOUT_POLICY_ID,
        schedule_id=CHECKOUT_PRIMARY_SCHEDULE_ID,
        start=pd.world.now + timedelta(days=12),
        end=pd.world.now + timedelta(days=13),
    )
    earliest = await _call(
        client.list_all,
        "/oncalls",
        params={"schedule_ids[]": [CHECKOUT_PRIMARY_SCHEDULE_ID], "earliest": "true", **two_weeks},
    )
    assert [o["user"]["id"] for o in earliest] == [ALICE_ID, BOB_ID]
    direct = await _call(client.list_all, "/oncalls", params={"user_ids[]": [CAROL_ID]})
    assert {(o["escalation_policy"]["summary"], o["start"]) for o in direct} == {
        ("Checkout Escalation", iso(pd.world.now - timedelta(days=2))),
        ("Payments Escalation", None),
    }


async def test_services_carry_their_status_from_open_incidents(client: Any) -> None:
    services = {s["id"]: s for s in await _call(client.list_all, "/services")}
    assert services[CHECKOUT_SERVICE_ID]["status"] == "critical"
    assert services[PAYMENTS_SERVICE_ID]["status"] == "active"
    found = await _call(client.list_all, "/services", params={"query": "pay"})
    assert [s["name"] for s in found] == ["payments-api"]
    one = await _call(client.rget, f"/services/{CHECKOUT_SERVICE_ID}")
    assert one["escalation_policy"]["id"] == CHECKOUT_POLICY_ID


async def test_fail_next_answers_429_with_retry_after_and_rate_limit_headers(pd: PagerDutyEmulator) -> None:
    pd.fail_next("incident", 429, retry_after=3, times=2)
    url = f"{pd.api_url}/incidents/{FIRING_INCIDENT_ID}"
    headers = {"Authorization": f"Token token={pd.api_key}"}
    with httpx2.Client(verify=pd.client_ssl_context(), headers=headers) as raw:
        statuses = []
        for _ in range(3):
            response = await _call(raw.get, url)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["Retry-After"] == "3"
                assert response.headers["ratelimit-reset"] == "3"
                assert response.json() == {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
    assert statuses == [429, 429, 200]
    assert pd.pending_faults == 0


async def test_fail_next_matches_a_path_or_anything_and_serves_internal_errors(
    pd: PagerDutyEmulator, client: Any
) -> None:
    pd.fail_next(f"/incidents/{FIRING_INCIDENT_ID}/alerts", 503)
    pd.fail_next("*", 500)
    error = await _error(client.list_all, f"/incidents/{FIRING_INCIDENT_ID}/alerts")
    assert isinstance(error, pagerduty.ServerHttpError)
    assert error.response is not None and error.response.status_code == 503
    assert _body(error)["error"]["code"] == 2000
    users = await _error(client.rget, "/users/PUALICE")
    assert users.response is not None and users.response.status_code == 500
    assert (await _call(client.rget, "/users/PUALICE"))["name"] == "Alice Nguyen"


async def test_a_read_only_key_cannot_write(pd: PagerDutyEmulator, client: Any) -> None:
    pd.read_only = True
    error = await _error(client.rpost, f"/incidents/{FIRING_INCIDENT_ID}/notes", json={"content": "x"})
    assert error.response is not None and error.response.status_code == 403
    assert _body(error)["error"]["message"] == "Access Denied"
    assert len(pd.world.notes[FIRING_INCIDENT_ID]) == 1


async def test_unreachable_drops_the_connection(pd: PagerDutyEmulator, client: Any) -> None:
    pd.unreachable = True
    error = await _error(client.rget, f"/incidents/{FIRING_INCIDENT_ID}")
    assert error.response is None
    assert isinstance(error.__cause__, httpx2.TransportError)
    assert pd.calls[-1].status == 0


def test_an_empty_world_has_nothing_but_can_be_built_up() -> None:
    world = PagerDutyWorld()
    user = world.add_user("Dana", "dana@acme.example")
    policy = world.add_escalation_policy("Solo", levels=[[user["id"]]])
    world.add_oncall(user["id"], policy["id"])
    service = world.add_service("solo-api", policy["id"])
    incident = world.add_incident(service["id"], "solo down", status="acknowledged")
    assert [a["assignee"]["id"] for a in incident["assignments"]] == [user["id"]]
    assert [e["type"] for e in world.log_entries[incident["id"]]] == [
        "trigger_log_entry",
        "assign_log_entry",
        "notify_log_entry",
        "acknowledge_log_entry",
    ]
    assert world.service_view(service["id"])["status"] == "warning"
    with pytest.raises(ValueError, match="status must be one of"):
        world.add_incident(service["id"], "nope", status="exploded")


class _Receiver:
    """A real HTTP endpoint on 127.0.0.1 that keeps the raw bytes and headers of each POST."""

    def __init__(self, status: int = 202) -> None:
        self.status = status
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> _Receiver:
        app = web.Application()
        app.router.add_post("/webhooks/pagerduty", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/webhooks/pagerduty"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), dict(request.headers)))
        return web.Response(status=self.status, text="accepted")


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_a_webhook_is_signed_over_the_exact_raw_body_with_every_secret(pd: PagerDutyEmulator) -> None:
    forged = "v1=" + "0" * 64
    async with _Receiver() as receiver:
        delivery = await pd.send_webhook(
            receiver.url,
            "incident.triggered",
            FIRING_INCIDENT_ID,
            secret="current-secret",
            extra_secrets=["rotated-out-secret"],
            extra_signatures=[forged],
        )
    assert (delivery.status, delivery.text) == (202, "accepted")
    body, headers = receiver.received[0]
    assert body == delivery.request.body
    signatures = headers["X-PagerDuty-Signature"].split(",")
    assert signatures == [
        forged,
        "v1=" + _hmac_hex("rotated-out-secret", body),
        "v1=" + _hmac_hex("current-secret", body),
    ]
    assert headers["User-Agent"] == USER_AGENT == "PagerDuty-Webhook/V3.0"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Webhook-Id"] == delivery.request.webhook_id
    assert pd.webhooks_sent == [delivery]


async def test_a_webhook_carries_the_documented_v3_incident_event(pd: PagerDutyEmulator) -> None:
    request = pd.build_webhook("incident.triggered", FIRING_INCIDENT_ID, secret="s", event_id="01EVENT")
    event = json.loads(request.body)["event"]
    assert set(event) == {"id", "event_type", "resource_type", "occurred_at", "agent", "client", "data"}
    assert (event["id"], event["event_type"], event["resource_type"]) == (
        "01EVENT",
        "incident.triggered",
        "incident",
    )
    assert event["occurred_at"].endswith("Z") and "." in event["occurred_at"]
    data = event["data"]
    assert data["id"] == FIRING_INCIDENT_ID
    assert data["type"] == "incident"
    assert data["self"] == f"{pd.api_url}/incidents/{FIRING_INCIDENT_ID}"
    assert data["html_url"] == f"https://acme.pagerduty.com/incidents/{FIRING_INCIDENT_ID}"
    assert (data["number"], data["status"], data["title"], data["urgency"]) == (
        7,
        "triggered",
        FIRING_TITLE,
        "high",
    )
    assert data["service"]["id"] == CHECKOUT_SERVICE_ID
    assert data["service"]["summary"] == "checkout-api"
    assert data["service"]["html_url"].endswith(f"/service-directory/{CHECKOUT_SERVICE_ID}")
    assert [a["summary"] for a in data["assignees"]] == ["Alice Nguyen"]
    assert data["escalation_policy"]["id"] == CHECKOUT_POLICY_ID
    assert [t["summary"] for t in data["teams"]] == ["Checkout"]
    assert data["priority"]["summary"] == "P1"
    assert data["conference_bridge"]["conference_url"].startswith("https://")
    assert data["incident_key"] and data["created_at"].endswith("Z")


async def test_a_redelivery_repeats_the_same_bytes_and_ids(pd: PagerDutyEmulator) -> None:
    async with _Receiver(status=500) as receiver:
        first = await pd.send_webhook(receiver.url, "incident.resolved", FIRING_INCIDENT_ID, secret="s")
        again = await pd.redeliver(receiver.url, first.request)
    assert (first.status, again.status) == (500, 500)
    (body1, headers1), (body2, headers2) = receiver.received
    assert body1 == body2
    assert headers1["X-Webhook-Id"] == headers2["X-Webhook-Id"]
    assert json.loads(body1)["event"]["id"] == first.request.event_id


async def test_annotated_events_carry_the_note_and_unsigned_ones_no_signature(pd: PagerDutyEmulator) -> None:
    request = pd.build_webhook("incident.annotated", FIRING_INCIDENT_ID, secret=None, agent_user_id=BOB_ID)
    event = request.payload["event"]
    assert event["data"]["type"] == "incident_note"
    assert event["data"]["content"] == "Error rate jumped right after the 14:05 checkout deploy."
    assert event["agent"]["id"] == BOB_ID
    assert "X-PagerDuty-Signature" not in request.headers
    with pytest.raises(ValueError, match="unsupported event type"):
        pd.build_webhook("service.updated", FIRING_INCIDENT_ID, secret="s")
