"""LLM mode for a failed CI run: the analyzer's findings (the failing step and its decisive log line)
ground the planner, which gets a github sub-agent with the github toolset, and the planner's RCA is
what goes on the pull request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
from tests.github_world import DECISIVE, REPO, eventually, github_world

RCA = {
    "summary": "test_charge fails because PR #1 lowered the payment timeout to 1 s.",
    "root_cause": "deploy/values.yaml now sets payment.timeout_s: 1, so /charge answers 503 in the test.",
    "evidence": [{"quote": DECISIVE, "source": "job 'test (3.11)', step 'Run tests'", "url": None}],
    "confidence": {"level": "high", "why": "the failing assertion follows from the diff"},
    "immediate_actions": ["Restore payment.timeout_s to 5 in deploy/values.yaml."],
    "follow_up_actions": [],
    "caveats": [],
}


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emulator:
        yield emulator


async def test_the_planner_is_grounded_by_the_ci_findings_and_asks_the_github_sub_agent(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    async with github_world(tmp_path, kubernetes=False, openai=model) as g:
        run = g.failing_run()
        planner = [
            ScriptStep.tool_calls(
                [("ask_github", {"input": f"Read run {run.id} of {REPO} and PR #1's diff."})]
            ),
            ScriptStep.json(RCA),
        ]
        subagent = [
            ScriptStep.tool_calls([("pull_request", {"repo": REPO, "number": g.pr.number})]),
            ScriptStep.text("PR #1 changes deploy/values.yaml: timeout_s 5 -> 1."),
        ]
        model.responder = (
            RoutedScript()
            .when_tool_offered("ask_github", planner)
            .when_tool_offered("pull_request", subagent)
        )
        assert (await g.send("workflow_run", g.gh.workflow_run_event(run))).status == 202

        async def commented() -> bool:
            return any("lowered the payment timeout to 1 s" in c.body for c in g.bot_comments())

        await eventually(commented, "the planner's RCA on the pull request")
        first = next(r for r in model.requests if "ask_github" in r.tool_names)
        assert DECISIVE in first.system_prompt, "the analyzer's findings ground the planner"
        assert "Run tests" in first.system_prompt
        assert "ask_kubernetes" not in first.tool_names, (
            "a team with only GitHub gets only the github sub-agent"
        )
        assert g.gh.calls_to("pulls.list_files"), "the github sub-agent used the github toolset"
