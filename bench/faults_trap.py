"""Where a fault trial's child is killed: the trap, the proxies and the model that hold a step.

A kill trial arms the ``Trap`` for one step and a batch of runs (one run per thread). Each request of
a batch run that reaches the step is *held* where it arrives, and once every run of the batch is held
the trap SIGKILLs the child (the caller kills anyway after a timeout, see ``bench/faults_kill.py``):

- Slack and Kubernetes calls go through a ``TapProxy``: a call caught *before* is held and never
  forwarded; a call caught *after* is forwarded, and its answer is held instead;
- model calls reach ``FaultModel``, the OpenAI emulator's responder: a caught call is delayed past
  the kill.

With a batch of one, the single run's request kills the child the moment it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from bench.faults_processes import HOLD_MAX_S, TRAP_TIMEOUT_S
from bench.faults_report import is_final_text
from bench.worker import RUN_TOKEN, SUBAGENT_TOOL, ScriptedModel
from incidentfox.emulators.openai_api import RecordedRequest, ScriptStep

HOLD_LIMIT_S = TRAP_TIMEOUT_S + HOLD_MAX_S + 30.0
"""The longest a held call is held; the kill always comes sooner."""

ModelVerdict = Literal["pass", "hold", "kill"]


@dataclass(frozen=True, slots=True)
class Catch:
    """A request at the trap's step: the run's thread, and whether to hold it before forwarding it or
    to forward it and hold its answer."""

    thread_ts: str
    after: bool = False


@dataclass(slots=True)
class Hold:
    detail: str
    alive: Callable[[], bool]
    """Whether the child still waits for this call (its connection is open)."""
    at: float


def _always() -> bool:
    return True


class Trap:
    """Armed for one step of a batch of runs; SIGKILLs the child once every run of the batch is held."""

    def __init__(self) -> None:
        self.step: str | None = None
        self.pid = 0
        self.runs: dict[int, str] = {}
        """The batch: ``[bench-run-N]`` number → thread ts."""
        self.model_step = ""
        self.tool_order: list[str] = []
        """mid_tool: the batch's threads whose sub-agent asked for ``pod_logs``, in that order."""
        self.holds: dict[str, Hold] = {}
        self.held_at_kill: dict[str, str] = {}
        """The threads held at the step when the child was killed (still waiting), with what was held."""
        self.fired = asyncio.Event()
        self.released = asyncio.Event()
        self.message_thread: Callable[[str, str], str | None] = lambda channel, ts: None
        """The thread of a Slack message (channel, ts), for the final ``chat.update``."""

    def arm(self, step: str, pid: int, runs: dict[int, str], model_step: str = "") -> None:
        self.step, self.pid, self.runs, self.model_step = step, pid, dict(runs), model_step
        self.tool_order = []
        self.holds = {}
        self.held_at_kill = {}
        self.fired.clear()
        self.released.clear()

    def disarm(self) -> None:
        """Stop catching; a call still held is let go (only when the kill did not happen)."""
        self.step = None
        self.released.set()

    @property
    def first_held_at(self) -> float | None:
        return min((h.at for h in self.holds.values()), default=None)

    def fire(self) -> None:
        self.held_at_kill = {t: h.detail for t, h in self.holds.items() if h.alive()}
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.step = None
        self.fired.set()
        self.released.set()

    def catch(self, thread_ts: str, detail: str, alive: Callable[[], bool] = _always) -> bool:
        """Hold this run's call (a retry of a held call replaces it); the last run of the batch fires."""
        if self.step is None or thread_ts not in self.runs.values():
            return False
        known = self.holds.get(thread_ts)
        self.holds[thread_ts] = Hold(detail, alive, known.at if known else time.monotonic())
        if len(self.holds) >= len(self.runs):
            self.fire()
        return True

    async def hold(self, thread_ts: str, detail: str, alive: Callable[[], bool]) -> bool:
        """Catch, then wait until the kill (or the trap is disarmed): whether the child was killed."""
        if not self.catch(thread_ts, detail, alive):
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.released.wait(), HOLD_LIMIT_S)
        return self.fired.is_set()

    def _thread_of(self, run: int | None) -> str | None:
        if run is not None and run in self.runs:
            return self.runs[run]
        if run is None and len(self.runs) == 1:
            return next(iter(self.runs.values()))
        return None

    def slack(self, method: str, args: dict[str, Any]) -> Catch | None:
        text = str(args.get("text") or "")
        threads = self.runs.values()
        if self.step in ("before_first_post", "after_first_post"):
            thread = str(args.get("thread_ts") or "")
            if method == "chat.postMessage" and thread in threads:
                return Catch(thread, after=self.step == "after_first_post")
        elif self.step in ("before_final_edit", "after_final_edit") and (
            method == "chat.update" and is_final_text(text)
        ):
            edited = self.message_thread(str(args.get("channel") or ""), str(args.get("ts") or ""))
            if edited in threads or (edited is None and len(self.runs) == 1):
                return Catch(edited or next(iter(threads)), after=self.step == "after_final_edit")
        return None

    def kubernetes(self, method: str, path: str) -> Catch | None:
        """The sub-agent's ``pod_logs`` (no ``container=``; the analyzers name the container). Its
        requests carry no run token: each is given to the oldest asker not yet held."""
        if self.step == "mid_tool" and "/log" in path and "container=" not in path:
            waiting = [t for t in self.tool_order if t not in self.holds]
            if waiting:
                return Catch(waiting[0])
        return None

    def model(self, step_name: str, run: int | None) -> ModelVerdict:
        thread = self._thread_of(run)
        if thread is None:
            return "pass"
        if step_name == SUBAGENT_TOOL and self.step == "mid_tool" and thread not in self.tool_order:
            self.tool_order.append(thread)
        if self.step == "mid_model" and step_name == self.model_step:
            self.catch(thread, f"model call {step_name} arrived")
            return "kill" if self.fired.is_set() else "hold"
        return "pass"


