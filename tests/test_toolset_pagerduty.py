"""The pagerduty toolset through the real ``pagerduty`` client against the emulator over HTTPS: what
it reports, how it fails (in one sentence, without secrets), how it waits out rate limits, and that
its note is written only once a person approves it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from agents.tool_context import ToolContext

from incidentfox.agents.approvals.gate import SlackApprovalGate
from incidentfox.agents.approvals.service import ApprovalService
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ApprovalRequest, ProgressEvent
from incidentfox.agents.runs.service import RunStore
from incidentfox.agents.toolsets import pagerduty as pt
from incidentfox.agents.toolsets.base import ToolResult, ToolsetHealth
from incidentfox.agents.toolsets.function_tools import invoke_tool, toolset_function_tools
from incidentfox.agents.toolsets.pagerduty_api import (
    EgressCheckedBackend,
    PagerDutyClient,
    PagerDutyNotConfigured,
    connect,
    retry_after_seconds,
)
from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.egress import EgressPolicy, EgressRefused, install_policy
from incidentfox.emulators.pagerduty import PagerDutyEmulator
from incidentfox.emulators.pagerduty_seed import (
    BOT_EMAIL,
    CHECKOUT_POLICY_ID,
    FIRING_INCIDENT_ID,
    FIRING_TITLE,
    PAYMENTS_POLICY_ID,
    PAYMENTS_SERVICE_ID,
)
from tests.conftest import make_settings
from tests.test_approvals_service import Approvers, _run
from tests.toolset_calls import run_tool

REASON = "the responders should know the deploy is the cause"


@pytest.fixture
async def pd() -> AsyncIterator[PagerDutyEmulator]:
    async with PagerDutyEmulator() as emulator:
        yield emulator


def _config(pd: PagerDutyEmulator, **overrides: Any) -> dict[str, Any]:
    return {"integrations": {"pagerduty": pd.integration_config(**overrides)}}


@pytest.fixture
async def client(pd: PagerDutyEmulator) -> AsyncIterator[PagerDutyClient]:
    connected = await connect(_config(pd))
    yield connected
    connected.close()


async def _run_tool(client: PagerDutyClient, name: str, /, **args: Any) -> ToolResult:
    return await run_tool(pt.PAGERDUTY, client, name, **args)


async def test_connect_needs_an_api_key_and_an_https_url_and_reads_no_environment(
    pd: PagerDutyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGERDUTY_API_KEY", pd.api_key)
    with pytest.raises(PagerDutyNotConfigured, match=r"integrations\.pagerduty\.api_key"):
        await connect({"integrations": {}})
    with pytest.raises(PagerDutyNotConfigured, match=r"must be an https:// URL"):
        await connect(_config(pd, api_url=pd.api_url.replace("https://", "http://")))
    with pytest.raises(PagerDutyNotConfigured, match=r"ca_cert_content is not a PEM"):
        await connect(_config(pd, ca_cert_content="not a certificate"))


async def test_a_configured_url_must_pass_the_egress_policy(pd: PagerDutyEmulator) -> None:
    install_policy(EgressPolicy(allow_private=False))
    with pytest.raises(PagerDutyNotConfigured, match=r"Refused to connect: .*private or loopback"):
        await connect(_config(pd))
    backend = EgressCheckedBackend(private_allowed=False, setting="integrations.pagerduty.api_url")
    with pytest.raises(EgressRefused):
        backend.connect_tcp("127.0.0.1", int(pd.api_url.rsplit(":", 1)[1]))
    assert pd.calls == []


async def test_incident_details_has_its_alerts_timeline_and_notes(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    result = await _run_tool(client, "incident_details", incident_id=FIRING_INCIDENT_ID)
    assert result.status == "ok", result.error
    data = result.data
    assert (data["title"], data["status"], data["urgency"], data["priority"]) == (
        FIRING_TITLE,
        "triggered",
        "high",
        "P1",
    )
    assert data["service"] == {"id": "PCHKOUT", "name": "checkout-api"}
    assert data["escalation_policy"]["name"] == "Checkout Escalation"
    assert data["assignees"] == ["Alice Nguyen"]
    assert [a["summary"] for a in data["alerts"]] == [
        FIRING_TITLE,
        "KubePodCrashLooping checkout-7d9f8b6c5-x2k4q",
    ]
    assert data["alerts"][0]["details"]["error_rate"] == "7.2%"
    assert [e["type"] for e in data["timeline"]] == ["trigger", "assign", "annotate"]
    assert data["notifications_sent"] == 1
    assert data["notes"] == [
        {
            "at": pd.world.notes[FIRING_INCIDENT_ID][0]["created_at"],
            "by": "Bob Martinez",
            "content": "Error rate jumped right after the 14:05 checkout deploy.",
        }
    ]
    assert result.url == f"https://acme.pagerduty.com/incidents/{FIRING_INCIDENT_ID}"
    assert result.invocation == f"GET /incidents/{FIRING_INCIDENT_ID} (+ /alerts, /log_entries, /notes)"
    assert "body" not in json.dumps(data) and "self" not in json.dumps(data)


async def test_incident_details_keeps_many_alerts_compact(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    for n in range(30):
        pd.world.add_alert(FIRING_INCIDENT_ID, f"pod {n} restarting", details={"blob": "x" * 5000})
    result = await _run_tool(client, "incident_details", incident_id=FIRING_INCIDENT_ID)
    assert len(result.data["alerts"]) == pt.MAX_ALERTS
    assert result.data["alerts_not_shown"] == 1
    assert all(len(a["details"]["blob"]) <= 200 for a in result.data["alerts"][2:])


async def test_an_unknown_incident_is_one_plain_sentence(client: PagerDutyClient) -> None:
    result = await _run_tool(client, "incident_details", incident_id="QNOSUCHTHING01")
    assert result.status == "error"
    assert result.error == "Could not read incident QNOSUCHTHING01: PagerDuty has nothing with that id (404)."


async def test_service_incidents_counts_repeats_and_leaves_out_the_page_itself(
    client: PagerDutyClient,
) -> None:
    result = await _run_tool(client, "service_incidents", incident_id=FIRING_INCIDENT_ID)
    assert result.status == "ok", result.error
    data = result.data
    assert data["service"] == {"id": "PCHKOUT", "name": "checkout-api"}
    assert data["total"] == 4
    assert data["same_title_as_incident"] == 2
    assert data["by_status"] == {"acknowledged": 1, "resolved": 3}
    assert data["top_titles"][0] == {"title": FIRING_TITLE, "count": 2}
    assert FIRING_INCIDENT_ID not in {i["id"] for i in data["incidents"]}
    assert [i["created_at"] for i in data["incidents"]] == sorted(
        (i["created_at"] for i in data["incidents"]), reverse=True
    )
    assert data["median_minutes_to_resolve"] == 22
    assert result.invocation.startswith("GET /incidents?service_ids[]=PCHKOUT&since=")


async def test_service_incidents_by_service_and_window(client: PagerDutyClient) -> None:
    last_day = await _run_tool(client, "service_incidents", service_id=PAYMENTS_SERVICE_ID, days=1)
    assert last_day.status == "no_data"
    assert last_day.data == "No other incidents on service payments-api in the last 1 days"
    week = await _run_tool(client, "service_incidents", service_id=PAYMENTS_SERVICE_ID, days=7)
    assert [i["title"] for i in week.data["incidents"]] == [
        "payments-api card authorisation failures above 2%"
    ]
    assert week.data["incidents"][0]["minutes_to_resolve"] == 30
    unknown = await _run_tool(client, "service_incidents", service_id="PNOSUCH")
    assert (
        unknown.error
        == "Could not list past incidents of service PNOSUCH: PagerDuty has nothing with that id (404)."
    )
    neither = await _run_tool(client, "service_incidents")
    assert neither.status == "error" and neither.error is not None and "service_id" in neither.error


async def test_service_incidents_follows_pages_and_lists_only_the_newest(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    for n in range(150):
        pd.world.add_incident(
            PAYMENTS_SERVICE_ID, f"blip {n % 3}", status="resolved", created_at=timedelta(minutes=30 + n)
        )
    result = await _run_tool(client, "service_incidents", service_id=PAYMENTS_SERVICE_ID, days=7, limit=5)
    assert result.data["total"] == 151
    assert len(result.data["incidents"]) == 5
    assert result.data["incidents"][0]["title"] == "blip 0"
    assert [(c.param("offset"), c.param("limit")) for c in pd.calls_to("incidents")] == [
        ("0", "100"),
        ("100", "100"),
    ]


async def test_who_is_on_call_for_the_incidents_policy_or_a_given_one(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    result = await _run_tool(client, "who_is_on_call", incident_id=FIRING_INCIDENT_ID)
    assert result.status == "ok", result.error
    assert result.data["escalation_policy"] == {"id": CHECKOUT_POLICY_ID, "name": "Checkout Escalation"}
    assert [(r["level"], r["user"], r["schedule"]) for r in result.data["on_call"]] == [
        (1, "Alice Nguyen", "Checkout Primary"),
        (2, "Carol Smith", "Checkout Secondary"),
    ]
    assert pd.calls_to("oncalls")[-1].query["escalation_policy_ids[]"] == [CHECKOUT_POLICY_ID]
    payments = await _run_tool(client, "who_is_on_call", escalation_policy_id=PAYMENTS_POLICY_ID)
    assert payments.data["on_call"] == [
        {
            "level": 1,
            "user": "Carol Smith",
            "user_id": "PUCAROL",
            "schedule": None,
            "since": None,
            "until": None,
        }
    ]
    empty = pd.world.add_escalation_policy("Nobody", levels=[])
    nobody = await _run_tool(client, "who_is_on_call", escalation_policy_id=empty["id"])
    assert nobody.status == "no_data"


async def test_a_rejected_key_is_one_sentence_without_the_key(pd: PagerDutyEmulator) -> None:
    secret = "u+wrongKeyThatMustNotLeak99"
    client = await connect(_config(pd, api_key=secret))
    result = await _run_tool(client, "incident_details", incident_id=FIRING_INCIDENT_ID)
    assert result.status == "error"
    assert result.error == (
        f"PagerDuty at {pd.api_url} rejected the API key (401 Unauthorized). "
        "Check integrations.pagerduty.api_key."
    )
    assert secret not in json.dumps([result.error, result.invocation])
    assert secret[-4:] not in (result.error or "")
    assert [c.status for c in pd.calls] == [401]


async def test_a_429_is_waited_out_for_as_long_as_retry_after_says(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    pd.fail_next("incident", 429, retry_after=1)
    started = time.monotonic()
    result = await _run_tool(client, "who_is_on_call", incident_id=FIRING_INCIDENT_ID)
    waited = time.monotonic() - started
    assert result.status == "ok", result.error
    assert 1.0 <= waited < 5.0
    incident_calls = pd.calls_to("incident")
    assert [c.status for c in incident_calls] == [429, 200]
    assert incident_calls[1].at - incident_calls[0].at >= 1.0


async def test_rate_limiting_that_outlasts_the_retries_fails_in_plain_words(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    pd.fail_next("incident", 429, retry_after=0, times=4)
    result = await _run_tool(client, "incident_details", incident_id=FIRING_INCIDENT_ID)
    assert result.error == (
        f"PagerDuty is rate-limiting IncidentFox (429); could not read incident {FIRING_INCIDENT_ID}. "
        "Try again later."
    )
    assert len(pd.calls_to("incident")) == 3
    assert pd.pending_faults == 1
    await _run_tool(client, "incident_details", incident_id=FIRING_INCIDENT_ID)
    pd.fail_next("incident", 429, retry_after=120)
    started = time.monotonic()
    long_wait = await _run_tool(client, "incident_details", incident_id=FIRING_INCIDENT_ID)
    assert time.monotonic() - started < 2.0
    assert long_wait.error is not None and "asked it to wait about 120 s" in long_wait.error


async def test_a_server_error_on_a_read_is_retried_then_reported(
    pd: PagerDutyEmulator, client: PagerDutyClient
) -> None:
    pd.fail_next("incident", 503)
    recovered = await _run_tool(client, "incident_details", incident_id=FIRING_INCIDENT_ID)
    assert recovered.status == "ok"
    pd.fail_next("incident", 502, times=3)
    failed = await _run_tool(client, "incident_details", incident_id=FIRING_INCIDENT_ID)
    assert failed.error == (
        f"PagerDuty at {pd.api_url} answered 502 when asked to read incident {FIRING_INCIDENT_ID}; "
        "it may be having trouble, try again in a minute."
    )


async def test_an_api_that_is_down_is_reported_as_unreachable(pd: PagerDutyEmulator) -> None:
    client = await connect(_config(pd))
    await pd.stop()
    started = time.monotonic()
    result = await _run_tool(client, "who_is_on_call", escalation_policy_id=CHECKOUT_POLICY_ID)
    assert time.monotonic() - started < 5.0
    assert result.error == (
        f"PagerDuty API at {pd.api_url} is unreachable (connection refused); "
        f"could not list who is on call for policy {CHECKOUT_POLICY_ID}."
    )


async def test_an_untrusted_certificate_is_named(pd: PagerDutyEmulator) -> None:
    config = _config(pd)
    del config["integrations"]["pagerduty"]["ca_cert_content"]
    client = await connect(config)
    result = await _run_tool(client, "incident_details", incident_id=FIRING_INCIDENT_ID)
    assert result.error is not None and "TLS certificate is not trusted" in result.error


def test_retry_after_is_read_as_seconds_a_date_or_the_rate_limit_reset() -> None:
    now = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "Sun, 01 Jun 2025 12:00:30 GMT"}, now=lambda: now) == 30.0
    assert retry_after_seconds({"ratelimit-reset": "20"}) == 20.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


async def test_add_note_writes_as_the_configured_user(pd: PagerDutyEmulator, client: PagerDutyClient) -> None:
    result = await _run_tool(
        client,
        "add_note",
        incident_id=FIRING_INCIDENT_ID,
        content="Root cause: the 14:05 deploy.",
        reason=REASON,
    )
    assert result.status == "ok", result.error
    assert result.data["by"] == "IncidentFox"
    assert pd.world.notes[FIRING_INCIDENT_ID][-1]["content"] == "Root cause: the 14:05 deploy."
    posted = pd.calls_to("create_note")[-1]
    assert posted.headers["From"] == BOT_EMAIL
    assert posted.json == {"note": {"content": "Root cause: the 14:05 deploy."}}


async def test_add_note_failures_say_what_to_fix(pd: PagerDutyEmulator) -> None:
    anonymous = await connect(_config(pd, from_email=None))
    no_sender = await _run_tool(
        anonymous, "add_note", incident_id=FIRING_INCIDENT_ID, content="x", reason=REASON
    )
    assert no_sender.error is not None and no_sender.error.endswith(
        "Set integrations.pagerduty.from_email to the email of the PagerDuty user notes come from."
    )
    assert "(400)" in no_sender.error
    pd.read_only = True
    client = await connect(_config(pd))
    refused = await _run_tool(client, "add_note", incident_id=FIRING_INCIDENT_ID, content="x", reason=REASON)
    assert refused.error == (
        f"PagerDuty did not allow IncidentFox to add a note to incident {FIRING_INCIDENT_ID} "
        "(403 Forbidden: Access Denied: This API key is read-only). "
        "The API key may be read-only or lack access to it."
    )
    assert len(pd.world.notes[FIRING_INCIDENT_ID]) == 1


def test_add_note_params_need_text_a_reason_and_a_plain_id() -> None:
    params = pt.AddNoteParams
    schema = json.dumps(params.model_json_schema())
    assert "minLength" not in schema and "maxLength" not in schema
    with pytest.raises(ValueError, match="the note is empty"):
        params.model_validate({"incident_id": "Q1", "content": "   ", "reason": REASON})
    with pytest.raises(ValueError, match="keep it under 25000 characters"):
        params.model_validate({"incident_id": "Q1", "content": "x" * 25_001, "reason": REASON})
    with pytest.raises(ValueError, match="pattern"):
        params.model_validate({"incident_id": "../users", "content": "x", "reason": REASON})
    described = params.model_validate(
        {"incident_id": "Q1", "content": "Deploy at fault.", "reason": REASON}
    ).describe_action()
    assert (described.action, described.target, described.reason) == (
        "add a note to",
        "PagerDuty incident Q1: “Deploy at fault.”",
        REASON,
    )


async def test_without_anyone_to_approve_the_note_never_reaches_pagerduty(pd: PagerDutyEmulator) -> None:
    events: list[ProgressEvent] = []
    ctx = InvestigationContext(
        run_id="r", org_id="o", team_node_id="t", config=_config(pd), emit=events.append
    )
    tool = next(t for t in toolset_function_tools(pt.PAGERDUTY, agent="pagerduty") if t.name == "add_note")
    args = json.dumps({"incident_id": FIRING_INCIDENT_ID, "content": "RCA", "reason": REASON})
    out = await tool.on_invoke_tool(
        ToolContext(ctx, tool_name=tool.name, tool_call_id="n1", tool_arguments=args), args
    )
    assert json.loads(out)["status"] == "approval_required"
    assert pd.calls == []
    assert pd.api_key not in out


@pytest.fixture
async def sqlite_runtime(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await build_runtime(make_settings(sqlite_url, tmp_path), migrate=True)
    yield runtime
    await runtime.close()


async def _ask_to_note(
    runtime: Runtime, pd: PagerDutyEmulator
) -> tuple[asyncio.Task[str], ApprovalRequest, ApprovalService, Any]:
    run = await _run(runtime.sessions)
    service = ApprovalService(runtime.sessions, poll_interval_s=0.05)
    events: list[ProgressEvent] = []
    config = _config(pd)
    ctx = InvestigationContext(
        run_id=run.run_id,
        org_id=run.org_id,
        team_node_id=run.team_node_id,
        config=config,
        emit=events.append,
        approvals=SlackApprovalGate.for_run(service, run, config, events.append),
    )
    tool = next(t for t in pt.PAGERDUTY.tools if t.name == "add_note")
    args = json.dumps({"incident_id": FIRING_INCIDENT_ID, "content": "RCA: bad deploy.", "reason": REASON})
    call = asyncio.create_task(invoke_tool(ctx, pt.PAGERDUTY, tool, args, call_id="n1", agent="pagerduty"))
    for _ in range(300):
        asked = [e for e in events if isinstance(e, ApprovalRequest)]
        if asked:
            return call, asked[0], service, run
        await asyncio.sleep(0.01)
    raise AssertionError(f"no approval request: {events}")


async def test_an_approved_note_is_posted_once(sqlite_runtime: Runtime, pd: PagerDutyEmulator) -> None:
    call, request, service, _ = await _ask_to_note(sqlite_runtime, pd)
    assert (request.action, request.target) == (
        "add a note to",
        f"PagerDuty incident {FIRING_INCIDENT_ID}: “RCA: bad deploy.”",
    )
    assert pd.calls_to("create_note") == []
    await service.decide(
        request.approval_id,
        "approved",
        user_id="U0BOB",
        actor="slack:T0ACME:U0BOB",
        approvers=Approvers(),
        runs=RunStore(sqlite_runtime.sessions),
    )
    body = json.loads(await asyncio.wait_for(call, 10))
    assert body["status"] == "ok", body
    assert [c.status for c in pd.calls_to("create_note")] == [201]
    assert pd.world.notes[FIRING_INCIDENT_ID][-1]["content"] == "RCA: bad deploy."


async def test_a_denied_note_is_never_posted(sqlite_runtime: Runtime, pd: PagerDutyEmulator) -> None:
    call, request, service, _ = await _ask_to_note(sqlite_runtime, pd)
    await service.decide(
        request.approval_id,
        "denied",
        user_id="U0CAROL",
        actor="slack:T0ACME:U0CAROL",
        approvers=Approvers(),
        runs=RunStore(sqlite_runtime.sessions),
    )
    body = json.loads(await asyncio.wait_for(call, 10))
    assert body["status"] == "error"
    assert pd.calls_to("create_note") == []
    assert len(pd.world.notes[FIRING_INCIDENT_ID]) == 1


async def test_health_check_proves_the_key_and_the_note_author(pd: PagerDutyEmulator) -> None:
    assert await pt.health(_config(pd)) == ToolsetHealth.ok()
    assert pd.calls[-1].query == {"query": [BOT_EMAIL]}
    unknown = await pt.health(_config(pd, from_email="ghost@acme.example"))
    assert not unknown.healthy
    assert unknown.reason.startswith("integrations.pagerduty.from_email (ghost@acme.example) is not a user")
    wrong_key = await pt.health(_config(pd, api_key="u+nope"))
    assert wrong_key.configured and not wrong_key.healthy and "401 Unauthorized" in wrong_key.reason
    assert (await pt.health({})).configured is False
    assert pt.PAGERDUTY.missing_prerequisites({}) == ["integrations.pagerduty.api_key"]
    await pd.stop()
    down = await pt.health(_config(pd))
    assert "unreachable (connection refused)" in down.reason
