"""The "Ask a follow-up" modal: one question that continues the run's thread."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, PlainTextObject
from slack_sdk.models.views import View

from incidentfox.blocks.components import context
from incidentfox.blocks.limits import PRIVATE_METADATA_MAX, mrkdwn, one_line

FOLLOW_UP_CALLBACK_ID = "run_follow_up_modal"
QUESTION_BLOCK_ID = "question"
QUESTION_ACTION_ID = "text"
QUESTION_MAX = 2000


def render_follow_up_modal(*, run_id: str, asked: str) -> dict[str, Any]:
    """A modal whose submission becomes a follow-up in the run's thread (run id in private_metadata)."""
    view = View(
        type="modal",
        callback_id=FOLLOW_UP_CALLBACK_ID,
        title=PlainTextObject(text="Ask a follow-up"),
        submit=PlainTextObject(text="Ask"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=run_id[:PRIVATE_METADATA_MAX],
        blocks=[
            context(f"Earlier question: {mrkdwn(one_line(asked), 500)}"),
            InputBlock(
                block_id=QUESTION_BLOCK_ID,
                label=PlainTextObject(text="Your question"),
                element=PlainTextInputElement(
                    action_id=QUESTION_ACTION_ID,
                    multiline=True,
                    max_length=QUESTION_MAX,
                    placeholder=PlainTextObject(text="e.g. did the last deploy change DEPLOY_ENV?"),
                ),
            ),
        ],
    )
    return view.to_dict()


def submitted_question(view: dict[str, Any]) -> str:
    """The question typed into the modal, stripped; empty when missing."""
    values = view.get("state", {}).get("values", {})
    value = values.get(QUESTION_BLOCK_ID, {}).get(QUESTION_ACTION_ID, {}).get("value")
    return str(value or "").strip()
