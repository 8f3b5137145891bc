"""THE pipeline (design §3): Trigger -> dedupe -> route -> effective config -> persist run -> enqueue.

Every adapter (Slack, GitHub, PagerDuty) hands its ``Trigger`` here and tells the user about the
outcome in its own way. Nothing here waits on Slack or a model: it must finish well before the ack.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from incidentfox.agents.queue import Backlog, RunQueue
from incidentfox.agents.redaction import scrub_text, secret_values
from incidentfox.agents.runs.entries import queue_entry
from incidentfox.agents.runs.intake import RunIntake
from incidentfox.agents.runs.service import DuplicateDelivery, RunStore
from incidentfox.config.routing import RouteTarget, RoutingIndex
from incidentfox.config.service import ConfigService
from incidentfox.errors import BadRequest
from incidentfox.handlers.trigger import Trigger

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The run is saved. ``degraded``: the run queue did not take it, so a worker's sweep will queue
    it later; the user should hear that it may take a while."""

    run_id: str
    target: RouteTarget
    degraded: bool = False
    backlog: Backlog | None = None
    """Set when the queue was over ``QUEUE_MAX_DEPTH``: the user should hear the wait."""


@dataclass(frozen=True, slots=True)
class Duplicate:
    delivery_id: str


@dataclass(frozen=True, slots=True)
class Unrouted:
    """No team claims the trigger's channel, repo or service."""

    what: str


@dataclass(frozen=True, slots=True)
class Misconfigured:
    """The owning team is turned off or lacks config; ``problems`` name the keys to set."""

    target: RouteTarget
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Admitted:
    """An interaction that starts no run (a command, a modal, a button) was seen for the first time;
    ``target`` is the team that owns its channel, if any."""

    target: RouteTarget | None


PipelineOutcome = Accepted | Duplicate | Unrouted | Misconfigured
ConfigCheck = Callable[[Mapping[str, Any]], list[str]]


class TriggerPipeline:
    def __init__(
        self,
        *,
        routing: RoutingIndex,
        config: ConfigService,
        intake: RunIntake,
        runs: RunStore,
        queue: RunQueue,
        check_config: ConfigCheck,
        max_depth: int | None = None,
    ) -> None:
        """``max_depth``: runs waiting in a queue past which an accepted run reports a ``backlog``."""
        self._routing = routing
        self._config = config
        self._intake = intake
        self._runs = runs
        self._queue = queue
        self._check_config = check_config
        self._max_depth = max_depth

    async def admit(self, trigger: Trigger) -> Admitted | Duplicate:
        """Route and dedupe an interaction that starts no run, so a retried delivery is done once."""
        target = await self._route(trigger)
        try:
            await self._intake.refuse(trigger.delivery_id, trigger.kind)
        except DuplicateDelivery:
            return Duplicate(trigger.delivery_id)
        return Admitted(target)

    async def submit(self, trigger: Trigger) -> PipelineOutcome:
        """Dedupe happens where the delivery is persisted: a retry's insert conflicts with the first."""
        key = trigger.routing_key
        target = await self._route(trigger)
        if target is None:
            return await self._refuse(trigger, Unrouted(key.describe()), "unrouted")
        config = await self._config.effective_config_shared(target.org_id, target.team_node_id)
        problems = self._check_config(config)
        if problems:
            return await self._refuse(trigger, Misconfigured(target, tuple(problems)), "misconfigured")
        trigger = dataclasses.replace(trigger, text=scrub_text(trigger.text, secret_values(config)))
        try:
            run_id = await self._intake.accept(
                trigger, org_id=target.org_id, team_node_id=target.team_node_id
            )
        except DuplicateDelivery:
            log.info(
                "duplicate delivery ignored delivery_id=%s source=%s", trigger.delivery_id, trigger.source
            )
            return Duplicate(trigger.delivery_id)
        thread_key = trigger.thread_ref.key if trigger.thread_ref else None
        queued = queue_entry(run_id, thread_key, target.org_id, target.team_node_id, config)
        try:
            waiting = await self._queue.put(queued)
        except ConnectionError as exc:
            log.warning("run saved but not queued run_id=%s error=%s", run_id, exc)
            await self._runs.mark_unqueued(run_id)
            return Accepted(run_id, target, degraded=True)
        log.info(
            "run queued run_id=%s org=%s team=%s source=%s kind=%s delivery_id=%s",
            run_id,
            target.org_id,
            target.team_node_id,
            trigger.source,
            trigger.kind,
            trigger.delivery_id,
        )
        if waiting is not None and self._max_depth is not None and waiting > self._max_depth:
            return Accepted(run_id, target, backlog=await self._backlog(waiting - 1))
        return Accepted(run_id, target)

    async def _backlog(self, ahead: int) -> Backlog:
        """Read only when the queue is over its depth limit: the common path pays nothing for it."""
        try:
            finished: int | None = await self._queue.finished_recently()
        except ConnectionError:
            finished = None
        log.warning("run queue over its depth limit ahead=%d finished_recently=%s", ahead, finished)
        return Backlog(ahead=ahead, finished=finished)

    async def _route(self, trigger: Trigger) -> RouteTarget | None:
        key = trigger.routing_key
        if key.team is not None:
            return RouteTarget(*key.team)
        try:
            return await self._routing.lookup(
                pagerduty_service_id=key.pagerduty_service_id,
                slack_channel_id=key.slack_channel_id,
                github_repo=key.github_repo,
            )
        except BadRequest:
            return None

    async def _refuse(self, trigger: Trigger, outcome: PipelineOutcome, label: str) -> PipelineOutcome:
        try:
            await self._intake.refuse(trigger.delivery_id, label)
        except DuplicateDelivery:
            return Duplicate(trigger.delivery_id)
        log.info(
            "trigger not run outcome=%s delivery_id=%s source=%s", label, trigger.delivery_id, trigger.source
        )
        return outcome
