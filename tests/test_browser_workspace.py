"""The local workspace as a new user meets it: ``incidentfox serve`` with no credentials of any kind,
driven in real headless Chromium. One server and one browser for the walkthrough, in order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.browser_page import (
    Served,
    bot_messages,
    by_testid,
    chromium,
    open_channel,
    open_page,
    screenshot,
    served,
    wait_for,
)

pytestmark = pytest.mark.browser
DEMO_CHANNEL = "C0DEMOINCIDENTS"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("serve")) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser(server: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        open_page(driver, server.url)
        yield driver


def send(composer: WebElement, text: str) -> None:
    composer.click()
    composer.send_keys(text)
    composer.send_keys(Keys.ENTER)


def test_a_mention_in_the_demo_channel_is_investigated_live_and_ends_in_an_rca(browser: WebDriver) -> None:
    open_channel(browser, DEMO_CHANNEL)
    wait_for(browser, lambda: by_testid(browser, "pinned-bar"), "the pinned first-run message")
    [composer] = by_testid(browser, "composer")
    send(composer, "@IncidentFox why is checkout failing?")
    summary = wait_for(browser, lambda: by_testid(browser, "thread-summary"), "a thread on the question", 30)
    summary[-1].click()
    pane = wait_for(browser, lambda: by_testid(browser, "thread-pane"), "the thread pane")[0]
    progress = wait_for(browser, lambda: bot_messages(pane), "the bot's progress message", 30)[0]
    progress_ts = progress.get_attribute("data-ts")
    seen_texts: list[str] = []

    def finished() -> bool:
        [current] = [m for m in bot_messages(pane) if m.get_attribute("data-ts") == progress_ts]
        text = current.text
        if not seen_texts or seen_texts[-1] != text:
            seen_texts.append(text)
        return "Root cause" in text

    wait_for(browser, finished, "the RCA in the progress message", 60)
    final = seen_texts[-1]
    assert "payments-api" in final, final
    assert "PSP_API_KEY" in final, "the RCA quotes its evidence"
    finals = [m for m in bot_messages(pane) if m.get_attribute("data-ts") == progress_ts]
    assert len(finals) == 1
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", finals[0])
    screenshot(browser, "investigation-finished")


def test_view_session_opens_the_timeline_modal(browser: WebDriver) -> None:
    pane = by_testid(browser, "thread-pane")[0]
    button = wait_for(
        browser, lambda: by_testid(pane, "bk-button", action_id="run_view_session"), "View session"
    )
    button[0].click()
    modal = wait_for(browser, lambda: by_testid(browser, "modal"), "the timeline modal")[0]
    wait_for(browser, lambda: "payments-api" in modal.text, "the timeline's steps")
    screenshot(browser, "view-session")
    by_testid(modal, "modal-close")[0].click()
    wait_for(browser, lambda: not by_testid(browser, "modal"), "the modal to close")


def test_slash_help_answers_only_the_person(browser: WebDriver) -> None:
    open_channel(browser, DEMO_CHANNEL)
    [composer] = by_testid(browser, "composer")
    send(composer, "/incidentfox help")
    answer = wait_for(
        browser,
        lambda: [m for m in by_testid(browser, "message") if m.get_attribute("data-ephemeral") == "1"],
        "the ephemeral help",
    )[-1]
    assert "/incidentfox investigate" in answer.text
    assert "Only visible to you" in answer.text


def test_setup_modal_reports_a_field_error_then_creates_the_team(browser: WebDriver) -> None:
    open_channel(browser, "C0GENERAL")
    [composer] = by_testid(browser, "composer")
    send(composer, "/incidentfox setup")
    modal = wait_for(
        browser,
        lambda: [m for m in by_testid(browser, "modal") if "Team name" in m.text or "name" in m.text.lower()],
        "the setup form",
        30,
    )[0]
    wait_for(
        browser, lambda: modal.find_elements(By.CSS_SELECTOR, "[data-block-id='setup_name'] input"), "name"
    )
    by_testid(modal, "modal-submit")[0].click()
    errors = wait_for(browser, lambda: by_testid(browser, "field-error"), "a field error in the modal")
    assert any(e.text for e in errors)
    screenshot(browser, "setup-field-error")
    modal = by_testid(browser, "modal")[0]
    name = modal.find_element(By.CSS_SELECTOR, "[data-block-id='setup_name'] input")
    name.clear()
    name.send_keys("Checkout")
    by_testid(modal, "modal-submit")[0].click()
    done = wait_for(
        browser,
        lambda: [m for m in by_testid(browser, "modal") if "Created team Checkout" in m.text],
        "the modal to say the team was created",
        30,
    )
    assert not by_testid(done[0], "field-error")
    screenshot(browser, "setup-done")
    for modal in by_testid(browser, "modal"):
        by_testid(modal, "modal-close")[0].click()


def test_app_home_shows_the_persons_teams(browser: WebDriver) -> None:
    by_testid(browser, "home-tab-link")[0].click()
    home = wait_for(browser, lambda: by_testid(browser, "home-view"), "the Home tab")[0]
    wait_for(browser, lambda: "payments" in home.text.lower(), "the demo team on the Home tab", 30)
    screenshot(browser, "app-home")


def test_console_issues_a_token_once_and_shows_the_audit_log(browser: WebDriver) -> None:
    by_testid(browser, "console-tab-link")[0].click()
    team = wait_for(browser, lambda: by_testid(browser, "tree-node", node_id="payments"), "the demo team")[0]
    team.click()
    wait_for(browser, lambda: by_testid(browser, "console-subtab", tab="tokens"), "the Tokens tab")[0].click()
    wait_for(browser, lambda: by_testid(browser, "issue-token"), "the Issue button")[0].click()
    issued = wait_for(browser, lambda: by_testid(browser, "issued-token"), "the issued token")[0]
    token = issued.text.strip()
    assert token.startswith("demo.payments."), token
    screenshot(browser, "console-token")
    by_testid(browser, "console-subtab", tab="audit")[0].click()
    rows = wait_for(browser, lambda: by_testid(browser, "audit-row"), "the team's audit rows")
    assert any("config.write" in row.text for row in rows), "the demo seeding wrote the team's config"
    by_testid(browser, "tree-node", node_id="demo")[0].click()
    wait_for(browser, lambda: by_testid(browser, "console-subtab", tab="audit"), "the org's tabs")[0].click()
    wait_for(
        browser,
        lambda: any("token.issue" in row.text for row in by_testid(browser, "audit-row")),
        "the token's issue in the org's audit log",
    )
    screenshot(browser, "console-audit")
    team = by_testid(browser, "tree-node", node_id="payments")[0]
    team.click()
    wait_for(browser, lambda: by_testid(browser, "console-subtab", tab="tokens"), "the Tokens tab")[0].click()
    wait_for(browser, lambda: by_testid(browser, "token-row"), "the token list")
    assert token not in browser.find_element(By.TAG_NAME, "body").text, "a token is shown once"


def test_the_demo_button_plays_a_pagerduty_page_into_its_own_thread(browser: WebDriver) -> None:
    by_testid(browser, "workspace-tab-link")[0].click()
    open_channel(browser, DEMO_CHANNEL)
    by_testid(browser, "demo-action", action_id="pagerduty-page")[0].click()
    wait_for(browser, lambda: by_testid(browser, "toast"), "the toast saying what was sent")
    root = wait_for(
        browser,
        lambda: [
            m for m in bot_messages(browser) if "PagerDuty #" in m.text and by_testid(m, "thread-summary")
        ],
        "the incident's root message in the channel",
        30,
    )[-1]
    by_testid(root, "thread-summary")[0].click()
    pane = wait_for(browser, lambda: by_testid(browser, "thread-pane"), "the incident's thread")[0]
    wait_for(browser, lambda: "payments-api" in pane.text, "the investigation of the page", 60)
    screenshot(browser, "pagerduty-page")
