"""Faults against the real services: the telemetry process killed, the broker restarted mid-stream.

Every message the broker acknowledged to the publisher must end up stored, exactly once.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from factoryops.core.db import utcnow
from factoryops.ports.timeseries.base import FactoryScope
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore
from factoryops.ports.timeseries.influx import InfluxTimeseriesStore
from influx import _free_ports, influxdb
from services import AckedPublisher, factoryops, mosquitto, read_until, stop
from support import auth, free_port

TOTAL = 3000


def stored(store_dir: Path, factory_id: str) -> list[float]:
    store = EmbeddedTimeseriesStore(store_dir)
    try:
        result = store.query(
            FactoryScope(factory_id),
            ["meter-1"],
            ["seq"],
            utcnow() - timedelta(hours=1),
            utcnow() + timedelta(seconds=1),
        )
        return [s.value for s in next(iter(result.series.values()), [])]
    finally:
        store.close()


def wait_stored(store_dir: Path, factory_id: str, n: int, timeout: float) -> list[float]:
    deadline = time.monotonic() + timeout
    values: list[float] = []
    while time.monotonic() < deadline:
        values = stored(store_dir, factory_id)
        if len(set(values)) >= n:
            return values
        time.sleep(0.5)
    return values


def _setup(client: TestClient, make_factory, tmp_path: Path, database_url: str) -> tuple[Any, dict[str, str], int]:  # type: ignore[no-untyped-def]
    world = make_factory(with_admins=False)
    client.post("/api/v1/devices", headers=auth(world.super_token), json={"device_id": "meter-1"})
    port = free_port()
    env = {
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_DATABASE__URL": database_url,
        "FACTORYOPS_MQTT__PORT": str(port),
        "FACTORYOPS_TELEMETRY_NAME": "fault-test",
    }
    return world, env, port


def test_telemetry_process_killed_mid_stream(
    client: TestClient, make_factory, tmp_path: Path, database_url: str
) -> None:
    world, env, port = _setup(client, make_factory, tmp_path, database_url)
    with mosquitto(tmp_path / "broker", port, persistent=True):
        service = factoryops(["telemetry"], env, tmp_path)
        read_until(service, "confirmed by the broker")  # a message published now has a subscriber
        time.sleep(0.5)
        pub = AckedPublisher(port, world.id, f"fault-pub-{port}")
        for seq in range(TOTAL):
            pub.publish("meter-1", seq)
            if seq == TOTAL // 3:
                service.send_signal(signal.SIGKILL)  # no goodbye: whatever was not acknowledged comes again
                service.wait(10)
            if seq % 50 == 0:
                time.sleep(0.02)
        pub.wait_acked(30)
        service = factoryops(["telemetry"], env, tmp_path)
        read_until(service, "confirmed by the broker")  # a message published now has a subscriber
        values = wait_stored(tmp_path / "data" / "timeseries", world.id, TOTAL, 60)
        code, out = stop(service)
        pub.close()
    assert pub.acked_count() == TOTAL
    assert set(values) == {float(s) for s in range(TOTAL)}, f"missing {TOTAL - len(set(values))}"
    # At-least-once: messages written but not yet acknowledged when the process died come again
    # and are stored again (with their new ingestion time). They are bounded by the in-flight window.
    duplicates = len(values) - len(set(values))
    print(f"killed mid-stream: {TOTAL} acknowledged, all stored, {duplicates} stored twice")
    assert duplicates <= 1000
    assert code == 0, out


def test_broker_restart_mid_stream(client: TestClient, make_factory, tmp_path: Path, database_url: str) -> None:
    """With a plain subscription. Mosquitto 2.0.11 (Debian's) restores a *shared* subscription from
    its persistence file but often delivers nothing to it after the restart (seen here in about
    half of the runs); see docs/telemetry.md. EMQX keeps shared subscriptions in its own way."""
    world, env, port = _setup(client, make_factory, tmp_path, database_url)
    env["FACTORYOPS_MQTT__SHARED_GROUP"] = ""
    broker_dir = tmp_path / "broker"
    broker = mosquitto(broker_dir, port, persistent=True)
    proc = broker.__enter__()
    service = factoryops(["telemetry"], env, tmp_path)
    read_until(service, "confirmed by the broker")  # a message published now has a subscriber
    time.sleep(0.5)
    pub = AckedPublisher(port, world.id, f"fault-pub-{port}")
    try:
        for seq in range(TOTAL):
            pub.publish("meter-1", seq)
            if seq == TOTAL // 2:
                broker.__exit__(None, None, None)  # SIGTERM: Mosquitto saves its sessions and queues
                assert proc.returncode is not None
                time.sleep(1.0)
                broker = mosquitto(broker_dir, port, persistent=True)
                proc = broker.__enter__()
            if seq % 50 == 0:
                time.sleep(0.02)
        pub.wait_acked(60)
        values = wait_stored(tmp_path / "data" / "timeseries", world.id, pub.acked_count(), 60)
    finally:
        code, out = stop(service)
        pub.close()
        broker.__exit__(None, None, None)
    missing = sorted({float(s) for s in range(TOTAL)} - set(values))
    assert pub.acked_count() == TOTAL
    assert not missing, f"missing {len(missing)}: {missing[:3]}..{missing[-3:]}\n{out}"
    assert code == 0, out
    assert "lost the MQTT connection" in out


def test_influxdb_down_for_a_minute(client: TestClient, make_factory, tmp_path: Path, database_url: str) -> None:
    """The whole path (MQTT -> telemetry process -> InfluxDB) with InfluxDB stopped for 60 s mid-stream.

    Messages keep being acknowledged while InfluxDB is down (they go to the spool), the health
    alert is raised, and once InfluxDB is back the spool is replayed: every acknowledged message is
    in InfluxDB exactly once. The test does not depend on the metadata database, so it runs in the
    SQLite pass only (it takes about 100 s).
    """
    if os.environ.get("FACTORYOPS_TEST_DB") == "mysql":
        pytest.skip("independent of the metadata database: runs in the SQLite pass")
    world, env, port = _setup(client, make_factory, tmp_path, database_url)
    http_port, rpc_port = _free_ports(2)
    folder = tmp_path / "influx"
    env |= {
        "FACTORYOPS_TIMESERIES__BACKEND": "influxdb",
        "FACTORYOPS_TIMESERIES__INFLUX_URL": f"http://127.0.0.1:{http_port}",
        "FACTORYOPS_TIMESERIES__INFLUX_DATABASE": "outage",
        "FACTORYOPS_TELEMETRY_HEALTH_AFTER_SECONDS": "10",
    }
    rate, before, down, after = 20, 10.0, 60.0, 10.0
    seq = 0

    with mosquitto(tmp_path / "broker", port, persistent=True):
        influx = influxdb(folder, ports=(http_port, rpc_port))
        influx.__enter__()
        service = factoryops(["telemetry"], env, tmp_path)
        try:
            read_until(service, "confirmed by the broker")  # a message published now has a subscriber
            pub = AckedPublisher(port, world.id, f"fault-pub-{port}")
            seq = pub.stream(["meter-1"], seq, before, rate)
            influx.__exit__(None, None, None)  # InfluxDB stops: the writer retries, then spools
            seq = pub.stream(["meter-1"], seq, down, rate)
            acked_while_down = pub.acked_count()
            influx = influxdb(folder, ports=(http_port, rpc_port))
            server = influx.__enter__()
            seq = pub.stream(["meter-1"], seq, after, rate)
            pub.wait_acked(30)
            store = InfluxTimeseriesStore(server.url, "outage", timeout=5.0)
            deadline = time.monotonic() + 120
            values: list[float] = []
            while time.monotonic() < deadline:
                result = store.query(
                    FactoryScope(world.id), ["meter-1"], ["seq"], utcnow() - timedelta(hours=1), utcnow()
                )
                values = [s.value for s in next(iter(result.series.values()), [])]
                if len(set(values)) >= seq:
                    break
                time.sleep(1.0)
            store.close()
        finally:
            code, out = stop(service)
            pub.close()
            influx.__exit__(None, None, None)
    assert pub.acked_count() == seq and acked_while_down > 500
    assert sorted(values) == [float(s) for s in range(seq)], f"stored {len(values)} of {seq}"  # once each
    # the service kept taking messages while InfluxDB was down: into the spool, with the alert
    assert "time-series store has been unreachable" in out and "batches spooled" in out, out[-3000:]
    print(f"InfluxDB down {down:.0f} s: {seq} messages acknowledged, all stored once")
    assert code == 0, out
