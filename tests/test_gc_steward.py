"""The garbage-collection steward of the telemetry process: it freezes the long-lived heap (the
collector no longer walks it), collects everything when a full collection is due (freeing what
became garbage after it was frozen), and records every pause. Its effect on the rules' latency is
measured in bench/ (docs/benchmarks.md), not here."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from factoryops.core.gc_steward import GcSteward, watch_pauses

pytestmark = pytest.mark.nodb


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """The test process's heap is left as it was found: nothing stays frozen."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_round_moves_the_long_lived_heap_out_of_the_collectors_walks() -> None:
    state = {"press-1": [_Node() for _ in range(100)]}
    steward = GcSteward(freeze_seconds=10)
    assert gc.get_freeze_count() == 0
    steward.step()
    frozen = gc.get_freeze_count()
    assert frozen >= 100
    # The gauge is the count at the freeze; frozen objects that other threads of the test process
    # have freed since (by reference count) are gone from the count, and nothing froze more.
    gauge = REGISTRY.get_sample_value("factoryops_gc_frozen_objects")
    assert gauge is not None and frozen <= gauge < frozen + 10_000
    assert not any(o is state for o in gc.get_objects())  # a full collection walks it no more
    assert steward.freezes == 1 and steward.full_collections == 0


def test_young_cyclic_garbage_is_collected_before_the_freeze() -> None:
    gc.disable()  # no automatic collection gets there first
    try:
        dead = _cycle()
        assert dead() is not None
        GcSteward(freeze_seconds=10).step()
    finally:
        gc.enable()
    assert dead() is None, "a cycle that was already garbage was frozen instead of collected"


def test_the_full_collection_frees_what_died_after_it_was_frozen() -> None:
    clock = _Clock()
    steward = GcSteward(freeze_seconds=10, full_collect_hours=6, clock=clock)
    holder = [_Node()]
    holder[0].other = _Node()
    holder[0].other.other = holder[0]
    kept = weakref.ref(holder[0])
    steward.step()  # the cycle is alive: frozen
    holder.clear()  # now it is garbage, but frozen: no collection walks it
    gc.collect()
    assert kept() is not None
    clock.now += 5 * 3600
    steward.step()
    assert kept() is not None and steward.full_collections == 0  # not due yet
    full_before = REGISTRY.get_sample_value("factoryops_gc_full_collections_total") or 0.0
    clock.now += 3600
    steward.step()
    assert kept() is None
    assert steward.full_collections == 1 and steward.last_full_seconds is not None
    assert REGISTRY.get_sample_value("factoryops_gc_full_collections_total") == full_before + 1
    assert gc.get_freeze_count() > 0  # frozen again after it


def test_no_full_collection_when_it_is_switched_off() -> None:
    clock = _Clock()
    steward = GcSteward(freeze_seconds=10, full_collect_hours=0, clock=clock)
    holder = [_Node()]
    holder[0].other = holder[0]
    kept = weakref.ref(holder[0])
    steward.step()
    holder.clear()
    clock.now += 365 * 24 * 3600
    steward.step()
    assert kept() is not None and steward.full_collections == 0


def test_pauses_are_recorded_by_generation() -> None:
    watch_pauses()
    watch_pauses()  # once per process, however often it is asked
    assert sum(1 for cb in gc.callbacks if getattr(cb, "__name__", "") == "_on_collection") == 1
    before = REGISTRY.get_sample_value("factoryops_gc_pause_seconds_count", {"generation": "2"}) or 0.0
    gc.collect()
    assert REGISTRY.get_sample_value("factoryops_gc_pause_seconds_count", {"generation": "2"}) == before + 1
    assert (REGISTRY.get_sample_value("factoryops_gc_pause_seconds_sum", {"generation": "2"}) or 0.0) > 0


def test_a_freeze_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="freeze_seconds"):
        GcSteward(freeze_seconds=0)


def test_the_thread_starts_freezes_and_stops() -> None:
    steward = GcSteward(freeze_seconds=0.05)
    steward.start()
    try:
        assert gc.get_freeze_count() > 0  # start-up's heap at once
        deadline = time.monotonic() + 5
        while steward.freezes < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert steward.freezes >= 3
    finally:
        steward.stop()
    assert steward._thread is not None and not steward._thread.is_alive()
