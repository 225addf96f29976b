"""The cast, API shortcuts and browser steps of the browser journeys (imported by conftest and the tests)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

ROOT_EMAIL = "root@example.com"
ROOT_PASSWORD = "Platform-2026-Secure"


@dataclass(frozen=True)
class Account:
    email: str
    full_name: str
    password: str


@dataclass(frozen=True)
class FactorySpec:
    name: str
    slug: str
    timezone: str
    description: str
    super_admin: Account


# The cast of the journeys. Every password meets the policy (10+ characters, a letter and a
# digit, not containing the email's local part).
ACME = FactorySpec(
    name="Acme Steel",
    slug="acme-steel",
    timezone="Europe/Berlin",
    description="Rolling mill and galvanising line",
    super_admin=Account("dana.boss@acme.example", "Dana Boss", "Furnace-2026x"),
)
BOREALIS = FactorySpec(
    name="Borealis Paper",
    slug="borealis-paper",
    timezone="Europe/Helsinki",
    description="Pulp and paper mill",
    super_admin=Account("sam.north@borealis.example", "Sam North", "Pulpmill-2026x"),
)
ACME_READER = Account("olga.reader@acme.example", "Olga Reader", "Readonly-2026x")
ACME_DEVICES = Account("ivan.devices@acme.example", "Ivan Devices", "Sensors-2026x")


class ApiHelper:
    """Direct API calls for the set-up that a journey does not test itself."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=f"{base_url}/api/v1", timeout=15)

    def _ok(self, response: httpx.Response) -> Any:
        assert response.is_success, (
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    def root_token(self) -> str:
        body = self._ok(self.client.post("/auth/root/login", json={"email": ROOT_EMAIL, "password": ROOT_PASSWORD}))
        return str(body["access_token"])

    def login(self, slug: str, account: Account) -> str:
        body = self._ok(
            self.client.post(
                "/auth/login", json={"factory": slug, "email": account.email, "password": account.password}
            )
        )
        return str(body["access_token"])

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def factory_exists(self, slug: str) -> bool:
        page = self._ok(self.client.get("/public/factories", params={"limit": 200}))
        return any(item["slug"] == slug for item in page["items"])

    def ensure_factory(self, spec: FactorySpec) -> None:
        if self.factory_exists(spec.slug):
            return
        admin = spec.super_admin
        self._ok(
            self.client.post(
                "/platform/factories",
                headers=self.auth(self.root_token()),
                json={
                    "name": spec.name,
                    "slug": spec.slug,
                    "timezone": spec.timezone,
                    "description": spec.description,
                    "super_admin": {"email": admin.email, "full_name": admin.full_name, "password": admin.password},
                },
            )
        )

    def find_user(self, token: str, email: str) -> dict[str, Any] | None:
        page = self._ok(self.client.get("/users", headers=self.auth(token), params={"q": email}))
        return next((u for u in page["items"] if u["email"] == email), None)

    def ensure_user(
        self, spec: FactorySpec, account: Account, permissions: list[str], role: str = "admin"
    ) -> dict[str, Any]:
        self.ensure_factory(spec)
        token = self.login(spec.slug, spec.super_admin)
        existing = self.find_user(token, account.email)
        if existing:
            return existing
        return dict(
            self._ok(
                self.client.post(
                    "/users",
                    headers=self.auth(token),
                    json={
                        "email": account.email,
                        "full_name": account.full_name,
                        "role": role,
                        "permissions": permissions,
                        "password": account.password,
                    },
                )
            )
        )


# The devices journeys run in a factory of their own, so that they do not depend on the order in
# which pytest runs the test files (the shell journeys create Acme Steel themselves).
DELTA = FactorySpec(
    name="Delta Foundry",
    slug="delta-foundry",
    timezone="Europe/Madrid",
    description="Die casting and machining",
    super_admin=Account("maria.ops@delta.example", "Maria Ops", "Castings-2026x"),
)
DELTA_DEVICES = Account("tom.meters@delta.example", "Tom Meters", "Gauges-2026xy")
DELTA_READER = Account("rita.viewer@delta.example", "Rita Viewer", "Viewonly-2026x")


def create_device(api: ApiHelper, spec: FactorySpec, device_id: str, **attrs: str) -> dict[str, Any]:
    """Registers a device through the API (or rotates its credentials if it exists); returns it with `mqtt`."""
    api.ensure_factory(spec)
    headers = api.auth(api.login(spec.slug, spec.super_admin))
    response = api.client.post("/devices", headers=headers, json={"device_id": device_id, **attrs})
    if response.status_code == 409:
        response = api.client.post(f"/devices/{device_id}/rotate-credentials", headers=headers)
    return dict(api._ok(response))


class DevicePublisher:
    """One device's MQTT 5 connection to the platform's broker, with its own credentials."""

    def __init__(self, port: int, mqtt: dict[str, str], retry_s: float = 5.0) -> None:
        """Connects, retrying a refused connection for `retry_s` seconds as a real device would.

        The retry covers a known API race: a write route answers before its transaction commits,
        so a device that connects the instant its registration returns may not be known yet.
        """
        self.topic = mqtt["topic"]
        self.mqtt = mqtt
        self.port = port
        deadline = time.monotonic() + retry_s
        while True:
            failure = self._connect()
            if failure is None:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"device {mqtt['username']} could not connect: {failure}")
            time.sleep(0.5)

    def _connect(self) -> str | None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self._connected = threading.Event()
        self._failure: str | None = None
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.mqtt["client_id"],
            protocol=paho.MQTTv5,
        )
        self.client.username_pw_set(self.mqtt["username"], self.mqtt["password"])
        self.client.on_connect = self._on_connect
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        if self._connected.wait(10) and not self._failure:
            return None
        self.close()
        return self._failure or "timeout"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self._failure = str(reason_code)
        self._connected.set()

    def publish(self, payload: dict[str, Any] | bytes) -> None:
        """Publishes at QoS 1 and waits for the broker's acknowledgement."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(self.topic, body, qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), f"no PUBACK for {body!r}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> DevicePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The rules journeys run in a factory of their own (see DELTA above for why).
ECHO = FactorySpec(
    name="Echo Plastics",
    slug="echo-plastics",
    timezone="Europe/Berlin",
    description="Extrusion and injection moulding",
    super_admin=Account("nina.plant@echo.example", "Nina Plant", "Extruders-2026x"),
)
ECHO_RULES = Account("rafael.rules@echo.example", "Rafael Rules", "Thresholds-2026x")
ECHO_READER = Account("petra.looks@echo.example", "Petra Looks", "Glances-2026xy")


def publish_values(
    api: ApiHelper, spec: FactorySpec, mqtt_port: int, device_id: str, values: list[dict[str, Any]], gap_s: float = 0.4
) -> None:
    """Publishes `values` in order as the device (registered first if needed), `gap_s` apart, and waits
    until every point is stored (the point's time is its ingestion time)."""
    device = create_device(api, spec, device_id)
    headers = api.auth(api.login(spec.slug, spec.super_admin))
    names = sorted({name for payload in values for name in payload})

    def stored() -> int:
        response = api.client.get(
            "/telemetry/history", headers=headers, params={"device_id": device_id, "property": names[0]}
        )
        if not response.is_success:
            return -1
        series = response.json().get("series", [])
        return sum(len(s.get("points", [])) for s in series)

    before = stored()
    with DevicePublisher(mqtt_port, device["mqtt"]) as publisher:
        for payload in values:
            publisher.publish(payload)
            time.sleep(gap_s)
    expected = before + sum(1 for payload in values if names[0] in payload)
    deadline = time.monotonic() + 20
    while stored() < expected:
        assert time.monotonic() < deadline, f"{device_id}: only {stored()} of {expected} points stored"
        time.sleep(0.3)


# ------------------------------------------------------------------------------ the platform process
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def platform_env(data_dir: Path, http_port: int, mqtt_port: int) -> dict[str, str]:
    """The environment of a platform process of the journeys: its own data folder and ports, the root
    account of ROOT_EMAIL, fast password hashing."""
    return {
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


@contextmanager
def running_platform(
    args: list[str],
    env: dict[str, str],
    data_dir: Path,
    log_path: Path,
    http_port: int,
    startup_timeout_s: float,
    *,
    stop_timeout_s: float = 30.0,
    strict_stop: bool = True,
    tail_lines: int = 40,
) -> Iterator[str]:
    """Runs `python -m factoryops <args>` in `data_dir` (output to `log_path`), yields its base URL once
    /healthz answers and stops it with SIGTERM afterwards. With `strict_stop`, a process that does not
    stop within `stop_timeout_s`, or exits with an error, fails the test."""
    command = f"`factoryops {' '.join(args)}`"
    base_url = f"http://127.0.0.1:{http_port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "factoryops", *args],
            cwd=data_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"{command} exited with {proc.returncode} during start-up:\n{log_tail(log_path, tail_lines)}"
                    )
                try:
                    if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"{command} did not answer /healthz within {startup_timeout_s:.0f}s:\n"
                        f"{log_tail(log_path, tail_lines)}"
                    )
                time.sleep(0.25)

            yield base_url
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=stop_timeout_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    if strict_stop:
                        pytest.fail(
                            f"{command} did not stop within {stop_timeout_s:.0f}s of SIGTERM:\n"
                            f"{log_tail(log_path, tail_lines)}"
                        )
    if strict_stop:
        assert proc.returncode == 0, (
            f"{command} exited with {proc.returncode} on SIGTERM:\n{log_tail(log_path, tail_lines)}"
        )


