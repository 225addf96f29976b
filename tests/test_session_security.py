"""Security gaps closed after a spec audit, over real HTTP (uvicorn) and the real database:

1. a device's live stream (Server-Sent Events) checks its caller again while it runs, and ends with a
   last ``end`` event once the session is revoked, the user disabled, the password reset or the token
   expired;
2. ``/metrics`` on the API's port asks for ``FACTORYOPS_HTTP__METRICS_TOKEN`` when it is set, and is
   closed (404) in production while it is not;
3. production without TLS says so: a WARNING when the api and telemetry processes start, and
   ``factoryops doctor`` answers WARN for ``tls``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from factoryops.core.security import decode_access_token, issue_access_token
from factoryops.entrypoints.api import create_app
from factoryops.entrypoints.cli import _warn_plain_transport
from factoryops.entrypoints.doctor import OK, SKIP, WARN, check_tls
from factoryops.telemetry.api import RECHECK_SECONDS
from factoryops.wiring import Platform
from services import factoryops, read_until, stop
from support import PASSWORD, FactoryWorld, auth, free_port, login, make_settings, register_device

METRICS_TOKEN = "metrics-token-for-tests-6f1d2c"
# The stream checks its caller every RECHECK_SECONDS; allow for the loop's own pauses and a busy machine.
END_WITHIN = RECHECK_SECONDS + 4.0


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app behind a real uvicorn server on a free port, in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture()
def api_url(platform: Platform) -> Iterator[str]:
    with serve(create_app(platform)) as url:
        yield url


@dataclass
class Stream:
    """What a live stream sent after the moment of interest, and when it closed."""

    events: list[tuple[str, dict[str, Any]]]
    closed_after: float

    def ends(self) -> list[dict[str, Any]]:
        return [data for name, data in self.events if name == "end"]


def follow(url: str, token: str, device_id: str, action: Callable[[], None], seconds: int = 60) -> Stream:
    """Opens the live stream, waits until it is flowing, runs ``action``, then reads the stream to its end."""
    events: list[tuple[str, dict[str, Any]]] = []
    with (
        httpx.Client(base_url=url, timeout=httpx.Timeout(10.0, read=seconds + 10.0)) as http,
        http.stream("GET", f"/api/v1/devices/{device_id}/live?seconds={seconds}", headers=auth(token)) as r,
    ):
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == ": keep-alive"  # the stream flows (the device has no values yet)
        action()
        started = time.monotonic()
        name = ""
        for line in lines:
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
        return Stream(events, time.monotonic() - started)


@pytest.fixture()
def world(make_factory, client: TestClient) -> FactoryWorld:  # type: ignore[no-untyped-def]
    made: FactoryWorld = make_factory()
    register_device(client, made, "live-1")
    return made


# -- 1. the live stream ends with its session -----------------------------------------------------------


def test_live_stream_ends_when_the_user_is_disabled(client: TestClient, world: FactoryWorld, api_url: str) -> None:
    user = world.admin_plain

    def disable() -> None:
        r = client.patch(f"/api/v1/users/{user['id']}", headers=auth(world.super_token), json={"is_active": False})
        assert r.status_code == 200 and r.json()["is_active"] is False, r.text

    stream = follow(api_url, world.admin_plain_token, "live-1", disable)
    assert stream.ends() == [{"reason": "session_revoked", "message": "Your session has ended; sign in again."}], (
        stream.events
    )
    assert stream.events[-1][0] == "end"  # the last thing the stream said
    assert stream.closed_after < END_WITHIN, stream.closed_after
    # and a new request with the same token is refused, as the stream said
    r = httpx.get(f"{api_url}/api/v1/devices/live-1/latest", headers=auth(world.admin_plain_token))
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"


def test_live_stream_ends_when_the_session_is_signed_out(client: TestClient, world: FactoryWorld, api_url: str) -> None:
    session = login(client, world.slug, world.admin_plain["email"])

    def sign_out() -> None:
        r = client.post("/api/v1/auth/logout", json={"refresh_token": session["refresh_token"]})
        assert r.status_code == 204, r.text

    stream = follow(api_url, session["access_token"], "live-1", sign_out)
    assert [e["reason"] for e in stream.ends()] == ["session_revoked"]
    assert stream.closed_after < END_WITHIN, stream.closed_after


def test_live_stream_ends_when_the_password_is_reset(client: TestClient, world: FactoryWorld, api_url: str) -> None:
    user = world.admin_plain

    def reset() -> None:
        r = client.post(
            f"/api/v1/users/{user['id']}/reset-password",
            headers=auth(world.super_token),
            json={"new_password": "Other-Pass-2026"},
        )
        assert r.status_code == 200, r.text

    stream = follow(api_url, world.admin_plain_token, "live-1", reset)
    assert [e["reason"] for e in stream.ends()] == ["session_revoked"]
    assert stream.closed_after < END_WITHIN, stream.closed_after


def test_live_stream_ends_when_its_token_expires(platform: Platform, world: FactoryWorld, api_url: str) -> None:
    """A stream is bounded by its access token: it ends once the token has expired (the portal then
    reconnects with a renewed one); the session itself is still valid."""
    auth_settings = platform.settings.auth
    claims = decode_access_token(auth_settings, world.admin_plain_token)
    lifetime = 4.0
    issued = datetime.now(UTC) - timedelta(minutes=auth_settings.access_token_minutes) + timedelta(seconds=lifetime)
    short = issue_access_token(auth_settings, claims, now=issued)
    stream = follow(api_url, short, "live-1", lambda: None)
    assert [e["reason"] for e in stream.ends()] == ["token_expired"]
    assert stream.closed_after < lifetime + END_WITHIN, stream.closed_after
    # the session was not touched: the long-lived token still streams
    r = httpx.get(f"{api_url}/api/v1/devices/live-1/latest", headers=auth(world.admin_plain_token))
    assert r.status_code == 200, r.text


def test_live_stream_of_a_valid_session_runs_to_its_end(world: FactoryWorld, api_url: str) -> None:
    """The checks themselves never end a stream whose caller is still admitted."""
    seconds = int(RECHECK_SECONDS * 2) + 1  # at least two checks
    stream = follow(api_url, world.admin_plain_token, "live-1", lambda: None, seconds=seconds)
    assert stream.ends() == [], stream.events
    assert seconds - 2 < stream.closed_after < seconds + 3, stream.closed_after


def test_other_users_streams_go_on(client: TestClient, world: FactoryWorld, api_url: str) -> None:
    """Disabling one user ends that user's streams only."""
    user = world.admin_plain

    def disable_someone_else() -> None:
        r = client.patch(f"/api/v1/users/{user['id']}", headers=auth(world.super_token), json={"is_active": False})
        assert r.status_code == 200, r.text

    stream = follow(api_url, world.admin_all_token, "live-1", disable_someone_else, seconds=int(RECHECK_SECONDS) + 2)
    assert stream.ends() == [], stream.events


