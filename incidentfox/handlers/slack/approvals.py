"""Slack listeners for the Approve and Deny buttons of a write action in a run's live message.

Each listener acks, hands the click to the approval service, and answers the clicker privately only
when nothing was decided by their click (someone decided first, they may not approve, the run is
over). A decision itself shows in the live message, for everyone.
"""

from __future__ import annotations

from typing import Any, Literal

from slack_bolt.async_app import AsyncAck, AsyncApp

from incidentfox.agents.approvals.service import (
    AlreadyDecided,
    ApprovalService,
    ApproverPolicy,
    DecideOutcome,
    NotFound,
    Refused,
    RunLookup,
    RunOver,
)
from incidentfox.blocks.approval import ACTION_APPROVE, ACTION_DENY
from incidentfox.handlers.slack.access import SlackUser
from incidentfox.handlers.slack.notices import SlackNotices

NOT_FOUND = "I can't find that approval request any more, so nothing was run."
RUN_OVER = (
    "That investigation is no longer running, so its actions can't be approved and nothing was run. "
    "Ask again in the thread if the action is still needed."
)


def already_decided_text(status: str, by: str) -> str:
    """Why a click changed nothing, naming whoever decided."""
    who = f"<@{by}>" if by else "someone"
    if status == "approved":
        return f"This action was already approved by {who}."
    if status == "denied":
        return f"This action was already denied by {who}, so it was not run."
    if status == "expired":
        return (
            "This request expired before anyone approved it, so nothing was run. "
            "Ask again if it is still needed."
        )
    return "This request was withdrawn because the investigation stopped, so nothing was run."


def reply_for(outcome: DecideOutcome) -> str | None:
    """The private answer to the clicker; ``None`` when their click decided (the message shows it)."""
    match outcome:
        case AlreadyDecided(status=status, by=by):
            return already_decided_text(status, by)
        case Refused(message=message):
            return message
        case NotFound():
            return NOT_FOUND
        case RunOver():
            return RUN_OVER
    return None


def register_approval_actions(
    app: AsyncApp,
    *,
    approvals_service: ApprovalService,
    access: ApproverPolicy,
    runs: RunLookup,
    notices: SlackNotices,
) -> None:
    async def decide(
        body: dict[str, Any], action: dict[str, Any], status: Literal["approved", "denied"]
    ) -> None:
        user = SlackUser.from_body(body)
        outcome = await approvals_service.decide(
            action["value"], status, user_id=user.user_id, actor=user.actor, approvers=access, runs=runs
        )
        reply = reply_for(outcome)
        if reply is not None:
            notices.ephemeral_in(body, reply)

    @app.action(ACTION_APPROVE)
    async def on_approve(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await decide(body, action, "approved")

    @app.action(ACTION_DENY)
    async def on_deny(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await decide(body, action, "denied")
