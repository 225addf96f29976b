"""How the dataset export reads the store: queries run one thread ahead of the Parquet writer
(errors and early stops cross back), and the collector runs once per slice instead of every 700
objects. The export's output is tested end to end in tests/test_analytics.py; its speed is
measured in bench/analytics_export.py (docs/benchmarks.md)."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from factoryops.analytics.datasets import ExportRequest, _ahead, _collect_between_slices, export
from factoryops.ports.timeseries.base import FactoryScope, Point
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore

pytestmark = pytest.mark.nodb


def test_items_arrive_in_order_and_the_producer_runs_ahead() -> None:
    produced: list[int] = []

    def numbers() -> Iterator[int]:
        for n in range(10):
            produced.append(n)
            yield n

    seen = []
    for n in _ahead(numbers(), depth=2):
        if n == 0:
            deadline = time.monotonic() + 5
            while len(produced) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(produced) == 3  # one handed over, two waiting: never more than depth ahead
        seen.append(n)
    assert seen == list(range(10))


def test_an_error_of_the_producer_reaches_the_caller_after_what_came_before() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionError("InfluxDB went away")

    seen = []
    with pytest.raises(ConnectionError, match="went away"):
        for n in _ahead(failing(), depth=2):
            seen.append(n)
    assert seen == [1, 2]


def test_a_caller_that_stops_early_stops_the_producer() -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    before = {t.name for t in threading.enumerate()}
    for n in _ahead(endless(), depth=2):
        if n == 3:
            break
    time.sleep(0.5)
    assert len(produced) <= 7, "the producer kept going after the caller left"
    assert "export-prefetch" not in {t.name for t in threading.enumerate()} - before


def test_the_collector_is_paused_and_restored_around_an_export() -> None:
    assert gc.isenabled()
    with _collect_between_slices() as collect:
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0  # the process's earlier heap is left out of the walks
        a: list[object] = []
        a.append(a)  # a reference cycle, as an HTTP response with its body makes
        del a
        assert collect() >= 1
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        with _collect_between_slices():
            pass
        assert not gc.isenabled()  # a collector that was off stays off
    finally:
        gc.enable()


def test_what_another_part_of_the_process_froze_stays_frozen() -> None:
    """Under `factoryops up` the garbage-collection steward freezes the heap every 2 s: an export
    must not unfreeze it when it ends."""
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with _collect_between_slices() as collect:
            collect()
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()


def test_an_export_with_many_slices_has_every_value_once(tmp_path: Path) -> None:
    """Raw slices sized on the fly, read ahead: every point once, in slice order."""
    store = EmbeddedTimeseriesStore(tmp_path / "ts")
    scope = FactoryScope("factory-1")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    points = [
        Point(device, prop, start + timedelta(minutes=i), float(i))
        for device in ("press-1", "press-2")
        for prop in ("power_kw", "temp_c")
        for i in range(3 * 24 * 60)  # three days of minutes
    ]
    assert store.write(scope, points) == len(points)
    request = ExportRequest(
        device_ids=("press-1", "press-2"),
        properties=("power_kw", "temp_c"),
        start=start,
        end=start + timedelta(days=3),
        resolution="raw",
        aggregate="mean",
    )
    try:
        result = export(store, scope, request, tmp_path, lambda percent, message: None)
    finally:
        store.close()
    table = pq.read_table(result.path)
    assert result.row_count == table.num_rows == len(points)
    keys = set(zip(table["ts"].to_pylist(), table["device_id"].to_pylist(), table["property"].to_pylist(), strict=True))
    assert len(keys) == len(points)
    assert gc.isenabled() and gc.get_freeze_count() == 0
