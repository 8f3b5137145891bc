"""Write-backs: what a webhook thread owes the tool it came from once its investigation ends (a note on
a PagerDuty incident, a comment on a GitHub pull request or issue).

Each source is a ``WriteBackSource`` with two halves:

- ``owed`` runs when an investigation ends (``IncidentThreads.finished``): from the run's origin, its
  outcome and the team's config it decides what is owed, already rendered, or nothing (the team
  turned write-backs off, or gave no credential to write with);
- ``deliver`` runs in ``IncidentNotifier``: it makes one write and raises ``WriteBackFailed`` with a
  plain sentence when it could not, saying whether trying again may help and after how long.

What is owed is kept in the thread's ``incident_threads`` row until delivered, so a restart or an
outage of the tool never loses it. A write with the same ``key`` as one still owed replaces it (the
newer analysis wins).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from incidentfox.agents.investigator import InvestigationOutcome


@dataclass(frozen=True, slots=True)
class WriteBack:
    """One write owed: ``kind`` names the source that delivers it, ``target`` what it writes to."""

    kind: str
    key: str
    content: str
    target: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "content": self.content, "target": dict(self.target)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WriteBack:
        target = data.get("target")
        return cls(
            kind=str(data.get("kind", "")),
            key=str(data.get("key", "")),
            content=str(data.get("content", "")),
            target=dict(target) if isinstance(target, Mapping) else {},
        )


class WriteBackFailed(Exception):
    """A write did not happen. ``reason`` is one plain sentence for the thread; ``final`` means trying
    again cannot help (bad credentials, no permission, the target is gone); ``retry_after`` is how long
    the tool asked to wait (``Retry-After``, a rate limit's reset)."""

    def __init__(self, reason: str, *, retry_after: float = 0.0, final: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.final = final


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """What a delivery may use: the team's run-time config (secrets decrypted: never show it) and the
    Slack thread's permalink (``None`` when Slack would not give it)."""

    config: Mapping[str, Any]
    permalink: Callable[[], Awaitable[str | None]]


class WriteBackSource(Protocol):
    kind: str

    def owed(
        self, origin: Mapping[str, Any], outcome: InvestigationOutcome, config: Mapping[str, Any]
    ) -> list[WriteBack]:
        """What this source is owed for a run that came from ``origin``; empty when nothing is."""
        ...

    async def deliver(self, write: WriteBack, context: DeliveryContext) -> None:
        """Make the write; raise ``WriteBackFailed`` when it did not happen."""
        ...


def writes_of(owed: Mapping[str, Any] | None, incident_key: str) -> list[WriteBack]:
    """The writes an ``incident_threads.note`` value holds.

    Rows written before write-backs were generalised (migration 0006) hold ``{"content": …}``: the
    note owed to PagerDuty incident ``pagerduty:{id}``.
    """
    if not owed:
        return []
    if "writes" not in owed:
        target = {"incident_id": incident_key.split(":", 1)[-1]}
        return [WriteBack("pagerduty_note", "note", str(owed.get("content", "")), target)]
    return [WriteBack.from_json(item) for item in owed["writes"] if isinstance(item, Mapping)]
