"""The time-series port's contract: every adapter (embedded SQLite, InfluxDB) must pass all of it.

Expected values are computed here in Python from the points written, never read back from the
store, and the data sits days in the past so that it is "late" for InfluxDB's continuous queries:
every rollup a test reads was built by the adapter's own late-point path.
"""

from __future__ import annotations

import inspect
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import pytest

from factoryops.ports.timeseries.base import (
    AGGREGATES,
    ALL_FACTORIES,
    DEFAULT_RETENTION,
    Aggregate,
    FactoryScope,
    Point,
    Resolution,
    Retention,
    Sample,
    SeriesKey,
    TimeseriesRejected,
    TimeseriesStore,
    TimeseriesUnavailable,
    to_ns,
)
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore
from factoryops.ports.timeseries.influx import InfluxTimeseriesStore, factory_condition

A = FactoryScope("factory-a")
B = FactoryScope("factory-b")
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def hour_ago(days: int) -> datetime:
    """The start of an hour ``days`` days ago: data there is older than any continuous query looks."""
    return (datetime.now(UTC) - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)


def series(device: str, prop: str, start: datetime, count: int, step: timedelta, value0: float = 0.0) -> list[Point]:
    # Multiples of 1/4: sums are exact in binary floating point, whatever order a store adds them in.
    return [Point(device, prop, start + i * step, value0 + ((i * 37) % 101 - 50) / 4) for i in range(count)]


def raw_of(points: Iterable[Point]) -> dict[SeriesKey, list[Sample]]:
    out: dict[SeriesKey, dict[datetime, float]] = defaultdict(dict)
    for p in points:
        out[SeriesKey(p.device_id, p.property)][p.ts] = p.value  # the last write wins
    return {k: [Sample(ts, v) for ts, v in sorted(values.items())] for k, values in out.items()}


