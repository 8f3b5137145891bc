"""The SRE agent behind the worker's ``Investigator`` interface, and the dispatcher that picks it.

A run of kind ``debug`` (``/incidentfox debug <task>``), and any later run in a thread that has an
SRE agent session, is a message to that thread's ``SreSessions`` session: its progress streams into
the run's live message through ``context.emit``, and its answer is shown as the agent wrote it.
Everything else goes to the planner (or the no-LLM analyzers), as before.

Interrupt: the worker cancels the run's task. Before the cancellation reaches the CLI, the
thread's session is interrupted (``client.interrupt()``), so the agent stops cleanly and its session
and files survive for the next message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Mapping
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Answer, Error, Interrupted, ProgressEvent, Started
from incidentfox.agents.investigator import InvestigationOutcome, Investigator
from incidentfox.agents.redaction import scrub_text, secret_values
from incidentfox.blocks.command_replies import SRE_AGENT_OFF
from incidentfox.sandboxes.session import Equipment, SandboxSettings, SessionAnswer, SreSessions
from incidentfox.sandboxes.store import SessionPlace
from incidentfox.sandboxes.thread_files import thread_share

log = logging.getLogger(__name__)

DEBUG_KIND = "debug"
SRE_ENTRANCE_KINDS = frozenset({"mention", "dm", "thread_reply"})
"""Runs a team with ``entrance_agent: sre`` gives to the SRE agent instead of the planner."""
RESUME_KIND = "resume"
RESUME_PROMPT = (
    "{by} pressed Resume: you were interrupted. Continue the task where you left off (your files are "
    "as you left them). The task was:\n{question}"
)
INTERRUPT_WAIT_S = 10.0
"""How long an interrupted turn may take to stop on its own before it is cancelled."""
NO_THREAD = "The SRE agent works only in a Slack thread, and this run has none."
FILES_RESET = (
    "_The sandbox's files were reset: they expired after a time without activity. The conversation "
    "was restored in a fresh sandbox._"
)
UNCONFINED = (
    "⚠️ _This session runs unconfined (`sandbox.backend: unsafe-local`): the agent's commands run "
    "directly on the IncidentFox host._"
)
NO_ANSWER = "_The agent finished without a written answer._"
INTERRUPTED = "_(interrupted before it finished)_"


BAD_TTL = "The team's `sandbox.ttl_s` must be a whole number of seconds, at least 60; fix it in its config."


def sandbox_settings(config: Mapping[str, Any]) -> SandboxSettings:
    """The team's ``sandbox.{backend,ttl_s,runtime_class}``; defaults ``local`` and 3600 s.
    ``ValueError(BAD_TTL)`` for a TTL that is not a whole number of seconds of at least 60."""
    raw = config.get("sandbox")
    sandbox: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    runtime_class = sandbox.get("runtime_class")
    ttl = sandbox.get("ttl_s", 3600)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 60:
        raise ValueError(BAD_TTL)
    return SandboxSettings(
        backend=str(sandbox.get("backend") or "local"),
        ttl_s=ttl,
        runtime_class=str(runtime_class) if runtime_class else None,
    )


def wants_sre_agent(context: InvestigationContext) -> bool:
    """A ``debug`` run, or an @mention (or a DM) to a team whose ``entrance_agent`` is ``sre``."""
    if context.kind == DEBUG_KIND:
        return True
    return context.kind in SRE_ENTRANCE_KINDS and context.config.get("entrance_agent") == "sre"


def session_place(context: InvestigationContext) -> SessionPlace | None:
    """The thread the run answers in, as the SRE agent's session place; ``None`` without a thread."""
    if not (context.thread_key and context.channel_id and context.thread_ts):
        return None
    return SessionPlace(
        context.org_id, context.team_node_id, context.thread_key, context.channel_id, context.thread_ts
    )


def answer_words(answer: SessionAnswer) -> str:
    """The thread's text for an answer: the agent's words, with what the user must know first."""
    notes = [UNCONFINED] if not answer.confined else []
    if answer.files_reset:
        notes.append(FILES_RESET)
    said = answer.text.strip() or NO_ANSWER
    if answer.interrupted:
        said = f"{said}\n{INTERRUPTED}"
    return "\n\n".join([*notes, said])


def error_words(answer: SessionAnswer) -> str:
    """The plain-words error, still saying the session is unconfined or its files were reset."""
    notes = [] if answer.confined else [UNCONFINED]
    if answer.files_reset:
        notes.append(FILES_RESET)
    return "\n\n".join([*notes, answer.error or ""])


