"""Keeps the telemetry process's long-lived objects out of Python's full garbage collections.

The rule engine holds a state per rule and device (41 rules on 10,000 devices: 410,000 states,
with their dictionaries and windows). Python's full collection walks every tracked object, and it
runs on whichever thread happens to allocate: measured in ``bench/rule_eval.py --engine`` with
10,000 devices, 15 full collections took 5.3 s of 12.6 s of CPU, the longest **820 ms**, and
during each one no message is evaluated. That was the p99 of publish-to-alert.

The steward freezes what has lived a while (``gc.freeze``: the objects move to a generation the
collector never walks; freeing by reference count is unchanged) every ``freeze_seconds``, right
after a young collection (``gc.collect(1)``), so that cyclic garbage of the young generations
is collected before, not frozen. A full collection then walks only what was promoted since the
last freeze. What becomes cyclic garbage after it was frozen is kept until the next full
collection of everything, which the steward runs every ``full_collect_hours`` (``gc.unfreeze``,
``gc.collect``), logging how long it took.

Every collection's pause, by generation, is the histogram ``factoryops_gc_pause_seconds``; the
frozen objects are the gauge ``factoryops_gc_frozen_objects``.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

GC_PAUSE = Histogram(
    "factoryops_gc_pause_seconds",
    "Pauses of Python's garbage collector in this process (no Python code runs meanwhile), by generation "
    "(2: a full collection).",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
GC_FROZEN = Gauge(
    "factoryops_gc_frozen_objects", "Objects the garbage-collection steward moved out of the collector's walks."
)
GC_FULL = Counter(
    "factoryops_gc_full_collections_total",
    "Collections of everything, frozen objects included, run by the garbage-collection steward.",
)

_pause_started = 0.0


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    global _pause_started
    if phase == "start":
        _pause_started = time.perf_counter()
    else:
        GC_PAUSE.labels(str(info.get("generation", 0))).observe(time.perf_counter() - _pause_started)


def watch_pauses() -> None:
    """Records every collection's pause in ``factoryops_gc_pause_seconds`` (once per process)."""
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)


class GcSteward:
    """Freezes the long-lived heap every ``freeze_seconds`` and collects all of it every
    ``full_collect_hours`` (0: never) on a thread of its own."""

    def __init__(
        self,
        freeze_seconds: float,
        full_collect_hours: float = 6.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if freeze_seconds <= 0:
            raise ValueError("freeze_seconds must be positive")
        self.freeze_seconds = freeze_seconds
        self.full_every = full_collect_hours * 3600.0
        self.clock = clock
        self._next_full = clock() + self.full_every if self.full_every > 0 else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.freezes = 0
        self.full_collections = 0
        self.last_full_seconds: float | None = None

    def step(self) -> None:
        """One round: a full collection when it is due, then a young collection and a freeze."""
        if self._next_full is not None and self.clock() >= self._next_full:
            gc.unfreeze()
            began = time.perf_counter()
            found = gc.collect()
            self.last_full_seconds = time.perf_counter() - began
            self.full_collections += 1
            GC_FULL.inc()
            self._next_full = self.clock() + self.full_every
            log.info(
                "full garbage collection: %d unreachable objects freed in %.0f ms",
                found,
                self.last_full_seconds * 1000,
            )
        gc.collect(1)
        gc.freeze()
        self.freezes += 1
        GC_FROZEN.set(gc.get_freeze_count())

    def _run(self) -> None:
        while not self._stop.wait(self.freeze_seconds):
            try:
                self.step()
            except Exception:  # never let the steward take the process down
                log.exception("garbage-collection steward failed a round")

    def start(self) -> None:
        watch_pauses()
        self.step()  # what start-up built (modules, settings, pools) is frozen at once
        self._thread = threading.Thread(target=self._run, name="gc-steward", daemon=True)
        self._thread.start()
        log.info(
            "garbage-collection steward: freezing the long-lived heap every %.0f s%s",
            self.freeze_seconds,
            f", collecting all of it every {self.full_every / 3600:g} h" if self.full_every > 0 else "",
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
