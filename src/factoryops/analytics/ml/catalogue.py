"""The model catalogue the API lists and the portal offers, and validation of hyperparameters against it."""

from __future__ import annotations

import math
from typing import Any

from factoryops.analytics.ml.core import AnalyticsInputError, ModelInfo, ParamInfo, Task

# Keys of RunSpec.params that are options of the run, not hyperparameters of the model.
RUN_OPTIONS: dict[Task, set[str]] = {
    "anomaly": {"label_column"},
    "forecast": {"max_trials"},
    "baseline": {"max_trials"},
    "profile": {"max_trials"},
}

_CONTAMINATION = ParamInfo(
    "float", 0.01, 0.001, 0.2, help="Share of points expected to be anomalous (0.01 = 1 %).", log=True
)
_WINDOW = ParamInfo(
    "int", 12, 3, 2016, help="Rolling window (in steps) for the local mean, spread and median; 12 = 1 h of 5-min data."
)
_HGB = {
    "learning_rate": ParamInfo("float", 0.1, 0.01, 0.3, help="Step size of each boosting round.", log=True),
    "max_iter": ParamInfo("int", 300, 50, 1000, help="Number of boosting rounds (trees)."),
    "max_leaf_nodes": ParamInfo("int", 31, 8, 128, help="Leaves per tree: higher fits finer patterns."),
    "min_samples_leaf": ParamInfo("int", 20, 5, 200, help="Smallest group of samples a leaf may describe."),
    "l2_regularization": ParamInfo("float", 0.0, 0.0, 10.0, help="Penalty on large leaf values."),
}

MODELS: dict[Task, dict[str, ModelInfo]] = {
    "anomaly": {
        "isolation_forest": ModelInfo(
            "isolation_forest",
            "anomaly",
            "Isolation forest",
            "Flags points that are easy to isolate from the rest, using the value, its deviation from the "
            "rolling mean, the rolling spread and the step change. Scans all chosen series jointly.",
            {
                "contamination": _CONTAMINATION,
                "n_estimators": ParamInfo("int", 200, 50, 500, help="Number of trees."),
                "window": _WINDOW,
            },
        ),
        "local_outlier_factor": ModelInfo(
            "local_outlier_factor",
            "anomaly",
            "Local outlier factor",
            "Flags points whose neighbourhood is much sparser than that of their neighbours, on the same "
            "engineered features as the isolation forest. Scores the data it is given (no separate training).",
            {
                "contamination": _CONTAMINATION,
                "n_neighbors": ParamInfo("int", 50, 5, 300, help="Neighbours compared with each point."),
                "window": _WINDOW,
            },
        ),
        "robust_zscore": ModelInfo(
            "robust_zscore",
            "anomaly",
            "Robust z-score (median / MAD)",
            "Flags values far from the median in units of the median absolute deviation, both on the series "
            "itself (levels never seen) and on its residual from a rolling median (sudden jumps and spikes).",
            {
                "threshold": ParamInfo("float", 5.0, 2.0, 15.0, help="Robust z-score above which a point is flagged."),
                "window": _WINDOW,
                "mode": ParamInfo(
                    "choice",
                    "both",
                    choices=("both", "level", "residual"),
                    help="level: the series itself; residual: its deviation from the rolling median; both.",
                ),
            },
        ),
    },
    "forecast": {
        "seasonal_naive": ModelInfo(
            "seasonal_naive",
            "forecast",
            "Seasonal naive",
            "Tomorrow looks like the same time one season ago (a day, or a week). The yardstick every "
            "other forecast has to beat.",
            {
                "season": ParamInfo(
                    "choice", "day", choices=("day", "week"), help="Repeat the last day or the last week."
                ),
            },
        ),
        "holt_winters": ModelInfo(
            "holt_winters",
            "forecast",
            "Exponential smoothing (Holt-Winters)",
            "Level, optional trend and an additive daily or weekly pattern, updated as data arrive "
            "(statsmodels ExponentialSmoothing).",
            {
                "trend": ParamInfo("choice", "none", choices=("none", "add"), help="Additive trend or none."),
                "damped": ParamInfo("choice", False, choices=(False, True), help="Damp the trend over the horizon."),
                "season": ParamInfo("choice", "day", choices=("day", "week"), help="Length of the repeating pattern."),
            },
        ),
        "gradient_boosting": ModelInfo(
            "gradient_boosting",
            "forecast",
            "Gradient boosting on lags and calendar",
            "Histogram gradient boosting on values at least one horizon old (same time yesterday, last "
            "week, daily means) and the calendar (hour, weekday, weekend): a direct forecast, no leakage.",
            dict(_HGB),
        ),
    },
    "baseline": {
        "linear_regression": ModelInfo(
            "linear_regression",
            "baseline",
            "Linear regression",
            "Consumption as a weighted sum of the drivers plus hour, weekday and shift effects (ridge).",
            {"alpha": ParamInfo("float", 1.0, 1e-4, 100.0, help="Ridge penalty on the weights.", log=True)},
        ),
        "random_forest": ModelInfo(
            "random_forest",
            "baseline",
            "Random forest",
            "Average of many decision trees on the drivers and calendar: handles thresholds and interactions.",
            {
                "n_estimators": ParamInfo("int", 100, 20, 400, help="Number of trees."),
                "max_depth": ParamInfo("int", 14, 2, 30, help="Depth of each tree."),
                "min_samples_leaf": ParamInfo("int", 3, 1, 50, help="Smallest group a leaf may describe."),
                "max_features": ParamInfo("float", 0.7, 0.2, 1.0, help="Share of inputs each split may try."),
            },
        ),
        "gradient_boosting": ModelInfo(
            "gradient_boosting",
            "baseline",
            "Gradient boosting",
            "Histogram gradient boosting on the drivers and calendar.",
            dict(_HGB),
        ),
    },
    "profile": {
        "kmeans": ModelInfo(
            "kmeans",
            "profile",
            "k-means on daily load curves",
            "Groups days by the shape and level of their load curve; the number of groups is chosen by "
            "silhouette (2 to 6) unless given.",
            {
                "n_clusters": ParamInfo(
                    "int", None, 2, 10, help="Number of day types; empty = chosen by silhouette from 2 to 6."
                ),
                "normalise": ParamInfo(
                    "choice",
                    "none",
                    choices=("none", "mean"),
                    help="none: compare levels and shapes; mean: divide each day by its mean (shapes only).",
                ),
                "resolution": ParamInfo(
                    "choice", "hour", choices=("hour", "native"), help="Curve points: hourly or the data's step."
                ),
            },
        ),
    },
}


