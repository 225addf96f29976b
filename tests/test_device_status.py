"""A device's online status follows its own report interval, on the real database.

Online while last_seen is within max(5 min, 3 x report_interval_seconds + 60 s); the stored
online_until (last_seen + that window) is what the status filter and the counts compare in SQL,
written by the registry's batched activity writes and recomputed when the interval changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import select

from factoryops.core.db import Database, UTCDateTime, utcnow
from factoryops.core.migrate import current, upgrade
from factoryops.devices.discovery import Registry
from factoryops.devices.models import Device, online_window
from factoryops.tenancy.models import Factory
from support import auth
from test_migration_data import fresh, insert_old_device  # noqa: F401  (fresh: a database of its own)

STATUSES = ("online", "offline", "never_seen", "disabled")


def _platform(client: TestClient) -> Any:
    return client.app.state.platform  # type: ignore[attr-defined]


def _row(client: TestClient, factory_id: str, device_id: str) -> Device:
    with _platform(client).db.factory_session(factory_id) as s:
        return s.execute(select(Device).where(Device.device_id == device_id)).scalar_one()


def _seen(client: TestClient, factory_id: str, ago: dict[str, timedelta]) -> None:
    """Sets devices' last_seen through the ORM (online_until follows it, models.py)."""
    with _platform(client).db.factory_session(factory_id) as s:
        for device in s.execute(select(Device).where(Device.device_id.in_(list(ago)))).scalars():
            device.last_seen = utcnow() - ago[device.device_id]


def _status(client: TestClient, h: dict[str, str], device_id: str) -> str:
    r = client.get(f"/api/v1/devices/{device_id}", headers=h)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def test_the_window_is_five_minutes_or_three_intervals_and_the_batching_minute() -> None:
    assert online_window(None) == timedelta(minutes=5)
    assert online_window(10) == timedelta(minutes=5)  # 3 x 10 s + 60 s is less than 5 minutes
    assert online_window(80) == timedelta(minutes=5)
    assert online_window(900) == timedelta(seconds=2760)  # 46 minutes
    assert online_window(3600) == timedelta(hours=3, minutes=1)


def test_a_slow_meter_is_online_within_its_window_and_others_keep_five_minutes(
    client: TestClient, make_factory
) -> None:
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    for device_id, interval in (("meter-a", 900), ("meter-b", 900), ("press-1", None), ("press-2", None)):
        r = client.post(
            "/api/v1/devices", headers=h, json={"device_id": device_id, "report_interval_seconds": interval}
        )
        assert r.status_code == 201, r.text
        assert r.json()["report_interval_seconds"] == interval
        assert r.json()["online_window_seconds"] == (2760 if interval else 300)
    _seen(
        client,
        world.id,
        {
            "meter-a": timedelta(minutes=20),
            "meter-b": timedelta(minutes=50),
            "press-1": timedelta(minutes=4),
            "press-2": timedelta(minutes=20),
        },
    )
    assert _status(client, h, "meter-a") == "online"  # 20 min < 46 min
    assert _status(client, h, "meter-b") == "offline"  # 50 min > 46 min
    assert _status(client, h, "press-1") == "online"  # no interval: the 5-minute rule
    assert _status(client, h, "press-2") == "offline"
    row = _row(client, world.id, "meter-a")
    assert row.last_seen is not None and row.online_until == row.last_seen + timedelta(seconds=2760)
    online = client.get("/api/v1/devices?status=online", headers=h).json()
    assert [d["device_id"] for d in online["items"]] == ["meter-a", "press-1"]
    summary = client.get("/api/v1/devices/summary", headers=h).json()
    assert (summary["online"], summary["offline"]) == (2, 2)
    assert summary["online_window_seconds"] == 300  # the default window


