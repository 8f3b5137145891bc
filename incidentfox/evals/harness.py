"""Run scenarios through the real pipeline: IncidentFox served on loopback, a trigger over HTTP, the
worker's run, and the RCA it stored.

One IncidentFox (its HTTP server, its in-process worker and a SQLite database in a scratch directory)
serves a whole suite, talking to the Slack emulator as to Slack. Each scenario gets its own team in the
``evals`` org, its own channel, and its own emulators loaded from its state files; its trigger is what
an SRE's world sends: an ``app_mention`` signed as Slack signs it, a PagerDuty V3 webhook for a page, a
GitHub ``workflow_run`` webhook for a failed CI run. Scenarios run concurrently (``concurrency``).

Without a model the worker's no-LLM analyzers answer; with one (``ModelConfig``), the planner does,
grounded by them, exactly as in production.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select

from incidentfox.agents.runs.models import Run
from incidentfox.bot.assembly import IncidentFox
from incidentfox.bot.settings import Settings
from incidentfox.config.permissions import Principal
from incidentfox.emulators.slack import SlackEmulator
from incidentfox.evals.backends import WEBHOOK_SECRET, Backends, scenario_backends
from incidentfox.evals.scenario import Scenario
from incidentfox.evals.scoring import CaseResult, Judge, Score, fact_checks, rca_from_json

log = logging.getLogger(__name__)
ORG = "evals"
SIGNING_SECRET = "eval-signing-secret-0123456789abcdef"
REQUESTER = "U0ONCALL"
ADMIN = Principal(kind="admin")
DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """An OpenAI-compatible model for the planner (and the judge)."""

    name: str
    api_key: str
    base_url: str | None = None


def _settings(workdir: Path, slack: SlackEmulator, model: ModelConfig | None) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{workdir}/evals.db",
        "INCIDENTFOX_DATA_DIR": workdir,
        "incidentfox_secret_key": "eval-secret-key-" + "e" * 32,
        "egress_allow_private": True,
        "local_workspace": False,
        "incidentfox_demo": False,
        "redis_url": None,
        "worker_processes": 0,
        "admin_token": None,
        "slack_bot_token": slack.bot_token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_app_token": None,
        "slack_api_url": slack.api_url,
        "anthropic_api_key": None,
        "kubeconfig": None,
        "port": 0,
        "openai_api_key": model.api_key if model else None,
        "openai_base_url": model.base_url if model else None,
    }
    if model is not None:
        values["incidentfox_model"] = model.name
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def team_id(index: int, scenario: Scenario) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", scenario.name.lower()).strip("-")
    return f"s{index:03d}-{slug}"[:63].rstrip("-")


class EvalHarness:
    """One IncidentFox serving a suite; ``run`` scores every scenario in one mode."""

    def __init__(
        self,
        workdir: Path,
        *,
        model: ModelConfig | None = None,
        judge: Judge | None = None,
        concurrency: int = 8,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        on_result: Callable[[CaseResult], None] | None = None,
        mode: str | None = None,
    ) -> None:
        """``on_result`` is called as each scenario finishes (progress for a long run); ``mode`` names
        the results' column (``no-llm`` or ``model`` by default, ``scripted-model`` for the scripted
        responder)."""
        self.workdir = workdir
        self.on_result = on_result
        self.model = model
        self.judge = judge
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.mode = mode or ("model" if model else "no-llm")
        self._config_lock = asyncio.Lock()

    async def run(self, scenarios: Sequence[Scenario]) -> list[CaseResult]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        async with SlackEmulator() as slack:
            fox = IncidentFox(_settings(self.workdir, slack, self.model), update_interval=0.5)
            await fox.start()
            try:
                assert fox.runtime is not None
                config = fox.runtime.config
                async with config.sessions.begin() as session:
                    await config.create_org(session, org_id=ORG, name="Evals", actor="eval")
                ownership = {"slack": {"workspace_ids": [slack.team_id]}}
                await config.write_config(ADMIN, ORG, ORG, ownership, operation="put")
                gate = asyncio.Semaphore(self.concurrency)
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

                    async def one(index: int, scenario: Scenario) -> CaseResult:
                        async with gate:
                            result = await self._case(fox, slack, http, index, scenario)
                        if self.on_result is not None:
                            self.on_result(result)
                        return result

                    return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(scenarios))))
            finally:
                await fox.stop()

    async def _case(
        self,
        fox: IncidentFox,
        slack: SlackEmulator,
        http: aiohttp.ClientSession,
        index: int,
        scenario: Scenario,
    ) -> CaseResult:
        started = time.monotonic()
        team = team_id(index, scenario)
        channel = f"C0EVAL{index:04d}"
        slack.add_channel(channel, team)
        try:
            async with scenario_backends(scenario, index) as backends:
                await self._create_team(fox, team, channel, scenario, backends)
                await self._trigger(fox, slack, http, scenario, channel, backends)
                run = await self._finished_run(fox, team)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = f"the run did not finish ({type(exc).__name__}: {exc})"
            return self._unfinished(scenario, error, started)
        except Exception as exc:
            # One scenario whose setup breaks (an emulator, a config write) is reported as failed;
            # the rest of the suite still runs.
            log.exception("eval scenario=%s setup failed", scenario.name)
            error = f"the scenario could not be set up ({type(exc).__name__}: {exc})"
            return self._unfinished(scenario, error, started)
        question = run.question or scenario.trigger.text
        return await self._scored(scenario, run.rca, run.error, question, started)

    async def _scored(
        self, scenario: Scenario, rca_json: Any, error: str | None, question: str, started: float
    ) -> CaseResult:
        rca = rca_from_json(rca_json)
        checks = fact_checks(scenario.expect, rca, error)
        verdict = await self.judge.grade(scenario, rca, question) if self.judge else None
        return CaseResult(
            scenario=scenario,
            mode=self.mode,
            score=Score(checks=checks, judge=verdict),
            duration_s=time.monotonic() - started,
            rca=rca,
            error=error,
        )

    def _unfinished(self, scenario: Scenario, error: str, started: float) -> CaseResult:
        return CaseResult(
            scenario=scenario,
            mode=self.mode,
            score=Score(checks=fact_checks(scenario.expect, None, error)),
            duration_s=time.monotonic() - started,
            error=error,
        )

    async def _create_team(
        self, fox: IncidentFox, team: str, channel: str, scenario: Scenario, backends: Backends
    ) -> None:
        assert fox.runtime is not None
        config = fox.runtime.config
        document: dict[str, Any] = {
            "integrations": backends.integrations,
            "routing": {"slack_channel_ids": [channel], **backends.routing},
        }
        if scenario.mocks:
            document["mcp_servers"] = {
                "fixture": {
                    "command": sys.executable,
                    "args": ["-m", "incidentfox.evals.holmes_tools", str(scenario.directory)],
                }
            }
            document["agents"] = {"planner": {"mcp_servers": ["fixture"]}}
        async with self._config_lock:
            await config.create_node(ADMIN, ORG, {"node_id": team, "parent_id": ORG, "kind": "team"})
            await config.write_config(ADMIN, ORG, team, document, operation="put")

    async def _trigger(
        self,
        fox: IncidentFox,
        slack: SlackEmulator,
        http: aiohttp.ClientSession,
        scenario: Scenario,
        channel: str,
        backends: Backends,
    ) -> None:
        base = f"http://127.0.0.1:{fox.port}"
        if scenario.trigger.kind == "page":
            assert backends.pagerduty is not None and backends.incident_id is not None
            delivery = await backends.pagerduty.send_webhook(
                f"{base}/webhooks/pagerduty",
                "incident.triggered",
                backends.incident_id,
                secret=WEBHOOK_SECRET,
            )
            _accepted(delivery.status, "the PagerDuty webhook")
            return
        if scenario.trigger.kind == "ci":
            assert backends.github is not None and backends.workflow_run is not None
            payload = backends.github.workflow_run_event(backends.workflow_run)
            sent = await backends.github.send_webhook(
                f"{base}/webhooks/github", "workflow_run", payload, secret=WEBHOOK_SECRET
            )
            _accepted(sent.status, "the GitHub webhook")
            return
        mention = slack.make_app_mention(channel, REQUESTER, scenario.trigger.text)
        body = json.dumps(slack.make_event_callback(mention))
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": str(
                SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
            ),
        }
        async with http.post(f"{base}/slack/events", data=body, headers=headers) as response:
            _accepted(response.status, "the Slack event")

    async def _finished_run(self, fox: IncidentFox, team: str) -> Run:
        assert fox.runtime is not None
        deadline = time.monotonic() + self.timeout_s
        while True:
            async with fox.runtime.sessions() as session:
                query = select(Run).where(
                    Run.org_id == ORG, Run.team_node_id == team, Run.status.in_(("succeeded", "failed"))
                )
                run = (await session.scalars(query)).first()
            if run is not None:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"no finished run within {self.timeout_s:.0f} s")
            await asyncio.sleep(0.1)


def _accepted(status: int, what: str) -> None:
    if status >= 300:
        raise OSError(f"{what} was answered {status}")
