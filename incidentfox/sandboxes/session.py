"""The SRE agent's sessions: one ``SreSession`` per Slack thread, all of them in one ``SreSessions``.

``ask`` is the whole life of a message (design §3 "thread = session", §7 "SRE agent", issue 10):

* find the thread's session in the inventory, or open one with a fresh sandbox;
* use its sandbox if it still works (also after a restart: the handles are in the database);
  otherwise create a fresh one, ``reattach`` it, and put the rehydration preamble before the
  message, so the agent knows the task and the recent turns and that its files were reset;
* run the turn on the thread's live CLI (``session_thread``), streaming typed progress events,
  recording the transcript as it happens and moving the TTL on every message;
* answer with the agent's final text, or a plain-words error with nothing left running.

Sandboxes are never destroyed here except when a session ends for good (its turn limit): expiry is
the reaper's job, and ``destroy_row`` is what it calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from incidentfox.agents.events import Error, Resumed, Started
from incidentfox.agents.team_slots import LocalTeamSlots, TeamSlots
from incidentfox.observability.metrics import PROCESS_METRICS
from incidentfox.sandboxes.backends.base import (
    ProxyEndpoint,
    Sandbox,
    SandboxBackend,
    SandboxError,
    SandboxSpec,
)
from incidentfox.sandboxes.model_proxy import ModelProxy
from incidentfox.sandboxes.models import SandboxSession
from incidentfox.sandboxes.rehydration import rehydration_preamble
from incidentfox.sandboxes.session_checkout import check_out_repo
from incidentfox.sandboxes.session_sandbox import (
    SandboxSettings,
    SessionLimits,
    attach_first_sandbox,
    proxy_endpoint,
    sandbox_from_row,
    sandbox_ref,
    sandbox_spec,
    still_works,
    stored_details,
)
from incidentfox.sandboxes.session_thread import Emit, Equipment, SessionDeps, SreSession, TurnOutcome
from incidentfox.sandboxes.session_tokens import SessionTokens
from incidentfox.sandboxes.store import SandboxStore, SessionPlace, Turn

__all__ = ["Equipment", "SandboxSettings", "SessionAnswer", "SessionLimits", "SreSession", "SreSessions"]

log = logging.getLogger(__name__)

TEAM_BUSY = "This team already has {n} SRE agent sessions working. Try again when one of them has answered."
TURN_LIMIT = (
    "This SRE agent session has reached its limit of {n} messages, so it has ended and its sandbox was "
    "removed. Start a new thread to continue (the conversation so far stays in this thread)."
)
NO_SANDBOX = "The SRE agent could not get a sandbox: {detail}"
INTERRUPTED = "(interrupted by {by} before it finished)"
RESUME_LOST = (
    "Your earlier conversation with the agent in this thread could not be resumed; the files in the "
    "workdir are as you left them. The most recent turns, oldest first:"
)
SUMMARY_CHARS = 200
RESUME_LOST_TURNS = 8


@dataclass(frozen=True, slots=True)
class SessionAnswer:
    """What the thread shows for one message.

    ``files_reset``: the files were lost to expiry and the conversation was rehydrated in a fresh
    sandbox; say so in the thread. ``confined`` False: an ``unsafe-local`` session; every message must
    say it runs unconfined. ``error`` is plain words for the thread, with nothing left running.
    """

    text: str
    files_reset: bool
    session_id: str | None
    error: str | None = None
    interrupted: bool = False
    confined: bool = True


@dataclass(frozen=True, slots=True)
class _Attached:
    session: SreSession
    files_reset: bool
    preamble: str
    fresh: bool = False
    """A new sandbox (a new session, or a rehydrated one): its workdir is empty."""


class SreSessions:
    """Every SRE-agent session of this process. One instance per process, shared by all threads."""

    def __init__(
        self,
        store: SandboxStore,
        backend_for: Callable[[str], SandboxBackend],
        proxy: ModelProxy,
        tokens: SessionTokens,
        runtime_dir: Path,
        limits: SessionLimits | None = None,
        *,
        endpoints: Mapping[str, ProxyEndpoint] | None = None,
        team_slots: TeamSlots | None = None,
    ) -> None:
        """``endpoints`` says, by backend name, where its sandboxes find the proxy (pods need a host
        they can reach and the labels of the proxy's pods); any other backend's is ``proxy.url``."""
        self.store = store
        self.backend_for = backend_for
        self.proxy = proxy
        self.limits = limits or SessionLimits()
        self.deps = SessionDeps(store, tokens, self.limits, runtime_dir / "launchers")
        self._endpoints = dict(endpoints or {})
        self._live: dict[str, SreSession] = {}
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.team_slots: TeamSlots = team_slots or LocalTeamSlots()
        """Each team's working sessions, counted across every worker process when shared in Redis."""
        PROCESS_METRICS.sandboxes.track(self)

    def active_by_backend(self) -> dict[str, int]:
        """Sandboxes with a live session in this process, by backend (``incidentfox_sandboxes_active``)."""
        return dict(Counter(live.backend.name for live in list(self._live.values())))

    def endpoint(self, backend: str) -> ProxyEndpoint:
        """Where sandboxes of ``backend`` find the model proxy."""
        return self._endpoints.get(backend) or proxy_endpoint(self.proxy.url)

    def _spec(self, row: SandboxSession, settings: SandboxSettings, backend: str) -> SandboxSpec:
        return sandbox_spec(row, settings, self.limits, self.endpoint(backend))

    def session(self, thread_key: str) -> SreSession | None:
        """The thread's live session in this process, if any."""
        return self._live.get(thread_key)

    async def ask(
        self,
        place: SessionPlace,
        text: str,
        *,
        requester: str,
        sandbox_settings: SandboxSettings,
        emit: Emit,
        equipment: Equipment | None = None,
    ) -> SessionAnswer:
        """Answer ``text`` in the thread's session; one message per thread at a time (others wait).
        ``equipment``: the team's config for its tools, and how to attach files to the thread."""
        team, holder = f"sre:{place.org_id}/{place.team_node_id}", f"{place.thread_key}#{uuid.uuid4().hex}"
        if not await self.team_slots.take(team, holder, self.limits.max_concurrent_per_team):
            message = TEAM_BUSY.format(n=self.limits.max_concurrent_per_team)
            emit(Error(message))
            return SessionAnswer("", False, None, message)
        try:
            async with self._locks[place.thread_key]:
                return await self._ask(place, text, requester, sandbox_settings, emit, equipment)
        finally:
            await self.team_slots.give_back(team, holder)

    async def interrupt(self, thread_key: str, by: str) -> bool:
        """Stop the thread's running turn (its session and files survive). ``False``: nothing was
        running, or it was already interrupted, so there was nothing to do."""
        live = self._live.get(thread_key)
        return live is not None and await live.interrupt(by)

    async def close_idle(self, idle_s: float | None = None) -> int:
        """Stop the CLIs of threads quiet for ``idle_s`` (default: the limits'); their sandboxes stay
        for the reaper, and the next message resumes the CLI's session. Returns how many stopped."""
        cutoff = time.monotonic() - (self.limits.idle_client_s if idle_s is None else idle_s)
        idle = [s for s in self._live.values() if not s.running and s.last_used <= cutoff]
        for live in idle:
            await live.disconnect()
            self._live.pop(live.thread_key, None)
        for key in [k for k, lock in self._locks.items() if not lock.locked() and k not in self._live]:
            del self._locks[key]
        return len(idle)

    async def shutdown(self) -> None:
        """Stop every CLI (a running turn ends with an error); sandboxes stay for the reaper."""
        lives, self._live = list(self._live.values()), {}
        await asyncio.gather(*(live.disconnect() for live in lives))

    async def destroy_row(self, row: SandboxSession) -> None:
        """Destroy the row's sandbox, for ``SandboxReaper``: works from the stored handles alone,
        in any process. A live CLI of that session in this process is stopped first."""
        for key, live in list(self._live.items()):
            if live.session_id == row.session_id:
                await live.disconnect()
                self._live.pop(key, None)
        if not row.sandbox_ref and not row.sandbox_details:
            return
        backend = self.backend_for(row.backend)
        spec = sandbox_spec(row, SandboxSettings(backend=row.backend), self.limits, None)
        await backend.destroy(sandbox_from_row(row, spec))

    async def _ask(
        self,
        place: SessionPlace,
        text: str,
        requester: str,
        settings: SandboxSettings,
        emit: Emit,
        equipment: Equipment | None,
    ) -> SessionAnswer:
        emit(Started(_summary(text)))
        row = await self.store.for_thread(place.thread_key)
        if row is not None and row.turns >= self.limits.max_turns:
            await self._end(row)
            return _failed(emit, TURN_LIMIT.format(n=self.limits.max_turns), row.session_id)
        try:
            attached = await self._attach(place, row, settings)
        except SandboxError as exc:
            return _failed(emit, NO_SANDBOX.format(detail=exc.message), row.session_id if row else None)
        live = attached.session
        live.equip(equipment)
        if live.last_interrupted:
            emit(Resumed(requester))
        history = await self.store.turns(live.session_id)
        notes = [attached.preamble] if attached.preamble else []
        if attached.fresh and equipment is not None:
            task = " ".join([*(t.text for t in history[:1] if t.role == "user"), text])
            checkout = await check_out_repo(
                live.backend,
                live.sandbox,
                task,
                equipment.config,
                emit,
                max_bytes=self.limits.workdir_bytes // 2,
            )
            notes += [checkout] if checkout else []
        await self.store.record_turn(live.session_id, "user", text)
        prompt = "\n\n".join([*notes, f"The new message:\n{text}"]) if notes else text
        outcome = await live.turn(prompt, emit)
        if outcome.cli_failed and live.resumed_cli and not outcome.heard_back:
            outcome = await self._without_resume(live, history, text, emit)
        return await self._answer(live, outcome, attached.files_reset, requester, emit)

    async def _answer(
        self, live: SreSession, outcome: TurnOutcome, files_reset: bool, requester: str, emit: Emit
    ) -> SessionAnswer:
        if outcome.interrupted:
            note = INTERRUPTED.format(by=outcome.interrupted_by or requester)
            await self.store.record_turn(live.session_id, "assistant", f"{outcome.text}\n{note}".strip())
        elif outcome.text:
            await self.store.record_turn(live.session_id, "assistant", outcome.text)
        if outcome.error is not None:
            emit(Error(outcome.error))
        return SessionAnswer(
            outcome.text,
            files_reset,
            live.session_id,
            outcome.error,
            interrupted=outcome.interrupted,
            confined=live.confined,
        )

    async def _without_resume(
        self, live: SreSession, history: list[Turn], text: str, emit: Emit
    ) -> TurnOutcome:
        """The CLI could not continue its own session (its transcript is unreadable): start a new one
        in the same sandbox, told the recent turns."""
        log.warning("sandbox session: resume failed, starting the CLI afresh session=%s", live.session_id)
        live.forget_agent_session()
        await self.store.set_agent_session(live.session_id, None)
        recent = [f"[{t.role}] {t.text}" for t in history[-RESUME_LOST_TURNS:]]
        prompt = "\n".join([RESUME_LOST, *recent, "", "The new message:", text])
        return await live.turn(prompt, emit)

    async def _attach(
        self, place: SessionPlace, row: SandboxSession | None, settings: SandboxSettings
    ) -> _Attached:
        """The thread's live session: the one in memory, the stored sandbox if it still works, or a
        fresh sandbox (a new session, or an old one rehydrated)."""
        live = self._live.get(place.thread_key)
        if live is not None and (row is None or _moved_on(live, row)):
            await live.disconnect()
            self._live.pop(place.thread_key, None)
            live = None
        if live is not None:
            return _Attached(live, False, "")
        if row is None:
            return _Attached(await self._open(place, settings), False, "", fresh=True)
        if row.status == "active" and row.sandbox_ref:
            backend = self.backend_for(row.backend)
            sandbox = sandbox_from_row(row, self._spec(row, settings, row.backend))
            if await still_works(backend, sandbox):
                await backend.adopt(sandbox)
                return _Attached(self._adopt(row, backend, sandbox, row.agent_session_id), False, "")
            with contextlib.suppress(Exception):
                await self.destroy_row(row)
        return await self._rehydrate(row, settings)

    async def _open(self, place: SessionPlace, settings: SandboxSettings) -> SreSession:
        backend = self.backend_for(settings.backend)
        row = await self.store.open(place, backend=backend.name, sandbox_ref=None, ttl_s=settings.ttl_s)
        try:
            sandbox = await backend.create(self._spec(row, settings, backend.name))
        except BaseException:
            await self.store.mark_ended(row.session_id)
            raise
        try:
            await attach_first_sandbox(self.store, row.session_id, sandbox)
        except BaseException:
            await asyncio.shield(backend.destroy(sandbox))
            await self.store.mark_ended(row.session_id)
            raise
        log.info("sandbox session: opened session=%s backend=%s", row.session_id, backend.name)
        return self._adopt(row, backend, sandbox, None)

    async def _rehydrate(self, row: SandboxSession, settings: SandboxSettings) -> _Attached:
        backend = self.backend_for(settings.backend)
        sandbox = await backend.create(self._spec(row, settings, backend.name))
        try:
            await self.store.reattach(
                row.session_id,
                backend=backend.name,
                sandbox_ref=sandbox_ref(sandbox),
                details=stored_details(sandbox),
            )
            await self.store.set_agent_session(row.session_id, None)
        except BaseException:
            await asyncio.shield(backend.destroy(sandbox))
            raise
        log.info("sandbox session: rehydrated in a fresh sandbox session=%s", row.session_id)
        preamble = rehydration_preamble(await self.store.turns(row.session_id))
        return _Attached(self._adopt(row, backend, sandbox, None), True, preamble, fresh=True)

    def _adopt(
        self, row: SandboxSession, backend: SandboxBackend, sandbox: Sandbox, agent_session_id: str | None
    ) -> SreSession:
        live = SreSession(
            self.deps,
            session_id=row.session_id,
            thread_key=row.thread_key,
            team=(row.org_id, row.team_node_id),
            backend=backend,
            sandbox=sandbox,
            agent_session_id=agent_session_id,
        )
        self._live[row.thread_key] = live
        return live

    async def _end(self, row: SandboxSession) -> None:
        """End the session for good: its CLI stopped, its sandbox destroyed, the row ``ended``. A
        sandbox that cannot be destroyed now keeps the row active, so the next message (which meets
        the same limit) and the reaper both try again."""
        try:
            await self.destroy_row(row)
        except Exception as exc:
            log.warning(
                "sandbox session: could not destroy an ended session's sandbox session=%s error=%s",
                row.session_id,
                type(exc).__name__,
            )
            return
        await self.store.mark_ended(row.session_id)
        self._live.pop(row.thread_key, None)


def _moved_on(live: SreSession, row: SandboxSession) -> bool:
    """The inventory no longer points at the live session's sandbox (reaped, ended, replaced)."""
    return (
        live.session_id != row.session_id
        or row.status != "active"
        or row.sandbox_ref != sandbox_ref(live.sandbox)
    )


def _failed(emit: Emit, message: str, session_id: str | None) -> SessionAnswer:
    emit(Error(message))
    return SessionAnswer("", False, session_id, message)


def _summary(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= SUMMARY_CHARS else line[: SUMMARY_CHARS - 1] + "…"
