"""Property auto-discovery and device lookups of the ingest path, against the real database."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from factoryops.core.db import utcnow
from factoryops.devices.discovery import Registry
from factoryops.devices.inference import contradicts_counter, infer_kind, infer_unit
from factoryops.devices.models import Device, DeviceProperty
from support import auth


def test_inference_from_names() -> None:
    assert (infer_unit("power_kw"), infer_kind("power_kw")) == ("kW", "gauge")
    assert (infer_unit("energy_kwh"), infer_kind("energy_kwh")) == ("kWh", "counter")
    assert infer_unit("Usage_kWh") == "kWh" and infer_kind("Usage_kWh") == "counter"
    assert infer_unit("voltage_l1") == "V" and infer_unit("phase_a.voltage") == "V"
    assert infer_unit("temperature_zone2") == "°C" and infer_unit("current_a") == "A"
    assert infer_unit("phase_a.power") == "" and infer_unit("status") == ""
    assert not contradicts_counter(10.0, 12.0)
    assert not contradicts_counter(5000.0, 0.5)  # a reset back near zero
    assert contradicts_counter(100.0, 98.0)


def test_discovery_registers_once_and_flushes_activity(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    client.post("/api/v1/devices", headers=h, json={"device_id": "meter-1"})
    client.post("/api/v1/devices", headers=h, json={"device_id": "meter-2"})
    platform = client.app.state.platform  # type: ignore[attr-defined]
    registry = Registry(platform.db)
    assert registry.device(world.id, "ghost") is None
    known = registry.device(world.id, "meter-1")
    assert known is not None and known.enabled
    now = utcnow()
    assert registry.ensure_properties(world.id, "meter-1", ["power_kw", "energy_kwh"], now) == [
        "power_kw",
        "energy_kwh",
    ]
    assert registry.ensure_properties(world.id, "meter-1", ["power_kw", "energy_kwh"], now) == []
    # a second device reporting a known property: registered for the device, not new to the factory
    assert registry.ensure_properties(world.id, "meter-2", ["power_kw", "phase_a.voltage"], now) == ["phase_a.voltage"]
    # another process (a second registry) learns the same names from the database, without conflicts
    other = Registry(platform.db)
    assert other.ensure_properties(world.id, "meter-2", ["power_kw", "phase_a.voltage"], now) == []
    vocab = client.get("/api/v1/properties", headers=h).json()["items"]
    assert {p["name"]: (p["unit"], p["kind"]) for p in vocab} == {
        "energy_kwh": ("kWh", "counter"),
        "phase_a.voltage": ("V", "gauge"),
        "power_kw": ("kW", "gauge"),
    }
    later = now + timedelta(seconds=5)
    registry.device(world.id, "meter-2")
    registry.record(world.id, "meter-1", now, {"power_kw": 40.0, "energy_kwh": 100.0}, firmware="1.0")
    registry.record(
        world.id,
        "meter-1",
        later,
        {"power_kw": 41.5, "energy_kwh": 98.0},
        firmware="1.1",
        device_time=1_700_000_000_000,
    )
    registry.record(world.id, "meter-2", later, {"power_kw": 3.0})
    assert registry.flush() > 0
    device = client.get("/api/v1/devices/meter-1", headers=h).json()
    assert device["firmware_version"] == "1.1" and device["status"] == "online"
    assert device["last_device_time"].startswith("2023-11-14T22:13:20")  # epoch milliseconds, kept as metadata
    props = {p["property_name"]: p for p in client.get("/api/v1/devices/meter-1/properties", headers=h).json()}
    assert props["power_kw"]["last_value"] == 41.5
    # energy_kwh fell from 100 to 98: not a reset, so it is not a counter after all
    vocab = {p["name"]: p for p in client.get("/api/v1/properties", headers=h).json()["items"]}
    assert vocab["energy_kwh"]["kind"] == "gauge"
    assert registry.flush() == 0
    # activity less than activity_seconds newer than what was written is not written again ...
    soon = later + timedelta(seconds=registry.activity_seconds / 2)
    registry.record(world.id, "meter-1", soon, {"power_kw": 42.0})
    assert registry.flush() == 0
    props = {p["property_name"]: p for p in client.get("/api/v1/devices/meter-1/properties", headers=h).json()}
    assert props["power_kw"]["last_value"] == 41.5
    # ... activity that much newer is: the device row, its property row and the factory vocabulary row
    much_later = later + timedelta(seconds=registry.activity_seconds + 1)
    registry.record(world.id, "meter-1", much_later, {"power_kw": 43.0})
    assert registry.flush() == 3
    props = {p["property_name"]: p for p in client.get("/api/v1/devices/meter-1/properties", headers=h).json()}
    assert props["power_kw"]["last_value"] == 43.0


def test_discovery_is_factory_scoped(client: TestClient, make_factory) -> None:
    a = make_factory(with_admins=False)
    b = make_factory(with_admins=False)
    for w in (a, b):
        client.post("/api/v1/devices", headers=auth(w.super_token), json={"device_id": "same-id"})
    platform = client.app.state.platform  # type: ignore[attr-defined]
    registry = Registry(platform.db)
    registry.ensure_properties(a.id, "same-id", ["only_in_a"], utcnow())
    registry.ensure_properties(b.id, "same-id", ["only_in_b"], utcnow())
    names_b = [p["name"] for p in client.get("/api/v1/properties", headers=auth(b.super_token)).json()["items"]]
    assert names_b == ["only_in_b"]
    registry.record(a.id, "same-id", utcnow(), {"only_in_a": 1.0})
    registry.flush()
    assert client.get("/api/v1/devices/same-id", headers=auth(b.super_token)).json()["status"] == "never_seen"


def test_activity_of_many_devices_is_written_only_in_its_factory(client: TestClient, make_factory) -> None:
    """1,203 property rows of three devices in one flush: every value where it belongs, nothing elsewhere."""
    a = make_factory(with_admins=False)
    b = make_factory(with_admins=False)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    names = [f"m{i}" for i in range(401)]
    start = utcnow().replace(microsecond=123456)
    registry = Registry(platform.db)
    with platform.db.factory_session(a.id) as s:  # 3 devices of 401 properties, registered in bulk
        s.add_all(Device(device_id=f"d{k}", mqtt_username=f"{a.id}/d{k}", mqtt_password_hash="x") for k in range(3))
    client.post("/api/v1/devices", headers=auth(b.super_token), json={"device_id": "d0"})
    for k in range(3):
        registry.ensure_properties(a.id, f"d{k}", names, start)
    registry.ensure_properties(b.id, "d0", names[:5], start)
    registry.flush()
    at = start + timedelta(seconds=registry.activity_seconds + 1)
    for k in range(3):
        assert registry.device(a.id, f"d{k}") is not None  # as the pipeline looks it up first
        registry.record(a.id, f"d{k}", at, {n: k * 1000 + i + 0.25 for i, n in enumerate(names)})
    assert registry.flush() == 3 + 3 * 401 + 401  # devices, their properties, the factory's vocabulary
    with platform.db.factory_session(a.id) as s:
        rows = s.execute(
            select(
                DeviceProperty.device_id,
                DeviceProperty.property_name,
                DeviceProperty.last_value,
                DeviceProperty.last_seen,
            )
        ).all()
        seen = {d: t for d, t in s.execute(select(Device.device_id, Device.last_seen))}
    assert len(rows) == 3 * 401
    for device_id, name, value, last_seen in rows:
        assert value == int(device_id[1:]) * 1000 + int(name[1:]) + 0.25
        assert last_seen == at  # aware UTC, microseconds kept
    assert seen == {"d0": at, "d1": at, "d2": at}
    with platform.db.factory_session(b.id) as s:
        untouched = s.execute(select(DeviceProperty.last_value)).scalars().all()
    assert untouched and set(untouched) == {None}  # the other factory's same-named device is not touched
