"""The production time-series store: InfluxDB through its v1 HTTP API (line protocol on /write, InfluxQL on /query).

Layout (spec 5.2, 4.3): measurement ``device_metrics`` with the tags ``factory_id``, ``device_id``,
``property_name`` and the field ``value``, in the retention policy ``raw``. Rollups live in their
own retention policies and measurements - ``rollup_1m.device_metrics_1m`` and
``rollup_1h.device_metrics_1h``, fields ``count``/``sum``/``min``/``max`` and the same tags - so
that a per-factory ``DELETE FROM device_metrics`` (which InfluxDB applies to every retention
policy) never touches them.

Factory isolation: every statement that reads or deletes telemetry is built here from a
:class:`FactoryScope` by :func:`series_condition`/:func:`factory_condition`, which quote the
factory id themselves; nothing formats a factory id into InfluxQL anywhere else. The only
statements without a factory filter are schema management and the continuous queries (which keep
every tag, so they cannot mix factories); they are the methods named ``_maintenance_*``.

Rollups: continuous queries compute each minute (``RESAMPLE EVERY 1m FOR 2m``, so points flushed
up to a minute late still count) and each hour from the minutes (``FOR 2h``). A continuous query
only looks at recent windows, so points written later than that (a replayed spool, a backfill)
are noted by :meth:`write`, and :meth:`compact` - or any query that reads rollups of that factory
- recomputes those windows from raw data with the same SELECT ... INTO, scoped to the factory.

Retention: the global retention is the duration of the three retention policies (InfluxDB drops
whole shards, the cheap way). A factory can keep data for less time: a copy of its setting is kept
in InfluxDB (``factoryops_settings.factory_retention``) so that every process drops points written
older than that and plans queries with it, and :meth:`delete_before` deletes its old values with
scoped DELETEs (the retention sweep calls it; the setting itself lives in the metadata database).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from factoryops.ports.timeseries.base import (
    DEFAULT_RETENTION,
    HOUR_NS,
    MINUTE_NS,
    NS_PER_SECOND,
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
    TimeseriesError,
    TimeseriesRejected,
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

MEASUREMENT = "device_metrics"
RP_RAW = "raw"
RP_SETTINGS = "factoryops_settings"
SETTINGS_MEASUREMENT = "factory_retention"
ROLLUP_RPS = {Resolution.MINUTE: "rollup_1m", Resolution.HOUR: "rollup_1h"}
ROLLUP_MEASUREMENTS = {Resolution.MINUTE: "device_metrics_1m", Resolution.HOUR: "device_metrics_1h"}
# Bump the suffix when a definition changes: stale factoryops_* queries are dropped at start.
CQ_MINUTE = "factoryops_rollup_1m_v1"
CQ_HOUR = "factoryops_rollup_1h_v1"
MAX_BATCH_LINES = 5000
ROLLUP_CHUNK_NS = 6 * HOUR_NS
_DATABASE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BEYOND_RETENTION = re.compile(r"points beyond retention policy dropped=(\d+)")
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


# -- InfluxQL and line protocol, built only here -------------------------------------------------


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def escape_tag(value: str) -> str:
    """A tag value for line protocol: commas, equals signs and spaces are backslash-escaped.

    Backslashes and control characters never get here (:class:`Point` and :class:`FactoryScope`
    refuse them), because line protocol has no way to carry them unambiguously.
    """
    if "," in value or "=" in value or " " in value:
        return value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
    return value


def factory_condition(scope: FactoryScope) -> str:
    return f'"factory_id" = {quote_literal(scope.factory_id)}'


def _any_of(tag: str, values: Sequence[str]) -> str:
    return "(" + " OR ".join(f"{quote_ident(tag)} = {quote_literal(v)}" for v in values) + ")"


def series_condition(
    scope: FactoryScope,
    start_ns: int,
    end_ns: int | None,
    device_ids: Sequence[str] | None = None,
    properties: Sequence[str] | None = None,
) -> str:
    """The WHERE clause of every telemetry read: the factory always, then devices, properties, time."""
    parts = [factory_condition(scope)]
    if device_ids:
        parts.append(_any_of("device_id", device_ids))
    if properties:
        parts.append(_any_of("property_name", properties))
    parts.append(f"time >= {int(start_ns)}")
    if end_ns is not None:
        parts.append(f"time < {int(end_ns)}")
    return " WHERE " + " AND ".join(parts)


def influx_duration(value: timedelta | None) -> str:
    return "INF" if value is None else f"{int(value.total_seconds())}s"


def shard_duration(value: timedelta | None) -> str:
    # InfluxDB's own defaults; stated explicitly because ALTER ... DURATION fails when the new
    # duration is shorter than the existing shard duration.
    if value is not None and value < timedelta(days=2):
        return "1h"
    if value is not None and value <= timedelta(days=180):
        return "1d"
    return "7d"


def parse_go_duration(text: str) -> timedelta | None:
    """InfluxDB's "720h0m0s"; "0s" is INF (None)."""
    seconds = sum(float(n) * _GO_UNITS[u] for n, u in _GO_DURATION.findall(text))
    return None if seconds == 0 else timedelta(seconds=round(seconds))


