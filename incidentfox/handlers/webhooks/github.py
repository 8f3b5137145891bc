"""``POST /webhooks/github``: GitHub webhooks into the one pipeline.

- A failed CI run (``workflow_run``, or a ``check_suite`` of another CI app) becomes a ``Trigger``
  whose run posts a root message in the team's channel, investigates in its thread and, when it
  belongs to a pull request, leaves its analysis as the pull request's one IncidentFox comment.
- A comment that mentions the bot's handle (``integrations.github.bot_handle``) becomes a ``Trigger``
  for its question, answered in Slack and in the same place on GitHub.
- A pull request (or issue) has one thread: later failures and questions continue it (its session).
- ``ping`` answers 200; any event or action we do not act on answers 204 and stores nothing.

The unverified body is read only to find the team (``repository.full_name`` in ``routing.github_repos``)
whose ``integrations.github.webhook_secret`` signs it (else ``GITHUB_WEBHOOK_SECRET``); nothing is
written before ``X-Hub-Signature-256`` holds. Dedupe is on ``X-GitHub-Delivery``, in the deliveries
table. Nothing here calls GitHub or Slack: the answer comes well inside GitHub's 10 seconds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from incidentfox.agents.incidents.store import IncidentEvent, IncidentStore
from incidentfox.agents.toolsets.base import lookup_dotted
from incidentfox.bot.strict_json import loads_strict
from incidentfox.config.routing import RouteTarget, RoutingIndex
from incidentfox.config.service import ConfigService
from incidentfox.db.engine import SessionFactory
from incidentfox.errors import BadRequest
from incidentfox.handlers.pipeline import TriggerPipeline
from incidentfox.handlers.trigger import RoutingKey, ThreadRef, Trigger
from incidentfox.handlers.webhooks import github_events as gh
from incidentfox.handlers.webhooks.incident_intake import incident_channel
from incidentfox.handlers.webhooks.receipt import (
    IGNORED,
    WebhookAnswer,
    answer_for,
    audit_unrouted,
    parse_payload,
    refuse_unsigned,
)
from incidentfox.handlers.webhooks.signatures import GITHUB_HEADER, github_signed

log = logging.getLogger(__name__)
SENDER = "github"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
NO_CHANNEL = (
    "No Slack channel for GitHub: set `integrations.github.channel_id` or claim a channel in "
    "`routing.slack_channel_ids`."
)
_DELIVERY_ID = re.compile(r"[A-Za-z0-9-]{1,100}")
CiEvent = gh.WorkflowRunEvent | gh.CheckSuiteEvent
CommentEvent = gh.IssueCommentEvent | gh.ReviewCommentEvent


def _delivery_id(headers: Mapping[str, str]) -> str:
    raw = headers.get(DELIVERY_HEADER, "").strip()
    if not _DELIVERY_ID.fullmatch(raw):
        raise BadRequest(f"the {DELIVERY_HEADER} header is missing or malformed", code="bad_payload")
    return f"github:{raw}"


class GitHubWebhook:
    def __init__(
        self,
        *,
        routing: RoutingIndex,
        config: ConfigService,
        pipeline: TriggerPipeline,
        incidents: IncidentStore,
        sessions: SessionFactory,
        installation_secret: str | None,
        updated: Callable[[], None] = lambda: None,
    ) -> None:
        self._routing = routing
        self._config = config
        self._pipeline = pipeline
        self._incidents = incidents
        self._sessions = sessions
        self._installation_secret = installation_secret or ""
        self._updated = updated

    async def receive(self, raw: bytes, headers: Mapping[str, str]) -> WebhookAnswer:
        model = gh.MODELS.get(headers.get(EVENT_HEADER, ""))
        if model is None:
            loads_strict(raw)
            return IGNORED
        event = parse_payload(raw, model, "GitHub")
        delivery_id = _delivery_id(headers)
        repository = getattr(event, "repository", None)
        target = await self._route(repository.full_name if repository else None)
        config = (
            await self._config.effective_config_shared(target.org_id, target.team_node_id) if target else {}
        )
        secret = lookup_dotted(config, "integrations.github.webhook_secret")
        if not github_signed(raw, headers.get(GITHUB_HEADER), str(secret or self._installation_secret)):
            raise refuse_unsigned(SENDER)
        if isinstance(event, gh.PingEvent):
            return WebhookAnswer(200, {"outcome": "pong", "routed": target is not None})
        handle = gh.bot_handle(lookup_dotted(config, "integrations.github.bot_handle"))
        if not self._acts_on(event, handle):
            return IGNORED
        if target is None:
            what = f"GitHub repo {repository.full_name if repository else '?'}"
            await audit_unrouted(self._sessions, sender=SENDER, what=what, delivery_id=delivery_id)
            return WebhookAnswer(202, {"outcome": "unrouted"})
        channel = incident_channel(config, "github")
        if channel is None:
            log.warning(
                "github delivery not investigated org=%s team=%s: no channel",
                target.org_id,
                target.team_node_id,
            )
            return WebhookAnswer(202, {"outcome": "misconfigured", "problems": [NO_CHANNEL]})
        if isinstance(event, gh.WorkflowRunEvent | gh.CheckSuiteEvent):
            return await self._ci_failure(event, target, channel, delivery_id)
        assert isinstance(event, gh.IssueCommentEvent | gh.ReviewCommentEvent)
        return await self._question(event, target, channel, delivery_id, handle)

    @staticmethod
    def _acts_on(event: Any, handle: str) -> bool:
        if isinstance(event, gh.WorkflowRunEvent | gh.CheckSuiteEvent):
            return gh.failed_ci(event)
        if isinstance(event, gh.IssueCommentEvent | gh.ReviewCommentEvent):
            return (
                event.action == "created"
                and not gh.by_the_bot(event, handle)
                and gh.asks(event.comment.body, handle)
            )
        return False

    async def _ci_failure(
        self, event: CiEvent, target: RouteTarget, channel: str, delivery_id: str
    ) -> WebhookAnswer:
        """A failure's state is the row's newest: the root message shows the latest failed run."""
        failure = gh.CiFailure.of(event)
        return await self._submit(
            self._event(failure.key, target, delivery_id, event, failure.state()),
            kind="ci_failure",
            text=failure.question(),
            repo=failure.repo,
            requester=f"github:{failure.actor}" if failure.actor else "github",
            origin={**failure.origin(), "incident_key": failure.key, "channel_id": channel},
        )

    async def _question(
        self, event: CommentEvent, target: RouteTarget, channel: str, delivery_id: str, handle: str
    ) -> WebhookAnswer:
        """A question opens a conversation's thread, or joins the one its pull request or issue has
        (whose root message keeps showing what it showed)."""
        key = gh.mention_key(event)
        row = await self._incidents.get(key)
        ours = row is not None and (row.org_id, row.team_node_id) == (target.org_id, target.team_node_id)
        state = {} if ours and row is not None and row.state else gh.conversation_state(event)
        return await self._submit(
            self._event(key, target, delivery_id, event, state),
            kind="mention",
            text=gh.mention_question(event, handle),
            repo=event.repository.full_name,
            requester=f"github:{event.comment.user.login}",
            origin={**gh.mention_origin(event), "incident_key": key, "channel_id": channel},
        )

    @staticmethod
    def _event(
        key: str, target: RouteTarget, delivery_id: str, event: CiEvent | CommentEvent, state: dict[str, Any]
    ) -> IncidentEvent:
        return IncidentEvent(
            incident_key=key,
            source=SENDER,
            org_id=target.org_id,
            team_node_id=target.team_node_id,
            event_id=delivery_id,
            occurred_at=gh.happened_at(event),
            state=state,
        )

    async def _submit(
        self,
        opened: IncidentEvent,
        *,
        kind: str,
        text: str,
        repo: str,
        requester: str,
        origin: Mapping[str, Any],
    ) -> WebhookAnswer:
        """Record the row first (the run may start before this answer is sent and its root message
        shows that state), then hand the trigger to the pipeline, in the row's thread when it has one."""
        existing = await self._incidents.thread_key(
            opened.incident_key, org_id=opened.org_id, team_node_id=opened.team_node_id
        )
        if await self._incidents.record(opened):
            self._updated()
        trigger = Trigger(
            source="github",
            kind=kind,
            routing_key=RoutingKey(github_repo=repo),
            text=text,
            thread_ref=ThreadRef.from_key(existing) if existing else None,
            requester=requester,
            delivery_id=opened.event_id,
            origin=origin,
        )
        return answer_for(await self._pipeline.submit(trigger))

    async def _route(self, repo: str | None) -> RouteTarget | None:
        if not repo:
            return None
        try:
            return await self._routing.lookup(github_repo=repo)
        except BadRequest:
            return None
