"""Error measures shared by forecast, baseline and the co-pilot (NaN-aware, never across missing values)."""

from __future__ import annotations

import numpy as np

KNOWN_UNITS = ("kWh", "MWh", "Wh", "kW", "MW", "W", "kVarh", "kVA", "V", "A", "C", "degC", "Hz", "m3", "bar", "%")


def _pair(actual: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, p = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    ok = np.isfinite(a) & np.isfinite(p)
    return a[ok], p[ok]


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    a, p = _pair(actual, predicted)
    return float(np.mean(np.abs(a - p))) if len(a) else float("nan")


def mape(actual: np.ndarray, predicted: np.ndarray) -> tuple[float, int]:
    """Mean absolute percentage error in %, ignoring zero actuals (returned: value, zeros ignored)."""
    a, p = _pair(actual, predicted)
    nonzero = np.abs(a) > 1e-9
    if not nonzero.any():
        return float("nan"), len(a)
    return float(np.mean(np.abs((a[nonzero] - p[nonzero]) / a[nonzero])) * 100.0), int((~nonzero).sum())


def r2(actual: np.ndarray, predicted: np.ndarray) -> float:
    a, p = _pair(actual, predicted)
    if len(a) < 2:
        return float("nan")
    total = float(np.sum((a - a.mean()) ** 2))
    if total == 0:
        return float("nan")
    return 1.0 - float(np.sum((a - p) ** 2)) / total


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> tuple[dict[str, float], int]:
    """MAE, MAPE (%), R2 and RMSE; also the number of zero actuals MAPE had to ignore."""
    a, p = _pair(actual, predicted)
    m, zeros = mape(a, p)
    rmse = float(np.sqrt(np.mean((a - p) ** 2))) if len(a) else float("nan")
    return {"mae": mae(a, p), "mape": m, "r2": r2(a, p), "rmse": rmse}, zeros


def unit_of(column: str) -> str:
    """The unit in a column name like ``meter-1/Usage_kWh`` ('kWh'), or '' if it names none."""
    last = column.rsplit("/", 1)[-1]
    for sep in ("_", " ", "(", "["):
        if sep in last:
            candidate = last.rsplit(sep, 1)[-1].strip("()[] ")
            if candidate in KNOWN_UNITS:
                return candidate
    return ""


def fmt(value: float, unit: str = "") -> str:
    """A number for a sentence: 3 significant digits, thousands separated, with its unit."""
    if not np.isfinite(value):
        return "n/a"
    av = abs(value)
    text = f"{value:,.0f}" if av >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip()
