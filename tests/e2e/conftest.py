"""Browser end-to-end tests: the real platform (`python -m factoryops up`) driven by Debian's Chromium.

One platform process serves the whole session from a temporary data folder; each test gets a
fresh browser context (its own sessionStorage), so tests sign in as whoever their journey needs.
Data a journey does not exercise itself is set up through the API (`ApiHelper`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from portal_support import ApiHelper, browser_tab, free_port, platform_env, running_platform, screenshot_taker

REPO = Path(__file__).resolve().parents[2]
WEB_UI = REPO / "src" / "factoryops" / "webui" / "index.html"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 30.0


@dataclass
class Platform:
    base_url: str
    data_dir: Path
    log_path: Path
    mqtt_port: int


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The whole platform in one process, on free ports, with a fresh data folder."""
    if not WEB_UI.is_file():
        pytest.fail(
            f"The web portal is not built ({WEB_UI} is missing). "
            "Run `npm ci && npm run build` in web/ before the browser tests."
        )
    data_dir = tmp_path_factory.mktemp("factoryops-data")
    log_path = data_dir / "platform.log"
    http_port = free_port()
    mqtt_port = free_port()
    env = platform_env(data_dir, http_port, mqtt_port)
    with running_platform(
        ["up"], env, data_dir, log_path, http_port, STARTUP_TIMEOUT_S, stop_timeout_s=SHUTDOWN_TIMEOUT_S
    ) as base_url:
        yield Platform(base_url=base_url, data_dir=data_dir, log_path=log_path, mqtt_port=mqtt_port)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless. Missing Chromium is a failure, not a skip: CI installs it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium (`apt-get install -y chromium`).")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, platform: Platform) -> Iterator[Page]:
    """A fresh browser context (empty sessionStorage) on the platform's address."""
    with browser_tab(browser, platform.base_url) as tab:
        yield tab


@pytest.fixture(scope="session")
def api(platform: Platform) -> Iterator[ApiHelper]:
    helper = ApiHelper(platform.base_url)
    yield helper
    helper.client.close()


# Screenshots taken in this run, listed at the end of pytest's output for a person to look at.
SCREENSHOTS: list[Path] = []


@pytest.fixture
def screenshot(page: Page, tmp_path: Path) -> Callable[[str], Path]:
    """`screenshot("users-page")` saves a full-page PNG into the test's tmp folder."""
    return screenshot_taker(page, tmp_path, SCREENSHOTS)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SCREENSHOTS:
        terminalreporter.section("screenshots of the portal")
        for path in SCREENSHOTS:
            terminalreporter.write_line(str(path))