def _window_ranges(windows: Iterable[int], gap: int = 5 * MINUTE_NS) -> list[tuple[int, int]]:
    """Merge minute-window starts into [start, end) ranges, bridging small gaps (fewer statements)."""
    ranges: list[tuple[int, int]] = []
    for w in sorted(windows):
        if ranges and w <= ranges[-1][1] + gap:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], w + MINUTE_NS))
        else:
            ranges.append((w, w + MINUTE_NS))
    return ranges


class InfluxTimeseriesStore:
    """A :class:`~factoryops.ports.timeseries.base.TimeseriesStore` on InfluxDB 1.x (v1 HTTP API).

    Creating it does not contact the server: the database, retention policies and continuous
    queries are created on first use, so a service can start (and spool) while InfluxDB is down.
    ``retention`` given here is enforced on start (settings are the source of truth); None keeps
    whatever the database has, or the defaults for a new one.
    """

    def __init__(
        self,
        url: str,
        database: str = "factoryops",
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        retention: Retention | None = None,
        timeout: float = 30.0,
        batch_lines: int = MAX_BATCH_LINES,
        late_after: timedelta = timedelta(seconds=90),
        settings_ttl: timedelta = timedelta(seconds=60),
    ) -> None:
        if not _DATABASE_NAME.fullmatch(database):
            raise ValueError(f"InfluxDB database name {database!r} must be 1-64 letters, digits, _ or -")
        if not 1 <= batch_lines <= MAX_BATCH_LINES:
            raise ValueError(f"batch_lines must be between 1 and {MAX_BATCH_LINES}")
        self.url = url.rstrip("/")
        self.database = database
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password or "") if username else None
        self._client = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            auth=auth,
            headers=headers,
        )
        self._desired_retention = retention
        self._batch_lines = batch_lines
        self._late_after_ns = int(late_after.total_seconds() * NS_PER_SECOND)
        self._settings_ttl = settings_ttl.total_seconds()
        self._schema_lock = threading.Lock()
        self._ready = False
        self._late: dict[str, set[int]] = {}
        self._late_lock = threading.Lock()
        # One rebuild at a time per factory: two SELECT ... INTO of the same window running at once
        # could finish out of order and leave the older view of the raw data in the rollup.
        self._rebuild_locks: dict[str, threading.Lock] = {}
        self._global: tuple[float, Retention] | None = None
        self._own: dict[str, tuple[float, Retention | None]] = {}

    # -- HTTP ----------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._client.is_closed:
            raise TimeseriesUnavailable(f"the InfluxDB store for {self.url} is closed")
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TimeseriesUnavailable(
                f"InfluxDB at {self.url} cannot be reached ({type(exc).__name__}: {exc or 'no answer'})"
            ) from exc
        if response.status_code >= 500:
            raise TimeseriesUnavailable(
                f"InfluxDB at {self.url} refused {path} with HTTP {response.status_code}: {self._error(response)}"
            )
        if response.status_code in (401, 403):
            raise TimeseriesUnavailable(
                f"InfluxDB at {self.url} refused the credentials (HTTP {response.status_code}): {self._error(response)}"
            )
        return response

    @staticmethod
    def _error(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.text.strip()[:500]
        return str(body.get("error", body)) if isinstance(body, dict) else response.text.strip()[:500]

    def _rejected(self, error: str, statement: str) -> TimeseriesRejected:
        if "not found" in error:
            self._ready = False  # database or retention policy dropped under us: recreate on next use
        return TimeseriesRejected(f"InfluxDB rejected the query ({error}): {statement[:300]}")

    def _query(self, statement: str, chunked: bool = False) -> list[dict[str, Any]]:
        """Run one InfluxQL statement; return its results (chunks merged into one list)."""
        params = {"q": statement, "db": self.database, "epoch": "ns"}
        if chunked:
            params |= {"chunked": "true", "chunk_size": "10000"}
        response = self._request("POST", "/query", data=params)
        if response.status_code != 200:
            raise self._rejected(self._error(response), statement)
        results: list[dict[str, Any]] = []
        for line in response.text.splitlines() if chunked else [response.text]:
            if not line.strip():
                continue
            body = json.loads(line)
            if "error" in body:
                raise self._rejected(str(body["error"]), statement)
            for result in body.get("results", []):
                if "error" in result:
                    raise self._rejected(str(result["error"]), statement)
                results.append(result)
        return results

    def _series_rows(self, statement: str) -> Iterator[tuple[SeriesKey, list[Any]]]:
        for result in self._query(statement, chunked=True):
            for series in result.get("series", []):
                tags = series.get("tags", {})
                key = SeriesKey(tags.get("device_id", ""), tags.get("property_name", ""))
                yield key, series.get("values", [])

    def ping(self) -> None:
        response = self._request("GET", "/ping")
        if response.status_code != 204:
            raise TimeseriesUnavailable(f"InfluxDB at {self.url} answered /ping with HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()

    # -- schema (maintenance, not factory-scoped) -----------------------------------------------

    def _source(self, resolution: Resolution) -> str:
        if resolution is Resolution.RAW:
            return f"{quote_ident(self.database)}.{quote_ident(RP_RAW)}.{quote_ident(MEASUREMENT)}"
        return (
            f"{quote_ident(self.database)}.{quote_ident(ROLLUP_RPS[resolution])}."
            f"{quote_ident(ROLLUP_MEASUREMENTS[resolution])}"
        )

    def _rollup_select(self, resolution: Resolution, where: str) -> str:
        """SELECT ... INTO of one rollup level; ``where`` is empty only in the continuous queries."""
        if resolution is Resolution.MINUTE:
            fields = 'count("value") AS "count", sum("value") AS "sum", min("value") AS "min", max("value") AS "max"'
            source, period = self._source(Resolution.RAW), "1m"
        else:
            fields = 'sum("count") AS "count", sum("sum") AS "sum", min("min") AS "min", max("max") AS "max"'
            source, period = self._source(Resolution.MINUTE), "1h"
        return f"SELECT {fields} INTO {self._source(resolution)} FROM {source}{where} GROUP BY time({period}), *"

    def _maintenance_continuous_queries(self) -> list[tuple[str, str]]:
        db = quote_ident(self.database)
        # Created in this order on purpose: InfluxDB runs a database's continuous queries in creation
        # order, so at each full hour the last minute is rolled up before the hour that contains it.
        return [
            (
                CQ_MINUTE,
                f"CREATE CONTINUOUS QUERY {quote_ident(CQ_MINUTE)} ON {db} RESAMPLE EVERY 1m FOR 2m "
                f"BEGIN {self._rollup_select(Resolution.MINUTE, '')} END",
            ),
            (
                CQ_HOUR,
                f"CREATE CONTINUOUS QUERY {quote_ident(CQ_HOUR)} ON {db} RESAMPLE EVERY 1h FOR 2h "
                f"BEGIN {self._rollup_select(Resolution.HOUR, '')} END",
            ),
        ]

    def _maintenance_retention_policies(self) -> dict[str, tuple[timedelta | None, str]]:
        results = self._query(f"SHOW RETENTION POLICIES ON {quote_ident(self.database)}")
        found: dict[str, tuple[timedelta | None, str]] = {}
        for series in results[0].get("series", []) if results else []:
            columns = series["columns"]
            for row in series.get("values", []):
                item = dict(zip(columns, row, strict=False))
                found[item["name"]] = (parse_go_duration(item["duration"]), item.get("shardGroupDuration", ""))
        return found

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._schema_lock:
            if self._ready:
                return
            db = quote_ident(self.database)
            self._query(f"CREATE DATABASE {db}")
            policies = self._maintenance_retention_policies()
            wanted = self._desired_retention or DEFAULT_RETENTION
            durations = {RP_RAW: wanted.raw, **{ROLLUP_RPS[r]: wanted.of(r) for r in ROLLUP_RPS}, RP_SETTINGS: None}
            for name, duration in durations.items():
                rp = f"{quote_ident(name)} ON {db} DURATION {influx_duration(duration)}"
                if name not in policies:
                    self._query(f"CREATE RETENTION POLICY {rp} REPLICATION 1 SHARD DURATION {shard_duration(duration)}")
                elif self._desired_retention is not None and name != RP_SETTINGS and policies[name][0] != duration:
                    self._query(f"ALTER RETENTION POLICY {rp} SHARD DURATION {shard_duration(duration)}")
            self._ensure_continuous_queries()
            self._ready = True
            self._global = None

    def _ensure_continuous_queries(self) -> None:
        existing: set[str] = set()
        for result in self._query("SHOW CONTINUOUS QUERIES"):
            for series in result.get("series", []):
                if series.get("name") == self.database:
                    existing.update(row[0] for row in series.get("values", []))
        ours = self._maintenance_continuous_queries()
        names = [name for name, _ in ours]
        stale = {name for name in existing if name.startswith("factoryops_") and name not in names}
        if not all(name in existing for name in names):
            stale |= existing & set(names)  # recreate all of ours, to keep their order
        for name in sorted(stale):
            self._query(f"DROP CONTINUOUS QUERY {quote_ident(name)} ON {quote_ident(self.database)}")
        for name, statement in ours:
            if name in stale or name not in existing:
                self._query(statement)

    # -- writes --------------------------------------------------------------------------------

    def write(self, scope: FactoryScope, points: Iterable[Point]) -> int:
        self._ensure_schema()
        raw_kept = self._effective(scope).raw
        now_ns = to_ns(utcnow())
        cutoff = -1 if raw_kept is None else now_ns - int(raw_kept.total_seconds()) * NS_PER_SECOND
        late_limit = now_ns - self._late_after_ns
        factory = escape_tag(scope.factory_id)
        lines: list[str] = []
        late: set[int] = set()
        last_ts: datetime | None = None
        ns = 0
        for point in points:
            if not isinstance(point, Point):
                raise TypeError(f"write takes Point objects, not {type(point).__name__}")
            if point.ts is not last_ts:  # a message's points share one timestamp object
                last_ts = point.ts
                ns = to_ns(last_ts)
            if ns < cutoff:
                continue  # older than this factory keeps raw data
            # Tags in key order: InfluxDB sorts them anyway, and sorted input saves it the work.
            lines.append(
                f"{MEASUREMENT},device_id={escape_tag(point.device_id)},factory_id={factory},"
                f"property_name={escape_tag(point.property)} value={point.value!r} {ns}"
            )
            window = ns - ns % MINUTE_NS
            if window <= late_limit:
                late.add(window)
        dropped = 0
        for i in range(0, len(lines), self._batch_lines):
            dropped += self._write_lines("\n".join(lines[i : i + self._batch_lines]))
        if late:
            with self._late_lock:
                self._late.setdefault(scope.factory_id, set()).update(late)
        return len(lines) - dropped

    def _write_lines(self, body: str) -> int:
        """POST one batch; return how many points InfluxDB dropped as beyond retention."""
        params = {"db": self.database, "rp": RP_RAW, "precision": "ns"}
        response = self._request("POST", "/write", params=params, content=body.encode())
        if response.status_code == 404 and "not found" in self._error(response):
            self._ready = False  # dropped under us: recreate and try once more
            self._ensure_schema()
            response = self._request("POST", "/write", params=params, content=body.encode())
        if response.status_code == 204:
            return 0
        error = self._error(response)
        beyond = _BEYOND_RETENTION.search(error)
        if response.status_code == 400 and beyond:
            return int(beyond.group(1))
        raise TimeseriesRejected(f"InfluxDB rejected a write of {body.count(chr(10)) + 1} points: {error}")

    # -- rollups -------------------------------------------------------------------------------

    def _rebuild(self, scope: FactoryScope, start_ns: int, end_ns: int) -> None:
        start_m, end_m = start_ns // MINUTE_NS * MINUTE_NS, -(-end_ns // MINUTE_NS) * MINUTE_NS
        # Six hours of minutes per statement: InfluxDB holds a SELECT ... INTO's whole result in memory,
        # and beyond a few hours longer statements are no faster (measured: 1h 6.0 s, 6h 4.9 s, 24h 3.4 s,
        # 7d 4.3 s for a week of 3 devices x 5 properties at 1/min).
        for lo in range(start_m, end_m, ROLLUP_CHUNK_NS):
            hi = min(lo + ROLLUP_CHUNK_NS, end_m)
            self._query(self._rollup_select(Resolution.MINUTE, series_condition(scope, lo, hi)))
        start_h, end_h = start_ns // HOUR_NS * HOUR_NS, -(-end_ns // HOUR_NS) * HOUR_NS
        for lo in range(start_h, end_h, 24 * HOUR_NS):
            hi = min(lo + 24 * HOUR_NS, end_h)
            self._query(self._rollup_select(Resolution.HOUR, series_condition(scope, lo, hi)))

    def _rebuild_lock(self, factory_id: str) -> threading.Lock:
        with self._late_lock:
            return self._rebuild_locks.setdefault(factory_id, threading.Lock())

    def rebuild_rollups(self, scope: FactoryScope, start: datetime, end: datetime) -> None:
        self._ensure_schema()
        with self._rebuild_lock(scope.factory_id):
            self._rebuild(scope, to_ns(start), to_ns(end))

    def _compact_factory(self, factory_id: str) -> None:
        with self._rebuild_lock(factory_id):
            self._compact_factory_locked(factory_id)

    def _compact_factory_locked(self, factory_id: str) -> None:
        with self._late_lock:
            windows = self._late.pop(factory_id, set())
        done: set[int] = set()
        try:
            for lo, hi in _window_ranges(windows):
                self._rebuild(FactoryScope(factory_id), lo, hi)
                done.update(w for w in windows if lo <= w < hi)
        except TimeseriesError:
            with self._late_lock:
                self._late.setdefault(factory_id, set()).update(windows - done)
            raise

    def compact(self) -> None:
        with self._late_lock:
            factories = list(self._late)
        for factory_id in factories:
            self._compact_factory(factory_id)

    # -- reads ---------------------------------------------------------------------------------

    def latest(
        self, scope: FactoryScope, device_ids: Sequence[str], properties: Sequence[str] | None = None
    ) -> dict[SeriesKey, Sample]:
        check_names(device_ids, properties)
        if not device_ids or (properties is not None and not properties):
            return {}
        self._ensure_schema()
        statement = (
            f'SELECT last("value") AS "value" FROM {self._source(Resolution.RAW)}'
            f"{series_condition(scope, 0, None, device_ids, properties)}"
            ' GROUP BY "device_id", "property_name"'
        )
        out: dict[SeriesKey, Sample] = {}
        for key, rows in self._series_rows(statement):
            for ts, value in rows:
                if value is not None:
                    out[key] = Sample(from_ns(ts), float(value))
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
        if not device_ids or (properties is not None and not properties):
            return plan.result({})
        self._ensure_schema()
        if plan.resolution is not Resolution.RAW:
            self._compact_factory(scope.factory_id)
        series: dict[SeriesKey, list[Sample]] = {}
        stamps: dict[int, datetime] = {}
        for key, rows in self._series_rows(self._select(scope, plan, device_ids, properties)):
            series.setdefault(key, []).extend(to_samples(rows, stamps))
        return plan.result({k: v for k, v in series.items() if v})

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
        if not device_ids or (properties is not None and not properties):
            return {}
        self._ensure_schema()
        if plan.resolution is not Resolution.RAW:
            self._compact_factory(scope.factory_id)
        where = series_condition(scope, plan.start_ns, plan.end_ns, device_ids, properties)
        seconds = plan.interval_ns // NS_PER_SECOND
        if plan.resolution is not Resolution.RAW and plan.interval == plan.resolution.period:
            # The rollup's rows are these windows already: read them as they are (no GROUP BY time,
            # several times faster in InfluxDB 1.x).
            statement = (
                f'SELECT "count", "sum", "min", "max" FROM {self._source(plan.resolution)}{where}'
                ' GROUP BY "device_id", "property_name"'
            )
        else:
            exprs = (
                'count("value"), sum("value"), min("value"), max("value")'
                if plan.resolution is Resolution.RAW
                else 'sum("count"), sum("sum"), min("min"), max("max")'
            )
            statement = (
                f"SELECT {exprs} FROM {self._source(plan.resolution)}{where}"
                f' GROUP BY time({seconds}s), "device_id", "property_name" fill(none)'
            )
        out: dict[SeriesKey, list[WindowStats]] = {}
        stamps: dict[int, datetime] = {}
        for key, rows in self._series_rows(statement):
            out.setdefault(key, []).extend(to_window_stats(rows, stamps))
        return {k: v for k, v in out.items() if v}

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
        if not device_ids or (properties is not None and not properties):
            return {}
        self._ensure_schema()
        self._compact_factory(scope.factory_id)
        where = series_condition(scope, to_ns(start), to_ns(end), device_ids, properties)
        statement = (
            'SELECT sum("count"), sum("sum"), min("min"), max("max"), count("count") '
            f'FROM {self._source(Resolution.HOUR)}{where} GROUP BY "device_id", "property_name"'
        )
        out: dict[SeriesKey, SeriesSummary] = {}
        for key, rows in self._series_rows(statement):
            for _, n, total, low, high, hours in rows:
                if n:
                    out[key] = SeriesSummary(int(n), float(total), float(low), float(high), int(hours))
        return out

    def _select(
        self, scope: FactoryScope, plan: QueryPlan, device_ids: Sequence[str], properties: Sequence[str] | None
    ) -> str:
        where = series_condition(scope, plan.start_ns, plan.end_ns, device_ids, properties)
        source = self._source(plan.resolution)
        if plan.aggregate is None:
            return f'SELECT "value" FROM {source}{where} GROUP BY "device_id", "property_name"'
        if plan.resolution is Resolution.RAW:
            expr = f'{plan.aggregate}("value")'
        else:
            expr = {
                "mean": 'sum("sum") / sum("count")',
                "min": 'min("min")',
                "max": 'max("max")',
                "sum": 'sum("sum")',
                "count": 'sum("count")',
            }[plan.aggregate]
        seconds = plan.interval_ns // NS_PER_SECOND
        return (
            f'SELECT {expr} AS "value" FROM {source}{where}'
            f' GROUP BY time({seconds}s), "device_id", "property_name" fill(none)'
        )

    # -- retention -----------------------------------------------------------------------------

    def _global_retention(self) -> Retention:
        cached = self._global
        if cached is not None and time.monotonic() - cached[0] < self._settings_ttl:
            return cached[1]
        self._ensure_schema()
        policies = self._maintenance_retention_policies()

        def kept(name: str, default: timedelta | None) -> timedelta | None:
            return policies[name][0] if name in policies else default

        d = DEFAULT_RETENTION
        value = Retention(
            raw=kept(RP_RAW, d.raw),
            minute=kept(ROLLUP_RPS[Resolution.MINUTE], d.minute),
            hour=kept(ROLLUP_RPS[Resolution.HOUR], d.hour),
        )
        self._global = (time.monotonic(), value)
        return value

    def _own_retention(self, scope: FactoryScope) -> Retention | None:
        cached = self._own.get(scope.factory_id)
        if cached is not None and time.monotonic() - cached[0] < self._settings_ttl:
            return cached[1]
        self._ensure_schema()
        source = f"{quote_ident(self.database)}.{quote_ident(RP_SETTINGS)}.{quote_ident(SETTINGS_MEASUREMENT)}"
        own: Retention | None = None
        for result in self._query(f"SELECT * FROM {source}{series_condition(scope, 0, None)}"):
            for series in result.get("series", []):
                own = self._settings_row(series["columns"], series["values"][-1])
        self._own[scope.factory_id] = (time.monotonic(), own)
        return own

    @staticmethod
    def _settings_row(columns: list[str], row: list[Any]) -> Retention:
        item = dict(zip(columns, row, strict=False))

        def seconds(name: str) -> timedelta | None:
            value = int(item[name])
            return None if value < 0 else timedelta(seconds=value)

        return Retention(raw=seconds("raw_s"), minute=seconds("minute_s"), hour=seconds("hour_s"))

    def _effective(self, scope: FactoryScope) -> Retention:
        glob = self._global_retention()
        own = self._own_retention(scope)
        return glob if own is None else own.capped_by(glob)

    def retention(self, scope: FactoryScope | AllFactories) -> Retention:
        return self._global_retention() if isinstance(scope, AllFactories) else self._effective(scope)

    def configure_retention(self, target: FactoryScope | AllFactories, retention: Retention | None) -> None:
        self._ensure_schema()
        if isinstance(target, AllFactories):
            if retention is None:
                raise ValueError("the global retention cannot be removed; pass a Retention")
            db = quote_ident(self.database)
            for name, duration in (
                (RP_RAW, retention.raw),
                (ROLLUP_RPS[Resolution.MINUTE], retention.minute),
                (ROLLUP_RPS[Resolution.HOUR], retention.hour),
            ):
                self._query(
                    f"ALTER RETENTION POLICY {quote_ident(name)} ON {db} DURATION {influx_duration(duration)} "
                    f"SHARD DURATION {shard_duration(duration)}"
                )
            self._global = (time.monotonic(), retention)
            return
        if retention is None:
            self._query(f"DELETE FROM {quote_ident(SETTINGS_MEASUREMENT)}{series_condition(target, 0, None)}")
        else:
            glob = self._global_retention()
            if not retention.within(glob):
                raise ValueError(
                    f"factory {target.factory_id}'s retention {retention} is longer than the global {glob}; "
                    "a factory can only keep data for less time"
                )

            def seconds(value: timedelta | None) -> str:
                return f"{-1 if value is None else int(value.total_seconds())}i"

            # One point per factory at time 0, so a new setting overwrites the old one in place.
            line = (
                f"{SETTINGS_MEASUREMENT},factory_id={escape_tag(target.factory_id)} "
                f"raw_s={seconds(retention.raw)},minute_s={seconds(retention.minute)},"
                f"hour_s={seconds(retention.hour)} 0"
            )
            params = {"db": self.database, "rp": RP_SETTINGS, "precision": "ns"}
            response = self._request("POST", "/write", params=params, content=line.encode())
            if response.status_code != 204:
                raise TimeseriesRejected(f"InfluxDB rejected the retention setting: {self._error(response)}")
        self._own[target.factory_id] = (time.monotonic(), retention)

    def apply_retention(self, now: datetime | None = None) -> None:
        """InfluxDB drops shards past the global retention itself; bring the rollups up to date before it does."""
        self._ensure_schema()
        self.compact()

    def delete_before(self, scope: FactoryScope, resolution: Resolution, cutoff: datetime) -> None:
        self._ensure_schema()
        if resolution is Resolution.RAW:
            self._compact_factory(scope.factory_id)  # rollups must hold late points before their raw data goes
        # Whole minutes, so a late point never lands in a minute whose raw data is half gone.
        cutoff_ns = to_ns(cutoff) // MINUTE_NS * MINUTE_NS
        # Older than the global retention is InfluxDB's to drop; bounding the range keeps each sweep
        # from tombstoning the same long-gone shards again.
        kept = self._global_retention().of(resolution)
        floor = 0 if kept is None else max(to_ns(utcnow()) - int(kept.total_seconds()) * NS_PER_SECOND - HOUR_NS, 0)
        if cutoff_ns <= floor:
            return None
        measurement = MEASUREMENT if resolution is Resolution.RAW else ROLLUP_MEASUREMENTS[resolution]
        # DELETE cannot name a retention policy; the measurement names differ per resolution, so this
        # reaches exactly one of them.
        self._query(f"DELETE FROM {quote_ident(measurement)}{series_condition(scope, floor, cutoff_ns)}")
        return None
