"""``/incidentfox``: the ack is immediate, the subcommand's work runs after it (a Bolt lazy listener).

Every invocation goes through the pipeline: ``admit`` dedupes it (a Socket Mode retry carries the same
``trigger_id``) and routes its channel to a team; ``investigate`` then submits a run like a mention.
``debug`` submits the same kind of run with kind ``debug``, which the worker gives to the SRE agent.
Answers are ephemeral through ``response_url``, except the visible root message of ``investigate``
and ``debug``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.runs.service import IN_PROGRESS, RunSummary
from incidentfox.blocks.command_replies import SRE_AGENT_OFF, RunLine, help_blocks, help_text, status_blocks
from incidentfox.blocks.components import Block
from incidentfox.blocks.limits import escape_mrkdwn
from incidentfox.handlers.background import BackgroundTasks
from incidentfox.handlers.pipeline import Duplicate, TriggerPipeline
from incidentfox.handlers.slack.access import SlackAccess, SlackUser
from incidentfox.handlers.slack.notices import SlackNotices, unrouted_text
from incidentfox.handlers.slack.setup import SetupFlow
from incidentfox.handlers.trigger import RoutingKey, ThreadRef, Trigger

log = logging.getLogger(__name__)
COMMAND = "/incidentfox"
STATUS_ACTIVE_MAX = 20
STATUS_FINISHED = 5
SLOW_SUBCOMMANDS = frozenset({"investigate", "debug", "setup", "status", "config"})
ASK_WHAT = "What should I look into? e.g. `/incidentfox investigate why is checkout returning 502s?`"
ASK_TASK = "What should the SRE agent work on? e.g. `/incidentfox debug why does the build fail on main?`"
NOT_IN_CHANNEL = (
    "I'm not in this channel yet, so I can't start a thread here: invite me with "
    "`/invite @IncidentFox`, then run the command again."
)
FAILED = (
    "Sorry, that didn't work because of a problem on my side. Nothing was changed; try again in a minute."
)
OTHER_WORKSPACE = "This channel's team belongs to another IncidentFox org, so I can't show it here."


def parse(text: str) -> tuple[str, str]:
    """``"investigate why 502?"`` → ``("investigate", "why 502?")``; the subcommand is lower-cased."""
    words = text.strip().split(maxsplit=1)
    return (words[0].lower(), words[1].strip() if len(words) > 1 else "") if words else ("", "")


class TeamRuns(Protocol):
    """The run queries ``status`` needs (``RunStore`` provides them)."""

    async def in_progress_for_team(
        self, org_id: str, team_id: str, *, limit: int = 20
    ) -> list[RunSummary]: ...

    async def recent_for_team(self, org_id: str, team_id: str, *, limit: int = 10) -> list[RunSummary]: ...


ConfigSummary = Callable[[str, str], Awaitable[tuple[list[Block], str]]]
"""``(org_id, team_id) -> (blocks, fallback text)`` for ``/incidentfox config``."""


class SlashCommands:
    """What each subcommand does, after the ack."""

    def __init__(
        self,
        *,
        pipeline: TriggerPipeline,
        access: SlackAccess,
        setup: SetupFlow,
        runs: TeamRuns,
        client: AsyncWebClient,
        notices: SlackNotices,
        config_summary: ConfigSummary | None = None,
        sre_agent: bool = False,
    ) -> None:
        """``sre_agent``: the SRE agent is on (an Anthropic API key is set), so ``debug`` may start it."""
        self._pipeline = pipeline
        self._access = access
        self._setup = setup
        self._runs = runs
        self._client = client
        self._notices = notices
        self._config_summary = config_summary
        self._sre_agent = sre_agent
        self._background = BackgroundTasks()

    def start(self, body: Mapping[str, Any], respond: AsyncRespond) -> None:
        """Run the subcommand after the ack, as a task this object owns (``drain`` waits for them).

        Not a Bolt lazy listener: those deep-copy the request, and with it the shared HTTP session."""
        self._background.spawn(self._handle_safely(body, respond))

    async def drain(self) -> None:
        await self._background.drain()

    async def _handle_safely(self, body: Mapping[str, Any], respond: AsyncRespond) -> None:
        try:
            await self.handle(body, respond)
        except Exception as exc:
            log.error(
                "slash command failed text=%r error=%s",
                parse(str(body.get("text") or ""))[0],
                type(exc).__name__,
            )
            try:
                await respond(text=FAILED, response_type="ephemeral")
            except Exception:
                log.warning("could not tell the user the slash command failed")

    async def handle(self, body: Mapping[str, Any], respond: AsyncRespond) -> None:
        subcommand, rest = parse(str(body.get("text") or ""))
        channel = str(body.get("channel_id") or "")
        user = SlackUser.from_body(body)
        trigger = Trigger(
            source="slack",
            kind="command",
            routing_key=RoutingKey(slack_channel_id=channel),
            text=f"{subcommand} {rest}".strip(),
            thread_ref=None,
            requester=user.user_id,
            delivery_id=f"slack:command:{body.get('trigger_id')}",
        )
        admitted = await self._pipeline.admit(trigger)
        if isinstance(admitted, Duplicate):
            return
        if subcommand == "setup":
            problem = await self._setup.open(body)
            if problem:
                await respond(text=problem, response_type="ephemeral")
            return
        target = admitted.target
        if target is None:
            await respond(text=unrouted_text(channel), response_type="ephemeral")
            return
        owner = await self._access.org_of(user.workspace_id)
        if owner is not None and owner != target.org_id:
            await respond(text=OTHER_WORKSPACE, response_type="ephemeral")
            return
        if subcommand == "investigate":
            await self._investigate(body, user, rest, respond)
        elif subcommand == "debug":
            if not self._sre_agent:
                await respond(text=SRE_AGENT_OFF, response_type="ephemeral")
            else:
                await self._investigate(body, user, rest, respond, kind="debug")
        elif subcommand == "status":
            blocks = await self._status(target.org_id, target.team_node_id)
            await respond(
                blocks=blocks, text=f"Investigations of team {target.team_node_id}", response_type="ephemeral"
            )
        elif self._config_summary is not None:
            blocks, text = await self._config_summary(target.org_id, target.team_node_id)
            await respond(blocks=blocks, text=text, response_type="ephemeral")

    async def _investigate(
        self,
        body: Mapping[str, Any],
        user: SlackUser,
        question: str,
        respond: AsyncRespond,
        *,
        kind: str = "command",
    ) -> None:
        """Post the visible root message and submit a run of ``kind`` in its thread."""
        if not question:
            await respond(text=ASK_TASK if kind == "debug" else ASK_WHAT, response_type="ephemeral")
            return
        channel = str(body["channel_id"])
        try:
            root = await self._client.chat_postMessage(
                channel=channel, text=f"<@{user.user_id}> asked: {escape_mrkdwn(question)}"
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("investigate root message failed channel=%s error=%s", channel, error)
            text = (
                NOT_IN_CHANNEL
                if error in ("not_in_channel", "channel_not_found")
                else (f"Slack refused my message ({error}); try again in a minute.")
            )
            await respond(text=text, response_type="ephemeral")
            return
        trigger = Trigger(
            source="slack",
            kind=kind,
            routing_key=RoutingKey(slack_channel_id=channel),
            text=question,
            thread_ref=ThreadRef(
                channel_id=channel, thread_ts=str(root["ts"]), workspace_id=user.workspace_id
            ),
            requester=user.user_id,
            delivery_id=f"slack:command:{body.get('trigger_id')}:run",
            payload={"team_id": user.workspace_id},
        )
        self._notices.tell(trigger, await self._pipeline.submit(trigger))

    async def _status(self, org_id: str, team_id: str) -> list[Block]:
        active = await self._runs.in_progress_for_team(org_id, team_id, limit=STATUS_ACTIVE_MAX)
        recent = await self._runs.recent_for_team(org_id, team_id, limit=STATUS_ACTIVE_MAX + STATUS_FINISHED)
        finished = [run for run in recent if run.status not in IN_PROGRESS][:STATUS_FINISHED]
        lines = await asyncio.gather(*(self._line(run) for run in [*active, *finished]))
        return status_blocks(team_id, lines[: len(active)], lines[len(active) :])

    async def _line(self, run: RunSummary) -> RunLine:
        permalink = None
        ts = run.message_ts or run.thread_ts
        if run.channel_id and ts:
            try:
                answer = await self._client.chat_getPermalink(channel=run.channel_id, message_ts=ts)
                permalink = answer.get("permalink")
            except SlackApiError as exc:
                log.info("permalink unavailable run_id=%s error=%s", run.run_id, exc.response.get("error"))
        return RunLine(run.question, run.status, run.created_at, run.duration_s, permalink)


def register_commands(app: AsyncApp, commands: SlashCommands) -> None:
    @app.command(COMMAND)
    async def on_command(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        subcommand, _ = parse(str(body.get("text") or ""))
        if subcommand in SLOW_SUBCOMMANDS:
            await ack()
            commands.start(body, respond)
            return
        unknown = str(body.get("text") or "").strip() if subcommand not in ("", "help") else None
        await ack(response_type="ephemeral", text=help_text(), blocks=help_blocks(unknown=unknown))
