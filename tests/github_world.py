"""A world for GitHub webhook tests: IncidentFox with the Slack and Kubernetes emulators (``slack_world``)
and the GitHub emulator, one team claiming ``acme/shop`` and a channel, and a pull request whose CI
fails in its "Run tests" step with an assertion the analysis must quote."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select

from incidentfox.agents.incidents.models import IncidentThread
from incidentfox.agents.incidents.notifier import NotifierSchedule
from incidentfox.agents.runs.models import Delivery, Run
from incidentfox.emulators.github import GitHubEmulator
from incidentfox.emulators.github_actions import JobSpec, StepSpec
from incidentfox.emulators.github_models import ChangedFile, IssueComment, PullRequest, WorkflowRun
from incidentfox.emulators.github_webhooks import WebhookDelivery
from incidentfox.emulators.openai_api import OpenAIEmulator
from incidentfox.emulators.slack.store import RecordedCall
from tests.slack_world import ADMIN, CHANNEL, World, world

T = TypeVar("T")
SECRET = "gh-webhook-secret-for-shop"
REPO = "acme/shop"
DECISIVE = "E       AssertionError: expected status 200, got 503 from /charge"
OLD = "payment:\n  timeout_s: 5\n"
NEW = "payment:\n  timeout_s: 1\n"


@dataclass
class GitHubWorld:
    w: World
    gh: GitHubEmulator
    pr: PullRequest

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.w.fox.port}/webhooks/github"

    async def send(self, event: str, payload: dict[str, Any], **kwargs: Any) -> WebhookDelivery:
        return await self.gh.send_webhook(self.url, event, payload, **{"secret": SECRET, **kwargs})

    def failing_run(self, *, step: str = "Run tests", output: list[str] | None = None) -> WorkflowRun:
        """A CI run of the pull request that fails in ``step`` with pytest's assertion (or ``output``)."""
        lines = output or [
            "collected 42 items",
            "tests/test_checkout.py .........F",
            "    def test_charge(client):",
            ">       assert response.status_code == 200",
            DECISIVE,
            "FAILED tests/test_checkout.py::test_charge - AssertionError: expected status 200, got 503",
        ]
        steps = [StepSpec("Checkout"), StepSpec(step, "failure", output=lines, command="python -m pytest -q")]
        return self.gh.add_workflow_run(
            REPO, jobs=[JobSpec("test (3.11)", steps)], pull_requests=[self.pr.number]
        )

    def comments(self, number: int | None = None) -> list[IssueComment]:
        repo = self.gh.repo(REPO)
        assert repo is not None
        return [c for c in repo.comments.values() if c.number == (number or self.pr.number)]

    def bot_comments(self) -> list[IssueComment]:
        return [c for c in self.comments() if c.user.login == self.gh.viewer.login]

    async def bot_comment(self, needle: str) -> IssueComment:
        """IncidentFox's comment on the pull request containing ``needle``, once it is there."""

        async def posted() -> IssueComment | None:
            return next((c for c in self.bot_comments() if needle in c.body), None)

        return await eventually(posted, f"IncidentFox's comment containing {needle!r}")

    async def root_message(self, needle: str, timeout: float = 10.0) -> RecordedCall:
        return await self.w.slack.wait_for(
            "chat.postMessage",
            lambda c: (
                c.ok
                and c.args.get("channel") == CHANNEL
                and not c.args.get("thread_ts")
                and needle in str(c.args.get("text"))
            ),
            timeout=timeout,
        )

    def roots(self) -> list[RecordedCall]:
        return [
            c
            for c in self.w.slack.calls("chat.postMessage")
            if c.ok and c.args.get("channel") == CHANNEL and not c.args.get("thread_ts")
        ]

    async def wait_runs(self, count: int) -> list[Run]:
        """The runs once ``count`` of them have finished."""
        return list(await self.w.wait_runs_finished(count, timeout=30))

    async def runs(self) -> list[Run]:
        assert self.w.fox.runtime is not None
        async with self.w.fox.runtime.sessions() as session:
            return list((await session.scalars(select(Run).order_by(Run.created_at))).all())

    async def stored(self) -> tuple[int, int, int]:
        """How many runs, deliveries and incident rows are stored."""
        assert self.w.fox.runtime is not None
        async with self.w.fox.runtime.sessions() as session:
            counts = [
                await session.scalar(select(func.count()).select_from(table))
                for table in (Run, Delivery, IncidentThread)
            ]
        return counts[0] or 0, counts[1] or 0, counts[2] or 0


def team_config(gh: GitHubEmulator, w: World, *, kubernetes: bool = True, **github: Any) -> dict[str, Any]:
    integrations: dict[str, Any] = {
        "github": {"token": gh.token, "api_url": gh.api_url, "webhook_secret": SECRET, **github}
    }
    if kubernetes:
        integrations["kubernetes"] = {"api_url": w.k8s.api_url, "token": w.k8s.token, "namespace": "prod"}
    return {
        "integrations": integrations,
        "routing": {"slack_channel_ids": [CHANNEL], "github_repos": [REPO]},
    }


@asynccontextmanager
async def github_world(
    tmp_path: Path,
    *,
    kubernetes: bool = True,
    openai: OpenAIEmulator | None = None,
    database_url: str | None = None,
    **github: Any,
) -> AsyncIterator[GitHubWorld]:
    async with (
        GitHubEmulator() as gh,
        world(tmp_path, team_config={}, openai=openai, database_url=database_url) as w,
    ):
        gh.add_repo(REPO, files={"deploy/values.yaml": OLD})
        pr = gh.add_pull_request(
            REPO,
            "Lower the payment timeout",
            head="lower-timeout",
            author="sam",
            files=[ChangedFile.between("deploy/values.yaml", OLD, NEW)],
        )
        assert w.fox.runtime is not None
        config = team_config(gh, w, kubernetes=kubernetes, **github)
        await w.fox.runtime.config.write_config(ADMIN, "acme", "checkout", config, operation="put")
        fast_notifier(w)
        yield GitHubWorld(w, gh, pr)


def fast_notifier(w: World) -> None:
    assert w.fox.incident_notifier is not None
    w.fox.incident_notifier.poll_s = 0.1
    w.fox.incident_notifier.schedule = NotifierSchedule(base_s=0.05, cap_s=0.2, note_attempts=3)


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 20.0) -> T:
    for _ in range(int(timeout / 0.05)):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
