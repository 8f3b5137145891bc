"""One IncidentFox process: the HTTP server, Socket Mode when configured, and the workers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from datetime import timedelta
from typing import Literal

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.approvals.service import ApprovalService
from incidentfox.agents.incidents.notifier import IncidentNotifier
from incidentfox.agents.incidents.threads import IncidentThreads
from incidentfox.agents.investigation import PlannerInvestigator
from incidentfox.agents.model_provider import TeamModelProvider, configure_tracing
from incidentfox.agents.pending_finals import PendingFinals
from incidentfox.agents.queue import SHARED_STREAM, InProcessRunQueue, team_stream
from incidentfox.agents.resilience import Resilience
from incidentfox.agents.run_control import InterruptListener, LocalRunControl, RedisRunControl, RunControl
from incidentfox.agents.runs.claims import RunClaims
from incidentfox.agents.runs.delivery_pruning import prune_forever
from incidentfox.agents.runs.entries import QueueEntries
from incidentfox.agents.runs.recovery import resume_unfinished
from incidentfox.agents.stream_queue import StreamRunQueue
from incidentfox.agents.worker import Worker
from incidentfox.agents.worker_upkeep import QueueRecovery
from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.bot.server import create_app
from incidentfox.bot.settings import Settings, default_worker_id, revealed
from incidentfox.bot.slack_app import SlackSurface, build_slack_surface, slack_client, start_socket_mode
from incidentfox.bot.worker_processes import WorkerProcesses
from incidentfox.config.slack_claims import SlackClaimPolicy, cached_workspace_of
from incidentfox.handlers.webhooks.github import GitHubWebhook
from incidentfox.handlers.webhooks.incident_intake import IncidentIntake
from incidentfox.handlers.webhooks.incidentio import IncidentIoWebhook
from incidentfox.handlers.webhooks.pagerduty import PagerDutyWebhook
from incidentfox.handlers.webhooks.routes import WebhookReceivers
from incidentfox.sandboxes.investigator import DispatchingInvestigator
from incidentfox.sandboxes.kubernetes_setup import kubernetes_sandboxes
from incidentfox.sandboxes.service import SreAgent
from incidentfox.sandboxes.store import SandboxStore
from incidentfox.sandboxes.thread_listening import SreThreadListener
from incidentfox.schedules.flows import Scheduler
from incidentfox.schedules.service import SlotStore
from incidentfox.web.embedded import wants_local_workspace
from incidentfox.web.local_workspace import LocalWorkspace

log = logging.getLogger(__name__)
Role = Literal["all", "bot", "worker"]

SLACK_NOT_CONFIGURED = (
    "Slack is not configured, so only the config API is running. To connect a workspace set "
    "SLACK_BOT_TOKEN (xoxb-…) and either SLACK_APP_TOKEN (xapp-…, Socket Mode: no public URL needed) "
    "or SLACK_SIGNING_SECRET (HTTP mode: Slack posts to /slack/events). See docs/slack-setup.md."
)


_gc_tuned = False


def tune_garbage_collector() -> None:
    """Move everything built at start-up (modules, SQLAlchemy metadata, clients) out of the collector's
    reach and collect young objects less often. Without this, full collections scanning that large
    start-up heap pause the event loop for ~150 ms under a burst of triggers (see bench/ack.py).
    Done once per process: objects frozen later would never be collected."""
    global _gc_tuned
    if _gc_tuned:
        return
    _gc_tuned = True
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, 10_000), gen1, gen2)


def _browsable(host: str) -> str:
    """The host a person types into a browser for a bind address (``0.0.0.0`` is not one)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


