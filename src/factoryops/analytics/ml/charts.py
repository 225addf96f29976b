"""Chart payloads: small, JSON-ready series the portal draws as they are (shapes in the package docstring)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

MAX_POINTS = 2000


def iso(ts: Any) -> str:
    return pd.Timestamp(ts).isoformat()


def num(value: Any, digits: int = 6) -> float | None:
    """A plain float rounded to ``digits`` significant digits, or None for NaN (JSON null)."""
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v):
        return None
    if v == 0:
        return 0.0
    return round(v, max(0, digits - 1 - math.floor(math.log10(abs(v)))))


def downsample(s: pd.Series, max_points: int = MAX_POINTS) -> pd.Series:
    """At most ``max_points`` points keeping each bucket's minimum and maximum, so spikes stay visible."""
    if len(s) <= max_points:
        return s
    buckets = max_points // 2
    bounds = np.linspace(0, len(s), buckets + 1).astype(int)
    values = s.to_numpy(dtype=float)
    keep: list[int] = []
    for a, b in itertools.pairwise(bounds):
        chunk = values[a:b]
        if b <= a:
            continue
        if np.all(np.isnan(chunk)):
            keep.append(a)
            continue
        lo, hi = a + int(np.nanargmin(chunk)), a + int(np.nanargmax(chunk))
        keep.extend(sorted({lo, hi}))
    return s.iloc[keep]


def stride(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Evenly spaced positions (bands and other aligned series that cannot use min/max buckets)."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).astype(int))


def series(name: str, s: pd.Series, max_points: int = MAX_POINTS) -> dict[str, Any]:
    d = downsample(s, max_points)
    return {"name": name, "points": [[iso(t), num(v)] for t, v in zip(d.index, d.to_numpy(), strict=True)]}


def band(name: str, lower: pd.Series, upper: pd.Series, max_points: int = MAX_POINTS) -> dict[str, Any]:
    pos = stride(len(lower), max_points)
    lo, hi = lower.to_numpy()[pos], upper.to_numpy()[pos]
    idx = lower.index[pos]
    return {"name": name, "points": [[iso(t), num(a), num(b)] for t, a, b in zip(idx, lo, hi, strict=True)]}


def markers(name: str, s: pd.Series) -> dict[str, Any]:
    return {"name": name, "points": [[iso(t), num(v)] for t, v in zip(s.index, s.to_numpy(), strict=True)]}


def timeseries(
    series_list: list[dict[str, Any]],
    bands: list[dict[str, Any]] | None = None,
    marker_list: list[dict[str, Any]] | None = None,
    windows: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "kind": "timeseries",
        "series": series_list,
        "bands": bands or [],
        "markers": marker_list or [],
        "windows": windows or [],
        **extra,
    }