def model_info(task: Task, model: str) -> ModelInfo:
    """The catalogue entry, or an error listing what exists."""
    if task not in MODELS:
        raise AnalyticsInputError(f"unknown analysis type {task!r}; choose one of {', '.join(MODELS)}")
    try:
        return MODELS[task][model]
    except KeyError:
        raise AnalyticsInputError(
            f"unknown model {model!r} for {task}; choose one of {', '.join(MODELS[task])}"
        ) from None


def validate_params(info: ModelInfo, params: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in, every given value checked against its type and range; run options left out."""
    options = RUN_OPTIONS.get(info.task, set())
    unknown = sorted(set(params) - set(info.params) - options)
    if unknown:
        raise AnalyticsInputError(
            f"{info.title} has no setting {', '.join(unknown)}; its settings are {', '.join(info.params) or 'none'}"
        )
    out: dict[str, Any] = {}
    for name, p in info.params.items():
        value = params.get(name, p.default)
        if value is None and p.default is None:
            out[name] = None
            continue
        if p.type == "choice":
            assert p.choices is not None
            if value not in p.choices:
                raise AnalyticsInputError(
                    f"{name} must be one of {', '.join(str(c) for c in p.choices)} (got {value!r})"
                )
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise AnalyticsInputError(f"{name} must be a number (got {value!r})") from None
            if not math.isfinite(number):
                raise AnalyticsInputError(f"{name} must be a finite number (got {value!r})")
            if p.type == "int":
                if number != int(number):
                    raise AnalyticsInputError(f"{name} must be a whole number (got {value!r})")
                value = int(number)
            else:
                value = number
            if (p.low is not None and value < p.low) or (p.high is not None and value > p.high):
                raise AnalyticsInputError(f"{name} must be between {p.low:g} and {p.high:g} (got {value!r})")
        out[name] = value
    return out