# -- 2. /metrics on the API's port ----------------------------------------------------------------------


def _api(platform: Platform, tmp_path: Path, **overrides: Any) -> FastAPI:
    settings = make_settings(tmp_path, platform.settings.database_url, **overrides)
    return create_app(Platform(settings, platform.db, platform.tenancy, timeseries=platform.timeseries))


def test_metrics_open_in_development_without_a_token(platform: Platform, tmp_path: Path) -> None:
    with serve(_api(platform, tmp_path)) as url:
        r = httpx.get(f"{url}/metrics")
    assert r.status_code == 200 and "factoryops_process_info" in r.text


@pytest.mark.parametrize("env", ["development", "production"])
def test_metrics_token_is_required_when_set(platform: Platform, tmp_path: Path, env: str) -> None:
    with serve(_api(platform, tmp_path, env=env, http={"metrics_token": METRICS_TOKEN})) as url:
        refused = [
            httpx.get(f"{url}/metrics"),
            httpx.get(f"{url}/metrics", headers=auth("wrong-token")),
            httpx.get(f"{url}/metrics", headers=auth(METRICS_TOKEN + "x")),
            httpx.get(f"{url}/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"}),
        ]
        good = httpx.get(f"{url}/metrics", headers=auth(METRICS_TOKEN))
        lower = httpx.get(f"{url}/metrics", headers={"Authorization": f"bearer {METRICS_TOKEN}"})
    for r in refused:
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "not_authenticated"
        assert "FACTORYOPS_HTTP__METRICS_TOKEN" in r.json()["error"]["message"]
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "factoryops_" not in r.text
    assert good.status_code == 200 and "factoryops_alerts_open" in good.text
    assert lower.status_code == 200


def test_metrics_closed_in_production_without_a_token(platform: Platform, tmp_path: Path) -> None:
    with serve(_api(platform, tmp_path, env="production")) as url:
        r = httpx.get(f"{url}/metrics")
        with_a_token = httpx.get(f"{url}/metrics", headers=auth(METRICS_TOKEN))
        probes = [httpx.get(f"{url}/healthz").status_code, httpx.get(f"{url}/readyz").status_code]
    for answer in (r, with_a_token):
        assert answer.status_code == 404, answer.text
        error = answer.json()["error"]
        assert error["code"] == "metrics_closed"
        assert "FACTORYOPS_HTTP__METRICS_TOKEN" in error["message"] and "FACTORYOPS_METRICS_PORT" in error["message"]
        assert "factoryops_" not in answer.text
    assert probes[0] == 200  # the probes stay open


# -- 3. production without TLS --------------------------------------------------------------------------


