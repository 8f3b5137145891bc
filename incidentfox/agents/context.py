"""The per-run context handed to every agent and tool (openai-agents passes it down to sub-agents)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from incidentfox.agents.approvals.gate import ApprovalGate, ApprovalsUnavailable
from incidentfox.agents.events import ProgressEvent
from incidentfox.agents.scratch_outputs import RunScratch


def _nobody() -> str | None:
    return None


@dataclass(slots=True)
class InvestigationContext:
    """Everything a run needs that is not the conversation itself.

    ``config`` is the team's effective config with secrets decrypted: it is for the run engine only
    and must never be rendered, logged or put into a prompt. ``emit`` publishes a progress event to
    the renderer; tools call it for their own start/end so that calls made inside sub-agents are
    visible too. ``clients`` caches each toolset's connected client for the run. ``approvals`` is
    what a write tool call goes through before it may run (by default nobody can approve, so write
    actions never run). ``deadline``, when the runner shares its deadline, is pushed back while a
    write action waits for a person. ``origin`` is where a webhook-triggered run came from (the
    failed CI run, the pull request a question was asked on; ``Trigger.origin``), empty for a run
    asked in Slack: the analyzers look there first. ``kind`` is the run's trigger kind (``debug``
    goes to the SRE agent); ``thread_key``, ``channel_id``, ``thread_ts`` and ``requester`` say whose
    thread the run answers in; ``interrupted_by`` names who pressed Interrupt once the run is being
    interrupted (``None`` before). ``scratch`` is the run's scratch space for over-budget tool outputs
    and its memory of answered tool calls (``scratch_outputs``).
    """

    run_id: str
    org_id: str
    team_node_id: str
    config: Mapping[str, Any]
    emit: Callable[[ProgressEvent], None]
    clients: dict[str, Any] = field(default_factory=dict)
    findings: list[Any] = field(default_factory=list)
    approvals: ApprovalGate = field(default_factory=ApprovalsUnavailable)
    deadline: asyncio.Timeout | None = None
    origin: Mapping[str, Any] = field(default_factory=dict)
    kind: str = ""
    thread_key: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    requester: str = ""
    interrupted_by: Callable[[], str | None] = field(default=_nobody)
    scratch: RunScratch = field(default_factory=RunScratch)
