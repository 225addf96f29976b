"""The embedded time-series store of `factoryops up`: one SQLite file in the data folder, nothing to run.

It is a separate file from the metadata database so that telemetry writes never wait on, or bloat,
the metadata. Points live in one table keyed (factory_id, device_id, property_name, ts) - the
factory first, so every read is an index range inside one factory - and a write is an upsert,
which makes replays idempotent.

Rollups (1-minute and 1-hour count/sum/min/max) are kept in their own tables. A write only marks
the (series, minute) windows it touched as dirty; :meth:`compact` recomputes those windows from raw
data, exactly, whatever order points arrived in. A query that reads rollups compacts its factory's
dirty windows in its range first, so answers never lag behind writes.

Thread safety: one writer connection behind a lock (SQLite has one writer anyway), and one
read-only connection per reading thread, which WAL lets read while the writer writes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from factoryops.ports.timeseries.base import (
    DEFAULT_RETENTION,
    HOUR_NS,
    MINUTE_NS,
    Aggregate,
    AllFactories,
    FactoryScope,
    Point,
    QueryPlan,
    QueryResult,
    Resolution,
    Retention,
    Sample,
    SeriesKey,
    SeriesSummary,
    TimeseriesUnavailable,
    WindowStats,
    check_names,
    check_whole_hours,
    from_ns,
    plan_query,
    to_ns,
    to_samples,
    to_window_stats,
    utcnow,
)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    factory_id TEXT NOT NULL, device_id TEXT NOT NULL, property_name TEXT NOT NULL,
    ts INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (factory_id, device_id, property_name, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    factory_id TEXT NOT NULL, device_id TEXT NOT NULL, property_name TEXT NOT NULL,
    PRIMARY KEY (factory_id, device_id, property_name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_1m (
    factory_id TEXT NOT NULL, device_id TEXT NOT NULL, property_name TEXT NOT NULL, ts INTEGER NOT NULL,
    count INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
    PRIMARY KEY (factory_id, device_id, property_name, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_1h (
    factory_id TEXT NOT NULL, device_id TEXT NOT NULL, property_name TEXT NOT NULL, ts INTEGER NOT NULL,
    count INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
    PRIMARY KEY (factory_id, device_id, property_name, ts)
) WITHOUT ROWID;
-- (series, minute) windows written since their rollups were last computed; factory and time first
-- so a query can compact just its own factory and range.
CREATE TABLE IF NOT EXISTS dirty_1m (
    factory_id TEXT NOT NULL, ts INTEGER NOT NULL, device_id TEXT NOT NULL, property_name TEXT NOT NULL,
    PRIMARY KEY (factory_id, ts, device_id, property_name)
) WITHOUT ROWID;
-- scope is 'global' or 'factory:<id>'; durations in seconds, NULL keeps forever.
CREATE TABLE IF NOT EXISTS retention (
    scope TEXT PRIMARY KEY, raw_s INTEGER, minute_s INTEGER, hour_s INTEGER
);
"""

UPSERT = (
    "INSERT INTO samples (factory_id, device_id, property_name, ts, value) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (factory_id, device_id, property_name, ts) DO UPDATE SET value = excluded.value"
)

# Recompute the rollups of the windows listed in temp.pending. Both are set-based joins that walk
# the primary keys, and both replace whole windows, so running them twice changes nothing.
COMPACT_1M = f"""
INSERT OR REPLACE INTO rollup_1m (factory_id, device_id, property_name, ts, count, sum, min, max)
SELECT d.factory_id, d.device_id, d.property_name, d.ts, count(*), sum(s.value), min(s.value), max(s.value)
FROM temp.pending AS d CROSS JOIN samples AS s
  ON s.factory_id = d.factory_id AND s.device_id = d.device_id AND s.property_name = d.property_name
 AND s.ts >= d.ts AND s.ts < d.ts + {MINUTE_NS}
GROUP BY d.factory_id, d.device_id, d.property_name, d.ts
"""
COMPACT_1H = f"""
INSERT OR REPLACE INTO rollup_1h (factory_id, device_id, property_name, ts, count, sum, min, max)
SELECT h.factory_id, h.device_id, h.property_name, h.ts, sum(r.count), sum(r.sum), min(r.min), max(r.max)
FROM (SELECT DISTINCT factory_id, device_id, property_name, (ts / {HOUR_NS}) * {HOUR_NS} AS ts FROM temp.pending) AS h
CROSS JOIN rollup_1m AS r
  ON r.factory_id = h.factory_id AND r.device_id = h.device_id AND r.property_name = h.property_name
 AND r.ts >= h.ts AND r.ts < h.ts + {HOUR_NS}
GROUP BY h.factory_id, h.device_id, h.property_name, h.ts
"""