def _production_env(tmp_path: Path) -> dict[str, str]:
    return {
        "FACTORYOPS_ENV": "production",
        "FACTORYOPS_AUTH__JWT_SECRET": "p" * 40,
        "FACTORYOPS_AUTH__BCRYPT_ROUNDS": "4",
        "FACTORYOPS_ROOT_PASSWORD": PASSWORD,
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_HTTP__PORT": str(free_port()),
        "FACTORYOPS_MQTT__EMBEDDED": "false",
        "FACTORYOPS_MQTT__PORT": str(free_port()),  # no broker: the telemetry process only has to start
    }


@pytest.mark.nodb
def test_production_processes_warn_about_plain_http_and_mqtt(tmp_path: Path) -> None:
    """`factoryops api` and `factoryops telemetry` with FACTORYOPS_ENV=production and no TLS: one WARNING
    each at start; the API's /metrics answers 404 over real HTTP."""
    env = _production_env(tmp_path)
    proc = factoryops(["api"], env, tmp_path)
    try:
        read_until(proc, "web portal on http://", timeout=60)
        r = httpx.get(f"http://127.0.0.1:{env['FACTORYOPS_HTTP__PORT']}/metrics")
        assert r.status_code == 404 and r.json()["error"]["code"] == "metrics_closed", r.text
    finally:
        code, out = stop(proc)
    assert code == 0, out
    warnings = [line for line in out.splitlines() if "production without TLS" in line]
    assert len(warnings) == 1, out
    assert "WARNING" in warnings[0] and "plain HTTP" in warnings[0]
    assert "terminate TLS in front of the API" in warnings[0] and "FACTORYOPS_HTTP__TLS_PROXY=true" in warnings[0]
    assert "FACTORYOPS_HTTP__TLS_CERT_FILE" in warnings[0] and "FACTORYOPS_HTTP__TLS_KEY_FILE" in warnings[0]

    proc = factoryops(["telemetry"], env, tmp_path)
    try:
        out = read_until(proc, "telemetry service starting", timeout=60)
    finally:
        stop(proc)
    warnings = [line for line in out.splitlines() if "production without TLS" in line]
    assert len(warnings) == 1, out
    assert "WARNING" in warnings[0] and "plain MQTT" in warnings[0] and "FACTORYOPS_MQTT__TLS=true" in warnings[0]


@pytest.mark.nodb
def test_the_warning_only_in_production_and_only_for_plain_links(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def warned(**overrides: Any) -> list[str]:
        caplog.clear()
        settings = make_settings(tmp_path, "sqlite://", **overrides)
        with caplog.at_level(logging.WARNING, logger="factoryops"):
            _warn_plain_transport(settings, http=True, mqtt=True)
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    assert warned() == []  # development
    both = warned(env="production", mqtt={"embedded": False})
    assert len(both) == 2 and "plain HTTP" in both[0] and "plain MQTT to the broker" in both[1]
    embedded = warned(env="production")
    assert "embedded MQTT broker" in embedded[1] and "FACTORYOPS_MQTT__EMBEDDED=false" in embedded[1]
    tls = warned(
        env="production",
        http={"tls_cert_file": tmp_path / "api.crt", "tls_key_file": tmp_path / "api.key"},
        mqtt={"embedded": False, "tls": True},
    )
    assert tls == []


@pytest.mark.nodb
def test_doctor_warns_about_tls_in_production_only(tmp_path: Path) -> None:
    production = check_tls(make_settings(tmp_path, "sqlite://", env="production", mqtt={"embedded": False}))
    assert production.status == WARN, production
    assert "plain HTTP" in production.detail and "plain MQTT" in production.detail
    assert "terminate TLS in front of the API" in production.fix
    assert "FACTORYOPS_HTTP__TLS_CERT_FILE" in production.fix and "FACTORYOPS_MQTT__TLS=true" in production.fix
    assert "docs/tls.md" in production.fix
    development = check_tls(make_settings(tmp_path, "sqlite://"))
    assert development.status == SKIP, development


@pytest.mark.nodb
def test_a_link_protected_otherwise_is_not_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Behind a TLS-terminating proxy, or with the broker link on a private network, the operator says
    so (http.tls_proxy, mqtt.private_network): no warning, and doctor answers OK naming why. The
    embedded broker takes the devices' connections itself: it is never excused."""
    settings = make_settings(
        tmp_path,
        "sqlite://",
        env="production",
        http={"tls_proxy": True},
        mqtt={"embedded": False, "private_network": True},
    )
    with caplog.at_level(logging.WARNING, logger="factoryops"):
        _warn_plain_transport(settings, http=True, mqtt=True)
    assert [r for r in caplog.records if "production without TLS" in r.getMessage()] == []
    check = check_tls(settings)
    assert check.status == OK and "FACTORYOPS_HTTP__TLS_PROXY" in check.detail, check
    assert "FACTORYOPS_MQTT__PRIVATE_NETWORK" in check.detail
    embedded = check_tls(make_settings(tmp_path, "sqlite://", env="production", http={"tls_proxy": True}))
    assert embedded.status == WARN and "embedded MQTT broker" in embedded.detail
