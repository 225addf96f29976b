"""Energy baseline: consumption explained by its drivers and the calendar, and the savings against it.

The model learns the *fit* period (before ``savings_from``, by default the first 75 %) and predicts the
*report* period: what the plant would have used had nothing changed. Savings = predicted - actual,
summed over the report period. Accuracy (R2, MAE) is measured on the last 20 % of the fit period, held
out from a first fit; the model used for the savings is then refitted on the whole fit period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from factoryops.analytics.ml import charts
from factoryops.analytics.ml.core import (
    AnalyticsInputError,
    ProgressFn,
    RunOutput,
    RunSpec,
    describe_span,
    local_date,
    local_time,
)
from factoryops.analytics.ml.prep import Prepared, calendar_features, constant_columns, resolve_column
from factoryops.analytics.ml.scoring import fmt, regression_metrics, unit_of

MIN_FIT_ROWS = 48
TITLES = {
    "linear_regression": "Linear regression",
    "random_forest": "Random forest",
    "gradient_boosting": "Gradient boosting",
}
CALENDAR = ["cal_hour", "cal_weekday", "cal_weekend", "cal_shift"]


def make_estimator(model_name: str, params: dict[str, Any], features: list[str], seed: int) -> Any:
    if model_name == "linear_regression":
        cats = ["cal_hour_int", "cal_weekday", "cal_shift"]
        nums = [f for f in features if f not in cats]
        pre = ColumnTransformer(
            [("cal", OneHotEncoder(handle_unknown="ignore"), cats), ("num", StandardScaler(), nums)]
        )
        return make_pipeline(pre, Ridge(alpha=float(params["alpha"])))
    if model_name == "random_forest":
        return RandomForestRegressor(
            n_estimators=int(params["n_estimators"]),
            max_depth=int(params["max_depth"]),
            min_samples_leaf=int(params["min_samples_leaf"]),
            max_features=float(params["max_features"]),
            random_state=seed,
            n_jobs=1,
        )
    return HistGradientBoostingRegressor(
        learning_rate=float(params["learning_rate"]),
        max_iter=int(params["max_iter"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        min_samples_leaf=int(params["min_samples_leaf"]),
        l2_regularization=float(params["l2_regularization"]),
        early_stopping=False,
        random_state=seed,
    )


@dataclass
class BaselineModel:
    """A fitted baseline (what RunOutput.model holds); pickles with joblib."""

    model_name: str
    params: dict[str, Any]
    target: str
    drivers: list[str]
    step: pd.Timedelta
    estimator: Any = None
    seed: int = 0
    fitted_until: str = ""
    task: str = "baseline"
    feature_names: list[str] = field(default_factory=list)
    timezone: str = "UTC"  # the factory's: hour, weekday, weekend and shift on its clock

    def design(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Drivers plus hour, weekday, weekend and shift (linear regression gets them one-hot encoded)."""
        x = frame[self.drivers].copy()
        cal = calendar_features(pd.DatetimeIndex(frame.index), self.timezone)
        x = pd.concat([x, cal], axis=1)
        if self.model_name == "linear_regression":
            x["cal_hour_int"] = np.floor(x["cal_hour"]).astype(int)
            x["cal_weekday"] = x["cal_weekday"].astype(int)
            x["cal_shift"] = x["cal_shift"].astype(int)
        self.feature_names = list(x.columns)
        return x

    def fit(self, frame: pd.DataFrame) -> None:
        x, y = self.rows(frame)
        if len(y) < MIN_FIT_ROWS:
            raise AnalyticsInputError(
                f"need at least {MIN_FIT_ROWS} complete readings of {self.target} and its drivers to fit a baseline; "
                f"the fit period has {len(y)}"
            )
        self.estimator = make_estimator(self.model_name, self.params, list(x.columns), self.seed)
        self.estimator.fit(x, y)

    def rows(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
        """Complete rows: linear regression and random forest cannot take missing drivers."""
        x = self.design(frame)
        y = frame[self.target]
        ok = y.notna() & x.notna().all(axis=1)
        return x[ok], y[ok]

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        x = self.design(frame)
        ok = x.notna().all(axis=1).to_numpy()
        out = np.full(len(x), np.nan)
        if ok.any():
            out[ok] = self.estimator.predict(x[ok])
        return pd.Series(out, index=frame.index)


@dataclass
class BaselineSetup:
    target: str
    drivers: list[str]
    split: pd.Timestamp
    warnings: list[str]


def setup(prep: Prepared, spec: RunSpec) -> BaselineSetup:
    if not spec.target:
        raise AnalyticsInputError("a baseline needs a target: the consumption to explain (for example Usage_kWh)")
    target = resolve_column(prep.frame, spec.target)
    constant = set(constant_columns(prep.frame))
    if target in constant:
        raise AnalyticsInputError(f"{target} never changes: there is nothing to explain")
    warnings: list[str] = []
    if spec.features is not None:
        drivers = [resolve_column(prep.frame, f, "feature") for f in spec.features]
        drivers = [d for d in dict.fromkeys(drivers) if d != target]
    else:
        drivers = [c for c in prep.frame.columns if c != target]
    dropped = [d for d in drivers if d in constant]
    if dropped:
        warnings.append(f"left out because they never change: {', '.join(dropped)}")
    drivers = [d for d in drivers if d not in constant]
    if not drivers:
        warnings.append("no drivers given: the baseline uses the calendar only (hour, weekday, shift)")
    index = prep.frame.index
    if spec.savings_from is not None:
        split = pd.Timestamp(spec.savings_from)
        split = split.tz_localize("UTC") if split.tzinfo is None else split.tz_convert("UTC")
        if split <= index[0] or split > index[-1]:
            raise AnalyticsInputError(
                f"the savings start {local_time(split, prep.timezone, '%Y-%m-%d %H:%M')} is outside the data "
                f"({local_date(index[0], prep.timezone, '%Y-%m-%d')} to "
                f"{local_date(index[-1], prep.timezone, '%Y-%m-%d')}); choose a date inside it"
            )
    else:
        split = index[int(len(index) * 0.75)]
    return BaselineSetup(target, drivers, split, warnings)


def run_baseline(
    prep: Prepared, spec: RunSpec, model_name: str, params: dict[str, Any], progress: ProgressFn, seed: int = 0
) -> RunOutput:
    bs = setup(prep, spec)
    frame = prep.frame
    fit_part = frame[frame.index < bs.split]
    n_fit = len(fit_part)
    if n_fit < MIN_FIT_ROWS * 2:
        raise AnalyticsInputError(
            f"the fit period (before {local_time(bs.split, prep.timezone, '%Y-%m-%d %H:%M')}) has only "
            f"{describe_span(n_fit * prep.step)} of data; a baseline needs at least "
            f"{describe_span(MIN_FIT_ROWS * 2 * prep.step)}"
        )
    cut = fit_part.index[int(n_fit * 0.8)]
    model = BaselineModel(model_name, dict(params), bs.target, bs.drivers, prep.step, seed=seed, timezone=prep.timezone)
    progress(10, f"fitting {TITLES[model_name].lower()} on the fit period")
    model.fit(fit_part[fit_part.index < cut])
    progress(40, "checking accuracy on the held-out end of the fit period")
    valid = fit_part[fit_part.index >= cut]
    v_pred = model.predict(valid)
    metrics, _ = regression_metrics(valid[bs.target].to_numpy(), v_pred.to_numpy())
    progress(60, "refitting on the whole fit period")
    model.fit(fit_part)
    model.fitted_until = charts.iso(bs.split)
    return finish(model, prep, bs.split, metrics, progress, list(prep.warnings) + bs.warnings)


def finish(
    model: BaselineModel,
    prep: Prepared,
    split: pd.Timestamp | datetime | None,
    metrics: dict[str, float],
    progress: ProgressFn,
    warnings: list[str],
) -> RunOutput:
    """Predictions over all data, savings over the report period, charts and summary."""
    frame = prep.frame
    progress(80, "predicting the baseline and the savings")
    predicted = model.predict(frame)
    actual = frame[model.target]
    report = np.ones(len(frame), dtype=bool) if split is None else (frame.index >= split)
    period = np.where(report, "report", "fit")
    both = report & actual.notna().to_numpy() & predicted.notna().to_numpy()
    savings = float(np.sum(predicted.to_numpy()[both] - actual.to_numpy()[both]))
    expected = float(np.sum(predicted.to_numpy()[both]))
    metrics = dict(metrics)
    metrics["savings_kwh"] = savings
    metrics["savings_pct"] = savings / expected * 100.0 if expected else float("nan")
    metrics["report_expected"] = expected
    metrics["report_actual"] = float(np.sum(actual.to_numpy()[both]))
    metrics["n_report"] = float(both.sum())
    if not both.any():
        warnings.append("the report period has no complete readings: savings could not be measured")

    predictions = pd.DataFrame({"actual": actual, "predicted": predicted, "period": period}, index=frame.index)
    predictions.index.name = "ts"
    unit = unit_of(model.target)
    rep = predictions[report]
    cumulative = (rep["predicted"] - rep["actual"]).fillna(0.0).cumsum()
    chart = charts.timeseries(
        [charts.series("actual", actual), charts.series("baseline", predicted)],
        unit=unit,
        report_start=charts.iso(rep.index[0]) if len(rep) else None,
        savings={
            "total": charts.num(savings),
            "pct": charts.num(metrics["savings_pct"]),
            "unit": unit,
            "expected": charts.num(expected),
            "actual": charts.num(metrics["report_actual"]),
            "cumulative": charts.series("cumulative savings", cumulative)["points"],
        },
    )
    return RunOutput(
        task="baseline",
        model_name=model.model_name,
        hyperparameters=dict(model.params),
        metrics={k: float(v) for k, v in metrics.items()},
        predictions=predictions,
        charts=chart,
        summary=summary(model, metrics, rep, unit, prep.timezone),
        model=model,
        warnings=warnings,
    )


def summary(model: BaselineModel, metrics: dict[str, float], rep: pd.DataFrame, unit: str, timezone: str) -> str:
    drivers = ", ".join(model.drivers[:4]) + (" and more" if len(model.drivers) > 4 else "")
    parts = [
        f"{TITLES[model.model_name]} explains {model.target} from "
        + (f"{drivers} and the calendar" if model.drivers else "the calendar (hour, weekday, shift)")
        + (
            f" (R2 {metrics['r2']:.2f}, typical error {fmt(metrics['mae'], unit)} on held-out data)."
            if "r2" in metrics and np.isfinite(metrics["r2"])
            else "."
        )
    ]
    if len(rep):
        s, pct = metrics["savings_kwh"], metrics["savings_pct"]
        when = f"From {local_date(rep.index[0], timezone)} to {local_date(rep.index[-1], timezone)}"
        if s >= 0:
            parts.append(f"{when} the plant used {fmt(s, unit)} less than the baseline expected ({pct:.1f} % saved).")
        else:
            parts.append(f"{when} the plant used {fmt(-s, unit)} more than the baseline expected ({-pct:.1f} % over).")
        if "r2" in metrics and np.isfinite(metrics.get("mae", np.nan)) and abs(pct) < 2:
            parts.append("A difference this small is within the model's error: treat it as no change.")
    return " ".join(parts)


def apply_baseline(model: BaselineModel, prep: Prepared, progress: ProgressFn) -> RunOutput:
    """Scoring run: the saved baseline on new data; every new reading is in the report period."""
    missing = [c for c in [model.target, *model.drivers] if c not in prep.frame.columns]
    if missing:
        raise AnalyticsInputError(
            f"the new data set lacks the column{'s' if len(missing) > 1 else ''} the model needs: {', '.join(missing)}"
        )
    progress(10, "predicting the baseline for the new data")
    m, _ = regression_metrics(prep.frame[model.target].to_numpy(), model.predict(prep.frame).to_numpy())
    metrics = {"mae": m["mae"], "r2": m["r2"], "mape": m["mape"]}
    return finish(model, prep, None, metrics, progress, list(prep.warnings))
