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
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.analyzers.first_finding import load_client_modules
from incidentfox.agents.approvals.gate import ApprovalsUnavailable, SlackApprovalGate
from incidentfox.agents.approvals.service import ApprovalService
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Error, Interrupted, ProgressEvent
from incidentfox.agents.incidents.threads import IncidentThreads, RootNotPosted
from incidentfox.agents.investigator import InvestigationOutcome, Investigator
from incidentfox.agents.live_message import (
    INTERNAL_ERROR,
    LiveMessage,
    SlackUnreachable,
    open_live_message,
)
from incidentfox.agents.pending_finals import final_message
from incidentfox.agents.progress_journal import ProgressJournal
from incidentfox.agents.queue import QueuedRun, RunQueue
from incidentfox.agents.resilience import Resilience
from incidentfox.agents.runs.claims import Claim, RunClaims
from incidentfox.agents.runs.models import Run
from incidentfox.agents.runs.recovery import MAX_ATTEMPTS, TOO_MANY_ATTEMPTS, end_run
from incidentfox.agents.runs.service import RunFinish, RunStore
from incidentfox.agents.step_retry import StepFailed, retried
from incidentfox.agents.team_slots import LocalTeamSlots, TeamSlots, team_run_limit
from incidentfox.agents.toolsets.function_tools import close_clients
from incidentfox.agents.worker_upkeep import QueueRecovery, ThreadLocks, renew_leases_forever
from incidentfox.blocks.rca import error_text, render_error
from incidentfox.config.service import ConfigService
from incidentfox.db.base import utcnow
from incidentfox.observability.metrics import PROCESS_METRICS, tenancy_of

log = logging.getLogger(__name__)
T = TypeVar("T")
FINAL_TAKEOVER_MARGIN_S = 30.0
"""How long after the worker's own final-edit window the pending-finals task may deliver a final."""

SLACK_UNREACHABLE = (
    "IncidentFox could not reach Slack when this question came in, so it did not investigate it. "
    "Ask again to start over."
)
CONFIG_UNAVAILABLE = (
    "Something went wrong inside IncidentFox: it could not load this team's configuration, so it did "
    "not investigate. Try again in a few minutes."
)
QUEUE_RETRY_S = 2.0
"""How long a worker waits before asking an unavailable run queue again."""

