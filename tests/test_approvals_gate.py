"""A write tool call waits at the approval gate: approved runs it once, denied, expired or cancelled
never run it, and the model always gets a result it can act on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from incidentfox.agents.approvals.gate import SlackApprovalGate, approval_timeout_s, duration_words
from incidentfox.agents.approvals.models import Approval
from incidentfox.agents.approvals.service import ApprovalService, Decided
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ApprovalDecided, ApprovalRequest, ProgressEvent, ToolEnd
from incidentfox.agents.runs.models import Run
from incidentfox.agents.runs.service import RunStore
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.function_tools import invoke_tool
from incidentfox.bot.runtime import Runtime
from incidentfox.config.models import AuditEvent
from tests.test_approvals_service import Approvers, _run

SECRET = "kube-token-0123456789abcdef"


class RestartParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    reason: str


def _toolset(ran: list[str]) -> tuple[Toolset, Tool]:
    async def restart(client: object, params: RestartParams) -> ToolResult:
        ran.append(params.name)
        return ToolResult.ok({"summary": f"Restarted {params.name}."}, invocation=f"restart {params.name}")

    async def connect(config: object) -> object:
        return object()

    tool = Tool("restart", "Restart", RestartParams, restart, writes=True)  # type: ignore[arg-type]
    return Toolset(name="demo", description="", instructions="", tools=(tool,), connect=connect), tool


class Harness:
    def __init__(self, runtime: Runtime, run: Run, *, timeout_s: float = 30.0) -> None:
        self.service = ApprovalService(runtime.sessions, poll_interval_s=0.05)
        self.events: list[ProgressEvent] = []
        self.ran: list[str] = []
        self.toolset, self.tool = _toolset(self.ran)
        config = {"integrations": {"kubernetes": {"token": SECRET}}, "approvals": {"timeout_s": timeout_s}}
        gate = SlackApprovalGate.for_run(self.service, run, config, self.events.append)
        self.context = InvestigationContext(
            run_id=run.run_id,
            org_id=run.org_id,
            team_node_id=run.team_node_id,
            config=config,
            emit=self.events.append,
            approvals=gate,
        )
        self.runs = RunStore(runtime.sessions)

    def call(self, reason: str = "it is wedged") -> asyncio.Task[str]:
        args = json.dumps({"name": "checkout", "reason": reason})
        return asyncio.create_task(
            invoke_tool(self.context, self.toolset, self.tool, args, call_id="c1", agent="kubernetes")
        )

    async def request(self) -> ApprovalRequest:
        for _ in range(200):
            found = [e for e in self.events if isinstance(e, ApprovalRequest)]
            if found:
                return found[-1]
            await asyncio.sleep(0.01)
        raise AssertionError(f"no approval request: {self.events}")

    async def click(self, approval_id: str, status: Any, user: str = "U0BOB") -> object:
        return await self.service.decide(
            approval_id,
            status,
            user_id=user,
            actor=f"slack:T0ACME:{user}",
            approvers=Approvers(),
            runs=self.runs,
        )

    def decisions(self) -> list[tuple[str, str, str]]:
        return [(e.decision, e.by, e.outcome) for e in self.events if isinstance(e, ApprovalDecided)]


async def test_approved_action_runs_once_and_the_model_gets_its_result(runtime: Runtime) -> None:
    h = Harness(runtime, await _run(runtime.sessions))
    call = h.call()
    request = await h.request()
    assert (request.action, request.target, request.reason) == (
        "restart",
        "name=checkout",
        "it is wedged",
    )
    assert h.ran == []
    assert isinstance(await h.click(request.approval_id, "approved"), Decided)
    body = json.loads(await asyncio.wait_for(call, 5))
    assert body["status"] == "ok"
    assert body["data"]["summary"] == "Restarted checkout."
    assert h.ran == ["checkout"]
    assert [e.kind for e in h.events] == [
        "tool_start",
        "approval_request",
        "approval_decided",
        "approval_decided",
        "tool_end",
    ]
    assert h.decisions() == [("approved", "U0BOB", ""), ("approved", "U0BOB", "done: Restarted checkout.")]
    stored = await h.service.get(request.approval_id)
    assert stored is not None and stored.outcome == "done: Restarted checkout."


async def test_denied_action_is_not_run_and_the_model_is_told_who_refused(runtime: Runtime) -> None:
    h = Harness(runtime, await _run(runtime.sessions))
    call = h.call()
    request = await h.request()
    await h.click(request.approval_id, "denied", user="U0CAROL")
    body = json.loads(await asyncio.wait_for(call, 5))
    assert h.ran == []
    assert body["status"] == "error"
    assert body["error"].startswith("Not run: Slack user U0CAROL refused this action (restart name=checkout")
    assert h.decisions() == [("denied", "U0CAROL", "")]
    end = h.events[-1]
    assert isinstance(end, ToolEnd) and end.status == "error"


async def test_unanswered_action_expires_and_is_not_run(runtime: Runtime) -> None:
    h = Harness(runtime, await _run(runtime.sessions), timeout_s=0.3)
    body = json.loads(await asyncio.wait_for(h.call(), 5))
    assert h.ran == []
    assert body["error"].startswith("Not approved within 0.3 seconds; not run (restart name=checkout")
    assert h.decisions() == [("expired", "", "")]
    async with runtime.sessions() as session:
        [audited] = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "approval.expired"))
        ).all()
        [approval] = (await session.scalars(select(Approval))).all()
    assert approval.status == "expired"
    assert audited.target == approval.approval_id


async def test_a_run_stopped_while_waiting_withdraws_its_request(runtime: Runtime) -> None:
    h = Harness(runtime, await _run(runtime.sessions))
    call = h.call()
    request = await h.request()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    stored = await h.service.get(request.approval_id)
    assert stored is not None and stored.status == "cancelled"
    assert h.decisions() == [("cancelled", "", "")]
    assert h.ran == []


async def test_secrets_never_reach_the_approval_record_the_audit_or_the_message(runtime: Runtime) -> None:
    h = Harness(runtime, await _run(runtime.sessions))
    call = h.call(reason=f"the token {SECRET} is stale")
    request = await h.request()
    await h.click(request.approval_id, "approved")
    await asyncio.wait_for(call, 5)
    async with runtime.sessions() as session:
        audits = (await session.scalars(select(AuditEvent))).all()
        approvals = (await session.scalars(select(Approval))).all()
    everything = json.dumps([a.detail for a in audits]) + json.dumps(
        [(a.args, a.reason, a.target) for a in approvals]
    )
    everything += json.dumps([repr(e) for e in h.events])
    assert SECRET not in everything
    assert "[REDACTED]" in request.reason


async def test_waiting_for_a_person_does_not_count_against_the_run_deadline(runtime: Runtime) -> None:
    h = Harness(runtime, await _run(runtime.sessions))
    loop = asyncio.get_running_loop()

    async def approve_later(delay: float) -> None:
        request = await h.request()
        await asyncio.sleep(delay)
        await h.click(request.approval_id, "approved")

    async with asyncio.timeout(0.4) as deadline:
        h.context.deadline = deadline
        original = deadline.when()
        assert original is not None
        approver = asyncio.create_task(approve_later(0.8))
        await h.call()
        await approver
        moved = deadline.when()
    assert h.ran == ["checkout"]
    assert moved is not None and moved - original >= 0.7, "the deadline moved by the time spent waiting"
    assert moved - loop.time() < 5


async def test_a_broken_approval_store_means_not_run_never_a_crashed_run(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(runtime, await _run(runtime.sessions))

    async def database_down(*args: Any, **kwargs: Any) -> Approval:
        raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(h.service, "open", database_down)
    body = json.loads(await asyncio.wait_for(h.call(), 5))
    assert body["status"] == "error"
    assert body["error"].startswith("restart was not run: asking for approval failed inside IncidentFox.")
    assert "connection refused" not in body["error"]
    assert h.ran == []


def test_timeout_config_and_its_words() -> None:
    assert approval_timeout_s({}) == 900
    assert approval_timeout_s({"approvals": {"timeout_s": 120}}) == 120
    assert approval_timeout_s({"approvals": {"timeout_s": -1}}) == 900
    assert approval_timeout_s({"approvals": {"timeout_s": "soon"}}) == 900
    assert [duration_words(s) for s in (900, 60, 90, 1, 0.5)] == [
        "15 minutes",
        "1 minute",
        "90 seconds",
        "1 second",
        "0.5 seconds",
    ]
