"""Load profiling: one curve per day, grouped by k-means into day types named by their character.

Days are the factory's days (``timezone``): a curve runs from local midnight to midnight on the
wall clock, so a Saturday is the plant's Saturday and the curve's hours are the hours people read.
On the day the clocks go forward the skipped hour is missing (and interpolated); on the day they
go back the repeated hour is averaged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from factoryops.analytics.ml import charts
from factoryops.analytics.ml.core import (
    AnalyticsInputError,
    ProgressFn,
    RunOutput,
    RunSpec,
    describe_step,
    local_moment,
    local_time,
)
from factoryops.analytics.ml.prep import Prepared, local_index, resolve_column
from factoryops.analytics.ml.scoring import fmt, unit_of

MIN_DAYS = 4
MAX_MISSING_SHARE = 0.1  # a day with more missing slots than this is left out
K_RANGE = range(2, 7)


@dataclass
class ProfileModel:
    """Fitted day types (what RunOutput.model holds); pickles with joblib."""

    params: dict[str, Any]
    target: str
    step: pd.Timedelta
    resolution: pd.Timedelta
    kmeans: Any = None
    labels: dict[int, str] = field(default_factory=dict)
    seed: int = 0
    model_name: str = "kmeans"
    task: str = "profile"
    timezone: str = "UTC"  # the factory's: days and hours on its clock (models saved before: UTC)

    @property
    def slots(self) -> int:
        return max(1, round(pd.Timedelta(days=1) / self.resolution))

    def daily(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        """Days x slots matrix of complete days (short holes interpolated); also how many days were left out."""
        s = frame[self.target]
        if self.resolution != self.step:
            s = s.resample(self.resolution).mean()
        local = local_index(pd.DatetimeIndex(s.index), self.timezone)
        day = local.normalize()  # local midnight
        seconds = local.hour * 3600 + local.minute * 60 + local.second  # the wall clock
        slot = (seconds // int(self.resolution.total_seconds())).astype(int)
        table = pd.DataFrame({"day": day, "slot": slot, "v": s.to_numpy()}).pivot_table(
            index="day", columns="slot", values="v", aggfunc="mean", dropna=False
        )
        table = table.reindex(columns=range(self.slots))
        complete = table.isna().mean(axis=1) <= MAX_MISSING_SHARE
        dropped = int((~complete).sum())
        table = table[complete].interpolate(axis=1, limit_direction="both")
        table.index = pd.DatetimeIndex(table.index)
        table.index.name = "day"
        return table, dropped

    def shapes(self, table: pd.DataFrame) -> np.ndarray:
        x = table.to_numpy(dtype=float)
        if self.params["normalise"] == "mean":
            means = x.mean(axis=1, keepdims=True)
            x = np.divide(x, means, out=np.zeros_like(x), where=np.abs(means) > 1e-12)
        return x


def local_peak(days: pd.Index, offset: pd.Timedelta, timezone: str) -> pd.Timestamp:
    """The peak of a day type as the factory's clock shows it: ``offset`` is its time into the day (the
    table's days are local midnights; a model saved before that has UTC days), so the local time is
    taken on each of the days and the commonest kept (a DST change shifts some by an hour)."""
    moments = [local_moment(day + offset, timezone) for day in pd.DatetimeIndex(days)]
    clock = pd.Series([m.hour * 60 + m.minute for m in moments])
    return moments[int(np.flatnonzero(clock.to_numpy() == clock.mode().iloc[0])[0])]


def name_clusters(table: pd.DataFrame, assign: np.ndarray, k: int, timezone: str = "UTC") -> dict[int, str]:
    """'weekday high load', 'weekend low load', ...: from the cluster's mean level and weekday share."""
    overall = float(table.to_numpy().mean())
    weekday = pd.DatetimeIndex(table.index).day_of_week < 5
    names: dict[int, str] = {}
    for c in range(k):
        members = assign == c
        if not members.any():
            names[c] = f"day type {c + 1} (no days)"
            continue
        level = float(table.to_numpy()[members].mean())
        ratio = level / overall if overall else 1.0
        load = "high load" if ratio > 1.2 else "low load" if ratio < 0.8 else "medium load"
        share = float(weekday[members].mean())
        days = "weekday" if share >= 0.8 else "weekend" if share <= 0.2 else "mixed-day"
        names[c] = f"{days} {load}"
    seen: dict[str, int] = {}
    for name in names.values():
        seen[name] = seen.get(name, 0) + 1
    for c in range(k):
        if seen.get(names[c], 0) > 1:
            curve = table.to_numpy()[assign == c].mean(axis=0)
            offset = pd.Timedelta(days=1) / table.shape[1] * int(np.argmax(curve))
            names[c] = f"{names[c]}, peak {local_peak(table.index[assign == c], offset, timezone):%H:%M}"
    counts: dict[str, int] = {}
    for c in range(k):
        counts[names[c]] = counts.get(names[c], 0) + 1
        if counts[names[c]] > 1:
            names[c] = f"{names[c]} ({counts[names[c]]})"
    return names


