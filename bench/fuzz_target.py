"""The server the fuzzers aim at: a whole IncidentFox on 127.0.0.1 with the Slack emulator, one org and
one team that claims a Slack channel, a PagerDuty service and a GitHub repo, and a log handler that
counts what the server logged.

The team has a webhook secret for each source and the installation has the same ones as its
fallbacks (``PAGERDUTY_WEBHOOK_SECRET``, ``GITHUB_WEBHOOK_SECRET``, ``INCIDENTIO_WEBHOOK_SECRET``), so
a delivery signed with them verifies whether or not it routes to the team. With ``investigate`` the
team also points at a Kubernetes emulator, so the triggers that get through start real runs (no
model: analyzers only) instead of being refused as misconfigured.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from incidentfox.agents.incidents.models import IncidentThread
from incidentfox.agents.runs.models import Run
from incidentfox.bot.assembly import IncidentFox
from incidentfox.bot.settings import Settings
from incidentfox.config.permissions import Principal
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.slack import SlackEmulator

SIGNING_SECRET = "fuzz-signing-secret-0123456789abcdef"
ADMIN_TOKEN = "fuzz-admin-" + "a" * 40
CHANNEL = "C0CHECKOUT"
ORG = "acme"
TEAM = "checkout"
PAGERDUTY_SERVICE = "PFUZZSVC"
GITHUB_REPO = "acme/checkout"
PAGERDUTY_SECRET = "fuzz-pagerduty-webhook-secret-0123456789"
GITHUB_SECRET = "fuzz-github-webhook-secret-0123456789"
INCIDENTIO_SECRET = "whsec_" + base64.b64encode(b"fuzz-incidentio-webhook-secret-01").decode()
UNFINISHED = ("queued", "running")


class LogTally(logging.Handler):
    """Counts every record, and those that carry a traceback, with the first few of the latter and
    the distinct kinds of them (exception type and innermost IncidentFox frame)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records = 0
        self.tracebacks = 0
        self.examples: list[str] = []
        self.kinds: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        if record.exc_info or "Traceback" in record.getMessage():
            self.tracebacks += 1
            kind = _kind(record)
            if len(self.examples) < 3 and kind not in self.kinds:
                trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
                self.examples.append(f"{record.name}: {record.getMessage()[:300]} {trace[-1200:]}")
            self.kinds[kind] += 1


def _kind(record: logging.LogRecord) -> str:
    """``ExceptionType at path:line`` of the innermost frame under ``incidentfox/``."""
    if not record.exc_info or record.exc_info[1] is None:
        return f"{record.name}: {record.getMessage()[:80]}"
    error = record.exc_info[1]
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__) if "/incidentfox/" in frame.filename
    ]
    where = f"{frames[-1].filename.split('/incidentfox/')[-1]}:{frames[-1].lineno}" if frames else "?"
    return f"{type(error).__name__} at incidentfox/{where}"


@dataclass
class FuzzTarget:
    fox: IncidentFox
    log: LogTally
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def port(self) -> int:
        assert self.fox.port is not None
        return self.fox.port

    async def runs_by_status(self) -> Counter[str]:
        assert self.fox.runtime is not None
        async with self.fox.runtime.sessions() as session:
            rows = (await session.execute(select(Run.status, func.count()).group_by(Run.status))).all()
        return Counter({str(status): int(count) for status, count in rows})

    async def settle(self, timeout_s: float) -> bool:
        """Wait until no run is queued or running and no incident thread owes Slack a line or an
        edit; whether that happened within ``timeout_s`` (what the fuzzing started is then logged)."""
        assert self.fox.runtime is not None
        owed = select(func.count()).where(
            IncidentThread.next_at.is_not(None), IncidentThread.root_ts.is_not(None)
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            runs = await self.runs_by_status()
            async with self.fox.runtime.sessions() as session:
                threads_owed = int(await session.scalar(owed) or 0)
            if not any(runs[status] for status in UNFINISHED) and not threads_owed:
                return True
            await asyncio.sleep(0.5)
        return False


def team_config(k8s: KubernetesEmulator | None) -> dict[str, Any]:
    """The fuzz team's own config: its claims, its webhook secrets and, with ``k8s``, a cluster."""
    integrations: dict[str, Any] = {
        "pagerduty": {"webhook_secret": PAGERDUTY_SECRET},
        "github": {"webhook_secret": GITHUB_SECRET},
        "incidentio": {"webhook_secret": INCIDENTIO_SECRET},
    }
    if k8s is not None:
        integrations["kubernetes"] = {"api_url": k8s.api_url, "token": k8s.token, "namespace": "prod"}
    return {
        "routing": {
            "slack_channel_ids": [CHANNEL],
            "pagerduty_service_ids": [PAGERDUTY_SERVICE],
            "github_repos": [GITHUB_REPO],
        },
        "integrations": integrations,
    }


@asynccontextmanager
async def fuzz_target(*, investigate: bool = False) -> AsyncIterator[FuzzTarget]:
    tally = LogTally()
    root = logging.getLogger()
    level = root.level
    root.addHandler(tally)
    root.setLevel(logging.INFO)
    try:
        with tempfile.TemporaryDirectory(prefix="ifx-fuzz-") as tmp:
            async with contextlib.AsyncExitStack() as stack:
                slack = await stack.enter_async_context(SlackEmulator())
                k8s = (
                    await stack.enter_async_context(KubernetesEmulator("crashloop")) if investigate else None
                )
                fox = await _started(Path(tmp), slack, k8s)
                try:
                    yield FuzzTarget(fox=fox, log=tally)
                finally:
                    await fox.stop()
    finally:
        root.removeHandler(tally)
        root.setLevel(level)


async def _started(tmp: Path, slack: SlackEmulator, k8s: KubernetesEmulator | None) -> IncidentFox:
    """IncidentFox on ``slack`` with the org and the team set up."""
    values: dict[str, Any] = dict(
        host="127.0.0.1",
        port=0,
        database_url=f"sqlite+aiosqlite:///{tmp / 'fuzz.db'}",
        redis_url=None,
        admin_token=ADMIN_TOKEN,
        incidentfox_secret_key="fuzz-secret-key-" + "k" * 32,
        INCIDENTFOX_DATA_DIR=tmp,
        slack_bot_token=slack.bot_token,
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token=None,
        slack_api_url=slack.api_url,
        openai_api_key=None,
        anthropic_api_key=None,
        kubeconfig=None,
        pagerduty_webhook_secret=PAGERDUTY_SECRET,
        github_webhook_secret=GITHUB_SECRET,
        incidentio_webhook_secret=INCIDENTIO_SECRET,
    )
    if k8s is not None:
        values["egress_allow_private"] = True  # the Kubernetes emulator listens on 127.0.0.1
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    fox = IncidentFox(settings, role="all", update_interval=0.2)
    await fox.start()
    try:
        assert fox.runtime is not None
        config = fox.runtime.config
        admin = Principal(kind="admin")
        async with config.sessions.begin() as session:
            await config.create_org(session, org_id=ORG, name="Acme", actor="fuzz")
        await config.create_node(admin, ORG, {"node_id": TEAM, "parent_id": ORG, "kind": "team"})
        await config.write_config(
            admin, ORG, ORG, {"slack": {"workspace_ids": [slack.team_id]}}, operation="put"
        )
        await config.write_config(admin, ORG, TEAM, team_config(k8s), operation="put")
    except BaseException:
        await fox.stop()
        raise
    return fox