def test_status_filter_and_counts_agree_with_each_device(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    intervals = (None, 5, 60, 300, 900, 3600)
    agos = (None, timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30), timedelta(hours=2))
    ago: dict[str, timedelta] = {}
    n = 0
    for interval in intervals:
        for seen_ago in agos:
            for enabled in (True, False):
                device_id = f"d-{n:03d}"
                n += 1
                body: dict[str, Any] = {"device_id": device_id, "report_interval_seconds": interval}
                assert client.post("/api/v1/devices", headers=h, json=body).status_code == 201
                if not enabled:
                    assert client.patch(f"/api/v1/devices/{device_id}", headers=h, json={"enabled": False}).is_success
                if seen_ago is not None:
                    ago[device_id] = seen_ago
    _seen(client, world.id, ago)
    listed = client.get("/api/v1/devices?limit=100", headers=h).json()["items"]
    assert len(listed) == n
    by_status = {s: {d["device_id"] for d in listed if d["status"] == s} for s in STATUSES}
    for device in listed:  # each device's own status follows its own window
        seen_ago = ago.get(device["device_id"])
        expected = (
            "disabled"
            if not device["enabled"]
            else "never_seen"
            if seen_ago is None
            else "online"
            if seen_ago <= timedelta(seconds=device["online_window_seconds"])
            else "offline"
        )
        assert device["status"] == expected, device
        assert device["online_window_seconds"] == online_window(device["report_interval_seconds"]).total_seconds()
    assert all(by_status.values())  # every status occurs
    summary = client.get("/api/v1/devices/summary", headers=h).json()
    for status in STATUSES:
        filtered = client.get(f"/api/v1/devices?status={status}&limit=100", headers=h).json()
        assert {d["device_id"] for d in filtered["items"]} == by_status[status], status
        assert filtered["total"] == summary[status] == len(by_status[status]), status
    assert summary["total"] == n


