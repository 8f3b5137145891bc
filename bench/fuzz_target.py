"""The server the fuzzers aim at: a whole IncidentFox on 127.0.0.1 with the Slack emulator, one org and
one team that claims a channel, and a log handler that counts what the server logged."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from incidentfox.bot.assembly import IncidentFox
from incidentfox.bot.settings import Settings
from incidentfox.config.permissions import Principal
from incidentfox.emulators.slack import SlackEmulator

SIGNING_SECRET = "fuzz-signing-secret-0123456789abcdef"
ADMIN_TOKEN = "fuzz-admin-" + "a" * 40
CHANNEL = "C0CHECKOUT"


class LogTally(logging.Handler):
    """Counts every record, and those that carry a traceback, with the first few of the latter."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records = 0
        self.tracebacks = 0
        self.examples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        if record.exc_info or "Traceback" in record.getMessage():
            self.tracebacks += 1
            if len(self.examples) < 3:
                trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
                self.examples.append(f"{record.name}: {record.getMessage()[:300]} {trace[-1200:]}")


@dataclass
class FuzzTarget:
    fox: IncidentFox
    log: LogTally
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def port(self) -> int:
        assert self.fox.port is not None
        return self.fox.port


@asynccontextmanager
async def fuzz_target() -> AsyncIterator[FuzzTarget]:
    tally = LogTally()
    root = logging.getLogger()
    root.addHandler(tally)
    root.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="ifx-fuzz-") as tmp:
        async with SlackEmulator() as slack:
            values: dict[str, Any] = dict(
                host="127.0.0.1",
                port=0,
                database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'fuzz.db'}",
                redis_url=None,
                admin_token=ADMIN_TOKEN,
                incidentfox_secret_key="fuzz-secret-key-" + "k" * 32,
                INCIDENTFOX_DATA_DIR=Path(tmp),
                slack_bot_token=slack.bot_token,
                slack_signing_secret=SIGNING_SECRET,
                slack_app_token=None,
                slack_api_url=slack.api_url,
                openai_api_key=None,
                anthropic_api_key=None,
                kubeconfig=None,
            )
            settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
            fox = IncidentFox(settings, role="all", update_interval=0.2)
            await fox.start()
            try:
                assert fox.runtime is not None
                config = fox.runtime.config
                admin = Principal(kind="admin")
                async with config.sessions.begin() as session:
                    await config.create_org(session, org_id="acme", name="Acme", actor="fuzz")
                await config.create_node(
                    admin, "acme", {"node_id": "checkout", "parent_id": "acme", "kind": "team"}
                )
                await config.write_config(
                    admin, "acme", "acme", {"slack": {"workspace_ids": [slack.team_id]}}, operation="put"
                )
                await config.write_config(
                    admin, "acme", "checkout", {"routing": {"slack_channel_ids": [CHANNEL]}}, operation="put"
                )
                yield FuzzTarget(fox=fox, log=tally)
            finally:
                await fox.stop()
                root.removeHandler(tally)
