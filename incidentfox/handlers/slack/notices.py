"""Telling a Slack user what happened to their trigger when no run was started.

These replies are sent in the background, after the ack, so a slow Slack never delays it.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.queue import Backlog
from incidentfox.blocks.limits import escape_mrkdwn
from incidentfox.handlers.background import BackgroundTasks
from incidentfox.handlers.pipeline import Accepted, Misconfigured, PipelineOutcome, Unrouted
from incidentfox.handlers.trigger import Trigger

log = logging.getLogger(__name__)


def unrouted_text(channel_id: str) -> str:
    return (
        "This channel isn't connected to an IncidentFox team yet, so I can't investigate here. "
        "Run `/incidentfox setup` in this channel to create or join a team, or ask an admin to add "
        f"`{channel_id}` to a team's `routing.slack_channel_ids`."
    )


def misconfigured_text(team: str, problems: tuple[str, ...]) -> str:
    listed = "\n".join(f"• {escape_mrkdwn(problem)}" for problem in problems)
    return f"I can't investigate for team *{escape_mrkdwn(team)}* yet:\n{listed}"


ASK_FOR_A_QUESTION = (
    "What should I look into? Mention me with a question, e.g. `@IncidentFox why is checkout crashlooping?`"
)


DEGRADED = (
    "IncidentFox is degraded right now (its run queue is unreachable). Your request was saved and will "
    "be investigated as soon as the queue is back; you don't need to ask again."
)


def backlog_text(backlog: Backlog) -> str:
    """What a user hears when their run joins a long queue: how long, as honestly as can be said."""
    ahead = "1 investigation is" if backlog.ahead == 1 else f"{backlog.ahead:,} investigations are"
    minutes = backlog.wait_minutes()
    if minutes is None:
        when = (
            f"no investigation has finished in the last {backlog.window_min} minutes, so I can't say "
            "when yours will start"
        )
    elif minutes < 1.5:
        when = "at the current pace yours should start within about a minute"
    else:
        when = f"at the current pace yours should start in about {round(minutes):,} minutes"
    return (
        f"IncidentFox is busier than usual: {ahead} waiting ahead of yours, and {when}. Your request is "
        "saved and will be answered in this thread; you don't need to ask again."
    )


class SlackNotices:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._background = BackgroundTasks()

    def tell(self, trigger: Trigger, outcome: PipelineOutcome) -> None:
        if isinstance(outcome, Unrouted) and trigger.thread_ref:
            self._spawn(self._ephemeral(trigger, unrouted_text(trigger.thread_ref.channel_id)))
        elif isinstance(outcome, Accepted) and outcome.degraded and trigger.thread_ref:
            self._spawn(self._ephemeral(trigger, DEGRADED))
        elif isinstance(outcome, Accepted) and outcome.backlog is not None and trigger.thread_ref:
            self._spawn(self._ephemeral(trigger, backlog_text(outcome.backlog)))
        elif isinstance(outcome, Misconfigured):
            self._spawn(
                self._in_thread(trigger, misconfigured_text(outcome.target.team_node_id, outcome.problems))
            )

    def ephemeral_in(self, body: dict[str, Any], text: str) -> None:
        """An ephemeral reply to whoever pressed a button, in the channel of the message they pressed."""
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        user = (body.get("user") or {}).get("id")
        if channel and user:
            self._spawn(self._post_ephemeral(channel, user, text, None))

    def ask_for_a_question(self, trigger: Trigger) -> None:
        self._spawn(self._ephemeral(trigger, ASK_FOR_A_QUESTION))

    async def drain(self) -> None:
        await self._background.drain()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self._background.spawn(coroutine)

    async def _ephemeral(self, trigger: Trigger, text: str) -> None:
        assert trigger.thread_ref is not None
        if trigger.kind == "dm":
            await self._in_thread(trigger, text)
            return
        await self._post_ephemeral(
            trigger.thread_ref.channel_id, trigger.requester, text, trigger.thread_ref.thread_ts
        )

    async def _post_ephemeral(self, channel: str, user: str, text: str, thread_ts: str | None) -> None:
        try:
            await self._client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
        except SlackApiError as exc:
            log.warning("ephemeral notice failed channel=%s error=%s", channel, exc.response.get("error"))

    async def _in_thread(self, trigger: Trigger, text: str) -> None:
        if trigger.thread_ref is None:
            return
        try:
            await self._client.chat_postMessage(
                channel=trigger.thread_ref.channel_id, thread_ts=trigger.thread_ref.thread_ts, text=text
            )
        except SlackApiError as exc:
            log.warning(
                "thread notice failed channel=%s error=%s",
                trigger.thread_ref.channel_id,
                exc.response.get("error"),
            )