_RAW_AGGREGATES = {
    "mean": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "sum": "sum(value)",
    "count": "count(*)",
}
_ROLLUP_AGGREGATES = {
    "mean": "sum(sum) / sum(count)",
    "min": "min(min)",
    "max": "max(max)",
    "sum": "sum(sum)",
    "count": "sum(count)",
}
_TABLES = {Resolution.RAW: "samples", Resolution.MINUTE: "rollup_1m", Resolution.HOUR: "rollup_1h"}


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def _duration(seconds: int | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


class EmbeddedTimeseriesStore:
    """A :class:`~factoryops.ports.timeseries.base.TimeseriesStore` in a SQLite file under ``folder``."""

    def __init__(self, folder: Path, retention: Retention | None = None, filename: str = "timeseries.db") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / filename
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._known_series: set[tuple[str, str, str]] = set()
        # (factory, minute, device, property) rows known to be in dirty_1m; guarded by self._lock.
        self._dirty_marked: set[tuple[str, int, str, str]] = set()
        try:
            self._conn = self._connect()
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise TimeseriesUnavailable(f"embedded time-series store {self.path} cannot be opened: {exc}") from exc
        if retention is not None:
            self._save_retention("global", retention)
        self._retention_cache: dict[str, Retention] = {}
        self._global = self._load_global()

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA busy_timeout = 30000")
        # FULL: a write that returned survives a power cut too (the MQTT acknowledgement follows it;
        # NORMAL in WAL mode can lose the last transactions then). Measured here: 272 against 281
        # commits/s for batches of 500 points (the writer's batches), 2,064 against 7,397 for batches of 10.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; the caller holds ``self._lock``."""
        self._check_open()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise TimeseriesUnavailable(f"embedded time-series store {self.path} failed: {exc}") from exc

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._transaction() as conn:
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        self._check_open()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = self._connect()
                conn.execute("PRAGMA query_only = ON")
                self._local.conn = conn
                with self._readers_lock:
                    self._readers.append(conn)
            yield conn
        except sqlite3.Error as exc:
            raise TimeseriesUnavailable(f"embedded time-series store {self.path} failed: {exc}") from exc

    def _check_open(self) -> None:
        if self._closed:
            raise TimeseriesUnavailable(f"embedded time-series store {self.path} is closed")

    def ping(self) -> None:
        with self._reading() as conn:
            conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    # -- writes --------------------------------------------------------------------------------

    def write(self, scope: FactoryScope, points: Iterable[Point]) -> int:
        factory = scope.factory_id
        raw_kept = self._effective(scope).raw
        cutoff = -1 if raw_kept is None else to_ns(utcnow() - raw_kept)
        rows: list[tuple[str, str, str, int, float]] = []
        dirty: set[tuple[str, int, str, str]] = set()
        new_series: set[tuple[str, str, str]] = set()
        known = self._known_series
        for point in points:
            if not isinstance(point, Point):
                raise TypeError(f"write takes Point objects, not {type(point).__name__}")
            ns = to_ns(point.ts)
            if ns < cutoff:
                continue  # older than the factory keeps raw data: dropped, as InfluxDB does
            rows.append((factory, point.device_id, point.property, ns, point.value))
            dirty.add((factory, ns - ns % MINUTE_NS, point.device_id, point.property))
            key = (factory, point.device_id, point.property)
            if key not in known:
                new_series.add(key)
        if not rows:
            return 0
        with self._lock:
            # A live stream touches the same (series, minute) many times: mark it dirty once.
            dirty -= self._dirty_marked
            with self._transaction() as conn:
                conn.executemany(UPSERT, rows)
                conn.executemany("INSERT OR IGNORE INTO dirty_1m VALUES (?, ?, ?, ?)", dirty)
                if new_series:
                    conn.executemany("INSERT OR IGNORE INTO series VALUES (?, ?, ?)", new_series)
            # Only after the commit, and under the lock, so a compaction cannot slip in between.
            if len(self._dirty_marked) > 500_000:
                self._dirty_marked.clear()  # nobody compacts: keep the memory bounded
            self._dirty_marked.update(dirty)
        if len(known) > 1_000_000:
            known.clear()  # a cache, not a registry: keep it bounded
        known.update(new_series)
        return len(rows)

    # -- rollups -------------------------------------------------------------------------------

    def _compact_locked(self, conn: sqlite3.Connection, where: str = "", args: Sequence[object] = ()) -> None:
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS pending (factory_id TEXT, ts INTEGER, device_id TEXT, property_name TEXT)"
        )
        conn.execute("DELETE FROM temp.pending")
        conn.execute(
            f"INSERT INTO temp.pending SELECT factory_id, ts, device_id, property_name FROM dirty_1m {where}", args
        )
        if conn.execute("SELECT 1 FROM temp.pending LIMIT 1").fetchone() is None:
            return
        # Some marks are about to be removed: forget them all (the next write marks its windows again).
        self._dirty_marked.clear()
        conn.execute(COMPACT_1M)
        conn.execute(COMPACT_1H)
        conn.execute(
            "DELETE FROM dirty_1m WHERE (factory_id, ts, device_id, property_name) IN "
            "(SELECT factory_id, ts, device_id, property_name FROM temp.pending)"
        )
        conn.execute("DELETE FROM temp.pending")

    def compact(self) -> None:
        with self._writing() as conn:
            self._compact_locked(conn)

    def _compact_range(self, scope: FactoryScope, start_ns: int, end_ns: int) -> None:
        # An hour rollup depends on every minute of its hour, so widen to whole hours.
        with self._writing() as conn:
            self._compact_locked(
                conn,
                "WHERE factory_id = ? AND ts >= ? AND ts < ?",
                (scope.factory_id, start_ns // HOUR_NS * HOUR_NS, -(-end_ns // HOUR_NS) * HOUR_NS),
            )

    def rebuild_rollups(self, scope: FactoryScope, start: datetime, end: datetime) -> None:
        start_ns, end_ns = to_ns(start) // MINUTE_NS * MINUTE_NS, to_ns(end)
        with self._writing() as conn:
            conn.execute(
                f"INSERT OR IGNORE INTO dirty_1m SELECT DISTINCT factory_id, (ts / {MINUTE_NS}) * {MINUTE_NS}, "
                "device_id, property_name FROM samples WHERE factory_id = ? AND ts >= ? AND ts < ?",
                (scope.factory_id, start_ns, end_ns),
            )
            self._compact_locked(conn, "WHERE factory_id = ?", (scope.factory_id,))

    # -- reads ---------------------------------------------------------------------------------

    def _series(
        self, conn: sqlite3.Connection, scope: FactoryScope, device_ids: Sequence[str], properties: Sequence[str] | None
    ) -> list[SeriesKey]:
        check_names(device_ids, properties)
        devices = list(dict.fromkeys(device_ids))
        if properties is not None:
            props = list(dict.fromkeys(properties))
            return [SeriesKey(d, p) for d in devices for p in props]
        keys: list[SeriesKey] = []
        for device in devices:
            rows = conn.execute(
                "SELECT property_name FROM series WHERE factory_id = ? AND device_id = ? ORDER BY property_name",
                (scope.factory_id, device),
            ).fetchall()
            keys.extend(SeriesKey(device, row[0]) for row in rows)
        return keys

    def latest(
        self, scope: FactoryScope, device_ids: Sequence[str], properties: Sequence[str] | None = None
    ) -> dict[SeriesKey, Sample]:
        out: dict[SeriesKey, Sample] = {}
        with self._reading() as conn:
            for key in self._series(conn, scope, device_ids, properties):
                row = conn.execute(
                    "SELECT ts, value FROM samples WHERE factory_id = ? AND device_id = ? AND property_name = ? "
                    "ORDER BY ts DESC LIMIT 1",
                    (scope.factory_id, key.device_id, key.property),
                ).fetchone()
                if row is not None:
                    out[key] = Sample(from_ns(row[0]), float(row[1]))
        return out

    def query(
        self,
        scope: FactoryScope,
        device_ids: Sequence[str],
        properties: Sequence[str] | None,
        start: datetime,
        end: datetime,
        aggregate: Aggregate | None = None,
        interval: timedelta | None = None,
        max_points: int | None = None,
    ) -> QueryResult:
        check_names(device_ids, properties)
        plan = plan_query(start, end, aggregate, interval, max_points, self._effective(scope), utcnow())
        if plan.resolution is not Resolution.RAW:
            self._compact_range(scope, plan.start_ns, plan.end_ns)
        series: dict[SeriesKey, list[Sample]] = {}
        stamps: dict[int, datetime] = {}
        sql, step = self._select(plan)
        with self._reading() as conn:
            for key in self._series(conn, scope, device_ids, properties):
                args: tuple[object, ...] = (scope.factory_id, key.device_id, key.property, plan.start_ns, plan.end_ns)
                if step:
                    args = (step, step, *args)
                samples = to_samples(conn.execute(sql, args), stamps)
                if samples:
                    series[key] = samples
        return plan.result(series)

    def window_stats(
        self,
        scope: FactoryScope,
        device_ids: Sequence[str],
        properties: Sequence[str] | None,
        start: datetime,
        end: datetime,
        interval: timedelta,
    ) -> dict[SeriesKey, list[WindowStats]]:
        check_names(device_ids, properties)
        plan = plan_query(start, end, "sum", interval, None, self._effective(scope), utcnow())
        if plan.resolution is not Resolution.RAW:
            self._compact_range(scope, plan.start_ns, plan.end_ns)
        table = _TABLES[plan.resolution]
        exprs = (
            "count(value), sum(value), min(value), max(value)"
            if plan.resolution is Resolution.RAW
            else "sum(count), sum(sum), min(min), max(max)"
        )
        sql = (
            f"SELECT (ts / ?) * ? AS window, {exprs} FROM {table} "
            "WHERE factory_id = ? AND device_id = ? AND property_name = ? AND ts >= ? AND ts < ? "
            "GROUP BY window ORDER BY window"
        )
        out: dict[SeriesKey, list[WindowStats]] = {}
        stamps: dict[int, datetime] = {}
        step = plan.interval_ns
        with self._reading() as conn:
            for key in self._series(conn, scope, device_ids, properties):
                rows = conn.execute(
                    sql, (step, step, scope.factory_id, key.device_id, key.property, plan.start_ns, plan.end_ns)
                )
                stats = to_window_stats(rows, stamps)
                if stats:
                    out[key] = stats
        return out

    def summary_stats(
        self,
        scope: FactoryScope,
        device_ids: Sequence[str],
        properties: Sequence[str] | None,
        start: datetime,
        end: datetime,
    ) -> dict[SeriesKey, SeriesSummary]:
        check_names(device_ids, properties)
        check_whole_hours(start, end)
        lo, hi = to_ns(start), to_ns(end)
        self._compact_range(scope, lo, hi)
        sql = (
            "SELECT sum(count), sum(sum), min(min), max(max), count(*) FROM rollup_1h "
            "WHERE factory_id = ? AND device_id = ? AND property_name = ? AND ts >= ? AND ts < ?"
        )
        out: dict[SeriesKey, SeriesSummary] = {}
        with self._reading() as conn:
            for key in self._series(conn, scope, device_ids, properties):
                n, total, low, high, hours = conn.execute(
                    sql, (scope.factory_id, key.device_id, key.property, lo, hi)
                ).fetchone()
                if n:
                    out[key] = SeriesSummary(int(n), float(total), float(low), float(high), int(hours))
        return out

    @staticmethod
    def _select(plan: QueryPlan) -> tuple[str, int]:
        table = _TABLES[plan.resolution]
        where = "WHERE factory_id = ? AND device_id = ? AND property_name = ? AND ts >= ? AND ts < ?"
        if plan.aggregate is None:
            return f"SELECT ts, value FROM {table} {where} ORDER BY ts", 0
        expr = (_RAW_AGGREGATES if plan.resolution is Resolution.RAW else _ROLLUP_AGGREGATES)[plan.aggregate]
        return (
            f"SELECT (ts / ?) * ? AS window, {expr} FROM {table} {where} GROUP BY window ORDER BY window",
            plan.interval_ns,
        )

    # -- retention -----------------------------------------------------------------------------

    def _save_retention(self, key: str, retention: Retention | None) -> None:
        with self._writing() as conn:
            if retention is None:
                conn.execute("DELETE FROM retention WHERE scope = ?", (key,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO retention (scope, raw_s, minute_s, hour_s) VALUES (?, ?, ?, ?)",
                    (key, _seconds(retention.raw), _seconds(retention.minute), _seconds(retention.hour)),
                )

    def _load(self, key: str) -> Retention | None:
        with self._reading() as conn:
            row = conn.execute("SELECT raw_s, minute_s, hour_s FROM retention WHERE scope = ?", (key,)).fetchone()
        if row is None:
            return None
        return Retention(raw=_duration(row[0]), minute=_duration(row[1]), hour=_duration(row[2]))

    def _load_global(self) -> Retention:
        return self._load("global") or DEFAULT_RETENTION

    def _effective(self, scope: FactoryScope) -> Retention:
        key = f"factory:{scope.factory_id}"
        cached = self._retention_cache.get(key)
        if cached is None:
            own = self._load(key)
            cached = self._global if own is None else own.capped_by(self._global)
            self._retention_cache[key] = cached
        return cached

    def configure_retention(self, target: FactoryScope | AllFactories, retention: Retention | None) -> None:
        if isinstance(target, AllFactories):
            if retention is None:
                raise ValueError("the global retention cannot be removed; pass a Retention")
            self._save_retention("global", retention)
            self._global = retention
        else:
            if retention is not None and not retention.within(self._global):
                raise ValueError(
                    f"factory {target.factory_id}'s retention {retention} is longer than the global {self._global}; "
                    "a factory can only keep data for less time"
                )
            self._save_retention(f"factory:{target.factory_id}", retention)
        self._retention_cache.clear()

    def retention(self, scope: FactoryScope | AllFactories) -> Retention:
        return self._global if isinstance(scope, AllFactories) else self._effective(scope)

    def apply_retention(self, now: datetime | None = None) -> None:
        """Delete what the global retention no longer keeps, factory by factory (nothing expires by itself here)."""
        now = now or utcnow()
        with self._reading() as conn:
            factories = [row[0] for row in conn.execute("SELECT DISTINCT factory_id FROM series")]
        for factory in factories:
            for resolution in Resolution:
                kept = self._global.of(resolution)
                if kept is not None:
                    self.delete_before(FactoryScope(factory), resolution, now - kept)
        log.debug("global retention applied to %d factories", len(factories))

    def delete_before(self, scope: FactoryScope, resolution: Resolution, cutoff: datetime) -> int:
        factory = scope.factory_id
        # Whole minutes go, so a late point never lands in a minute whose raw data is half gone.
        cutoff_ns = to_ns(cutoff) // MINUTE_NS * MINUTE_NS
        table = _TABLES[resolution]
        with self._writing() as conn:
            keys = conn.execute(
                "SELECT device_id, property_name FROM series WHERE factory_id = ?", (factory,)
            ).fetchall()
            if resolution is Resolution.RAW:
                # Fold what is about to go into the rollups first, so they keep it.
                self._compact_locked(conn, "WHERE factory_id = ? AND ts < ?", (factory, cutoff_ns + HOUR_NS))
            # One range per series: the primary key starts with the series, so each is an index range.
            cursor = conn.executemany(
                f"DELETE FROM {table} WHERE factory_id = ? AND device_id = ? AND property_name = ? AND ts < ?",
                [(factory, device, prop, cutoff_ns) for device, prop in keys],
            )
            return max(cursor.rowcount, 0)
