"""Query benchmark: the portal's reads through the real HTTP API, against MariaDB and InfluxDB.

Not a test: it prints p50/p95 figures (recorded in docs/benchmarks.md). The script starts its
own services: an influxd (tests/influx.py), a database ``factoryops_bench_<random>`` on the
MariaDB at 127.0.0.1:3306 (dropped at the end), and ``python -m factoryops api`` as its own
process; for the live test also its own Mosquitto and ``python -m factoryops telemetry``.

The factory has ``--devices`` devices (bulk insert). ``--devices-with-data`` of them carry
``--days`` days of 1-minute data of 10 properties, written into InfluxDB through the adapter's
``write`` (the rollups are then built by the adapter's ``compact``). The issue's size is 1,000
devices x 7 days (~100M points), which takes this machine hours to load: pass smaller numbers
and say what you ran.

Timed, sequentially, each ``--runs`` times after a warm-up, with a kept-alive HTTP connection:

- device list page: ``GET /api/v1/devices?limit=50&q=...`` (several searches and deep pages);
- a 24-hour chart of 5 properties: ``/api/v1/telemetry/history`` with aggregate=mean, max_points=600;
- a whole-week chart of 5 properties, the same way;
- live value on screen: a device publishes a new value over MQTT; the time until
  ``GET /api/v1/devices/{id}/live`` (Server-Sent Events) delivers it.

Targets (issue 3, item 8): list < 200 ms, 24 h < 300 ms, week < 1 s, live < 1 s (p95).

    .venv/bin/python bench/query.py --devices-with-data 50 --days 2 --runs 20     # a short run
    .venv/bin/python bench/query.py --devices-with-data 100 --days 7
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import queue
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    HALLS,
    PASSWORD,
    BenchFactory,
    RawMqtt,
    Service,
    bench_settings,
    create_factory,
    device_name,
    free_port,
    influxdb,
    mariadb_database,
    migrate,
    mosquitto,
    on_sigterm_interrupt,
    other_load,
    percentile,
    profile_summary,
    service_env,
    start_profile,
    stop_profile,
    table,
    topic_bytes,
)
from factoryops.ports.timeseries.base import FactoryScope, Point  # noqa: E402
from factoryops.ports.timeseries.influx import InfluxTimeseriesStore  # noqa: E402

PROPERTIES = [
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
    "current_l1",
    "current_l2",
    "current_l3",
    "power_kw",
    "power_factor",
    "energy_kwh",
    "frequency_hz",
]
BASE = [230.0, 230.0, 230.0, 12.0, 12.0, 12.0, 40.0, 0.92, 0.0, 50.0]
AMPLITUDE = [3.0, 3.0, 3.0, 4.0, 4.0, 4.0, 15.0, 0.05, 0.0, 0.05]
TARGETS = {"device list": 0.200, "24 h chart": 0.300, "week chart": 1.000, "live value": 1.000}


# ---------------------------------------------------------------------------------------------------- data


def load_data(
    url: str, factory_id: str, devices: int, days: float, end: datetime, threads: int
) -> tuple[int, float, float]:
    """One-minute data for the first ``devices`` devices; returns (points, write seconds, rollup seconds)."""
    store = InfluxTimeseriesStore(url, "factoryops", timeout=600)
    scope = FactoryScope(factory_id)
    minutes = int(days * 24 * 60)
    start = end - timedelta(minutes=minutes)
    stamps = [start + timedelta(minutes=m) for m in range(minutes)]
    written = [0]
    lock = threading.Lock()
    t0 = time.monotonic()
    last_report = [t0]

    def one_device(d: int) -> None:
        device = device_name(d)
        phase = d * 0.37
        energy = 1000.0 * (d % 17)
        points: list[Point] = []
        count = 0
        for m, ts in enumerate(stamps):
            wave = math.sin(m / 240 + phase)
            energy += 0.5 + 0.3 * wave
            for p, name in enumerate(PROPERTIES):
                value = energy if name == "energy_kwh" else BASE[p] + AMPLITUDE[p] * wave + ((m * 7 + p) % 13) / 100
                points.append(Point(device, name, ts, value))
            if len(points) >= 5000:
                count += store.write(scope, points)
                points = []
        if points:
            count += store.write(scope, points)
        with lock:
            written[0] += count
            now = time.monotonic()
            if now - last_report[0] >= 15:
                last_report[0] = now
                rate = written[0] / (now - t0)
                total = devices * minutes * len(PROPERTIES)
                print(
                    f"  written {written[0]:,} of {total:,} points, {rate:,.0f} points/s, "
                    f"about {(total - written[0]) / rate / 60:.1f} min to go",
                    flush=True,
                )

    pool = ThreadPoolExecutor(threads)
    try:
        try:
            list(pool.map(one_device, range(devices)))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C: drop the devices not started yet
        write_s = time.monotonic() - t0
        t1 = time.monotonic()
        store.compact()  # the backfill is late data: build its 1-minute and 1-hour rollups
        return written[0], write_s, time.monotonic() - t1
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------------- timing


def timed(call: Callable[[], httpx.Response], runs: int, warm: int = 3) -> tuple[list[float], Any]:
    body: Any = None
    for _ in range(warm):
        response = call()
        response.raise_for_status()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        response = call()
        samples.append(time.perf_counter() - t)
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url} answered {response.status_code}: {response.text[:300]}")
        body = response.json()
    return samples, body


class LiveScreen:
    """A device page in live mode: one SSE stream; every value it delivers, with the time it arrived."""

    def __init__(self, client: httpx.Client, device_id: str) -> None:
        self.client = client
        self.device_id = device_id
        self.events: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.opened = threading.Event()
        self._stop = threading.Event()
        self.error = ""
        self._thread = threading.Thread(target=self._run, name="sse", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        try:
            with self.client.stream(
                "GET", f"/devices/{self.device_id}/live", params={"seconds": 3600}, timeout=httpx.Timeout(30.0)
            ) as response:
                response.raise_for_status()
                self.opened.set()
                event = ""
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "values":
                        now = time.perf_counter()
                        for value in json.loads(line[5:])["values"]:
                            self.events.put((now, value))
        except Exception as exc:  # shown by the caller
            self.error = f"{type(exc).__name__}: {exc}"
            self.opened.set()


def live_latency(api: httpx.Client, port: int, factory_id: str, device_id: str, runs: int) -> tuple[list[float], int]:
    """Publish unique values of ``power_kw`` as the device; time until the SSE stream shows each."""
    screen = LiveScreen(api, device_id)
    screen.start()
    screen.opened.wait(30)
    if screen.error:
        raise RuntimeError(f"the live stream failed: {screen.error}")
    mqtt = RawMqtt(port, f"{factory_id}/{device_id}")
    topic = topic_bytes(factory_id, device_id)
    samples: list[float] = []
    missed = 0
    try:
        time.sleep(1.0)
        while not screen.events.empty():
            screen.events.get()  # the current values, sent when the stream opens
        for i in range(runs + 2):
            value = 5000.0 + i + random.random() / 2
            mqtt.publish(topic, json.dumps({"power_kw": value}).encode(), i + 1)
            t0 = time.perf_counter()
            mqtt.flush()
            deadline = t0 + 10
            seen = False
            while time.perf_counter() < deadline:
                try:
                    at, item = screen.events.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    break
                if item.get("property") == "power_kw" and abs(float(item["value"]) - value) < 1e-9:
                    if i >= 2:  # the first two are the warm-up
                        samples.append(at - t0)
                    seen = True
                    break
            if not seen:
                missed += 1
            with contextlib.suppress(OSError):
                mqtt.sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    mqtt.read()
                mqtt.sock.setblocking(True)
            time.sleep(random.uniform(0.3, 0.8))  # not in step with the stream's 250 ms poll
    finally:
        mqtt.close()
        screen.stop()
    return samples, missed


# ---------------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack) -> int:
    print(f"# bench/query.py  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  {' '.join(sys.argv[1:]) or '(defaults)'}")
    print(
        f"# machine: {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GB; "
        f"before start: {other_load()}"
    )
    t_setup = time.monotonic()
    db_url = stack.enter_context(mariadb_database())
    server = stack.enter_context(influxdb(tmp / "influxdb"))
    mqtt_port = free_port()
    settings = bench_settings(tmp / "data", db_url, server.url, mqtt_port)
    platform = migrate(settings)
    stack.callback(platform.db.dispose)
    factory: BenchFactory = create_factory(platform, args.devices, properties_for=args.devices_with_data)
    print(
        f"setup: MariaDB database, influxd {server.url}, factory with {args.devices:,} devices "
        f"in {time.monotonic() - t_setup:.1f} s"
    )
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    total = int(args.devices_with_data * args.days * 24 * 60) * len(PROPERTIES)
    print(
        f"loading {args.devices_with_data:,} devices x {args.days:g} days x 1-minute x {len(PROPERTIES)} properties "
        f"= {total:,} points through InfluxTimeseriesStore.write ({args.write_threads} threads)"
    )
    points, write_s, rollup_s = load_data(
        server.url, factory.id, args.devices_with_data, args.days, end, args.write_threads
    )
    print(
        f"  {points:,} points in {write_s:.0f} s ({points / write_s:,.0f} points/s); "
        f"rollups built (compact) in {rollup_s:.0f} s"
    )

    http_port = free_port()
    env = service_env(
        settings,
        FACTORYOPS_HTTP__PORT=str(http_port),
        FACTORYOPS_HTTP__HOST="127.0.0.1",
        FACTORYOPS_AUTH__ACCESS_TOKEN_MINUTES="600",
        FACTORYOPS_ROOT_PASSWORD="Quartz-Lantern-2026",
        FACTORYOPS_LOG_LEVEL="WARNING",
    )
    api_service = Service("api", env, tmp / "api")
    stack.callback(api_service.stop)
    deadline = time.monotonic() + 60
    base = f"http://127.0.0.1:{http_port}"
    while True:
        try:
            if httpx.get(f"{base}/api/v1/meta/permissions", timeout=1).status_code < 500:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or api_service.proc.poll() is not None:
            raise RuntimeError(f"the API did not start:\n{api_service.tail()}")
        time.sleep(0.2)
    login = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"factory": factory.slug, "email": factory.admin_email, "password": PASSWORD},
        timeout=30,
    )
    login.raise_for_status()
    api = httpx.Client(
        base_url=f"{base}/api/v1",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        timeout=60,
    )
    stack.callback(api.close)
    print(f"API process (pid {api_service.pid}) on {base}; signed in as the factory's super admin")

    rng = random.Random(7)
    data_devices = [device_name(d) for d in range(args.devices_with_data)]
    profiler = start_profile(api_service.pid, 100_000, args.profile) if args.profile else None

    searches: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("first page, no search", lambda: {}),
        ("deep page, no search", lambda: {"offset": rng.randrange(0, max(1, args.devices - 50))}),
        ("q=<one device id>", lambda: {"q": device_name(rng.randrange(args.devices))}),
        ("q=<id prefix>", lambda: {"q": f"dev-{rng.randrange(args.devices // 100 or 1):03d}"}),
        ("q=<type>", lambda: {"q": rng.choice(["compressor", "press", "furnace", "pump"])}),
        ("q=<location>", lambda: {"q": rng.choice(HALLS).lower()}),
        ("q=<no match>", lambda: {"q": "no-such-thing"}),
    ]
    results: dict[str, list[float]] = {}
    rows = []
    for label, params in searches:

        def page(make: Callable[[], dict[str, Any]] = params) -> httpx.Response:
            return api.get("/devices", params={"limit": 50, **make()})

        samples, body = timed(page, args.runs)
        results.setdefault("device list", []).extend(samples)
        rows.append(("device list: " + label, len(samples), samples, f"total {body['total']:,}"))

    def chart(span: timedelta, aggregate: bool = True) -> Callable[[], httpx.Response]:
        def call() -> httpx.Response:
            device = rng.choice(data_devices)
            props = rng.sample(PROPERTIES, 5)
            chart_end = datetime.now(UTC)
            params: list[tuple[str, str | int | float | bool | None]] = [("device_id", device)]
            params += [("property", p) for p in props]
            params += [("start", (chart_end - span).isoformat()), ("end", chart_end.isoformat())]
            if aggregate:
                params += [("aggregate", "mean"), ("max_points", 600)]
            return api.get("/telemetry/history", params=params)

        return call

    week = timedelta(days=min(7.0, args.days))
    for label, call, key in (
        ("24 h chart, 5 properties, mean, max_points=600", chart(timedelta(hours=24)), "24 h chart"),
        (
            f"{week.days or week.total_seconds() / 86400:g}-day chart, 5 properties, mean, max_points=600",
            chart(week),
            "week chart",
        ),
        ("24 h, 5 properties, raw points (for comparison)", chart(timedelta(hours=24), aggregate=False), ""),
    ):
        samples, body = timed(call, args.runs)
        if key:
            results[key] = samples
        n_points = sum(len(s["points"]) for s in body["series"])
        rows.append(
            (
                label,
                len(samples),
                samples,
                f"{body['resolution']}, {body['interval_seconds'] or '-'} s windows, {n_points:,} points",
            )
        )
    stop_profile(profiler)

    # Live: the broker and the telemetry service, started now so they do not disturb the timings above.
    live_samples: list[float] = []
    missed = 0
    if args.live_runs:
        stack.enter_context(mosquitto(tmp / "mosquitto", mqtt_port))
        telemetry = Service("telemetry", service_env(settings, FACTORYOPS_TELEMETRY_NAME="bench-query"), tmp / "tel")
        stack.callback(telemetry.stop)
        telemetry.wait_for("subscribing to", 60)
        live_samples, missed = live_latency(api, mqtt_port, factory.id, rng.choice(data_devices), args.live_runs)
        results["live value"] = live_samples
        rows.append(
            (
                "live value on screen (publish -> SSE event)",
                len(live_samples),
                live_samples,
                f"{missed} not seen within 10 s" if missed else "SSE polls the store every 250 ms",
            )
        )

    print()
    print(
        table(
            [
                (
                    label,
                    n,
                    f"{percentile(s, 50) * 1000:.0f}",
                    f"{percentile(s, 95) * 1000:.0f}",
                    f"{max(s) * 1000:.0f}",
                    note,
                )
                for label, n, s, note in rows
            ],
            ("request", "runs", "p50 ms", "p95 ms", "max ms", "answer"),
        )
    )
    print()
    summary = []
    ok = True
    for key, target in TARGETS.items():
        samples = results.get(key, [])
        label = key if key != "week chart" or args.days >= 7 else f"week chart (data: {args.days:g} days only)"
        if not samples:
            summary.append((label, "-", f"< {target * 1000:.0f}", "skipped"))
            continue
        p95 = percentile(samples, 95)
        met = p95 < target
        ok = ok and met
        summary.append((label, f"{p95 * 1000:.0f}", f"< {target * 1000:.0f}", "met" if met else "MISSED"))
    print(table(summary, ("target (p95)", "measured ms", "target ms", "")))
    if args.profile:
        print()
        print(f"py-spy profile of the API process during the HTTP timings ({args.profile}):")
        print(profile_summary(args.profile))
    print(f"after the run: {other_load()}")
    if args.keep:
        print(f"logs kept in {tmp}")
    return 0 if ok and not missed else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000, help="registered devices in the factory")
    parser.add_argument("--devices-with-data", type=int, default=1000, help="devices that carry 1-minute data")
    parser.add_argument("--days", type=float, default=7, help="days of 1-minute data per device")
    parser.add_argument("--write-threads", type=int, default=2, help="threads writing the data into InfluxDB")
    parser.add_argument("--runs", type=int, default=50, help="timed requests per kind (after 3 warm-up ones)")
    parser.add_argument("--live-runs", type=int, default=30, help="live values timed (0: skip the live test)")
    parser.add_argument("--profile", type=Path, help="py-spy the API process during the HTTP timings into this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    if args.devices_with_data > args.devices:
        parser.error("--devices-with-data cannot exceed --devices")
    on_sigterm_interrupt()
    tmp = Path(tempfile.mkdtemp(prefix="factoryops-bench-query-"))
    try:
        with contextlib.ExitStack() as stack:
            return run(args, tmp, stack)
    except KeyboardInterrupt:
        print("\ninterrupted: every process started by the benchmark has been stopped", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
