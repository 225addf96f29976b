"""``factoryops export-factory``: everything one factory has, in one folder a person or a program can read.

The folder is a factory backup (``manifest.json``, ``metadata/``, ``objects/``: see
:mod:`factoryops.tenancy.backup`, so ``factoryops restore --in`` takes it) plus the telemetry:
``telemetry/<device_id>.parquet`` with every raw point of each device, read from the time-series
store through its port by the analytics export (:func:`factoryops.analytics.datasets.export`),
which streams bounded slices so memory stays flat however much a device has. ``telemetry/index.json``
lists the files with their row counts and SHA-256, and ``README.txt`` explains the layout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from factoryops.core.db import Database, utcnow
from factoryops.ports.objectstore.base import ObjectStore
from factoryops.ports.timeseries.base import EPOCH, FactoryScope, TimeseriesStore
from factoryops.tenancy.backup import BackupError, BackupResult, backup_factory

log = logging.getLogger(__name__)

TELEMETRY_DIR = "telemetry"
# Points are stamped when they arrive, so none is older than its property's first_seen; the margin
# covers clocks and a late registry flush.
FIRST_SEEN_MARGIN = timedelta(days=1)

README = """\
FactoryOps export of factory {slug} ({name}), id {factory_id}
Written {created_at} by FactoryOps {version}.

Layout
------
manifest.json
    What this export holds: format and version, the database schema revision, and for every part
    its file, row count, size and SHA-256 (`sha256sum` checks them).
metadata/<table>.jsonl
    Every row of this factory in each table of the metadata database, one JSON object a line,
    keyed by column name. Times are ISO 8601 in UTC. metadata/factories.jsonl is the factory
    itself; users.jsonl holds its accounts (password hashes only, never passwords). The platform
    root account and sign-in sessions are not part of a factory and are not here.
objects/<key>
    Every object the factory has in the object store (analytics datasets and models, run
    artifacts, reports), under the same key it has there.
telemetry/<device_id>.parquet
    Every raw telemetry point of that device from {since} to {until}, in long form:
    ts (timestamp, UTC) | device_id | property | value (float64), sorted by property then time
    within each slice. Read it with pandas (`pandas.read_parquet`), DuckDB, Spark or pyarrow.
    Rollups (1-minute, 1-hour) are not exported: they are computed from these points. Points older
    than the raw retention in force when exporting were already deleted by the store.
telemetry/index.json
    The telemetry files: device, properties, row count, first and last time, SHA-256.

Restoring
---------
`factoryops restore --in <this folder>` restores the metadata and the objects into a platform at
the same schema revision (the telemetry folder is ignored by a restore). See docs/operations.md.
"""


@dataclass
class ExportResult:
    out: Path
    backup: BackupResult
    devices: int
    points: int
    index: list[dict[str, Any]]


def _device_properties(db: Database, factory_id: str) -> dict[str, tuple[list[str], datetime]]:
    """Each device that reported anything: its properties and the earliest first_seen among them."""
    from factoryops.devices.models import DeviceProperty

    found: dict[str, tuple[list[str], datetime]] = {}
    with db.factory_session(factory_id) as s:
        rows = s.execute(
            select(DeviceProperty.device_id, DeviceProperty.property_name, DeviceProperty.first_seen).order_by(
                DeviceProperty.device_id, DeviceProperty.property_name
            )
        ).all()
    for device_id, prop, first_seen in rows:
        props, earliest = found.get(device_id, ([], first_seen))
        props.append(prop)
        found[device_id] = (props, min(earliest, first_seen))
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_factory(
    db: Database,
    objects: ObjectStore | None,
    store: TimeseriesStore,
    factory_ref: str,
    out: Path,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ExportResult:
    """Write the whole factory into the new (or empty) folder ``out``."""
    from factoryops import __version__
    from factoryops.analytics.datasets import ExportRequest, export

    if out.name.endswith((".tar.gz", ".tgz")):
        raise BackupError("export-factory writes a folder; give a folder name (archive it afterwards if needed)")
    for name, value in (("--since", since), ("--until", until)):
        if value is not None and value.tzinfo is None:
            raise BackupError(f"{name} needs a time zone, e.g. 2026-01-31T00:00:00+00:00")
    end = (until or utcnow() + timedelta(minutes=1)).astimezone(UTC)
    backup = backup_factory(db, objects, factory_ref, out)
    factory = backup.factory
    scope = FactoryScope(factory["id"])
    index: list[dict[str, Any]] = []
    points = 0
    folder = out / TELEMETRY_DIR
    folder.mkdir()
    devices = _device_properties(db, factory["id"])
    for device_id, (properties, first_seen) in devices.items():
        start = since.astimezone(UTC) if since is not None else max(EPOCH, first_seen - FIRST_SEEN_MARGIN)
        if start >= end:
            continue
        request = ExportRequest((device_id,), tuple(properties), start, end, "raw", "mean")
        with tempfile.TemporaryDirectory(prefix=".telemetry-", dir=out) as tmp:

            def progress(percent: int, message: str, device_id: str = device_id) -> None:
                log.info("telemetry of %s: %s", device_id, message)

            result = export(store, scope, request, Path(tmp), progress)
            target = folder / f"{device_id}.parquet"
            os.replace(result.path, target)
        stats = result.series.values()
        index.append(
            {
                "device_id": device_id,
                "file": f"{TELEMETRY_DIR}/{target.name}",
                "properties": properties,
                "rows": result.row_count,
                "range": {"start": start.isoformat(), "end": end.isoformat()},
                "first": _iso_us(min((st.first for st in stats), default=None)),
                "last": _iso_us(max((st.last for st in stats), default=None)),
                "sha256": _sha256(target),
            }
        )
        points += result.row_count
    (folder / "index.json").write_text(
        json.dumps(
            {
                "format": "parquet, long form: ts (UTC) | device_id | property | value",
                "factory_id": factory["id"],
                "until": end.isoformat(),
                "devices": index,
            },
            indent=1,
        )
        + "\n"
    )
    (out / "README.txt").write_text(
        README.format(
            slug=factory["slug"],
            name=factory["name"],
            factory_id=factory["id"],
            created_at=backup.manifest["created_at"],
            version=__version__,
            since=since.isoformat() if since else "each device's first value",
            until=end.isoformat(),
        )
    )
    log.info("factory %s exported to %s: %d points of %d devices", factory["slug"], out, points, len(index))
    return ExportResult(out=out, backup=backup, devices=len(index), points=points, index=index)


def _iso_us(us: int | None) -> str | None:
    return None if us is None else datetime.fromtimestamp(us / 1e6, UTC).isoformat()
