"""Where a run is queued: the shared stream, or its team's own for ``tenancy.mode: dedicated``.

Every path that queues a run uses this, so a dedicated team's run never lands where shared workers
read: the pipeline (from the config it already loaded) and the recovery paths (resumed, stranded and
orphaned runs, from the team's cached config).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from incidentfox.agents.queue import SHARED_STREAM, QueuedRun, team_stream


class TeamConfigs(Protocol):
    async def effective_config_shared(self, org_id: str, node_id: str) -> Mapping[str, Any]: ...


def tenancy_mode(config: Mapping[str, Any]) -> str:
    """The team's ``tenancy.mode``: ``dedicated`` runs go to the team's own stream, others are shared."""
    tenancy = config.get("tenancy")
    mode = tenancy.get("mode") if isinstance(tenancy, Mapping) else None
    return "dedicated" if mode == "dedicated" else "shared"


def queue_entry(
    run_id: str, thread_key: str | None, org_id: str, team_node_id: str, config: Mapping[str, Any]
) -> QueuedRun:
    stream = team_stream(org_id, team_node_id) if tenancy_mode(config) == "dedicated" else SHARED_STREAM
    return QueuedRun(run_id, thread_key, stream=stream, team=f"{org_id}/{team_node_id}")


class QueueEntries:
    """Queue entries for runs read back from the database; the team's config decides the stream."""

    def __init__(self, configs: TeamConfigs | None) -> None:
        """``configs`` ``None``: one process serves every team (no Redis), so everything is shared."""
        self._configs = configs

    async def for_run(self, run_id: str, thread_key: str | None, org_id: str, team_node_id: str) -> QueuedRun:
        """Raises whatever loading the config raises: queueing a dedicated team's run on the shared
        stream would hand it to workers it must never reach, so the caller tries again later."""
        if self._configs is None:
            return queue_entry(run_id, thread_key, org_id, team_node_id, {})
        config = await self._configs.effective_config_shared(org_id, team_node_id)
        return queue_entry(run_id, thread_key, org_id, team_node_id, config)
