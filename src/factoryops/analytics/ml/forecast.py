"""Forecasting: seasonal naive, Holt-Winters and gradient boosting, all as direct multi-step forecasts.

Every forecast is made from an *origin*: the last reading it may use. Evaluation cuts the holdout into
blocks of one horizon; each block is forecast from the reading just before it, so no value inside a
block is ever used to forecast that block (no leakage). Gradient boosting only sees lags of at least one
horizon (the same time yesterday, last week, ...), the calendar, and exogenous columns that are a pure
function of the calendar (known ahead, e.g. seconds since midnight or a fixed shift plan).
"""

from __future__ import annotations

import math
import warnings as pywarnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from factoryops.analytics.ml import charts
from factoryops.analytics.ml.core import (
    AnalyticsInputError,
    ProgressFn,
    RunOutput,
    RunSpec,
    describe_span,
    describe_step,
    local_time,
)
from factoryops.analytics.ml.prep import (
    Prepared,
    calendar_features,
    constant_columns,
    is_calendar_determined,
    local_index,
    resolve_column,
)
from factoryops.analytics.ml.scoring import fmt, regression_metrics, unit_of

INTERVAL = (0.1, 0.9)  # residual quantiles of the holdout: an 80 % interval


def horizon_phrase(horizon: int, step: pd.Timedelta) -> str:
    if horizon * step == pd.Timedelta(days=1):
        return "a day-ahead forecast"
    return f"a forecast {describe_span(horizon * step)} ahead"


