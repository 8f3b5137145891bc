"""Reads and writes of approvals, the single decision per approval, and waking the tool call that waits.

A decision is one conditional UPDATE (``… WHERE status = 'pending'``): the writer whose UPDATE changes
a row wins, every other one (a double click, a retried delivery, a second approver, another process)
changes nothing and is told who decided. The winner's audit row commits in the same transaction.

Waiting works in one process and across several: the tool call registers a future here that the
button handler resolves at once, and it also re-reads the row every ``poll_interval_s`` so a decision
taken by another process (``--role bot`` beside ``--role worker``) is seen too.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.agents.approvals.models import ActionRequest, Approval, Decision, DecisionStatus
from incidentfox.agents.runs.models import Run
from incidentfox.config import audit
from incidentfox.db.base import utcnow
from incidentfox.db.engine import SessionFactory

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 2.0
SYSTEM_ACTOR = "incidentfox"
"""The audit actor of what nobody decided (an approval that expired)."""
_LIVE_RUN = ("queued", "running")


class RefusalText(Protocol):
    @property
    def message(self) -> str: ...


class ApproverPolicy(Protocol):
    """Who may approve (``handlers.slack.access.SlackAccess`` in production)."""

    async def approval_refusal(
        self, org_id: str, team_id: str, user_id: str, *, requester: str
    ) -> RefusalText | None: ...


class RunLookup(Protocol):
    async def get(self, run_id: str) -> Run | None: ...


@dataclass(frozen=True, slots=True)
class Decided:
    """This click decided the approval."""

    approval: Approval
    decision: Decision


@dataclass(frozen=True, slots=True)
class AlreadyDecided:
    """Someone or something decided first; ``by`` is empty for an expiry or a cancellation."""

    status: str
    by: str = ""


@dataclass(frozen=True, slots=True)
class NotFound:
    """No approval has this id."""


@dataclass(frozen=True, slots=True)
class RunOver:
    """The run that asked has finished or was started again; nothing waits for this approval."""


@dataclass(frozen=True, slots=True)
class Refused:
    """This user may not decide; ``message`` says who can."""

    message: str


DecideOutcome = Decided | AlreadyDecided | NotFound | RunOver | Refused


def new_approval_id() -> str:
    return "appr_" + secrets.token_hex(8)


class ApprovalService:
    """One per process: the worker's tool calls wait here and the Slack buttons decide here."""

    def __init__(self, sessions: SessionFactory, *, poll_interval_s: float = POLL_INTERVAL_S) -> None:
        self.sessions = sessions
        self.poll_interval_s = poll_interval_s
        self._waiters: dict[str, asyncio.Future[Decision]] = {}

    async def open(
        self,
        request: ActionRequest,
        *,
        run_id: str,
        org_id: str,
        team_node_id: str,
        requester: str,
        timeout_s: float,
    ) -> Approval:
        """Persist a pending approval for ``request`` that expires ``timeout_s`` from now."""
        now = utcnow()
        approval = Approval(
            approval_id=new_approval_id(),
            run_id=run_id,
            org_id=org_id,
            team_node_id=team_node_id,
            requester=requester,
            toolset=request.toolset,
            tool=request.tool,
            action=request.description.action[:200],
            target=request.description.target[:500],
            reason=request.description.reason,
            args=request.args,
            status="pending",
            created_at=now,
            expires_at=now + timedelta(seconds=timeout_s),
        )
        async with self.sessions.begin() as session:
            session.add(approval)
        return approval

    async def get(self, approval_id: str) -> Approval | None:
        async with self.sessions() as session:
            return await session.get(Approval, approval_id)

    async def decide(
        self,
        approval_id: str,
        status: Literal["approved", "denied"],
        *,
        user_id: str,
        actor: str,
        approvers: ApproverPolicy,
        runs: RunLookup,
    ) -> DecideOutcome:
        """Record a person's Approve or Deny, if they may and nobody decided first; wake the waiter."""
        approval = await self.get(approval_id)
        if approval is None:
            return NotFound()
        if approval.status != "pending":
            return AlreadyDecided(approval.status, approval.decided_by or "")
        if approval.expires_at <= utcnow():
            return AlreadyDecided("expired")
        run = await runs.get(approval.run_id)
        if run is None or run.status not in _LIVE_RUN or _restarted_since(run, approval):
            return RunOver()
        refusal = await approvers.approval_refusal(
            approval.org_id, approval.team_node_id, user_id, requester=run.requester
        )
        if refusal is not None:
            return Refused(refusal.message)
        now = utcnow()
        async with self.sessions.begin() as session:
            won = await _settle(session, approval_id, status, by=user_id, at=now)
            if won:
                _audit(session, approval, status, actor=actor, at=now)
        if not won:
            latest = await self.get(approval_id)
            return AlreadyDecided(latest.status, latest.decided_by or "") if latest else NotFound()
        decision = Decision(status, by=user_id)
        self._wake(approval_id, decision)
        log.info(
            "approval decided approval_id=%s run_id=%s team=%s decision=%s by=%s",
            approval_id,
            approval.run_id,
            approval.team_node_id,
            status,
            user_id,
        )
        return Decided(approval, decision)

    async def expire(self, approval: Approval) -> Decision:
        """Mark an unanswered approval expired; if a decision landed at the last moment, that one."""
        now = utcnow()
        async with self.sessions.begin() as session:
            won = await _settle(session, approval.approval_id, "expired", by=None, at=now)
            if won:
                _audit(session, approval, "expired", actor=SYSTEM_ACTOR, at=now)
        if won:
            return Decision("expired")
        latest = await self.get(approval.approval_id)
        return _decision_of(latest) or Decision("expired")

    async def cancel(self, approval_id: str) -> None:
        """Withdraw a pending approval because its run stopped; a late click then changes nothing."""
        try:
            async with self.sessions.begin() as session:
                await _settle(session, approval_id, "cancelled", by=None, at=utcnow())
        except (SQLAlchemyError, OSError) as exc:
            log.warning("cancelling approval failed approval_id=%s error=%s", approval_id, type(exc).__name__)

    async def record_outcome(self, approval_id: str, outcome: str) -> None:
        """Keep what running the approved action did, for the record."""
        try:
            async with self.sessions.begin() as session:
                await session.execute(
                    update(Approval)
                    .where(Approval.approval_id == approval_id)
                    .values(outcome=outcome)
                    .execution_options(synchronize_session=False)
                )
        except (SQLAlchemyError, OSError) as exc:
            log.warning(
                "recording approval outcome failed approval_id=%s error=%s", approval_id, type(exc).__name__
            )

    async def wait(self, approval_id: str, timeout_s: float) -> Decision | None:
        """The decision on ``approval_id``, or ``None`` when nobody decided within ``timeout_s``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        self._waiters[approval_id] = future
        deadline = loop.time() + timeout_s
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                await asyncio.wait({future}, timeout=min(self.poll_interval_s, remaining))
                if future.done():
                    return future.result()
                seen = await self._decided_elsewhere(approval_id)
                if seen is not None:
                    return seen
        finally:
            if self._waiters.get(approval_id) is future:
                del self._waiters[approval_id]

    async def _decided_elsewhere(self, approval_id: str) -> Decision | None:
        try:
            return _decision_of(await self.get(approval_id))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("reading approval failed approval_id=%s error=%s", approval_id, type(exc).__name__)
            return None

    def _wake(self, approval_id: str, decision: Decision) -> None:
        future = self._waiters.get(approval_id)
        if future is not None and not future.done():
            future.set_result(decision)


def _restarted_since(run: Run, approval: Approval) -> bool:
    """True when the run was started again (after a restart) since it asked: that attempt is gone."""
    return run.started_at is not None and run.started_at > approval.created_at


def _decision_of(approval: Approval | None) -> Decision | None:
    if approval is None or approval.status == "pending":
        return None
    return Decision(cast(DecisionStatus, approval.status), by=approval.decided_by or "")


async def _settle(
    session: AsyncSession, approval_id: str, status: str, *, by: str | None, at: datetime
) -> bool:
    """Move a pending approval to ``status``; ``True`` only for the one writer whose UPDATE changed it.

    A person's decision also needs the approval to be unexpired, so a click that arrives after the
    deadline can never beat the expiry.
    """
    statement = (
        update(Approval)
        .where(Approval.approval_id == approval_id, Approval.status == "pending")
        .values(status=status, decided_by=by, decided_at=at)
        .execution_options(synchronize_session=False)
    )
    if status in ("approved", "denied"):
        statement = statement.where(Approval.expires_at > at)
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount == 1


def _audit(session: AsyncSession, approval: Approval, status: str, *, actor: str, at: datetime) -> None:
    """Who, when, the action and its (already scrubbed) arguments."""
    audit.record(
        session,
        org_id=approval.org_id,
        actor=actor,
        action=f"approval.{status}",
        target=approval.approval_id,
        run_id=approval.run_id,
        team=approval.team_node_id,
        tool=f"{approval.toolset}.{approval.tool}",
        request=approval.description,
        args=approval.args,
        reason=approval.reason,
        decided_at=at.isoformat(),
    )
