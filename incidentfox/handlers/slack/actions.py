"""Slack listeners for the buttons on a run's message and the follow-up modal.

Each listener acks first, then hands the work to a service: the run store, the worker's run control,
or the pipeline (a follow-up or a resume is a new trigger in the same thread).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.events import event_from_dict
from incidentfox.agents.run_control import RunControl
from incidentfox.agents.runs.models import Run
from incidentfox.agents.runs.service import RunStore
from incidentfox.blocks.follow_up import FOLLOW_UP_CALLBACK_ID, render_follow_up_modal, submitted_question
from incidentfox.blocks.progress import ACTION_INTERRUPT, ACTION_RESUME, ACTION_VIEW_SESSION
from incidentfox.blocks.rca import (
    ACTION_DIG_DEEPER,
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    ACTION_FOLLOW_UP,
)
from incidentfox.blocks.session import render_session_view
from incidentfox.handlers.pipeline import Duplicate, TriggerPipeline
from incidentfox.handlers.slack.access import SlackAccess, SlackUser
from incidentfox.handlers.slack.notices import SlackNotices
from incidentfox.handlers.trigger import RoutingKey, ThreadRef, Trigger

GONE = "I can't find that investigation any more."
NOT_RUNNING = "That investigation is not running here any more, so there is nothing to interrupt."


def follow_up_trigger(run: Run, *, text: str, requester: str, delivery_id: str, kind: str) -> Trigger | None:
    """A new trigger in the thread of ``run``; ``None`` for a run that has no Slack thread."""
    if not run.channel_id or not run.thread_ts:
        return None
    workspace = run.thread_key.split(":")[1] if run.thread_key else ""
    return Trigger(
        source="slack",
        kind=kind,
        routing_key=RoutingKey(slack_channel_id=run.channel_id),
        text=text,
        thread_ref=ThreadRef(channel_id=run.channel_id, thread_ts=run.thread_ts, workspace_id=workspace),
        requester=requester,
        delivery_id=delivery_id,
    )


DIG_DEEPER_TASK = (
    "Dig deeper in a sandbox: {question}\n"
    "An investigation in this thread answered it; check its conclusion hands-on.\n"
    "The investigation concluded: {summary}\n"
    "Its root cause: {root_cause}\n"
    "Verify or refute the root cause with evidence (read the code, run commands), and say what to do next."
)


def dig_deeper_task(run: Run) -> str:
    """The SRE agent's task for "Dig deeper in a sandbox": the question and what the RCA concluded."""
    rca = run.rca or {}
    return DIG_DEEPER_TASK.format(
        question=run.question or "(none)",
        summary=str(rca.get("summary") or "(no summary)"),
        root_cause=str(rca.get("root_cause") or "(not found)"),
    )


