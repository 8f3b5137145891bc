"""Instant triage reads the team's alerting integrations through their own tools: a Datadog monitor in
Alert becomes a lead with its query as evidence; 403, 429, nothing alerting and a backend slower than
the triage budget become plain-words notes; and the lead the question names is shown first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from incidentfox.agents.analyzers import alert_checks
from incidentfox.agents.analyzers.alert_checks import check_alerts
from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.first_finding import instant_triage, top_lead
from incidentfox.agents.analyzers.triage import Triage
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import FirstFinding, ProgressEvent, Thought
from incidentfox.agents.rca import Evidence, RootCauseAnalysis
from incidentfox.agents.toolsets.function_tools import close_clients
from incidentfox.emulators.datadog import DatadogEmulator
from incidentfox.emulators.datadog_seed import ALERT_MONITOR_ID, seed_checkout_incident
from incidentfox.emulators.served import ServedApp

MONITOR = "[checkout] 5xx errors are high on prod"


@pytest.fixture
async def dd() -> AsyncIterator[DatadogEmulator]:
    async with DatadogEmulator() as emulator:
        seed_checkout_incident(emulator.store, datetime.now(UTC))
        yield emulator


def _context(config: dict[str, Any], events: list[ProgressEvent]) -> InvestigationContext:
    return InvestigationContext(
        run_id="run_triage", org_id="acme", team_node_id="checkout", config=config, emit=events.append
    )


async def _check(config: dict[str, Any]) -> alert_checks.AlertReport:
    context = _context(config, [])
    try:
        return await check_alerts(context)
    finally:
        await close_clients(context)


def _pod_finding(name: str) -> Finding:
    return Finding(
        kind="crashloop",
        severity="critical",
        resource=f"pod prod/{name}",
        summary="CrashLoopBackOff",
        root_cause="it exits at start",
        evidence=(Evidence(quote="panic: nil map", source=f"pod prod/{name} (previous logs)"),),
        decisive=True,
        namespace="prod",
        workload=name.rsplit("-", 2)[0],
        key=f"pod/prod/{name}",
    )


def _triage(*findings: Finding) -> Triage:
    return Triage(rca=RootCauseAnalysis(summary="s", root_cause="r"), grounding="g", findings=findings)


async def test_a_monitor_in_alert_is_a_lead_with_its_query_as_evidence(dd: DatadogEmulator) -> None:
    config = dd.integration_config(app_url="https://app.datadoghq.eu")
    report = await _check({"integrations": {"datadog": config}})
    [lead] = report.leads
    assert lead.resource == f"Datadog monitor '{MONITOR}'"
    assert lead.agent == "datadog" and lead.source == f"Datadog monitor {ALERT_MONITOR_ID}"
    assert "trace.http.request.errors{service:checkout,env:prod}" in lead.evidence
    assert lead.symptom.startswith("in Alert since 20")
    assert lead.url == f"https://app.datadoghq.eu/monitors/{ALERT_MONITOR_ID}"
    assert "checkout" in lead.names
    assert report.notes == (f"datadog: 1 firing (Datadog monitor '{MONITOR}')",)
    assert dd.calls[-1].query["group_states"] == "alert", "only monitors in Alert are asked for"
    assert dd.api_key not in str(report) and dd.app_key not in str(report)


async def test_nothing_alerting_is_a_note_not_a_lead() -> None:
    async with DatadogEmulator() as empty:
        report = await _check({"integrations": {"datadog": empty.integration_config()}})
    assert report.leads == ()
    [note] = report.notes
    assert note.startswith("datadog: No monitor is in Alert")


async def test_rejected_keys_and_rate_limits_are_notes_in_plain_words(dd: DatadogEmulator) -> None:
    refused = await _check({"integrations": {"datadog": dd.integration_config(app_key="0" * 40)}})
    [note] = refused.notes
    assert refused.leads == () and "403" in note and note.startswith("datadog: could not be read")
    assert "0" * 40 not in note
    dd.rate_limited = True
    limited = await _check({"integrations": {"datadog": dd.integration_config()}})
    [note] = limited.notes
    assert limited.leads == () and "429" in note


async def test_a_backend_slower_than_the_triage_budget_is_left_to_the_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(alert_checks, "CHECK_TIMEOUT_S", 0.3)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"status": "success", "data": {"alerts": []}})

    app = web.Application()
    app.router.add_get("/api/v1/alerts", slow)
    server = ServedApp()
    url = f"http://127.0.0.1:{await server.serve(app, '127.0.0.1', 0)}"
    try:
        started = time.monotonic()
        report = await _check({"integrations": {"prometheus": {"url": url}}})
        took = time.monotonic() - started
    finally:
        await server.close()
    assert took < 1.5
    assert report.notes == ("prometheus: not read within 0.3 s; ask it directly.",)


async def test_no_alerting_integration_means_no_reads() -> None:
    report = await _check({"integrations": {"kubernetes": {"api_url": "http://127.0.0.1:9", "token": "t"}}})
    assert report == alert_checks.AlertReport()


async def test_the_lead_the_question_names_comes_first(dd: DatadogEmulator) -> None:
    events: list[ProgressEvent] = []
    context = _context({"integrations": {"datadog": dd.integration_config()}}, events)

    async def checks() -> Triage:
        return _triage(_pod_finding("reports-5c6d7-abcde"))

    try:
        report = await instant_triage(context, "why does checkout return 5xx?", checks())
    finally:
        await close_clients(context)
    assert report.first is not None and report.first.resource == f"Datadog monitor '{MONITOR}'"
    assert [e for e in events if isinstance(e, FirstFinding)] == [report.first]
    assert any(isinstance(e, Thought) and e.agent == "datadog" for e in events)
    grounding = report.grounding()
    assert grounding.startswith("g\nAlerting integrations, read just now:")
    assert f"- [firing] Datadog monitor '{MONITOR}'" in grounding
    assert MONITOR in report.first_finding_text()


def test_a_decisive_cluster_finding_beats_an_alert_the_question_does_not_name() -> None:
    alert = alert_checks.Lead(
        resource="alert HighLatency",
        symptom="p99 high",
        evidence="e",
        source="s",
        agent="prometheus",
        names=("HighLatency", "payments"),
    )
    report = alert_checks.AlertReport(leads=(alert,))
    lead = top_lead(_triage(_pod_finding("checkout-7d9-x2")), report, "what is wrong in prod?")
    assert lead is not None and lead.resource == "pod prod/checkout-7d9-x2" and lead.agent == "kubernetes"
    named = top_lead(_triage(_pod_finding("checkout-7d9-x2")), report, "are payments slow?")
    assert named is alert
    assert top_lead("The Kubernetes API could not be read.", alert_checks.AlertReport(), "why?") is None


def test_a_failed_ci_run_is_its_own_first_finding() -> None:
    evidence = Evidence(quote="AssertionError: 2 != 3", source="acme/shop run 7, job 'test', line 88")
    rca = RootCauseAnalysis(summary="CI failed in step 'pytest'.", root_cause="r", evidence=(evidence,))
    lead = top_lead(Triage(rca=rca, grounding="g"), alert_checks.AlertReport(), "why did CI fail?")
    assert lead is not None and lead.agent == "github" and lead.evidence == "AssertionError: 2 != 3"
    assert lead.symptom == "CI failed in step 'pytest'." and lead.source == evidence.source
