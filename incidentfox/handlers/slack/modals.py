"""Submissions of the setup modal: dedupe through the pipeline, then answer inside the modal."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from incidentfox.blocks.setup_modal import SETUP_CALLBACK_ID, channel_of
from incidentfox.handlers.pipeline import Duplicate, TriggerPipeline
from incidentfox.handlers.slack.setup import FieldErrors, SetupFlow
from incidentfox.handlers.trigger import RoutingKey, Trigger


def view_trigger(body: dict[str, Any], view: dict[str, Any]) -> Trigger:
    """A view submission as a trigger; its ``trigger_id`` is unique per submission and kept on retries."""
    return Trigger(
        source="slack",
        kind="view_submission",
        routing_key=RoutingKey(slack_channel_id=channel_of(view) or None),
        text=str(view.get("callback_id") or ""),
        thread_ref=None,
        requester=str((body.get("user") or {}).get("id") or ""),
        delivery_id=f"slack:view:{body.get('trigger_id') or view.get('id')}",
    )


def register_setup_modal(app: AsyncApp, *, setup: SetupFlow, pipeline: TriggerPipeline) -> None:
    @app.view(SETUP_CALLBACK_ID)
    async def on_setup_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        if isinstance(await pipeline.admit(view_trigger(body, view)), Duplicate):
            await ack()
            return
        result = await setup.submit(body, view)
        if isinstance(result, FieldErrors):
            await ack(response_action="errors", errors=result.errors)
        else:
            await ack(response_action="update", view=result.view)
