"""The SRE agent in the local workspace, as a user with an Anthropic key would meet it: ``/incidentfox
debug`` in the demo channel clones the demo repo into a bubblewrap sandbox, the agent (the real bundled
CLI, its model emulated) runs a command there, and its Markdown answer shows rendered in the thread;
a reply in the thread without a mention continues the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from incidentfox.emulators.anthropic_api import AnthropicEmulator, RoutedScript, ScriptStep
from tests.browser_page import (
    bot_messages,
    by_testid,
    chromium,
    on_its_own_loop,
    open_channel,
    open_page,
    screenshot,
    served,
    wait_for,
)
from tests.test_sandbox_agent_cli import _require_bubblewrap

pytestmark = pytest.mark.browser

ANSWER = (
    "## Why the deploy fails\n"
    "**payments-api** reads `PSP_API_KEY` at start, and the deployment no longer sets it.\n\n"
    "- Restore the env var from the `payments-psp` secret\n"
    "- Or roll back the last merged PR"
)


@pytest.fixture
def claude() -> Iterator[AnthropicEmulator]:
    """The Anthropic Messages API, scripted, on its own loop (the server under test is a subprocess)."""
    emulator = AnthropicEmulator()
    emulator.responder = (
        RoutedScript()
        .when_tool_result([ScriptStep.text(ANSWER)])
        .when_user_says("and the rollback?", [ScriptStep.text("Roll back with `kubectl rollout undo`.")])
        .when_user_says(
            "payments-api",
            [ScriptStep.tool_use("Bash", {"command": "grep -rn PSP payments-api"}, text="Reading the repo.")],
        )
    )
    with on_its_own_loop(emulator) as served_model:
        yield served_model


def test_debug_in_the_demo_channel_answers_in_the_thread(claude: AnthropicEmulator, tmp_path: Path) -> None:
    _require_bubblewrap()
    env = {"ANTHROPIC_API_KEY": claude.api_key, "ANTHROPIC_BASE_URL": claude.base_url}
    with served(tmp_path / "serve", **env) as server, chromium(tmp_path / "chromium") as browser:
        open_page(browser, server.url)
        open_channel(browser, "C0DEMOINCIDENTS")
        wait_for(browser, lambda: by_testid(browser, "message"), "the pinned welcome")
        assert "/incidentfox debug why does payments-api fail to deploy?" in browser.page_source
        [composer] = by_testid(browser, "composer")
        composer.click()
        composer.send_keys("/incidentfox debug why does payments-api fail to deploy?" + Keys.ENTER)
        wait_for(browser, lambda: by_testid(browser, "thread-summary"), "the thread", 30)[-1].click()
        pane = wait_for(browser, lambda: by_testid(browser, "thread-pane"), "the thread pane")[0]
        wait_for(browser, lambda: "SRE agent" in pane.text and "PSP_API_KEY" in pane.text, "the answer", 90)

        answer = bot_messages(pane)[-1]
        assert answer.find_elements(By.CSS_SELECTOR, "b, strong"), "Markdown bold became Slack bold"
        assert "## Why" not in answer.text and "**" not in answer.text
        told = [r for r in claude.requests if "checked out the repository demo-shop/payments-api" in r.text()]
        assert told, "the demo repo was cloned into the sandbox and the agent told where"
        asked = [r for r in claude.requests if r.has_tool_result]
        assert asked and "PSP" in asked[0].tool_results[0].text, "the command ran on the cloned demo repo"
        screenshot(browser, "sre-agent-answer")

        [reply] = by_testid(pane, "thread-composer")
        reply.click()
        reply.send_keys("and the rollback?" + Keys.ENTER)
        wait_for(browser, lambda: "kubectl rollout undo" in pane.text, "the session's next answer", 90)
        assert "and the rollback?" in claude.requests[-1].last_user_text
        assert "payments-api" in claude.requests[-1].text(), "the same session continued"
        screenshot(browser, "sre-agent-follow-up")
