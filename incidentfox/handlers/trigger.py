"""The one shape every trigger takes, whatever its source (Slack, GitHub, PagerDuty)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

TriggerSource = Literal["slack", "github", "pagerduty", "incidentio", "schedule"]


@dataclass(frozen=True, slots=True)
class RoutingKey:
    """What identifies the owner of a trigger; the pipeline routes on the first one present."""

    slack_channel_id: str | None = None
    github_repo: str | None = None
    pagerduty_service_id: str | None = None
    team: tuple[str, str] | None = None
    """``(org, team)`` when the source names the team itself (an incident.io endpoint per team)."""

    def describe(self) -> str:
        if self.team:
            return f"team {self.team[0]}/{self.team[1]}"
        if self.pagerduty_service_id:
            return f"PagerDuty service {self.pagerduty_service_id}"
        if self.slack_channel_id:
            return f"Slack channel {self.slack_channel_id}"
        return f"GitHub repo {self.github_repo}"


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """Where the conversation lives in Slack; a thread is one session."""

    channel_id: str
    thread_ts: str
    workspace_id: str = ""

    @property
    def key(self) -> str:
        return f"slack:{self.workspace_id}:{self.channel_id}:{self.thread_ts}"

    @classmethod
    def from_key(cls, key: str) -> ThreadRef | None:
        """The thread a ``key`` names (the inverse of ``key``); ``None`` for anything else."""
        parts = key.split(":")
        if len(parts) != 4 or parts[0] != "slack" or not parts[2] or not parts[3]:
            return None
        return cls(channel_id=parts[2], thread_ts=parts[3], workspace_id=parts[1])


@dataclass(frozen=True, slots=True)
class Trigger:
    """A request for an investigation, built by an adapter and handed to the pipeline.

    ``delivery_id`` is the source's own id for this delivery (Slack ``event_id``, ``X-GitHub-Delivery``,
    the PagerDuty webhook id), prefixed with the source, so a retried delivery is recognised.
    """

    source: TriggerSource
    kind: str
    routing_key: RoutingKey
    text: str
    thread_ref: ThreadRef | None
    requester: str
    delivery_id: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    origin: Mapping[str, Any] | None = None
    """For webhook triggers: where the run answers (``channel_id`` of the root message it posts, the
    ``incident_key`` of its ``incident_threads`` row, and what the source needs to write back: the
    repository, workflow run and pull requests of a failed CI run, the comment a mention asked in),
    persisted with the run and given to the investigator."""
