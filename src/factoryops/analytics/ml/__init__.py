"""Analytics models and the AI co-pilot: pure computation on a pandas frame, no database, no object store.

The jobs, datasets, registry and API call only what is re-exported here.

Input frame
    Wide, indexed by a ``DatetimeIndex`` (UTC; naive times are taken as UTC), one numeric column per series,
    named ``"device/property"`` or ``"property"`` (a target ``"Usage_kWh"`` also finds ``"meter-1/Usage_kWh"``
    if it is the only such column). The step is the median spacing; irregular readings are averaged onto a
    regular grid, gaps up to 1 hour are interpolated, longer gaps stay missing and are left out (each with a
    warning). A 0/1 column ``label`` (or ``params["label_column"]``) marks known anomalies.

Predictions (``RunOutput.predictions``, indexed by ``ts`` in UTC)
    forecast: ``actual, predicted, lower, upper, part`` (``part`` = ``"test"`` for the held-out period,
              ``"forecast"`` for the horizon after the last reading, where ``actual`` is NaN);
    anomaly:  ``value`` (one series) or one column per series, ``score`` (higher = stranger), ``anomaly``
              (bool), and ``label`` if labels were given;
    baseline: ``actual, predicted, period`` (``"fit"`` / ``"report"``);
    profile:  indexed by ``day``: ``cluster, label, daily_mean, daily_max``.

Metrics (``RunOutput.metrics``, floats)
    forecast: ``mae, mape`` (%, zero actuals ignored), ``r2, rmse, mae_seasonal_naive,
              improvement_vs_seasonal_naive_pct, interval_coverage, n_train, n_test``;
    anomaly:  ``n_anomalies, anomaly_rate, n_windows, n_points``; with labels also ``precision, recall, f1,
              label_windows, window_recall, false_positive_windows``;
    baseline: ``mae, mape, r2, rmse`` (held-out end of the fit period), ``savings_kwh`` (in the target's unit),
              ``savings_pct, report_expected, report_actual, n_report``;
    profile:  ``silhouette, n_clusters, n_days`` and ``silhouette_k<k>`` for each k tried.
    Co-pilot runs add ``cv_mae`` (forecast, baseline) and ``elapsed_seconds``.

Charts (``RunOutput.charts``, JSON-ready; at most about 2,000 points per series, min/max downsampled so
spikes stay visible; anomaly markers are never downsampled)
    time series (forecast, anomaly, baseline)::

        {"kind": "timeseries",
         "series": [{"name": "actual", "points": [[iso_ts, value | null], ...]}, ...],
         "bands": [{"name": "interval", "points": [[iso_ts, lo, hi], ...]}],
         "markers": [{"name": "anomaly", "points": [[iso_ts, value], ...]}],
         "windows": [{"start": iso_ts, "end": iso_ts}],
         "unit": "kWh", ...}

    forecast adds ``forecast_start`` and ``test_start``; anomaly adds ``label_windows``; baseline adds
    ``report_start`` and ``savings: {total, pct, unit, expected, actual, cumulative: [[iso_ts, value], ...]}``.
    profile::

        {"kind": "profiles", "x": [0.0, 1.0, ...],  # hour of day of each curve point
         "unit": "kWh",
         "curves": [{"cluster": 0, "label": "weekday high load", "values": [...], "days": 259}, ...],
         "calendar": [["2018-01-01", 0], ...]}

Times a person reads
    ``run_standard``, ``run_copilot`` and ``apply_model`` take the factory's IANA ``timezone`` (default
    ``"UTC"``): the summary and messages write times and dates in it with the zone's abbreviation
    ("22 Nov 2026 00:45 KST"). Everything computed (features, calendar, grids, day boundaries of load
    profiles) and everything stored (predictions, chart time stamps) stays in UTC.

Fitted models (``RunOutput.model``) are plain dataclasses holding scikit-learn estimators and numbers; they
pickle with joblib and are given back to ``apply_model`` for scoring runs.
"""

from factoryops.analytics.ml.catalogue import MODELS, validate_params
from factoryops.analytics.ml.copilot import run_copilot
from factoryops.analytics.ml.core import (
    AnalyticsInputError,
    ModelInfo,
    ParamInfo,
    ProgressFn,
    RunOutput,
    RunSpec,
    Task,
)
from factoryops.analytics.ml.runner import apply_model, run_standard

__all__ = [
    "MODELS",
    "AnalyticsInputError",
    "ModelInfo",
    "ParamInfo",
    "ProgressFn",
    "RunOutput",
    "RunSpec",
    "Task",
    "apply_model",
    "run_copilot",
    "run_standard",
    "validate_params",
]
