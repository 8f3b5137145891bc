"""The SRE agent's thread sessions end to end: the real bundled CLI in a bubblewrap sandbox, through the
real model proxy, against the Anthropic emulator, with the inventory on SQLite. A task streams typed
events and is transcribed; a follow-up, an interrupt and a restart all continue the same CLI session;
expiry rehydrates a fresh sandbox; limits and faults end in plain words with nothing left running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from incidentfox.agents.events import Error, Interrupted, ProgressEvent, Resumed, Thought, ToolEnd, ToolStart
from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.db.base import utcnow
from incidentfox.emulators.anthropic_api import AnthropicEmulator, RoutedScript, ScriptStep
from incidentfox.sandboxes.backends.base import SandboxBackend
from incidentfox.sandboxes.backends.local import BubblewrapBackend, remove_tree
from incidentfox.sandboxes.model_proxy import ModelProxy
from incidentfox.sandboxes.reaper import SandboxReaper
from incidentfox.sandboxes.session import SandboxSettings, SessionAnswer, SessionLimits, SreSessions
from incidentfox.sandboxes.session_thread import TOKEN_REFUSED
from incidentfox.sandboxes.session_tokens import SessionTokens
from incidentfox.sandboxes.store import SandboxStore, SessionPlace
from tests.conftest import make_settings
from tests.test_sandbox_agent_cli import _require_bubblewrap

PLACE = SessionPlace("acme", "checkout", "T1:C1:1700000000.000100", "C1", "1700000000.000100")
SETTINGS = SandboxSettings(backend="local", ttl_s=3600)
ASK_TIMEOUT_S = 120.0


def _exists(directory: str) -> bool:
    return Path(directory).is_dir()


@dataclass
class World:
    emu: AnthropicEmulator
    runtime: Runtime
    store: SandboxStore
    tmp_path: Path
    tokens: SessionTokens = field(default_factory=SessionTokens)
    proxies: list[ModelProxy] = field(default_factory=list)
    opened: list[SreSessions] = field(default_factory=list)
    events: list[ProgressEvent] = field(default_factory=list)

    async def sessions(self, limits: SessionLimits | None = None, *, restart: bool = False) -> SreSessions:
        """An ``SreSessions`` as a process would build it; ``restart``: with a new proxy, new tokens
        and a new backend object, as after an IncidentFox restart."""
        if restart or not self.proxies:
            self.tokens = SessionTokens()
            proxy = ModelProxy(self.tokens, api_key=self.emu.api_key, upstream=self.emu.base_url)
            await proxy.start(unix_path=self.tmp_path / f"proxy-{len(self.proxies)}.sock")
            self.proxies.append(proxy)
        backend = BubblewrapBackend(self.tmp_path / "sandboxes")

        def backend_for(name: str) -> SandboxBackend:
            assert name == "local"
            return backend

        sessions = SreSessions(
            self.store, backend_for, self.proxies[-1], self.tokens, self.tmp_path / "run", limits
        )
        self.opened.append(sessions)
        return sessions

    async def ask(self, sessions: SreSessions, text: str, place: SessionPlace = PLACE) -> SessionAnswer:
        async with asyncio.timeout(ASK_TIMEOUT_S):
            return await sessions.ask(
                place, text, requester="U1", sandbox_settings=SETTINGS, emit=self.events.append
            )

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    _require_bubblewrap()
    runtime = await build_runtime(
        make_settings(f"sqlite+aiosqlite:///{tmp_path}/incidentfox.db", tmp_path), migrate=True
    )
    try:
        async with AnthropicEmulator() as emu:
            w = World(emu, runtime, SandboxStore(runtime.sessions), tmp_path)
            try:
                yield w
            finally:
                for sessions in w.opened:
                    await sessions.shutdown()
                launchers = tmp_path / "run" / "launchers"
                left = sorted(p.name for p in launchers.iterdir()) if launchers.exists() else []
                assert left == [], "a stopped CLI's launcher (it holds the session token) is removed"
                reaper = SandboxReaper(w.store, w.opened[0].destroy_row) if w.opened else None
                if reaper is not None:
                    await reaper.reap_once(utcnow() + timedelta(days=1))
                for proxy in w.proxies:
                    await proxy.stop()
    finally:
        await runtime.close()


async def test_a_task_streams_its_tool_use_records_turns_and_a_follow_up_continues_the_session(
    world: World,
) -> None:
    command = {"command": "echo disk-ok && df -h /work | tail -1", "description": "check the disk"}
    world.emu.responder = (
        RoutedScript()
        .when_tool_result([ScriptStep.text("The disk is fine.")])
        .when_user_says("check the disk", [ScriptStep.tool_use("Bash", command, text="Checking the disk.")])
        .when_user_says("and the memory?", [ScriptStep.text("Memory is fine too.")])
    )
    sessions = await world.sessions()

    answer = await world.ask(sessions, "check the disk please")

    assert (answer.text, answer.error, answer.files_reset, answer.confined) == (
        "The disk is fine.",
        None,
        False,
        True,
    )
    thoughts = [e for e in world.events if isinstance(e, Thought)]
    assert thoughts and thoughts[0].text == "Checking the disk." and thoughts[0].agent == "sre"
    [start] = [e for e in world.events if isinstance(e, ToolStart)]
    [end] = [e for e in world.events if isinstance(e, ToolEnd)]
    assert (start.tool, start.args["command"], start.agent) == ("Bash", command["command"], "sre")
    assert (end.call_id, end.status, end.summary) == (start.call_id, "ok", "disk-ok")
    assert world.kinds()[0] == "started"
    turns = await world.store.turns(answer.session_id or "")
    assert [(t.role, t.text) for t in turns] == [
        ("user", "check the disk please"),
        ("tool", f"Bash: {command['command']}"),
        ("assistant", "The disk is fine."),
    ]
    row = await world.store.get(answer.session_id or "")
    assert row is not None and row.agent_session_id and row.turns == 1
    client = sessions.session(PLACE.thread_key)
    assert client is not None and client.client is not None

    follow_up = await world.ask(sessions, "and the memory?")

    assert (follow_up.text, follow_up.session_id) == ("Memory is fine too.", answer.session_id)
    last = world.emu.requests[-1]
    assert "check the disk please" in last.text() and "disk-ok" in last.text(), "same CLI conversation"
    assert sessions.session(PLACE.thread_key) is client, "the live client was reused"


async def test_interrupt_mid_stream_keeps_the_session_and_the_next_message_resumes_it(world: World) -> None:
    world.emu.responder = (
        RoutedScript()
        .when_user_says("tell a long story", [ScriptStep.text("word " * 400, pace=0.2)])
        .when_user_says("go on", [ScriptStep.text("Continuing the story.")])
    )
    sessions = await world.sessions(SessionLimits(max_concurrent_per_team=1))
    running = asyncio.create_task(world.ask(sessions, "tell a long story"))
    await world.emu.wait_streaming(where=lambda r: "tell a long story" in r.last_user_text)

    other_thread = SessionPlace("acme", "checkout", "T1:C1:2", "C1", "2")
    busy = await world.ask(sessions, "another task", other_thread)
    assert busy.error is not None and "already has 1 SRE agent sessions working" in busy.error

    assert await sessions.interrupt(PLACE.thread_key, "U2") is True
    interrupted = await running
    assert interrupted.interrupted and interrupted.error is None
    assert any(isinstance(e, Interrupted) and e.by == "U2" for e in world.events)
    assert await sessions.interrupt(PLACE.thread_key, "U2") is False, "nothing runs: a no-op"
    row = await world.store.get(interrupted.session_id or "")
    assert row is not None and row.status == "active" and row.sandbox_ref

    resumed = await world.ask(sessions, "go on")

    assert (resumed.text, resumed.session_id) == ("Continuing the story.", interrupted.session_id)
    assert any(isinstance(e, Resumed) and e.by == "U1" for e in world.events)
    assert "tell a long story" in world.emu.requests[-1].text(), "the same CLI session continued"
    turns = await world.store.turns(resumed.session_id or "")
    assert "interrupted by U2" in turns[1].text


async def test_after_expiry_a_fresh_sandbox_is_rehydrated_with_the_earlier_task(world: World) -> None:
    world.emu.responder = (
        RoutedScript()
        .when_user_says("where is the report?", [ScriptStep.text("I will write it again.")])
        .when_user_says("write the incident report", [ScriptStep.text("Report written to report.md.")])
    )
    sessions = await world.sessions()
    first = await world.ask(sessions, "write the incident report")
    row = await world.store.get(first.session_id or "")
    assert row is not None and row.sandbox_ref
    old_workdir = row.sandbox_ref
    assert _exists(old_workdir)

    reaper = SandboxReaper(world.store, sessions.destroy_row)
    assert await reaper.reap_once(utcnow() + timedelta(hours=2)) == 1
    assert not _exists(old_workdir) and sessions.session(PLACE.thread_key) is None

    again = await world.ask(sessions, "where is the report?")

    assert (again.text, again.files_reset, again.session_id) == (
        "I will write it again.",
        True,
        first.session_id,
    )
    request = await world.emu.wait_for_request(where=lambda r: "where is the report?" in r.last_user_text)
    assert "fresh sandbox" in request.last_user_text and "write the incident report" in request.last_user_text
    fresh = await world.store.get(first.session_id or "")
    assert fresh is not None and (fresh.status, fresh.files_reset) == ("active", 1)
    assert fresh.sandbox_ref and fresh.sandbox_ref != row.sandbox_ref and _exists(fresh.sandbox_ref)


async def test_after_a_restart_the_thread_continues_in_the_same_sandbox_and_cli_session(world: World) -> None:
    world.emu.responder = (
        RoutedScript()
        .when_user_says("remember the number 4242", [ScriptStep.text("Noted.")])
        .when_user_says("which number?", [ScriptStep.text("4242.")])
    )
    before = await world.sessions()
    first = await world.ask(before, "remember the number 4242")
    await before.shutdown()

    after = await world.sessions(restart=True)
    answer = await world.ask(after, "which number?")

    assert (answer.text, answer.files_reset, answer.session_id, answer.error) == (
        "4242.",
        False,
        first.session_id,
        None,
    )
    assert "remember the number 4242" in world.emu.requests[-1].text(), "the CLI resumed its session"
    assert world.proxies[-1].requests_by_session == {first.session_id: 1}, "through the new proxy"


async def test_the_turn_limit_ends_the_session_and_removes_its_sandbox(world: World) -> None:
    world.emu.responder = RoutedScript().when_user_says("one", [ScriptStep.text("One.")])
    sessions = await world.sessions(SessionLimits(max_turns=1))
    first = await world.ask(sessions, "one")
    row = await world.store.get(first.session_id or "")
    assert row is not None and row.sandbox_ref

    over = await world.ask(sessions, "two")

    assert over.error is not None and "limit of 1 messages" in over.error and over.text == ""
    assert isinstance(world.events[-1], Error)
    ended = await world.store.get(first.session_id or "")
    assert ended is not None and ended.status == "ended"
    assert not _exists(row.sandbox_ref) and sessions.session(PLACE.thread_key) is None
    assert len(world.emu.requests) == 1, "the model was not asked again"


async def test_a_refused_token_is_a_plain_error_and_the_next_message_recovers(world: World) -> None:
    world.emu.responder = (
        RoutedScript()
        .when_user_says("first", [ScriptStep.text("First.")])
        .when_user_says("third", [ScriptStep.text("Third.")])
    )
    sessions = await world.sessions()
    first = await world.ask(sessions, "first")
    world.tokens.revoke(first.session_id or "")

    refused = await world.ask(sessions, "second")

    assert (refused.error, refused.text) == (TOKEN_REFUSED, "")
    live = sessions.session(PLACE.thread_key)
    assert live is not None and live.client is None, "the refused CLI was stopped"
    assert len(world.emu.requests) == 1, "nothing reached the model without a live token"

    recovered = await world.ask(sessions, "third")
    assert (recovered.text, recovered.error) == ("Third.", None)


async def test_a_sandbox_that_cannot_be_created_is_a_plain_error_and_no_session_is_left(
    world: World,
) -> None:
    sessions = await world.sessions()
    broken = BubblewrapBackend(world.tmp_path / "sandboxes", bwrap="/nonexistent/bwrap")
    sessions.backend_for = lambda name: broken

    answer = await world.ask(sessions, "anything")

    assert answer.error is not None and "bubblewrap is not installed" in answer.error
    assert await world.store.for_thread(PLACE.thread_key) is None, "the half-opened session ended"
    assert world.emu.requests == []


async def test_a_hung_turn_is_stopped_at_the_wall_time_and_the_session_survives(world: World) -> None:
    world.emu.responder = RoutedScript().when_user_says(
        "hang", [ScriptStep.delay(10), ScriptStep.text("Too late.")]
    )
    sessions = await world.sessions(SessionLimits(wall_time_s=3))

    answer = await world.ask(sessions, "hang forever")

    assert answer.error is not None and "more than 3 seconds" in answer.error
    live = sessions.session(PLACE.thread_key)
    assert live is not None and live.client is None and not live.running, "the CLI was stopped"
    row = await world.store.get(answer.session_id or "")
    assert row is not None and row.status == "active", "the session and its files are kept"


async def test_a_restart_that_lost_the_sandbox_rehydrates_a_fresh_one(world: World) -> None:
    world.emu.responder = (
        RoutedScript()
        .when_user_says("still there?", [ScriptStep.text("Starting over.")])
        .when_user_says("clone the repo", [ScriptStep.text("Cloned.")])
    )
    before = await world.sessions()
    first = await world.ask(before, "clone the repo")
    await before.shutdown()
    row = await world.store.get(first.session_id or "")
    assert row is not None and row.sandbox_ref
    remove_tree(Path(row.sandbox_details["state_dir"]))

    after = await world.sessions(restart=True)
    answer = await world.ask(after, "still there?")

    assert (answer.text, answer.files_reset, answer.session_id) == ("Starting over.", True, first.session_id)
    assert "clone the repo" in world.emu.requests[-1].last_user_text
