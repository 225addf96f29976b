"""Benchmark of the time-series adapters: write throughput and the latency of a week-long chart.

Not a test: it prints figures (recorded in docs/timeseries.md). For each adapter it

1. writes ``--points`` live points (1,000 devices x 10 metrics, stamped with the current time) in
   batches of ``--batch`` (default 5,000, the InfluxDB adapter's batch size), and prints points/s;
2. writes one week of 1-minute data for ``--week-devices`` devices x 5 properties (back-filled, so
   the rollups are built by the late-point path: its time is printed as "rollup build");
3. times queries of one device's 5 properties over that week: raw, and a 1,000-point chart.

InfluxDB is a throwaway ``influxd`` started from tests/influx.py unless ``--influx-url`` is given.

    .venv/bin/python bench/timeseries_write.py                 # both adapters
    .venv/bin/python bench/timeseries_write.py --adapter embedded --points 500000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from factoryops.ports.timeseries.base import FactoryScope, Point, TimeseriesStore  # noqa: E402
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore  # noqa: E402
from factoryops.ports.timeseries.influx import InfluxTimeseriesStore  # noqa: E402

SCOPE = FactoryScope("bench-factory")
METRICS = [f"metric_{i}" for i in range(10)]
WEEK_PROPS = ["voltage_l1", "current_l1", "power_kw", "energy_kwh", "power_factor"]


@contextmanager
def open_store(kind: str, folder: Path, influx_url: str | None) -> Iterator[TimeseriesStore]:
    if kind == "embedded":
        store: TimeseriesStore = EmbeddedTimeseriesStore(folder / "embedded")
        try:
            yield store
        finally:
            store.close()
        return
    if influx_url:
        store = InfluxTimeseriesStore(influx_url, database=f"bench_{int(time.time())}", timeout=120)
        try:
            yield store
        finally:
            store.close()
        return
    from influx import influxdb

    with influxdb(folder / "influxdb") as server:
        store = InfluxTimeseriesStore(server.url, database="bench", timeout=120)
        try:
            yield store
        finally:
            store.close()


def live_batches(total: int, batch: int) -> Iterator[list[Point]]:
    """Batches of current points from 1,000 devices x 10 metrics, a new second every 10,000 points."""
    base = datetime.now(UTC).replace(microsecond=0)
    made = 0
    while made < total:
        points = []
        for i in range(made, min(made + batch, total)):
            second, rest = divmod(i, 10_000)
            points.append(
                Point(f"device-{rest // 10:04d}", METRICS[rest % 10], base + timedelta(seconds=second), i % 997)
            )
        made += len(points)
        yield points


def timed(label: str, runs: int, call: Callable[[], object]) -> None:
    call()  # warm (caches, compaction of late windows)
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(0.95 * len(samples)))]
    print(f"    {label:<52} p50 {statistics.median(samples) * 1000:8.1f} ms   p95 {p95 * 1000:8.1f} ms")


def bench(kind: str, args: argparse.Namespace, folder: Path) -> None:
    print(f"== {kind}")
    with open_store(kind, folder, args.influx_url) as store:
        store.ping()
        batches = list(live_batches(args.points, args.batch))
        t = time.perf_counter()
        for points in batches:
            store.write(SCOPE, points)
        elapsed = time.perf_counter() - t
        print(
            f"    live write: {args.points:,} points in batches of {args.batch:,}: {elapsed:.2f} s "
            f"= {args.points / elapsed:,.0f} points/s"
        )
        t = time.perf_counter()
        sum(1 for _ in live_batches(args.points, args.batch))
        print(f"    (building the Point objects alone: {args.points / (time.perf_counter() - t):,.0f} points/s)")

        end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
        start = end - timedelta(days=7)
        minutes = 7 * 24 * 60
        written = 0
        t = time.perf_counter()
        for d in range(args.week_devices):
            points = [
                Point(f"meter-{d:04d}", prop, start + timedelta(minutes=m), (m * (p + 3)) % 1000 / 10)
                for m in range(minutes)
                for p, prop in enumerate(WEEK_PROPS)
            ]
            for i in range(0, len(points), args.batch):
                written += store.write(SCOPE, points[i : i + args.batch])
        elapsed = time.perf_counter() - t
        print(
            f"    backfill: a week of 1-minute data, {args.week_devices} devices x 5 properties = {written:,} points: "
            f"{elapsed:.1f} s = {written / elapsed:,.0f} points/s"
        )
        t = time.perf_counter()
        store.compact()
        print(f"    rollup build for the backfill (compact): {time.perf_counter() - t:.2f} s")

        device = ["meter-0000"]
        runs = args.runs
        timed(
            "week, 5 properties, raw (50,400 points)", runs, lambda: store.query(SCOPE, device, WEEK_PROPS, start, end)
        )
        timed(
            "week, 5 properties, mean, max_points=1000 (15m from 1m)",
            runs,
            lambda: store.query(SCOPE, device, WEEK_PROPS, start, end, aggregate="mean", max_points=1000),
        )
        timed(
            "week, 5 properties, max, interval 1h (1h rollup)",
            runs,
            lambda: store.query(SCOPE, device, WEEK_PROPS, start, end, aggregate="max", interval=timedelta(hours=1)),
        )
        day = end - timedelta(days=1)
        timed("24 h, 5 properties, raw (7,200 points)", runs, lambda: store.query(SCOPE, device, WEEK_PROPS, day, end))
        timed(
            "24 h, 5 properties, mean, max_points=1000 (2m from 1m)",
            runs,
            lambda: store.query(SCOPE, device, WEEK_PROPS, day, end, aggregate="mean", max_points=1000),
        )
        timed(
            "latest of 10 devices x 10 metrics",
            runs,
            lambda: store.latest(SCOPE, [f"device-{i:04d}" for i in range(10)]),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", choices=["embedded", "influxdb", "both"], default="both")
    parser.add_argument("--points", type=int, default=1_000_000, help="live points to write")
    parser.add_argument("--batch", type=int, default=5000, help="points per write call")
    parser.add_argument("--week-devices", type=int, default=20, help="devices with a week of 1-minute data")
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each query")
    parser.add_argument("--influx-url", help="an existing InfluxDB 1.x (default: start a throwaway influxd)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="factoryops-bench-") as tmp:
        for kind in ("embedded", "influxdb") if args.adapter == "both" else (args.adapter,):
            bench(kind, args, Path(tmp))


if __name__ == "__main__":
    main()