# ------------------------------------------------------------------------------ the browser
@contextmanager
def browser_tab(browser: Browser, base_url: str) -> Iterator[Page]:
    """A fresh browser context (empty sessionStorage) on `base_url`; JavaScript errors in the page fail the test."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def screenshot_taker(page: Page, folder: Path, taken: list[Path] | None = None) -> Callable[[str], Path]:
    """`take("users-page")` saves a full-page PNG of `page` into `folder` (and lists it in `taken`)."""

    def take(name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        if taken is not None:
            taken.append(path)
        return path

    return take


def _submit_sign_in(page: Page, login_path: str, email: str, password: str, landing: str) -> None:
    page.goto(login_path)
    form = page.get_by_role("form", name="Sign in")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(landing))


def sign_in(page: Page, slug: str, account: Account) -> None:
    """Signs in on a factory's login page and waits for its overview."""
    _submit_sign_in(page, f"/f/{slug}/login", account.email, account.password, rf"/f/{slug}/overview$")


def sign_in_root(page: Page) -> None:
    """Signs the platform root in and waits for the root console."""
    _submit_sign_in(page, "/root/login", ROOT_EMAIL, ROOT_PASSWORD, r"/root$")


def open_from_nav(page: Page, link: str, navigation: str = "Factory navigation") -> None:
    """Clicks `link` in the side navigation (the factory's, or "Platform navigation")."""
    page.get_by_role("navigation", name=navigation).get_by_role("link", name=link).click()


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.5) -> Any:
    """Polls ``check`` until it returns something truthy (returned), or fails the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
