"""The worker: takes queued runs, shows live progress in the thread, and ends with the RCA.

worker: queue.get -> post "Investigating..." in thread -> run the investigator (streaming events)
        -> coalesced chat.update -> final RCA blocks + buttons -> run row updated

Every run ends in a final state, whatever happens: ``succeeded``/``failed`` with the RCA or a
plain-words error in the message, ``interrupted`` with a Resume button, or (on shutdown only) left
``running`` for the next start to pick up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator

from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.approvals.gate import ApprovalsUnavailable, SlackApprovalGate
from incidentfox.agents.approvals.service import ApprovalService
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Error, Interrupted, ProgressEvent
from incidentfox.agents.investigator import InvestigationOutcome, Investigator
from incidentfox.agents.live_message import INTERNAL_ERROR, LiveMessage, open_live_message
from incidentfox.agents.queue import QueuedRun, RunQueue
from incidentfox.agents.runs.models import Run
from incidentfox.agents.runs.service import RunFinish, RunStore
from incidentfox.config.service import ConfigService

log = logging.getLogger(__name__)


async def close_clients(context: InvestigationContext) -> None:
    """Release the per-run toolset clients (connection pools) once the investigation is over."""
    for name, client in context.clients.items():
        close = getattr(client, "close", None)
        if callable(close):
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.warning("closing the %s client failed run_id=%s", name, context.run_id)
    context.clients.clear()


class ThreadLocks:
    """One lock per Slack thread, so a follow-up waits for the run before it (one run per thread)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class Worker:
    """Pulls runs from the queue and investigates up to ``concurrency`` at once.

    A run first takes its thread's turn, then a concurrency slot, so follow-ups waiting behind a
    long run in one thread do not hold slots other teams need.
    """

    def __init__(
        self,
        *,
        queue: RunQueue,
        runs: RunStore,
        config: ConfigService,
        slack: AsyncWebClient,
        poster: AsyncWebClient | None = None,
        investigator: Investigator,
        concurrency: int = 500,
        update_interval: float = 1.0,
        approvals: ApprovalService | None = None,
    ) -> None:
        self._queue = queue
        self._runs = runs
        self._config = config
        self._slack = slack
        self._poster = poster or slack
        self._investigator = investigator
        self._slots = asyncio.Semaphore(concurrency)
        self._update_interval = update_interval
        self._approvals = approvals
        self._threads = ThreadLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_run: dict[str, asyncio.Task[None]] = {}
        self._live: dict[str, LiveMessage] = {}
        self._interrupted_by: dict[str, str] = {}

    async def run_forever(self) -> None:
        while True:
            item = await self._queue.get()
            if item.run_id in self._by_run:
                continue
            task = asyncio.create_task(self._guarded(item))
            self._tasks.add(task)
            self._by_run[item.run_id] = task
            task.add_done_callback(functools.partial(self._forget, item.run_id))

    def _forget(self, run_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._by_run.pop(run_id, None)
        self._interrupted_by.pop(run_id, None)

    def interrupt(self, run_id: str, by: str) -> bool:
        """Stop a queued or running run of this worker; ``False`` if it is not here (finished, elsewhere).

        A second press while the first is being handled changes nothing.
        """
        task = self._by_run.get(run_id)
        if task is None or task.done():
            return False
        if run_id not in self._interrupted_by:
            self._interrupted_by[run_id] = by
            task.cancel()
        return True

    def live_events(self, run_id: str) -> list[ProgressEvent] | None:
        """The events so far of a run this worker is investigating right now."""
        live = self._live.get(run_id)
        return list(live.events) if live else None

    async def drain(self) -> None:
        """Wait for the runs already started."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def shutdown(self, grace_s: float = 10.0) -> None:
        """Give running investigations ``grace_s`` to finish, then cancel them. A cancelled run keeps its
        ``running`` status, so the next start queues it again."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _guarded(self, item: QueuedRun) -> None:
        try:
            async with self._threads.hold(item.thread_key), self._slots:
                await self.process(item.run_id)
        except asyncio.CancelledError:
            by = self._interrupted_by.get(item.run_id)
            if by is None:
                raise
            _uncancel()
            await self._runs.finish(
                item.run_id, RunFinish(status="interrupted", events=[], error=f"interrupted by {by}")
            )
        except Exception:
            log.exception("run could not be processed run_id=%s", item.run_id)

    async def process(self, run_id: str) -> None:
        """Investigate one run; the caller holds its thread's turn and a slot."""
        run = await self._runs.get(run_id)
        if run is None or run.status not in ("queued", "running"):
            return
        started = time.perf_counter()
        title = run.question.strip() or "Investigation"
        live = await open_live_message(
            run, title, poster=self._poster, editor=self._slack, interval=self._update_interval
        )
        if live is None:
            await self._runs.finish(
                run_id, RunFinish(status="failed", events=[], error="could not post to Slack")
            )
            return
        first_message_s = time.perf_counter() - started
        self._live[run_id] = live
        try:
            await self._runs.mark_running(run_id, message_ts=live.ts)
            outcome = await self._investigate(run, live)
            timings = {
                "first_message_s": round(first_message_s, 4),
                "total_s": round(time.perf_counter() - started, 3),
            }
            await self._finish(run, live, outcome, timings)
        except asyncio.CancelledError:
            by = self._interrupted_by.get(run_id)
            if by is None:
                await live.abandon()
                raise
            _uncancel()
            live.emit(Interrupted(by=by))
            await live.finish_interrupted()
            await self._runs.finish(
                run_id, RunFinish(status="interrupted", events=live.events, error=f"interrupted by {by}")
            )
            log.info("run interrupted run_id=%s by=%s", run_id, by)
        except Exception:
            log.exception("run failed inside the worker run_id=%s team=%s", run_id, run.team_node_id)
            live.emit(Error(message=INTERNAL_ERROR))
            failed = InvestigationOutcome(rca=None, error=INTERNAL_ERROR)
            await self._finish(run, live, failed, {"total_s": round(time.perf_counter() - started, 3)})
        finally:
            self._live.pop(run_id, None)

    async def _investigate(self, run: Run, live: LiveMessage) -> InvestigationOutcome:
        config = await self._config.effective_config(run.org_id, run.team_node_id)
        context = InvestigationContext(
            run_id=run.run_id,
            org_id=run.org_id,
            team_node_id=run.team_node_id,
            config=config,
            emit=live.emit,
            approvals=SlackApprovalGate.for_run(self._approvals, run, config, live.emit)
            if self._approvals is not None
            else ApprovalsUnavailable(),
        )
        history = await self._runs.history(run.thread_key, org_id=run.org_id, team_node_id=run.team_node_id)
        try:
            return await self._investigator.investigate(context, run.question, history)
        except Exception:
            log.exception("investigator failed run_id=%s team=%s", run.run_id, run.team_node_id)
            context.emit(Error(message=INTERNAL_ERROR))
            return InvestigationOutcome(rca=None, error=INTERNAL_ERROR, history=history)
        finally:
            await close_clients(context)

    async def _finish(
        self, run: Run, live: LiveMessage, outcome: InvestigationOutcome, timings: dict[str, float]
    ) -> None:
        await live.finish(outcome)
        status = "succeeded" if outcome.rca else "failed"
        await self._runs.finish(
            run.run_id,
            RunFinish(
                status=status,
                events=live.events,
                rca=outcome.rca,
                error=outcome.error,
                history=outcome.history or None,
                timings=timings,
            ),
        )
        log.info(
            "run finished run_id=%s team=%s status=%s timings=%s",
            run.run_id,
            run.team_node_id,
            status,
            timings,
        )


def _uncancel() -> None:
    """Consume the cancellation we turned into an interrupt, so the finishing awaits can run."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