def aggregated(points: Iterable[Point], interval: timedelta, aggregate: Aggregate) -> dict[SeriesKey, list[Sample]]:
    step = to_ns(datetime(1970, 1, 1, tzinfo=UTC) + interval)
    windows: dict[SeriesKey, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for key, samples in raw_of(points).items():
        for ts, value in samples:
            windows[key][to_ns(ts) // step * step].append(value)
    functions: dict[str, Callable[[list[float]], float]] = {
        "mean": lambda v: math.fsum(v) / len(v),
        "min": min,
        "max": max,
        "sum": math.fsum,
        "count": lambda v: float(len(v)),
    }
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return {
        key: [Sample(epoch + timedelta(microseconds=w // 1000), functions[aggregate](v)) for w, v in sorted(ws.items())]
        for key, ws in windows.items()
    }


def assert_series_equal(got: dict[SeriesKey, list[Sample]], want: dict[SeriesKey, list[Sample]]) -> None:
    assert set(got) == set(want)
    for key in want:
        assert [s.ts for s in got[key]] == [s.ts for s in want[key]], key
        assert [s.value for s in got[key]] == pytest.approx([s.value for s in want[key]], rel=1e-12), key


# -- the scope ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "   ", None, 42, "with\nnewline", "back\\slash"])
def test_scope_cannot_be_built_without_a_factory(bad: object) -> None:
    with pytest.raises(ValueError):
        FactoryScope(bad)


@pytest.mark.parametrize("adapter", [EmbeddedTimeseriesStore, InfluxTimeseriesStore])
def test_no_telemetry_method_exists_without_the_factory(adapter: type) -> None:
    for name in ("write", "latest", "query", "rebuild_rollups"):
        params = list(inspect.signature(getattr(adapter, name)).parameters.values())
        assert params[1].name == "scope" and params[1].default is inspect.Parameter.empty, name
        assert params[1].annotation in ("FactoryScope", FactoryScope), name


def test_both_adapters_implement_the_port(store: TimeseriesStore) -> None:
    assert isinstance(store, TimeseriesStore)
    store.ping()


# -- writes and raw reads -------------------------------------------------------------------------


def test_write_then_raw_query_returns_exactly_the_points(store: TimeseriesStore) -> None:
    start = hour_ago(2)
    points = series("press-1", "power_kw", start, 50, timedelta(seconds=7))
    assert store.write(A, points) == 50
    result = store.query(A, ["press-1"], ["power_kw"], start, start + HOUR)
    assert result.resolution is Resolution.RAW and result.aggregate is None and result.interval is None
    assert_series_equal(result.series, raw_of(points))
    assert all(s.ts.tzinfo is not None for s in result.series[SeriesKey("press-1", "power_kw")])


def test_raw_range_includes_start_and_excludes_end(store: TimeseriesStore) -> None:
    start = hour_ago(2)
    points = series("d", "p", start, 10, MINUTE)
    store.write(A, points)
    result = store.query(A, ["d"], ["p"], start + 2 * MINUTE, start + 5 * MINUTE)
    assert [s.ts for s in result.series[SeriesKey("d", "p")]] == [start + i * MINUTE for i in (2, 3, 4)]
    assert store.query(A, ["d"], ["p"], start + 10 * MINUTE, start + 20 * MINUTE).series == {}


def test_rewrites_are_idempotent_and_the_last_value_wins(store: TimeseriesStore) -> None:
    start = hour_ago(2)
    points = series("d", "p", start, 30, timedelta(seconds=10))
    store.write(A, points)
    store.write(A, points)  # a replayed spool
    changed = [Point(p.device_id, p.property, p.ts, p.value + 1000) for p in points[:5]]
    store.write(A, changed)
    want = raw_of(points + changed)
    assert_series_equal(store.query(A, ["d"], ["p"], start, start + HOUR).series, want)
    counted = store.query(A, ["d"], ["p"], start, start + HOUR, aggregate="count", interval=HOUR)
    assert counted.series[SeriesKey("d", "p")][0].value == 30
    summed = store.query(A, ["d"], ["p"], start, start + HOUR, aggregate="sum", interval=HOUR)
    assert summed.series[SeriesKey("d", "p")][0].value == pytest.approx(sum(s.value for s in want[SeriesKey("d", "p")]))


def test_several_devices_and_properties_at_once(store: TimeseriesStore) -> None:
    start = hour_ago(2)
    points: list[Point] = []
    for d, device in enumerate(("m1", "m2", "m3")):
        for q, prop in enumerate(("voltage_l1", "current_l1", "power_kw")):
            points += series(device, prop, start, 20, timedelta(seconds=30), value0=100 * d + 10 * q)
    store.write(A, points)
    wanted = [p for p in points if p.device_id in ("m1", "m2") and p.property in ("voltage_l1", "power_kw")]
    result = store.query(A, ["m1", "m2"], ["voltage_l1", "power_kw"], start, start + HOUR)
    assert_series_equal(result.series, raw_of(wanted))
    everything_of_m3 = store.query(A, ["m3"], None, start, start + HOUR)
    assert_series_equal(everything_of_m3.series, raw_of(p for p in points if p.device_id == "m3"))
    means = store.query(A, ["m1", "m2", "m3"], None, start, start + HOUR, aggregate="mean", interval=5 * MINUTE)
    assert_series_equal(means.series, aggregated(points, 5 * MINUTE, "mean"))


def test_latest_value_per_device_and_property(store: TimeseriesStore) -> None:
    start = hour_ago(1)
    points = [
        Point("m1", "p", start + 5 * MINUTE, 5.0),
        Point("m1", "p", start + 9 * MINUTE, 9.0),
        Point("m1", "p", start + 1 * MINUTE, 1.0),  # written last, but older
        Point("m1", "q", start + 2 * MINUTE, 2.0),
        Point("m2", "p", start + 3 * MINUTE, 3.0),
    ]
    store.write(A, points)
    assert store.latest(A, ["m1", "m2", "nobody"]) == {
        SeriesKey("m1", "p"): Sample(start + 9 * MINUTE, 9.0),
        SeriesKey("m1", "q"): Sample(start + 2 * MINUTE, 2.0),
        SeriesKey("m2", "p"): Sample(start + 3 * MINUTE, 3.0),
    }
    assert store.latest(A, ["m1", "m2"], ["p"]) == {
        SeriesKey("m1", "p"): Sample(start + 9 * MINUTE, 9.0),
        SeriesKey("m2", "p"): Sample(start + 3 * MINUTE, 3.0),
    }
    assert store.latest(A, []) == {}


# -- aggregates -------------------------------------------------------------------------------------


@pytest.mark.parametrize("aggregate", AGGREGATES)
@pytest.mark.parametrize(
    ("interval", "resolution"),
    [(timedelta(seconds=90), Resolution.RAW), (10 * MINUTE, Resolution.MINUTE), (2 * HOUR, Resolution.HOUR)],
    ids=["90s-from-raw", "10m-from-1m-rollup", "2h-from-1h-rollup"],
)
def test_aggregates_over_windows_are_exact(
    store: TimeseriesStore, aggregate: Aggregate, interval: timedelta, resolution: Resolution
) -> None:
    start = hour_ago(3)
    # Irregular spacing (13 s) so windows hold different numbers of points, over 5 hours.
    points = series("d1", "p", start + timedelta(seconds=11), 1400, timedelta(seconds=13))
    points += series("d2", "p", start, 300, MINUTE, value0=7.5)
    store.write(A, points)
    result = store.query(A, ["d1", "d2"], ["p"], start, start + 6 * HOUR, aggregate=aggregate, interval=interval)
    assert result.resolution is resolution
    assert result.interval == interval and result.aggregate == aggregate
    assert_series_equal(result.series, aggregated(points, interval, aggregate))


@pytest.mark.parametrize(
    "interval",
    [timedelta(seconds=90), MINUTE, 10 * MINUTE, HOUR, 2 * HOUR],
    ids=["raw", "1m-rows", "1m", "1h-rows", "1h"],
)
def test_window_stats_give_count_sum_min_max_in_one_read(store: TimeseriesStore, interval: timedelta) -> None:
    start = hour_ago(3)
    points = series("d1", "p", start + timedelta(seconds=11), 1400, timedelta(seconds=13))
    points += series("d2", "p", start, 300, MINUTE, value0=7.5)
    points += series("d2", "q", start, 50, MINUTE, value0=-3.0)
    store.write(A, points)
    store.write(B, series("d1", "p", start, 300, MINUTE, value0=1000.0))  # never in A's answer
    got = store.window_stats(A, ["d1", "d2"], ["p"], start, start + 6 * HOUR, interval)
    want = {name: aggregated(points, interval, name) for name in ("count", "sum", "min", "max")}
    assert set(got) == {SeriesKey("d1", "p"), SeriesKey("d2", "p")}
    for key, windows in got.items():
        assert [w.ts for w in windows] == [s.ts for s in want["count"][key]]
        assert [w.samples for w in windows] == [int(s.value) for s in want["count"][key]]
        assert [w.sum for w in windows] == pytest.approx([s.value for s in want["sum"][key]])
        assert [w.min for w in windows] == [s.value for s in want["min"][key]]
        assert [w.max for w in windows] == [s.value for s in want["max"][key]]
    assert store.window_stats(A, ["nobody"], None, start, start + HOUR, interval) == {}


def test_summary_stats_of_whole_hours_in_one_row_per_series(store: TimeseriesStore) -> None:
    start = hour_ago(6)
    points = series("d1", "p", start + timedelta(seconds=11), 1400, timedelta(seconds=13))  # ~5 hours
    points += series("d2", "p", start + 2 * HOUR, 30, MINUTE, value0=-4.0)  # half of one hour
    store.write(A, points)
    store.write(B, series("d1", "p", start, 300, MINUTE, value0=1000.0))
    got = store.summary_stats(A, ["d1", "d2"], ["p"], start, start + 6 * HOUR)
    raw = raw_of(points)
    for key, samples in raw.items():
        values = [s.value for s in samples]
        hours = {s.ts.replace(minute=0, second=0, microsecond=0) for s in samples}
        assert got[key].samples == len(values)
        assert got[key].sum == pytest.approx(math.fsum(values))
        assert (got[key].min, got[key].max, got[key].hours) == (min(values), max(values), len(hours))
    assert set(got) == set(raw)
    window = store.summary_stats(A, ["d1"], ["p"], start + HOUR, start + 2 * HOUR)
    inside = [s.value for s in raw[SeriesKey("d1", "p")] if start + HOUR <= s.ts < start + 2 * HOUR]
    assert window[SeriesKey("d1", "p")].samples == len(inside) and window[SeriesKey("d1", "p")].hours == 1
    with pytest.raises(ValueError, match="whole hours"):
        store.summary_stats(A, ["d1"], ["p"], start + MINUTE, start + HOUR)


def test_aggregated_ranges_cover_whole_windows(store: TimeseriesStore) -> None:
    start = hour_ago(2)
    points = series("d", "p", start, 120, MINUTE)
    store.write(A, points)
    result = store.query(
        A, ["d"], ["p"], start + 7 * MINUTE, start + 23 * MINUTE, aggregate="count", interval=10 * MINUTE
    )
    assert (result.start, result.end) == (start, start + 30 * MINUTE)
    assert [s.value for s in result.series[SeriesKey("d", "p")]] == [10.0, 10.0, 10.0]


def test_long_spans_read_the_coarsest_rollup_that_fits_the_budget(store: TimeseriesStore) -> None:
    start = hour_ago(6)
    points = series("d", "p", start, 3 * 24 * 60, MINUTE) + series("d", "q", start, 3 * 24 * 60, MINUTE, value0=3)
    store.write(A, points)
    end = start + 3 * DAY
    for max_points, interval, resolution in (
        (100, HOUR, Resolution.HOUR),  # 72 windows of an hour
        (40, 2 * HOUR, Resolution.HOUR),
        (1000, 5 * MINUTE, Resolution.MINUTE),  # 864 windows
        (10_000, timedelta(seconds=30), Resolution.RAW),
    ):
        for aggregate in ("mean", "max", "count"):
            result = store.query(A, ["d"], ["p", "q"], start, end, aggregate=aggregate, max_points=max_points)
            assert (result.resolution, result.interval) == (resolution, interval), max_points
            assert all(len(s) <= max_points for s in result.series.values())
            assert_series_equal(result.series, aggregated(points, interval, aggregate))


def test_a_budget_over_expired_raw_data_steps_up_to_a_rollup(store: TimeseriesStore) -> None:
    store.configure_retention(A, Retention(raw=DAY, minute=DEFAULT_RETENTION.minute, hour=None))
    start = hour_ago(5)
    result = store.query(A, ["d"], ["p"], start, start + HOUR, aggregate="mean", max_points=1000)
    assert (result.resolution, result.interval) == (Resolution.MINUTE, MINUTE)


def test_late_points_are_folded_into_the_rollups(store: TimeseriesStore) -> None:
    start = hour_ago(4)
    points = series("d", "p", start, 120, MINUTE)
    store.write(A, points)
    before = store.query(A, ["d"], ["p"], start, start + 2 * HOUR, aggregate="sum", interval=HOUR)
    assert_series_equal(before.series, aggregated(points, HOUR, "sum"))
    late = [Point("d", "p", start + timedelta(seconds=30), 1000.0), Point("d", "p", start + 61 * MINUTE, -500.0)]
    store.write(A, late)  # a spool replayed hours later: one new point, one changed value
    for interval in (HOUR, MINUTE):
        after = store.query(A, ["d"], ["p"], start, start + 2 * HOUR, aggregate="sum", interval=interval)
        assert after.resolution is (Resolution.HOUR if interval == HOUR else Resolution.MINUTE)
        assert_series_equal(after.series, aggregated(points + late, interval, "sum"))


def test_rebuild_rollups_and_compact_are_safe_to_repeat(store: TimeseriesStore) -> None:
    start = hour_ago(3)
    points = series("d", "p", start, 90, MINUTE)
    store.write(A, points)
    store.compact()
    store.rebuild_rollups(A, start, start + 2 * HOUR)
    store.rebuild_rollups(A, start, start + 2 * HOUR)
    store.compact()
    result = store.query(A, ["d"], ["p"], start, start + 2 * HOUR, aggregate="mean", interval=HOUR)
    assert_series_equal(result.series, aggregated(points, HOUR, "mean"))


# -- factory isolation ------------------------------------------------------------------------------


def test_a_factory_never_sees_another_factorys_data(store: TimeseriesStore) -> None:
    start = hour_ago(3)
    a_points = series("m1", "p", start, 200, MINUTE, value0=1) + series("m2", "q", start, 200, MINUTE, value0=2)
    b_points = series("m1", "p", start, 200, MINUTE, value0=1000) + series("m1", "only_b", start, 10, MINUTE)
    b_points += series("m2", "q", start + timedelta(seconds=30), 200, MINUTE, value0=2000)
    store.write(A, a_points)
    store.write(B, b_points)
    end = start + 4 * HOUR
    for scope, points in ((A, a_points), (B, b_points)):
        assert_series_equal(store.query(scope, ["m1", "m2"], None, start, end).series, raw_of(points))
        for aggregate in AGGREGATES:
            for interval in (timedelta(seconds=30), 5 * MINUTE, HOUR):
                got = store.query(scope, ["m1", "m2"], None, start, end, aggregate=aggregate, interval=interval)
                assert_series_equal(got.series, aggregated(points, interval, aggregate))
        latest = {k: v[-1] for k, v in raw_of(points).items()}
        assert store.latest(scope, ["m1", "m2"]) == latest
    assert store.latest(A, ["m1"], ["only_b"]) == {}
    assert store.query(A, ["m1"], ["only_b"], start, end).series == {}


def test_influx_statements_all_carry_the_factory_filter(influx_store: InfluxTimeseriesStore) -> None:
    store = influx_store
    sent: list[str] = []
    real_query = store._query

    def recording(statement: str, chunked: bool = False) -> list[dict[str, object]]:
        sent.append(statement)
        return real_query(statement, chunked)

    store._query = recording
    try:
        start = hour_ago(2)
        store.write(A, series("d", "p", start, 100, MINUTE))
        store.latest(A, ["d"])
        store.latest(A, ["d"], ["p"])
        store.query(A, ["d"], None, start, start + 2 * HOUR)
        for interval in (timedelta(seconds=30), MINUTE, HOUR):
            store.query(A, ["d"], ["p"], start, start + 2 * HOUR, aggregate="mean", interval=interval)
        store.rebuild_rollups(A, start, start + HOUR)
        store.configure_retention(A, Retention(raw=2 * DAY))
        store.retention(A)
        store.configure_retention(A, None)
        for resolution in Resolution:
            store.delete_before(A, resolution, start)
        deletes = [s for s in sent if s.startswith("DELETE FROM")]
        measurements = ['"factory_retention"', '"device_metrics"', '"device_metrics_1m"', '"device_metrics_1h"']
        assert [s.split()[2] for s in deletes] == measurements
        reads = [s for s in sent if s.split()[0] in ("SELECT", "DELETE")]
        assert len(reads) >= 11
        for statement in reads:
            assert f"WHERE {factory_condition(A)} AND " in statement, statement
    finally:
        store._query = real_query


# -- odd names --------------------------------------------------------------------------------------

ODD_FACTORY = FactoryScope("Fabrik Süd, Halle=2 'West' \"B\"")
ODD_DEVICES = ["press 1", "press,2", "press=3", 'it\'s "quoted"', "Kälte-Anlage ❄ 北", " lead-trail "]
ODD_PROPS = ["phase a.voltage", "p,=q", "temp °C"]


def test_odd_device_ids_properties_and_factories_round_trip(store: TimeseriesStore) -> None:
    start = hour_ago(2)
    points = [
        Point(device, prop, start + i * MINUTE, float(10 * d + p + i))
        for d, device in enumerate(ODD_DEVICES)
        for p, prop in enumerate(ODD_PROPS)
        for i in range(5)
    ]
    assert store.write(ODD_FACTORY, points) == len(points)
    # A lookalike factory and device must stay apart from the odd ones.
    store.write(FactoryScope("Fabrik Süd"), [Point("press", "phase a.voltage", start, -1.0)])
    end = start + HOUR
    assert_series_equal(store.query(ODD_FACTORY, ODD_DEVICES, ODD_PROPS, start, end).series, raw_of(points))
    assert_series_equal(store.query(ODD_FACTORY, ODD_DEVICES, None, start, end).series, raw_of(points))
    means = store.query(ODD_FACTORY, ODD_DEVICES, ODD_PROPS, start, end, aggregate="mean", interval=2 * MINUTE)
    assert_series_equal(means.series, aggregated(points, 2 * MINUTE, "mean"))
    assert store.latest(ODD_FACTORY, ODD_DEVICES) == {k: v[-1] for k, v in raw_of(points).items()}
    assert store.latest(FactoryScope("Fabrik Süd"), ["press"]) == {
        SeriesKey("press", "phase a.voltage"): Sample(start, -1.0)
    }
    assert store.query(FactoryScope("Fabrik Süd"), ODD_DEVICES, None, start, end).series == {}


@pytest.mark.parametrize("bad", ["", "new\nline", "tab\tbed", "back\\slash"])
def test_names_a_store_cannot_carry_are_refused(bad: str) -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValueError):
        Point(bad, "p", now, 1.0)
    with pytest.raises(ValueError):
        Point("d", bad, now, 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ts": datetime(2026, 1, 1)},  # naive
        {"value": math.nan},
        {"value": math.inf},
        {"ts": datetime(1960, 1, 1, tzinfo=UTC)},
    ],
)
def test_points_a_store_cannot_carry_are_refused(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"device_id": "d", "property": "p", "ts": datetime.now(UTC), "value": 1.0} | kwargs
    with pytest.raises(ValueError):
        Point(**fields)


def test_queries_that_make_no_sense_are_refused(store: TimeseriesStore) -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValueError, match="before end"):
        store.query(A, ["d"], None, now, now)
    with pytest.raises(ValueError, match="exactly one"):
        store.query(A, ["d"], None, now - HOUR, now, aggregate="mean", interval=MINUTE, max_points=10)
    with pytest.raises(ValueError, match="need an aggregate"):
        store.query(A, ["d"], None, now - HOUR, now, max_points=10)
    with pytest.raises(ValueError, match="whole number of seconds"):
        store.query(A, ["d"], None, now - HOUR, now, aggregate="sum", interval=timedelta(milliseconds=1500))
    with pytest.raises(ValueError, match="naive"):
        store.query(A, ["d"], None, datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(TypeError):
        store.query(A, "d", None, now - HOUR, now)


# -- retention --------------------------------------------------------------------------------------


def test_retention_settings_round_trip(store: TimeseriesStore) -> None:
    assert store.retention(ALL_FACTORIES) == DEFAULT_RETENTION
    assert store.retention(A) == DEFAULT_RETENTION
    short = Retention(raw=2 * DAY, minute=30 * DAY, hour=400 * DAY)
    store.configure_retention(A, short)
    assert store.retention(A) == short
    assert store.retention(B) == DEFAULT_RETENTION
    with pytest.raises(ValueError, match="longer than the global"):
        store.configure_retention(B, Retention(raw=60 * DAY, minute=400 * DAY))
    wider = Retention(raw=90 * DAY, minute=2 * 365 * DAY, hour=None)
    store.configure_retention(ALL_FACTORIES, wider)
    assert store.retention(ALL_FACTORIES) == wider
    assert store.retention(B) == wider
    narrower = Retention(raw=DAY, minute=10 * DAY, hour=100 * DAY)
    store.configure_retention(ALL_FACTORIES, narrower)
    assert store.retention(A) == Retention(raw=DAY, minute=10 * DAY, hour=100 * DAY)  # capped by the global
    store.configure_retention(A, None)
    assert store.retention(A) == narrower


@pytest.mark.parametrize(
    "kwargs",
    [{"raw": timedelta(minutes=30)}, {"raw": 10 * DAY, "minute": 5 * DAY}, {"hour": DAY, "minute": None}],
)
def test_retention_must_grow_with_resolution(kwargs: dict[str, timedelta | None]) -> None:
    with pytest.raises(ValueError):
        Retention(**kwargs)


def test_deleting_old_raw_data_keeps_the_rollups(store: TimeseriesStore) -> None:
    old, recent = hour_ago(5), hour_ago(0) - 2 * HOUR
    a_old = series("d", "p", old, 120, MINUTE)
    a_recent = series("d", "p", recent, 30, MINUTE)
    b_old = series("d", "p", old, 120, MINUTE, value0=9)
    store.write(A, a_old + a_recent)
    store.write(B, b_old)
    store.configure_retention(A, Retention(raw=DAY, minute=DEFAULT_RETENTION.minute, hour=None))
    store.delete_before(A, Resolution.RAW, datetime.now(UTC) - DAY)
    everything = (old - HOUR, recent + HOUR)
    assert_series_equal(store.query(A, ["d"], ["p"], *everything).series, raw_of(a_recent))
    assert_series_equal(store.query(B, ["d"], ["p"], *everything).series, raw_of(b_old))  # B keeps its own
    # The rollups of the expired hours are still there, and still exact: the late points were folded
    # into them before their raw data went.
    old_hours = store.query(A, ["d"], ["p"], old, old + 2 * HOUR, aggregate="mean", interval=HOUR)
    assert old_hours.resolution is Resolution.HOUR
    assert_series_equal(old_hours.series, aggregated(a_old, HOUR, "mean"))
    old_minutes = store.query(A, ["d"], ["p"], old, old + 2 * HOUR, aggregate="max", max_points=500)
    assert old_minutes.resolution is Resolution.MINUTE
    assert_series_equal(old_minutes.series, aggregated(a_old, MINUTE, "max"))
    # A point older than the factory keeps is not stored at all.
    assert store.write(A, [Point("d", "p", old + 30 * MINUTE, 1.0), Point("d", "p", recent, 5.0)]) == 1
    assert store.query(A, ["d"], ["p"], *everything).series[SeriesKey("d", "p")][0] == Sample(recent, 5.0)
    assert store.latest(A, ["d"]) == {SeriesKey("d", "p"): Sample(a_recent[-1].ts, a_recent[-1].value)}


def read_tier(
    store: TimeseriesStore, scope: FactoryScope, resolution: Resolution, start: datetime, end: datetime
) -> dict[SeriesKey, list[Sample]]:
    """What one resolution holds in [start, end): raw points, or the rollup rows' sums."""
    if resolution is Resolution.RAW:
        return store.query(scope, ["d"], None, start, end).series
    result = store.query(scope, ["d"], None, start, end, aggregate="sum", interval=resolution.period)
    assert result.resolution is resolution
    return result.series


def tier_of(points: list[Point], resolution: Resolution) -> dict[SeriesKey, list[Sample]]:
    """What :func:`read_tier` should find for these points."""
    if resolution is Resolution.RAW:
        return raw_of(points)
    return aggregated(points, resolution.period, "sum")


@pytest.mark.parametrize("resolution", list(Resolution), ids=lambda r: r.value)
def test_delete_before_removes_one_factorys_older_values_of_one_resolution(
    store: TimeseriesStore, resolution: Resolution
) -> None:
    old, new, cutoff = hour_ago(20), hour_ago(5), hour_ago(10)
    a_old = series("d", "p", old, 120, MINUTE) + series("d", "q", old, 60, MINUTE, value0=3)
    a_new = series("d", "p", new, 120, MINUTE) + series("d", "q", new, 60, MINUTE, value0=3)
    b_all = series("d", "p", old, 120, MINUTE, value0=9) + series("d", "p", new, 120, MINUTE, value0=9)
    store.write(A, a_old + a_new)
    store.write(B, b_all)
    store.compact()  # every rollup holds its points before anything is deleted
    deleted = store.delete_before(A, resolution, cutoff)
    rows = {Resolution.RAW: 180, Resolution.MINUTE: 180, Resolution.HOUR: 3}[resolution]
    assert deleted is None or deleted == rows  # InfluxDB does not count what it deletes
    assert store.delete_before(A, resolution, cutoff) in (None, 0)  # safe to repeat
    for tier in Resolution:
        older = read_tier(store, A, tier, old - HOUR, cutoff)
        assert_series_equal(older, {} if tier is resolution else tier_of(a_old, tier))
        assert_series_equal(read_tier(store, A, tier, cutoff, new + 3 * HOUR), tier_of(a_new, tier))
        assert_series_equal(read_tier(store, B, tier, old - HOUR, new + 3 * HOUR), tier_of(b_all, tier))


def test_delete_before_quotes_the_factory_and_floors_to_whole_minutes(store: TimeseriesStore) -> None:
    start = hour_ago(3)
    lookalike = FactoryScope("Fabrik Süd")
    points = series("d", "p", start, 10, timedelta(seconds=20))  # 3 points in each minute
    store.write(ODD_FACTORY, points)
    store.write(lookalike, points)
    store.delete_before(ODD_FACTORY, Resolution.RAW, start + 2 * MINUTE + timedelta(seconds=30))
    # The minute the cutoff falls in is kept whole: a minute goes entirely or not at all.
    left = store.query(ODD_FACTORY, ["d"], ["p"], start, start + HOUR).series
    assert_series_equal(left, raw_of(points[6:]))
    assert_series_equal(store.query(lookalike, ["d"], ["p"], start, start + HOUR).series, raw_of(points))


def test_the_embedded_store_deletes_what_the_global_retention_no_longer_keeps(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # InfluxDB drops expired shards itself, on its own schedule; the embedded store does it here.
    store = EmbeddedTimeseriesStore(tmp_path_factory.mktemp("timeseries"), retention=DEFAULT_RETENTION)
    try:
        old, recent = hour_ago(20), hour_ago(2)
        for scope in (A, B):
            store.write(scope, series("d", "p", old, 60, MINUTE) + series("d", "p", recent, 60, MINUTE))
        store.configure_retention(ALL_FACTORIES, Retention(raw=10 * DAY, minute=15 * DAY, hour=None))
        store.apply_retention()
        for scope in (A, B):
            assert_series_equal(
                read_tier(store, scope, Resolution.RAW, old, recent + HOUR),
                raw_of(series("d", "p", recent, 60, MINUTE)),
            )
            assert read_tier(store, scope, Resolution.MINUTE, old, old + HOUR) == {}
            hours = read_tier(store, scope, Resolution.HOUR, old, old + HOUR)
            assert_series_equal(hours, aggregated(series("d", "p", old, 60, MINUTE), HOUR, "sum"))
    finally:
        store.close()


def test_points_older_than_the_global_retention_are_dropped(store: TimeseriesStore) -> None:
    store.configure_retention(ALL_FACTORIES, Retention(raw=2 * DAY, minute=30 * DAY, hour=None))
    kept, expired = hour_ago(1), hour_ago(3)
    assert store.write(A, [Point("d", "p", expired, 1.0), Point("d", "p", kept, 2.0)]) == 1
    assert store.query(A, ["d"], ["p"], expired - HOUR, kept + HOUR).series == {
        SeriesKey("d", "p"): [Sample(kept, 2.0)]
    }


# -- volume and failure -----------------------------------------------------------------------------


def test_large_writes_go_in_batches(store: TimeseriesStore) -> None:
    start = hour_ago(2)
    points = [Point(f"dev-{i % 50}", f"m{i % 7}", start + timedelta(seconds=i // 350), float(i)) for i in range(12_345)]
    batches: list[int] = []
    if isinstance(store, InfluxTimeseriesStore):
        real = store._write_lines

        def counting(body: str) -> int:
            batches.append(body.count("\n") + 1)
            return real(body)

        store._write_lines = counting
    assert store.write(A, points) == 12_345
    if isinstance(store, InfluxTimeseriesStore):
        assert batches == [5000, 5000, 2345]
    counts = store.query(
        A, [f"dev-{i}" for i in range(50)], None, start, start + HOUR, aggregate="count", interval=HOUR
    )
    assert sum(s[0].value for s in counts.series.values()) == 12_345


def test_a_long_raw_series_comes_back_whole_and_in_order(store: TimeseriesStore) -> None:
    start = hour_ago(1) - 4 * HOUR
    points = series("d", "p", start, 12_500, timedelta(seconds=1))  # more than one InfluxDB result chunk
    store.write(A, points)
    result = store.query(A, ["d"], ["p"], start, start + 4 * HOUR)
    assert_series_equal(result.series, raw_of(points))


def test_an_influxdb_that_is_down_raises_unavailable_with_a_clear_message(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    store = InfluxTimeseriesStore(url, database="nowhere", timeout=2)
    assert store.url == url  # nothing is contacted until the first call
    now = datetime.now(UTC)
    calls = [
        lambda: store.write(A, [Point("d", "p", now, 1.0)]),
        lambda: store.latest(A, ["d"]),
        lambda: store.query(A, ["d"], None, now - HOUR, now),
        store.ping,
    ]
    for call in calls:
        with pytest.raises(TimeseriesUnavailable) as failure:
            call()
        assert f"InfluxDB at {url} cannot be reached" in str(failure.value)
    store.close()


def test_a_closed_store_raises_unavailable(store: TimeseriesStore) -> None:
    store.close()
    with pytest.raises(TimeseriesUnavailable, match="closed"):
        store.write(A, [Point("d", "p", datetime.now(UTC), 1.0)])
    with pytest.raises(TimeseriesUnavailable, match="closed"):
        store.ping()


def test_influxdb_dropping_or_refusing_points(influx_store: InfluxTimeseriesStore) -> None:
    store = influx_store
    store.ping()
    store.configure_retention(ALL_FACTORIES, Retention(raw=2 * DAY, minute=30 * DAY))
    old = to_ns(hour_ago(5))
    # InfluxDB itself drops points beyond the retention policy; the adapter counts them, it does not fail.
    assert store._write_lines(f"device_metrics,device_id=d,factory_id=x,property_name=p value=1.0 {old}") == 1
    with pytest.raises(TimeseriesRejected, match="rejected a write"):
        store._write_lines("device_metrics,factory_id=x value=not-a-number 1")


def test_concurrent_writers_and_readers(store: TimeseriesStore) -> None:
    start = hour_ago(1)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for chunk in range(5):
                points = [Point(f"w{n}", "p", start + timedelta(seconds=chunk * 100 + i), float(i)) for i in range(100)]
                store.write(A, points)
                store.query(A, [f"w{n}"], ["p"], start, start + HOUR, aggregate="count", interval=MINUTE)
                store.latest(A, [f"w{n}"])
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    counts = store.query(A, [f"w{n}" for n in range(6)], ["p"], start, start + HOUR, aggregate="count", interval=HOUR)
    assert {k.device_id: v[0].value for k, v in counts.series.items()} == {f"w{n}": 500.0 for n in range(6)}
