"""``incidentfox serve`` as a new user starts it (no credentials of any kind), and real headless Chromium
driven by Selenium through Debian's chromedriver. Tests that use it are synchronous: the server runs in
its own process, as ``make run`` runs it."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")
E = TypeVar("E", bound="Startable")


class Startable(Protocol):
    async def start(self) -> Any: ...

    async def stop(self) -> None: ...


@contextmanager
def on_its_own_loop(emulator: E) -> Iterator[E]:
    """An emulator served from a thread with its own event loop: the server under test is a
    subprocess and the test is synchronous."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(emulator.start(), loop).result(10)
    try:
        yield emulator
    finally:
        asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = Path(os.environ.get("INCIDENTFOX_SCREENSHOTS", "/tmp/incidentfox-screenshots"))


def require_browser() -> None:
    """Skip when Chromium is missing, unless CI says it must be there (``.ci/run`` installs it)."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    reason = "Debian's chromium and chromium-driver are not installed"
    if os.environ.get("INCIDENTFOX_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (INCIDENTFOX_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def served(data_dir: Path, **env: str) -> Iterator[Served]:
    """``incidentfox serve`` on a free loopback port with a clean environment: no Slack, model,
    PagerDuty or GitHub credentials, so it runs its embedded default and seeds the demo."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "ANTHROPIC_"))}
    clean.update(
        PORT=str(port),
        HOST="127.0.0.1",
        INCIDENTFOX_DATA_DIR=str(data_dir),
        DATABASE_URL=f"sqlite+aiosqlite:///{data_dir}/incidentfox.db",
        **env,
    )
    for key in ("ADMIN_TOKEN", "GITHUB_TOKEN", "PAGERDUTY_API_KEY", "KUBECONFIG", "REDIS_URL"):
        clean.pop(key, None)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "incidentfox.bot.cli", "serve"],
            env=clean,
            cwd=data_dir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        handle = Served(url=f"http://127.0.0.1:{port}/", process=process, log_path=log_path)
        try:
            _wait_until_open(handle)
            yield handle
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_open(handle: Served, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise AssertionError(f"incidentfox serve exited early:\n{handle.log()}")
        if "Open the local workspace" in handle.log():
            with urllib.request.urlopen(handle.url + "healthz", timeout=5) as response:
                assert response.status == 200
            return
        time.sleep(0.2)
    raise AssertionError(f"incidentfox serve did not open the workspace in {timeout}s:\n{handle.log()}")


@contextmanager
def chromium(profile_dir: Path, *, dark: bool = False) -> Iterator[WebDriver]:
    require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--window-size=1440,960",
        f"--user-data-dir={profile_dir}",
    ):
        options.add_argument(argument)
    if dark:
        options.add_argument("--force-dark-mode")
        options.add_argument("--blink-settings=preferredColorScheme=0")
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, check: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Poll ``check`` (which may raise while the page changes) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (StaleElementReferenceException, WebDriverException, AssertionError) as exc:
            last_error, value = exc, None
        if value:
            return value
        time.sleep(0.1)
    shot = screenshot(driver, "timeout-" + "".join(c if c.isalnum() else "-" for c in what)[:60])
    raise AssertionError(f"timed out waiting for {what} (screenshot {shot}); last error: {last_error}")


def by_testid(driver: WebDriver | WebElement, testid: str, **data: str) -> list[WebElement]:
    selector = f'[data-testid="{testid}"]' + "".join(
        f'[data-{k.replace("_", "-")}="{v}"]' for k, v in data.items()
    )
    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def screenshot(driver: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def script(driver: WebDriver, source: str, *args: Any) -> Any:
    return driver.execute_script(source, *args)


def bot_messages(scope: WebDriver | WebElement) -> list[WebElement]:
    return [m for m in by_testid(scope, "message") if m.get_attribute("data-bot") == "1"]


def open_page(driver: WebDriver, url: str) -> None:
    """Load the workspace and wait until its live event stream is connected."""
    driver.get(url)
    wait_for(
        driver,
        lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-sse") == "open",
        "the live event stream to connect",
    )


def open_channel(driver: WebDriver, channel_id: str) -> None:
    link = wait_for(driver, lambda: by_testid(driver, "channel-link", channel_id=channel_id), "channel link")
    link[0].click()
