"""Which Slack threads take replies without an @mention: those with an SRE agent session.

The thread is the session (issue 10): once a session lives in a thread, the people in it talk to the
agent as they would to a colleague. A team that wants the bot to answer only when mentioned sets
``auto_listen: false``. The check runs in the listener before the ack, so it is one indexed query
for the session and the team's cached effective config.
"""

from __future__ import annotations

from incidentfox.config.service import ConfigService
from incidentfox.sandboxes.store import SandboxStore


class SreThreadListener:
    def __init__(self, store: SandboxStore, config: ConfigService) -> None:
        self._store = store
        self._config = config

    async def listens_to(self, thread_key: str) -> bool:
        """Whether a reply in the thread without a mention goes to its SRE agent session."""
        row = await self._store.for_thread(thread_key)
        if row is None:
            return False
        config = await self._config.effective_config_shared(row.org_id, row.team_node_id)
        return config.get("auto_listen", True) is not False