class FaultModel(ScriptedModel):
    """``bench.worker``'s scripted four-call conversation, with the trap, optional delays and a hold.

    ``delay`` delays every answer; ``hold_step`` delays only that call, once per request, by
    ``hold_s`` and sets ``holding`` (the Postgres restart happens meanwhile). A call the trap holds is
    delayed by ``HOLD_LIMIT_S``, and its child is dead before that ends."""

    def __init__(self, trap: Trap) -> None:
        super().__init__(delay=0.0)
        self.trap = trap
        self.hold_step = ""
        self.hold_s = 0.0
        self.holding = asyncio.Event()
        self._waited: set[int] = set()
        self._trapped: set[int] = set()

    def __call__(self, request: RecordedRequest) -> ScriptStep | None:
        step_name, step = self._answer(request)
        if request.index in self._trapped:
            self._trapped.discard(request.index)
            return ScriptStep.http_error(503, "the client was killed")
        if request.index not in self._waited:
            match = RUN_TOKEN.search(request.text())
            verdict = self.trap.model(step_name, int(match.group(1)) if match else None)
            if verdict == "kill":
                return ScriptStep.http_error(503, "the client was killed")
            if verdict == "hold":
                self._trapped.add(request.index)
                return ScriptStep.delay(HOLD_LIMIT_S)
        wait = self.hold_s if step_name == self.hold_step else self.delay
        if wait > 0 and request.index not in self._waited:
            self._waited.add(request.index)
            if step_name == self.hold_step:
                self.holding.set()
            return ScriptStep.delay(wait)
        self._waited.discard(request.index)
        self.served[step_name] += 1
        return step


class TapProxy:
    """Forwards every request to ``target`` unchanged, asking ``decide`` first whether the request is at
    the trap's step: then it is held and dropped, or forwarded and its answer held, until the kill."""

    def __init__(
        self, target: str, decide: Callable[[str, str, bytes, str], Catch | None], trap: Trap
    ) -> None:
        self._target = target.rstrip("/")
        self._decide = decide
        self._trap = trap
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> TapProxy:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application(client_max_size=16 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        body = await request.read()
        catch = self._decide(request.method, request.path_qs, body, request.content_type)

        def alive() -> bool:
            transport = request.transport
            return transport is not None and not transport.is_closing()

        if catch is not None and not catch.after:
            detail = f"{request.method} {request.path} arrived (not forwarded)"
            if await self._trap.hold(catch.thread_ts, detail, alive):
                return web.Response(status=503)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with self._http.request(
            request.method, self._target + request.path_qs, data=body, headers=headers
        ) as answer:
            payload = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "retry-after")}
            status = answer.status
        if catch is not None and catch.after:
            detail = f"{request.method} {request.path} applied, answer not delivered"
            await self._trap.hold(catch.thread_ts, detail, alive)
        return web.Response(status=status, body=payload, headers=kept)


def slack_args(body: bytes, content_type: str) -> dict[str, Any]:
    if not body:
        return {}
    try:
        if "json" in content_type:
            parsed = json.loads(body)
            return parsed if isinstance(parsed, dict) else {}
        return dict(parse_qsl(body.decode()))
    except (ValueError, UnicodeDecodeError):
        return {}
