"""The time-series port: what the platform asks of a telemetry store, independent of any adapter.

Every read and write names a :class:`FactoryScope` first. A scope cannot be built without a factory
id, and no method reads or writes telemetry without one, so "forgot the factory filter" is not a
mistake the callers can make. The data model is deliberately domain-free: a :class:`Point` is one
value of one property of one device at one time.

Writes are idempotent: a point is identified by (factory, device, property, timestamp), and writing
it again replaces its value, so a replayed spool never duplicates anything in query results.

Range queries return raw points, or fixed windows of an aggregate. Long ranges are answered from
rollups (1-minute and 1-hour count/sum/min/max, kept longer than raw data); :func:`plan_query`
chooses the window and the resolution for both adapters, so they answer a query the same way.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

Aggregate = Literal["mean", "min", "max", "sum", "count"]
AGGREGATES: tuple[Aggregate, ...] = ("mean", "min", "max", "sum", "count")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Both stores keep nanoseconds in a signed 64-bit integer; before 1970 is refused because window
# arithmetic (floor to a minute) is done on non-negative integers in both adapters.
LATEST_TS = datetime(2262, 4, 11, tzinfo=UTC)
NS_PER_SECOND = 1_000_000_000
MINUTE_NS = 60 * NS_PER_SECOND
HOUR_NS = 3600 * NS_PER_SECOND


class TimeseriesError(Exception):
    """The time-series store could not do what was asked."""


class TimeseriesUnavailable(TimeseriesError):
    """The store cannot be reached or refuses to work right now; retrying later may succeed.

    The telemetry pipeline answers this by retrying with backoff and spooling to disk.
    """


class TimeseriesRejected(TimeseriesError):
    """The store refused the data itself (a malformed write or query): retrying will not help."""


@lru_cache(maxsize=65536)
def _check_name(kind: str, value: str) -> str:
    # Names end up as InfluxDB tag values and InfluxQL literals. Line protocol cannot carry control
    # characters at all, and a backslash before a separator changes the meaning of the line, so both
    # are refused here, for both adapters alike.
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{kind} must be a non-empty string, not {value!r}")
    if "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{kind} {value!r} contains a backslash or a control character")
    return value


def to_ns(ts: datetime) -> int:
    """Nanoseconds since the Unix epoch of an aware datetime."""
    if ts.tzinfo is not UTC and (ts.tzinfo is None or ts.utcoffset() is None):
        raise ValueError(f"timestamp {ts!r} is naive; pass an aware UTC datetime")
    d = ts - EPOCH
    return (d.days * 86_400 + d.seconds) * NS_PER_SECOND + d.microseconds * 1000


def from_ns(ns: int) -> datetime:
    """The aware UTC datetime of nanoseconds since the epoch (microsecond precision, like datetime)."""
    return EPOCH + timedelta(microseconds=ns // 1000)


def to_samples(rows: Iterable[Sequence[Any]], stamps: dict[int, datetime]) -> list[Sample]:
    """(ns, value) rows as samples, skipping empty values.

    ``stamps`` is shared by all series of one answer: a device sends all its metrics with one
    timestamp, so most datetimes repeat across series and are built once.
    """
    out: list[Sample] = []
    for ts, value in rows:
        if value is None:
            continue
        stamp = stamps.get(ts)
        if stamp is None:
            stamp = stamps[ts] = from_ns(ts)
        out.append(Sample(stamp, float(value)))
    return out


@dataclass(frozen=True, slots=True)
class FactoryScope:
    """The factory every time-series read and write is confined to. It cannot be empty."""

    factory_id: str

    def __post_init__(self) -> None:
        _check_name("factory_id", self.factory_id)


class AllFactories(enum.Enum):
    """The explicit, greppable target of platform-wide settings (see :data:`ALL_FACTORIES`)."""

    ALL = "all"


ALL_FACTORIES = AllFactories.ALL


_new = object.__new__
_set = object.__setattr__


@dataclass(frozen=True, slots=True)
class Point:
    """One value of one property of one device at one (aware, stored as UTC) time."""

    device_id: str
    property: str
    ts: datetime
    value: float

    def __post_init__(self) -> None:
        _check_name("device_id", self.device_id)
        _check_name("property", self.property)
        ts = self.ts
        if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
            raise ValueError(f"point timestamp {ts!r} must be an aware datetime")
        if ts.tzinfo is not UTC:
            ts = ts.astimezone(UTC)
            object.__setattr__(self, "ts", ts)
        if not EPOCH <= ts < LATEST_TS:
            raise ValueError(f"point timestamp {ts.isoformat()} is outside 1970..2262")
        value = float(self.value)
        if not math.isfinite(value):
            raise ValueError(f"point value of {self.device_id}/{self.property} is not finite: {self.value!r}")
        object.__setattr__(self, "value", value)

    @classmethod
    def trusted(cls, device_id: str, property: str, ts: datetime, value: float) -> Point:
        """A point from values already checked (the ingest path: names matched, finite float, UTC).

        Skips the checks of ``__init__``, which cost six times as much as building the point.
        """
        point = _new(cls)
        _set(point, "device_id", device_id)
        _set(point, "property", property)
        _set(point, "ts", ts)
        _set(point, "value", value)
        return point


class SeriesKey(NamedTuple):
    device_id: str
    property: str


class Sample(NamedTuple):
    ts: datetime
    value: float


class WindowStats(NamedTuple):
    """How many values (``samples``), their sum, min and max, for one series over one window (stamped at its start)."""

    ts: datetime
    samples: int
    sum: float
    min: float
    max: float


class SeriesSummary(NamedTuple):
    """One series over a whole range: values, their sum, min, max, and the hours that hold any."""

    samples: int
    sum: float
    min: float
    max: float
    hours: int


def check_whole_hours(start: datetime, end: datetime) -> None:
    if to_ns(start) % HOUR_NS or to_ns(end) % HOUR_NS or end <= start:
        raise ValueError("summary statistics need a range of whole hours (start and end on the hour)")


def to_window_stats(rows: Iterable[Sequence[Any]], stamps: dict[int, datetime]) -> list[WindowStats]:
    """(ns, count, sum, min, max) rows as window statistics, skipping empty windows."""
    out: list[WindowStats] = []
    for ts, count, total, low, high in rows:
        if not count:
            continue
        stamp = stamps.get(ts)
        if stamp is None:
            stamp = stamps[ts] = from_ns(ts)
        out.append(WindowStats(stamp, int(count), float(total), float(low), float(high)))
    return out


class Resolution(enum.StrEnum):
    """Where a query's values come from: raw points, or the 1-minute or 1-hour rollups."""

    RAW = "raw"
    MINUTE = "1m"
    HOUR = "1h"

    @property
    def period(self) -> timedelta:
        return _PERIODS[self]


