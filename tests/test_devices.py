"""The device registry: register, search, import, credentials, status, properties."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from factoryops.core.db import utcnow
from factoryops.core.mqtt_password import verify_mqtt_password
from factoryops.devices.models import Device, Property
from support import auth


def _device_row(client: TestClient, factory_id: str, device_id: str) -> Device:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(factory_id) as s:
        return s.execute(select(Device).where(Device.device_id == device_id)).scalar_one()


def test_register_device_shows_credentials_once(client: TestClient, make_factory) -> None:
    world = make_factory()
    h = auth(world.admin_all_token)
    r = client.post("/api/v1/devices", headers=h, json={"device_id": "press-07", "name": "Press 7", "type": "press"})
    assert r.status_code == 201, r.text
    created = r.json()
    mqtt = created["mqtt"]
    assert mqtt["topic"] == f"factories/{world.id}/devices/press-07/telemetry"
    assert mqtt["username"] == f"{world.id}/press-07" and len(mqtt["password"]) >= 24
    assert created["status"] == "never_seen"
    row = _device_row(client, world.id, "press-07")
    assert verify_mqtt_password(mqtt["password"], row.mqtt_password_hash)
    assert not verify_mqtt_password("guess", row.mqtt_password_hash)
    fetched = client.get("/api/v1/devices/press-07", headers=h).json()
    assert "mqtt" not in fetched and mqtt["password"] not in str(fetched)
    rotated = client.post("/api/v1/devices/press-07/rotate-credentials", headers=h).json()["mqtt"]
    assert rotated["password"] != mqtt["password"]
    row = _device_row(client, world.id, "press-07")
    assert verify_mqtt_password(rotated["password"], row.mqtt_password_hash)
    assert not verify_mqtt_password(mqtt["password"], row.mqtt_password_hash)
    r = client.post("/api/v1/devices", headers=h, json={"device_id": "press-07"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "device_exists"
    for bad in ("has space", "a/b", "+", "#", "", "x" * 65, "-lead"):
        r = client.post("/api/v1/devices", headers=h, json={"device_id": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"]["details"][0]["field"] == "body.device_id"


def test_device_writes_need_the_devices_permission(client: TestClient, make_factory) -> None:
    world = make_factory()
    r = client.post("/api/v1/devices", headers=auth(world.admin_plain_token), json={"device_id": "m1"})
    assert r.status_code == 403
    client.post("/api/v1/devices", headers=auth(world.super_token), json={"device_id": "m1"})
    assert client.get("/api/v1/devices/m1", headers=auth(world.admin_plain_token)).status_code == 200
    r = client.patch("/api/v1/devices/m1", headers=auth(world.admin_plain_token), json={"name": "x"})
    assert r.status_code == 403
    r = client.patch(
        "/api/v1/devices/m1", headers=auth(world.admin_all_token), json={"name": "Mill 1", "location": "Hall A"}
    )
    assert r.status_code == 200 and r.json()["name"] == "Mill 1"
    events = client.get("/api/v1/audit-events?action=device_updated", headers=auth(world.super_token)).json()["items"]
    assert events[0]["details"]["changes"]["name"] == ["m1", "Mill 1"]


def test_csv_import_creates_updates_and_reports_bad_lines(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    h = {**auth(world.super_token), "content-type": "text/csv"}
    client.post("/api/v1/devices", headers=auth(world.super_token), json={"device_id": "old-1", "name": "Old"})
    csv_text = (
        "\ufeffdevice_id,name,type,location\n"
        "old-1,Renamed,meter,Hall C\n"
        "new-1,New One,meter,Hall A\n"
        "new-2,New Two,,\n"
        "bad id,Broken,,\n"
        "new-1,Again,,\n"
    )
    r = client.post("/api/v1/devices/import", headers=h, content=csv_text)
    assert r.status_code == 200, r.text
    result = r.json()
    assert [d["device_id"] for d in result["created"]] == ["new-1", "new-2"]
    assert all(d["mqtt"]["password"] for d in result["created"])
    assert result["updated"] == 1
    assert [(e["line"], e["device_id"]) for e in result["errors"]] == [(5, "bad id"), (6, "new-1")]
    assert client.get("/api/v1/devices/old-1", headers=h).json()["name"] == "Renamed"
    r = client.post("/api/v1/devices/import", headers=h, content="name,type\nx,y\n")
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_csv"


def test_search_filters_pages_and_status_counts(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    rows = "device_id,name,type,location\n" + "".join(
        f"m-{i:03d},Machine {i},{'press' if i % 2 else 'oven'},Hall {'AB'[i % 2]}\n" for i in range(40)
    )
    r = client.post("/api/v1/devices/import", headers={**h, "content-type": "text/csv"}, content=rows)
    assert len(r.json()["created"]) == 40
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:
        for d in s.execute(select(Device)).scalars():
            n = int(d.device_id[2:])
            if n < 10:
                d.last_seen = utcnow() - timedelta(seconds=30)
            elif n < 15:
                d.last_seen = utcnow() - timedelta(hours=2)
            if n == 39:
                d.enabled = False
    summary = client.get("/api/v1/devices/summary", headers=h).json()
    assert summary == {
        "total": 40,
        "online": 10,
        "offline": 5,
        "never_seen": 24,
        "disabled": 1,
        "online_window_seconds": 300,
    }
    page = client.get("/api/v1/devices?status=online&limit=4&offset=4", headers=h).json()
    assert page["total"] == 10 and [d["device_id"] for d in page["items"]] == ["m-004", "m-005", "m-006", "m-007"]
    assert all(d["status"] == "online" for d in page["items"])
    assert client.get("/api/v1/devices?type=press", headers=h).json()["total"] == 20
    assert client.get("/api/v1/devices?q=machine 3", headers=h).json()["total"] == 11
    assert client.get("/api/v1/devices?q=HALL a&limit=1", headers=h).json()["total"] == 20
    assert client.get("/api/v1/devices?status=bogus", headers=h).status_code == 422


def test_property_settings_by_super_admin(client: TestClient, make_factory) -> None:
    world = make_factory()
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:
        s.add(Property(name="phase_a.voltage", unit="V"))
    r = client.patch(
        "/api/v1/properties/phase_a.voltage",
        headers=auth(world.super_token),
        json={"display_name": "Phase A voltage", "unit": "kV", "kind": "gauge"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["unit"] == "kV" and r.json()["unit_inferred"] is False
    assert (
        client.patch(
            "/api/v1/properties/phase_a.voltage", headers=auth(world.admin_all_token), json={"unit": "V"}
        ).status_code
        == 403
    )
    assert (
        client.patch("/api/v1/properties/nope", headers=auth(world.super_token), json={"unit": "V"}).status_code == 404
    )
    r = client.patch("/api/v1/properties/phase_a.voltage", headers=auth(world.super_token), json={"kind": "rate"})
    assert r.status_code == 422
    listed = client.get("/api/v1/properties?q=phase", headers=auth(world.admin_plain_token)).json()
    assert listed["total"] == 1 and listed["items"][0]["display_name"] == "Phase A voltage"
