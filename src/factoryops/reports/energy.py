"""Energy per hour from what the time-series store keeps: pure logic, no I/O of its own.

Two ways, by what a device reports:

- **A cumulative counter** (``energy_kwh``): hourly windows give each hour's min and max; for a
  counter that only rises, the hour's last value is its max, so the hour's consumption is
  ``max(h) - last(previous hour with data)``. An hour whose min falls below the previous last
  value had a **reset** (a meter replaced, a firmware restart counting from zero): for that hour
  only, the raw readings are fetched and walked one by one, adding each rise and, after a drop,
  the new reading itself (the counter restarted from zero). Hours without data are **gaps**: the
  consumption across a gap is counted in the first hour after it (the counter kept counting).
- **Power** (``power_kw``): each hour's energy is its mean power times one hour, for hours with
  data; hours without data count as gaps and contribute nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from factoryops.ports.timeseries.base import WindowStats

HOUR = timedelta(hours=1)
RESET_TOLERANCE = 1e-6  # kWh: a counter "falling" by less than this is rounding, not a reset

RawFetch = Callable[[datetime, datetime], Sequence[tuple[datetime, float]]]


@dataclass
class DeviceEnergy:
    """Consumption of one device per hour (UTC hour start -> kWh), and what was noticed on the way."""

    hourly: dict[datetime, float] = field(default_factory=dict)
    method: str = "none"  # counter | power | none
    resets: int = 0
    gaps: int = 0
    hours_with_data: int = 0

    @property
    def total(self) -> float:
        return sum(self.hourly.values())


def _count_gaps(hours: Sequence[datetime]) -> int:
    """Stretches of at least one hour without data between the first and the last hour with data."""
    return sum(1 for a, b in itertools.pairwise(hours) if b - a > HOUR)


def from_counter(
    windows: Sequence[WindowStats],
    start: datetime,
    end: datetime,
    raw: RawFetch,
    before: WindowStats | None = None,
) -> DeviceEnergy:
    """Hourly consumption of a cumulative counter in [start, end).

    ``windows``: the counter's hourly statistics in the period, sorted; ``before``: the last hourly
    window before ``start`` (its max is the reading consumption is counted from), if any; ``raw``
    fetches the raw readings of a window with a reset.
    """
    result = DeviceEnergy(method="counter")
    last = before.max if before is not None else None
    seen: list[datetime] = []
    for window in windows:
        if not start <= window.ts < end:
            continue
        seen.append(window.ts)
        if last is None:
            # The first readings we know of (the device started in the period): the rise within
            # the hour. A reset inside this very hour would go unnoticed; after it, none does.
            consumed, last = max(0.0, window.max - window.min), window.max
        elif window.min >= last - RESET_TOLERANCE:
            consumed, last = max(0.0, window.max - last), window.max
        else:
            consumed, last, resets = _walk(raw(window.ts, window.ts + HOUR), last)
            result.resets += resets
        result.hourly[window.ts] = consumed
    result.hours_with_data = len(seen)
    result.gaps = _count_gaps(seen)
    return result


def _walk(readings: Sequence[tuple[datetime, float]], last: float | None) -> tuple[float, float | None, int]:
    """Consumption along raw readings from ``last``: rises add up; after a drop the reading itself
    (the counter restarted from zero). Returns (consumed, last reading, resets)."""
    consumed = 0.0
    resets = 0
    for _, value in readings:
        if last is not None:
            if value >= last - RESET_TOLERANCE:
                consumed += max(0.0, value - last)
            else:
                resets += 1
                consumed += max(0.0, value)
        last = value
    return consumed, last, resets


def from_power(windows: Sequence[WindowStats], start: datetime, end: datetime) -> DeviceEnergy:
    """Hourly energy from power windows: mean kW x 1 h for each hour with data."""
    result = DeviceEnergy(method="power")
    seen: list[datetime] = []
    for window in windows:
        if not start <= window.ts < end or window.samples == 0:
            continue
        seen.append(window.ts)
        result.hourly[window.ts] = max(0.0, window.sum / window.samples)
    result.hours_with_data = len(seen)
    result.gaps = _count_gaps(seen)
    return result
