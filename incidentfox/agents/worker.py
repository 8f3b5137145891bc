"""The worker: takes queued runs, shows live progress in the thread, and ends with the RCA.

worker: queue.get -> post "Investigating..." in thread -> run the investigator (streaming events)
        -> coalesced chat.update -> final RCA blocks + buttons -> run row updated
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Error, Interrupted, ProgressEvent, Started
from incidentfox.agents.investigator import InvestigationOutcome, Investigator
from incidentfox.agents.queue import QueuedRun, RunQueue
from incidentfox.agents.runs.models import Run
from incidentfox.agents.runs.service import RunFinish, RunStore
from incidentfox.agents.slack_updater import SlackProgressUpdater
from incidentfox.blocks.progress import progress_text, render_progress
from incidentfox.blocks.rca import error_text, rca_text, render_error, render_rca
from incidentfox.config.service import ConfigService

log = logging.getLogger(__name__)
INTERNAL_ERROR = "Something went wrong inside IncidentFox while investigating; the details are in its logs."


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


class LiveMessage:
    """Renders a run's events into its Slack message, never more often than the updater allows."""

    def __init__(self, updater: SlackProgressUpdater, run_id: str, title: str) -> None:
        self.events: list[ProgressEvent] = []
        self._updater = updater
        self._run_id = run_id
        self._title = title
        self._dirty = asyncio.Event()
        self._pump = asyncio.create_task(self._render_loop())

    def emit(self, event: ProgressEvent) -> None:
        self.events.append(event)
        self._dirty.set()

    async def _render_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            blocks = render_progress(self.events, run_id=self._run_id, title=self._title, state="running")
            await self._updater.update(blocks, progress_text(self.events, title=self._title, state="running"))

    async def _stop_pump(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump

    async def finish_interrupted(self) -> None:
        """Leave the message showing where the run stopped, with a Resume button."""
        await self._stop_pump()
        blocks = render_progress(self.events, run_id=self._run_id, title=self._title, state="interrupted")
        await self._updater.finish(blocks, progress_text(self.events, title=self._title, state="interrupted"))
        await self._updater.close()

    async def finish(self, outcome: InvestigationOutcome) -> None:
        await self._stop_pump()
        if outcome.rca is not None:
            await self._updater.finish(render_rca(outcome.rca, run_id=self._run_id), rca_text(outcome.rca))
        else:
            message = outcome.error or INTERNAL_ERROR
            await self._updater.finish(render_error(message, run_id=self._run_id), error_text(message))
        await self._updater.close()


class Worker:
    """Pulls run ids from the queue and investigates up to ``concurrency`` runs at once."""

    def __init__(
        self,
        *,
        queue: RunQueue,
        runs: RunStore,
        config: ConfigService,
        slack: AsyncWebClient,
        poster: AsyncWebClient | None = None,
        investigator: Investigator,
        concurrency: int = 100,
        update_interval: float = 1.0,
    ) -> None:
        self._queue = queue
        self._runs = runs
        self._config = config
        self._slack = slack
        self._poster = poster or slack
        self._investigator = investigator
        self._slots = asyncio.Semaphore(concurrency)
        self._update_interval = update_interval
        self._threads = ThreadLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_run: dict[str, asyncio.Task[None]] = {}
        self._live: dict[str, LiveMessage] = {}
        self._interrupted_by: dict[str, str] = {}

    async def run_forever(self) -> None:
        while True:
            item = await self._queue.get()
            run_id = item.run_id
            await self._slots.acquire()
            task = asyncio.create_task(self._guarded(item))
            self._tasks.add(task)
            self._by_run[run_id] = task
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(functools.partial(self._forget, run_id))

    def _forget(self, run_id: str, _task: asyncio.Task[None]) -> None:
        self._by_run.pop(run_id, None)

    def interrupt(self, run_id: str, by: str) -> bool:
        """Stop a queued or running run of this worker; ``False`` if it is not here (finished, elsewhere)."""
        task = self._by_run.get(run_id)
        if task is None or task.done():
            return False
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
        run_id = item.run_id
        try:
            async with self._threads.hold(item.thread_key):
                await self.process(run_id)
        except asyncio.CancelledError:
            by = self._interrupted_by.pop(run_id, None)
            if by is None:
                raise
            await self._record_interrupt(run_id, by, None)
        except Exception:
            log.exception("run crashed run_id=%s", run_id)
        finally:
            self._slots.release()

    async def _record_interrupt(self, run_id: str, by: str, live: LiveMessage | None) -> None:
        """Finish an interrupted run: the message shows where it stopped; the row says who stopped it."""
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        events: list[ProgressEvent] = []
        if live is not None:
            live.emit(Interrupted(by=by))
            await live.finish_interrupted()
            events = live.events
        await self._runs.finish(
            run_id, RunFinish(status="interrupted", events=events, error=f"interrupted by {by}")
        )
        log.info("run interrupted run_id=%s by=%s", run_id, by)

    async def process(self, run_id: str) -> None:
        """Investigate one run; the caller holds its thread's turn."""
        run = await self._runs.get(run_id)
        if run is None or run.status not in ("queued", "running"):
            return
        await self._investigate(run)

    async def _investigate(self, run: Run) -> None:
        started = time.perf_counter()
        title = run.question.strip() or "Investigation"
        live = await self._open_live_message(run, title)
        if live is None:
            await self._runs.finish(
                run.run_id, RunFinish(status="failed", events=[], error="could not post to Slack")
            )
            return
        await self._runs.mark_running(run.run_id, message_ts=None)
        first_message_s = time.perf_counter() - started
        self._live[run.run_id] = live
        try:
            await self._investigate_live(run, live, title, started, first_message_s)
        except asyncio.CancelledError:
            by = self._interrupted_by.pop(run.run_id, None)
            if by is None:
                raise
            await self._record_interrupt(run.run_id, by, live)
        finally:
            self._live.pop(run.run_id, None)

    async def _investigate_live(
        self, run: Run, live: LiveMessage, title: str, started: float, first_message_s: float
    ) -> None:
        context = InvestigationContext(
            run_id=run.run_id,
            org_id=run.org_id,
            team_node_id=run.team_node_id,
            config=await self._config.effective_config(run.org_id, run.team_node_id),
            emit=live.emit,
        )
        try:
            outcome = await self._outcome(context, run)
        finally:
            await close_clients(context)
        await live.finish(outcome)
        timings = {
            "first_message_s": round(first_message_s, 4),
            "total_s": round(time.perf_counter() - started, 3),
        }
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
            "run finished run_id=%s team=%s status=%s total_s=%s",
            run.run_id,
            run.team_node_id,
            status,
            timings["total_s"],
        )

    async def _outcome(self, context: InvestigationContext, run: Run) -> InvestigationOutcome:
        history = await self._runs.history(run.thread_key)
        try:
            return await self._investigator.investigate(context, run.question, history)
        except Exception:
            log.exception("investigator failed run_id=%s team=%s", run.run_id, run.team_node_id)
            context.emit(Error(message=INTERNAL_ERROR))
            return InvestigationOutcome(rca=None, error=INTERNAL_ERROR, history=history)

    async def _open_live_message(self, run: Run, title: str) -> LiveMessage | None:
        """Post "Investigating…" in the thread; the returned message is edited from then on."""
        if not run.channel_id:
            return None
        blocks = render_progress([Started(summary=title)], run_id=run.run_id, title=title, state="running")
        kwargs: dict[str, Any] = {
            "channel": run.channel_id,
            "blocks": blocks,
            "text": f"🔍 Investigating… {title}",
        }
        if run.thread_ts:
            kwargs["thread_ts"] = run.thread_ts
        try:
            posted = await self._poster.chat_postMessage(**kwargs)
        except SlackApiError as exc:
            log.error(
                "cannot post the progress message run_id=%s channel=%s error=%s",
                run.run_id,
                run.channel_id,
                exc.response.get("error"),
            )
            return None
        updater = SlackProgressUpdater(
            self._slack,
            str(posted["channel"]),
            str(posted["ts"]),
            min_interval=self._update_interval,
            log_context={"run_id": run.run_id, "team": run.team_node_id},
        )
        return LiveMessage(updater, run.run_id, title)
