"""REST conventions: one error shape, pagination everywhere, probes, metrics, headers, the web UI."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from factoryops.core.text import LINE_PATTERN
from factoryops.entrypoints.api import MAX_BODY_BYTES, create_app
from factoryops.wiring import Platform
from services import mosquitto
from support import auth, free_port, make_settings


def _is_error(r) -> bool:  # type: ignore[no-untyped-def]
    body = r.json()
    return set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"]) and body["error"]["message"]


def test_errors_have_one_shape(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    cases = [
        (client.get("/api/v1/no-such-route", headers=h), 404, "not_found"),
        (client.delete("/api/v1/factory", headers=h), 405, "method_not_allowed"),
        (client.get("/api/v1/users/does-not-exist", headers=h), 404, "not_found"),
        (client.get("/api/v1/users?limit=5000", headers=h), 422, "validation_error"),
        (client.get("/api/v1/users?offset=-1", headers=h), 422, "validation_error"),
        (
            client.post("/api/v1/users", headers={**h, "content-type": "application/json"}, content=b"[1,2"),
            400,
            "malformed_json",
        ),
        (client.post("/api/v1/users", headers=h, json=["not", "an", "object"]), 422, "validation_error"),
        (
            client.post(
                "/api/v1/auth/login", content=b"x" * (MAX_BODY_BYTES + 1), headers={"content-type": "application/json"}
            ),
            413,
            "payload_too_large",
        ),
    ]
    for r, status, code in cases:
        assert r.status_code == status, (r.request.url, r.text)
        assert _is_error(r), r.text
        assert r.json()["error"]["code"] == code


def test_names_with_control_characters_are_refused_in_words(client: TestClient, make_factory) -> None:
    """A C1 code pasted into a name (U+0097 from a Windows document) has no glyph in charts and reports."""
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    r = client.post("/api/v1/devices", headers=h, json={"device_id": "press-1", "name": "Press \x97 line 1"})
    assert r.status_code == 422 and _is_error(r), r.text
    assert r.json()["error"]["details"] == [
        {
            "field": "body.name",
            "message": "must be one line of text without control characters (no line breaks, tabs or escape codes)",
        }
    ]
    assert client.get("/api/v1/devices/press-1", headers=h).status_code == 404  # nothing was stored
    r = client.post("/api/v1/devices", headers=h, json={"device_id": "press-1", "name": "Presse 1 \u2013 Halle Süd"})
    assert r.status_code == 201, r.text
    r = client.patch("/api/v1/devices/press-1", headers=h, json={"location": "Hall\nB"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.location"
    openapi = client.get("/api/v1/openapi.json").json()
    name = openapi["components"]["schemas"]["DeviceCreate"]["properties"]["name"]
    assert name["pattern"] == LINE_PATTERN  # generated clients and the fuzz run know the rule


def test_every_list_route_paginates(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    lists = []
    for path, item in spec["paths"].items():
        op = item.get("get")
        if not op:
            continue
        ref = op["responses"]["200"]["content"].get("application/json", {}).get("schema", {}).get("$ref", "")
        schema = spec["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {}) if ref else {}
        if "items" in schema.get("properties", {}):
            params = {p["name"] for p in op.get("parameters", [])}
            assert {"limit", "offset"} <= params, path
            assert {"items", "total", "limit", "offset"} <= set(schema["properties"]), path
            lists.append(path)
    assert {"/api/v1/users", "/api/v1/audit-events", "/api/v1/public/factories", "/api/v1/platform/factories"} <= set(
        lists
    )


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200 and spec.json()["info"]["title"] == "FactoryOps API"
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_health_and_readiness(client: TestClient, platform: Platform, tmp_path: Path) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.get("/readyz")  # no broker listens on the configured port
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not_ready" and body["checks"]["mqtt"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"
    port = free_port()
    settings = make_settings(tmp_path, platform.settings.database_url, mqtt={"port": port})
    with (
        mosquitto(tmp_path / "broker", port),
        TestClient(create_app(Platform(settings, platform.db, platform.tenancy))) as c,
    ):
        r = c.get("/readyz")
        assert r.status_code == 200, r.text
        assert {k: v["status"] for k, v in r.json()["checks"].items()} == {
            "database": "ok",
            "mqtt": "ok",
            "timeseries": "ok",
            "objectstore": "ok",
        }


def test_errors_are_counted(client: TestClient) -> None:
    def count() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith('factoryops_http_errors_total{code="not_authenticated",status="401"}'):
                return float(line.split()[-1])
        return 0.0

    before = count()
    client.get("/api/v1/users")
    client.get("/api/v1/users")
    assert count() == before + 2


def test_security_headers(client: TestClient) -> None:
    r = client.get("/api/v1/public/factories")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert (
        "access-control-allow-origin"
        not in client.options(
            "/api/v1/public/factories",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
        ).headers
    )


def test_web_portal_is_served_with_spa_fallback(platform: Platform, tmp_path: Path) -> None:
    web = tmp_path / "web"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<html>portal</html>")
    (web / "assets" / "app.js").write_text("console.log('x')")
    (tmp_path / "secret.txt").write_text("do not serve")
    settings = make_settings(tmp_path, platform.settings.database_url, web_dir=web)
    with TestClient(create_app(Platform(settings, platform.db, platform.tenancy))) as c:
        assert c.get("/").text == "<html>portal</html>"
        assert c.get("/f/acme/users").text == "<html>portal</html>"
        assert c.get("/assets/app.js").text == "console.log('x')"
        assert "do not serve" not in c.get("/../secret.txt").text
        assert "do not serve" not in c.get("/%2e%2e/secret.txt").text
        r = c.get("/api/v1/nothing-here")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    settings = make_settings(tmp_path, platform.settings.database_url, web_dir=tmp_path / "empty")
    with TestClient(create_app(Platform(settings, platform.db, platform.tenancy))) as c:
        r = c.get("/")
        assert r.status_code == 404 and r.json()["error"]["code"] == "web_ui_not_built"
