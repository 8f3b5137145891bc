"""The config console's Knowledge tab for a team, in real headless Chromium against ``incidentfox serve``:
markdown runbooks uploaded through the file input are listed, a paraphrased question finds the right
one with its citation, unreadable files are skipped with the server's reason, and a runbook is deleted.
One server and one browser for the walkthrough, in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser_page import Served, by_testid, chromium, open_page, screenshot, script, served, wait_for

pytestmark = pytest.mark.browser

POSTGRES = """---
title: Postgres connection pool exhausted
owner: payments-oncall
---
# Postgres connection pool exhausted

## Symptoms
Applications log `FATAL: sorry, too many clients already` or `remaining connection slots are reserved`.
Request latency climbs and checkout returns 500s while pgbouncer's cl_waiting grows.

## Mitigation
Restart the leaking deployment to release its sessions, then lower its pool size. Never raise
max_connections on the primary without the DBA on call.
"""

KAFKA = """# Kafka consumer lag

## Symptoms
The ledger-writer consumer group's lag grows on topic payments.events; records are processed minutes
late and reconciliation alerts fire.

## What to do
Check for a rebalance storm in the consumer logs. Scale the consumer deployment up to the partition
count, never beyond it.
"""

UNCLOSED = """---
title: Never closed
# Heading

Some text that would be searchable if the front matter were closed.
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("serve")) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser(server: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        open_page(driver, server.url)
        yield driver


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("runbooks")
    written = {
        "postgres-connections.md": POSTGRES.encode(),
        "kafka consumer lag.md": KAFKA.encode(),
        "diagram.md": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "unclosed.md": UNCLOSED.encode(),
    }
    for name, content in written.items():
        (folder / name).write_bytes(content)
    return {name: folder / name for name in written}


def choose(browser: WebDriver, *paths: Path) -> None:
    """Pick files in the file input as a person would, then press Upload."""
    by_testid(browser, "knowledge-file")[0].send_keys("\n".join(str(p) for p in paths))
    by_testid(browser, "knowledge-upload")[0].click()


def outcomes(browser: WebDriver) -> dict[str, tuple[str, str]]:
    return {
        str(row.get_attribute("data-file")): (str(row.get_attribute("data-outcome")), row.text)
        for row in by_testid(browser, "upload-result")
        if row.get_attribute("data-outcome")
    }


def settled(browser: WebDriver, count: int, what: str) -> dict[str, tuple[str, str]]:
    """The outcomes once all ``count`` files of an upload have one."""

    def all_there() -> dict[str, tuple[str, str]] | None:
        found = outcomes(browser)
        return found if len(found) == count else None

    return wait_for(browser, all_there, what, 60)


def listed(browser: WebDriver) -> list[str]:
    return [str(row.get_attribute("data-path")) for row in by_testid(browser, "runbook-row")]


def test_the_team_has_a_knowledge_tab_with_its_counts_and_search_mode(browser: WebDriver) -> None:
    by_testid(browser, "console-tab-link")[0].click()
    wait_for(browser, lambda: by_testid(browser, "tree-node", node_id="payments"), "the demo team")[0].click()
    wait_for(browser, lambda: by_testid(browser, "console-subtab", tab="knowledge"), "the Knowledge tab")[
        0
    ].click()
    summary = wait_for(browser, lambda: by_testid(browser, "knowledge-summary"), "the knowledge summary")[0]
    wait_for(
        browser, lambda: summary.get_attribute("data-runbooks") is not None, "the team's knowledge to load"
    )
    assert summary.get_attribute("data-runbooks") == "0", summary.text
    assert "past incident" in summary.text
    assert by_testid(browser, "knowledge-search-mode")[0].text.startswith("Search: ")
    by_testid(browser, "tree-node", node_id="demo")[0].click()
    wait_for(browser, lambda: by_testid(browser, "console-subtab", tab="config"), "the org's tabs")
    assert not by_testid(browser, "console-subtab", tab="knowledge"), "knowledge belongs to teams only"
    by_testid(browser, "tree-node", node_id="payments")[0].click()
    wait_for(browser, lambda: by_testid(browser, "console-subtab", tab="knowledge"), "the Knowledge tab")[
        0
    ].click()
    wait_for(browser, lambda: by_testid(browser, "knowledge-file"), "the file input")


def test_uploaded_runbooks_are_listed_and_a_paraphrase_finds_the_right_one(
    browser: WebDriver, files: dict[str, Path]
) -> None:
    choose(browser, files["postgres-connections.md"], files["kafka consumer lag.md"])
    done = settled(browser, 2, "both uploads")
    assert done["postgres-connections.md"][0] == "added", done
    assert "runbooks/postgres-connections.md" in done["postgres-connections.md"][1]
    assert "Postgres connection pool exhausted" in done["postgres-connections.md"][1]
    assert done["kafka consumer lag.md"][0] == "added", done
    assert "runbooks/kafka-consumer-lag.md" in done["kafka consumer lag.md"][1]
    wait_for(browser, lambda: len(listed(browser)) == 2, "the two runbooks in the list")
    assert sorted(listed(browser)) == ["runbooks/kafka-consumer-lag.md", "runbooks/postgres-connections.md"]
    assert by_testid(browser, "knowledge-summary")[0].get_attribute("data-runbooks") == "2"

    query = by_testid(browser, "knowledge-query")[0]
    query.send_keys("the primary SQL database refuses new sessions")
    by_testid(browser, "knowledge-search")[0].click()
    hits = wait_for(browser, lambda: by_testid(browser, "knowledge-hit"), "search results", 60)
    cite = by_testid(hits[0], "knowledge-cite")[0].text
    assert cite.startswith("runbook runbooks/postgres-connections.md"), [h.text for h in hits]
    assert "Postgres connection pool exhausted" in hits[0].text
    assert "result" in by_testid(browser, "knowledge-search-status")[0].text
    script(browser, "arguments[0].scrollIntoView({block: 'center'})", hits[0])
    screenshot(browser, "console-knowledge")


def test_unreadable_files_are_skipped_with_the_servers_reason(
    browser: WebDriver, files: dict[str, Path]
) -> None:
    choose(browser, files["diagram.md"], files["unclosed.md"])
    done = settled(browser, 2, "both refusals")
    assert done["diagram.md"][0] == "skipped", done
    assert "binary file" in done["diagram.md"][1], done
    assert done["unclosed.md"][0] == "skipped", done
    assert "never closed" in done["unclosed.md"][1], done
    screenshot(browser, "console-knowledge-skipped")
    assert sorted(listed(browser)) == ["runbooks/kafka-consumer-lag.md", "runbooks/postgres-connections.md"]


def test_a_runbook_is_deleted_after_confirming(browser: WebDriver) -> None:
    row = by_testid(browser, "runbook-row", path="runbooks/kafka-consumer-lag.md")[0]
    by_testid(row, "runbook-delete")[0].click()
    wait_for(browser, lambda: by_testid(browser, "confirm-cancel"), "the confirmation")[0].click()
    assert "runbooks/kafka-consumer-lag.md" in listed(browser)
    row = by_testid(browser, "runbook-row", path="runbooks/kafka-consumer-lag.md")[0]
    by_testid(row, "runbook-delete")[0].click()
    wait_for(browser, lambda: by_testid(browser, "confirm-ok"), "the confirmation")[0].click()
    wait_for(browser, lambda: listed(browser) == ["runbooks/postgres-connections.md"], "the runbook to go")
    assert by_testid(browser, "knowledge-summary")[0].get_attribute("data-runbooks") == "1"