def action_trigger(body: dict[str, Any], run_id: str) -> Trigger:
    """A button press as a trigger; its ``trigger_id`` is unique per press and kept on retries."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return Trigger(
        source="slack",
        kind="action",
        routing_key=RoutingKey(slack_channel_id=channel),
        text=run_id,
        thread_ref=None,
        requester=str((body.get("user") or {}).get("id") or ""),
        delivery_id=f"slack:action:{body.get('trigger_id') or body.get('actions', [{}])[0].get('action_ts')}",
    )


class RunGuard:
    """Resolves the run a button names, once per press: deduped through the pipeline, and refused
    (ephemerally) when the run is gone or belongs to another org or channel."""

    def __init__(
        self, *, runs: RunStore, pipeline: TriggerPipeline, access: SlackAccess, notices: SlackNotices
    ) -> None:
        self._runs = runs
        self._pipeline = pipeline
        self._access = access
        self._notices = notices

    async def run_for(
        self, body: dict[str, Any], run_id: str, *, controlling: str | None = None
    ) -> Run | None:
        """The run, or ``None`` after telling the presser why not. ``controlling`` names what the
        button does to the run (interrupt, resume, rate): only its people may do that."""
        trigger = action_trigger(body, run_id)
        if isinstance(await self._pipeline.admit(trigger), Duplicate):
            return None
        run = await self._runs.get(run_id)
        if run is None:
            self._notices.ephemeral_in(body, GONE)
            return None
        refusal = await self._access.run_refusal(
            SlackUser.from_body(body),
            run_org=run.org_id,
            run_channel=run.channel_id,
            clicked_in=trigger.routing_key.slack_channel_id,
        )
        if refusal is None and controlling is not None:
            refusal = await self._access.run_control_refusal(
                trigger.requester,
                org_id=run.org_id,
                team_id=run.team_node_id,
                requester=run.requester,
                doing=controlling,
            )
        if refusal is not None:
            self._notices.ephemeral_in(body, refusal.message)
            return None
        return run


def register_run_actions(
    app: AsyncApp,
    *,
    runs: RunStore,
    control: RunControl | None,
    pipeline: TriggerPipeline,
    notices: SlackNotices,
    access: SlackAccess,
) -> None:
    guard = RunGuard(runs=runs, pipeline=pipeline, access=access, notices=notices)

    async def in_thread(body: dict[str, Any], run: Run, text: str, delivery_id: str, kind: str) -> None:
        """A new run in ``run``'s thread, asked by whoever pressed the button."""
        trigger = follow_up_trigger(
            run, text=text, requester=body["user"]["id"], delivery_id=delivery_id, kind=kind
        )
        if trigger is None:
            notices.ephemeral_in(body, GONE)
            return
        notices.tell(trigger, await pipeline.submit(trigger))

    async def vote(body: dict[str, Any], action: dict[str, Any], value: str) -> None:
        if await guard.run_for(body, action["value"], controlling="rate") is None:
            return
        recorded = await runs.record_feedback(action["value"], body["user"]["id"], value)
        notices.ephemeral_in(body, "Thanks, your feedback is recorded." if recorded else GONE)

    @app.action(ACTION_FEEDBACK_UP)
    async def on_feedback_up(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await vote(body, action, "up")

    @app.action(ACTION_FEEDBACK_DOWN)
    async def on_feedback_down(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await vote(body, action, "down")

    @app.action(ACTION_VIEW_SESSION)
    async def on_view_session(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        run = await guard.run_for(body, action["value"])
        if run is None:
            return
        live = control.live_events(run.run_id) if control else None
        events = live if live is not None else [event_from_dict(e) for e in run.events]
        view = render_session_view(events, run_id=run.run_id, title=run.question or "Investigation")
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action(ACTION_INTERRUPT)
    async def on_interrupt(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        if await guard.run_for(body, action["value"], controlling="interrupt") is None:
            return
        if control is None or not await control.interrupt(action["value"], body["user"]["id"]):
            notices.ephemeral_in(body, NOT_RUNNING)

    @app.action(ACTION_RESUME)
    async def on_resume(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        run = await guard.run_for(body, action["value"], controlling="resume")
        if run is not None:
            await in_thread(body, run, run.question, f"slack:resume:{run.run_id}", "resume")

    @app.action(ACTION_DIG_DEEPER)
    async def on_dig_deeper(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        run = await guard.run_for(body, action["value"])
        if run is not None:
            delivery = f"slack:dig:{body.get('trigger_id') or run.run_id}"
            await in_thread(body, run, dig_deeper_task(run), delivery, "debug")

    @app.action(ACTION_FOLLOW_UP)
    async def on_follow_up_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        run = await guard.run_for(body, action["value"])
        if run is None:
            return
        modal = render_follow_up_modal(run_id=run.run_id, asked=run.question)
        await client.views_open(trigger_id=body["trigger_id"], view=modal)

    @app.view(FOLLOW_UP_CALLBACK_ID)
    async def on_follow_up_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        question = submitted_question(view)
        if not question:
            await ack(response_action="errors", errors={"question": "Write the question you want answered."})
            return
        await ack()
        run = await runs.get(view.get("private_metadata", ""))
        owner = await access.org_of(SlackUser.from_body(body).workspace_id)
        if run is not None and owner is not None and owner != run.org_id:
            return
        trigger = (
            None
            if run is None
            else follow_up_trigger(
                run,
                text=question,
                requester=body["user"]["id"],
                delivery_id=f"slack:view:{view['id']}",
                kind="follow_up",
            )
        )
        if trigger is not None:
            notices.tell(trigger, await pipeline.submit(trigger))
