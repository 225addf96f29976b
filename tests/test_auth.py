"""Sign-in, tokens, sessions, lockout and throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from fastapi.testclient import TestClient

from factoryops.core.ratelimit import SlidingWindowLimiter
from factoryops.core.security import TokenClaims, issue_access_token
from factoryops.wiring import Platform
from support import PASSWORD, FactoryWorld, auth, login


def test_login_returns_a_token_with_the_spec_claims(client: TestClient, make_factory, platform: Platform) -> None:
    world: FactoryWorld = make_factory()
    session = login(client, world.slug, world.admin_all["email"])
    assert session["token_type"] == "bearer" and session["expires_in"] == 15 * 60
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    assert claims["user_id"] == world.admin_all["id"]
    assert claims["factory_id"] == world.id
    assert claims["role"] == "admin"
    assert claims["permissions"] == ["alerts", "analytics", "devices", "reports", "rules"]
    assert claims["exp"] - claims["iat"] == 15 * 60
    me = client.get("/api/v1/auth/me", headers=auth(session["access_token"])).json()
    assert me["factory"]["slug"] == world.slug and me["role"] == "admin"


def test_bad_logins_get_clear_errors(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    email = world.super_admin["email"]
    cases = [
        ({"factory": world.slug, "email": email, "password": "wrong-Password-1"}, 401, "invalid_credentials"),
        ({"factory": world.slug, "email": "nobody@plant.example", "password": PASSWORD}, 401, "invalid_credentials"),
        ({"factory": "no-such-plant", "email": email, "password": PASSWORD}, 401, "invalid_credentials"),
        ({"factory": world.slug, "email": email}, 422, "validation_error"),
        ({"factory": world.slug, "email": email, "password": 12}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        r = client.post("/api/v1/auth/login", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]["code"] == code
        assert r.json()["error"]["message"]
    r = client.post("/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"


def test_lockout_after_repeated_failures_and_reset_unlocks(client: TestClient, make_factory) -> None:
    world = make_factory()
    email = world.admin_plain["email"]
    for _ in range(5):
        r = client.post("/api/v1/auth/login", json={"factory": world.slug, "email": email, "password": "Nope-12345x"})
        assert r.status_code == 401
    r = client.post("/api/v1/auth/login", json={"factory": world.slug, "email": email, "password": PASSWORD})
    assert r.status_code == 423 and r.json()["error"]["code"] == "account_locked"
    assert "minute" in r.json()["error"]["message"]
    user = client.get(f"/api/v1/users/{world.admin_plain['id']}", headers=auth(world.super_token)).json()
    assert user["is_locked"] is True
    r = client.post(
        f"/api/v1/users/{world.admin_plain['id']}/reset-password",
        headers=auth(world.super_token),
        json={"new_password": "Fresh-Start-2027"},
    )
    assert r.status_code == 200 and r.json()["is_locked"] is False and r.json()["must_change_password"] is True
    session = login(client, world.slug, email, "Fresh-Start-2027")
    assert session["principal"]["must_change_password"] is True
    r = client.post(
        "/api/v1/auth/change-password",
        headers=auth(session["access_token"]),
        json={"current_password": "Fresh-Start-2027", "new_password": "Mine-Only-2028"},
    )
    assert r.status_code == 204
    assert login(client, world.slug, email, "Mine-Only-2028")["principal"]["must_change_password"] is False
    actions = [
        e["action"]
        for e in client.get("/api/v1/audit-events?limit=200", headers=auth(world.super_token)).json()["items"]
    ]
    for expected in (
        "login_failed",
        "account_locked",
        "login_refused_locked",
        "password_reset",
        "password_changed",
        "login_succeeded",
    ):
        assert expected in actions


def test_login_throttle_per_client(client: TestClient, platform: Platform, make_factory) -> None:
    world = make_factory(with_admins=False)
    original = client.app.state.login_limiter  # type: ignore[attr-defined]
    client.app.state.login_limiter = SlidingWindowLimiter(3, 60.0)  # type: ignore[attr-defined]
    try:
        answers = [
            client.post("/api/v1/auth/login", json={"factory": world.slug, "email": "x@y.example", "password": "a"})
            for _ in range(4)
        ]
    finally:
        client.app.state.login_limiter = original  # type: ignore[attr-defined]
    assert [r.status_code for r in answers] == [401, 401, 401, 429]
    assert answers[3].json()["error"]["code"] == "too_many_attempts"
    assert int(answers[3].headers["Retry-After"]) >= 1


def test_expired_forged_and_malformed_tokens(client: TestClient, platform: Platform, make_factory) -> None:
    world = make_factory(with_admins=False)
    real = login(client, world.slug, world.super_admin["email"])
    claims = jwt.decode(real["access_token"], options={"verify_signature": False})
    token_claims = TokenClaims(
        kind="factory_user", subject_id=claims["sub"], session_id=claims["sid"], factory_id=world.id, role="super_admin"
    )
    expired = issue_access_token(platform.settings.auth, token_claims, now=datetime.now(UTC) - timedelta(hours=1))
    forged = jwt.encode({**claims, "factory_id": "someone-else"}, "not-the-secret", algorithm="HS256")
    none_alg = jwt.encode(claims, key="", algorithm="none")  # type: ignore[arg-type]
    cases = [
        ({"Authorization": f"Bearer {expired}"}, "token_expired"),
        ({"Authorization": f"Bearer {forged}"}, "invalid_token"),
        ({"Authorization": f"Bearer {none_alg}"}, "invalid_token"),
        ({"Authorization": "Bearer garbage"}, "invalid_token"),
        ({"Authorization": "Basic abc"}, "not_authenticated"),
        ({}, "not_authenticated"),
    ]
    for headers, code in cases:
        r = client.get("/api/v1/users", headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"]["code"] == code


def test_refresh_rotates_and_detects_reuse(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    first = login(client, world.slug, world.super_admin["email"])
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert client.get("/api/v1/users", headers=auth(pair["access_token"])).status_code == 200
    # the old refresh token comes back: the session is ended for everybody holding it
    reused = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401
    assert client.get("/api/v1/users", headers=auth(pair["access_token"])).status_code == 401


def test_logout_ends_the_session(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    session = login(client, world.slug, world.super_admin["email"])
    assert client.post("/api/v1/auth/logout", json={"refresh_token": session["refresh_token"]}).status_code == 204
    assert client.get("/api/v1/users", headers=auth(session["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401


def test_disabled_user_is_cut_off_at_once(client: TestClient, make_factory) -> None:
    world = make_factory()
    token = world.admin_all_token
    assert client.get("/api/v1/factory", headers=auth(token)).status_code == 200
    r = client.patch(
        f"/api/v1/users/{world.admin_all['id']}", headers=auth(world.super_token), json={"is_active": False}
    )
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert client.get("/api/v1/factory", headers=auth(token)).status_code == 401
    r = client.post(
        "/api/v1/auth/login", json={"factory": world.slug, "email": world.admin_all["email"], "password": PASSWORD}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_disabled"


def test_role_change_applies_to_live_tokens(client: TestClient, make_factory) -> None:
    world = make_factory()
    assert client.get("/api/v1/users", headers=auth(world.admin_plain_token)).status_code == 403
    r = client.patch(
        f"/api/v1/users/{world.admin_plain['id']}", headers=auth(world.super_token), json={"role": "super_admin"}
    )
    assert r.status_code == 200
    assert client.get("/api/v1/users", headers=auth(world.admin_plain_token)).status_code == 200


def test_root_login_and_root_cannot_read_factory_data(client: TestClient, root_token: str, make_factory) -> None:
    world = make_factory(with_admins=False)
    me = client.get("/api/v1/auth/me", headers=auth(root_token)).json()
    assert me["kind"] == "platform_root" and me["factory"] is None
    for path in ("/api/v1/factory", "/api/v1/users", "/api/v1/audit-events"):
        r = client.get(path, headers=auth(root_token))
        assert r.status_code == 403 and r.json()["error"]["code"] == "factory_user_required"
    r = client.get("/api/v1/platform/factories", headers=auth(world.super_token))
    assert r.status_code == 403
    bad = client.post("/api/v1/auth/root/login", json={"email": "root@platform.example", "password": "Wrong-123456"})
    assert bad.status_code == 401
