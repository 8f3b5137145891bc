"""The knobs of the run engine's retries, in one place: production defaults, tiny values in tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from incidentfox.agents.pending_finals import FinalRetrySchedule
from incidentfox.agents.step_retry import Backoff


@dataclass(slots=True)
class Resilience:
    step_backoff: Backoff = field(default_factory=Backoff)
    """Retries of a worker step (database, config, first post) before the run ends with a message."""
    final_wait_s: float = 25.0
    """How long the worker retries a final edit itself before leaving it pending in the database. With
    the worker's takeover margin (30 s), a final whose worker died shows within a minute."""
    final_retry: FinalRetrySchedule = field(default_factory=FinalRetrySchedule)
    finals_poll_s: float = 1.0
    """How often pending final messages that are due are tried."""
    requeue_delay_s: float = 30.0
    """How long a run that could not even be read waits before it is tried again."""
    lease_s: float = 30.0
    """A worker's claim on a run lasts this long unless renewed (every third of it): a worker that died
    lets another take its runs after at most this long."""
    claim_retry_s: float = 1.0
    """How long a run whose thread is busy (or that another worker holds) waits before trying again."""
    team_wait_s: float = 3.0
    """How long a run whose team is at its concurrency limit waits in the queue before trying again."""
    journal_interval_s: float = 1.0
    """How often the progress of running runs is written to the database."""
    auth_warm_attempts: int = 3
    """Tries of Slack's ``auth.test`` at start before serving (requests retry it later)."""
