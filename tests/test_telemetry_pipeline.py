"""The ingest pipeline against the real database, time-series store and Mosquitto."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from factoryops.core.db import utcnow
from factoryops.devices.discovery import Registry
from factoryops.ports.timeseries.base import FactoryScope
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore
from factoryops.telemetry.pipeline import IngestPipeline
from factoryops.telemetry.rejects import RejectLog
from factoryops.telemetry.service import TelemetryService
from factoryops.telemetry.spool import Spool
from factoryops.telemetry.writer import BatchWriter
from services import mosquitto
from support import auth, free_port, make_settings


def topic(factory_id: str, device_id: str) -> str:
    return f"factories/{factory_id}/devices/{device_id}/telemetry"


@pytest.fixture()
def plant(client: TestClient, make_factory) -> Any:  # type: ignore[no-untyped-def]
    world = make_factory(with_admins=False)
    for device_id in ("meter-1", "meter-2", "off-1"):
        r = client.post("/api/v1/devices", headers=auth(world.super_token), json={"device_id": device_id})
        assert r.status_code == 201
    client.patch("/api/v1/devices/off-1", headers=auth(world.super_token), json={"enabled": False})
    return world


@pytest.fixture()
def pipeline(client: TestClient, tmp_path: Path) -> Any:  # type: ignore[no-untyped-def]
    platform = client.app.state.platform  # type: ignore[attr-defined]
    store = EmbeddedTimeseriesStore(tmp_path / "ts")
    registry = Registry(platform.db)
    rejects = RejectLog(platform.db, lambda fid: True)
    writer = BatchWriter(store, Spool(tmp_path / "spool.db"), max_delay=0.02)
    writer.start()
    yield IngestPipeline(registry, writer, rejects, max_payload_bytes=1024), store
    writer.stop()
    store.close()


def test_good_and_bad_messages(client: TestClient, plant: Any, pipeline: Any) -> None:
    pipe, store = pipeline
    acks: list[str] = []
    fid = plant.id
    cases = [
        (topic(fid, "meter-1"), {"voltage_l1": 229.8, "power_kw": 41.2}, "accepted"),
        (
            topic(fid, "meter-1"),
            {"phase_a": {"voltage": 230.1}, "running": True, "ts": 1764201600, "fw": "2.1"},
            "accepted",
        ),
        (topic(fid, "meter-2"), {"power_kw": 3.5, "label": "text", "bad name": 1}, "accepted"),
        (topic(fid, "ghost"), {"power_kw": 1}, "unknown_device"),
        (topic(fid, "off-1"), {"power_kw": 1}, "device_disabled"),
        (f"factories/{fid}/devices/meter-1/other", {"power_kw": 1}, "bad_topic"),
        (topic(fid, "meter-1"), b"{not json", "invalid_json"),
        (topic(fid, "meter-1"), [1, 2], "not_an_object"),
        (topic(fid, "meter-1"), {"x": "only text"}, "non_numeric"),
        (topic(fid, "meter-1"), b'{"x": NaN}', "non_finite"),
        (topic(fid, "meter-1"), {"x": 1.0, "pad": "y" * 2000}, "oversize"),
        (topic(fid, "meter-1"), {}, "no_metrics"),
    ]
    for t, body, expected in cases:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        assert pipe.handle(t, raw, lambda t=t: acks.append(t)) == expected, (t, body)
    assert pipe.writer.drain()
    assert len(acks) == len(cases)  # every message is acknowledged once handled, good or bad
    latest = store.latest(FactoryScope(fid), ["meter-1", "meter-2"])
    got = {(k.device_id, k.property): s.value for k, s in latest.items()}
    assert got == {
        ("meter-1", "voltage_l1"): 229.8,
        ("meter-1", "power_kw"): 41.2,
        ("meter-1", "phase_a.voltage"): 230.1,
        ("meter-1", "running"): 1.0,
        ("meter-2", "power_kw"): 3.5,
    }
    pipe.registry.flush()
    pipe.rejects.flush()
    h = auth(plant.super_token)
    device = client.get("/api/v1/devices/meter-1", headers=h).json()
    assert device["firmware_version"] == "2.1" and device["status"] == "online"
    names = {p["name"] for p in client.get("/api/v1/properties", headers=h).json()["items"]}
    assert names == {"voltage_l1", "power_kw", "phase_a.voltage", "running"}
    rejects = client.get("/api/v1/telemetry/rejects?limit=200", headers=h).json()
    reasons = sorted({r["reason"] for r in rejects["items"]})
    assert reasons == sorted(
        {
            "unknown_device",
            "device_disabled",
            "invalid_json",
            "not_an_object",
            "non_numeric",
            "non_finite",
            "oversize",
            "no_metrics",
            "invalid_metric_name",
        }
    )
    counts = {
        (c["device_id"], c["reason"]): c["count"]
        for c in client.get("/api/v1/telemetry/reject-counts", headers=h).json()["items"]
    }
    assert counts[("meter-2", "non_numeric")] == 1 and counts[("ghost", "unknown_device")] == 1
    # later rejects add to the existing counters (and new ones get their own)
    for _ in range(3):
        pipe.handle(f"factories/{fid}/devices/ghost/telemetry", b'{"power_kw": 1}', lambda: None)
    pipe.handle(f"factories/{fid}/devices/phantom/telemetry", b'{"power_kw": 1}', lambda: None)
    pipe.rejects.flush()
    counts = {
        (c["device_id"], c["reason"]): c["count"]
        for c in client.get("/api/v1/telemetry/reject-counts", headers=h).json()["items"]
    }
    assert counts[("ghost", "unknown_device")] == 4 and counts[("phantom", "unknown_device")] == 1
    assert counts[("meter-2", "non_numeric")] == 1
    assert client.get("/api/v1/telemetry/rejects", headers=auth(plant.super_token)).status_code == 200


def test_history_and_latest_api(client: TestClient, plant: Any, pipeline: Any) -> None:
    pipe, store = pipeline
    platform = client.app.state.platform  # type: ignore[attr-defined]
    platform_store, platform.timeseries = platform.timeseries, store
    try:
        for i in range(5):
            pipe.handle(topic(plant.id, "meter-1"), json.dumps({"power_kw": float(i)}).encode(), lambda: None)
        assert pipe.writer.drain()
        h = auth(plant.super_token)
        latest = client.get("/api/v1/devices/meter-1/latest", headers=h).json()
        assert [(v["property"], v["value"], v["unit"]) for v in latest["values"]] == [("power_kw", 4.0, "kW")]
        start = (utcnow() - timedelta(minutes=5)).isoformat()
        r = client.get(
            "/api/v1/telemetry/history",
            headers=h,
            params={"device_id": "meter-1", "property": "power_kw", "start": start},
        )
        assert r.status_code == 200, r.text
        series = r.json()["series"]
        assert [p[1] for p in series[0]["points"]] == [0.0, 1.0, 2.0, 3.0, 4.0]
        r = client.get(
            "/api/v1/telemetry/history",
            headers=h,
            params={"device_id": "meter-1", "start": start, "aggregate": "max", "max_points": 10},
        )
        assert r.status_code == 200 and r.json()["aggregate"] == "max"
        assert max(p[1] for p in r.json()["series"][0]["points"]) == 4.0
        r = client.get("/api/v1/telemetry/history", headers=h, params={"device_id": "ghost"})
        assert r.status_code == 404
        r = client.get(
            "/api/v1/telemetry/history", headers=h, params={"device_id": "meter-1", "start": "2026-01-01T00:00:00"}
        )
        assert r.status_code == 422
        with client.stream("GET", "/api/v1/devices/meter-1/live?seconds=1", headers=h) as stream:
            first = next(line for line in stream.iter_lines() if line.startswith("data:"))
        assert json.loads(first[5:])["values"][0]["value"] == 4.0
    finally:
        platform.timeseries = platform_store


def _publisher(port: int) -> mqtt.Client:
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}", protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    return pub


def test_mqtt_end_to_end_with_a_restart_of_the_telemetry_service(
    client: TestClient, plant: Any, tmp_path: Path
) -> None:
    """Messages published while the service is down wait in the broker and are stored once it is back."""
    platform = client.app.state.platform  # type: ignore[attr-defined]
    port = free_port()
    settings = make_settings(tmp_path, platform.settings.database_url, mqtt={"port": port}, telemetry_name="t1")
    store = EmbeddedTimeseriesStore(tmp_path / "ts")
    with mosquitto(tmp_path / "broker", port, persistent=True):
        service = TelemetryService(settings, platform.db, store)
        service.start()
        assert service.connected.wait(10)
        time.sleep(0.3)  # the subscription is in place
        pub = _publisher(port)
        for i in range(300):
            pub.publish(topic(plant.id, "meter-1"), json.dumps({"seq": i}), qos=1).wait_for_publish(5)
        service.stop()
        for i in range(300, 600):  # nobody is listening: the broker keeps them for the session
            pub.publish(topic(plant.id, "meter-1"), json.dumps({"seq": i}), qos=1).wait_for_publish(5)
        service = TelemetryService(settings, platform.db, store)
        service.start()
        deadline = time.monotonic() + 30
        seen: set[float] = set()
        while time.monotonic() < deadline:
            result = store.query(
                FactoryScope(plant.id),
                ["meter-1"],
                ["seq"],
                utcnow() - timedelta(minutes=5),
                utcnow() + timedelta(seconds=1),
            )
            seen = {s.value for s in next(iter(result.series.values()), [])}
            if len(seen) >= 600:
                break
            time.sleep(0.2)
        service.stop()
        pub.loop_stop()
    assert seen == {float(i) for i in range(600)}
    store.close()


def test_retention_per_factory(client: TestClient, make_factory) -> None:
    a = make_factory()
    b = make_factory(with_admins=False)
    h = auth(a.super_token)
    platform_raw = client.get("/api/v1/telemetry/retention", headers=h).json()["platform_raw_days"]
    assert platform_raw == 30
    r = client.put("/api/v1/telemetry/retention", headers=h, json={"raw_days": 7})
    assert r.status_code == 200, r.text
    assert r.json()["raw_days"] == 7 and r.json()["own"] is True
    assert client.get("/api/v1/telemetry/retention", headers=auth(b.super_token)).json()["raw_days"] == 30
    r = client.put("/api/v1/telemetry/retention", headers=h, json={"raw_days": 400})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_retention"
    assert (
        client.put("/api/v1/telemetry/retention", headers=auth(a.admin_all_token), json={"raw_days": 3}).status_code
        == 403
    )
    r = client.put("/api/v1/telemetry/retention", headers=h, json={"reset": True})
    assert r.json()["raw_days"] == 30
    events = client.get("/api/v1/audit-events?action=retention_changed", headers=h).json()["items"]
    assert len(events) == 2
