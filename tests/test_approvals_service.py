"""One decision per approval, whoever clicks and however often, on SQLite and PostgreSQL; decisions
are audited, and a decision taken by another process reaches the waiting tool call."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from incidentfox.agents.approvals.models import ActionDescription, ActionRequest, Approval, Decision
from incidentfox.agents.approvals.service import (
    AlreadyDecided,
    ApprovalService,
    Decided,
    Refused,
    RunOver,
)
from incidentfox.agents.runs.models import Run
from incidentfox.agents.runs.service import RunStore, new_run_id
from incidentfox.bot.runtime import Runtime
from incidentfox.config.models import AuditEvent
from incidentfox.db.base import utcnow
from incidentfox.db.engine import SessionFactory, create_engine, create_session_factory
from incidentfox.handlers.slack.access import Refusal

REQUEST = ActionRequest(
    toolset="kubernetes",
    tool="rollout_restart",
    description=ActionDescription("rollout restart", "deployment prod/checkout", "pods are wedged"),
    args={"kind": "deployment", "namespace": "prod", "name": "checkout", "reason": "pods are wedged"},
)


class Approvers:
    """Everybody may approve except ``U0NOBODY``."""

    async def approval_refusal(
        self, org_id: str, team_id: str, user_id: str, *, requester: str
    ) -> Refusal | None:
        return (
            Refusal("Only the approvers of team *checkout* can approve this.")
            if user_id == "U0NOBODY"
            else None
        )


async def _run(sessions: SessionFactory, *, status: str = "running", started_ago_s: float = 5.0) -> Run:
    run = Run(
        run_id=new_run_id(),
        org_id="acme",
        team_node_id="checkout",
        source="slack",
        kind="mention",
        delivery_id=new_run_id(),
        requester="U0ALICE",
        question="why is checkout down?",
        status=status,
        started_at=utcnow() - timedelta(seconds=started_ago_s),
    )
    async with sessions.begin() as session:
        session.add(run)
    return run


async def _open(service: ApprovalService, run: Run, timeout_s: float = 60.0) -> Approval:
    return await service.open(
        REQUEST,
        run_id=run.run_id,
        org_id=run.org_id,
        team_node_id=run.team_node_id,
        requester=run.requester,
        timeout_s=timeout_s,
    )


async def _audits(sessions: SessionFactory, action: str) -> list[AuditEvent]:
    async with sessions() as session:
        return list((await session.scalars(select(AuditEvent).where(AuditEvent.action == action))).all())


async def test_concurrent_approvals_decide_once_and_are_audited_once(runtime: Runtime) -> None:
    service, runs = ApprovalService(runtime.sessions), RunStore(runtime.sessions)
    approval = await _open(service, await _run(runtime.sessions))
    users = [f"U0APPROVER{i}" for i in range(8)]
    outcomes = await asyncio.gather(
        *(
            service.decide(
                approval.approval_id,
                "approved",
                user_id=user,
                actor=f"slack:T0ACME:{user}",
                approvers=Approvers(),
                runs=runs,
            )
            for user in users
        )
    )
    [won] = [o for o in outcomes if isinstance(o, Decided)]
    winner = won.decision.by
    assert [o for o in outcomes if not isinstance(o, Decided)] == [AlreadyDecided("approved", winner)] * 7
    [audited] = await _audits(runtime.sessions, "approval.approved")
    assert (audited.actor, audited.target, audited.org_id) == (
        f"slack:T0ACME:{winner}",
        approval.approval_id,
        "acme",
    )
    assert audited.detail["request"] == "rollout restart deployment prod/checkout"
    assert audited.detail["args"] == REQUEST.args
    assert audited.detail["tool"] == "kubernetes.rollout_restart"
    stored = await service.get(approval.approval_id)
    assert stored is not None and (stored.status, stored.decided_by) == ("approved", winner)


async def test_approve_and_deny_racing_leave_exactly_one_decision(runtime: Runtime) -> None:
    service, runs = ApprovalService(runtime.sessions), RunStore(runtime.sessions)
    approval = await _open(service, await _run(runtime.sessions))
    outcomes = await asyncio.gather(
        *(
            service.decide(
                approval.approval_id,
                "approved" if i % 2 else "denied",
                user_id=f"U0{i}",
                actor=f"slack:T0ACME:U0{i}",
                approvers=Approvers(),
                runs=runs,
            )
            for i in range(6)
        )
    )
    [won] = [o for o in outcomes if isinstance(o, Decided)]
    stored = await service.get(approval.approval_id)
    assert stored is not None and stored.status == won.decision.status
    audits = await _audits(runtime.sessions, "approval.approved") + await _audits(
        runtime.sessions, "approval.denied"
    )
    assert len(audits) == 1


async def test_a_decision_in_another_process_reaches_the_waiter_by_polling(runtime: Runtime) -> None:
    waiting_side = ApprovalService(runtime.sessions, poll_interval_s=0.05)
    engine = create_engine(runtime.settings.database_url)
    other_process = ApprovalService(create_session_factory(engine))
    try:
        approval = await _open(waiting_side, await _run(runtime.sessions))
        waiter = asyncio.create_task(waiting_side.wait(approval.approval_id, timeout_s=10))
        await asyncio.sleep(0.1)
        outcome = await other_process.decide(
            approval.approval_id,
            "denied",
            user_id="U0BOB",
            actor="slack:T0ACME:U0BOB",
            approvers=Approvers(),
            runs=RunStore(other_process.sessions),
        )
        assert isinstance(outcome, Decided)
        assert await asyncio.wait_for(waiter, 2) == Decision("denied", by="U0BOB")
    finally:
        await engine.dispose()


async def test_an_unanswered_approval_expires_once_and_a_late_click_changes_nothing(runtime: Runtime) -> None:
    service, runs = ApprovalService(runtime.sessions, poll_interval_s=0.05), RunStore(runtime.sessions)
    approval = await _open(service, await _run(runtime.sessions), timeout_s=0.2)
    assert await service.wait(approval.approval_id, timeout_s=0.2) is None
    assert await service.expire(approval) == Decision("expired")
    late = await service.decide(
        approval.approval_id,
        "approved",
        user_id="U0BOB",
        actor="slack:T0ACME:U0BOB",
        approvers=Approvers(),
        runs=runs,
    )
    assert late == AlreadyDecided("expired", "")
    [audited] = await _audits(runtime.sessions, "approval.expired")
    assert audited.actor == "incidentfox"
    assert await service.expire(approval) == Decision("expired"), "expiring twice is harmless"
    assert len(await _audits(runtime.sessions, "approval.expired")) == 1


async def test_a_decision_that_lands_before_the_expiry_wins_over_it(runtime: Runtime) -> None:
    service, runs = ApprovalService(runtime.sessions), RunStore(runtime.sessions)
    approval = await _open(service, await _run(runtime.sessions))
    await service.decide(
        approval.approval_id,
        "approved",
        user_id="U0BOB",
        actor="slack:T0ACME:U0BOB",
        approvers=Approvers(),
        runs=runs,
    )
    assert await service.expire(approval) == Decision("approved", by="U0BOB")
    assert await _audits(runtime.sessions, "approval.expired") == []


async def test_clicks_for_a_run_that_is_over_or_restarted_or_by_a_refused_user_change_nothing(
    runtime: Runtime,
) -> None:
    service, runs = ApprovalService(runtime.sessions), RunStore(runtime.sessions)
    finished = await _open(service, await _run(runtime.sessions, status="succeeded"))
    live = await _open(service, await _run(runtime.sessions))
    restarted_run = await _run(runtime.sessions, started_ago_s=-3)
    restarted = await _open(service, restarted_run)

    async def click(approval: Approval, user: str = "U0BOB") -> object:
        return await service.decide(
            approval.approval_id,
            "approved",
            user_id=user,
            actor=f"slack:T0ACME:{user}",
            approvers=Approvers(),
            runs=runs,
        )

    assert await click(finished) == RunOver()
    assert await click(restarted) == RunOver()
    assert await click(live, "U0NOBODY") == Refused("Only the approvers of team *checkout* can approve this.")
    for approval in (finished, restarted, live):
        stored = await service.get(approval.approval_id)
        assert stored is not None and stored.status == "pending"
    await service.cancel(live.approval_id)
    assert await click(live) == AlreadyDecided("cancelled", "")
