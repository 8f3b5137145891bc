"""Canaries planted in a tool's output, small and kept over budget alike, never reach the model: a real
planner turn against the OpenAI emulator, whose every request body is searched for them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Model, OpenAIChatCompletionsModel, set_tracing_disabled
from openai import AsyncOpenAI
from pydantic import BaseModel

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent, ToolEnd
from incidentfox.agents.planner import SubagentSpec, build_planner
from incidentfox.agents.runner import run_investigation
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.function_tools import toolset_function_tools
from incidentfox.agents.toolsets.outputs import output_function_tools
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep

API_KEY = "sk-emulator-canary-test-key-0001"
TEAM_VALUE = "canary-team-value-8Kd2"
CANARIES = {
    "slack": "xoxb-4242-4242-CanaryQz7Lw9Hn2",
    "github": "ghp_Canary0Qz7Lw9Hn2Xc4Vb6Nm8As1Df3Gh5J",
    "aws key id": "AKIACANARY7QZ4LW9HN2",
    "aws secret": "CanaryWJalrXUtnFEMIK7MDENG",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiJ5ZXMifQ.Q2FuYXJ5U2lnbmF0dXJlMDEyMzQ1Njc4OQ",
    "pem body": "MIIEvCanaryPemBodyQIBADANBgkqhkiG9w0BAQEFAASC",
    "connection string": "Canary-pw-8841",
    "bearer": "CanaryBearer0123456789xyz",
    "random token": "Tq8vZ2mK9xLw4Rb7Hn3Jd6Fs1Gy5Pc0Qe8Ua2Wi",
    "team config": TEAM_VALUE,
}
LEAKY_LINES = [
    f"slack client ready with {CANARIES['slack']}",
    f"git remote uses {CANARIES['github']}",
    f"aws: access key {CANARIES['aws key id']} aws_secret_access_key={CANARIES['aws secret']}",
    f"session {CANARIES['jwt']}",
    f"-----BEGIN RSA PRIVATE KEY-----\n{CANARIES['pem body']}\n-----END RSA PRIVATE KEY-----",
    f"connecting to postgres://checkout:{CANARIES['connection string']}@db.prod:5432/checkout",
    f"curl -H 'Authorization: Bearer {CANARIES['bearer']}' https://api.internal",
    f"upload signature {CANARIES['random token']} accepted",
    f"vendor client configured with {TEAM_VALUE}",
]


class NoParams(BaseModel):
    pass


async def _connect(config: object) -> object:
    return object()


async def _small(client: object, params: NoParams) -> ToolResult:
    return ToolResult.ok({"log": "\n".join(LEAKY_LINES)}, invocation="vault show")


async def _big(client: object, params: NoParams) -> ToolResult:
    lines = [f"INFO request {i} ok" for i in range(20_000)]
    lines[15_000:15_000] = LEAKY_LINES
    return ToolResult.ok("\n".join(lines), invocation="vault logs")


LEAKY = Toolset(
    name="leaky",
    description="",
    instructions="You read the vault's logs.",
    tools=(
        Tool("vault_config", "Small output with secrets in it.", NoParams, _small),  # type: ignore[arg-type]
        Tool("vault_logs", "Large output with secrets deep inside.", NoParams, _big),  # type: ignore[arg-type]
    ),
    connect=_connect,
)
RCA = {
    "summary": "The vault logs show the clients starting.",
    "root_cause": "unknown",
    "evidence": [],
    "confidence": {"level": "low", "why": "nothing failed"},
    "immediate_actions": [],
    "follow_up_actions": [],
    "caveats": [],
}


def _script() -> RoutedScript:
    planner = [
        ScriptStep.tool_calls([("ask_vault", {"input": "What do the vault logs say?"})]),
        ScriptStep.tool_calls([("read_output", {"ref": "out-1", "offset": 15_000, "limit": 20})]),
        ScriptStep.json(RCA),
    ]
    vault = [
        ScriptStep.tool_calls([("vault_config", {}), ("vault_logs", {})]),
        ScriptStep.tool_calls(
            [
                (
                    "search_output",
                    {"ref": "out-1", "pattern": "slack|git remote|aws|session|connecting|bearer|sign"},
                ),
                ("read_output", {"ref": "out-1", "offset": 14_998, "limit": 20}),
            ]
        ),
        ScriptStep.text("The vault's clients started; the secrets in its logs are redacted."),
    ]
    return RoutedScript().when_tool_offered("ask_vault", planner).when_tool_offered("vault_logs", vault)


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    set_tracing_disabled(True)
    async with OpenAIEmulator(api_key=API_KEY) as emulator:
        emulator.responder = _script()
        yield emulator


def _model(emulator: OpenAIEmulator, clients: list[AsyncOpenAI]) -> Model:
    client = AsyncOpenAI(base_url=emulator.base_url, api_key=API_KEY, max_retries=0, timeout=10.0)
    clients.append(client)
    return OpenAIChatCompletionsModel(model="emulator-model", openai_client=client)


async def test_canaries_in_tool_output_never_reach_the_model(model: OpenAIEmulator) -> None:
    events: list[ProgressEvent] = []
    config: dict[str, Any] = {"integrations": {"leaky": {"api_key": TEAM_VALUE}}}
    context = InvestigationContext(
        run_id="run-canary", org_id="acme", team_node_id="sre", config=config, emit=events.append
    )
    vault = SubagentSpec(
        name="vault",
        description="Reads the vault.",
        instructions=LEAKY.instructions,
        tools=[*toolset_function_tools(LEAKY, agent="vault"), *output_function_tools()],
    )
    clients: list[AsyncOpenAI] = []
    try:
        outcome = await run_investigation(
            planner=build_planner(model=_model(model, clients), subagents=[vault]),
            context=context,
            question="What do the vault logs say?",
            history=[],
            timeout_s=20.0,
            max_turns=6,
        )
    finally:
        for client in clients:
            await client.close()

    assert outcome.error is None and outcome.rca is not None
    bodies = json.dumps([request.body for request in model.requests])
    leaked = [name for name, canary in CANARIES.items() if canary in bodies]
    assert leaked == []
    assert bodies.count("[REDACTED]") >= 3 * len(LEAKY_LINES), "the model saw the lines, scrubbed"
    assert "slack client ready with [REDACTED]" in bodies
    planner_first = model.requests[0]
    assert planner_first.tool_names == ["ask_vault", "search_output", "read_output"]
    sub_first, sub_second, sub_last = (r for r in model.requests if "vault_logs" in r.tool_names)
    assert sub_first.tool_names == ["vault_config", "vault_logs", "search_output", "read_output"]
    assert '"kept_as":"out-1"' in sub_second.text(), "the large output was kept and summarised"
    assert "15000: slack client ready with [REDACTED]" in sub_last.text(), "found and read, scrubbed"

    ends = {e.tool: e for e in events if isinstance(e, ToolEnd)}
    assert ends["vault_config"].summary.endswith("· 10 secrets scrubbed from the output")
    assert ends["vault_logs"].summary.endswith("· kept as out-1 · 10 secrets scrubbed from the output")
    assert ends["search_output"].status == "ok" and ends["read_output"].status == "ok"