def choose_k(
    x: np.ndarray, given: int | None, seed: int, progress: ProgressFn
) -> tuple[KMeans, float, list[dict[str, float]]]:
    """k-means with the given k, or the k in 2..6 with the best silhouette; the silhouettes tried."""
    n = len(x)
    ks = [int(given)] if given else [k for k in K_RANGE if k < n]
    if given and given >= n:
        raise AnalyticsInputError(f"cannot form {given} day types from {n} days; choose fewer or use more data")
    best: tuple[KMeans, float] | None = None
    tried: list[dict[str, float]] = []
    for i, k in enumerate(ks):
        progress(round(20 + 60 * i / max(1, len(ks))), f"grouping days into {k} types")
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x)
        labels = km.labels_
        sil = float(silhouette_score(x, labels)) if len(set(labels)) > 1 else float("nan")
        tried.append({"k": float(k), "silhouette": sil})
        if best is None or (np.isfinite(sil) and (not np.isfinite(best[1]) or sil > best[1])):
            best = (km, sil)
    assert best is not None
    return best[0], best[1], tried


def run_profile(
    prep: Prepared, spec: RunSpec, params: dict[str, Any], progress: ProgressFn, seed: int = 0
) -> RunOutput:
    target = spec.target
    if not target:
        if prep.frame.shape[1] != 1:
            raise AnalyticsInputError(
                "load profiling needs a target: the column whose daily curves to compare "
                f"(one of {', '.join(prep.frame.columns[:10])})"
            )
        target = str(prep.frame.columns[0])
    target = resolve_column(prep.frame, target)
    hour = pd.Timedelta(hours=1)
    resolution = hour if params["resolution"] == "hour" and prep.step < hour else prep.step
    if pd.Timedelta(days=1) % resolution != pd.Timedelta(0) or resolution >= pd.Timedelta(days=1):
        raise AnalyticsInputError(
            f"daily load curves need readings within the day that divide it evenly; this data set is "
            f"{describe_step(prep.step)}"
        )
    model = ProfileModel(dict(params), target, prep.step, resolution, seed=seed, timezone=prep.timezone)
    progress(5, "building one load curve per day")
    table, dropped = model.daily(prep.frame)
    if len(table) < MIN_DAYS:
        raise AnalyticsInputError(
            f"need at least {MIN_DAYS} complete days of data to compare daily load curves; "
            f"this data set has {len(table)}"
        )
    warnings = list(prep.warnings)
    if dropped:
        warnings.append(f"{dropped} day{'s' if dropped > 1 else ''} with more than 10 % missing readings left out")
    x = model.shapes(table)
    km, sil, tried = choose_k(x, params.get("n_clusters"), seed, progress)
    model.kmeans = km
    assign = np.asarray(km.labels_)
    model.labels = name_clusters(table, assign, km.n_clusters, prep.timezone)
    metrics = {"silhouette": sil, "n_clusters": float(km.n_clusters), "n_days": float(len(table))}
    for t in tried:
        metrics[f"silhouette_k{int(t['k'])}"] = t["silhouette"]
    return finish(
        model, table, assign, metrics, warnings, chosen=params.get("n_clusters") is None, timezone=prep.timezone
    )


