"""The approval gate: what a write tool call goes through before it may run.

``SlackApprovalGate`` persists the request, shows it in the run's live message (``ApprovalRequest``
with Approve and Deny buttons), then waits inside the tool call. Approve runs the action exactly once
and returns its real result; Deny, an expiry (team config ``approvals.timeout_s``, default 900 s) or
the run stopping return a result that tells the model the action did not run and why, so the run
carries on and says so. Every ending is shown in the live message (``ApprovalDecided``).

``ApprovalsUnavailable`` is the default where nobody can approve (no Slack, a unit test): write
actions are never run and the model is told they need approval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from incidentfox.agents.approvals.models import ActionRequest, Approval, Decision
from incidentfox.agents.approvals.service import ApprovalService
from incidentfox.agents.events import ApprovalDecided, ApprovalRequest, ProgressEvent
from incidentfox.agents.runs.models import Run
from incidentfox.agents.toolsets.base import ToolResult, lookup_dotted

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 900.0
OUTCOME_MAX = 300

Action = Callable[[], Awaitable[ToolResult]]


class ApprovalGate(Protocol):
    async def run_when_approved(
        self, request: ActionRequest, action: Action, *, deadline: asyncio.Timeout | None = None
    ) -> ToolResult:
        """Run ``action`` once if a person approves ``request``; otherwise say why it did not run.

        ``deadline`` is the run's own deadline, if the runner shares it: it is pushed back by the time
        spent waiting for a person, which is not the agent's time.
        """
        ...


class ApprovalsUnavailable:
    """Nobody can approve here, so write actions are never run."""

    async def run_when_approved(
        self, request: ActionRequest, action: Action, *, deadline: asyncio.Timeout | None = None
    ) -> ToolResult:
        return ToolResult(
            status="approval_required",
            data={
                "action": request.tool,
                "args": request.args,
                "note": "Not run: an authorized user must approve it.",
            },
            invocation=f"{request.toolset}.{request.tool}",
        )


def approval_timeout_s(config: Mapping[str, Any]) -> float:
    """Team config ``approvals.timeout_s`` when it is a positive number, else 900 s."""
    value = lookup_dotted(config, "approvals.timeout_s")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_TIMEOUT_S


def duration_words(seconds: float) -> str:
    """``15 minutes``, ``1 minute``, ``90 seconds``, ``1 second``."""
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    whole = f"{seconds:g}"
    return f"{whole} second{'s' if whole != '1' else ''}"


def outcome_text(result: ToolResult) -> str:
    """What running an approved action did, in a few words: ``done: …`` or ``failed: …``."""
    if result.status == "ok":
        summary = result.data.get("summary") if isinstance(result.data, Mapping) else None
        text = "done: " + (summary if isinstance(summary, str) and summary else result.invocation or "ok")
    else:
        text = "failed: " + (result.error or str(result.data or result.status))
    return text if len(text) <= OUTCOME_MAX else text[: OUTCOME_MAX - 1] + "…"


@dataclass(slots=True)
class SlackApprovalGate:
    """Asks in the run's live message and waits for a decision from an authorized person."""

    service: ApprovalService
    run_id: str
    org_id: str
    team_node_id: str
    requester: str
    emit: Callable[[ProgressEvent], None]
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def for_run(
        cls,
        service: ApprovalService,
        run: Run,
        config: Mapping[str, Any],
        emit: Callable[[ProgressEvent], None],
    ) -> SlackApprovalGate:
        return cls(
            service=service,
            run_id=run.run_id,
            org_id=run.org_id,
            team_node_id=run.team_node_id,
            requester=run.requester,
            emit=emit,
            timeout_s=approval_timeout_s(config),
        )

    async def run_when_approved(
        self, request: ActionRequest, action: Action, *, deadline: asyncio.Timeout | None = None
    ) -> ToolResult:
        approval = await self.service.open(
            request,
            run_id=self.run_id,
            org_id=self.org_id,
            team_node_id=self.team_node_id,
            requester=self.requester,
            timeout_s=self.timeout_s,
        )
        description = request.description
        self.emit(
            ApprovalRequest(
                approval_id=approval.approval_id,
                action=description.action,
                target=description.target,
                reason=description.reason,
            )
        )
        decision = await self._decision(approval, deadline)
        log.info(
            "approval settled approval_id=%s run_id=%s team=%s tool=%s decision=%s",
            approval.approval_id,
            self.run_id,
            self.team_node_id,
            request.tool,
            decision.status,
        )
        return await self._settle(approval, request, decision, action)

    async def _decision(self, approval: Approval, deadline: asyncio.Timeout | None) -> Decision:
        loop = asyncio.get_running_loop()
        started = loop.time()
        run_deadline = _when(deadline)
        _move(deadline, run_deadline, self.timeout_s + self.service.poll_interval_s + 5.0)
        try:
            decided = await self.service.wait(approval.approval_id, self.timeout_s)
        except asyncio.CancelledError:
            await asyncio.shield(self.service.cancel(approval.approval_id))
            self.emit(ApprovalDecided(approval_id=approval.approval_id, decision="cancelled"))
            raise
        finally:
            _move(deadline, run_deadline, loop.time() - started)
        return decided if decided is not None else await self.service.expire(approval)

    async def _settle(
        self, approval: Approval, request: ActionRequest, decision: Decision, action: Action
    ) -> ToolResult:
        approval_id, invocation = approval.approval_id, f"{request.toolset}.{request.tool}"
        if decision.status == "approved":
            self.emit(ApprovalDecided(approval_id, "approved", by=decision.by))
            result = await action()
            outcome = outcome_text(result)
            await self.service.record_outcome(approval_id, outcome)
            self.emit(ApprovalDecided(approval_id, "approved", by=decision.by, outcome=outcome))
            return result
        self.emit(ApprovalDecided(approval_id, decision.status, by=decision.by))
        if decision.status == "denied":
            return ToolResult.failed(
                f"Not run: Slack user {decision.by} refused this action ({request.summary}). "
                "Do not ask for it again in this investigation; say in your answer that it was refused "
                "and by whom.",
                invocation=invocation,
            )
        if decision.status == "expired":
            return ToolResult.failed(
                f"Not approved within {duration_words(self.timeout_s)}; not run ({request.summary}). "
                "Say in your answer that it was not approved in time, so nothing was changed.",
                invocation=invocation,
            )
        return ToolResult.failed(
            f"Not run: the request to {request.summary} was withdrawn before anyone approved it.",
            invocation=invocation,
        )


def _when(deadline: asyncio.Timeout | None) -> float | None:
    return deadline.when() if deadline is not None and not deadline.expired() else None


def _move(deadline: asyncio.Timeout | None, original: float | None, extra_s: float) -> None:
    """Set the run's deadline to ``original + extra_s``: a person's time is not the agent's time."""
    if deadline is None or original is None or deadline.expired():
        return
    try:
        deadline.reschedule(original + extra_s)
    except RuntimeError:
        log.warning("the run's deadline could not be moved (it is not active)")