DATABASE_UNAVAILABLE = (
    "Something went wrong inside IncidentFox: its database did not answer, so it stopped investigating. "
    "Try again in a few minutes."
)


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
        resilience: Resilience | None = None,
        incident_threads: IncidentThreads | None = None,
        claims: RunClaims | None = None,
        recovery: QueueRecovery | None = None,
        team_slots: TeamSlots | None = None,
    ) -> None:
        """``claims``: with several workers on one queue, a run is investigated by the one that claims
        it (``runs.claims``); without, this worker is the only one. ``recovery`` queues again the runs
        the queue lost; ``team_slots`` hold each team's ``limits.max_concurrent_runs`` (default: counted
        in this process only)."""
        self._queue = queue
        self._claims = claims
        self._recovery = recovery
        self._team_slots = team_slots or LocalTeamSlots()
        self._incident_threads = incident_threads
        self._runs = runs
        self._config = config
        self._slack = slack
        self._poster = poster or slack
        self._investigator = investigator
        self._slots = asyncio.Semaphore(concurrency)
        self._room = asyncio.Semaphore(concurrency)
        """Deliveries this worker holds (running or waiting for their thread): it takes no more from
        a shared queue than it can start, leaving the rest to other workers."""
        self._update_interval = update_interval
        self._approvals = approvals
        self._threads = ThreadLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_run: dict[str, asyncio.Task[None]] = {}
        self._live: dict[str, LiveMessage] = {}
        self._interrupted_by: dict[str, str] = {}
        self._tenancy: dict[str, str] = {}
        self._requeues: set[asyncio.Task[None]] = set()
        tuning = resilience or Resilience()
        self._journal = ProgressJournal(runs, interval_s=tuning.journal_interval_s)
        self.backoff = tuning.step_backoff
        self.requeue_delay_s = tuning.requeue_delay_s
        self.lease_s = tuning.lease_s
        self.claim_retry_s = tuning.claim_retry_s
        self.team_wait_s = tuning.team_wait_s
        self.final_wait_s = tuning.final_wait_s

    @property
    def journal(self) -> ProgressJournal:
        return self._journal

    @property
    def editor(self) -> AsyncWebClient:
        """The client without retry handlers, for edits the caller paces itself."""
        return self._slack

    async def run_forever(self) -> None:
        await asyncio.to_thread(load_client_modules)
        helpers = [asyncio.create_task(self._journal.run_forever())]
        if self._claims is not None:
            helpers.append(asyncio.create_task(renew_leases_forever(self._claims, self.lease_s)))
        if self._recovery is not None:
            helpers.append(asyncio.create_task(self._recovery.sweep_forever()))
        try:
            await self._take_runs()
        finally:
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper

    async def _take_runs(self) -> None:
        while True:
            await self._room.acquire()
            try:
                item = await self._queue.get()
            except ConnectionError as exc:
                self._room.release()
                log.warning("the run queue is unavailable (%s); trying again in %ss", exc, QUEUE_RETRY_S)
                await asyncio.sleep(QUEUE_RETRY_S)
                continue
            except BaseException:
                self._room.release()
                raise
            if item.run_id in self._by_run:
                self._room.release()
                await self._ack(item)
                continue
            task = asyncio.create_task(self._guarded(item))
            self._tasks.add(task)
            self._by_run[item.run_id] = task
            task.add_done_callback(functools.partial(self._forget, item.run_id))

    def _forget(self, run_id: str, task: asyncio.Task[None]) -> None:
        self._room.release()
        self._tasks.discard(task)
        self._by_run.pop(run_id, None)
        self._interrupted_by.pop(run_id, None)
        self._tenancy.pop(run_id, None)

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
        for requeue in list(self._requeues):
            requeue.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace_s)
            await self._journal.flush()
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._journal.flush()
        if self._claims is not None:
            with contextlib.suppress(Exception):
                await self._claims.release_all()

    async def _guarded(self, item: QueuedRun) -> None:
        """Handle one delivery, then ``ack`` it, except when it was queued again (that acks it once the
        new entry is in) or this worker is stopping (another worker gets it again)."""
        self._tenancy[item.run_id] = tenancy_of(item.stream)
        try:
            async with self._threads.hold(item.thread_key), self._slots:
                if item.deliveries > MAX_ATTEMPTS:
                    await self._park(item)
                elif not await self._claimed(item) or not await self._team_has_room(item):
                    return
                else:
                    try:
                        await self.process(item.run_id)
                    finally:
                        if item.team is not None:
                            await self._team_slots.give_back(item.team, item.run_id)
        except asyncio.CancelledError:
            by = self._interrupted_by.get(item.run_id)
            if by is None:
                raise
            _uncancel()
            await self._runs.finish(
                item.run_id, RunFinish(status="interrupted", events=[], error=f"interrupted by {by}")
            )
        except StepFailed:
            self._requeue_later(item)
            return
        except Exception:
            log.exception("run could not be processed run_id=%s", item.run_id)
        await self._ack(item)

    async def _ack(self, item: QueuedRun) -> None:
        try:
            await self._queue.ack(item)
        except ConnectionError as exc:
            log.warning("could not acknowledge run_id=%s (%s); it may be delivered again", item.run_id, exc)

    async def _park(self, item: QueuedRun) -> None:
        """A run whose workers kept dying before it finished (a poison run): end it with a message."""
        run = await self._step("read the run", lambda: self._runs.get(item.run_id), item.run_id, "")
        if run is None or run.status not in ("queued", "running"):
            return
        log.error("run parked after %d deliveries run_id=%s", item.deliveries, item.run_id)
        await end_run(self._runs, run, TOO_MANY_ATTEMPTS.format(attempts=item.deliveries - 1))
        PROCESS_METRICS.run_finished("failed", run.source, tenancy_of(item.stream))

    async def _claimed(self, item: QueuedRun) -> bool:
        """Whether this worker may investigate the run now. A finished run is dropped; one another
        worker holds, or whose thread is busy, is tried again shortly (its holder may die)."""
        claims = self._claims
        if claims is None:
            return True
        claim = await self._step(
            "claim the run",
            lambda: claims.claim(item.run_id, lease_s=self.lease_s),
            item.run_id,
            DATABASE_UNAVAILABLE,
        )
        if claim is Claim.CLAIMED:
            if item.deliveries > 1:  # its worker died: the next attempt finds the message it posted
                resumed = functools.partial(self._runs.count_resumes, [item.run_id])
                await self._step("count the attempt", resumed, item.run_id, DATABASE_UNAVAILABLE)
            return True
        if claim is Claim.FINISHED:
            await self._ack(item)
        else:
            delay = self.lease_s / 3 if claim is Claim.HELD else self.claim_retry_s
            self._requeue_later(item, delay=delay, why=claim.value)
        return False

    async def _team_has_room(self, item: QueuedRun) -> bool:
        """Whether the run's team is under its ``limits.max_concurrent_runs`` across all workers. If
        not, the run lets go of its claim and waits in the queue, leaving this worker to other teams."""
        team = item.team
        if team is None:
            return True
        org_id, _, team_node_id = team.partition("/")
        try:
            config = await self._config.effective_config_shared(org_id, team_node_id)
            limit = team_run_limit(config)
            if limit is None or await self._team_slots.take(team, item.run_id, limit):
                return True
        except Exception as exc:  # the limit protects neighbours; it must never lose a run
            log.warning("team limit not checked run_id=%s error=%s", item.run_id, type(exc).__name__)
            return True
        if self._claims is not None:
            await self._claims.release(item.run_id)
        self._requeue_later(item, delay=self.team_wait_s, why="team at its concurrency limit")
        return False

    def _requeue_later(self, item: QueuedRun, *, delay: float | None = None, why: str = "unreadable") -> None:
        """Try the run again later: it could not be read (it is still ``queued`` in the database, and a
        restart would pick it up too), or it cannot be claimed yet."""
        delay = self.requeue_delay_s if delay is None else delay

        async def again() -> None:
            await asyncio.sleep(delay)
            await self._queue.put(dataclasses.replace(item, receipt=None, deliveries=1))
            await self._ack(item)

        level = logging.WARNING if why == "unreadable" else logging.DEBUG
        log.log(level, "run will be tried again run_id=%s why=%s retry_in_s=%.1f", item.run_id, why, delay)
        task = asyncio.create_task(again())
        self._requeues.add(task)
        task.add_done_callback(self._requeues.discard)

    async def process(self, run_id: str) -> None:
        """Investigate one run; the caller holds its thread's turn and a slot.

        ``StepFailed`` escapes only when the run cannot be read at all (it stays ``queued``).
        """
        run = await self._step("read the run", lambda: self._runs.get(run_id), run_id, DATABASE_UNAVAILABLE)
        if run is None or run.status not in ("queued", "running"):
            return
        if self._incident_threads is not None and self._incident_threads.opens_thread(run):
            prepared = await self._into_incident_thread(self._incident_threads, run)
            if prepared is None:
                return
            run = prepared
        started = time.perf_counter()
        title = run.question.strip() or "Investigation"
        live = await self._open(run, title)
        if live is None:
            return
        first_message_s = time.perf_counter() - started
        self._live[run_id] = live
        self._journal.track(run_id, live.events)
        try:
            await self._step(
                "mark the run running",
                lambda: self._runs.mark_running(run_id, message_ts=live.ts),
                run_id,
                DATABASE_UNAVAILABLE,
            )
            PROCESS_METRICS.run_started(run.source, self._tenancy.get(run_id, "shared"))
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
            self._journal.forget(run_id)
            delivery = await live.finish_interrupted()
            await self._record(
                run,
                RunFinish(
                    status="interrupted",
                    events=live.events,
                    error=f"interrupted by {by}",
                    pending_final=delivery.pending,
                ),
            )
            log.info("run interrupted run_id=%s by=%s", run_id, by)
        except StepFailed as failure:
            live.emit(Error(message=failure.user_message))
            failed = InvestigationOutcome(rca=None, error=failure.user_message)
            await self._finish(run, live, failed, {"total_s": round(time.perf_counter() - started, 3)})
        except Exception:
            log.exception("run failed inside the worker run_id=%s team=%s", run_id, run.team_node_id)
            live.emit(Error(message=INTERNAL_ERROR))
            failed = InvestigationOutcome(rca=None, error=INTERNAL_ERROR)
            await self._finish(run, live, failed, {"total_s": round(time.perf_counter() - started, 3)})
        finally:
            self._live.pop(run_id, None)
            self._journal.forget(run_id)

    async def _open(self, run: Run, title: str) -> LiveMessage | None:
        """Post "Investigating…", retrying while Slack is unreachable. ``None`` when the run ended here:
        Slack refused the post (nothing can be shown), or stayed unreachable (the run fails with a
        message kept pending, posted in the thread once Slack answers again)."""
        failures = 0
        while True:
            try:
                live = await open_live_message(
                    run,
                    title,
                    poster=self._poster,
                    editor=self._slack,
                    interval=self._update_interval,
                    final_wait=self.final_wait_s,
                )
            except SlackUnreachable as exc:
                failures += 1
                if failures < self.backoff.attempts:
                    delay = self.backoff.delay(failures)
                    log.warning(
                        "Slack did not take the first post run_id=%s error=%s retry_in_s=%.2f",
                        run.run_id,
                        exc,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                log.error("Slack stayed unreachable for the first post run_id=%s error=%s", run.run_id, exc)
                await self._record(
                    run,
                    RunFinish(
                        status="failed",
                        events=[Error(message=SLACK_UNREACHABLE)],
                        error=SLACK_UNREACHABLE,
                        pending_final=final_message(
                            render_error(SLACK_UNREACHABLE, run_id=run.run_id), error_text(SLACK_UNREACHABLE)
                        ),
                    ),
                )
                return None
            if live is None:
                await self._record(
                    run, RunFinish(status="failed", events=[], error="could not post to Slack")
                )
            return live

    async def _into_incident_thread(self, threads: IncidentThreads, run: Run) -> Run | None:
        """Post the incident's root message, retried; ``None`` when Slack refused it for good (the run
        ends failed, logged). While Slack stays unreachable ``StepFailed`` escapes: the run stays
        queued and is tried again later."""

        async def attempt() -> Run | RootNotPosted:
            try:
                return await threads.prepare(run)
            except RootNotPosted as exc:
                return exc

        prepared = await self._step(
            "post the incident's root message", attempt, run.run_id, SLACK_UNREACHABLE
        )
        if isinstance(prepared, RootNotPosted):
            log.error("incident root message refused run_id=%s error=%s", run.run_id, prepared)
            error = f"IncidentFox could not post the incident in Slack ({prepared})."
            await self._record(run, RunFinish(status="failed", events=[], error=error))
            return None
        return prepared

    async def _step(self, step: str, call: Callable[[], Awaitable[T]], run_id: str, user_message: str) -> T:
        return await retried(step, call, backoff=self.backoff, user_message=user_message, run_id=run_id)

    async def _investigate(self, run: Run, live: LiveMessage) -> InvestigationOutcome:
        config = await self._step(
            "load the team's config",
            lambda: self._config.effective_config(run.org_id, run.team_node_id),
            run.run_id,
            CONFIG_UNAVAILABLE,
        )
        context = InvestigationContext(
            run_id=run.run_id,
            org_id=run.org_id,
            team_node_id=run.team_node_id,
            config=config,
            emit=live.emit,
            origin=run.origin or {},
            kind=run.kind,
            thread_key=run.thread_key,
            channel_id=run.channel_id,
            thread_ts=run.thread_ts,
            requester=run.requester,
            interrupted_by=functools.partial(self._interrupted_by.get, run.run_id),
            approvals=SlackApprovalGate.for_run(self._approvals, run, config, live.emit)
            if self._approvals is not None
            else ApprovalsUnavailable(),
        )
        try:
            history = await self._step(
                "read the thread's history",
                lambda: self._runs.history(run.thread_key, org_id=run.org_id, team_node_id=run.team_node_id),
                run.run_id,
                DATABASE_UNAVAILABLE,
            )
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
        """Record the end (with its final message pending) before showing it, then settle it.

        A process killed after Slack accepted the final edit but before the run was recorded used to
        leave the run ``running``, so the next start investigated again and showed the RCA twice.
        Written ahead, the run is finished whatever happens next; the pending final is due only after
        the worker's own edit window, so the pending-finals task takes over only if this process died.
        """
        self._journal.forget(run.run_id)
        status = "succeeded" if outcome.rca or outcome.answer else "failed"
        finish = RunFinish(
            status=status,
            events=live.events,
            rca=outcome.rca,
            error=outcome.error,
            history=outcome.history or None,
            timings=timings,
            pending_final=live.final_for(outcome),
            retry_at=utcnow() + timedelta(seconds=self.final_wait_s + FINAL_TAKEOVER_MARGIN_S),
        )
        await self._record(run, finish)
        if self._incident_threads is not None:
            await self._owe_write_back(self._incident_threads, run, outcome)
        delivery = await live.finish(outcome)
        await self._settle(run.run_id, delivery.pending)
        log.info(
            "run finished run_id=%s team=%s status=%s final=%s timings=%s",
            run.run_id,
            run.team_node_id,
            status,
            "pending" if delivery.pending else "shown",
            timings,
        )

    async def _owe_write_back(
        self, threads: IncidentThreads, run: Run, outcome: InvestigationOutcome
    ) -> None:
        try:
            await self._step(
                "owe the incident its note", lambda: threads.finished(run, outcome), run.run_id, ""
            )
        except StepFailed:
            log.error("incident note not recorded run_id=%s", run.run_id)

    async def _settle(self, run_id: str, pending: dict[str, Any] | None) -> None:
        """Shown: nothing is pending any more. Not shown in the worker's window: due for retry now."""
        if pending is None:
            settle = functools.partial(self._runs.final_settled, run_id)
        else:
            settle = functools.partial(
                self._runs.final_retry, run_id, attempts=0, at=utcnow(), message=pending
            )
        try:
            await self._step("settle the final message", settle, run_id, DATABASE_UNAVAILABLE)
        except StepFailed:
            log.error("final message state not updated run_id=%s; pending finals will settle it", run_id)

    async def _record(self, run: Run, result: RunFinish) -> None:
        """Write the run's final state, retried; if the database stays away the run is left as it was,
        and the next start resumes it (its attempt cap and age limit still apply)."""
        try:
            await self._step(
                "record the run's end",
                lambda: self._runs.finish(run.run_id, result),
                run.run_id,
                DATABASE_UNAVAILABLE,
            )
        except StepFailed:
            log.error("run end not recorded run_id=%s status=%s", run.run_id, result.status)
        else:
            PROCESS_METRICS.run_finished(result.status, run.source, self._tenancy.get(run.run_id, "shared"))


def _uncancel() -> None:
    """Consume the cancellation we turned into an interrupt, so the finishing awaits can run."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
