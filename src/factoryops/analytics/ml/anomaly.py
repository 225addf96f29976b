"""Anomaly detection: isolation forest, local outlier factor and robust z-scores on engineered features.

Flagged points close together are grouped into anomaly *windows* (episodes), which is what an operator
looks at and what the NAB benchmark counts. If the data carry a 0/1 label column, the run also reports
precision and recall, per point and per labelled window.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.preprocessing import RobustScaler

from factoryops.analytics.ml import charts
from factoryops.analytics.ml.core import (
    AnalyticsInputError,
    ProgressFn,
    RunOutput,
    RunSpec,
    describe_span,
    local_time,
)
from factoryops.analytics.ml.prep import Prepared, constant_columns, resolve_column
from factoryops.analytics.ml.scoring import fmt, unit_of

MERGE_GAP = pd.Timedelta(hours=1)  # flags closer than this belong to the same anomaly window
MIN_ROWS = 50
TITLES = {
    "isolation_forest": "Isolation forest",
    "local_outlier_factor": "Local outlier factor",
    "robust_zscore": "Robust z-score",
}


@dataclass
class AnomalyModel:
    """A fitted detector (what RunOutput.model holds); pickles with joblib."""

    model_name: str
    params: dict[str, Any]
    columns: list[str]
    step: pd.Timedelta
    label_column: str | None = None
    scaler: Any = None
    estimator: Any = None
    threshold: float = float("inf")
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    seed: int = 0
    task: str = "anomaly"

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per series: the value, its deviation from the rolling mean, the rolling spread, the step change."""
        w = int(self.params["window"])
        parts: dict[str, pd.Series] = {}
        for col in self.columns:
            s = frame[col]
            mean = s.rolling(w, min_periods=1).mean()
            parts[f"{col}|value"] = s
            parts[f"{col}|dev"] = s - mean.shift(1).fillna(s)
            parts[f"{col}|std"] = s.rolling(w, min_periods=2).std().fillna(0.0)
            parts[f"{col}|diff"] = s.diff().fillna(0.0)
        return pd.DataFrame(parts, index=frame.index)

    def score(self, frame: pd.DataFrame, refit: bool) -> tuple[pd.Series, pd.Series]:
        """Anomaly score (higher = stranger) and flag per row; rows with a missing value are never flagged."""
        valid = frame[self.columns].notna().all(axis=1).to_numpy()
        score = np.full(len(frame), np.nan)
        flags = np.zeros(len(frame), dtype=bool)
        if self.model_name == "robust_zscore":
            if refit:
                self.stats = {col: robust_stats(frame[col], int(self.params["window"])) for col in self.columns}
            per_col = [self.zscores(frame[col], self.stats[col]) for col in self.columns]
            score = np.nanmax(np.vstack(per_col), axis=0) if per_col else score
            score = np.where(valid, score, np.nan)
            flags = valid & (score > float(self.params["threshold"]))
        else:
            x = self.features(frame).to_numpy()[valid]
            if len(x) < MIN_ROWS:
                raise AnalyticsInputError(f"need at least {MIN_ROWS} complete readings to look for anomalies")
            if refit or self.scaler is None:
                self.scaler = RobustScaler(quantile_range=(5.0, 95.0)).fit(x)
            xs = np.nan_to_num(self.scaler.transform(x))
            contamination = float(self.params["contamination"])
            if self.model_name == "isolation_forest":
                if refit:
                    self.estimator = IsolationForest(
                        n_estimators=int(self.params["n_estimators"]),
                        contamination=contamination,
                        random_state=self.seed,
                        n_jobs=1,
                    ).fit(xs)
                    self.threshold = float(-self.estimator.offset_)
                s = -self.estimator.score_samples(xs)
                score[valid] = s
                flags[valid] = s > self.threshold
            else:
                n_neighbors = min(int(self.params["n_neighbors"]), len(xs) - 1)
                lof = LocalOutlierFactor(n_neighbors=n_neighbors, contamination=contamination, novelty=False, n_jobs=1)
                labels = lof.fit_predict(xs)
                score[valid] = -lof.negative_outlier_factor_
                flags[valid] = labels == -1
        return pd.Series(score, index=frame.index), pd.Series(flags, index=frame.index)

    def zscores(self, s: pd.Series, st: dict[str, float]) -> np.ndarray:
        mode = self.params["mode"]
        level = np.abs(s.to_numpy() - st["median"]) / st["scale"]
        resid = s - s.rolling(int(self.params["window"]), center=True, min_periods=1).median()
        residual = np.abs(resid.to_numpy() - st["resid_median"]) / st["resid_scale"]
        if mode == "level":
            return np.asarray(level)
        if mode == "residual":
            return np.asarray(residual)
        return np.asarray(np.fmax(level, residual))


