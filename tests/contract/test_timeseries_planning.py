"""The pure parts of the time-series port: query planning, InfluxQL quoting and line-protocol escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from factoryops.ports.timeseries.base import (
    DEFAULT_RETENTION,
    FactoryScope,
    QueryPlan,
    Resolution,
    Retention,
    from_ns,
    plan_query,
    to_ns,
    window_count,
)
from factoryops.ports.timeseries.influx import (
    escape_tag,
    parse_go_duration,
    quote_ident,
    quote_literal,
    series_condition,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def plan(
    span: timedelta, max_points: int, retention: Retention = DEFAULT_RETENTION, ago: timedelta = timedelta(0)
) -> QueryPlan:
    end = NOW - ago
    return plan_query(end - span, end, "mean", None, max_points, retention, NOW)


@pytest.mark.parametrize(
    ("span", "max_points", "interval", "resolution"),
    [
        (timedelta(hours=1), 1000, timedelta(seconds=5), Resolution.RAW),
        (timedelta(hours=24), 1000, timedelta(minutes=2), Resolution.MINUTE),
        (timedelta(days=7), 1000, timedelta(minutes=15), Resolution.MINUTE),
        (timedelta(days=7), 100, timedelta(hours=2), Resolution.HOUR),
        (timedelta(days=365), 1000, timedelta(hours=12), Resolution.HOUR),
        (timedelta(days=365), 100, timedelta(days=4), Resolution.HOUR),
        (timedelta(days=3650), 500, timedelta(days=8), Resolution.HOUR),
    ],
)
def test_a_point_budget_picks_a_round_window_and_the_coarsest_rollup(
    span: timedelta, max_points: int, interval: timedelta, resolution: Resolution
) -> None:
    chosen = plan(span, max_points)
    assert (chosen.interval, chosen.resolution) == (interval, resolution)
    assert window_count(chosen.start_ns, chosen.end_ns, chosen.interval_ns) <= max_points


def test_expired_resolutions_are_skipped() -> None:
    short = Retention(raw=timedelta(days=7), minute=timedelta(days=30), hour=None)
    assert plan(timedelta(hours=1), 1000, short, ago=timedelta(days=10)).resolution is Resolution.MINUTE
    late = plan(timedelta(hours=6), 1000, short, ago=timedelta(days=60))
    assert (late.resolution, late.interval) == (Resolution.HOUR, timedelta(hours=1))
    assert plan(timedelta(hours=1), 1000, short, ago=timedelta(days=1)).resolution is Resolution.RAW


def test_an_explicit_interval_reads_the_coarsest_rollup_that_divides_it() -> None:
    start = NOW - timedelta(days=1)
    for interval, resolution in (
        (timedelta(seconds=45), Resolution.RAW),
        (timedelta(seconds=90), Resolution.RAW),
        (timedelta(minutes=3), Resolution.MINUTE),
        (timedelta(minutes=90), Resolution.MINUTE),
        (timedelta(hours=3), Resolution.HOUR),
        (timedelta(days=1), Resolution.HOUR),
    ):
        assert plan_query(start, NOW, "sum", interval, None, DEFAULT_RETENTION, NOW).resolution is resolution


def test_aggregated_ranges_widen_to_whole_epoch_aligned_windows() -> None:
    start, end = datetime(2026, 1, 1, 10, 7, tzinfo=UTC), datetime(2026, 1, 1, 10, 23, tzinfo=UTC)
    chosen = plan_query(start, end, "max", timedelta(minutes=10), None, DEFAULT_RETENTION, NOW)
    assert (from_ns(chosen.start_ns), from_ns(chosen.end_ns)) == (
        datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
        datetime(2026, 1, 1, 10, 30, tzinfo=UTC),
    )
    raw = plan_query(start, end, None, None, None, DEFAULT_RETENTION, NOW)
    assert (raw.start_ns, raw.end_ns) == (to_ns(start), to_ns(end))


def test_timestamps_round_trip_through_nanoseconds() -> None:
    ts = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    assert to_ns(ts) == 1772600767891011000
    assert from_ns(to_ns(ts)) == ts
    assert to_ns(ts.astimezone(ZoneInfo("Europe/Berlin"))) == to_ns(ts)


def test_line_protocol_and_influxql_quoting() -> None:
    assert escape_tag("a b,c=d 'e' \"f\" ü") == "a\\ b\\,c\\=d\\ 'e'\\ \"f\"\\ ü"
    assert quote_literal("it's") == "'it\\'s'"
    assert quote_ident('we"ird') == '"we\\"ird"'
    where = series_condition(FactoryScope("o'brien"), 5, 10, ["x' OR '1'='1"], ["p"])
    assert where == (
        " WHERE \"factory_id\" = 'o\\'brien' AND (\"device_id\" = 'x\\' OR \\'1\\'=\\'1') "
        "AND (\"property_name\" = 'p') AND time >= 5 AND time < 10"
    )


def test_influx_durations_parse() -> None:
    assert parse_go_duration("720h0m0s") == timedelta(days=30)
    assert parse_go_duration("1h30m0s") == timedelta(minutes=90)
    assert parse_go_duration("0s") is None
