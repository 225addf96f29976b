"""InfluxDB down mid-stream: the writer spools to disk, raises the health alert, replays in order
once InfluxDB is back, and the store ends with every point exactly once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from factoryops.ports.timeseries.base import FactoryScope, Point
from factoryops.ports.timeseries.influx import InfluxTimeseriesStore
from factoryops.telemetry.spool import Spool
from factoryops.telemetry.writer import BatchWriter, WriterHealth
from influx import _free_ports, influxdb

FACTORY = "factory-outage"
PER_PHASE = 400


def test_influx_outage_spools_alerts_and_replays(tmp_path: Path) -> None:
    http_port, rpc_port = _free_ports(2)
    ports = (http_port, rpc_port)  # the same address after the restart
    folder = tmp_path / "influx"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    acked: list[int] = []
    alerts: list[bool] = []

    def on_health(health: WriterHealth) -> None:
        alerts.append(health.alerting)

    def submit(writer: BatchWriter, seq: int) -> None:
        points = [Point("meter-1", "seq", start + timedelta(seconds=seq), float(seq))]
        writer.submit(FACTORY, points, lambda: acked.append(seq))

    with influxdb(folder, ports=ports) as server:
        store = InfluxTimeseriesStore(server.url, "outage", timeout=2.0)
        writer = BatchWriter(
            store,
            Spool(tmp_path / "spool.db"),
            max_delay=0.02,
            retry_for=0.5,
            health_after=2.0,
            on_health_change=on_health,
        )
        writer.start()
        for seq in range(PER_PHASE):
            submit(writer, seq)
        assert writer.drain(30)
    # InfluxDB is down: messages are still acknowledged, because they are in the spool
    for seq in range(PER_PHASE, 2 * PER_PHASE):
        submit(writer, seq)
        if seq % 100 == 0:
            time.sleep(0.5)
    assert writer.drain(30)
    assert len(acked) == 2 * PER_PHASE
    assert writer.spool.depth > 0 and not writer.health.store_ok
    time.sleep(2.5)
    submit(writer, 2 * PER_PHASE)  # a batch after the threshold raises the alert
    assert writer.drain(30)
    assert writer.health.alerting and alerts == [True]
    with influxdb(folder, ports=ports) as server:
        for seq in range(2 * PER_PHASE + 1, 3 * PER_PHASE):
            submit(writer, seq)
        deadline = time.monotonic() + 60
        while (writer.spool.depth or not writer.health.store_ok) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert writer.drain(30)
        writer.stop()
        assert writer.spool.depth == 0 and writer.health.store_ok and alerts == [True, False]
        result = store.query(FactoryScope(FACTORY), ["meter-1"], ["seq"], start, start + timedelta(hours=1))
        values = [s.value for s in next(iter(result.series.values()))]
        store.close()
    assert values == [float(s) for s in range(3 * PER_PHASE)]  # all, once each, in time order
