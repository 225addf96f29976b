"""`factoryops export-factory`: metadata, objects and every raw telemetry point of one factory in a folder,
read through the time-series port (embedded store and InfluxDB), nothing of another factory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from factoryops.core.db import utcnow
from factoryops.devices.models import DeviceProperty
from factoryops.ports.objectstore import FactoryScope, Key
from factoryops.ports.timeseries.base import Point, TimeseriesStore
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore
from factoryops.ports.timeseries.influx import InfluxTimeseriesStore
from factoryops.tenancy.backup import BackupError, restore_factory, verify
from factoryops.tenancy.factory_export import export_factory
from factoryops.wiring import Platform
from influx import influxdb
from services import factoryops
from support import FactoryWorld


@pytest.fixture(params=["embedded", "influxdb"])
def store(request: Any, tmp_path: Path) -> Iterator[TimeseriesStore]:
    if request.param == "embedded":
        embedded = EmbeddedTimeseriesStore(tmp_path / "timeseries")
        yield embedded
        embedded.close()
        return
    with influxdb(tmp_path / "influx") as server:
        influx = InfluxTimeseriesStore(server.url, "export_test")
        yield influx
        influx.close()


Written = dict[tuple[str, str], list[tuple[datetime, float]]]


def plant(platform: Platform, world: FactoryWorld, store: TimeseriesStore, shift: float) -> Written:
    """Two devices' properties in the registry and their points in the store; returns what was written."""
    now = utcnow().replace(microsecond=0)
    written: Written = {}
    series = {("press-1", "power_kw"): 120, ("press-1", "temp_c"): 120, ("meter-2", "energy_kwh"): 45}
    with platform.db.factory_session(world.id) as s:
        for device_id, prop in series:
            s.add(DeviceProperty(device_id=device_id, property_name=prop, first_seen=now - timedelta(hours=3)))
    points = []
    for (device_id, prop), count in series.items():
        for i in range(count):
            ts = now - timedelta(hours=2) + timedelta(seconds=45 * i, microseconds=250 * i)
            value = shift + i * 1.25
            points.append(Point(device_id, prop, ts, value))
            written.setdefault((device_id, prop), []).append((ts, value))
    assert store.write(FactoryScope(world.id), points) == len(points)
    return written


def test_export_factory_writes_metadata_objects_and_every_raw_point(
    client: TestClient, make_factory: Any, platform: Platform, store: TimeseriesStore, tmp_path: Path
) -> None:
    objects = platform.objects
    assert objects is not None
    a, b = make_factory(with_admins=False), make_factory(with_admins=False)
    written = plant(platform, a, store, shift=0.0)
    plant(platform, b, store, shift=10_000.0)  # same device ids in another factory: never exported
    objects.put_bytes(FactoryScope(a.id), Key("reports", "r1", "report.pdf"), b"%PDF a report")

    out = tmp_path / "export"
    result = export_factory(platform.db, objects, store, a.slug, out)
    assert result.devices == 2 and result.points == sum(len(v) for v in written.values()) == 285

    # telemetry: one Parquet file per device, exactly the points written
    for device_id in ("press-1", "meter-2"):
        table = pq.read_table(out / "telemetry" / f"{device_id}.parquet").to_pylist()
        got: dict[tuple[str, str], list[tuple[Any, float]]] = {}
        for row in table:
            assert row["device_id"] == device_id
            got.setdefault((device_id, row["property"]), []).append((row["ts"], row["value"]))
        expected = {k: v for k, v in written.items() if k[0] == device_id}
        assert {k: sorted(v) for k, v in got.items()} == expected
    index = json.loads((out / "telemetry" / "index.json").read_text())
    assert index["factory_id"] == a.id
    assert {d["device_id"]: d["rows"] for d in index["devices"]} == {"press-1": 240, "meter-2": 45}
    press = next(d for d in index["devices"] if d["device_id"] == "press-1")
    assert press["properties"] == ["power_kw", "temp_c"] and len(press["sha256"]) == 64

    # metadata and objects: the backup layout, which restore verifies and accepts
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["factory"]["id"] == a.id
    assert [o["key"] for o in manifest["objects"]] == ["reports/r1/report.pdf"]
    assert (out / "objects" / "reports" / "r1" / "report.pdf").read_bytes() == b"%PDF a report"
    verify(out, manifest)
    with pytest.raises(BackupError, match="exists in this platform"):
        restore_factory(platform.db, objects, out)

    readme = (out / "README.txt").read_text()
    assert a.slug in readme and "telemetry/<device_id>.parquet" in readme and "metadata/<table>.jsonl" in readme
    assert b.id not in "".join(
        p.read_text(errors="replace") for p in out.rglob("*") if p.is_file() and p.suffix != ".parquet"
    )

    with pytest.raises(BackupError, match="not an empty folder"):
        export_factory(platform.db, objects, store, a.id, out)


def test_export_factory_command(client: TestClient, make_factory: Any, platform: Platform, tmp_path: Path) -> None:
    assert platform.timeseries is not None
    a = make_factory(with_admins=False)
    written = plant(platform, a, platform.timeseries, shift=5.0)
    env = {
        "FACTORYOPS_DATA_DIR": str(platform.settings.data_dir),
        "FACTORYOPS_DATABASE__URL": platform.settings.database_url,
    }
    out = tmp_path / "export"
    proc = factoryops(["export-factory", "--factory", a.id, "--out", str(out)], env, tmp_path)
    text, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, text
    assert f"factory {a.slug} exported to {out}" in text and "285 telemetry points of 2 devices" in text
    rows = pq.read_table(out / "telemetry" / "meter-2.parquet").to_pylist()
    assert sorted((r["ts"], r["value"]) for r in rows) == written[("meter-2", "energy_kwh")]

    proc = factoryops(["export-factory", "--factory", a.id, "--out", str(out), "--since", "2026-01-01"], env, tmp_path)
    text, _ = proc.communicate(timeout=180)
    assert proc.returncode == 1 and "--since needs a time zone" in text, text
