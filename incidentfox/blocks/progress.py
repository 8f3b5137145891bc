"""The live progress message: one Block Kit message, re-rendered from a run's events on every update.

Layout: status line (what is happening, elapsed time), the first finding of instant triage, a compact
timeline of the latest steps, any question or approval waiting on a human, then the run controls
(Interrupt/Resume, View session).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from slack_sdk.models.blocks import ButtonElement

from incidentfox.agents.events import (
    ApprovalRequest,
    Interrupted,
    ProgressEvent,
    Question,
    Resumed,
    Thought,
    ToolEnd,
)
from incidentfox.blocks.approval import approval_blocks
from incidentfox.blocks.components import (
    Block,
    actions,
    button,
    code,
    context,
    elapsed,
    section,
)
from incidentfox.blocks.first_finding import first_finding_blocks, similar_blocks
from incidentfox.blocks.limits import (
    FALLBACK_TEXT_MAX,
    VIEW_SESSION_LABEL,
    fit_message,
    mrkdwn,
    one_line,
    truncate_mrkdwn,
)
from incidentfox.blocks.timeline import RunState, build_steps, run_seconds

ACTION_INTERRUPT = "run_interrupt"
ACTION_RESUME = "run_resume"
ACTION_VIEW_SESSION = "run_view_session"
CONTROLS_BLOCK_ID = "run_controls"

MAX_RECENT_STEPS = 8
STEP_LINE_MAX = 320
TITLE_MAX = 300
PROMPT_MAX = 1200

STATUS: dict[RunState, tuple[str, str]] = {
    "running": ("🔍", "Investigating…"),
    "interrupted": ("⏸️", "Interrupted"),
    "done": ("✅", "Investigation complete"),
    "failed": ("❌", "Investigation failed"),
}


_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+>")
"""Mentions are fine in the edited message, but in the fallback ``text`` they would notify."""


def _waiting_on_human(later: Sequence[ProgressEvent]) -> bool:
    """True when nothing after a question/approval shows the run moving on without an answer.

    Thoughts, more requests, interrupt/resume and the ``approval_required`` tool result itself are
    what a run emits while it waits; anything else (a tool call, a sub-agent, the end) means it moved on.
    """
    return all(
        isinstance(e, Thought | Question | ApprovalRequest | Interrupted | Resumed)
        or (isinstance(e, ToolEnd) and e.status == "approval_required")
        for e in later
    )


def pending_question(events: Sequence[ProgressEvent]) -> Question | None:
    """The latest question if the run is still waiting for its answer."""
    for i in range(len(events) - 1, -1, -1):
        event = events[i]
        if isinstance(event, Question):
            return event if _waiting_on_human(events[i + 1 :]) else None
    return None


def _status_blocks(
    events: Sequence[ProgressEvent], *, run_id: str, title: str, state: RunState, now: float | None
) -> list[Block]:
    icon, label = STATUS[state]
    line = f"{icon} *{label}*"
    if one_line(title):
        line += " — " + mrkdwn(one_line(title), TITLE_MAX)
    seconds = elapsed(run_seconds(events, now))
    timing = f"⏱ took {seconds}" if state in ("done", "failed") else f"⏱ {seconds} elapsed"
    return [section(line), context(timing, f"Run {code(run_id, 80)}")]


def _timeline_block(events: Sequence[ProgressEvent]) -> Block:
    steps = build_steps(events)
    recent = steps[-MAX_RECENT_STEPS:]
    lines = [truncate_mrkdwn(step.line(), STEP_LINE_MAX) for step in recent]
    earlier = len(steps) - len(recent)
    if earlier:
        lines.insert(0, f"_…and {earlier} earlier step{'s' if earlier != 1 else ''}_")
    return section("\n".join(lines) if lines else "_Getting started…_")


def _controls(run_id: str, state: RunState) -> Block:
    buttons: list[ButtonElement] = []
    if state == "running":
        buttons.append(button("⏸️ Interrupt", action_id=ACTION_INTERRUPT, value=run_id))
    elif state == "interrupted":
        buttons.append(button("▶️ Resume", action_id=ACTION_RESUME, value=run_id, style="primary"))
    buttons.append(button(VIEW_SESSION_LABEL, action_id=ACTION_VIEW_SESSION, value=run_id))
    return actions(buttons, block_id=CONTROLS_BLOCK_ID)


def render_progress(
    events: Sequence[ProgressEvent],
    *,
    run_id: str,
    title: str,
    state: RunState,
    now: float | None = None,
) -> list[Block]:
    """The live message for a run.

    ``now`` (epoch seconds) drives the elapsed time; by default it is the time of the last event, which
    keeps the output a pure function of its input. A pending question and Approve/Deny buttons show
    only while the run is running: an interrupted or finished run is not waiting on them.
    """
    blocks = _status_blocks(events, run_id=run_id, title=title, state=state, now=now)
    blocks.extend(first_finding_blocks(events, checking=state == "running"))
    blocks.extend(similar_blocks(events))
    blocks.append(_timeline_block(events))
    if state == "running":
        question = pending_question(events)
        if question is not None:
            prompt = mrkdwn(question.text, PROMPT_MAX)
            blocks.append(
                section(f"❓ *The investigation needs your input:*\n{prompt}\n_Reply in this thread._")
            )
        blocks.extend(approval_blocks(events))
    blocks.append(_controls(run_id, state))
    return fit_message(blocks)


def progress_text(events: Sequence[ProgressEvent], *, title: str, state: RunState) -> str:
    """Plain fallback ``text`` for notifications: status, title and the latest step."""
    icon, label = STATUS[state]
    text = f"{icon} {label}"
    if one_line(title):
        text += ": " + mrkdwn(one_line(title), TITLE_MAX)
    steps = build_steps(events)
    if steps:
        text += f" — {steps[-1].icon} {steps[-1].text}"
    return truncate_mrkdwn(_USER_MENTION.sub("someone", text), FALLBACK_TEXT_MAX)