def robust_stats(s: pd.Series, window: int) -> dict[str, float]:
    """Median and MAD (scaled to a standard deviation) of the series and of its rolling-median residual."""

    def med_scale(values: np.ndarray) -> tuple[float, float]:
        values = values[np.isfinite(values)]
        med = float(np.median(values))
        mad = float(np.median(np.abs(values - med))) * 1.4826
        if mad <= 0:
            mad = float(np.mean(np.abs(values - med))) * 1.2533 or 1e-9
        return med, mad

    m, sc = med_scale(s.to_numpy())
    resid = (s - s.rolling(window, center=True, min_periods=1).median()).to_numpy()
    rm, rs = med_scale(resid)
    return {"median": m, "scale": sc, "resid_median": rm, "resid_scale": rs}


def group_windows(flags: pd.Series, score: pd.Series, values: pd.DataFrame, step: pd.Timedelta) -> list[dict[str, Any]]:
    """Consecutive flagged points (gaps up to MERGE_GAP) as windows: start, end, points, peak."""
    idx = np.flatnonzero(flags.to_numpy())
    if not len(idx):
        return []
    gap = max(1, int(MERGE_GAP / step))
    breaks = np.flatnonzero(np.diff(idx) > gap)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]]
    out = []
    sc = score.to_numpy()
    for a, b in zip(starts, ends, strict=True):
        peak = a + int(np.nanargmax(sc[a : b + 1]))
        out.append(
            {
                "start": charts.iso(flags.index[a]),
                "end": charts.iso(flags.index[b]),
                "points": int(flags.iloc[a : b + 1].sum()),
                "peak": charts.iso(flags.index[peak]),
                "peak_score": charts.num(sc[peak]),
                "peak_values": {c: charts.num(values[c].iloc[peak]) for c in values.columns},
            }
        )
    return out


def label_runs(labels: pd.Series) -> list[tuple[int, int]]:
    """Positions (first, last) of each run of True labels."""
    lab = labels.to_numpy().astype(bool)
    if not lab.any():
        return []
    edges = np.diff(np.r_[0, lab.astype(int), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))


def label_metrics(flags: pd.Series, labels: pd.Series, windows: list[dict[str, Any]]) -> dict[str, float]:
    """Point precision/recall/F1, and per labelled window: how many were hit, how many alarms fell outside."""
    f = flags.to_numpy().astype(bool)
    lab = labels.reindex(flags.index, fill_value=False).to_numpy().astype(bool)
    tp = float(np.sum(f & lab))
    precision = tp / f.sum() if f.sum() else 0.0
    recall = tp / lab.sum() if lab.sum() else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if (precision + recall) > 0 else 0.0
    runs = label_runs(labels.reindex(flags.index, fill_value=False))
    hit = sum(1 for a, b in runs if f[a : b + 1].any())
    idx = flags.index
    outside = 0
    for w in windows:
        s, e = pd.Timestamp(w["start"]), pd.Timestamp(w["end"])
        if not any(idx[a] <= e and idx[b] >= s for a, b in runs):
            outside += 1
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "label_windows": float(len(runs)),
        "window_recall": float(hit / len(runs)) if runs else float("nan"),
        "false_positive_windows": float(outside),
    }


def scan_columns(prep: Prepared, spec: RunSpec) -> tuple[list[str], list[str]]:
    warnings: list[str] = []
    if spec.target:
        cols = [resolve_column(prep.frame, spec.target)]
        if cols[0] in constant_columns(prep.frame):
            raise AnalyticsInputError(f"{cols[0]} never changes: there are no anomalies to find in it")
        return cols, warnings
    constant = set(constant_columns(prep.frame))
    cols = [c for c in prep.frame.columns if c not in constant]
    if constant:
        warnings.append(f"left out because they never change: {', '.join(sorted(constant))}")
    if not cols:
        raise AnalyticsInputError("every column of the data set is constant: there are no anomalies to find")
    return cols, warnings


def run_anomaly(
    prep: Prepared, spec: RunSpec, model_name: str, params: dict[str, Any], progress: ProgressFn, seed: int = 0
) -> RunOutput:
    cols, warnings = scan_columns(prep, spec)
    n_valid = int(prep.frame[cols].notna().all(axis=1).sum())
    if n_valid < MIN_ROWS:
        raise AnalyticsInputError(
            f"need at least {MIN_ROWS} readings to look for anomalies; this data set has {n_valid} complete ones"
        )
    label_column = spec.params.get("label_column") or ("label" if prep.labels is not None else None)
    model = AnomalyModel(model_name, dict(params), cols, prep.step, label_column=label_column, seed=seed)
    progress(10, f"scanning {len(cols)} series with {TITLES[model_name].lower()}")
    score, flags = model.score(prep.frame, refit=True)
    progress(80, "grouping flagged readings into episodes")
    return finish(model, prep, score, flags, list(prep.warnings) + warnings)