class IncidentFox:
    """Start and stop everything ``incidentfox serve`` runs, in the right order."""

    def __init__(
        self,
        settings: Settings,
        *,
        role: Role = "all",
        worker_concurrency: int | None = None,
        update_interval: float = 1.0,
        team: tuple[str, str] | None = None,
    ) -> None:
        """``team``: a dedicated worker, reading only that team's stream (``tenancy.mode: dedicated``)."""
        self.settings = settings
        self.role = role
        self.team = team
        self.worker_id = default_worker_id(settings, role)
        """This process's name in run claims and in the queue's consumer group."""
        self.worker_concurrency = worker_concurrency or settings.worker_concurrency
        self.update_interval = update_interval
        self.shutdown_grace_s = 10.0
        self.resilience = Resilience(lease_s=settings.run_lease_s)
        self.finals: PendingFinals | None = None
        self.incident_notifier: IncidentNotifier | None = None
        self.scheduler: Scheduler | None = None
        self.runtime: Runtime | None = None
        self.slack: SlackSurface | None = None
        self.worker: Worker | None = None
        self.approvals: ApprovalService | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._models: TeamModelProvider | None = None
        self._http: aiohttp.ClientSession | None = None
        self._background: list[asyncio.Task[None]] = []
        self.local: LocalWorkspace | None = None
        self.sre_agent: SreAgent | None = None
        self.worker_processes: WorkerProcesses | None = None
        self._interrupts: InterruptListener | None = None
        self._control_redis: Redis | None = None

    @property
    def investigates(self) -> bool:
        """Whether this process runs investigations itself (role all without worker processes)."""
        return self.role == "worker" or (self.role == "all" and not self.settings.worker_processes)

    @property
    def takes_triggers(self) -> bool:
        return self.role != "worker"

    async def start(self) -> None:
        settings = self.settings
        configure_tracing(enabled=False)
        if wants_local_workspace(settings) and self.takes_triggers:
            self.local = LocalWorkspace(settings)
            await self.local.start()
        serves = [team_stream(*self.team)] if self.team else [SHARED_STREAM]
        self.runtime = runtime = await build_runtime(settings, consumer=self.worker_id, serves=serves)
        if isinstance(runtime.queue, StreamRunQueue):
            await runtime.queue.check()
        self.approvals = ApprovalService(runtime.sessions)
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        client = slack_client(settings, session=self._http)
        if client is not None:
            runtime.config.claim_policy = SlackClaimPolicy(cached_workspace_of(client.auth_test))
        if client is not None:
            self.incident_notifier = IncidentNotifier(
                runtime.incidents, slack_client(settings, session=self._http) or client, runtime.config
            )
        if client is not None and self.investigates:
            if settings.anthropic_api_key is not None:
                run_dir = settings.data_dir / "run" / (self.worker_id if self.role == "worker" else "")
                self.sre_agent = SreAgent(
                    SandboxStore(runtime.sessions),
                    settings.data_dir,
                    api_key=settings.anthropic_api_key.get_secret_value(),
                    upstream=settings.anthropic_base_url,
                    kubernetes=kubernetes_sandboxes(settings, run_dir),
                    slack=slack_client(settings, session=self._http, retry_throttled=True),
                    run_dir=run_dir,
                    team_slots=runtime.team_slots,
                )
                await self.sre_agent.start()
            self.worker = self._build_worker(runtime, client)
        control = self._run_control(runtime)
        if client is not None:
            self.slack = build_slack_surface(
                settings,
                client,
                pipeline=runtime.pipeline,
                runs=runtime.runs,
                control=control,
                config=runtime.config,
                approvals=self.approvals,
                threads=(
                    SreThreadListener(SandboxStore(runtime.sessions), runtime.config)
                    if settings.anthropic_api_key is not None
                    else None
                ),
            )
        else:
            log.warning(SLACK_NOT_CONFIGURED)
        if self.slack is not None and self.slack.authorization is not None and self.takes_triggers:
            await self.slack.authorization.warm(attempts=self.resilience.auth_warm_attempts)
        if self.worker is not None:
            if isinstance(runtime.queue, InProcessRunQueue):
                await resume_unfinished(
                    runtime.runs,
                    runtime.queue,
                    QueueEntries(None),
                    max_age=timedelta(seconds=settings.run_resume_max_age_s),
                )
                await runtime.runs.finals_due_now()
            self.finals = PendingFinals(
                runtime.runs,
                self.worker.editor,
                schedule=self.resilience.final_retry,
                poll_s=self.resilience.finals_poll_s,
            )
            self._background.append(asyncio.create_task(self.finals.run_forever()))
            if self.incident_notifier is not None:
                self._background.append(asyncio.create_task(self.incident_notifier.run_forever()))
        if self.takes_triggers:
            self._background.append(asyncio.create_task(prune_forever(runtime.sessions)))
            if client is not None:
                self.scheduler = Scheduler(
                    config=runtime.config,
                    slots=SlotStore(runtime.sessions),
                    pipeline=runtime.pipeline,
                    incidents=runtime.incidents,
                    worker_id=self.worker_id,
                )
                self._background.append(asyncio.create_task(self.scheduler.run_forever()))
        webhooks = self._webhooks(runtime) if self.slack is not None else None
        app = create_app(runtime, self.slack, webhooks, settings=settings, local=self.local)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.host, settings.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        if self.slack is not None and settings.slack_app_token is not None and self.takes_triggers:
            self._socket = await start_socket_mode(self.slack, settings.slack_app_token.get_secret_value())
            log.info("Socket Mode connected")
        if self.worker is not None:
            if self._interrupts is not None:
                await self._interrupts.start()
            self._worker_task = asyncio.create_task(self.worker.run_forever())
        if self.role == "all" and settings.worker_processes:
            self.worker_processes = WorkerProcesses(
                settings.worker_processes, settings, base_id=self.worker_id.removesuffix("-all")
            )
            await self.worker_processes.start()
        if self.local is not None:
            await self.local.start_demo(runtime.config, webhook_base_url=f"http://127.0.0.1:{self.port}")
        tune_garbage_collector()
        log.info("IncidentFox listening on http://%s:%s role=%s", settings.host, self.port, self.role)
        if self.local is not None:
            log.info("Open the local workspace: http://%s:%s/", _browsable(settings.host), self.port)
        elif self.takes_triggers:
            log.info("Config console: http://%s:%s/", _browsable(settings.host), self.port)

    def _webhooks(self, runtime: Runtime) -> WebhookReceivers:
        settings, notifier = self.settings, self.incident_notifier
        intake = IncidentIntake(
            pipeline=runtime.pipeline,
            incidents=runtime.incidents,
            updated=notifier.wake if notifier is not None else lambda: None,
        )
        return WebhookReceivers(
            pagerduty=PagerDutyWebhook(
                routing=runtime.config.routing,
                config=runtime.config,
                intake=intake,
                incidents=runtime.incidents,
                sessions=runtime.sessions,
                installation_secret=revealed(settings.pagerduty_webhook_secret),
            ),
            incidentio=IncidentIoWebhook(
                config=runtime.config,
                intake=intake,
                sessions=runtime.sessions,
                installation_secret=revealed(settings.incidentio_webhook_secret),
            ),
            github=GitHubWebhook(
                routing=runtime.config.routing,
                config=runtime.config,
                pipeline=runtime.pipeline,
                incidents=runtime.incidents,
                sessions=runtime.sessions,
                installation_secret=revealed(settings.github_webhook_secret),
                updated=notifier.wake if notifier is not None else lambda: None,
            ),
        )

    def _run_control(self, runtime: Runtime) -> RunControl | None:
        """How the buttons reach runs: this process's worker, and with Redis every worker process."""
        settings = self.settings
        if not isinstance(runtime.queue, StreamRunQueue) or not settings.redis_url:
            return LocalRunControl(self.worker) if self.worker is not None else None
        self._control_redis = Redis.from_url(settings.redis_url)
        if self.worker is not None:
            self._interrupts = InterruptListener(
                self._control_redis, namespace=settings.redis_namespace, worker=self.worker
            )
        return RedisRunControl(self._control_redis, namespace=settings.redis_namespace, local=self.worker)

    def _build_worker(self, runtime: Runtime, client: AsyncWebClient) -> Worker:
        settings = self.settings
        self._models = TeamModelProvider(
            openai_api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
            openai_base_url=settings.openai_base_url,
            default_model=settings.incidentfox_model,
            anthropic_api_key=(
                settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
            ),
            anthropic_base_url=settings.anthropic_base_url,
        )
        poster = slack_client(settings, session=self._http, retry_throttled=True) or client
        return Worker(
            queue=runtime.queue,
            runs=runtime.runs,
            config=runtime.config,
            slack=client,
            poster=poster,
            investigator=DispatchingInvestigator(
                PlannerInvestigator(self._models, knowledge=runtime.knowledge),
                self.sre_agent.investigator if self.sre_agent is not None else None,
                self.sre_agent.sessions if self.sre_agent is not None else None,
            ),
            concurrency=self.worker_concurrency,
            update_interval=self.update_interval,
            claims=RunClaims(runtime.sessions, self.worker_id),
            recovery=self._queue_recovery(runtime),
            team_slots=runtime.team_slots,
            approvals=self.approvals,
            resilience=self.resilience,
            incident_threads=IncidentThreads(
                incidents=runtime.incidents,
                runs=runtime.runs,
                config=runtime.config,
                poster=poster,
                workspace_of=cached_workspace_of(client.auth_test),
                owed=self.incident_notifier.wake if self.incident_notifier is not None else lambda: None,
            ),
        )

    def _queue_recovery(self, runtime: Runtime) -> QueueRecovery | None:
        """With Redis: queue again the runs saved while it was down, and all unheld ones if it lost its
        entries. The in-process queue needs neither (its runs are resumed at start)."""
        queue = runtime.queue
        if not isinstance(queue, StreamRunQueue):
            return None
        return QueueRecovery(
            runs=runtime.runs,
            queue=queue,
            entries=QueueEntries(runtime.config),
            max_age=timedelta(seconds=self.settings.run_resume_max_age_s),
            entries_lost=queue.take_entries_lost,
            queued_run_ids=queue.queued_run_ids,
        )

    async def stop(self) -> None:
        """Stop taking triggers first (Socket Mode, then HTTP), then let running investigations finish."""
        if self._socket is not None:
            await self._socket.close_async()
        if self.local is not None:
            self.local.end_live_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in self._background:
            task.cancel()
        if self._background:
            _, stuck = await asyncio.wait(self._background, timeout=self.shutdown_grace_s)
            for task in stuck:
                log.error("a background task did not stop when cancelled: %s", task.get_coro())
        self._background.clear()
        if self.worker_processes is not None:
            await self.worker_processes.stop(self.shutdown_grace_s + 5.0)
        if self._interrupts is not None:
            await self._interrupts.close()
        if self._worker_task is not None:
            self._worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
        if self.worker is not None:
            await self.worker.shutdown(self.shutdown_grace_s)
        if self.sre_agent is not None:
            await self.sre_agent.stop()
            self.sre_agent = None
        if self.slack is not None:
            if self.slack.commands is not None:
                await self.slack.commands.drain()
            if self.slack.home is not None:
                await self.slack.home.drain()
            await self.slack.notices.drain()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._models is not None:
            await self._models.aclose()
        if self._http is not None:
            await self._http.close()
        if self.local is not None:
            await self.local.stop()
        if self._control_redis is not None:
            await self._control_redis.aclose()
        if self.runtime is not None:
            await self.runtime.close()