def _who(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "Someone"


def _emit_once(context: InvestigationContext, event: ProgressEvent) -> None:
    """Pass the agent's events on, except its ``Interrupted`` when the worker is stopping the run:
    the worker shows that one itself."""
    if isinstance(event, Interrupted) and context.interrupted_by() is not None:
        return
    context.emit(event)


class SreInvestigator:
    """One run = one message to the thread's SRE agent session."""

    def __init__(self, sessions: SreSessions, slack: AsyncWebClient | None = None) -> None:
        """``slack``: where ``share_file`` uploads the files the agent attaches (none: not offered)."""
        self._sessions = sessions
        self._slack = slack

    async def investigate(
        self, context: InvestigationContext, question: str, history: list[dict[str, Any]]
    ) -> InvestigationOutcome:
        place = session_place(context)
        if place is None:
            context.emit(Started(summary=question))
            context.emit(Error(message=NO_THREAD))
            return InvestigationOutcome(rca=None, error=NO_THREAD, history=history)
        try:
            settings = sandbox_settings(context.config)
        except ValueError as exc:
            context.emit(Started(summary=question))
            context.emit(Error(message=str(exc)))
            return InvestigationOutcome(rca=None, error=str(exc), history=history)
        if context.kind == RESUME_KIND:
            question = RESUME_PROMPT.format(by=_who(context.requester), question=question)
        asking = asyncio.ensure_future(
            self._sessions.ask(
                place,
                question,
                requester=context.requester or "someone",
                sandbox_settings=settings,
                emit=functools.partial(_emit_once, context),
                equipment=Equipment(
                    context.config, thread_share(self._slack, place) if self._slack is not None else None
                ),
            )
        )
        try:
            answer = await asyncio.shield(asking)
        except asyncio.CancelledError:
            await self._stop(place.thread_key, context, asking)
            raise
        secrets = secret_values(context.config)
        if answer.error is not None:
            return InvestigationOutcome(
                rca=None, error=scrub_text(error_words(answer), secrets), history=history
            )
        words = scrub_text(answer_words(answer), secrets)
        context.emit(Answer(text=words))
        turn = [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
        return InvestigationOutcome(rca=None, answer=words, history=[*history, *turn])

    async def _stop(
        self, thread_key: str, context: InvestigationContext, asking: asyncio.Future[Any]
    ) -> None:
        """The run was cancelled: interrupt the agent, give its turn a moment to end, then cancel it
        (which disconnects the CLI; the next message resumes the session)."""
        by = context.interrupted_by() or "IncidentFox"
        with contextlib.suppress(Exception):
            await asyncio.shield(self._sessions.interrupt(thread_key, by))
        with contextlib.suppress(BaseException):
            await asyncio.shield(asyncio.wait({asking}, timeout=INTERRUPT_WAIT_S))
        if not asking.done():
            asking.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.shield(asyncio.wait({asking}))
        if asking.done() and not asking.cancelled() and asking.exception() is not None:
            log.warning("SRE agent turn failed while interrupted thread=%s", thread_key)


class DispatchingInvestigator:
    """``debug`` runs, and runs in a thread with an SRE agent session, go to the SRE agent; the rest
    to ``default``. Without an SRE agent (no Anthropic key) a ``debug`` run ends with a plain error
    (one queued before the key was removed, or taken by a worker started without it)."""

    def __init__(
        self, default: Investigator, sre: SreInvestigator | None, sessions: SreSessions | None
    ) -> None:
        self._default = default
        self._sre = sre
        self._sessions = sessions

    async def investigate(
        self, context: InvestigationContext, question: str, history: list[dict[str, Any]]
    ) -> InvestigationOutcome:
        if self._sre is not None and await self._is_sre_thread(context):
            return await self._sre.investigate(context, question, history)
        if self._sre is None and wants_sre_agent(context):
            context.emit(Started(summary=question))
            context.emit(Error(message=SRE_AGENT_OFF))
            return InvestigationOutcome(rca=None, error=SRE_AGENT_OFF, history=history)
        outcome = await self._default.investigate(context, question, history)
        if self._sre is not None and outcome.rca is not None and session_place(context) is not None:
            return dataclasses.replace(outcome, dig_deeper=True)
        return outcome

    async def _is_sre_thread(self, context: InvestigationContext) -> bool:
        if wants_sre_agent(context):
            return True
        if self._sessions is None or not context.thread_key:
            return False
        row = await self._sessions.store.for_thread(context.thread_key)
        return row is not None and row.status != "ended"
