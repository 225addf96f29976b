"""Browser end-to-end tests: the real platform (`python -m factoryops up`) driven by Debian's Chromium.

One platform process serves the whole session from a temporary data folder; each test gets a
fresh browser context (its own sessionStorage), so tests sign in as whoever their journey needs.
Data a journey does not exercise itself is set up through the API (`ApiHelper`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from portal_support import ROOT_EMAIL, ROOT_PASSWORD, ApiHelper

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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


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
    http_port = _free_port()
    mqtt_port = _free_port()
    env = {
        **os.environ,
        "FACTORYOPS_DATA_DIR": str(data_dir),
        "FACTORYOPS_HTTP__PORT": str(http_port),
        "FACTORYOPS_MQTT__PORT": str(mqtt_port),
        "FACTORYOPS_ROOT_EMAIL": ROOT_EMAIL,
        "FACTORYOPS_ROOT_PASSWORD": ROOT_PASSWORD,
        "FACTORYOPS_AUTH__BCRYPT_ROUNDS": "4",
        # The journeys sign in many times from one address within a minute.
        "FACTORYOPS_AUTH__LOGIN_RATE_PER_MINUTE": "1000",
    }
    base_url = f"http://127.0.0.1:{http_port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "factoryops", "up"],
            cwd=data_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"`factoryops up` exited with {proc.returncode} during start-up:\n{_tail(log_path)}")
                try:
                    if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"`factoryops up` did not answer /healthz within {STARTUP_TIMEOUT_S:.0f}s:\n{_tail(log_path)}"
                    )
                time.sleep(0.25)

            yield Platform(base_url=base_url, data_dir=data_dir, log_path=log_path, mqtt_port=mqtt_port)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    pytest.fail(
                        f"`factoryops up` did not stop within {SHUTDOWN_TIMEOUT_S:.0f}s of SIGTERM:\n{_tail(log_path)}"
                    )
    assert proc.returncode == 0, f"`factoryops up` exited with {proc.returncode} on SIGTERM:\n{_tail(log_path)}"


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
    context = browser.new_context(base_url=platform.base_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


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

    def take(name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        SCREENSHOTS.append(path)
        return path

    return take


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SCREENSHOTS:
        terminalreporter.section("screenshots of the portal")
        for path in SCREENSHOTS:
            terminalreporter.write_line(str(path))
