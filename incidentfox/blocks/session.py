"""The "View session" modal: a run's full timeline, and its RCA or error, capped at 100 blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import PlainTextObject
from slack_sdk.models.views import View

from incidentfox.agents.events import Answer, Error, ProgressEvent, Result
from incidentfox.blocks.components import (
    EMPTY_TEXT,
    Block,
    code,
    context,
    divider,
    elapsed,
    header,
    packed_sections,
    section,
)
from incidentfox.blocks.limits import (
    CALLBACK_ID_MAX,
    MODAL_BUTTON_TEXT_MAX,
    MODAL_TITLE_MAX,
    PRIVATE_METADATA_MAX,
    fit_view,
    mrkdwn,
    one_line,
    truncate,
)
from incidentfox.blocks.progress import STATUS
from incidentfox.blocks.rca import FULL, answer_blocks, rca_blocks
from incidentfox.blocks.timeline import build_steps, derive_state, run_seconds, started

SESSION_VIEW_CALLBACK_ID = "run_session_view"
DEFAULT_MODAL_TITLE = "Investigation"
STEP_LINE_MAX = 800
ASK_MAX = 2000


def _offset(seconds: float) -> str:
    """``+mm:ss`` from the start of the run (``+h:mm:ss`` past an hour)."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"+{hours}:{minutes:02d}:{secs:02d}" if hours else f"+{minutes:02d}:{secs:02d}"


def session_blocks(events: Sequence[ProgressEvent], *, run_id: str, title: str) -> list[Block]:
    """The modal's blocks before capping: overview, the ask, every step, then the outcome."""
    state = derive_state(events)
    icon, label = STATUS[state]
    steps = build_steps(events)
    blocks = [
        header(title or DEFAULT_MODAL_TITLE),
        context(
            f"{icon} {label}",
            f"⏱ {elapsed(run_seconds(events, None))}",
            f"{len(steps)} step{'s' if len(steps) != 1 else ''}",
            f"Run {code(run_id, 80)}",
        ),
    ]
    ask = started(events)
    if ask is not None and one_line(ask.summary):
        blocks.append(section("*Ask*\n" + mrkdwn(ask.summary, ASK_MAX)))
    start = events[0].at if events else 0.0
    lines = [f"`{_offset(step.at - start)}` {step.line()}" for step in steps]
    blocks.extend(packed_sections(["*Timeline*", *(lines or ["_No steps yet._"])]))
    for event in events:
        if isinstance(event, Result):
            blocks.append(divider())
            blocks.extend(rca_blocks(event.rca, FULL))
        elif isinstance(event, Answer):
            blocks.append(divider())
            blocks.append(section("*Answer*"))
            blocks.extend(answer_blocks(event.text))
        elif isinstance(event, Error):
            blocks.append(divider())
            blocks.append(section("❌ *The investigation could not finish.*\n" + mrkdwn(event.message, 2000)))
    return blocks


def render_session_view(events: Sequence[ProgressEvent], *, run_id: str, title: str) -> dict[str, Any]:
    """A modal (``views.open`` payload) with a run's full timeline; ``private_metadata`` is the run id."""
    modal_title = truncate(one_line(title), MODAL_TITLE_MAX) or DEFAULT_MODAL_TITLE
    view = View(
        type="modal",
        callback_id=SESSION_VIEW_CALLBACK_ID[:CALLBACK_ID_MAX],
        title=PlainTextObject(text=modal_title, emoji=True),
        close=PlainTextObject(text=truncate("Close", MODAL_BUTTON_TEXT_MAX), emoji=True),
        blocks=fit_view(session_blocks(events, run_id=run_id, title=title)),
        private_metadata=run_id[:PRIVATE_METADATA_MAX] or EMPTY_TEXT,
    )
    return view.to_dict()
