"""Golden-file tests for the Block Kit renderers.

Each case renders a realistic run and compares it with ``tests/golden/blocks/<case>.json``.
After an intended rendering change, regenerate with ``UPDATE_GOLDENS=1 pytest tests/test_blocks_golden.py``
and review the JSON diff before committing it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from incidentfox.agents.events import (
    ApprovalRequest,
    Error,
    Interrupted,
    ProgressEvent,
    Result,
    Started,
    SubagentEnd,
    SubagentStart,
    Thought,
    ToolEnd,
    ToolStart,
)
from incidentfox.agents.rca import Confidence, Evidence, RootCauseAnalysis
from incidentfox.blocks.incident import incident_root_text, render_incident_root
from incidentfox.blocks.progress import progress_text, render_progress
from incidentfox.blocks.rca import answer_text, error_text, rca_text, render_answer, render_error, render_rca
from incidentfox.blocks.session import render_session_view
from incidentfox.sandboxes.investigator import answer_words
from incidentfox.sandboxes.session import SessionAnswer
from tests.goldens import assert_matches_golden

T0 = 1_717_430_400.0  # 2024-06-03 16:00:00 UTC
RUN_ID = "run_01HZX4K9CRASH"
TITLE = "checkout pods crashlooping in prod"

CRASHLOOP_RCA = RootCauseAnalysis(
    summary="checkout pods crash on start: credential rotation a1b2c3d renamed the DB password key.",
    root_cause=(
        "Commit a1b2c3d renamed the key in Secret `checkout-db` from `password` to `db-password`. "
        "The deployment still reads `password` through `secretKeyRef`, so `DB_PASSWORD` is empty; the app "
        'exits 1 with `FATAL: password authentication failed for user "checkout"` and Kubernetes restarts '
        "it with back-off."
    ),
    evidence=(
        Evidence(
            quote='FATAL: password authentication failed for user "checkout"',
            source="pod prod/checkout-7d9f8b6c5-x2lqp (previous logs)",
        ),
        Evidence(
            quote="Back-off restarting failed container checkout in pod checkout-7d9f8b6c5-x2lqp",
            source="events prod/checkout-7d9f8b6c5-x2lqp",
        ),
        Evidence(
            quote="-      key: password\n+      key: db-password",
            source="acme/checkout@a1b2c3d deploy/secret.yaml",
            url="https://github.com/acme/checkout/commit/a1b2c3d?diff=split&w=1",
        ),
    ),
    confidence=Confidence(
        level="high",
        why="The log line, restart timing and secret change line up: crashes began 2 min after a1b2c3d.",
    ),
    immediate_actions=(
        "Set `secretKeyRef.key: db-password` in the checkout deployment, or revert a1b2c3d",
        "Restart deployment prod/checkout once the key matches",
    ),
    follow_up_actions=(
        "Fail fast with a clear message when DB_PASSWORD is empty",
        "Check secretKeyRef keys against the Secret manifests in CI",
    ),
    caveats=("The 5xx-rate query returned no data, so customer impact is not measured.",),
)


def crashloop_events() -> list[ProgressEvent]:
    """A no-surprises CrashLoopBackOff investigation, planner -> kubernetes -> github -> RCA."""
    return [
        Started(summary="Why is checkout crashlooping in prod?", at=T0),
        Thought(text="Checking the checkout deployment's pods first.", at=T0 + 1),
        SubagentStart(agent="kubernetes", task="Inspect pods of deployment checkout in prod", at=T0 + 2),
        ToolStart(
            call_id="c1",
            tool="list_pods",
            args={"namespace": "prod", "selector": "app=checkout"},
            agent="kubernetes",
            at=T0 + 3,
        ),
        ToolEnd(
            call_id="c1",
            tool="list_pods",
            status="ok",
            summary="3/3 pods in CrashLoopBackOff, 14 restarts each",
            agent="kubernetes",
            at=T0 + 5,
        ),
        ToolStart(
            call_id="c2",
            tool="get_pod_logs",
            args={"namespace": "prod", "pod": "checkout-7d9f8b6c5-x2lqp", "previous": True},
            agent="kubernetes",
            at=T0 + 6,
        ),
        ToolEnd(
            call_id="c2",
            tool="get_pod_logs",
            status="ok",
            summary='last line: FATAL: password authentication failed for user "checkout"',
            agent="kubernetes",
            at=T0 + 8,
        ),
        ToolStart(
            call_id="c3",
            tool="get_events",
            args={"namespace": "prod", "object": "checkout-7d9f8b6c5-x2lqp"},
            agent="kubernetes",
            at=T0 + 9,
        ),
        ToolEnd(
            call_id="c3",
            tool="get_events",
            status="ok",
            summary="Back-off restarting failed container checkout (x14)",
            agent="kubernetes",
            at=T0 + 10,
        ),
        SubagentEnd(agent="kubernetes", summary="Container exits 1 on a DB auth failure", at=T0 + 11),
        SubagentStart(agent="github", task="Recent changes to checkout's deploy config", at=T0 + 12),
        ToolStart(
            call_id="c4",
            tool="list_recent_commits",
            args={"repo": "acme/checkout", "path": "deploy/"},
            agent="github",
            at=T0 + 13,
        ),
        ToolEnd(
            call_id="c4",
            tool="list_recent_commits",
            status="ok",
            summary="a1b2c3d 'Rotate DB credentials' merged 42 min ago",
            agent="github",
            at=T0 + 15,
        ),
        SubagentEnd(agent="github", summary="a1b2c3d renamed the secret key", at=T0 + 16),
        ToolStart(
            call_id="c5",
            tool="query_metrics",
            args={"query": 'rate(http_requests_total{service="checkout",code=~"5.."}[5m])'},
            at=T0 + 17,
        ),
        ToolEnd(call_id="c5", tool="query_metrics", status="no_data", at=T0 + 19),
        Thought(text="The rotation renamed the secret key; the pods still read the old one.", at=T0 + 20),
        Result(rca=CRASHLOOP_RCA, at=T0 + 24),
    ]


def case_crashloop_progress_running() -> dict[str, Any]:
    events = crashloop_events()[:6]
    return {
        "blocks": render_progress(events, run_id=RUN_ID, title=TITLE, state="running", now=T0 + 7),
        "text": progress_text(events, title=TITLE, state="running"),
    }


def case_crashloop_progress_done() -> dict[str, Any]:
    events = crashloop_events()
    return {
        "blocks": render_progress(events, run_id=RUN_ID, title=TITLE, state="done"),
        "text": progress_text(events, title=TITLE, state="done"),
    }


def case_crashloop_rca() -> dict[str, Any]:
    return {"blocks": render_rca(CRASHLOOP_RCA, run_id=RUN_ID), "text": rca_text(CRASHLOOP_RCA)}


def case_error_run() -> dict[str, Any]:
    message = "The Kubernetes API at https://10.0.0.1:6443 refused the connection (401 Unauthorized)."
    events: list[ProgressEvent] = [
        *crashloop_events()[:4],
        ToolEnd(call_id="c1", tool="list_pods", status="error", summary="401 Unauthorized", at=T0 + 4),
        Error(message=message, at=T0 + 5),
    ]
    return {
        "progress": render_progress(events, run_id=RUN_ID, title=TITLE, state="failed"),
        "blocks": render_error(message, run_id=RUN_ID),
        "text": error_text(message),
    }


def case_sre_answer() -> dict[str, Any]:
    said = SessionAnswer(
        "`make build` fails: module <checkout-api> is not in go.mod & the vendor dir is stale.",
        files_reset=True,
        session_id="sbx_0123456789abcdef",
        confined=False,
    )
    answer = answer_words(said)
    return {"blocks": render_answer(answer, run_id=RUN_ID), "text": answer_text(answer)}


def case_approval_request() -> dict[str, Any]:
    events: list[ProgressEvent] = [
        *crashloop_events()[:17],
        ToolStart(
            call_id="c6",
            tool="rollout_restart",
            args={"namespace": "prod", "deployment": "checkout"},
            at=T0 + 21,
        ),
        ToolEnd(call_id="c6", tool="rollout_restart", status="approval_required", at=T0 + 22),
        ApprovalRequest(
            approval_id="appr_7f3c",
            action="rollout restart",
            target="deployment prod/checkout",
            reason="Picks up the fixed secret key; pods are already down, so no extra impact.",
            at=T0 + 22,
        ),
    ]
    return {
        "blocks": render_progress(events, run_id=RUN_ID, title=TITLE, state="running", now=T0 + 30),
        "text": progress_text(events, title=TITLE, state="running"),
    }


def case_interrupted_run() -> dict[str, Any]:
    events = [*crashloop_events()[:9], Interrupted(by="U024BE7LH", at=T0 + 10)]
    return {
        "blocks": render_progress(events, run_id=RUN_ID, title=TITLE, state="interrupted", now=T0 + 75),
        "text": progress_text(events, title=TITLE, state="interrupted"),
    }


def case_session_modal() -> dict[str, Any]:
    return {"view": render_session_view(crashloop_events(), run_id=RUN_ID, title=TITLE)}


def case_pagerduty_incident_root() -> dict[str, Any]:
    state = {
        "source": "pagerduty",
        "number": 4711,
        "title": "checkout-api 5xx error rate above 5% <!channel>",
        "status": "acknowledged",
        "urgency": "high",
        "priority": "P1",
        "service": "checkout-api",
        "assignees": ["Alice Ng", "Carol *Oncall*"],
        "url": "https://acme.pagerduty.com/incidents/Q3CHKOUT5XXNOW",
    }
    return {"blocks": render_incident_root(state), "text": incident_root_text(state)}


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "crashloop_progress_running": case_crashloop_progress_running,
    "crashloop_progress_done": case_crashloop_progress_done,
    "crashloop_rca": case_crashloop_rca,
    "error_run": case_error_run,
    "sre_answer": case_sre_answer,
    "approval_request": case_approval_request,
    "interrupted_run": case_interrupted_run,
    "session_modal": case_session_modal,
    "pagerduty_incident_root": case_pagerduty_incident_root,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendering_matches_golden(name: str) -> None:
    rendered = CASES[name]()
    assert_matches_golden("blocks", name, rendered)


def test_rendering_is_deterministic() -> None:
    for name, case in CASES.items():
        assert case() == case(), name
