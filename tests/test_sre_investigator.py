"""The SRE agent behind the worker's Investigator interface, with a stand-in for ``SreSessions``:
settings from the team config, answers and errors in plain words, the dispatcher's choice, and a
cancelled run interrupting the agent before it stops."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Interrupted, ProgressEvent
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.blocks.command_replies import SRE_AGENT_OFF
from incidentfox.sandboxes.investigator import (
    FILES_RESET,
    UNCONFINED,
    DispatchingInvestigator,
    SreInvestigator,
    sandbox_settings,
)
from incidentfox.sandboxes.session import Equipment, SandboxSettings, SessionAnswer, SreSessions
from incidentfox.sandboxes.store import SessionPlace


class FakeSessions:
    def __init__(self, answer: SessionAnswer | None = None) -> None:
        self.answer = answer
        self.asked: list[tuple[SessionPlace, str, SandboxSettings]] = []
        self.interrupts: list[tuple[str, str]] = []
        self.stop = asyncio.Event()
        self.started = asyncio.Event()

    async def ask(
        self,
        place: SessionPlace,
        text: str,
        *,
        requester: str,
        sandbox_settings: SandboxSettings,
        emit: Any,
        equipment: Equipment | None = None,
    ) -> SessionAnswer:
        assert equipment is not None and equipment.share is None, "the team's tools; no Slack to share to"
        self.asked.append((place, text, sandbox_settings))
        self.started.set()
        if self.answer is not None:
            return self.answer
        await self.stop.wait()
        emit(Interrupted(by="U2"))
        return SessionAnswer("half an answer", False, "sbx_1", interrupted=True)

    async def interrupt(self, thread_key: str, by: str) -> bool:
        self.interrupts.append((thread_key, by))
        self.stop.set()
        return True


class Planner:
    async def investigate(
        self, context: InvestigationContext, question: str, history: list[dict[str, Any]]
    ) -> InvestigationOutcome:
        return InvestigationOutcome(rca=None, answer="planner")


def _context(
    events: list[ProgressEvent], *, kind: str = "debug", by: str | None = None
) -> InvestigationContext:
    return InvestigationContext(
        run_id="run_1",
        org_id="acme",
        team_node_id="checkout",
        config={"sandbox": {"backend": "unsafe-local", "ttl_s": 600}},
        emit=events.append,
        kind=kind,
        thread_key="slack:T1:C1:1.0",
        channel_id="C1",
        thread_ts="1.0",
        requester="U1",
        interrupted_by=lambda: by,
    )


def test_sandbox_settings_come_from_the_team_config_with_defaults() -> None:
    assert sandbox_settings({}) == SandboxSettings("local", 3600, None)
    config = {"sandbox": {"backend": "kubernetes", "ttl_s": 120, "runtime_class": "gvisor"}}
    assert sandbox_settings(config) == SandboxSettings("kubernetes", 120, "gvisor")
    for bad in ("an hour", 5, True, 3600.5):
        with pytest.raises(ValueError, match=r"sandbox\.ttl_s"):
            sandbox_settings({"sandbox": {"ttl_s": bad}})


async def test_a_bad_sandbox_ttl_in_config_ends_the_run_in_plain_words_without_asking_the_agent() -> None:
    fake = FakeSessions(SessionAnswer("never", False, "sbx_1"))
    events: list[ProgressEvent] = []
    context = _context(events)
    context.config = {"sandbox": {"ttl_s": "an hour"}}
    outcome = await SreInvestigator(cast(SreSessions, fake)).investigate(context, "why?", [])
    assert outcome.error is not None and "sandbox.ttl_s" in outcome.error
    assert fake.asked == [] and [e.kind for e in events] == ["started", "error"]


async def test_an_answer_says_it_is_unconfined_and_its_files_were_reset() -> None:
    fake = FakeSessions(SessionAnswer("It is the cache.", True, "sbx_1", confined=False))
    events: list[ProgressEvent] = []

    outcome = await SreInvestigator(cast(SreSessions, fake)).investigate(_context(events), "why?", [])

    assert outcome.rca is None and outcome.error is None and outcome.answer is not None
    assert outcome.answer == f"{UNCONFINED}\n\n{FILES_RESET}\n\nIt is the cache."
    [(place, text, settings)] = fake.asked
    assert (place.thread_key, place.channel_id, place.thread_ts, text) == (
        "slack:T1:C1:1.0",
        "C1",
        "1.0",
        "why?",
    )
    assert settings == SandboxSettings("unsafe-local", 600, None)
    assert outcome.history[-1] == {"role": "assistant", "content": "It is the cache."}


async def test_an_error_is_the_outcomes_error_in_plain_words() -> None:
    fake = FakeSessions(SessionAnswer("", False, None, "The SRE agent could not get a sandbox: no bwrap"))

    outcome = await SreInvestigator(cast(SreSessions, fake)).investigate(_context([]), "why?", [])

    assert (outcome.rca, outcome.answer) == (None, None)
    assert outcome.error == "The SRE agent could not get a sandbox: no bwrap"


async def test_a_cancelled_run_interrupts_the_agent_first_and_shows_one_interrupt() -> None:
    fake = FakeSessions()
    events: list[ProgressEvent] = []
    running = asyncio.create_task(
        SreInvestigator(cast(SreSessions, fake)).investigate(_context(events, by="U2"), "go", [])
    )
    await fake.started.wait()

    running.cancel()
    try:
        await running
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation reaches the worker")

    assert fake.interrupts == [("slack:T1:C1:1.0", "U2")]
    assert not any(isinstance(e, Interrupted) for e in events), "the worker shows the interrupt itself"


async def test_the_dispatcher_sends_debug_runs_to_the_agent_and_the_rest_to_the_planner() -> None:
    fake = FakeSessions(SessionAnswer("Done.", False, "sbx_1"))
    sre = SreInvestigator(cast(SreSessions, fake))

    on = DispatchingInvestigator(Planner(), sre, None)
    assert (await on.investigate(_context([]), "q", [])).answer == "Done."
    assert (await on.investigate(_context([], kind="mention"), "q", [])).answer == "planner"

    off = DispatchingInvestigator(Planner(), None, None)
    assert (await off.investigate(_context([]), "q", [])).error == SRE_AGENT_OFF
    assert (await off.investigate(_context([], kind="command"), "q", [])).answer == "planner"
