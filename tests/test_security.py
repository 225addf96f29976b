"""Security model (spec section 12): the API rate limit, security headers, CORS, secrets kept out of output."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, SecretStr

from factoryops.core.ratelimit import TokenBucketLimiter
from factoryops.core.settings import Settings
from factoryops.entrypoints.api import CONTENT_SECURITY_POLICY, create_app
from factoryops.wiring import Platform
from services import factoryops, read_until, stop
from support import auth, free_port, make_settings


def _app(platform: Platform, tmp_path: Path, **overrides: typing.Any) -> TestClient:
    settings = make_settings(tmp_path, platform.settings.database_url, **overrides)
    return TestClient(create_app(Platform(settings, platform.db, platform.tenancy)), raise_server_exceptions=False)


def _refused(c: TestClient) -> float:
    total = 0.0
    for line in c.get("/metrics").text.splitlines():
        if line.startswith("factoryops_http_rate_limited_total{"):
            total += float(line.split()[-1])
    return total


# -- the API rate limit ---------------------------------------------------------------------------


@pytest.mark.nodb
def test_token_bucket_allows_bursts_then_refills_at_the_rate() -> None:
    limiter = TokenBucketLimiter(3, 60.0)
    assert [limiter.hit("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.hit("a", now=0.0) == pytest.approx(20.0)  # one token per 20 s
    assert limiter.hit("b", now=0.0) == 0.0  # another client has its own bucket
    assert limiter.hit("a", now=10.0) == pytest.approx(10.0)
    assert limiter.hit("a", now=20.0) == 0.0
    assert limiter.hit("a", now=20.0) > 0
    assert [limiter.hit("a", now=200.0) for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refilled, never above 3


@pytest.mark.nodb
def test_token_bucket_memory_stays_bounded() -> None:
    limiter = TokenBucketLimiter(10, 60.0, max_keys=100)
    for n in range(1000):  # many clients at once: only the most recent 100 are remembered
        limiter.hit(f"client-{n}", now=1.0)
    assert len(limiter) == 100
    limiter.hit("late", now=100.0)  # everyone else has been idle for a whole window: forgotten
    assert len(limiter) == 1
    with pytest.raises(ValueError):
        TokenBucketLimiter(0)


def test_api_rate_limit_per_user_then_per_address(
    client: TestClient, platform: Platform, make_factory: Any, tmp_path: Path
) -> None:
    world = make_factory()
    with _app(platform, tmp_path, http={"rate_limit_per_minute": 5}) as c:
        before = _refused(c)
        h = auth(world.super_token)
        assert [c.get("/api/v1/auth/me", headers=h).status_code for _ in range(5)] == [200] * 5
        r = c.get("/api/v1/auth/me", headers=h)
        assert r.status_code == 429
        body = r.json()
        assert set(body) == {"error"} and body["error"]["code"] == "too_many_requests"
        assert "at most 5 per minute" in body["error"]["message"]
        assert 1 <= int(r.headers["retry-after"]) <= 12  # one request's worth of the window (60 s / 5)
        assert r.headers["x-content-type-options"] == "nosniff"  # refusals carry the security headers too
        # the limit follows the token's subject: another user of the same address is not affected
        assert c.get("/api/v1/auth/me", headers=auth(world.admin_all_token)).status_code == 200
        # without a (valid) token the key is the client address: 5 for the address, shared
        assert [c.get("/api/v1/public/factories").status_code for _ in range(4)] == [200] * 4
        assert c.get("/api/v1/users", headers=auth("not-a-token")).status_code == 401
        assert c.get("/api/v1/public/factories").status_code == 429
        # only the API is limited: probes, metrics and the portal are not
        assert c.get("/healthz").status_code == 200
        assert _refused(c) == before + 2
    with _app(platform, tmp_path, http={"rate_limit_per_minute": 0}) as c:  # 0: off
        h = auth(world.super_token)
        assert {c.get("/api/v1/auth/me", headers=h).status_code for _ in range(30)} == {200}


def test_broker_hooks_are_not_rate_limited(platform: Platform, tmp_path: Path) -> None:
    """One EMQX node calls the hooks for every device: a per-address limit would refuse devices."""
    with _app(platform, tmp_path, http={"rate_limit_per_minute": 2}) as c:
        h = {"Authorization": "Bearer emqx-hook-secret-for-tests"}
        body = {"username": "nobody", "password": "x", "clientid": "c1"}
        codes = {c.post("/api/v1/mqtt/emqx/authenticate", headers=h, json=body).status_code for _ in range(5)}
        assert 429 not in codes


@pytest.mark.nodb
def test_default_limit_is_generous() -> None:
    defaults = Settings(_env_file=None)
    assert defaults.http.rate_limit_per_minute == 1200


# -- security headers and CORS -------------------------------------------------------------------


def test_security_headers_on_api_portal_and_docs(platform: Platform, tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<html>portal</html>")
    with _app(platform, tmp_path, web_dir=web) as c:
        for path in ("/api/v1/meta/permissions", "/", "/f/acme/devices", "/healthz", "/api/v1/nope"):
            r = c.get(path)
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["x-frame-options"] == "DENY", path
            assert r.headers["referrer-policy"] == "no-referrer", path
            assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
            assert "camera=()" in r.headers["permissions-policy"], path
            assert "strict-transport-security" not in r.headers, path  # plain HTTP: HSTS means nothing
        csp = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
        assert csp["script-src"] == "'self'" and "unsafe" not in CONTENT_SECURITY_POLICY
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
        # Swagger UI loads its assets from a CDN: its page gets a policy that lets it work
        docs = c.get("/api/v1/docs")
        assert docs.status_code == 200 and "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    with TestClient(
        create_app(Platform(make_settings(tmp_path, platform.settings.database_url), platform.db, platform.tenancy)),
        base_url="https://factoryops.example",
    ) as c:
        r = c.get("/api/v1/meta/permissions")
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        # behind a TLS-terminating proxy uvicorn turns X-Forwarded-Proto into the scheme (proxy_headers=True)


def test_cors_is_closed_by_default_and_open_to_configured_origins(platform: Platform, tmp_path: Path) -> None:
    preflight = {"Origin": "https://portal.example", "Access-Control-Request-Method": "POST"}
    with _app(platform, tmp_path) as c:
        r = c.options("/api/v1/auth/login", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
        r = c.get("/api/v1/meta/permissions", headers={"Origin": "https://portal.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    with _app(platform, tmp_path, http={"cors_origins": ["https://portal.example"]}) as c:
        r = c.options("/api/v1/auth/login", headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://portal.example"
        assert "POST" in r.headers["access-control-allow-methods"]
        r = c.get("/api/v1/meta/permissions", headers={"Origin": "https://portal.example"})
        assert r.headers["access-control-allow-origin"] == "https://portal.example"
        other = c.options("/api/v1/auth/login", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# -- secrets come from the environment and never go back out -------------------------------------


def _secret_settings() -> dict[str, str]:
    """Every secret setting (a SecretStr field anywhere in the tree) as its environment variable,
    each with a distinctive value, so a secret added later is covered without editing this test."""

    def is_secret(annotation: typing.Any) -> bool:
        return annotation is SecretStr or SecretStr in typing.get_args(annotation)

    env: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub, subfield in annotation.model_fields.items():
                if is_secret(subfield.annotation):
                    env[f"FACTORYOPS_{name.upper()}__{sub.upper()}"] = ""
        elif is_secret(annotation):
            env[f"FACTORYOPS_{name.upper()}"] = ""
    # distinctive values that also meet the password policy (the root password is one of them)
    return {key: f"Sx{n:02d}-Secret-Value-9f8e7d6c5b4a39" for n, key in enumerate(sorted(env))}


@pytest.mark.nodb
def test_every_secret_setting_is_known() -> None:
    names = set(_secret_settings())
    assert {"FACTORYOPS_AUTH__JWT_SECRET", "FACTORYOPS_ROOT_PASSWORD", "FACTORYOPS_MQTT__PASSWORD"} <= names
    assert len(names) >= 9, names


@pytest.mark.nodb
def test_config_never_prints_a_secret(tmp_path: Path) -> None:
    env = {**_secret_settings(), "FACTORYOPS_DATABASE__URL": "mysql+pymysql://fo:Db-Pass-Value-77@db:3306/factoryops"}
    proc = factoryops(["config"], env, tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    for value in [*_secret_settings().values(), "Db-Pass-Value-77"]:
        assert value not in out
    data = json.loads(out)
    assert data["auth"]["jwt_secret"] == "********" and data["mqtt"]["password"] == "********"


@pytest.mark.nodb
def test_no_secret_in_the_logs_of_a_start(tmp_path: Path) -> None:
    """`factoryops up` at DEBUG with every secret set: none of them appears in what it prints."""
    secrets = _secret_settings()
    env = {
        **secrets,
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_HTTP__PORT": str(free_port()),
        "FACTORYOPS_MQTT__PORT": str(free_port()),
        "FACTORYOPS_AUTH__BCRYPT_ROUNDS": "4",
        "FACTORYOPS_LOG_LEVEL": "DEBUG",
        # SMTP and Twilio stay off (no host, no account), so their secrets are only read, never used
    }
    proc = factoryops(["up"], env, tmp_path)
    try:
        out = read_until(proc, "web portal on http://", timeout=60)
        port = env["FACTORYOPS_HTTP__PORT"]
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/root/login",
            json={"email": "root@factoryops.local", "password": secrets["FACTORYOPS_ROOT_PASSWORD"]},
        )
        assert r.status_code == 200, r.text  # the root password came from the environment
    finally:
        code, out = stop(proc)
    assert code == 0, out
    assert "DEBUG" in out  # the logs were as verbose as they get
    leaked = [name for name, value in secrets.items() if value in out]
    assert not leaked, f"secrets in the logs: {leaked}"
    assert "password:" not in out  # a root password from the environment is never printed


@pytest.mark.nodb
def test_production_refuses_the_demo_factory(tmp_path: Path) -> None:
    """The demo factory's password is published: `up --demo` is refused in production."""
    env = {
        "FACTORYOPS_ENV": "production",
        "FACTORYOPS_AUTH__JWT_SECRET": "p" * 40,
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_HTTP__PORT": str(free_port()),
        "FACTORYOPS_MQTT__PORT": str(free_port()),
    }
    proc = factoryops(["up", "--demo"], env, tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    assert "--demo" in out and "FACTORYOPS_ENV=production" in out
    assert not (tmp_path / "data" / "factoryops.db").exists()  # refused before anything was created
