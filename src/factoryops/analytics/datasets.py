"""Datasets: immutable snapshots of telemetry for analytics (spec 8.2 steps 1-3).

A request names devices, properties (or all those the devices report), a range, a resolution
and an aggregate. The export job reads the time-series store through its port in bounded pieces
(a batch of series over a slice of time, so memory stays flat however big the request) and
streams them into one Parquet file in long form, one row per value:

    ts (timestamp, UTC) | device_id | property | value

then writes a manifest (the request, row count, columns, per-series statistics, the file's
SHA-256) beside it. Both objects are written once, under keys that contain the content hash, so
a snapshot never changes: a retried export that sees newer data writes a different object and
the dataset row points at the one it committed. The same request (same devices, properties,
range, resolution, aggregate) is answered by the existing snapshot: ``request_hash`` is unique
per factory.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from factoryops.analytics.models import Dataset, DatasetState
from factoryops.core.db import Database, utcnow
from factoryops.core.errors import ApiError, not_found
from factoryops.devices.models import DeviceProperty
from factoryops.devices.service import require_devices
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import Handler, JobContext
from factoryops.ports.objectstore.base import Key, ObjectStore
from factoryops.ports.timeseries.base import Aggregate, FactoryScope, QueryResult, TimeseriesStore, to_ns

log = logging.getLogger(__name__)

EXPORT_KIND = "analytics.export"
RESOLUTIONS: dict[str, timedelta | None] = {
    "raw": None,
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
MAX_SPAN = timedelta(days=400)
MAX_RAW_SPAN = timedelta(days=31)
MAX_SERIES = 20_000
SAMPLES_PER_QUERY = 250_000  # values one store query may return: bounds the export's memory
PREFETCH_SLICES = 2  # store answers held ahead of the Parquet writer (memory: that many slices more)
_T = TypeVar("_T")
RAW_SERIES_PER_QUERY = 500  # series one raw query asks for
SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("device_id", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("property", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
    ]
)


@dataclass(frozen=True)
class ExportRequest:
    """A resolved, canonical request: sorted names, aware UTC range."""

    device_ids: tuple[str, ...]
    properties: tuple[str, ...]
    start: datetime
    end: datetime
    resolution: str
    aggregate: Aggregate

    def as_json(self) -> dict[str, Any]:
        return {
            "device_ids": list(self.device_ids),
            "properties": list(self.properties),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "resolution": self.resolution,
            "aggregate": self.aggregate if self.resolution != "raw" else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportRequest:
        return cls(
            device_ids=tuple(data["device_ids"]),
            properties=tuple(data["properties"]),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            resolution=data["resolution"],
            aggregate=data.get("aggregate") or "mean",
        )

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()


def resolve_request(
    s: Session,
    device_ids: list[str],
    properties: list[str] | None,
    start: datetime,
    end: datetime,
    resolution: str,
    aggregate: Aggregate,
    now: datetime | None = None,
) -> ExportRequest:
    """Checks a request against the factory's registry; 422 naming what is wrong."""
    if resolution not in RESOLUTIONS:
        raise ApiError(422, "invalid_resolution", f"resolution must be one of {', '.join(RESOLUTIONS)}")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    now = now or utcnow()
    if end <= start:
        raise ApiError(422, "invalid_range", "end must be after start")
    if end > now + timedelta(minutes=1):
        raise ApiError(422, "invalid_range", "end is in the future: a snapshot can only hold data already stored")
    limit = MAX_RAW_SPAN if resolution == "raw" else MAX_SPAN
    if end - start > limit:
        raise ApiError(
            422,
            "range_too_long",
            f"a {resolution} dataset may span at most {limit.days} days; "
            "choose a coarser resolution or a shorter range",
        )
    wanted = sorted(set(device_ids))
    if not wanted:
        raise ApiError(422, "no_devices", "choose at least one device")
    require_devices(s, wanted)
    reported: set[str] = set()
    for i in range(0, len(wanted), 500):
        reported.update(
            s.execute(
                select(DeviceProperty.property_name).where(DeviceProperty.device_id.in_(wanted[i : i + 500]))
            ).scalars()
        )
    if properties is None:
        chosen = sorted(reported)
        if not chosen:
            raise ApiError(422, "no_properties", "these devices have not reported any property yet")
    else:
        chosen = sorted(set(properties))
        unknown = [p for p in chosen if p not in reported]
        if unknown:
            raise ApiError(422, "unknown_properties", f"no chosen device reports: {', '.join(unknown[:10])}")
        if not chosen:
            raise ApiError(422, "no_properties", "choose at least one property")
    if len(wanted) * len(chosen) > MAX_SERIES:
        raise ApiError(
            422,
            "too_many_series",
            f"{len(wanted) * len(chosen):,} series asked for; a dataset holds at most {MAX_SERIES:,}",
        )
    return ExportRequest(tuple(wanted), tuple(chosen), start, end, resolution, aggregate)


