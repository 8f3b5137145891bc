"""Slack listeners for investigations: build a Trigger, hand it to the pipeline, return."""

from __future__ import annotations

from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from incidentfox.handlers.pipeline import TriggerPipeline
from incidentfox.handlers.slack.adapter import (
    is_human_direct_message,
    is_human_thread_reply,
    trigger_from_event,
)
from incidentfox.handlers.slack.notices import SlackNotices


class ListeningThreads(Protocol):
    """Threads whose replies need no @mention (those with an SRE agent session)."""

    async def listens_to(self, thread_key: str) -> bool: ...


def register_investigation_listeners(
    app: AsyncApp,
    pipeline: TriggerPipeline,
    notices: SlackNotices,
    threads: ListeningThreads | None = None,
) -> None:
    async def investigate(body: dict[str, Any], context: AsyncBoltContext) -> None:
        trigger = trigger_from_event(body, bot_user_id=context.bot_user_id)
        if not trigger.text:
            notices.ask_for_a_question(trigger)
            return
        notices.tell(trigger, await pipeline.submit(trigger))

    @app.event("app_mention")
    async def on_mention(body: dict[str, Any], context: AsyncBoltContext) -> None:
        await investigate(body, context)

    @app.event("message")
    async def on_message(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        if is_human_direct_message(event):
            await investigate(body, context)
        elif threads is not None and is_human_thread_reply(event, context.bot_user_id):
            trigger = trigger_from_event(body, bot_user_id=context.bot_user_id, kind="thread_reply")
            thread = trigger.thread_ref
            if thread is not None and trigger.text and await threads.listens_to(thread.key):
                notices.tell(trigger, await pipeline.submit(trigger))
