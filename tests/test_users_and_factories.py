"""Factory user management by super admins, and the platform root's factory console."""

from __future__ import annotations

from fastapi.testclient import TestClient

from support import PASSWORD, auth, login


def test_super_admin_manages_users(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    r = client.post(
        "/api/v1/users",
        headers=h,
        json={
            "email": "Op.One@Plant.example",
            "full_name": "Operator One",
            "role": "admin",
            "permissions": ["alerts"],
            "password": PASSWORD,
        },
    )
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["email"] == "op.one@plant.example" and user["permissions"] == ["alerts"] and user["is_active"]
    r = client.patch(
        f"/api/v1/users/{user['id']}", headers=h, json={"permissions": ["alerts", "rules"], "full_name": "Op 1"}
    )
    assert r.status_code == 200 and r.json()["permissions"] == ["alerts", "rules"] and r.json()["full_name"] == "Op 1"
    listed = client.get("/api/v1/users?q=op.one", headers=h).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == user["id"]
    page = client.get("/api/v1/users?limit=1&offset=0", headers=h).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["limit"] == 1
    events = client.get("/api/v1/audit-events?action=role_changed", headers=h).json()["items"]
    assert events and events[0]["target_id"] == user["id"]
    assert events[0]["details"]["changes"]["permissions"] == [["alerts"], ["alerts", "rules"]]
    assert events[0]["actor_email"] == world.super_admin["email"]


def test_user_input_errors_name_the_field(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    base = {"email": "new@plant.example", "full_name": "N", "role": "admin", "permissions": [], "password": PASSWORD}
    cases = [
        ({**base, "password": "short1"}, 422, "weak_password", "body.password"),
        ({**base, "password": "nodigitsatallhere"}, 422, "weak_password", "body.password"),
        ({**base, "password": "new-Plant-123456"}, 422, "weak_password", "body.password"),
        ({**base, "email": "not-an-email"}, 422, "validation_error", "body.email"),
        ({**base, "role": "emperor"}, 422, "validation_error", "body.role"),
        ({**base, "permissions": ["teleport"]}, 422, "validation_error", "body.permissions"),
        ({**base, "email": world.super_admin["email"]}, 409, "email_taken", "body.email"),
    ]
    for body, status, code, field in cases:
        r = client.post("/api/v1/users", headers=h, json=body)
        assert r.status_code == status, (body, r.text)
        err = r.json()["error"]
        assert err["code"] == code
        assert any(d["field"] == field for d in err["details"]), err


def test_last_super_admin_cannot_be_removed(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    me = world.super_admin["user_id"]
    for body in ({"role": "admin"}, {"is_active": False}):
        r = client.patch(f"/api/v1/users/{me}", headers=h, json=body)
        assert r.status_code == 409 and r.json()["error"]["code"] == "last_super_admin"


def test_admin_never_manages_users(client: TestClient, make_factory) -> None:
    world = make_factory()
    for token in (world.admin_plain_token, world.admin_all_token):
        h = auth(token)
        assert client.get("/api/v1/users", headers=h).status_code == 403
        assert client.get("/api/v1/audit-events", headers=h).status_code == 403
        r = client.post("/api/v1/users", headers=h, json={"email": "x@plant.example", "password": PASSWORD})
        assert r.status_code == 403
        assert (
            client.patch(f"/api/v1/users/{world.super_admin['user_id']}", headers=h, json={"role": "admin"}).status_code
            == 403
        )
        assert client.get("/api/v1/factory", headers=h).status_code == 200


def test_root_creates_factories_with_valid_input_only(client: TestClient, root_token: str, make_factory) -> None:
    h = auth(root_token)
    world = make_factory(with_admins=False)
    admin = {"email": "a@b.example", "full_name": "A", "password": PASSWORD}
    cases = [
        ({"name": "X", "slug": world.slug, "super_admin": admin}, 409, "slug_taken"),
        ({"name": "X", "slug": "Bad Slug", "super_admin": admin}, 422, "validation_error"),
        ({"name": "X", "slug": "ok-slug-1", "timezone": "Mars/Olympus", "super_admin": admin}, 422, "validation_error"),
        ({"name": "X", "slug": "ok-slug-2", "super_admin": {**admin, "password": "weak"}}, 422, "weak_password"),
        ({"slug": "ok-slug-3", "super_admin": admin}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        r = client.post("/api/v1/platform/factories", headers=h, json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]["code"] == code
        if code == "weak_password":
            assert r.json()["error"]["details"][0]["field"] == "body.super_admin.password"
        if code == "validation_error":
            assert "Value error" not in r.text
    listed = client.get("/api/v1/platform/factories?limit=200", headers=h).json()
    mine = [f for f in listed["items"] if f["id"] == world.id]
    assert mine and mine[0]["user_count"] == 1 and mine[0]["timezone"] == "Europe/Berlin"
    assert client.get(f"/api/v1/platform/factories/{world.id}", headers=h).json()["slug"] == world.slug
    assert client.get("/api/v1/platform/factories/nope", headers=h).status_code == 404
    r = client.post(
        f"/api/v1/platform/factories/{world.id}/super-admins",
        headers=h,
        json={"email": "second@plant.example", "full_name": "Second", "password": PASSWORD},
    )
    assert r.status_code == 201 and r.json()["role"] == "super_admin"
    assert login(client, world.slug, "second@plant.example")["principal"]["role"] == "super_admin"
    public = client.get("/api/v1/public/factories?limit=200").json()
    entry = [f for f in public["items"] if f["slug"] == world.slug]
    assert entry == [{"slug": world.slug, "name": world.name}]


def test_factory_details_are_editable_by_super_admin_only(client: TestClient, make_factory) -> None:
    world = make_factory()
    r = client.patch("/api/v1/factory", headers=auth(world.super_token), json={"timezone": "Asia/Seoul"})
    assert r.status_code == 200 and r.json()["timezone"] == "Asia/Seoul"
    assert (
        client.patch("/api/v1/factory", headers=auth(world.admin_all_token), json={"description": "x"}).status_code
        == 403
    )
    r = client.patch("/api/v1/factory", headers=auth(world.super_token), json={"timezone": "Nowhere/City"})
    assert r.status_code == 422


def test_write_areas_follow_permission_flags(client: TestClient, make_factory) -> None:
    """The gate every write route of devices, rules, alerts, analytics and reports uses."""
    from fastapi import Depends

    from factoryops.tenancy.deps import require_permission
    from factoryops.tenancy.models import ALL_PERMISSIONS
    from factoryops.tenancy.service import Principal

    world = make_factory()
    app = client.app
    for flag in ALL_PERMISSIONS:

        def write(p: Principal = Depends(require_permission(flag))) -> dict[str, str]:
            return {"by": p.email}

        app.add_api_route(f"/api/v1/test-write/{flag}", write, methods=["POST"])  # type: ignore[attr-defined]
        app.router.routes.insert(0, app.router.routes.pop())  # type: ignore[attr-defined]
    r = client.patch(
        f"/api/v1/users/{world.admin_plain['id']}",
        headers=auth(world.super_token),
        json={"permissions": ["devices", "reports"]},
    )
    assert r.status_code == 200
    for flag in ALL_PERMISSIONS:
        path = f"/api/v1/test-write/{flag}"
        assert client.post(path, headers=auth(world.super_token)).status_code == 200
        assert client.post(path, headers=auth(world.admin_all_token)).status_code == 200
        r = client.post(path, headers=auth(world.admin_plain_token))
        if flag in ("devices", "reports"):
            assert r.status_code == 200
        else:
            assert r.status_code == 403 and flag in r.json()["error"]["message"]
