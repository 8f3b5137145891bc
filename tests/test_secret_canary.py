"""The canary: secrets planted in team config, installation settings, a Kubernetes object, a log line and
a user's question never appear in logs, Slack (App Home included), audit rows, the database in clear,
or any model request."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from incidentfox.db.models_registry import metadata
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
from tests.slack_world import ADMIN, CHANNEL, USER, World, world

SCENARIOS = Path(__file__).parent.parent / "incidentfox" / "emulators" / "scenarios"
TEAM_CONFIG_SECRET = "canary-team-app-key-7Hq2Zx9Lw4"
TEAM_CONFIG_DSN_PASSWORD = "canary-dsn-pw-3Rt8Yu1Io5"
K8S_OBJECT_SECRET = "canary-k8s-object-9Pk4Mn2Bv7"
LOG_LINE_SECRET = "canary-log-line-5Jd8Sf3Gh1"
QUESTION_SECRET = "canary-question-2Wq6Er4Ty8"


def _canary_scenario() -> dict[str, Any]:
    scenario: dict[str, Any] = yaml.safe_load((SCENARIOS / "crashloop.yaml").read_text())
    container = scenario["pods"][0]["containers"][0]
    container["previous_log"] = (
        f"INFO connecting to postgres://checkout:{LOG_LINE_SECRET}@db.prod:5432/checkout\n"
        f"DEBUG datadog client app_key={TEAM_CONFIG_SECRET}\n"
        "Error: Environment variable DEPLOY_ENV is undefined\n"
    )
    scenario["events"][0]["message"] += f" (probe sent password={K8S_OBJECT_SECRET})"
    return scenario


RCA = {
    "summary": "checkout crashes at start-up because DEPLOY_ENV is not set.",
    "root_cause": "The pods exit with 'Environment variable DEPLOY_ENV is undefined'.",
    "evidence": [
        {"quote": "Error: Environment variable DEPLOY_ENV is undefined", "source": "logs", "url": None}
    ],
    "confidence": {"level": "high", "why": "the fatal log line states the cause"},
    "immediate_actions": ["Set DEPLOY_ENV on the checkout deployment."],
    "follow_up_actions": [],
    "caveats": [],
}


def _script() -> RoutedScript:
    planner = [
        ScriptStep.tool_calls([("ask_kubernetes", {"input": "Why are checkout pods failing?"})]),
        ScriptStep.json(RCA),
    ]
    subagent = [
        ScriptStep.tool_calls(
            [
                ("pod_logs", {"name": "checkout-7d9f8b6c5-x2k4q", "namespace": "prod", "previous": True}),
                ("get_events", {"namespace": "prod"}),
            ]
        ),
        ScriptStep.text("checkout exits: DEPLOY_ENV is undefined"),
    ]
    return RoutedScript().when_tool_offered("ask_kubernetes", planner).when_tool_offered("pod_logs", subagent)


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emulator:
        emulator.responder = _script()
        yield emulator


async def _database_dump(w: World) -> str:
    assert w.fox.runtime is not None
    rows: list[str] = []
    async with w.fox.runtime.sessions() as session:
        for table in metadata.sorted_tables:
            rows.extend(repr(tuple(row)) for row in (await session.execute(select(table))).all())
    return "\n".join(rows)


async def _plant_team_secrets(w: World) -> None:
    assert w.fox.runtime is not None
    config = w.fox.runtime.config
    await config.write_config(
        ADMIN,
        "acme",
        "acme",
        {"slack": {"workspace_ids": [w.slack.team_id], "admin_user_ids": [USER]}},
        operation="patch",
    )
    await config.write_config(
        ADMIN,
        "acme",
        "checkout",
        {
            "integrations": {"datadog": {"app_key": TEAM_CONFIG_SECRET}},
            "warehouse": {"url": f"postgres://report:{TEAM_CONFIG_DSN_PASSWORD}@dw.internal/dw"},
        },
        operation="patch",
    )


async def test_planted_secrets_never_leave_where_they_were_put(
    tmp_path: Path, model: OpenAIEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with world(tmp_path, openai=model) as w:
        w.k8s.load(_canary_scenario())
        await _plant_team_secrets(w)
        question = f"why is checkout failing? our db password={QUESTION_SECRET}"
        mention = w.mention(question)
        assert (await w.post_event(w.slack.make_event_callback(mention, event_id="EvCanary"))).status == 200
        await w.final_update(mention["ts"], "DEPLOY_ENV")
        await w.wait_runs_finished(1)
        home = await w.post_event(w.slack.make_event_callback(w.slack.make_app_home_opened(USER)))
        assert home.status == 200
        await w.slack.wait_for("views.publish", lambda c: c.ok, timeout=10)
        assert w.fox.runtime is not None
        audit = await w.fox.runtime.config.history(ADMIN, "acme", "checkout")
        database = await _database_dump(w)
        installation = w.fox.settings
        planted = {
            "team config": TEAM_CONFIG_SECRET,
            "team config connection string": TEAM_CONFIG_DSN_PASSWORD,
            "team kubernetes token": w.k8s.token,
            "kubernetes object": K8S_OBJECT_SECRET,
            "log line": LOG_LINE_SECRET,
            "question": QUESTION_SECRET,
            "installation model key": model.api_key,
            "installation signing secret": installation.slack_signing_secret.get_secret_value(),  # type: ignore[union-attr]
            "installation admin token": installation.admin_token.get_secret_value(),  # type: ignore[union-attr]
            "installation secret key": installation.incidentfox_secret_key.get_secret_value(),  # type: ignore[union-attr]
        }
        model_bodies = json.dumps([r.body for r in model.requests])
        assert "DEPLOY_ENV" in model_bodies, "the model did see the investigation"
        assert any("pod_logs" in r.tool_names for r in model.requests), "the log line did reach a tool"
        assert "[REDACTED]@db.prod" in model_bodies, "the log line was read, and scrubbed"
        assert "probe sent password=[REDACTED]" in model_bodies, "the Kubernetes event was read, and scrubbed"
        assert "our db password=[REDACTED]" in model_bodies, "the question was sent, scrubbed"
        surfaces = {
            "logs": "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records),
            "slack": json.dumps([c.args for c in w.slack.calls()]),
            "app home": json.dumps([c.args for c in w.slack.calls("views.publish")]),
            "audit": json.dumps(audit, default=str),
            "database": database,
            "model requests": model_bodies,
        }
        leaks = [
            (what, where)
            for what, secret in planted.items()
            for where, text in surfaces.items()
            if secret in text
        ]
        assert leaks == []
        assert w.slack.calls("views.publish"), "App Home was rendered"
        assert CHANNEL in surfaces["slack"]
