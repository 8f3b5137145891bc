"""How write-action approvals read in a run's message: the request, which ones still wait for a
person (with Approve and Deny), and how each one ended.

Pure functions of the run's events. A request is pending until an ``ApprovalDecided`` with its id
follows it; the last decision event for an id wins (an approval is first shown as approved, then
with what running it did).
"""

from __future__ import annotations

from collections.abc import Sequence

from incidentfox.agents.events import ApprovalDecided, ApprovalRequest, ProgressEvent
from incidentfox.blocks.components import Block, actions, button, code, section, user_ref
from incidentfox.blocks.limits import mrkdwn, one_line

ACTION_APPROVE = "approval_approve"
ACTION_DENY = "approval_deny"
MAX_APPROVALS_SHOWN = 3
PROMPT_MAX = 1200

_NAME_LIMIT = 60
_TARGET_LIMIT = 100
_OUTCOME_LIMIT = 300
_ICONS = {"approved": "✅", "denied": "🚫", "expired": "⌛", "cancelled": "⏹️"}


def approval_text(event: ApprovalRequest) -> str:
    """``*rollout restart* on `deployment prod/checkout```, escaped."""
    return f"*{mrkdwn(one_line(event.action), _NAME_LIMIT)}* on {code(event.target, _TARGET_LIMIT)}"


def pending_approvals(events: Sequence[ProgressEvent]) -> list[ApprovalRequest]:
    """Approval requests nobody has decided yet, oldest first."""
    decided = {e.approval_id for e in events if isinstance(e, ApprovalDecided)}
    return [e for e in events if isinstance(e, ApprovalRequest) and e.approval_id not in decided]


def decision_icon(event: ApprovalDecided) -> str:
    if event.decision == "approved" and event.outcome.startswith("failed"):
        return "⚠️"
    return _ICONS.get(event.decision, "🔐")


def decision_text(event: ApprovalDecided, request: ApprovalRequest | None) -> str:
    """``*rollout restart* on `deployment prod/checkout` — approved by <@U1> — done: …``."""
    what = approval_text(request) if request is not None else f"Approval {code(event.approval_id, 40)}"
    if event.decision == "approved":
        outcome = mrkdwn(one_line(event.outcome), _OUTCOME_LIMIT) if event.outcome.strip() else "running…"
        return f"{what} — approved by {user_ref(event.by)} — {outcome}"
    if event.decision == "denied":
        return f"{what} — denied by {user_ref(event.by)}; not run"
    if event.decision == "expired":
        return f"{what} — expired: nobody approved it in time; not run"
    return f"{what} — withdrawn: the investigation stopped; not run"


def approval_blocks(events: Sequence[ProgressEvent]) -> list[Block]:
    """Each pending request with its reason and the Approve and Deny buttons (at most three)."""
    blocks: list[Block] = []
    for index, request in enumerate(pending_approvals(events)[:MAX_APPROVALS_SHOWN]):
        text = f"🔐 *Approval needed:* {approval_text(request)}"
        if request.reason.strip():
            text += "\n" + mrkdwn(request.reason, PROMPT_MAX)
        blocks.append(section(text))
        buttons = [
            button("Approve", action_id=ACTION_APPROVE, value=request.approval_id, style="primary"),
            button("Deny", action_id=ACTION_DENY, value=request.approval_id, style="danger"),
        ]
        blocks.append(actions(buttons, block_id=f"approval_{index}"))
    return blocks