def finish(
    model: ProfileModel,
    table: pd.DataFrame,
    assign: np.ndarray,
    metrics: dict[str, float],
    warnings: list[str],
    chosen: bool,
    timezone: str = "UTC",
) -> RunOutput:
    k = model.kmeans.n_clusters
    hours = [round(i * model.resolution / pd.Timedelta(hours=1), 4) for i in range(model.slots)]
    curves = []
    for c in range(k):
        members = assign == c
        raw = table.to_numpy()[members].mean(axis=0) if members.any() else np.full(model.slots, np.nan)
        entry: dict[str, Any] = {
            "cluster": c,
            "label": model.labels.get(c, f"day type {c + 1}"),
            "values": [charts.num(v) for v in raw],
            "days": int(members.sum()),
        }
        if model.params["normalise"] == "mean":
            entry["shape"] = [charts.num(v) for v in model.kmeans.cluster_centers_[c]]
        curves.append(entry)
    chart = {
        "kind": "profiles",
        "x": hours,
        "unit": unit_of(model.target),
        "curves": curves,
        "calendar": [[d.strftime("%Y-%m-%d"), int(c)] for d, c in zip(table.index, assign, strict=True)],
    }
    predictions = pd.DataFrame(
        {
            "cluster": assign.astype(int),
            "label": [model.labels.get(int(c), "") for c in assign],
            "daily_mean": table.mean(axis=1).to_numpy(),
            "daily_max": table.max(axis=1).to_numpy(),
        },
        index=pd.DatetimeIndex(table.index).tz_convert("UTC"),  # predictions keep UTC time stamps
    )
    unit = unit_of(model.target)
    parts = [
        f"{k} kinds of day found in {model.target} over {len(table)} days"
        + (
            f" (chosen by silhouette, {metrics['silhouette']:.2f})."
            if chosen
            else f" (silhouette {metrics['silhouette']:.2f})."
        )
    ]
    for c in sorted(range(k), key=lambda c: -int((assign == c).sum()))[:4]:
        members = assign == c
        if not members.any():
            continue
        curve = table.to_numpy()[members].mean(axis=0)
        peak = local_peak(table.index[members], model.resolution * int(np.argmax(curve)), timezone)
        parts.append(
            f"'{model.labels[c]}': {int(members.sum())} days, mean {fmt(float(curve.mean()), unit)} per reading, "
            f"peak around {local_time(peak, timezone, '%H:%M')}."
        )
    return RunOutput(
        task="profile",
        model_name="kmeans",
        hyperparameters={**model.params, "n_clusters": k},
        metrics={key: float(v) for key, v in metrics.items()},
        predictions=predictions,
        charts=chart,
        summary=" ".join(parts[:5]),
        model=model,
        warnings=warnings,
    )


def apply_profile(model: ProfileModel, prep: Prepared, progress: ProgressFn) -> RunOutput:
    """Scoring run: the new days assigned to the saved day types."""
    if model.target not in prep.frame.columns:
        raise AnalyticsInputError(f"the new data set lacks the column the model needs: {model.target}")
    progress(10, "building one load curve per new day")
    table, dropped = model.daily(prep.frame)
    if len(table) < 1:
        raise AnalyticsInputError("the new data set has no complete day to classify")
    assign = np.asarray(model.kmeans.predict(model.shapes(table)))
    x = model.shapes(table)
    n_used = len(set(assign.tolist()))
    sil = float(silhouette_score(x, assign)) if 1 < n_used < len(x) else float("nan")
    warnings = list(prep.warnings)
    if dropped:
        warnings.append(f"{dropped} day{'s' if dropped > 1 else ''} with more than 10 % missing readings left out")
    metrics = {"silhouette": sil, "n_clusters": float(model.kmeans.n_clusters), "n_days": float(len(table))}
    return finish(model, table, assign, metrics, warnings, chosen=False, timezone=prep.timezone)
