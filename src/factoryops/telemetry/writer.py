"""The batch writer between the ingest pipeline and the time-series store.

Points arrive with a callback that acknowledges their MQTT message. The writer groups them in
batches bounded in size and time, writes each factory's share, and calls the callbacks only
once the points are safe: written to the store, or - when the store keeps failing after a
short retry with backoff - appended to the durable spool. While anything waits in the spool,
new batches go to the spool too, so replay keeps the original order. A replay step runs
between batches whenever the store answers again. If the store stays unreachable longer
than ``health_after`` the writer reports it (log at ERROR, a gauge, and :attr:`health`) -
the system-health alert of spec 10.2 - and opens a ``timeseries_down`` system alert for each
factory whose points it spools, resolved once writes succeed again.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

from factoryops.notifications import system_alerts
from factoryops.ports.timeseries.base import (
    FactoryScope,
    Point,
    TimeseriesError,
    TimeseriesRejected,
    TimeseriesStore,
)
from factoryops.telemetry.spool import Spool

log = logging.getLogger(__name__)

WRITTEN = Counter("factoryops_points_written_total", "Points written to the time-series store.")
SPOOLED = Counter("factoryops_points_spooled_total", "Points put in the durable spool.")
REPLAYED = Counter("factoryops_points_replayed_total", "Points replayed from the spool into the store.")
REFUSED = Counter("factoryops_points_refused_total", "Points the time-series store refused as malformed.")
SPOOL_DEPTH = Gauge("factoryops_spool_batches", "Batches waiting in the durable spool.")
SPOOL_POINTS = Gauge("factoryops_spool_points", "Points waiting in the durable spool for the time-series store.")
STORE_DOWN = Gauge("factoryops_timeseries_down_seconds", "How long the time-series store has been failing.")
WRITE_SECONDS = Histogram(
    "factoryops_timeseries_write_seconds",
    "Latency of one batch write to the time-series store (a batch of fresh points or a replay step; "
    "failed attempts included).",
)


@dataclass
class _Item:
    factory_id: str
    points: list[Point]
    on_safe: Callable[[], None] | None


@dataclass
class WriterHealth:
    store_ok: bool = True
    down_since: float | None = None
    last_error: str = ""
    alerting: bool = False
    spool_depth: int = 0
    counters: dict[str, int] = field(default_factory=dict)


class BatchWriter:
    def __init__(
        self,
        store: TimeseriesStore,
        spool: Spool,
        max_points: int = 5000,
        max_delay: float = 0.1,
        retry_for: float = 2.0,
        health_after: float = 30.0,
        queue_items: int = 20_000,
        on_health_change: Callable[[WriterHealth], None] | None = None,
    ) -> None:
        self.store = store
        self.spool = spool
        self.max_points = max_points
        self.max_delay = max_delay
        self.retry_for = retry_for
        self.health_after = health_after
        self.health = WriterHealth(spool_depth=spool.depth)
        self.on_health_change = on_health_change
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=queue_items)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._next_probe = 0.0
        self._spooled_factories: set[str] = set()  # since the store went down
        self._confirmed: set[str] = set()  # factories written at least once by this process
        self.points_written = 0
        self._spool_gauges()

    # ------------------------------------------------------------------ API
    def submit(self, factory_id: str, points: list[Point], on_safe: Callable[[], None] | None = None) -> None:
        """Queue points; blocks when the queue is full (back-pressure towards the broker)."""
        self._queue.put(_Item(factory_id, points, on_safe))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="timeseries-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write (or spool) everything queued, then stop."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is safe (tests and shutdown)."""
        done = threading.Event()
        self.submit("", [], done.set)
        return done.wait(timeout)

    # ------------------------------------------------------------------ loop
    def _collect(self) -> tuple[list[_Item], bool]:
        items: list[_Item] = []
        count = 0
        stop = False
        try:
            first = self._queue.get(timeout=0.5)
        except queue.Empty:
            return items, False
        if first is None:
            return items, True
        items.append(first)
        count += len(first.points)
        deadline = time.monotonic() + self.max_delay
        while count < self.max_points:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            items.append(item)
            count += len(item.points)
        return items, stop

    def _run(self) -> None:
        while True:
            items, stop = self._collect()
            if items:
                self._handle(items)
            if self.spool.depth:
                self._replay()
            if stop or (self._stopping.is_set() and self._queue.empty()):
                return

    def _by_factory(self, items: list[_Item]) -> list[tuple[str, list[Point]]]:
        grouped: dict[str, list[Point]] = {}
        for item in items:
            if item.points:
                grouped.setdefault(item.factory_id, []).extend(item.points)
        return list(grouped.items())

    def _write(self, batches: list[tuple[str, list[Point]]]) -> None:
        with WRITE_SECONDS.time():
            for factory_id, points in batches:
                try:
                    self.store.write(FactoryScope(factory_id), points)
                    if factory_id not in self._confirmed:
                        # An alert a previous process left open ends with this process's first write.
                        self._confirmed.add(factory_id)
                        system_alerts.resolve(factory_id, "timeseries_down")
                except TimeseriesRejected as exc:
                    # The store refuses these points as malformed: retrying cannot help, and the
                    # pipeline must go on. They are counted and logged, not spooled.
                    REFUSED.inc(len(points))
                    log.error("time-series store refused %d points of factory %s: %s", len(points), factory_id, exc)

    def _handle(self, items: list[_Item]) -> None:
        batches = self._by_factory(items)
        if batches:
            if self.spool.depth or not self.health.store_ok:
                self._to_spool(batches)
            else:
                self._write_with_retry(batches)
        for item in items:
            if item.on_safe is not None:
                try:
                    item.on_safe()
                except Exception:  # an ack that fails must not stop the writer
                    log.exception("acknowledging a message failed")

    def _write_with_retry(self, batches: list[tuple[str, list[Point]]]) -> None:
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        while True:
            try:
                self._write(batches)
                written = sum(len(p) for _, p in batches)
                WRITTEN.inc(written)
                self.points_written += written
                self._store_up()
                return
            except TimeseriesError as exc:
                if time.monotonic() + delay > deadline or self._stopping.is_set():
                    self._store_down(str(exc))
                    self._to_spool(batches)
                    return
                time.sleep(delay + random.uniform(0, delay))
                delay = min(delay * 2, 1.0)

    def _to_spool(self, batches: list[tuple[str, list[Point]]]) -> None:
        self.spool.append(batches)
        SPOOLED.inc(sum(len(p) for _, p in batches))
        self._spool_gauges()
        self.health.spool_depth = self.spool.depth
        factories = {factory_id for factory_id, _ in batches}
        self._spooled_factories |= factories
        was_alerting = self.health.alerting
        self._check_health()
        if was_alerting:
            self._system_alert(factories)

    def _replay(self) -> None:
        now = time.monotonic()
        if not self.health.store_ok and now < self._next_probe:
            self._check_health()
            return
        while self.spool.depth:
            rows = self.spool.oldest(50)
            try:
                self._write([(factory_id, points) for _, factory_id, points in rows])
            except TimeseriesError as exc:
                self._store_down(str(exc))
                self._next_probe = time.monotonic() + 1.0 + random.uniform(0, 0.5)
                return
            self.spool.remove_through(rows[-1][0])
            REPLAYED.inc(sum(len(p) for _, _, p in rows))
            self._spool_gauges()
            self.health.spool_depth = self.spool.depth
            self._store_up()
            if not self._queue.empty() and self.spool.depth:
                return  # let fresh messages in between replay steps; they go to the spool meanwhile
        try:
            self.store.compact()  # late points: bring the rollups up to date
        except TimeseriesError as exc:
            log.warning("rollups not brought up to date after replay: %s", exc)
        log.info("spool replayed; the time-series store is up to date")

    def _spool_gauges(self) -> None:
        SPOOL_DEPTH.set(self.spool.depth)
        SPOOL_POINTS.set(self.spool.points)

    # ------------------------------------------------------------------ health
    def _store_down(self, error: str) -> None:
        if self.health.store_ok:
            log.warning("time-series store failing (%s); spooling to %s", error, self.spool.path)
            self.health.store_ok = False
            self.health.down_since = time.monotonic()
        self.health.last_error = error
        self._next_probe = time.monotonic() + 1.0
        self._check_health()

    def _store_up(self) -> None:
        if not self.health.store_ok:
            down = time.monotonic() - (self.health.down_since or time.monotonic())
            log.info("time-series store is back after %.0fs", down)
        was_alerting = self.health.alerting
        self.health.store_ok = True
        self.health.down_since = None
        self.health.alerting = False
        STORE_DOWN.set(0)
        if was_alerting:
            for factory_id in sorted(self._spooled_factories):
                system_alerts.resolve(factory_id, "timeseries_down")
        self._spooled_factories.clear()
        if was_alerting and self.on_health_change:
            self.on_health_change(self.health)

    def _check_health(self) -> None:
        if self.health.store_ok or self.health.down_since is None:
            return
        down = time.monotonic() - self.health.down_since
        STORE_DOWN.set(down)
        if down >= self.health_after and not self.health.alerting:
            self.health.alerting = True
            log.error(
                "SYSTEM HEALTH: the time-series store has been unreachable for %.0fs (%s); %d batches spooled",
                down,
                self.health.last_error,
                self.spool.depth,
            )
            self._system_alert(self._spooled_factories)
            if self.on_health_change:
                self.on_health_change(self.health)

    def _system_alert(self, factory_ids: set[str]) -> None:
        """One occurrence of ``timeseries_down`` per factory (memory only; the recorder writes it)."""
        if not self.health.alerting or self.health.down_since is None:
            return
        down = time.monotonic() - self.health.down_since
        message = (
            f"The time-series store has been unreachable for {down:.0f}s ({self.health.last_error[:300]}); "
            "this factory's telemetry is kept in the durable spool and written when the store is back."
        )
        for factory_id in sorted(factory_ids):
            system_alerts.report(factory_id, "timeseries_down", message)
