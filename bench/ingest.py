"""Ingest benchmark: devices -> Mosquitto -> telemetry service -> InfluxDB, with MariaDB as the registry.

Not a test: it prints its figures (recorded in docs/benchmarks.md). Everything runs on this
machine and is started by the script itself, never a shared service:

- its own Mosquitto on a free port (no persistence, unlimited queues: the broker drops nothing);
- its own influxd (tests/influx.py), all files in a temporary folder;
- a database ``factoryops_bench_<random>`` on the MariaDB at 127.0.0.1:3306 (dropped at the end),
  migrated through ``factoryops.wiring.build_platform``, with one factory and ``--devices`` devices
  inserted in bulk (their ten properties registered too, as in a plant that has been running;
  ``--cold-properties`` leaves discovery to the first message of each device);
- the telemetry service as its own process, ``python -m factoryops telemetry``, with a plain
  (not shared) subscription; with ``--telemetry-processes N`` (N > 1) N processes on one shared
  subscription, as the production topology runs them (``--shared`` for one process on a shared one);
- a load generator of ``--generators`` processes, each with ``--connections`` MQTT 5 connections
  publishing at **QoS 1 with at most ``--window`` unacknowledged messages per connection**
  (minimal socket clients, so that the generator costs little CPU). Each message holds 10 metrics
  (one of them ``seq``, unique per message) and a device timestamp; device ids are spread over all
  registered devices, so each device publishes every ``devices / rate`` seconds;
- a probe device publishing a unique value every ``--probe-interval`` seconds, whose arrival is
  polled on InfluxDB's ``/query``: that is the publish-to-queryable latency.

It measures the sustained rate actually stored, loss (``seq`` count and sum of every message the
broker acknowledged against what InfluxDB holds: must be 0), probe latency p50/p99, and the CPU
seconds and peak RSS of the telemetry process, plus the CPU of the broker, influxd and the load
generator. Ctrl-C or SIGTERM stops it and every process it started.

    .venv/bin/python bench/ingest.py --duration 20 --devices 1000 --rate 1000    # a short run
    .venv/bin/python bench/ingest.py                                             # the issue's target
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import os
import random
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    METRICS,
    RawMqtt,
    Service,
    bench_settings,
    cpu_seconds,
    create_factory,
    free_port,
    influxdb,
    machine_busy_seconds,
    mariadb_database,
    migrate,
    mosquitto,
    on_sigterm_interrupt,
    other_load,
    peak_rss_mb,
    percentile,
    profile_summary,
    rss_mb,
    service_env,
    start_profile,
    stop_profile,
    table,
    topic_bytes,
)

PROBE_DEVICE = "bench-probe"
PROBE_METRIC = "probe"
INFLUX_DB = "factoryops"
SEQ_BLOCK = 10**8  # seq = generator index * SEQ_BLOCK + n: unique, and sums stay exact in a float64


# ---------------------------------------------------------------------------------------------------- load


@dataclass
class GenResult:
    index: int
    sent: int = 0
    acked: int = 0
    no_subscribers: int = 0
    failed: int = 0
    unacked: int = 0
    seq_sum: int = 0
    bad: int = 0  # bad messages the broker acknowledged (never stored: rejected by the service)
    max_behind: int = 0
    publish_seconds: float = 0.0
    cpu_seconds: float = 0.0
    per_second: list[int] = field(default_factory=list)  # messages sent in each second of the run
    per_device: dict[str, int] = field(default_factory=dict)  # acknowledged messages per device
    error: str = ""


PAYLOAD = (
    b'{"seq":%d,"voltage_l1":%.1f,"voltage_l2":%.1f,"voltage_l3":%.1f,"current_l1":%.2f,'
    b'"current_l2":%.2f,"current_l3":%.2f,"power_kw":%.2f,"power_factor":%.3f,"energy_kwh":%.3f,"ts":%d}'
)


BAD_PAYLOADS = (
    b'{"seq":1,"power_kw":',  # invalid JSON
    b'{"power_kw":"high","state":"running"}',  # no numeric value
    b'{"power_kw":1e999}',  # not finite
)


def generator(
    index: int,
    port: int,
    factory_id: str,
    devices: list[str],
    rate: float,
    duration: float,
    connections: int,
    window: int,
    conn: Connection,
    bad_rate: float = 0.0,
) -> None:
    """One load process: ``rate`` msg/s over ``connections`` connections for ``duration`` s, then report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us; Ctrl-C must not cut the report
    result = GenResult(index=index)
    clients: list[RawMqtt] = []
    try:
        clients = [RawMqtt(port, f"bench-gen-{index}-{c}") for c in range(connections)]
        topics = [topic_bytes(factory_id, d) for d in devices]
        bad_every = round(1 / bad_rate) if bad_rate > 0 else 0
        ghost = topic_bytes(factory_id, f"not-registered-{index}")
        n_dev = len(devices)
        order = list(range(n_dev))
        random.Random(index).shuffle(order)
        energy = [random.Random(d).uniform(0, 1000) for d in range(n_dev)]
        acked_per_device = [0] * n_dev
        device_of: dict[int, int] = {}  # message number -> device index, while in flight
        sel = selectors.DefaultSelector()
        for c in clients:
            sel.register(c.sock, selectors.EVENT_READ, c)

        def take_acks(timeout: float) -> None:
            for key, _ in sel.select(timeout):
                client: RawMqtt = key.data
                for tag, reason in client.read():
                    d = device_of.pop(tag)
                    if d < 0:
                        result.bad += reason < 0x80
                        continue
                    if reason >= 0x80:
                        result.failed += 1
                    elif reason == 0x10:  # "no matching subscribers": the message went nowhere
                        result.no_subscribers += 1
                    else:
                        result.acked += 1
                        result.seq_sum += index * SEQ_BLOCK + tag
                        acked_per_device[d] += 1

        conn.send("ready")
        start_at = float(conn.recv())
        while time.time() < start_at:
            time.sleep(0.0005)
        t0 = time.monotonic()
        per_second = [0] * (int(duration) + 2)
        sent = 0
        cursor = 0
        now = t0
        while True:
            now = time.monotonic()
            elapsed = now - t0
            if elapsed >= duration:
                break
            due = int(elapsed * rate) - sent
            before = sent
            for c_i, client in enumerate(clients):
                if due <= 0:
                    break
                k = min(-(-due // (len(clients) - c_i)), window - len(client.inflight))
                if k <= 0:
                    continue
                wall_ms = int(time.time() * 1000)
                for _ in range(k):
                    sent += 1
                    if bad_every and sent % bad_every == 0:  # every n-th message is bad, of 4 kinds
                        kind = (sent // bad_every) % 4
                        device_of[sent] = -1
                        topic = ghost if kind == 3 else topics[order[cursor]]
                        client.publish(
                            topic, PAYLOAD % ((0,) * 10 + (wall_ms,)) if kind == 3 else BAD_PAYLOADS[kind], sent
                        )
                        continue
                    d = order[cursor]
                    cursor = cursor + 1 if cursor + 1 < n_dev else 0
                    energy[d] += 0.01
                    s = sent % 200
                    payload = PAYLOAD % (
                        index * SEQ_BLOCK + sent,
                        229.0 + s / 100,
                        230.0 - s / 100,
                        231.0 + s / 200,
                        12.0 + s / 50,
                        11.0 + s / 40,
                        13.0 - s / 60,
                        40.0 + s / 10,
                        0.9 + s / 4000,
                        energy[d],
                        wall_ms,
                    )
                    device_of[sent] = d
                    client.publish(topics[d], payload, sent)
                client.flush()
                due -= k
            per_second[int(elapsed)] += sent - before
            result.max_behind = max(result.max_behind, int(elapsed * rate) - sent)
            take_acks(0.002)
        result.publish_seconds = now - t0
        result.sent = sent
        deadline = time.monotonic() + 60
        while any(c.inflight for c in clients) and time.monotonic() < deadline:
            take_acks(0.1)
        result.unacked = sum(len(c.inflight) for c in clients)
        result.per_second = per_second
        result.per_device = {devices[d]: n for d, n in enumerate(acked_per_device) if n}
    except Exception as exc:  # reported to the parent, which prints it
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        for client in clients:
            client.close()
        result.cpu_seconds = time.process_time()
        conn.send(result)


# ---------------------------------------------------------------------------------------------------- InfluxDB


class Influx:
    """Plain InfluxQL over HTTP: what the benchmark reads back (it never writes)."""

    def __init__(self, url: str, factory_id: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=httpx.Timeout(600.0, connect=5.0))
        self.where = f"\"factory_id\" = '{factory_id}'"  # a bench factory id is a UUID: nothing to quote

    def series(self, statement: str) -> list[dict[str, Any]]:
        response = self.http.post("/query", data={"q": statement, "db": INFLUX_DB, "epoch": "ns"})
        response.raise_for_status()
        body = response.json()
        out: list[dict[str, Any]] = []
        for result in body.get("results", []):
            if "error" in result:
                raise RuntimeError(f"InfluxDB: {result['error']}: {statement}")
            out.extend(result.get("series", []))
        return out

    def probe_value(self) -> float | None:
        try:
            # No factory condition: the probe's device id is unique in this throwaway influxd, and a
            # factory_id filter would make influxd intersect all of the factory's series on every poll.
            rows = self.series(
                f'SELECT last("value") FROM "{INFLUX_DB}"."raw"."device_metrics" '
                f"WHERE \"device_id\" = '{PROBE_DEVICE}' AND \"property_name\" = '{PROBE_METRIC}' AND time > now() - 2h"
            )
        except (httpx.HTTPError, RuntimeError):
            return None  # the schema is made on the telemetry service's first write
        return float(rows[0]["values"][0][1]) if rows else None

    def count_sum_seq(self, since_ns: int) -> tuple[int, float]:
        rows = self.series(
            f'SELECT count("value"), sum("value") FROM "{INFLUX_DB}"."raw"."device_metrics" WHERE {self.where} '
            f"AND \"property_name\" = 'seq' AND time >= {since_ns}"
        )
        if not rows:
            return 0, 0.0
        _, count, total = rows[0]["values"][0]
        return int(count), float(total)

    def count_by_property(self, since_ns: int) -> dict[str, int]:
        rows = self.series(
            f'SELECT count("value") FROM "{INFLUX_DB}"."raw"."device_metrics" WHERE {self.where} '
            f'AND time >= {since_ns} GROUP BY "property_name"'
        )
        return {r["tags"]["property_name"]: int(r["values"][0][1]) for r in rows}

    def seq_per_second(self, since_ns: int) -> dict[int, int]:
        """Messages per second of ingestion time (the point's timestamp, stamped by the pipeline)."""
        rows = self.series(
            f'SELECT count("value") FROM "{INFLUX_DB}"."raw"."device_metrics" WHERE {self.where} '
            f"AND \"property_name\" = 'seq' AND time >= {since_ns} GROUP BY time(1s) fill(none)"
        )
        return {int(t // 1_000_000_000): int(c) for t, c in rows[0]["values"]} if rows else {}

    def seq_per_device(self, since_ns: int) -> dict[str, int]:
        rows = self.series(
            f'SELECT count("value") FROM "{INFLUX_DB}"."raw"."device_metrics" WHERE {self.where} '
            f'AND "property_name" = \'seq\' AND time >= {since_ns} GROUP BY "device_id"'
        )
        return {r["tags"]["device_id"]: int(r["values"][0][1]) for r in rows}

    def close(self) -> None:
        self.http.close()


# ---------------------------------------------------------------------------------------------------- probe


class Probe:
    """Publishes ``{"probe": n}`` every ``interval`` s and polls InfluxDB until each n is queryable.

    The telemetry path keeps one device's messages in order (one subscription, one pipeline thread,
    one writer thread), so once n is the stored last value, every probe up to n is queryable.
    """

    def __init__(self, port: int, factory_id: str, influx: Influx, interval: float, poll: float) -> None:
        self.client = RawMqtt(port, "bench-probe")
        self.topic = topic_bytes(factory_id, PROBE_DEVICE)
        self.influx = influx
        self.interval = interval
        self.poll = poll
        self.published: dict[int, float] = {}  # n -> monotonic time of the publish
        self.latency: dict[int, float] = {}  # n -> seconds until queryable
        self.polls = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._publish_loop, name="probe-publish", daemon=True),
            threading.Thread(target=self._poll_loop, name="probe-poll", daemon=True),
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self.client.close()

    def _publish_loop(self) -> None:
        n = 0
        next_at = time.monotonic()
        self.client.sock.setblocking(False)
        while not self._stop.is_set():
            n += 1
            self.client.publish(self.topic, b'{"probe":%d}' % n, n)
            t = time.monotonic()
            self.client.sock.setblocking(True)
            self.client.flush()
            self.client.sock.setblocking(False)
            with self._lock:
                self.published[n] = t
            with contextlib.suppress(BlockingIOError):
                self.client.read()  # PUBACKs: only to keep the socket drained
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _poll_loop(self) -> None:
        resolved = 0
        while not self._stop.is_set():
            with self._lock:
                last_published = max(self.published, default=0)
                oldest = self.published.get(resolved + 1)
            if last_published <= resolved or oldest is None:
                self._stop.wait(self.poll)
                continue
            # Poll every ``poll`` s while the oldest waiting probe is young; when a backlog makes it old,
            # poll less often (5% of its age): the same relative precision, much less load on influxd.
            wait = max(self.poll, min(1.0, (time.monotonic() - oldest) / 20))
            if time.monotonic() - oldest < wait:
                self._stop.wait(wait - (time.monotonic() - oldest))
                continue
            self.polls += 1
            value = self.influx.probe_value()
            now = time.monotonic()
            if value is not None and value > resolved:
                top = int(value)
                with self._lock:
                    for n in range(resolved + 1, top + 1):
                        if n in self.published:
                            self.latency[n] = now - self.published[n]
                resolved = top
            self._stop.wait(max(self.poll, min(1.0, (time.monotonic() - oldest) / 20)))

    def wait_published_after(self, t: float, timeout: float, progress: Callable[[], None] | None = None) -> bool:
        """Wait until a probe published after monotonic time ``t`` is queryable."""
        deadline = time.monotonic() + timeout
        next_report = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self._lock:
                if any(self.published[n] > t for n in self.latency):
                    return True
            if progress and time.monotonic() >= next_report:
                progress()
                next_report += 10
            time.sleep(0.05)
        return False

    def lag(self) -> float:
        """Age of the oldest probe not yet queryable (0 when all are), or the last latency seen."""
        now = time.monotonic()
        with self._lock:
            pending = [t for n, t in self.published.items() if n not in self.latency]
            if pending:
                return now - min(pending)
            return self.latency[max(self.latency)] if self.latency else float("nan")

    def samples(self, start: float, end: float) -> list[float]:
        with self._lock:
            return [self.latency[n] for n, t in self.published.items() if start <= t < end and n in self.latency]


# ---------------------------------------------------------------------------------------------------- sampling


def find_child(name: str) -> int | None:
    for child in psutil.Process(os.getpid()).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name() == name:
                return int(child.pid)
    return None


@dataclass
class Sample:
    t: float
    cpu: dict[str, float]
    telemetry_rss: float
    machine: float


class Sampler(threading.Thread):
    """Every second: CPU seconds of each of our processes, the telemetry service's RSS, the machine's busy time."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(name="sampler", daemon=True)
        self.pids = pids
        self.samples: list[Sample] = []
        self._halt = threading.Event()

    def take(self) -> Sample:
        cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        services = [name for name in self.pids if name.startswith("telemetry-")]
        cpu["telemetry"] = sum(cpu[name] for name in services)  # every telemetry process together
        return Sample(
            t=time.monotonic(),
            cpu=cpu,
            telemetry_rss=sum(rss_mb(self.pids[name]) for name in services),
            machine=machine_busy_seconds(),
        )

    def run(self) -> None:
        while not self._halt.wait(1.0):
            self.samples.append(self.take())

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def at(self, t: float) -> Sample | None:
        """The last sample taken at or before ``t``."""
        best = None
        for s in self.samples:
            if s.t <= t:
                best = s
        return best


# ---------------------------------------------------------------------------------------------------- main


def fmt(value: float, digits: int = 0) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN -> "-"


def run(args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack) -> int:
    print(f"# bench/ingest.py  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  {' '.join(sys.argv[1:]) or '(defaults)'}")
    print(
        f"# machine: {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GB; "
        f"before start: {other_load()}"
    )
    print("# QoS 1 publishes, at most --window unacknowledged per connection; 10 metrics per message")
    t_setup = time.monotonic()
    db_url = stack.enter_context(mariadb_database())
    server = stack.enter_context(influxdb(tmp / "influxdb"))
    port = free_port()
    stack.enter_context(mosquitto(tmp / "mosquitto", port))
    settings = bench_settings(tmp / "data", db_url, server.url, port)
    platform = migrate(settings)
    stack.callback(platform.db.dispose)
    factory = create_factory(
        platform, args.devices, properties_for=0 if args.cold_properties else args.devices, extra_devices=[PROBE_DEVICE]
    )
    device_ids = factory.device_ids[: args.devices]
    print(
        f"setup: MariaDB database, influxd {server.url}, mosquitto :{port}, factory {factory.id} with "
        f"{args.devices:,} devices{' (properties not registered yet)' if args.cold_properties else ''} "
        f"in {time.monotonic() - t_setup:.1f} s"
    )

    # One process: a plain subscription (docs/telemetry.md). Several: one shared subscription.
    shared = {"FACTORYOPS_MQTT__SHARED_GROUP": "factoryops"} if args.telemetry_processes > 1 or args.shared else {}
    services: list[Service] = []
    for i in range(1, args.telemetry_processes + 1):
        env = service_env(
            settings,
            FACTORYOPS_TELEMETRY_NAME=f"bench-{i}",
            FACTORYOPS_LOG_LEVEL=args.log_level,
            FACTORYOPS_GC_FREEZE_SECONDS=str(args.gc_freeze_seconds),
            **shared,
        )
        service = Service("telemetry", env, tmp / f"telemetry-{i}")
        stack.callback(service.stop)
        services.append(service)
    for service in services:
        service.wait_for("confirmed by the broker", 60)
    telemetry = services[0]
    influx = Influx(server.url, factory.id)
    stack.callback(influx.close)
    probe = Probe(port, factory.id, influx, args.probe_interval, args.probe_poll)
    probe.start()
    stack.callback(probe.stop)
    if not probe.wait_published_after(0.0, 60):
        raise RuntimeError(f"the first probe never became queryable; telemetry log:\n{telemetry.tail()}")
    print(
        f"{len(services)} telemetry process(es) (pids {', '.join(str(s.pid) for s in services)}"
        f"{', shared subscription' if shared else ''}) store probes; first one in {probe.lag():.2f} s"
    )

    pids = {f"telemetry-{i}": s.pid for i, s in enumerate(services, 1)}
    for name in ("mosquitto", "influxd"):
        pid = find_child(name)
        if pid is not None:
            pids[name] = pid
    pids["bench"] = os.getpid()

    ctx = mp.get_context("spawn")
    gens: list[tuple[Any, Connection]] = []
    for i in range(args.generators):
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=generator,
            args=(
                i + 1,
                port,
                factory.id,
                device_ids[i :: args.generators],
                args.rate / args.generators,
                args.duration,
                args.connections,
                args.window,
                child,
                args.bad_rate,
            ),
            name=f"bench-gen-{i + 1}",
            daemon=True,
        )
        proc.start()
        gens.append((proc, parent))

    def stop_generators() -> None:
        for proc, _ in gens:
            if proc.is_alive():
                proc.terminate()
            proc.join(10)

    stack.callback(stop_generators)
    for proc, parent in gens:
        if not parent.poll(60) or parent.recv() != "ready":
            raise RuntimeError(f"load generator {proc.name} did not connect")
    gen_pids = {f"gen{i + 1}": int(proc.pid or 0) for i, (proc, _) in enumerate(gens)}
    sampler = Sampler({**pids, **gen_pids})
    start_at = time.time() + 0.5
    t_start = time.monotonic() + (start_at - time.time())
    start_ns = int(start_at * 1e9)
    for _, parent in gens:
        parent.send(start_at)
    time.sleep(max(0.0, t_start - time.monotonic()))
    first = sampler.take()
    sampler.start()
    stack.callback(sampler.stop)

    def progress(label: str) -> None:
        s = sampler.samples[-1] if sampler.samples else first
        prev = sampler.at(s.t - 10) or first
        span = max(s.t - prev.t, 1e-9)
        cpu = (s.cpu["telemetry"] - prev.cpu["telemetry"]) / span * 100
        print(
            f"  {label} t={s.t - t_start:6.0f} s  probe lag {probe.lag():6.2f} s  telemetry CPU {cpu:4.0f}%  "
            f"RSS {s.telemetry_rss:5.0f} MB",
            flush=True,
        )

    print(
        f"load: {args.rate:,.0f} msg/s for {args.duration:.0f} s from {args.generators} processes x "
        f"{args.connections} connections (window {args.window})"
    )
    profiler: list[subprocess.Popen[bytes] | None] = []
    if args.profile:
        skip = min(args.profile_skip, args.duration - 1)
        timer = threading.Timer(
            max(0.0, t_start + skip - time.monotonic()),
            lambda: profiler.append(start_profile(telemetry.pid, args.duration - skip, args.profile)),
        )
        timer.start()
        stack.callback(timer.cancel)
    results: list[GenResult] = []
    next_report = time.monotonic() + 10
    pending = list(gens)
    while pending:
        for item in list(pending):
            if item[1].poll(0.1):
                results.append(item[1].recv())
                pending.remove(item)
        if time.monotonic() >= next_report:
            progress("load ")
            next_report += 10
    t_load_end = time.monotonic()
    for r in results:
        if r.error:
            print(f"load generator {r.index} failed: {r.error}")
    drained = probe.wait_published_after(t_load_end, args.drain_timeout, lambda: progress("drain"))
    t_drained = time.monotonic()
    last = sampler.take()
    telemetry_peak = sum(peak_rss_mb(s.pid) for s in services)
    sampler.stop()
    probe.stop()

    # ---------------------------------------------------------------- what InfluxDB holds
    since_ns = start_ns - 5 * 1_000_000_000
    expected = sum(r.acked for r in results)
    expected_sum = sum(r.seq_sum for r in results)
    stored, stored_sum = influx.count_sum_seq(since_ns)
    # With several telemetry processes the probe drains through one of them while another may still
    # hold a backlog: wait until the stored count stops growing (or is complete) before judging.
    settled_at = time.monotonic()
    while stored < expected and time.monotonic() - settled_at < 20:
        time.sleep(1)
        now_stored, now_sum = influx.count_sum_seq(since_ns)
        if now_stored != stored:
            settled_at = t_drained = time.monotonic()  # still draining: the run ends later
        stored, stored_sum = now_stored, now_sum
    by_property = influx.count_by_property(since_ns)
    points = sum(v for k, v in by_property.items() if k in METRICS)
    lost = duplicated = 0
    if stored != expected or stored_sum != expected_sum:
        want: dict[str, int] = {}
        for r in results:
            for d, n in r.per_device.items():
                want[d] = want.get(d, 0) + n
        have = influx.seq_per_device(since_ns)
        lost = sum(max(0, n - have.get(d, 0)) for d, n in want.items())
        duplicated = sum(max(0, n - want.get(d, 0)) for d, n in have.items())
    per_second = influx.seq_per_second(since_ns)
    code = max(s.stop() for s in services)

    # ---------------------------------------------------------------- figures
    sent = sum(r.sent for r in results)
    publish_s = max((r.publish_seconds for r in results), default=float("nan"))
    wall = t_drained - t_start
    during = probe.samples(t_start, t_load_end)
    everything = probe.samples(t_start, t_drained)
    span = last.t - first.t

    def cpu(name: str) -> float:
        return last.cpu.get(name, float("nan")) - first.cpu.get(name, float("nan"))

    gen_cpu = sum(r.cpu_seconds for r in results)
    ours = sum(cpu(n) for n in pids) + gen_cpu
    machine = last.machine - first.machine
    rows: list[tuple[str, str]] = [
        ("target", f"{args.rate:,.0f} msg/s x 10 metrics for {args.duration:.0f} s, {args.devices:,} devices"),
        (
            "published, acknowledged by the broker",
            f"{expected:,} of {sent:,} in {publish_s:.1f} s "
            f"= {expected / publish_s:,.0f} msg/s (max behind schedule {max(r.max_behind for r in results):,})",
        ),
        (
            "broker answers: no subscriber / failed / unacked",
            f"{sum(r.no_subscribers for r in results)} / {sum(r.failed for r in results)} / "
            f"{sum(r.unacked for r in results)}",
        ),
        ("stored (queryable in InfluxDB)", f"{stored:,} messages, {points:,} points"),
        *(
            [("bad messages (rejected, not stored)", f"{sum(r.bad for r in results):,} acknowledged by the broker")]
            if args.bad_rate
            else []
        ),
        ("drained", f"{'yes' if drained else 'NO'}, {t_drained - t_load_end:.1f} s after the load ended"),
        ("sustained, publish start to all queryable", f"{stored / wall:,.0f} msg/s = {points / wall:,.0f} points/s"),
    ]
    if t_drained - t_load_end > 5:
        backlog = sum(n for sec, n in per_second.items() if sec >= int(start_at + (t_load_end - t_start)))
        rows.append(
            (
                "ingest rate while draining the backlog",
                f"{backlog / (t_drained - t_load_end):,.0f} msg/s (the service's capacity here)",
            )
        )
    if drained:
        loss = f"{lost:,}" if lost or duplicated else f"{expected - stored:,}"
        if stored_sum != expected_sum:
            loss += f" (duplicated {duplicated:,}; the seq sums differ)"
    else:
        loss = f"not judged: {expected - stored:,} acknowledged messages were still queued at the drain timeout"
    rows += [
        ("loss (acknowledged, not stored)", loss),
        (
            "latency publish -> queryable, during load",
            f"p50 {percentile(during, 50):.3f} s  p99 {percentile(during, 99):.3f} s  "
            f"max {max(during, default=float('nan')):.3f} s  ({len(during)} probes)",
        ),
        (
            "latency publish -> queryable, whole run",
            f"p50 {percentile(everything, 50):.3f} s  p99 {percentile(everything, 99):.3f} s  "
            f"max {max(everything, default=float('nan')):.3f} s  ({len(everything)} probes, {probe.polls:,} polls)",
        ),
        (
            f"telemetry CPU ({len(services)} process{'es' if len(services) > 1 else ''})",
            f"{cpu('telemetry'):.1f} s = {cpu('telemetry') / span * 100:.0f}% of one core",
        ),
        ("telemetry peak RSS (sum)", f"{telemetry_peak:.0f} MB (exit code {code})"),
        ("mosquitto CPU", f"{cpu('mosquitto'):.1f} s = {cpu('mosquitto') / span * 100:.0f}%"),
        ("influxd CPU", f"{cpu('influxd'):.1f} s = {cpu('influxd') / span * 100:.0f}%"),
        (
            "load generator CPU",
            f"{gen_cpu:.1f} s in {len(results)} processes = {gen_cpu / span * 100:.0f}% "
            f"(+ probe/sampler {cpu('bench'):.1f} s)",
        ),
        (
            "machine CPU, all processes",
            f"{machine:.1f} s = {machine / span * 100:.0f}% of "
            f"{psutil.cpu_count() * 100}%; not ours (MariaDB, others) {machine - ours:.1f} s",
        ),
    ]
    print()
    print(table(rows, ("figure", "value")))

    # ---------------------------------------------------------------- timeline
    step = args.slice or max(10, int(math.ceil(args.duration / 10 / 10) * 10))
    step = max(step, int(math.ceil(wall / 30 / 10) * 10))  # at most ~30 rows, also after a long drain
    timeline = []
    t = 0.0
    gen_seconds = [
        sum(r.per_second[i] for r in results if i < len(r.per_second)) for i in range(int(args.duration) + 2)
    ]
    start_s = int(start_at)
    while t < wall:
        a, b = t, min(t + step, wall)
        sa, sb = sampler.at(t_start + a) or first, sampler.at(t_start + b) or last
        dt = max(sb.t - sa.t, 1e-9)
        lat = probe.samples(t_start + a, t_start + b)
        published = sum(gen_seconds[int(a) : int(b)]) / max(b - a, 1e-9)
        stored_rate = sum(per_second.get(s, 0) for s in range(start_s + int(a), start_s + int(b))) / max(b - a, 1e-9)
        timeline.append(
            (
                f"{a:4.0f}-{b:4.0f} s",
                fmt(published),
                fmt(stored_rate),
                fmt(percentile(lat, 50), 2),
                fmt(percentile(lat, 99), 2),
                fmt((sb.cpu["telemetry"] - sa.cpu["telemetry"]) / dt * 100),
                fmt(sb.telemetry_rss),
                fmt((sb.cpu.get("influxd", 0) - sa.cpu.get("influxd", 0)) / dt * 100),
                fmt((sb.cpu.get("mosquitto", 0) - sa.cpu.get("mosquitto", 0)) / dt * 100),
                fmt((sb.machine - sa.machine) / dt * 100),
            )
        )
        t += step
    print()
    print(
        table(
            timeline,
            (
                "window",
                "published/s",
                "ingested/s",
                "p50 s",
                "p99 s",
                "telem %",
                "RSS MB",
                "influxd %",
                "mqtt %",
                "machine %",
            ),
        )
    )
    print("(ingested/s: messages by their ingestion timestamp; CPU % of one core; machine % of all cores)")
    if args.latency_csv:
        with args.latency_csv.open("w") as out:
            out.write("published_s,latency_s\n")
            for n, t_pub in sorted(probe.published.items()):
                if n in probe.latency:
                    out.write(f"{t_pub - t_start:.3f},{probe.latency[n]:.3f}\n")
        print(f"probe latencies written to {args.latency_csv}")
    if profiler and profiler[0] is not None:
        stop_profile(profiler[0])
        print()
        print(
            f"py-spy profile of the telemetry service from {args.profile_skip:.0f} s into the load to its end "
            f"({args.profile}):"
        )
        print(profile_summary(args.profile))
    print(f"after the run: {other_load()}")
    if args.keep:
        print(f"logs kept in {tmp}")
    ok = drained and lost == duplicated == 0 and stored == expected and stored_sum == expected_sum
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000, help="registered devices the load is spread over")
    parser.add_argument("--rate", type=float, default=5000, help="messages per second offered (10 metrics each)")
    parser.add_argument("--duration", type=float, default=300, help="seconds of load")
    parser.add_argument("--generators", type=int, default=2, help="load generator processes")
    parser.add_argument("--connections", type=int, default=4, help="MQTT connections per generator process")
    parser.add_argument("--window", type=int, default=200, help="unacknowledged QoS 1 messages per connection")
    parser.add_argument("--bad-rate", type=float, default=0.0, help="share of bad messages (0.05: 5%%)")
    parser.add_argument("--cold-properties", action="store_true", help="devices discover their properties")
    parser.add_argument("--probe-interval", type=float, default=0.1, help="seconds between probe messages")
    parser.add_argument("--probe-poll", type=float, default=0.02, help="seconds between polls of InfluxDB")
    parser.add_argument("--drain-timeout", type=float, default=900, help="how long to wait for the backlog")
    parser.add_argument("--slice", type=int, default=0, help="seconds per timeline row (default: duration/10)")
    parser.add_argument("--log-level", default="INFO", help="the telemetry service's log level")
    parser.add_argument(
        "--telemetry-processes", type=int, default=1, help="telemetry processes on one shared subscription"
    )
    parser.add_argument("--shared", action="store_true", help="a shared subscription even with one process")
    parser.add_argument("--latency-csv", type=Path, help="write each probe's publish time and latency here")
    parser.add_argument("--profile", type=Path, help="py-spy the telemetry service during the load into this file")
    parser.add_argument("--profile-skip", type=float, default=0, help="start profiling this many seconds in")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    parser.add_argument(
        "--gc-freeze-seconds",
        type=float,
        default=2.0,
        help="the telemetry service's FACTORYOPS_GC_FREEZE_SECONDS (0: no garbage-collection steward)",
    )
    args = parser.parse_args()
    on_sigterm_interrupt()
    tmp = Path(tempfile.mkdtemp(prefix="factoryops-bench-ingest-"))
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
