"""How write-action approvals read in the live message and the session timeline (golden files), and
that any approval events, however hostile their text, stay inside Slack's limits.

Regenerate after an intended change with ``UPDATE_GOLDENS=1 pytest tests/test_blocks_approvals.py``
and review the JSON diff.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incidentfox.agents.events import (
    ApprovalDecided,
    ApprovalRequest,
    ProgressEvent,
    ToolEnd,
    ToolStart,
    event_from_dict,
    event_to_dict,
)
from incidentfox.blocks.approval import pending_approvals
from incidentfox.blocks.progress import progress_text, render_progress
from incidentfox.blocks.session import render_session_view
from incidentfox.blocks.timeline import RunState, build_steps
from tests.goldens import assert_matches_golden
from tests.test_blocks_golden import RUN_ID, T0, TITLE, crashloop_events
from tests.test_blocks_limits import (
    PROFILE,
    assert_message_within_limits,
    assert_view_within_limits,
    events_strategy,
    hostile_text,
    short,
    states,
    times,
)

APPROVER = "U024BE7LH"
RESTART = ApprovalRequest(
    approval_id="appr_7f3c",
    action="rollout restart",
    target="deployment prod/checkout",
    reason="Picks up the fixed secret key; pods are already down, so no extra impact.",
    at=T0 + 22,
)
SCALE = ApprovalRequest(
    approval_id="appr_91aa",
    action="scale",
    target="deployment prod/checkout to 4 replicas",
    reason="Absorbs the retry storm while the new pods start.",
    at=T0 + 40,
)


def _restart_call(status: str, summary: str, at: float) -> list[ProgressEvent]:
    args = {"kind": "deployment", "namespace": "prod", "name": "checkout"}
    return [
        ToolStart(call_id="w1", tool="rollout_restart", args=args, agent="kubernetes", at=T0 + 21),
        RESTART,
        ToolEnd(
            call_id="w1", tool="rollout_restart", status=status, summary=summary, agent="kubernetes", at=at
        ),
    ]


def approved_then_pending() -> list[ProgressEvent]:
    """A restart was approved and done; a scale-up now waits for a person."""
    start, request, end = _restart_call("ok", "Restarted deployment prod/checkout.", T0 + 31)
    return [
        *crashloop_events()[:17],
        start,
        request,
        ApprovalDecided(approval_id=RESTART.approval_id, decision="approved", by=APPROVER, at=T0 + 30),
        ApprovalDecided(
            approval_id=RESTART.approval_id,
            decision="approved",
            by=APPROVER,
            outcome="done: Restarted deployment prod/checkout: its pods are being replaced one by one.",
            at=T0 + 31,
        ),
        end,
        ToolStart(call_id="w2", tool="scale", args={"replicas": 4}, agent="kubernetes", at=T0 + 39),
        SCALE,
    ]


def denied_and_expired() -> list[ProgressEvent]:
    start, request, end = _restart_call("error", "Not run: refused", T0 + 26)
    return [
        *crashloop_events()[:17],
        start,
        request,
        ApprovalDecided(approval_id=RESTART.approval_id, decision="denied", by=APPROVER, at=T0 + 25),
        end,
        ToolStart(call_id="w2", tool="scale", args={"replicas": 4}, agent="kubernetes", at=T0 + 39),
        SCALE,
        ApprovalDecided(approval_id=SCALE.approval_id, decision="expired", at=T0 + 940),
        ToolEnd(
            call_id="w2", tool="scale", status="error", summary="Not approved within 15 minutes", at=T0 + 940
        ),
    ]


def _message(events: list[ProgressEvent], state: RunState, now: float) -> dict[str, Any]:
    return {
        "blocks": render_progress(events, run_id=RUN_ID, title=TITLE, state=state, now=now),
        "text": progress_text(events, title=TITLE, state=state),
    }


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "approval_approved_then_pending": lambda: _message(approved_then_pending(), "running", T0 + 45),
    "approval_denied_and_expired": lambda: _message(denied_and_expired(), "running", T0 + 941),
    "approval_session_modal": lambda: {
        "view": render_session_view(denied_and_expired(), run_id=RUN_ID, title=TITLE)
    },
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_approval_rendering_matches_golden(name: str) -> None:
    rendered = CASES[name]()
    assert_matches_golden("blocks", name, rendered)


def _buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (element["action_id"], element["value"])
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def test_only_undecided_requests_have_buttons_and_decided_ones_say_how_they_ended() -> None:
    blocks = CASES["approval_approved_then_pending"]()["blocks"]
    assert ("approval_approve", SCALE.approval_id) in _buttons(blocks)
    assert ("approval_approve", RESTART.approval_id) not in _buttons(blocks)
    timeline = json.dumps(blocks, ensure_ascii=False)
    assert (
        "*rollout restart* on `deployment prod/checkout` — approved by <@U024BE7LH> — "
        "done: Restarted deployment prod/checkout" in timeline
    )
    ended = CASES["approval_denied_and_expired"]()["blocks"]
    assert not [b for b in _buttons(ended) if b[0].startswith("approval_")]
    lines = [step.line() for step in build_steps(denied_and_expired())]
    assert "🚫 *rollout restart* on `deployment prod/checkout` — denied by <@U024BE7LH>; not run" in lines
    assert (
        "⌛ *scale* on `deployment prod/checkout to 4 replicas` — "
        "expired: nobody approved it in time; not run" in lines
    )


def test_an_approval_shows_running_until_its_action_returns_and_a_failure_is_marked() -> None:
    running: list[ProgressEvent] = [RESTART, ApprovalDecided(RESTART.approval_id, "approved", by=APPROVER)]
    failed: list[ProgressEvent] = [
        *running,
        ApprovalDecided(RESTART.approval_id, "approved", by=APPROVER, outcome="failed: 403"),
    ]
    withdrawn: list[ProgressEvent] = [RESTART, ApprovalDecided(RESTART.approval_id, "cancelled")]
    assert build_steps(running)[-1].line().endswith("approved by <@U024BE7LH> — running…")
    assert build_steps(failed)[-1].line().startswith("⚠️ ")
    assert build_steps(withdrawn)[-1].line().endswith("withdrawn: the investigation stopped; not run")
    assert pending_approvals(running) == []


def test_the_decision_event_survives_persistence() -> None:
    event = ApprovalDecided("appr_1", "approved", by=APPROVER, outcome="done: ok", at=T0)
    assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event


decisions = st.builds(
    ApprovalDecided,
    approval_id=st.one_of(st.sampled_from(["a1", "a2"]), short),
    decision=st.sampled_from(["approved", "denied", "expired", "cancelled"]),
    by=st.one_of(st.just(APPROVER), short),
    outcome=hostile_text,
    at=times,
)
requests = st.builds(
    ApprovalRequest,
    approval_id=st.one_of(st.sampled_from(["a1", "a2"]), short),
    action=hostile_text,
    target=hostile_text,
    reason=hostile_text,
    at=times,
)
approval_event_lists = st.lists(st.one_of(events_strategy, decisions, requests), max_size=120)


@PROFILE
@given(events=approval_event_lists, state=states, title=hostile_text)
def test_messages_with_any_approval_events_stay_within_slack_limits(
    events: list[ProgressEvent], state: RunState, title: str
) -> None:
    blocks = render_progress(events, run_id=RUN_ID, title=title, state=state)
    assert_message_within_limits(blocks, progress_text(events, title=title, state=state))
    assert_view_within_limits(render_session_view(events, run_id=RUN_ID, title=title))