@dataclass
class ForecastModel:
    """A fitted forecaster (what RunOutput.model holds); pickles with joblib."""

    model_name: str
    params: dict[str, Any]
    target: str
    step: pd.Timedelta
    horizon: int
    steps_per_day: int
    exog: list[str] = field(default_factory=list)
    exog_maps: dict[str, dict[int, float]] = field(default_factory=dict)
    lags: list[int] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)  # engineered features left out (co-pilot: no relationship)
    estimator: Any = None
    hw: dict[str, Any] | None = None
    residual_q: tuple[float, float] = (0.0, 0.0)
    seed: int = 0
    task: str = "forecast"
    timezone: str = "UTC"  # the factory's: calendar features and known-ahead maps are on its clock

    # ----- shape of the model -------------------------------------------------------------------
    @property
    def season_steps(self) -> int:
        return self.steps_per_day * (7 if self.params.get("season") == "week" else 1)

    def min_train(self) -> int:
        """Fewest training steps this model needs (before the holdout)."""
        if self.model_name == "seasonal_naive":
            return self.naive_lag()
        if self.model_name == "holt_winters":
            return 2 * self.season_steps
        return self.horizon + max(2 * self.steps_per_day, 48)

    def naive_lag(self) -> int:
        m = self.season_steps
        return m * math.ceil(self.horizon / m)

    # ----- fitting ------------------------------------------------------------------------------
    def fit(self, y: pd.Series, exog: pd.DataFrame) -> None:
        """Fit on ``y`` (a regular series, NaN where missing); exog holds the known-ahead columns."""
        if self.model_name == "gradient_boosting":
            if not self.lags:
                self.lags = choose_lags(self.horizon, self.steps_per_day, len(y))
            x = self.features(y, exog)
            ok = y.notna().to_numpy() & x[f"lag_{self.horizon}"].notna().to_numpy()
            if ok.sum() < 24:
                raise AnalyticsInputError("too few complete readings to train gradient boosting")
            est = HistGradientBoostingRegressor(
                learning_rate=self.params["learning_rate"],
                max_iter=self.params["max_iter"],
                max_leaf_nodes=self.params["max_leaf_nodes"],
                min_samples_leaf=min(self.params["min_samples_leaf"], max(1, int(ok.sum()) // 4)),
                l2_regularization=self.params["l2_regularization"],
                early_stopping=False,
                random_state=self.seed,
            )
            est.fit(x[ok], y[ok])
            self.estimator = est
        elif self.model_name == "holt_winters":
            self.hw = fit_holt_winters(y, self.season_steps, self.params["trend"], bool(self.params["damped"]))

    def features(self, y: pd.Series, exog: pd.DataFrame) -> pd.DataFrame:
        """Lag and calendar features; every value at row t uses readings at or before t - horizon."""
        h, spd = self.horizon, self.steps_per_day
        feats: dict[str, pd.Series] = {f"lag_{lag}": y.shift(lag) for lag in self.lags}
        base = y.shift(h)
        feats["mean_last_day"] = base.rolling(spd, min_periods=max(1, spd // 2)).mean()
        feats["max_last_day"] = base.rolling(spd, min_periods=max(1, spd // 2)).max()
        feats["mean_last_3h"] = base.rolling(max(1, spd // 8), min_periods=1).mean()
        x = pd.DataFrame(feats, index=y.index)
        cal = calendar_features(pd.DatetimeIndex(y.index), self.timezone)[["cal_hour", "cal_weekday", "cal_weekend"]]
        x = pd.concat([x, cal], axis=1)
        for col in self.exog:
            x[f"exog:{col}"] = exog[col].to_numpy() if col in exog else np.nan
        return x.drop(columns=[c for c in self.drop if c in x.columns])

    # ----- predicting ---------------------------------------------------------------------------
    def predict_from(self, y: pd.Series, exog: pd.DataFrame, start: int) -> np.ndarray:
        """Forecasts for positions start..n-1 in blocks of one horizon, each from the reading before it."""
        n = len(y)
        if start >= n:
            return np.empty(0)
        if self.model_name == "seasonal_naive":
            return y.shift(self.naive_lag()).to_numpy()[start:]
        if self.model_name == "gradient_boosting":
            x = self.features(y, exog).iloc[start:]
            return np.asarray(self.estimator.predict(x), dtype=float)
        assert self.hw is not None
        level, trend, season = holt_winters_filter(y.to_numpy(dtype=float), self.hw)
        out = np.empty(n - start)
        for origin in range(start, n, self.horizon):
            k = min(self.horizon, n - origin)
            out[origin - start : origin - start + k] = hw_forecast(self.hw, level, trend, season, origin, k)
        return out

    def future(self, y: pd.Series, exog: pd.DataFrame) -> pd.Series:
        """The next ``horizon`` steps after the last reading of ``y``."""
        index = pd.date_range(y.index[-1] + self.step, periods=self.horizon, freq=self.step)
        full_index = pd.DatetimeIndex(y.index.append(index))
        y_ext = y.reindex(full_index)
        exog_ext = self.exog_frame(full_index, exog)
        if self.model_name == "holt_winters":
            assert self.hw is not None
            level, trend, season = holt_winters_filter(y.to_numpy(dtype=float), self.hw)
            values = hw_forecast(self.hw, level, trend, season, len(y), self.horizon)
        else:
            values = self.predict_from(y_ext, exog_ext, len(y))
        return pd.Series(values, index=index)

    def exog_frame(self, index: pd.DatetimeIndex, known: pd.DataFrame) -> pd.DataFrame:
        """Exogenous columns on ``index``: the readings where known, else the calendar map (known ahead)."""
        out = pd.DataFrame(index=index)
        keys = calendar_key(index, self.timezone)
        for col in self.exog:
            mapped = pd.Series(keys).map(self.exog_maps.get(col, {})).to_numpy(dtype=float)
            if col in known:
                observed = known[col].reindex(index).to_numpy(dtype=float)
                mapped = np.where(np.isfinite(observed), observed, mapped)
            out[col] = mapped
        return out


def calendar_key(index: pd.DatetimeIndex, timezone: str = "UTC") -> np.ndarray:
    """Second of the week on the factory's clock: the key of a known-ahead column's map."""
    local = local_index(index, timezone)
    return np.asarray(local.day_of_week * 86400 + local.hour * 3600 + local.minute * 60 + local.second)


def choose_lags(horizon: int, steps_per_day: int, n: int) -> list[int]:
    """Lags of at least one horizon: just after it, and the same time 1..7 days earlier (as data allow)."""
    lags = {horizon, horizon + 1, horizon + 2}
    lags.update(k * steps_per_day for k in range(1, 8) if k * steps_per_day >= horizon)
    limit = max(horizon + 2, n // 3)
    return sorted(lag for lag in lags if lag <= limit)


def describe_feature(name: str, step: pd.Timedelta) -> str:
    """A forecast feature in words, for the feature report."""
    if name.startswith("lag_"):
        span = int(name[4:]) * step
        hours, rest = divmod(int(span.total_seconds()), 3600)
        if rest and hours:
            return f"value {hours} h {rest // 60} min earlier"
        return f"value {describe_span(span)} earlier"
    if name.startswith("exog:"):
        return f"{name[5:]} (known ahead)"
    return {
        "mean_last_day": "mean of the last day available",
        "max_last_day": "peak of the last day available",
        "mean_last_3h": "mean of the last 3 hours available",
        "cal_hour": "hour of day",
        "cal_weekday": "day of week",
        "cal_weekend": "weekend",
        "cal_shift": "shift",
    }.get(name, name.removeprefix("exog:"))


# ----- Holt-Winters: statsmodels finds the parameters, a small filter applies them to any series -----


def fit_holt_winters(y: pd.Series, m: int, trend: str, damped: bool) -> dict[str, Any]:
    """Smoothing parameters and initial states fitted by statsmodels ExponentialSmoothing."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    values = y.interpolate(limit_direction="both").to_numpy(dtype=float)
    if len(values) < 2 * m:
        raise AnalyticsInputError("Holt-Winters needs at least two full seasons of data to learn the pattern")
    use_trend = trend == "add"
    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore")
        res = ExponentialSmoothing(
            values,
            trend="add" if use_trend else None,
            damped_trend=damped and use_trend,
            seasonal="add",
            seasonal_periods=m,
            initialization_method="heuristic",
        ).fit()
    p = res.params

    def val(key: str, default: float) -> float:
        v = p.get(key)
        return default if v is None or not np.isfinite(v) else float(v)

    return {
        "m": m,
        "trend": use_trend,
        "alpha": val("smoothing_level", 0.5),
        "beta": val("smoothing_trend", 0.0) if use_trend else 0.0,
        "gamma": val("smoothing_seasonal", 0.1),
        "phi": val("damping_trend", 1.0) if (damped and use_trend) else 1.0,
        "l0": val("initial_level", float(np.nanmean(values[:m]))),
        "b0": val("initial_trend", 0.0) if use_trend else 0.0,
        "s0": [float(v) for v in np.asarray(p["initial_seasons"], dtype=float)],
    }


def hw_reinitialise(hw: dict[str, Any], y: pd.Series) -> dict[str, Any]:
    """Initial states for a new series, keeping the fitted smoothing parameters (scoring runs)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    values = y.interpolate(limit_direction="both").to_numpy(dtype=float)
    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore")
        model = ExponentialSmoothing(
            values,
            trend="add" if hw["trend"] else None,
            damped_trend=hw["trend"] and hw["phi"] < 1.0,
            seasonal="add",
            seasonal_periods=hw["m"],
            initialization_method="heuristic",
        )
        kwargs: dict[str, Any] = {"smoothing_level": hw["alpha"], "smoothing_seasonal": hw["gamma"]}
        if hw["trend"]:
            kwargs["smoothing_trend"] = hw["beta"]
            if hw["phi"] < 1.0:
                kwargs["damping_trend"] = hw["phi"]
        p = model.fit(optimized=False, **kwargs).params
    out = dict(hw)
    out["l0"] = float(p["initial_level"])
    out["b0"] = float(p["initial_trend"]) if hw["trend"] else 0.0
    out["s0"] = [float(v) for v in np.asarray(p["initial_seasons"], dtype=float)]
    return out


def holt_winters_filter(y: np.ndarray, hw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Level, trend and seasonal states after each reading (additive, optionally damped).

    A missing reading is replaced by its one-step forecast, so gaps carry the state forward.
    ``season[t]`` is the seasonal term used at time t (the first m entries are the initial ones).
    """
    a, b, g, phi, m = hw["alpha"], hw["beta"], hw["gamma"], hw["phi"], hw["m"]
    n = len(y)
    level, trend = np.empty(n), np.empty(n)
    season = list(hw["s0"]) + [0.0] * n
    lv, tr = hw["l0"], hw["b0"]
    for t in range(n):
        st = season[t]
        obs = y[t]
        if obs != obs:  # NaN: take the forecast
            obs = lv + phi * tr + st
        new_l = a * (obs - st) + (1 - a) * (lv + phi * tr)
        new_b = b * (new_l - lv) + (1 - b) * phi * tr
        season[t + m] = g * (obs - lv - phi * tr) + (1 - g) * st
        lv, tr = new_l, new_b
        level[t], trend[t] = lv, tr
    return level, trend, np.asarray(season)


def hw_forecast(
    hw: dict[str, Any], level: np.ndarray, trend: np.ndarray, season: np.ndarray, origin: int, k: int
) -> np.ndarray:
    """Forecast positions origin..origin+k-1 from the state after reading origin-1."""
    m, phi = hw["m"], hw["phi"]
    steps = np.arange(1, k + 1)
    damp = np.cumsum(phi**steps) if phi < 1.0 else steps.astype(float)
    if origin == 0:
        lv, tr = hw["l0"], hw["b0"]
    else:
        lv, tr = level[origin - 1], trend[origin - 1]
    pos = origin + steps - 1
    seasonal = season[pos - m * ((steps - 1) // m)]
    return np.asarray(lv + damp * tr + seasonal, dtype=float)


# ----- the standard run -----------------------------------------------------------------------------


@dataclass
class ForecastSetup:
    """Target, horizon and known-ahead columns of a forecast run, checked against the data."""

    target: str
    y: pd.Series
    horizon: int
    exog: pd.DataFrame
    warnings: list[str]


def setup(prep: Prepared, spec: RunSpec) -> ForecastSetup:
    if not spec.target:
        raise AnalyticsInputError("a forecast needs a target: the column to forecast (for example Usage_kWh)")
    target = resolve_column(prep.frame, spec.target)
    if target in constant_columns(prep.frame):
        value = prep.frame[target].dropna().iloc[0]
        raise AnalyticsInputError(f"{target} never changes (always {value:g}): there is nothing to forecast")
    horizon = spec.horizon or prep.steps_per_day
    if horizon < 1:
        raise AnalyticsInputError("the forecast horizon must be at least one step")
    warnings: list[str] = []
    exog_cols: list[str] = []
    for name in spec.features or []:
        col = resolve_column(prep.frame, name, "feature")
        if col == target:
            continue
        if is_calendar_determined(prep.frame[col], prep.timezone):
            exog_cols.append(col)
        else:
            warnings.append(
                f"{col} was not used: it is not known ahead (it is not a fixed function of the time of day "
                f"and weekday), so a forecast cannot rely on it"
            )
    return ForecastSetup(target, prep.frame[target], horizon, prep.frame[exog_cols], warnings)


def exog_maps(exog: pd.DataFrame, timezone: str = "UTC") -> dict[str, dict[int, float]]:
    keys = calendar_key(pd.DatetimeIndex(exog.index), timezone)
    out: dict[str, dict[int, float]] = {}
    for col in exog.columns:
        s = pd.Series(exog[col].to_numpy(dtype=float), index=keys).dropna()
        first = s.groupby(level=0).first()
        out[str(col)] = {int(k): float(v) for k, v in zip(first.index, first.to_numpy(), strict=True)}
    return out


def new_model(name: str, params: dict[str, Any], fs: ForecastSetup, prep: Prepared, seed: int) -> ForecastModel:
    return ForecastModel(
        model_name=name,
        params=params,
        target=fs.target,
        step=prep.step,
        horizon=fs.horizon,
        steps_per_day=prep.steps_per_day,
        exog=list(fs.exog.columns),
        exog_maps=exog_maps(fs.exog, prep.timezone),
        seed=seed,
        timezone=prep.timezone,
    )


def holdout_size(n: int, horizon: int, min_train: int) -> int:
    """Last 20 % rounded to whole horizons (at least one), leaving enough history to train on."""
    blocks = max(1, round(0.2 * n / horizon))
    while blocks > 1 and n - blocks * horizon < min_train:
        blocks -= 1
    return blocks * horizon


def check_length(model: ForecastModel, n: int, prep: Prepared) -> None:
    need = model.min_train() + model.horizon
    if n < need:
        what = horizon_phrase(model.horizon, prep.step)
        title = {"seasonal_naive": "seasonal naive", "holt_winters": "Holt-Winters"}.get(
            model.model_name, "gradient boosting"
        )
        raise AnalyticsInputError(
            f"need at least {describe_span(need * prep.step)} of {describe_step(prep.step)} data for {what} "
            f"with {title}; this data set has {describe_span(n * prep.step)}"
        )


def run_forecast(
    prep: Prepared, spec: RunSpec, model_name: str, params: dict[str, Any], progress: ProgressFn, seed: int = 0
) -> RunOutput:
    fs = setup(prep, spec)
    model = new_model(model_name, params, fs, prep, seed)
    n = len(fs.y)
    check_length(model, n, prep)
    n_test = holdout_size(n, fs.horizon, model.min_train())
    start = n - n_test
    progress(10, f"fitting {model_name.replace('_', ' ')} on {describe_span(start * prep.step)} of history")
    model.fit(fs.y.iloc[:start], fs.exog.iloc[:start])
    progress(50, f"testing on the last {describe_span(n_test * prep.step)}")
    predicted = model.predict_from(fs.y, fs.exog, start)
    naive = new_model("seasonal_naive", {"season": "day"}, fs, prep, seed).predict_from(fs.y, fs.exog, start)
    progress(70, "refitting on all data for the forecast")
    final = model
    if model_name != "seasonal_naive":
        final = new_model(model_name, params, fs, prep, seed)
        final.lags = model.lags
        final.fit(fs.y, fs.exog)
    return finish(final, fs, prep, start, predicted, naive, progress, list(prep.warnings) + fs.warnings)


def finish(
    model: ForecastModel,
    fs: ForecastSetup,
    prep: Prepared,
    start: int,
    predicted: np.ndarray,
    naive: np.ndarray,
    progress: ProgressFn,
    warnings: list[str],
    extra_metrics: dict[str, float] | None = None,
    fit_interval: bool = True,
) -> RunOutput:
    """Metrics, interval, future forecast, predictions frame, charts and summary of a forecast."""
    y = fs.y
    actual = y.to_numpy(dtype=float)[start:]
    resid = actual - predicted
    ok = np.isfinite(resid)
    if fit_interval and ok.sum() >= 5:
        q = np.quantile(resid[ok], INTERVAL)
        model.residual_q = (float(q[0]), float(q[1]))
    metrics, zeros = regression_metrics(actual, predicted)
    naive_metrics, _ = regression_metrics(actual, naive)
    metrics["mae_seasonal_naive"] = naive_metrics["mae"]
    if naive_metrics["mae"] > 0:
        metrics["improvement_vs_seasonal_naive_pct"] = (1 - metrics["mae"] / naive_metrics["mae"]) * 100.0
    lower, upper = predicted + model.residual_q[0], predicted + model.residual_q[1]
    inside = (actual >= lower) & (actual <= upper)
    metrics["interval_coverage"] = float(np.mean(inside[ok])) if ok.any() else float("nan")
    metrics["n_train"] = float(start)
    metrics["n_test"] = float(len(actual))
    metrics["mape_zero_actuals_ignored"] = float(zeros)
    metrics.update(extra_metrics or {})
    if zeros:
        warnings.append(f"MAPE ignores {zeros} readings where {fs.target} was exactly 0")

    progress(85, "forecasting the next horizon")
    future = model.future(y, fs.exog)
    test_index = y.index[start:]
    held = pd.DataFrame(
        {"actual": actual, "predicted": predicted, "lower": lower, "upper": upper, "part": "test"},
        index=test_index,
    )
    ahead = pd.DataFrame(
        {
            "actual": np.nan,
            "predicted": future.to_numpy(),
            "lower": future.to_numpy() + model.residual_q[0],
            "upper": future.to_numpy() + model.residual_q[1],
            "part": "forecast",
        },
        index=future.index,
    )
    predictions = pd.concat([held, ahead])
    predictions.index.name = "ts"

    context_start = max(0, start - 2 * model.horizon)
    chart = charts.timeseries(
        [
            charts.series("actual", y.iloc[context_start:]),
            charts.series("predicted", predictions["predicted"]),
            charts.series("seasonal naive", pd.Series(naive, index=test_index)),
        ],
        bands=[charts.band("interval", predictions["lower"], predictions["upper"])],
        unit=unit_of(fs.target),
        forecast_start=charts.iso(future.index[0]),
        test_start=charts.iso(test_index[0]),
    )
    summary = forecast_summary(model, fs, prep, metrics, future)
    return RunOutput(
        task="forecast",
        model_name=model.model_name,
        hyperparameters=dict(model.params),
        metrics={k: float(v) for k, v in metrics.items()},
        predictions=predictions,
        charts=chart,
        summary=summary,
        model=model,
        warnings=warnings,
    )


def forecast_summary(
    model: ForecastModel, fs: ForecastSetup, prep: Prepared, metrics: dict[str, float], future: pd.Series
) -> str:
    unit = unit_of(fs.target)
    title = {
        "seasonal_naive": "Seasonal naive",
        "holt_winters": "Holt-Winters",
        "gradient_boosting": "Gradient boosting",
    }[model.model_name]
    test_span = describe_span(int(metrics["n_test"]) * prep.step)
    parts = [
        f"{title} forecasts {fs.target} ({horizon_phrase(model.horizon, prep.step)}) with a typical error of "
        f"{fmt(metrics['mae'], unit)} (MAE) on the last {test_span}, which it never saw while fitting."
    ]
    gain = metrics.get("improvement_vs_seasonal_naive_pct")
    if model.model_name != "seasonal_naive" and gain is not None and np.isfinite(gain):
        if gain > 0:
            parts.append(
                f"That is {gain:.0f} % better than repeating the previous day (seasonal naive, "
                f"MAE {fmt(metrics['mae_seasonal_naive'], unit)})."
            )
        else:
            parts.append(
                f"It does not beat repeating the previous day (seasonal naive, MAE "
                f"{fmt(metrics['mae_seasonal_naive'], unit)}); prefer the simpler forecast."
            )
    if np.isfinite(metrics.get("interval_coverage", float("nan"))):
        parts.append(f"{metrics['interval_coverage'] * 100:.0f} % of actual values fell inside the 80 % interval.")
    if len(future) and future.notna().any():
        peak = future.idxmax()
        parts.append(
            f"For the next {describe_span(len(future) * prep.step)} it expects a peak of "
            f"{fmt(float(future.max()), unit)} at {local_time(peak, prep.timezone, '%a %H:%M')}."
        )
    return " ".join(parts)


def apply_forecast(model: ForecastModel, prep: Prepared, progress: ProgressFn) -> RunOutput:
    """Scoring run: forecasts over the new data (from the model's own origins) and the next horizon."""
    missing = [c for c in [model.target, *model.exog] if c not in prep.frame.columns]
    if missing:
        raise AnalyticsInputError(
            f"the new data set lacks the column{'s' if len(missing) > 1 else ''} the model needs: {', '.join(missing)}"
        )
    if prep.step != model.step:
        raise AnalyticsInputError(
            f"the model was trained on {describe_step(model.step)} data; this data set is {describe_step(prep.step)}"
        )
    model = replace(model)  # a scoring run never changes the saved model
    y = prep.frame[model.target]
    exog = prep.frame[model.exog]
    fs = ForecastSetup(model.target, y, model.horizon, exog, [])
    n = len(y)
    if model.model_name == "holt_winters":
        assert model.hw is not None
        if n < 2 * model.hw["m"] + model.horizon:
            raise AnalyticsInputError(
                f"need at least {describe_span((2 * model.hw['m'] + model.horizon) * prep.step)} of data to "
                f"apply this Holt-Winters model; this data set has {describe_span(n * prep.step)}"
            )
        model.hw = hw_reinitialise(model.hw, y)
        start = 2 * model.hw["m"]
    else:
        start = model.naive_lag() if model.model_name == "seasonal_naive" else model.horizon
        if n <= start:
            raise AnalyticsInputError(
                f"need more than {describe_span(start * prep.step)} of data to apply this model; "
                f"this data set has {describe_span(n * prep.step)}"
            )
    progress(30, "forecasting over the new data")
    predicted = model.predict_from(y, exog, start)
    naive_model = ForecastModel(
        "seasonal_naive", {"season": "day"}, model.target, model.step, model.horizon, model.steps_per_day
    )
    naive = naive_model.predict_from(y, exog, start)
    return finish(model, fs, prep, start, predicted, naive, progress, list(prep.warnings), fit_interval=False)