# ---------------------------------------------------------------------- the export itself
@dataclass
class SeriesStats:
    rows: int = 0
    first: int = 0
    last: int = 0
    min: float = float("inf")
    max: float = float("-inf")
    total: float = 0.0

    def add(self, ts: list[int], values: list[float]) -> None:
        if not ts:
            return
        self.first = ts[0] if self.rows == 0 else min(self.first, ts[0])
        self.last = max(self.last, ts[-1])
        self.rows += len(ts)
        self.min = min(self.min, min(values))
        self.max = max(self.max, max(values))
        self.total += sum(values)


@dataclass
class ExportResult:
    path: Path
    row_count: int
    size_bytes: int
    content_hash: str
    series: dict[tuple[str, str], SeriesStats] = field(default_factory=dict)
    seconds: float = 0.0


def _device_batch(request: ExportRequest) -> int:
    """Devices per store query: a window count known in advance for aggregates, ~500 series for raw."""
    step = RESOLUTIONS[request.resolution]
    if step is None:
        return max(1, min(len(request.device_ids), RAW_SERIES_PER_QUERY // len(request.properties)))
    per_device = max(1.0, (request.end - request.start) / step) * len(request.properties)
    return int(max(1, min(len(request.device_ids), SAMPLES_PER_QUERY // per_device)))


def _aligned_start(request: ExportRequest) -> datetime:
    step = RESOLUTIONS[request.resolution]
    if step is None:
        return request.start
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (request.start - epoch) // step * step


def export(
    store: TimeseriesStore,
    scope: FactoryScope,
    request: ExportRequest,
    folder: Path,
    progress: Callable[[int, str], None],
) -> ExportResult:
    """Streams the request into a Parquet file in ``folder``; returns its size, rows and hash.

    Devices are read in batches; each batch over slices of time. With an aggregate the number of
    windows is known, so a slice is sized to hold about SAMPLES_PER_QUERY values; for raw points
    the density is learnt as it goes: the first slice is an hour, and each next one is sized from
    the values per series and second the previous one returned (growing at most 8-fold).
    """
    began = time.monotonic()
    step = RESOLUTIONS[request.resolution]
    batch = _device_batch(request)
    devices = list(request.device_ids)
    batches = [devices[i : i + batch] for i in range(0, len(devices), batch)]
    path = folder / "data.parquet"
    stats: dict[tuple[str, str], SeriesStats] = {}
    rows = 0
    last_report = 0.0
    first = _aligned_start(request)
    span = (request.end - first).total_seconds()
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer, _collect_between_slices() as collect:
        for index, group in enumerate(batches):
            slices = _slices(store, scope, group, request, first, step)
            for lo, hi, result in _ahead(slices, depth=PREFETCH_SLICES):
                columns = _columns(result.series, stats, to_ns(lo), to_ns(hi))
                if columns is not None:
                    writer.write_table(pa.Table.from_arrays(columns, schema=SCHEMA))
                    rows += len(columns[0])
                del result, columns
                collect()
                now = time.monotonic()
                if now - last_report >= 1.0 or (index == len(batches) - 1 and hi >= request.end):
                    last_report = now
                    done = (index + (hi - first).total_seconds() / span) / len(batches)
                    progress(
                        min(95, 5 + int(90 * done)),
                        f"exported {rows:,} values (devices {index * batch + 1}-{index * batch + len(group)} "
                        f"of {len(devices)})",
                    )
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return ExportResult(
        path=path,
        row_count=rows,
        size_bytes=path.stat().st_size,
        content_hash=digest.hexdigest(),
        series=stats,
        seconds=time.monotonic() - began,
    )


def _slices(
    store: TimeseriesStore,
    scope: FactoryScope,
    group: list[str],
    request: ExportRequest,
    first: datetime,
    step: timedelta | None,
) -> Iterator[tuple[datetime, datetime, QueryResult]]:
    """The store's answers for one batch of devices, slice after slice of time, each about
    SAMPLES_PER_QUERY values (raw slices sized from the density the previous one returned)."""
    series_count = len(group) * len(request.properties)
    chunk = timedelta(hours=1) if step is None else step * max(1, SAMPLES_PER_QUERY // series_count)
    lo = first
    while lo < request.end:
        hi = min(lo + chunk, request.end)
        result = store.query(
            scope,
            group,
            list(request.properties),
            lo,
            hi,
            aggregate=None if step is None else request.aggregate,
            interval=step,
        )
        yield lo, hi, result
        if step is None:  # size the next raw slice from the density just seen ([lo, hi) exactly)
            got = sum(len(samples) for samples in result.series.values())
            seconds = (hi - lo).total_seconds()
            density = got / (series_count * seconds) if got else 0.0
            wanted = SAMPLES_PER_QUERY / (density * series_count) if density else seconds * 8
            chunk = timedelta(seconds=max(60.0, min(wanted, seconds * 8)))
        lo = hi


@contextmanager
def _collect_between_slices() -> Iterator[Callable[[], object]]:
    """Python's automatic garbage collection is off while an export runs; the export collects
    once per slice instead.

    A slice is about 250,000 values, each a few small objects; the automatic collector ran every
    700 of them and kept walking the slices in flight: measured on 2,976,000 values, 9,143
    collections took 7.6 s of the exporting process's 12.0 s of CPU. Off entirely, the answers'
    reference cycles (HTTP responses holding their bodies) piled up: peak RSS 684 MB instead of
    372 MB. One collection per slice keeps both down. Other threads of the process go without
    automatic collections meanwhile; each of the export's collections collects for them too.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    # What the process held before the export is not walked by the export's collections. Where
    # something froze objects already (the garbage-collection steward of `factoryops up`, or
    # another export) it keeps doing so, and unfreezing at the end is left to it.
    freezing = gc.get_freeze_count() == 0
    if freezing:
        gc.freeze()
    try:
        yield gc.collect
    finally:
        if freezing:
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def _ahead(items: Iterator[_T], depth: int) -> Iterator[_T]:
    """Runs ``items`` on a thread of its own, at most ``depth`` items ahead of the caller.

    The export's store queries run there: while the time-series store works on the next slice
    (InfluxDB on another core), this process turns the last one into Parquet. An error of the
    producer is raised to the caller; when the caller stops early, the producer stops too.
    """
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # handed to the caller, raised there
            put((False, exc))

    thread = threading.Thread(target=produce, name="export-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            more, item = box.get()
            if more:
                yield item
            elif item is None:
                return
            else:
                raise item
    finally:
        stop.set()
        thread.join(timeout=30)


def _columns(
    series: dict[Any, list[Any]], stats: dict[tuple[str, str], SeriesStats], lo_ns: int, hi_ns: int
) -> list[pa.Array] | None:
    ts_all: list[int] = []
    values_all: list[float] = []
    device_idx: list[int] = []
    property_idx: list[int] = []
    devices: dict[str, int] = {}
    properties: dict[str, int] = {}
    micros: dict[int, int] = {}  # id(datetime) -> microseconds: a message's series share their stamps
    lo_us, hi_us = lo_ns // 1000, hi_ns // 1000
    for key in sorted(series):
        samples = series[key]
        if not samples:
            continue
        ts = []
        values = []
        for stamp, value in samples:
            us = micros.get(id(stamp))
            if us is None:
                us = micros[id(stamp)] = to_ns(stamp) // 1000
            # A window stamped before the slice belongs to the previous slice (aggregates are widened).
            if lo_us <= us < hi_us:
                ts.append(us)
                values.append(value)
        if not ts:
            continue
        stats.setdefault((key.device_id, key.property), SeriesStats()).add(ts, values)
        d = devices.setdefault(key.device_id, len(devices))
        p = properties.setdefault(key.property, len(properties))
        ts_all.extend(ts)
        values_all.extend(values)
        device_idx.extend([d] * len(ts))
        property_idx.extend([p] * len(ts))
    if not ts_all:
        return None
    return [
        pa.array(ts_all, type=pa.timestamp("us", tz="UTC")),
        pa.DictionaryArray.from_arrays(pa.array(device_idx, type=pa.int32()), pa.array(list(devices))),
        pa.DictionaryArray.from_arrays(pa.array(property_idx, type=pa.int32()), pa.array(list(properties))),
        pa.array(values_all, type=pa.float64()),
    ]


def manifest(dataset: Dataset, request: ExportRequest, result: ExportResult) -> dict[str, Any]:
    def iso(us: int) -> str:
        return datetime.fromtimestamp(us / 1e6, UTC).isoformat()

    return {
        "dataset_id": dataset.id,
        "factory_id": dataset.factory_id,
        "name": dataset.name,
        "format": "parquet, long form: one row per value",
        "query": request.as_json(),
        "row_count": result.row_count,
        "size_bytes": result.size_bytes,
        "content_hash": {"sha256": result.content_hash},
        "columns": [{"name": f.name, "type": str(f.type)} for f in SCHEMA],
        "series": [
            {
                "device_id": device_id,
                "property": prop,
                "rows": st.rows,
                "first": iso(st.first),
                "last": iso(st.last),
                "min": st.min,
                "max": st.max,
                "mean": st.total / st.rows if st.rows else None,
            }
            for (device_id, prop), st in sorted(result.series.items())
        ],
        "exported_at": utcnow().isoformat(),
        "export_seconds": round(result.seconds, 3),
    }


def column_names(request: ExportRequest, series: list[tuple[str, str]]) -> list[str]:
    """Column names of the dataset's wide form: ``property`` for one device, else ``device/property``."""
    if len(request.device_ids) == 1:
        return [prop for _, prop in series]
    return [f"{device_id}/{prop}" for device_id, prop in series]


# ---------------------------------------------------------------------- service
class DatasetService:
    def __init__(self, db: Database, store: TimeseriesStore | None, objects: ObjectStore | None) -> None:
        self.db = db
        self.store = store
        self.objects = objects

    def request(
        self, s: Session, queue: JobQueue, name: str, request: ExportRequest, created_by: str
    ) -> tuple[Dataset, bool]:
        """The dataset answering ``request``: the existing snapshot (False) or a new export job (True)."""
        key = request.hash()
        existing = s.execute(select(Dataset).where(Dataset.request_hash == key)).scalar_one_or_none()
        if existing is not None:
            if existing.state == DatasetState.failed:  # the same request again: export it again
                job = queue.enqueue(s, EXPORT_KIND, {"dataset_id": existing.id}, created_by=created_by, max_attempts=3)
                existing.state = DatasetState.pending
                existing.error = ""
                existing.job_id = job.id
                return existing, True
            return existing, False
        dataset = Dataset(name=name, request=request.as_json(), request_hash=key, created_by=created_by)
        s.add(dataset)
        s.flush()
        job = queue.enqueue(s, EXPORT_KIND, {"dataset_id": dataset.id}, created_by=created_by, max_attempts=3)
        dataset.job_id = job.id
        return dataset, True

    def get(self, s: Session, dataset_id: str) -> Dataset:
        dataset = s.get(Dataset, dataset_id)
        if dataset is None:
            raise not_found("dataset")
        return dataset

    def run_export(self, ctx: JobContext) -> dict[str, Any]:
        if self.store is None or self.objects is None:
            raise RuntimeError("this process has no time-series store or object store configured")
        factory_id = ctx.factory_id
        scope = FactoryScope(factory_id)
        with self.db.factory_session(factory_id) as s:
            dataset = self.get(s, ctx.payload["dataset_id"])
            request = ExportRequest.from_json(dataset.request)
            s.expunge(dataset)
        self.objects.ping()
        ctx.progress(2, "reading telemetry")
        with tempfile.TemporaryDirectory(prefix="factoryops-export-") as tmp:

            def progress(percent: int, message: str) -> None:
                ctx.check()
                ctx.progress(percent, message)

            result = export(self.store, scope, request, Path(tmp), progress)
            ctx.progress(96, f"storing the snapshot ({result.size_bytes / 1e6:.1f} MB)")
            tag = result.content_hash[:16]
            folder = Key("analytics", "datasets", dataset.id)
            data_key = folder.child(f"data-{tag}.parquet")
            manifest_key = folder.child(f"manifest-{tag}.json")
            body = manifest(dataset, request, result)
            if not self.objects.exists(scope, data_key):
                self.objects.put_file(scope, data_key, result.path, content_type="application/vnd.apache.parquet")
            self.objects.put_if_absent(scope, manifest_key, json.dumps(body, indent=1).encode())
        names = column_names(request, sorted(result.series))
        with self.db.factory_session(factory_id) as s:
            row = self.get(s, dataset.id)
            row.state = DatasetState.ready
            row.row_count = result.row_count
            row.size_bytes = result.size_bytes
            row.content_hash = result.content_hash
            row.columns = names
            row.object_key = str(data_key)
            row.manifest_key = str(manifest_key)
            row.error = ""
            row.ready_at = utcnow()
        ctx.progress(100, f"{result.row_count:,} values in {len(names)} columns")
        log.info(
            "dataset %s of factory %s: %d values, %.1f MB in %.1f s",
            dataset.id,
            factory_id,
            result.row_count,
            result.size_bytes / 1e6,
            result.seconds,
        )
        return {"dataset_id": dataset.id, "rows": result.row_count, "seconds": round(result.seconds, 2)}

    def mark_failed(self, factory_id: str, dataset_id: str, error: str) -> None:
        with self.db.factory_session(factory_id) as s:
            row = s.get(Dataset, dataset_id)
            if row is not None and row.state != DatasetState.ready:
                row.state = DatasetState.failed
                row.error = error[:2000]

    # ------------------------------------------------------------------ reading a snapshot back
    def local_copy(self, factory_id: str, dataset: Dataset, cache: Path) -> Path:
        """The snapshot's Parquet file on local disk (downloaded once, checked against its hash)."""
        if self.objects is None:
            raise RuntimeError("no object store configured")
        if dataset.state != DatasetState.ready:
            raise ApiError(409, "dataset_not_ready", f"The dataset is {dataset.state}, not ready.")
        folder = cache / factory_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{dataset.content_hash}.parquet"
        if path.exists():
            return path
        fd, tmp_name = tempfile.mkstemp(dir=folder, suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            self.objects.download_to(FactoryScope(factory_id), Key.parse(dataset.object_key), tmp)
            digest = hashlib.sha256()
            with tmp.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != dataset.content_hash:
                raise RuntimeError(f"dataset {dataset.id}: the stored snapshot does not match its content hash")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path


def read_wide(path: Path, request: ExportRequest, max_values: int | None = None) -> Any:
    """The snapshot as a wide pandas DataFrame: a UTC DatetimeIndex, one float column per series."""
    import pandas as pd

    meta = pq.ParquetFile(path).metadata
    if max_values is not None and meta.num_rows > max_values:
        raise ValueError(
            f"this dataset holds {meta.num_rows:,} values; a run takes at most {max_values:,}: "
            "export fewer devices or properties, or a coarser resolution"
        )
    table = pq.read_table(path)
    frame = table.to_pandas()
    if frame.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))
    frame["device_id"] = frame["device_id"].astype(str)
    frame["property"] = frame["property"].astype(str)
    if len(request.device_ids) == 1:
        frame["column"] = frame["property"]
    else:
        frame["column"] = frame["device_id"] + "/" + frame["property"]
    wide = frame.pivot_table(index="ts", columns="column", values="value", aggfunc="last").sort_index()
    wide.columns.name = None
    wide.index.name = "ts"
    return wide.astype("float64")


def preview(path: Path, request: ExportRequest, rows: int = 50) -> dict[str, Any]:
    """The first ``rows`` timestamps of the snapshot in wide form, for the portal."""
    import pandas as pd

    parquet = pq.ParquetFile(path)
    pieces = []
    taken = 0
    for i in range(parquet.num_row_groups):  # the first row group usually suffices
        piece = parquet.read_row_group(i).to_pandas()
        pieces.append(piece)
        taken += len(piece)
        if taken >= rows * max(1, len(request.properties)) * 4:
            break
    frame = pd.concat(pieces) if pieces else pd.DataFrame(columns=[f.name for f in SCHEMA])
    if frame.empty:
        return {"columns": [], "rows": []}
    frame["device_id"] = frame["device_id"].astype(str)
    frame["property"] = frame["property"].astype(str)
    frame["column"] = (
        frame["property"] if len(request.device_ids) == 1 else frame["device_id"] + "/" + frame["property"]
    )
    wide = frame.pivot_table(index="ts", columns="column", values="value", aggfunc="last").sort_index().head(rows)
    columns = [str(c) for c in wide.columns]
    out_rows = [
        [ts.isoformat(), *[None if pd.isna(v) else float(v) for v in values]]
        for ts, values in zip(wide.index, wide.to_numpy().tolist(), strict=True)
    ]
    return {"columns": ["ts", *columns], "rows": out_rows}


def handlers(service: DatasetService) -> dict[str, Handler]:
    def handle(ctx: JobContext) -> dict[str, Any]:
        try:
            return service.run_export(ctx)
        except Exception as exc:
            if ctx.job.attempts >= ctx.job.max_attempts:
                service.mark_failed(ctx.factory_id, ctx.payload["dataset_id"], f"{type(exc).__name__}: {exc}")
            raise

    return {EXPORT_KIND: handle}