def apply_anomaly(model: AnomalyModel, prep: Prepared, progress: ProgressFn) -> RunOutput:
    """Scoring run: the saved detector on new data (LOF, which has no separate training, rescans it)."""
    missing = [c for c in model.columns if c not in prep.frame.columns]
    if missing:
        raise AnalyticsInputError(
            f"the new data set lacks the column{'s' if len(missing) > 1 else ''} the model needs: {', '.join(missing)}"
        )
    model = replace(model)
    progress(10, "scoring the new data")
    score, flags = model.score(prep.frame, refit=False)
    return finish(model, prep, score, flags, list(prep.warnings))


def finish(model: AnomalyModel, prep: Prepared, score: pd.Series, flags: pd.Series, warnings: list[str]) -> RunOutput:
    values = prep.frame[model.columns]
    windows = group_windows(flags, score, values, prep.step)
    n_flag = int(flags.sum())
    n_valid = int(score.notna().sum())
    metrics: dict[str, float] = {
        "n_anomalies": float(n_flag),
        "anomaly_rate": float(n_flag / n_valid) if n_valid else 0.0,
        "n_windows": float(len(windows)),
        "n_points": float(n_valid),
    }
    if prep.labels is not None:
        metrics.update(label_metrics(flags, prep.labels, windows))
    single = len(model.columns) == 1
    predictions = values.copy()
    if single:
        predictions.columns = ["value"]
    predictions["score"] = score
    predictions["anomaly"] = flags.astype(bool)
    if prep.labels is not None:
        predictions["label"] = prep.labels.reindex(values.index, fill_value=False)
    predictions.index.name = "ts"

    series_list = [charts.series(col, values[col]) for col in model.columns]
    marker_list = [
        charts.markers("anomaly" if single else f"anomaly: {col}", values[col][flags]) for col in model.columns
    ]
    chart = charts.timeseries(
        series_list,
        marker_list=marker_list,
        windows=[{"start": w["start"], "end": w["end"]} for w in windows],
        label_windows=[
            {"start": charts.iso(prep.labels.index[a]), "end": charts.iso(prep.labels.index[b])}
            for a, b in label_runs(prep.labels)
        ]
        if prep.labels is not None
        else [],
        unit=unit_of(model.columns[0]) if single else "",
    )
    return RunOutput(
        task="anomaly",
        model_name=model.model_name,
        hyperparameters=dict(model.params),
        metrics=metrics,
        predictions=predictions,
        charts=chart,
        summary=summary(model, prep, metrics, windows),
        model=model,
        warnings=warnings,
    )


def summary(model: AnomalyModel, prep: Prepared, metrics: dict[str, float], windows: list[dict[str, Any]]) -> str:
    what = model.columns[0] if len(model.columns) == 1 else f"{len(model.columns)} series together"
    span = describe_span(prep.span())
    n = int(metrics["n_anomalies"])
    title = TITLES[model.model_name]
    if not n:
        return f"{title} found nothing unusual in {what} over {span}."
    parts = [
        f"{title} flagged {n} readings of {what} ({metrics['anomaly_rate'] * 100:.1f} %) over {span}, "
        f"grouped into {len(windows)} episode{'s' if len(windows) != 1 else ''}."
    ]
    top = max(windows, key=lambda w: w["peak_score"] or 0)
    col = model.columns[0]
    typical = float(prep.frame[col].median())
    peak_value = top["peak_values"].get(col)
    unit = unit_of(col)
    parts.append(
        f"The strongest began {local_time(top['start'], prep.timezone)} and lasted "
        f"{describe_span(pd.Timestamp(top['end']) - pd.Timestamp(top['start']) + prep.step)}"
        + (
            f"; {col} reached {fmt(peak_value, unit)} (usually about {fmt(typical, unit)})."
            if peak_value is not None
            else "."
        )
    )
    if "window_recall" in metrics and np.isfinite(metrics["window_recall"]):
        parts.append(
            f"Against the labels, {metrics['window_recall'] * metrics['label_windows']:.0f} of "
            f"{metrics['label_windows']:.0f} labelled episodes were caught, with "
            f"{metrics['false_positive_windows']:.0f} alarm{'s' if metrics['false_positive_windows'] != 1 else ''} "
            f"outside them (point precision {metrics['precision'] * 100:.0f} %, "
            f"recall {metrics['recall'] * 100:.0f} %)."
        )
    return " ".join(parts)
