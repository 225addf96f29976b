"""The property limits: a device (or a factory) past its number of properties gets new metric names
dropped with a clear reason, a counter and a system alert; known names keep flowing. Real database,
embedded time-series store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from factoryops.core.db import utcnow
from factoryops.core.settings import NotificationSettings
from factoryops.devices.discovery import Registry
from factoryops.notifications import system_alerts
from factoryops.notifications.system_alerts import SystemAlertRecorder
from factoryops.ports.timeseries.base import FactoryScope
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore
from factoryops.telemetry.pipeline import IngestPipeline
from factoryops.telemetry.rejects import RejectLog
from factoryops.telemetry.spool import Spool
from factoryops.telemetry.writer import BatchWriter
from support import auth, register_device


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("factoryops_telemetry_rejects_total", {"reason": reason}) or 0.0


@pytest.fixture()
def limited(client: TestClient, tmp_path: Path) -> Any:  # type: ignore[no-untyped-def]
    platform = client.app.state.platform  # type: ignore[attr-defined]
    store = EmbeddedTimeseriesStore(tmp_path / "ts")
    writer = BatchWriter(store, Spool(tmp_path / "spool.db"), max_delay=0.02)
    writer.start()
    registry = Registry(platform.db, max_per_device=3, max_per_factory=4)
    recorder = SystemAlertRecorder(platform.db, NotificationSettings())
    previous = system_alerts.install(recorder)
    yield IngestPipeline(registry, writer, RejectLog(platform.db, lambda fid: True)), store, recorder
    system_alerts.install(previous)
    recorder.stop()
    writer.stop()
    store.close()


def test_new_names_past_the_limits_are_dropped_and_told(client: TestClient, make_factory, limited: Any) -> None:
    pipe, store, recorder = limited
    world = make_factory(with_admins=False)
    for device in ("meter-1", "meter-2"):
        register_device(client, world, device)
    topic = f"factories/{world.id}/devices/{{}}/telemetry"
    before = rejected("too_many_properties")

    def send(device: str, body: dict[str, float]) -> str:
        return str(pipe.handle(topic.format(device), json.dumps(body).encode(), lambda: None))

    # A firmware that writes a counter into its key names: 3 names fit the device, the rest do not.
    assert send("meter-1", {"power_kw": 1.0, "x_1": 1.0, "x_2": 2.0, "x_3": 3.0, "x_4": 4.0}) == "accepted"
    assert send("meter-1", {"x_5": 5.0}) == "too_many_properties"  # nothing left: the message is rejected
    assert send("meter-1", {"power_kw": 2.0, "x_1": 1.5}) == "accepted"  # known names keep flowing
    # The factory holds 4 names: meter-2 may report a known one and one new one, not a second new one.
    assert send("meter-2", {"power_kw": 3.0, "energy_kwh": 10.0, "voltage_v": 230.0}) == "accepted"
    assert pipe.writer.drain()
    pipe.rejects.flush()
    recorder.flush(force=True)

    h = auth(world.super_token)
    names = {p["name"] for p in client.get("/api/v1/properties", headers=h).json()["items"]}
    assert names == {"power_kw", "x_1", "x_2", "energy_kwh"}
    start, end = utcnow() - timedelta(minutes=5), utcnow() + timedelta(minutes=1)
    stored = store.query(FactoryScope(world.id), ["meter-1", "meter-2"], None, start, end)
    assert {(k.device_id, k.property) for k in stored.series} == {
        ("meter-1", "power_kw"),
        ("meter-1", "x_1"),
        ("meter-1", "x_2"),
        ("meter-2", "power_kw"),
        ("meter-2", "energy_kwh"),
    }
    rejects = client.get("/api/v1/telemetry/rejects?limit=200", headers=h).json()["items"]
    too_many = [r for r in rejects if r["reason"] == "too_many_properties"]
    assert {r.get("metric") for r in too_many} >= {"x_3", "x_4", "x_5", "voltage_v"}, too_many
    assert "past the property limit (3 per device, 4 per factory)" in too_many[0]["detail"]
    assert rejected("too_many_properties") - before == 5  # x_3, x_4, x_5 (and its message), voltage_v
    [alert] = client.get("/api/v1/system-alerts?state=open", headers=h).json()["items"]
    assert alert["kind"] == "property_limit" and "meter-" in alert["message"]