def test_the_registry_activity_write_moves_online_until(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    client.post("/api/v1/devices", headers=h, json={"device_id": "meter-15", "report_interval_seconds": 900})
    client.post("/api/v1/devices", headers=h, json={"device_id": "press-1"})
    registry = Registry(_platform(client).db)
    assert registry.device(world.id, "meter-15") is not None
    t = utcnow() - timedelta(minutes=30)
    registry.record(world.id, "meter-15", t, {"power_kw": 12.0})
    registry.record(world.id, "press-1", t, {"power_kw": 40.0}, device_time=1_700_000_000_000)  # the clock's row
    assert registry.flush() == 2
    meter, press = _row(client, world.id, "meter-15"), _row(client, world.id, "press-1")
    assert (meter.last_seen, meter.online_until) == (t, t + timedelta(seconds=2760))
    assert (press.last_seen, press.online_until) == (t, t + timedelta(minutes=5))
    assert press.last_device_time is not None
    assert _status(client, h, "meter-15") == "online" and _status(client, h, "press-1") == "offline"
    # The next write a minute later moves it on.
    later = t + timedelta(seconds=registry.activity_seconds + 1)
    registry.record(world.id, "meter-15", later, {"power_kw": 13.0})
    registry.flush()
    assert _row(client, world.id, "meter-15").online_until == later + timedelta(seconds=2760)


def test_an_interval_change_recomputes_online_until(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    client.post("/api/v1/devices", headers=h, json={"device_id": "meter-7"})
    _seen(client, world.id, {"meter-7": timedelta(minutes=20)})
    seen = _row(client, world.id, "meter-7").last_seen
    assert seen is not None
    assert _status(client, h, "meter-7") == "offline"
    r = client.patch("/api/v1/devices/meter-7", headers=h, json={"report_interval_seconds": 900})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "online" and r.json()["online_window_seconds"] == 2760
    assert _row(client, world.id, "meter-7").online_until == seen + timedelta(seconds=2760)
    assert [d["device_id"] for d in client.get("/api/v1/devices?status=online", headers=h).json()["items"]] == [
        "meter-7"
    ]
    # Other attributes leave it as it is; null clears it (back to the 5-minute rule).
    r = client.patch("/api/v1/devices/meter-7", headers=h, json={"name": "Meter 7"})
    assert r.json()["report_interval_seconds"] == 900
    r = client.patch("/api/v1/devices/meter-7", headers=h, json={"report_interval_seconds": None})
    assert r.json()["report_interval_seconds"] is None and r.json()["status"] == "offline"
    assert _row(client, world.id, "meter-7").online_until == seen + timedelta(minutes=5)
    events = client.get("/api/v1/audit-events?action=device_updated", headers=h).json()["items"]
    assert events[0]["details"]["changes"] == {"report_interval_seconds": [900, None]}
    assert client.get("/api/v1/devices/summary", headers=h).json()["offline"] == 1
    # A registry that loaded the fleet before the change writes with the new interval from its next reload.
    registry = Registry(_platform(client).db, refresh_ttl=0)
    registry.device(world.id, "meter-7")
    client.patch("/api/v1/devices/meter-7", headers=h, json={"report_interval_seconds": 600})
    known = registry.device(world.id, "meter-7")
    assert known is not None and known.report_interval == 600
    t = utcnow()
    registry.record(world.id, "meter-7", t, {"power_kw": 1.0})
    registry.flush()
    assert _row(client, world.id, "meter-7").online_until == t + timedelta(seconds=1860)
    for bad in (0, -5, 7 * 86_400 + 1, "often", 1.5):
        r = client.patch("/api/v1/devices/meter-7", headers=h, json={"report_interval_seconds": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"]["details"][0]["field"] == "body.report_interval_seconds"
    r = client.post("/api/v1/devices", headers=h, json={"device_id": "x-1", "report_interval_seconds": 0})
    assert r.status_code == 422


def test_csv_import_sets_the_report_interval(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    h = auth(world.super_token)
    client.post("/api/v1/devices", headers=h, json={"device_id": "old-1", "report_interval_seconds": 60})
    client.post("/api/v1/devices", headers=h, json={"device_id": "old-2", "report_interval_seconds": 60})
    _seen(client, world.id, {"old-1": timedelta(minutes=20), "old-2": timedelta(minutes=20)})
    csv_text = (
        "device_id,name,type,location,report_interval_seconds\n"
        "new-1,New 1,energy-meter,Hall A,900\n"
        "new-2,New 2,energy-meter,Hall A,\n"
        "old-1,,,,900\n"
        "old-2,Old 2,,,\n"
        "new-3,New 3,,,15m\n"
        "new-4,New 4,,,0\n"
        "bad id,,,,abc\n"
    )
    r = client.post("/api/v1/devices/import", headers={**h, "content-type": "text/csv"}, content=csv_text)
    assert r.status_code == 200, r.text
    result = r.json()
    assert [(d["device_id"], d["report_interval_seconds"]) for d in result["created"]] == [
        ("new-1", 900),
        ("new-2", None),
    ]
    assert result["updated"] == 2
    errors = [(e["line"], e["device_id"], e["message"]) for e in result["errors"]]
    assert [e[:2] for e in errors] == [(6, "new-3"), (7, "new-4"), (8, "bad id")]
    assert all("report_interval_seconds is a whole number of seconds" in e[2] for e in errors)
    assert errors[2][2].startswith("a device id is")  # both problems of the line, the id's first
    old1 = client.get("/api/v1/devices/old-1", headers=h).json()
    assert (old1["report_interval_seconds"], old1["status"]) == (900, "online")  # 20 min: online now
    row = _row(client, world.id, "old-1")
    assert row.last_seen is not None and row.online_until == row.last_seen + timedelta(seconds=2760)
    old2 = client.get("/api/v1/devices/old-2", headers=h).json()
    assert (old2["name"], old2["report_interval_seconds"], old2["status"]) == ("Old 2", 60, "offline")  # kept
    assert client.get("/api/v1/devices?status=online", headers=h).json()["total"] == 1
    r = client.post("/api/v1/devices/import", headers={**h, "content-type": "text/csv"}, content="name\nx\n")
    assert "report_interval_seconds" in r.json()["error"]["message"]  # among the allowed columns


def test_0015_backfills_online_until_from_last_seen(fresh: Database) -> None:  # noqa: F811
    upgrade(fresh.engine, "0014")
    seen = datetime(2026, 11, 27, 8, 30, 15, 250_000, tzinfo=UTC)
    with fresh.unscoped_session() as s:  # ESCAPE HATCH (test set-up): rows of one factory, each naming it
        factory = Factory(slug="plant", name="Plant", timezone="UTC")
        s.add(factory)
        s.flush()
        fid = factory.id
    with fresh.engine.begin() as conn:
        for device_id, last_seen in (("seen-1", seen), ("never-1", None)):
            insert_old_device(conn, fid, device_id, last_seen=last_seen)
    upgrade(fresh.engine, "0015")
    assert current(fresh.engine) == "0015"
    after = sa.table(
        "devices",
        sa.column("device_id", sa.String),
        sa.column("online_until", UTCDateTime()),
        sa.column("report_interval_seconds", sa.Integer),
    )
    with fresh.engine.connect() as conn:
        rows = {r.device_id: r for r in conn.execute(sa.select(after))}
    assert (rows["seen-1"].online_until, rows["seen-1"].report_interval_seconds) == (seen + timedelta(minutes=5), None)
    assert (rows["never-1"].online_until, rows["never-1"].report_interval_seconds) == (None, None)