_PERIODS = {Resolution.RAW: timedelta(0), Resolution.MINUTE: timedelta(minutes=1), Resolution.HOUR: timedelta(hours=1)}
# Coarsest first: a query reads the coarsest rollup whose period divides its window.
ROLLUPS = (Resolution.HOUR, Resolution.MINUTE)


def _check_duration(name: str, value: timedelta | None) -> None:
    if value is None:
        return
    if value < timedelta(hours=1) or value % timedelta(seconds=1):
        raise ValueError(f"{name} retention must be whole seconds and at least 1 hour (InfluxDB's minimum)")


def _le(a: timedelta | None, b: timedelta | None) -> bool:
    """a <= b, where None means forever."""
    return b is None or (a is not None and a <= b)


def _shorter(a: timedelta | None, b: timedelta | None) -> timedelta | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each resolution is kept; None keeps it forever. Rollups never expire before raw data."""

    raw: timedelta | None = timedelta(days=30)
    minute: timedelta | None = timedelta(days=365)
    hour: timedelta | None = None

    def __post_init__(self) -> None:
        _check_duration("raw", self.raw)
        _check_duration("1-minute rollup", self.minute)
        _check_duration("1-hour rollup", self.hour)
        if not (_le(self.raw, self.minute) and _le(self.minute, self.hour)):
            raise ValueError("retention must grow with resolution: raw <= 1-minute rollups <= 1-hour rollups")

    def of(self, resolution: Resolution) -> timedelta | None:
        return {Resolution.RAW: self.raw, Resolution.MINUTE: self.minute, Resolution.HOUR: self.hour}[resolution]

    def within(self, other: Retention) -> bool:
        """True when every resolution is kept no longer than in ``other``."""
        return _le(self.raw, other.raw) and _le(self.minute, other.minute) and _le(self.hour, other.hour)

    def capped_by(self, other: Retention) -> Retention:
        """Field by field the shorter of the two (a factory's retention never outlives the global one)."""
        return Retention(
            raw=_shorter(self.raw, other.raw),
            minute=_shorter(self.minute, other.minute),
            hour=_shorter(self.hour, other.hour),
        )


DEFAULT_RETENTION = Retention()


@dataclass(frozen=True)
class QueryResult:
    """The answer of :meth:`TimeseriesStore.query`.

    ``series`` has one entry per (device, property) that has data in the range, each sorted by time.
    Aggregated values are stamped with the start of their window; ``start``/``end`` is the range
    actually read (for aggregates, widened to whole windows).
    """

    resolution: Resolution
    aggregate: Aggregate | None
    interval: timedelta | None
    start: datetime
    end: datetime
    series: dict[SeriesKey, list[Sample]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueryPlan:
    resolution: Resolution
    aggregate: Aggregate | None
    interval: timedelta | None
    start_ns: int
    end_ns: int

    @property
    def interval_ns(self) -> int:
        return 0 if self.interval is None else int(self.interval.total_seconds()) * NS_PER_SECOND

    def result(self, series: dict[SeriesKey, list[Sample]]) -> QueryResult:
        return QueryResult(
            resolution=self.resolution,
            aggregate=self.aggregate,
            interval=self.interval,
            start=from_ns(self.start_ns),
            end=from_ns(self.end_ns),
            series=series,
        )


# Windows a chart can ask for when it gives a point budget: round numbers a person reads easily.
INTERVAL_LADDER = tuple(
    timedelta(seconds=s)
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
)


def window_count(start_ns: int, end_ns: int, interval_ns: int) -> int:
    """Number of epoch-aligned windows of ``interval_ns`` that overlap [start, end)."""
    return -(-end_ns // interval_ns) - start_ns // interval_ns


def _budget_interval(start_ns: int, end_ns: int, max_points: int) -> timedelta:
    for candidate in INTERVAL_LADDER:
        if window_count(start_ns, end_ns, int(candidate.total_seconds()) * NS_PER_SECOND) <= max_points:
            return candidate
    day = 86_400 * NS_PER_SECOND
    days = max(1, -(-(end_ns - start_ns) // (day * max_points)))
    while window_count(start_ns, end_ns, days * day) > max_points:
        days += 1
    return timedelta(days=days)


def _coarsest_resolution(interval: timedelta) -> Resolution:
    for resolution in ROLLUPS:
        if interval % resolution.period == timedelta(0):
            return resolution
    return Resolution.RAW


def plan_query(
    start: datetime,
    end: datetime,
    aggregate: Aggregate | None,
    interval: timedelta | None,
    max_points: int | None,
    retention: Retention,
    now: datetime,
) -> QueryPlan:
    """Choose the windows and the resolution of a range query (shared by every adapter).

    - No aggregate: raw points in [start, end).
    - An aggregate and an ``interval``: epoch-aligned windows of that size, read from the coarsest
      rollup whose period divides the interval (an exact answer: rollups keep count/sum/min/max).
    - An aggregate and ``max_points``: the smallest interval of :data:`INTERVAL_LADDER` (then whole
      days) that gives at most ``max_points`` windows, from the coarsest rollup that divides it; if
      that resolution has already expired at ``start``, the next coarser one is used instead.

    Aggregated ranges are widened to whole windows, so every window's value is complete and the
    answer does not depend on which resolution served it.
    """
    start_ns, end_ns = to_ns(start), to_ns(end)
    if start_ns >= end_ns:
        raise ValueError("start must be before end")
    if aggregate is None:
        if interval is not None or max_points is not None:
            raise ValueError("interval and max_points need an aggregate (mean, min, max, sum or count)")
        return QueryPlan(Resolution.RAW, None, None, start_ns, end_ns)
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, not {aggregate!r}")
    if (interval is None) == (max_points is None):
        raise ValueError("an aggregated query needs exactly one of interval and max_points")
    if interval is not None:
        if interval < timedelta(seconds=1) or interval % timedelta(seconds=1):
            raise ValueError("interval must be a whole number of seconds, at least 1 second")
        resolution = _coarsest_resolution(interval)
    else:
        assert max_points is not None
        if max_points < 1:
            raise ValueError("max_points must be at least 1")
        interval = _budget_interval(start_ns, end_ns, max_points)
        resolution = _coarsest_resolution(interval)
        order = [Resolution.RAW, Resolution.MINUTE, Resolution.HOUR]
        # A resolution that has expired at `start` would answer with a hole: step up to one that has not.
        while resolution is not Resolution.HOUR:
            kept = retention.of(resolution)
            if kept is None or to_ns(now - kept) <= start_ns:
                break
            period = order[order.index(resolution) + 1].period
            interval = -(-interval // period) * period
            resolution = _coarsest_resolution(interval)
    step = int(interval.total_seconds()) * NS_PER_SECOND
    return QueryPlan(resolution, aggregate, interval, start_ns // step * step, -(-end_ns // step) * step)


@runtime_checkable
class TimeseriesStore(Protocol):
    """The telemetry store. Domain code depends on this, never on an adapter.

    Methods that touch telemetry take the :class:`FactoryScope` first and only ever see that
    factory's data. ``compact``, ``apply_retention``, ``ping`` and ``close`` are maintenance of the
    whole store and touch no factory's data beyond what the platform's retention says.
    """

    def write(self, scope: FactoryScope, points: Iterable[Point]) -> int:
        """Store the points (idempotent per device/property/timestamp; the last value written wins).

        Returns how many were stored: points older than the factory's raw retention are dropped,
        as InfluxDB does. Raises :class:`TimeseriesUnavailable` when the store cannot take them.
        """
        ...

    def latest(
        self, scope: FactoryScope, device_ids: Sequence[str], properties: Sequence[str] | None = None
    ) -> dict[SeriesKey, Sample]:
        """The newest value of each (device, property) that has one; all properties when None."""
        ...

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
        """Raw points in [start, end), or aggregated windows (see :func:`plan_query`)."""
        ...

    def window_stats(
        self,
        scope: FactoryScope,
        device_ids: Sequence[str],
        properties: Sequence[str] | None,
        start: datetime,
        end: datetime,
        interval: timedelta,
    ) -> dict[SeriesKey, list[WindowStats]]:
        """Count, sum, min and max of each epoch-aligned window of ``interval`` in one read.

        Windows and resolution are chosen as :meth:`query` chooses them for an aggregate with that
        interval (the coarsest rollup that divides it; the range widened to whole windows). What
        reports need to compute energy from counters (first/last via min/max) and statistics.
        """
        ...

    def summary_stats(
        self,
        scope: FactoryScope,
        device_ids: Sequence[str],
        properties: Sequence[str] | None,
        start: datetime,
        end: datetime,
    ) -> dict[SeriesKey, SeriesSummary]:
        """Each series over [start, end) in one row, from the 1-hour rollups: start and end must be on
        the hour (ValueError otherwise). ``hours`` counts the hours that hold at least one value."""
        ...

    def rebuild_rollups(self, scope: FactoryScope, start: datetime, end: datetime) -> None:
        """Recompute the factory's 1-minute and 1-hour rollups of [start, end) from raw data."""
        ...

    def compact(self) -> None:
        """Bring rollups up to date with points written late (replayed spool, backfill)."""
        ...

    def configure_retention(self, target: FactoryScope | AllFactories, retention: Retention | None) -> None:
        """Set the global retention, or a factory's (None: the factory follows the global one again).

        A factory's retention can only be shorter than the global one (ValueError otherwise). The store
        uses it to drop points written older than the factory keeps raw data and to plan queries; the
        deleting is :meth:`delete_before`'s, called by whoever owns the setting (the retention sweep).
        """
        ...

    def retention(self, scope: FactoryScope | AllFactories) -> Retention:
        """The retention in force for a factory (its own, capped by the global one), or the global one."""
        ...

    def apply_retention(self, now: datetime | None = None) -> None:
        """Enforce the global retention (call it periodically, e.g. hourly).

        A store that does not expire data by itself (embedded) deletes what the global retention no
        longer keeps; InfluxDB drops expired shards itself, so there this only brings the rollups up
        to date first. A factory's shorter retention is enforced with :meth:`delete_before`.
        """
        ...

    def delete_before(self, scope: FactoryScope, resolution: Resolution, cutoff: datetime) -> int | None:
        """Delete the factory's values of one resolution stamped before ``cutoff``; safe to repeat.

        The cutoff is floored to a whole minute (a minute is deleted whole or not at all). Before raw
        points go, the factory's late points are folded into the rollups, so the rollups keep what
        raw data is deleted. Other factories and newer values are never touched. Returns how many
        values were deleted, or None when the store cannot tell without counting them (InfluxDB).
        """
        ...

    def ping(self) -> None:
        """Return if the store answers; raise :class:`TimeseriesUnavailable` otherwise."""
        ...

    def close(self) -> None: ...


def check_names(device_ids: Sequence[str], properties: Sequence[str] | None) -> None:
    if isinstance(device_ids, str) or isinstance(properties, str):
        raise TypeError("device_ids and properties are sequences of names, not a single string")
    for device_id in device_ids:
        _check_name("device_id", device_id)
    for prop in properties or ():
        _check_name("property", prop)


def utcnow() -> datetime:
    return datetime.now(UTC)
