"""Rendering of instant triage: the first finding on top of the live message (golden files), and the
final RCA's line saying whether the investigation confirmed or overturned it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from incidentfox.agents.events import (
    FirstFinding,
    ProgressEvent,
    Started,
    SubagentEnd,
    SubagentStart,
    Thought,
    ToolEnd,
    ToolStart,
    event_from_dict,
    event_to_dict,
)
from incidentfox.agents.rca import Confidence, Evidence, FirstFindingCheck, RootCauseAnalysis
from incidentfox.blocks.progress import progress_text, render_progress
from incidentfox.blocks.rca import rca_text, render_rca
from tests.goldens import assert_matches_golden

T0 = 1_717_430_400.0
RUN_ID = "run_01HZX4K9TRIAGE"
TITLE = "why is checkout crashlooping?"
POD = "pod prod/checkout-7d9f8b6c5-x2lqp"

FIRST = FirstFinding(
    resource=POD,
    symptom="CrashLoopBackOff: the container exited 1 eleven times in 14 minutes",
    evidence='FATAL: password authentication failed for user "checkout"',
    source=f"{POD} (previous logs)",
    agent="kubernetes",
    at=T0 + 0.4,
)


def triage_events() -> list[ProgressEvent]:
    return [
        Started(summary=TITLE, at=T0),
        SubagentStart(agent="kubernetes", task="deterministic checks of pods, nodes, services", at=T0 + 0.1),
        Thought(text=f"{POD}: CrashLoopBackOff", agent="kubernetes", at=T0 + 0.3),
        SubagentEnd(agent="kubernetes", summary="1 problem(s) found", at=T0 + 0.3),
        FIRST,
    ]


def later_events() -> list[ProgressEvent]:
    """Ten more steps: the timeline scrolls, the first finding stays."""
    events = triage_events()
    for n in range(10):
        events.append(
            ToolStart(call_id=f"c{n}", tool="pod_logs", args={"n": n}, agent="kubernetes", at=T0 + n)
        )
        events.append(
            ToolEnd(call_id=f"c{n}", tool="pod_logs", status="ok", agent="kubernetes", at=T0 + n + 1)
        )
    return events


RCA = RootCauseAnalysis(
    summary="checkout crashes on start: the DB password key was renamed by credential rotation a1b2c3d.",
    root_cause="Secret checkout-db no longer has the key `password` the deployment reads.",
    evidence=(Evidence(quote='FATAL: password authentication failed for user "checkout"', source=POD),),
    confidence=Confidence("high", "the fatal log line and the commit agree"),
    immediate_actions=("Restore the `password` key in Secret checkout-db.",),
    first_finding=FirstFindingCheck(
        verdict="confirmed",
        why="The crash loop is the symptom; the renamed key in a1b2c3d is why the password is empty.",
        finding=f"{POD}: CrashLoopBackOff: the container exited 1 eleven times in 14 minutes",
    ),
)


def case_first_finding_progress_running() -> dict[str, Any]:
    events = triage_events()
    return {
        "blocks": render_progress(events, run_id=RUN_ID, title=TITLE, state="running", now=T0 + 1),
        "text": progress_text(events, title=TITLE, state="running"),
    }


def case_first_finding_rca_confirmed() -> dict[str, Any]:
    return {"blocks": render_rca(RCA, run_id=RUN_ID), "text": rca_text(RCA)}


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "first_finding_progress_running": case_first_finding_progress_running,
    "first_finding_rca_confirmed": case_first_finding_rca_confirmed,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendering_matches_golden(name: str) -> None:
    assert_matches_golden("blocks", name, CASES[name]())


def test_the_first_finding_sits_under_the_status_line_with_its_evidence_and_source() -> None:
    blocks = render_progress(triage_events(), run_id=RUN_ID, title=TITLE, state="running", now=T0 + 1)
    shown = blocks[2]["text"]["text"]
    assert shown.startswith("🩺 *First finding* (kubernetes checks): *pod prod/checkout-7d9f8b6c5-x2lqp*")
    assert '\n```FATAL: password authentication failed for user "checkout"```\n' in shown
    assert "(previous logs)" in shown


def test_the_first_finding_stays_when_the_timeline_scrolls() -> None:
    blocks = render_progress(later_events(), run_id=RUN_ID, title=TITLE, state="running")
    text = json.dumps(blocks)
    assert "earlier steps" in text, "the timeline scrolled"
    assert "First finding" in blocks[2]["text"]["text"]


def test_without_a_first_finding_the_live_message_is_unchanged() -> None:
    events = [e for e in triage_events() if not isinstance(e, FirstFinding)]
    blocks = render_progress(events, run_id=RUN_ID, title=TITLE, state="running", now=T0 + 1)
    assert "First finding" not in json.dumps(blocks)
    assert len(blocks) == 4, "status, context, timeline, controls"


def test_the_rca_says_overturned_and_why() -> None:
    assert RCA.first_finding is not None
    check = dataclasses.replace(RCA.first_finding, verdict="overturned", why="The node ran out of disk.")
    rendered = render_rca(dataclasses.replace(RCA, first_finding=check), run_id=RUN_ID)
    blocks = json.dumps(rendered, ensure_ascii=False)
    assert "🔄 First finding overturned" in blocks and "The node ran out of disk." in blocks
    assert "confirmed" not in blocks


def test_an_rca_without_a_first_finding_has_no_verdict_line() -> None:
    blocks = json.dumps(render_rca(dataclasses.replace(RCA, first_finding=None), run_id=RUN_ID))
    assert "First finding" not in blocks


def test_the_first_finding_and_the_verdict_survive_the_run_store() -> None:
    assert event_from_dict(json.loads(json.dumps(event_to_dict(FIRST)))) == FIRST
    stored = json.loads(json.dumps(RCA.to_dict()))
    assert RootCauseAnalysis.from_dict(stored) == RCA
    plain = dataclasses.replace(RCA, first_finding=None).to_dict()
    assert "first_finding" not in plain, "older readers see the RCA they know"
    assert RootCauseAnalysis.from_dict({**plain, "first_finding": {"verdict": "maybe"}}).first_finding is None


def test_an_interrupted_run_no_longer_says_it_is_checking_the_first_finding() -> None:
    events: list[ProgressEvent] = [
        Started(summary="why is checkout failing?"),
        FirstFinding(
            resource="pod shop/checkout-1", symptom="CrashLoopBackOff", evidence="panic", source="logs"
        ),
    ]
    running = json.dumps(render_progress(events, run_id="r1", title="checkout", state="running"))
    stopped = json.dumps(render_progress(events, run_id="r1", title="checkout", state="interrupted"))
    assert "checking it now" in running
    assert "checking it now" not in stopped and "pod shop/checkout-1" in stopped
