"""Interrupt and Resume clicked in the local workspace while a (slow, emulated) model investigates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
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

pytestmark = pytest.mark.browser


@pytest.fixture
def slow_model() -> Iterator[OpenAIEmulator]:
    """An OpenAI-compatible model that never answers the planner within the test, on its own loop."""
    emulator = OpenAIEmulator()
    emulator.responder = RoutedScript().when(
        "every request", lambda _: True, [ScriptStep.delay(120), ScriptStep.text("still thinking")] * 4
    )
    with on_its_own_loop(emulator) as served_model:
        yield served_model


def _clicked(pane: WebElement, action_id: str) -> bool:
    """Click the button now in the pane: the live message is re-rendered as the run moves on, so a
    button found earlier may be gone (``wait_for`` retries a stale one)."""
    buttons = by_testid(pane, "bk-button", action_id=action_id)
    if not buttons:
        return False
    buttons[0].click()
    return True


def test_interrupt_then_resume_from_the_progress_message(slow_model: OpenAIEmulator, tmp_path: Path) -> None:
    env = {
        "OPENAI_API_KEY": slow_model.api_key,
        "OPENAI_BASE_URL": slow_model.base_url,
        "INCIDENTFOX_MODEL": "emulator-model",
    }
    with served(tmp_path / "serve", **env) as server, chromium(tmp_path / "chromium") as browser:
        open_page(browser, server.url)
        open_channel(browser, "C0DEMOINCIDENTS")
        [composer] = by_testid(browser, "composer")
        composer.send_keys("@IncidentFox why is checkout failing?" + Keys.ENTER)
        wait_for(browser, lambda: by_testid(browser, "thread-summary"), "the thread", 30)[-1].click()
        pane = wait_for(browser, lambda: by_testid(browser, "thread-pane"), "the thread pane")[0]
        wait_for(browser, lambda: slow_model.requests, "the model to be asked", 30)
        wait_for(browser, lambda: _clicked(pane, "run_interrupt"), "the Interrupt button", 30)
        wait_for(
            browser, lambda: by_testid(pane, "bk-button", action_id="run_resume"), "the Resume button", 30
        )
        assert "Interrupted" in pane.text
        screenshot(browser, "interrupted")
        asked_before = len(slow_model.requests)
        wait_for(browser, lambda: _clicked(pane, "run_resume"), "the Resume button", 30)
        wait_for(
            browser,
            lambda: by_testid(bot_messages(pane)[-1], "bk-button", action_id="run_interrupt"),
            "the resumed run's own progress message, working again",
            30,
        )
        interrupted = [m for m in bot_messages(pane) if by_testid(m, "bk-button", action_id="run_resume")]
        assert len(interrupted) == 1, "the interrupted message keeps its findings and its Resume button"
        wait_for(browser, lambda: len(slow_model.requests) > asked_before, "the model to be asked again", 30)
        screenshot(browser, "resumed")
