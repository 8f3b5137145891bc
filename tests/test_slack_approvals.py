"""Write actions behind Approve and Deny, end to end: Slack emulator over HTTP with the real slack_sdk,
the model emulator scripting the kubernetes sub-agent to ask for a write, the Kubernetes emulator
receiving (or not) the write through the real kubernetes client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from incidentfox.agents.approvals.models import ActionDescription, ActionRequest
from incidentfox.agents.events import ApprovalDecided, event_from_dict
from incidentfox.agents.runs.models import Run
from incidentfox.config.models import AuditEvent
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
from incidentfox.emulators.slack.store import RecordedCall
from tests.slack_world import ADMIN, CHANNEL, USER, World, world

APPROVER = "U0BOB"
ORG_ADMIN = "U0ADMIN"
STRANGER = "U0MALLORY"
RESTART = {
    "kind": "deployment",
    "namespace": "prod",
    "name": "checkout",
    "reason": "Pods are stuck in CrashLoopBackOff; a restart picks up the fixed config.",
}
SCALE = {
    "kind": "deployment",
    "namespace": "prod",
    "name": "checkout",
    "replicas": 3,
    "reason": "More headroom.",
}


def rca(summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "root_cause": "checkout exits because DEPLOY_ENV is undefined.",
        "evidence": [],
        "confidence": {"level": "medium", "why": "the log line names the variable"},
        "immediate_actions": [],
        "follow_up_actions": [],
        "caveats": [],
    }


def script(tool: str, args: dict[str, Any], summary: str) -> RoutedScript:
    planner = [
        ScriptStep.tool_calls(
            [("ask_kubernetes", {"input": "Fix checkout in prod."})], text="Acting on checkout."
        ),
        ScriptStep.json(rca(summary)),
    ]
    subagent = [ScriptStep.tool_calls([(tool, args)]), ScriptStep.text("Reported what the write action did.")]
    return RoutedScript().when_tool_offered("ask_kubernetes", planner).when_tool_offered(tool, subagent)


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emulator:
        yield emulator


@asynccontextmanager
async def approvals_world(
    tmp_path: Path, model: OpenAIEmulator, *, approvals: dict[str, Any] | None = None
) -> AsyncIterator[World]:
    """The crashloop world with an org admin and a team approver configured."""
    async with world(tmp_path, openai=model) as w:
        assert w.fox.runtime is not None
        config = w.fox.runtime.config
        await config.write_config(
            ADMIN, "acme", "acme", {"slack": {"admin_user_ids": [ORG_ADMIN]}}, operation="patch"
        )
        team = {"approvals": {"approver_user_ids": [APPROVER], **(approvals or {})}}
        await config.write_config(ADMIN, "acme", "checkout", team, operation="patch")
        yield w


async def ask(w: World, event_id: str) -> str:
    """Mention the bot; returns the ts of the live progress message."""
    mention = w.mention("checkout is down, please fix it")
    assert (await w.post_event(w.slack.make_event_callback(mention, event_id=event_id))).status == 200
    return str((await w.progress_post(mention["ts"])).response["ts"])


def _blocks(call: RecordedCall) -> list[dict[str, Any]]:
    blocks = call.args.get("blocks")
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks or [])


async def approval_shown(w: World, message_ts: str) -> tuple[str, RecordedCall]:
    """The approval id on the Approve button once the live message shows it."""
    update = await w.slack.wait_for(
        "chat.update",
        lambda c: c.ok and c.args.get("ts") == message_ts and "approval_approve" in json.dumps(_blocks(c)),
        timeout=20,
    )
    for block in _blocks(update):
        for element in block.get("elements", []):
            if isinstance(element, dict) and element.get("action_id") == "approval_approve":
                return str(element["value"]), update
    raise AssertionError("no Approve button")


async def press(w: World, action_id: str, approval_id: str, message_ts: str, user: str) -> None:
    payload = w.slack.make_block_action(
        action_id, approval_id, user=user, channel=CHANNEL, message_ts=message_ts
    )
    status, _ = await w.post_interactive(payload)
    assert status == 200


async def ephemeral_to(w: World, user: str, needle: str) -> RecordedCall:
    return await w.slack.wait_for(
        "chat.postEphemeral",
        lambda c: c.args.get("user") == user and needle in str(c.args.get("text")),
        timeout=10,
    )


async def finished_run(w: World) -> Run:
    [run] = await w.wait_runs_finished(1, timeout=30)
    assert run.status == "succeeded", run.error
    return run


async def audits(w: World, action: str) -> list[AuditEvent]:
    assert w.fox.runtime is not None
    async with w.fox.runtime.sessions() as session:
        return list((await session.scalars(select(AuditEvent).where(AuditEvent.action == action))).all())


def writes(w: World) -> list[tuple[str, str]]:
    return [(method, path) for method, path in w.k8s.requests if method != "GET"]


def decisions(run: Run) -> list[tuple[str, str]]:
    events = [event_from_dict(e) for e in run.events]
    return [(e.decision, e.by) for e in events if isinstance(e, ApprovalDecided)]


def tool_output_seen_by_the_model(model: OpenAIEmulator, needle: str) -> bool:
    return any(
        m.get("role") == "tool" and needle in str(m.get("content"))
        for r in model.requests
        for m in r.messages
    )


async def test_approved_restart_runs_once_and_the_investigation_finishes_with_the_rca(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    model.responder = script("rollout_restart", RESTART, "Restarted checkout after approval.")
    async with approvals_world(tmp_path, model) as w:
        message_ts = await ask(w, "EvAp1")
        approval_id, shown = await approval_shown(w, message_ts)
        assert "*rollout restart* on `deployment prod/checkout`" in json.dumps(
            _blocks(shown), ensure_ascii=False
        )
        assert RESTART["reason"] in json.dumps(_blocks(shown), ensure_ascii=False)
        assert writes(w) == [], "nothing runs before the approval"

        await press(w, "approval_approve", approval_id, message_ts, APPROVER)
        run = await finished_run(w)
        await w.final_update(run.thread_ts or "", "Restarted checkout after approval.")
        deployment = next(d for d in w.k8s.cluster.deployments if d["metadata"]["name"] == "checkout")
        assert (
            "kubectl.kubernetes.io/restartedAt" in deployment["spec"]["template"]["metadata"]["annotations"]
        )
        assert writes(w) == [("PATCH", "/apis/apps/v1/namespaces/prod/deployments/checkout")]
        assert decisions(run)[-1] == ("approved", APPROVER)
        assert tool_output_seen_by_the_model(model, "Restarted deployment prod/checkout")
        [audited] = await audits(w, "approval.approved")
        assert (audited.actor, audited.target) == (f"slack:{w.slack.team_id}:{APPROVER}", approval_id)
        assert audited.detail["args"]["name"] == "checkout"

        await press(w, "approval_approve", approval_id, message_ts, APPROVER)
        await ephemeral_to(w, APPROVER, f"already approved by <@{APPROVER}>")
        await press(w, "run_view_session", run.run_id, message_ts, APPROVER)
        modal = json.dumps((await w.slack.wait_for("views.open")).args["view"], ensure_ascii=False)
        assert f"approved by <@{APPROVER}> — done: Restarted deployment prod/checkout" in modal
        assert len(writes(w)) == 1


async def test_denied_restart_changes_nothing_and_the_run_finishes_saying_so(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    model.responder = script("rollout_restart", RESTART, "The restart was refused; checkout is still down.")
    async with approvals_world(tmp_path, model) as w:
        message_ts = await ask(w, "EvAp2")
        approval_id, _ = await approval_shown(w, message_ts)
        await press(w, "approval_deny", approval_id, message_ts, ORG_ADMIN)
        run = await finished_run(w)
        await w.final_update(run.thread_ts or "", "The restart was refused")
        assert writes(w) == []
        assert decisions(run) == [("denied", ORG_ADMIN)]
        assert tool_output_seen_by_the_model(model, f"Not run: Slack user {ORG_ADMIN} refused this action")
        assert len(await audits(w, "approval.denied")) == 1

        await press(w, "approval_approve", approval_id, message_ts, APPROVER)
        await ephemeral_to(w, APPROVER, f"already denied by <@{ORG_ADMIN}>")
        assert w.fox.approvals is not None
        orphan = await w.fox.approvals.open(
            ActionRequest("kubernetes", "delete_pod", ActionDescription("delete", "pod prod/x")),
            run_id=run.run_id,
            org_id="acme",
            team_node_id="checkout",
            requester=USER,
            timeout_s=600,
        )
        await press(w, "approval_approve", orphan.approval_id, message_ts, APPROVER)
        await ephemeral_to(w, APPROVER, "no longer running")
        await press(w, "approval_approve", "appr_unknown", message_ts, APPROVER)
        await ephemeral_to(w, APPROVER, "can't find that approval")
        assert writes(w) == []


async def test_an_unanswered_request_expires_and_the_run_continues(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    model.responder = script("rollout_restart", RESTART, "The restart was not approved in time.")
    async with approvals_world(tmp_path, model, approvals={"timeout_s": 1}) as w:
        message_ts = await ask(w, "EvAp3")
        approval_id, _ = await approval_shown(w, message_ts)
        run = await finished_run(w)
        assert writes(w) == []
        assert decisions(run) == [("expired", "")]
        assert tool_output_seen_by_the_model(model, "Not approved within 1 second; not run")
        [expired] = await audits(w, "approval.expired")
        assert (expired.actor, expired.target) == ("incidentfox", approval_id)
        await press(w, "approval_approve", approval_id, message_ts, APPROVER)
        await ephemeral_to(w, APPROVER, "expired before anyone approved it")
        assert writes(w) == []


async def test_a_user_who_may_not_approve_is_refused_and_nothing_runs(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    model.responder = script("rollout_restart", RESTART, "Refused.")
    async with approvals_world(tmp_path, model) as w:
        message_ts = await ask(w, "EvAp4")
        approval_id, _ = await approval_shown(w, message_ts)
        await press(w, "approval_approve", approval_id, message_ts, STRANGER)
        refusal = await ephemeral_to(w, STRANGER, "Only the approvers of team *checkout* or an org admin")
        assert f"<@{APPROVER}>" in refusal.args["text"] and f"<@{ORG_ADMIN}>" in refusal.args["text"]
        await asyncio.sleep(0.3)
        assert writes(w) == []
        assert w.fox.approvals is not None
        pending = await w.fox.approvals.get(approval_id)
        assert pending is not None and pending.status == "pending"
        await press(w, "approval_deny", approval_id, message_ts, APPROVER)
        await finished_run(w)
        assert writes(w) == []


async def test_the_requester_cannot_approve_their_own_run_unless_the_team_allows_it(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    model.responder = script("rollout_restart", RESTART, "Restarted.")
    async with approvals_world(tmp_path, model, approvals={"approver_user_ids": [USER, APPROVER]}) as w:
        message_ts = await ask(w, "EvAp5")
        approval_id, _ = await approval_shown(w, message_ts)
        await press(w, "approval_approve", approval_id, message_ts, USER)
        await ephemeral_to(w, USER, "someone else has to approve its actions")
        assert writes(w) == []

        assert w.fox.runtime is not None
        allow = {"approvals": {"allow_self_approval": True}}
        await w.fox.runtime.config.write_config(ADMIN, "acme", "checkout", allow, operation="patch")
        await press(w, "approval_approve", approval_id, message_ts, USER)
        run = await finished_run(w)
        assert decisions(run)[-1] == ("approved", USER)
        assert writes(w) == [("PATCH", "/apis/apps/v1/namespaces/prod/deployments/checkout")]


async def test_a_double_clicked_approve_scales_once(tmp_path: Path, model: OpenAIEmulator) -> None:
    model.responder = script("scale", SCALE, "Scaled checkout to 3 replicas.")
    async with approvals_world(tmp_path, model) as w:
        message_ts = await ask(w, "EvAp6")
        approval_id, _ = await approval_shown(w, message_ts)
        await asyncio.gather(
            press(w, "approval_approve", approval_id, message_ts, APPROVER),
            press(w, "approval_approve", approval_id, message_ts, APPROVER),
        )
        run = await finished_run(w)
        deployment = next(d for d in w.k8s.cluster.deployments if d["metadata"]["name"] == "checkout")
        assert deployment["spec"]["replicas"] == 3
        assert writes(w) == [("PATCH", "/apis/apps/v1/namespaces/prod/deployments/checkout/scale")]
        await ephemeral_to(w, APPROVER, f"This action was already approved by <@{APPROVER}>.")
        assert len(await audits(w, "approval.approved")) == 1
        assert [d for d in decisions(run) if d[0] == "approved"][-1] == ("approved", APPROVER)
