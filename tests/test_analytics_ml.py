"""The analytics models and the co-pilot on slices of real data (steel mill meter, NAB machine temperature).

Pure computation: frames in, results out. The data sets are read from ``FACTORYOPS_DATASETS``, else
``../shared/datasets`` next to the repository, else ``/work/shared/datasets`` (CI clones elsewhere).
"""

from __future__ import annotations

import io
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from factoryops.analytics.ml import (
    MODELS,
    AnalyticsInputError,
    RunOutput,
    RunSpec,
    apply_model,
    run_copilot,
    run_standard,
    validate_params,
)
from factoryops.analytics.ml.copilot import folds
from factoryops.analytics.ml.forecast import ForecastModel, holdout_size
from factoryops.analytics.ml.prep import calendar_features, is_calendar_determined

pytestmark = pytest.mark.nodb  # pure model code: no metadata database


def _datasets_dir() -> Path:
    env = os.environ.get("FACTORYOPS_DATASETS")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[1].parent / "shared" / "datasets", Path("/work/shared/datasets")]
    return next((c for c in candidates if c.exists()), candidates[0])


DATASETS = _datasets_dir()
STEEL = DATASETS / "steel_industry_energy_2018.csv"
NAB = DATASETS / "nab" / "machine_temperature_system_failure.csv"
NAB_LABELS = DATASETS / "nab" / "machine_temperature_system_failure.labels.json"
DAY = 96  # 15-minute steps per day
TARGET = "meter-1/Usage_kWh"
FAILURE_4 = (pd.Timestamp("2014-02-07 14:55", tz="UTC"), pd.Timestamp("2014-02-09 14:05", tz="UTC"))


def quiet(percent: int, message: str) -> None:
    assert 0 <= percent <= 100 and message


@pytest.fixture(scope="module")
def steel() -> pd.DataFrame:
    if not STEEL.exists():
        pytest.skip(f"steel data set not found at {STEEL} (set FACTORYOPS_DATASETS)")
    df = pd.read_csv(STEEL)
    ts = pd.to_datetime(df.pop("date"), format="%d/%m/%Y %H:%M")
    # the midnight row carries the date of the day it closes
    ts = ts.where(~((ts.dt.hour == 0) & (ts.dt.minute == 0)), ts + pd.Timedelta(days=1))
    df.index = pd.DatetimeIndex(ts, tz="UTC", name="ts")
    df = df.select_dtypes("number").astype(float)
    return df.rename(columns={c: f"meter-1/{c}" for c in df.columns})


@pytest.fixture(scope="module")
def nab() -> pd.DataFrame:
    if not NAB.exists():
        pytest.skip(f"NAB data set not found at {NAB} (set FACTORYOPS_DATASETS)")
    df = pd.read_csv(NAB)
    df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("timestamp")), tz="UTC", name="ts")
    df = df.sort_index()
    df.columns = ["machine-7/temperature_C"]
    df["label"] = 0
    for a, b in json.loads(NAB_LABELS.read_text())["anomaly_windows"]:
        df.loc[pd.Timestamp(a, tz="UTC") : pd.Timestamp(b, tz="UTC"), "label"] = 1
    return df


def three_weeks(steel: pd.DataFrame) -> pd.DataFrame:
    return steel.iloc[7 * DAY : 28 * DAY]


def assert_charts_ok(out: RunOutput) -> None:
    text = json.dumps(out.charts, allow_nan=False)  # JSON-ready: no NaN, no numpy types
    assert len(text) < 600_000
    for s in out.charts.get("series", []):
        assert 0 < len(s["points"]) <= 2000


# ----- catalogue -----------------------------------------------------------------------------------


def test_catalogue_lists_every_model_with_valid_defaults() -> None:
    assert set(MODELS["anomaly"]) == {"isolation_forest", "local_outlier_factor", "robust_zscore"}
    assert set(MODELS["forecast"]) == {"seasonal_naive", "holt_winters", "gradient_boosting"}
    assert set(MODELS["baseline"]) == {"linear_regression", "random_forest", "gradient_boosting"}
    assert set(MODELS["profile"]) == {"kmeans"}
    for models in MODELS.values():
        for info in models.values():
            assert validate_params(info, {}) == {k: p.default for k, p in info.params.items()}
    with pytest.raises(AnalyticsInputError, match="no setting depth"):
        validate_params(MODELS["forecast"]["gradient_boosting"], {"depth": 3})
    with pytest.raises(AnalyticsInputError, match=r"learning_rate must be between 0\.01 and 0\.3"):
        validate_params(MODELS["forecast"]["gradient_boosting"], {"learning_rate": 5})
    with pytest.raises(AnalyticsInputError, match="season must be one of day, week"):
        validate_params(MODELS["forecast"]["seasonal_naive"], {"season": "month"})


# ----- forecast ------------------------------------------------------------------------------------


def test_forecast_each_model_and_boosting_beats_seasonal_naive(steel: pd.DataFrame) -> None:
    data = three_weeks(steel)
    results = {}
    for name in MODELS["forecast"]:
        out = run_standard(data, RunSpec("forecast", name, target="Usage_kWh"), quiet)
        results[name] = out
        m = out.metrics
        assert {"mae", "mape", "r2", "mae_seasonal_naive"} <= set(m)
        assert np.isfinite(m["mae"]) and m["mae"] > 0
        test = out.predictions[out.predictions["part"] == "test"]
        ahead = out.predictions[out.predictions["part"] == "forecast"]
        assert len(ahead) == DAY and ahead["actual"].isna().all() and ahead["predicted"].notna().all()
        assert ahead.index[0] == data.index[-1] + pd.Timedelta(minutes=15)
        assert len(test) % DAY == 0 and test.index[-1] == data.index[-1]
        assert (ahead["lower"] <= ahead["predicted"]).all() and (ahead["predicted"] <= ahead["upper"]).all()
        assert out.summary and out.charts["kind"] == "timeseries" and out.charts["bands"]
        assert_charts_ok(out)
    gb, naive = results["gradient_boosting"].metrics, results["seasonal_naive"].metrics
    assert naive["mae"] == pytest.approx(naive["mae_seasonal_naive"])
    assert gb["mae"] < 0.9 * gb["mae_seasonal_naive"], gb
    assert "better than repeating the previous day" in results["gradient_boosting"].summary


def test_forecast_never_uses_the_future(steel: pd.DataFrame) -> None:
    data = three_weeks(steel)
    y = data[TARGET]
    n = len(y)
    start = n - holdout_size(n, DAY, 3 * DAY)
    assert start % 1 == 0 and n - start >= DAY
    for fold_start in folds(start, DAY, 2 * DAY):
        assert 2 * DAY <= fold_start < start  # every training set ends before its test block
    out = run_standard(data, RunSpec("forecast", "gradient_boosting", target="Usage_kWh"), quiet)
    test = out.predictions[out.predictions["part"] == "test"]
    assert test.index.min() == y.index[int(out.metrics["n_train"])]  # trained only on what came before
    exog = data[[]]
    limit = threadpool_limits(limits=1)  # as the entry points do: OpenMP spinning on 2 shared cores is slow
    for name, params in (
        ("seasonal_naive", {"season": "day"}),
        ("holt_winters", {"trend": "add", "damped": False, "season": "day"}),
        ("gradient_boosting", validate_params(MODELS["forecast"]["gradient_boosting"], {"max_iter": 60})),
    ):
        model = ForecastModel(name, params, TARGET, pd.Timedelta(minutes=15), DAY, DAY)
        model.fit(y.iloc[:start], exog.iloc[:start])
        before = model.predict_from(y, exog, start)
        # scramble everything after the middle of the first test block: that block's forecast must not move
        changed = y.copy()
        changed.iloc[start + DAY // 2 :] = 1e6
        after = model.predict_from(changed, exog, start)
        np.testing.assert_allclose(after[:DAY], before[:DAY], err_msg=name)
        assert not np.allclose(after[2 * DAY :], before[2 * DAY :]), name  # later blocks do see it
    limit.restore_original_limits()


def test_forecast_input_errors_name_the_problem(steel: pd.DataFrame) -> None:
    nine_hours = steel.iloc[: 9 * 4]
    with pytest.raises(AnalyticsInputError) as err:
        run_standard(nine_hours, RunSpec("forecast", "seasonal_naive", target="Usage_kWh"), quiet)
    assert str(err.value) == (
        "need at least 2 days of 15-minute data for a day-ahead forecast with seasonal naive; this data set has 9 hours"
    )
    with pytest.raises(AnalyticsInputError, match="'Power_kW' is not in the data set"):
        run_standard(steel.iloc[:1000], RunSpec("forecast", "seasonal_naive", target="Power_kW"), quiet)
    with pytest.raises(AnalyticsInputError, match="needs a target"):
        run_standard(steel.iloc[:1000], RunSpec("forecast", "holt_winters"), quiet)
    flat = steel.iloc[: 5 * DAY].copy()
    flat[TARGET] = 7.0
    with pytest.raises(AnalyticsInputError, match="never changes"):
        run_standard(flat, RunSpec("forecast", "seasonal_naive", target="Usage_kWh"), quiet)
    with pytest.raises(AnalyticsInputError, match="unknown model 'prophet'"):
        run_standard(flat, RunSpec("forecast", "prophet", target="Usage_kWh"), quiet)


def test_forecast_uses_only_known_ahead_features(steel: pd.DataFrame) -> None:
    data = three_weeks(steel)
    spec = RunSpec(
        "forecast",
        "gradient_boosting",
        target="Usage_kWh",
        features=["NSM", "Lagging_Current_Reactive_Power_kVarh"],
        params={"max_iter": 80},
    )
    out = run_standard(data, spec, quiet)
    assert out.model.exog == ["meter-1/NSM"]  # seconds since midnight is a function of the clock
    assert any("Lagging_Current_Reactive_Power_kVarh was not used: it is not known ahead" in w for w in out.warnings)


# ----- anomaly -------------------------------------------------------------------------------------


def test_anomaly_each_model_flags_the_fourth_nab_failure(nab: pd.DataFrame) -> None:
    data = nab.loc["2014-02-01":"2014-02-14"]
    for name in MODELS["anomaly"]:
        out = run_standard(data, RunSpec("anomaly", name), quiet)
        p = out.predictions
        assert {"value", "score", "anomaly", "label"} <= set(p.columns)
        inside = p.loc[FAILURE_4[0] : FAILURE_4[1], "anomaly"]
        assert inside.any(), f"{name} missed the failure of 8 Feb 2014"
        m = out.metrics
        assert m["window_recall"] == 1.0 and m["label_windows"] == 1
        assert 0 < m["precision"] <= 1 and 0 < m["recall"] <= 1
        assert m["n_anomalies"] == p["anomaly"].sum() and m["n_windows"] == len(out.charts["windows"])
        flagged = out.charts["markers"][0]["points"]
        assert len(flagged) == int(m["n_anomalies"])  # markers are never downsampled
        assert "labelled episodes were caught" in out.summary
        assert_charts_ok(out)
    z = run_standard(data, RunSpec("anomaly", "robust_zscore"), quiet).metrics
    assert z["precision"] > 0.5 and z["false_positive_windows"] <= 8


def test_anomaly_handles_gaps_and_several_series(nab: pd.DataFrame, steel: pd.DataFrame) -> None:
    data = nab.loc["2014-02-01":"2014-02-10"].drop(columns="label").copy()
    data.iloc[100:102, 0] = np.nan  # 10 minutes: interpolated
    data = data.drop(data.index[1000:1300])  # 25 hours: left out
    out = run_standard(data, RunSpec("anomaly", "isolation_forest", target="temperature_C"), quiet)
    assert any("gap" in w and "left out" in w for w in out.warnings)
    hole = out.predictions.iloc[1000:1300]
    assert hole["value"].isna().all() and not hole["anomaly"].any()
    assert out.predictions["value"].iloc[100:102].notna().all()
    both = steel.iloc[: 10 * DAY][[TARGET, "meter-1/Lagging_Current_Reactive_Power_kVarh"]]
    out = run_standard(both, RunSpec("anomaly", "local_outlier_factor"), quiet)
    assert {TARGET, "meter-1/Lagging_Current_Reactive_Power_kVarh", "score", "anomaly"} <= set(out.predictions)
    assert len(out.charts["series"]) == 2


# ----- baseline ------------------------------------------------------------------------------------


def test_baseline_each_model_measures_a_ten_percent_saving(steel: pd.DataFrame) -> None:
    data = steel.iloc[7 * DAY : 35 * DAY].copy()
    savings_from = data.index[21 * DAY]
    data.loc[data.index >= savings_from, TARGET] *= 0.9  # the plant cut its use by 10 % from that day on
    drivers = ["Lagging_Current_Reactive_Power_kVarh", "Leading_Current_Reactive_Power_kVarh"]
    for name in MODELS["baseline"]:
        spec = RunSpec("baseline", name, target="Usage_kWh", features=drivers, savings_from=savings_from)
        out = run_standard(data, spec, quiet)
        m = out.metrics
        assert 4 < m["savings_pct"] < 16, (name, m)
        assert m["savings_kwh"] > 0 and m["r2"] > 0.5
        p = out.predictions
        assert set(p["period"]) == {"fit", "report"}
        assert p[p["period"] == "report"].index.min() == savings_from
        assert out.charts["savings"]["unit"] == "kWh" and "less than the baseline expected" in out.summary
        assert_charts_ok(out)


# ----- profile -------------------------------------------------------------------------------------


def test_profile_separates_weekdays_from_weekends(steel: pd.DataFrame) -> None:
    data = steel.iloc[: 8 * 7 * DAY]
    out = run_standard(data, RunSpec("profile", "kmeans", target="Usage_kWh"), quiet)
    ch = out.charts
    assert ch["kind"] == "profiles" and len(ch["x"]) == 24
    assert 2 <= out.metrics["n_clusters"] <= 6 and out.metrics["silhouette"] > 0.2
    labels = [c["label"] for c in ch["curves"]]
    assert any(label.startswith("weekday") for label in labels), labels
    p = out.predictions
    weekend = p[pd.DatetimeIndex(p.index).day_of_week >= 5]
    weekday = p[pd.DatetimeIndex(p.index).day_of_week < 5]
    assert weekend["daily_mean"].mean() < weekday["daily_mean"].mean()
    assert weekend["cluster"].mode()[0] != weekday["cluster"].mode()[0]
    assert len(ch["calendar"]) == len(p) == out.metrics["n_days"]
    fixed = run_standard(data, RunSpec("profile", "kmeans", target="Usage_kWh", params={"n_clusters": 3}), quiet)
    assert fixed.metrics["n_clusters"] == 3
    with pytest.raises(AnalyticsInputError, match="need at least 4 complete days"):
        run_standard(steel.iloc[: 2 * DAY], RunSpec("profile", "kmeans", target="Usage_kWh"), quiet)


# ----- scoring runs --------------------------------------------------------------------------------


def reload(model: object) -> object:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


def test_apply_saved_models_to_later_data(steel: pd.DataFrame, nab: pd.DataFrame) -> None:
    early, later = steel.iloc[: 21 * DAY], steel.iloc[28 * DAY : 42 * DAY]
    fc = run_standard(early, RunSpec("forecast", "gradient_boosting", target="Usage_kWh"), quiet)
    scored = apply_model(reload(fc.model), later, quiet)
    ahead = scored.predictions[scored.predictions["part"] == "forecast"]
    assert ahead.index[0] == later.index[-1] + pd.Timedelta(minutes=15) and len(ahead) == DAY
    assert np.isfinite(scored.metrics["mae"]) and scored.metrics["n_test"] > 10 * DAY
    with pytest.raises(AnalyticsInputError, match="lacks the column the model needs: meter-1/Usage_kWh"):
        apply_model(fc.model, later.drop(columns=[TARGET]), quiet)

    bl = run_standard(early, RunSpec("baseline", "linear_regression", target="Usage_kWh"), quiet)
    scored = apply_model(reload(bl.model), later, quiet)
    assert set(scored.predictions["period"]) == {"report"} and np.isfinite(scored.metrics["savings_pct"])
    with pytest.raises(AnalyticsInputError, match="meter-1/NSM"):
        apply_model(bl.model, later.drop(columns=["meter-1/NSM"]), quiet)

    pr = run_standard(early, RunSpec("profile", "kmeans", target="Usage_kWh"), quiet)
    scored = apply_model(reload(pr.model), later, quiet)
    assert len(scored.predictions) == 14 and set(scored.predictions["cluster"]) <= set(range(6))

    an = run_standard(nab.loc["2014-01-20":"2014-02-01"], RunSpec("anomaly", "isolation_forest"), quiet)
    scored = apply_model(reload(an.model), nab.loc["2014-02-01":"2014-02-14"], quiet)
    assert scored.predictions.loc[FAILURE_4[0] : FAILURE_4[1], "anomaly"].any()
    with pytest.raises(AnalyticsInputError, match="not a saved analytics model"):
        apply_model({"weights": [1, 2]}, later, quiet)


def test_progress_that_raises_cancels_the_run(steel: pd.DataFrame) -> None:
    calls: list[int] = []

    def cancel_after_three(percent: int, message: str) -> None:
        calls.append(percent)
        if len(calls) == 3:
            raise KeyboardInterrupt("cancelled by the operator")

    with pytest.raises(KeyboardInterrupt):
        run_standard(
            three_weeks(steel), RunSpec("forecast", "gradient_boosting", target="Usage_kWh"), cancel_after_three
        )
    assert len(calls) == 3


# ----- times a person reads ------------------------------------------------------------------------


def plant_load() -> pd.DataFrame:
    """16 days of 15-minute load peaking at 05:00 UTC every day (14:00 in Seoul), lower at weekends."""
    idx = pd.date_range("2026-11-09", "2026-11-24 23:45", freq="15min", tz="UTC", name="ts")
    hour = idx.hour + idx.minute / 60
    level = np.where(idx.day_of_week < 5, 1.0, 0.4)
    noise = np.random.default_rng(0).normal(0, 0.05, len(idx))
    return pd.DataFrame({TARGET: 10 + 20 * level * np.exp(-((hour - 5) ** 2) / 2) + noise}, index=idx)


def test_summaries_write_times_in_the_factory_time_zone() -> None:
    load = plant_load()
    spike = load.copy()
    spike.loc["2026-11-21 15:45":"2026-11-21 16:00", TARGET] += 80  # Saturday 15:45 UTC: Sunday 00:45 in Seoul
    savings_from = pd.Timestamp("2026-11-20 15:00", tz="UTC").to_pydatetime()  # 21 Nov 00:00 in Seoul

    utc = run_standard(spike, RunSpec("anomaly", "robust_zscore"), quiet)
    assert "The strongest began 21 Nov 2026 15:45 UTC" in utc.summary
    seoul = run_standard(spike, RunSpec("anomaly", "robust_zscore"), quiet, timezone="Asia/Seoul")
    assert "The strongest began 22 Nov 2026 00:45 KST" in seoul.summary, seoul.summary  # local hour and day
    assert "UTC" not in seoul.summary
    pd.testing.assert_frame_equal(seoul.predictions, utc.predictions)  # only the words change: data stay UTC
    assert seoul.charts == utc.charts and str(seoul.predictions.index.tz) == "UTC"
    scored = apply_model(reload(seoul.model), spike, quiet, timezone="Asia/Seoul")
    assert "The strongest began 22 Nov 2026 00:45 KST" in scored.summary
    copilot = run_copilot(spike, RunSpec("anomaly", None), 20, quiet, timezone="Asia/Seoul")
    assert "The strongest began 22 Nov 2026 00:45 KST" in copilot.summary, copilot.summary

    forecast = run_standard(
        load, RunSpec("forecast", "seasonal_naive", target="Usage_kWh"), quiet, timezone="Asia/Seoul"
    )
    assert "expects a peak of" in forecast.summary and "at Wed 14:00 KST." in forecast.summary, forecast.summary

    spec = RunSpec("baseline", "linear_regression", target="Usage_kWh", savings_from=savings_from)
    assert "From 20 Nov 2026 to 24 Nov 2026 the plant" in run_standard(load, spec, quiet).summary
    baseline = run_standard(load, spec, quiet, timezone="Asia/Seoul")
    assert "From 21 Nov 2026 to 25 Nov 2026 the plant" in baseline.summary, baseline.summary
    late = RunSpec("baseline", "linear_regression", target="Usage_kWh", savings_from=datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(
        AnalyticsInputError, match=r"savings start 2027-01-01 09:00 KST is outside the data \(2026-11-09 "
    ):
        run_standard(load, late, quiet, timezone="Asia/Seoul")

    profile = run_standard(load, RunSpec("profile", "kmeans", target="Usage_kWh"), quiet, timezone="Asia/Seoul")
    assert "peak around 14:00 KST" in profile.summary and "05:00" not in profile.summary, profile.summary
    assert (
        "peak around 05:00 UTC" in run_standard(load, RunSpec("profile", "kmeans", target="Usage_kWh"), quiet).summary
    )

    # summer time, a zone without an abbreviation, and a name the machine does not know
    summer = spike.set_axis(spike.index + pd.Timedelta(days=200))  # 9 Jun 2027 15:45 UTC
    berlin = run_standard(summer, RunSpec("anomaly", "robust_zscore"), quiet, timezone="Europe/Berlin")
    assert "The strongest began 09 Jun 2027 17:45 CEST" in berlin.summary, berlin.summary
    dubai = run_standard(spike, RunSpec("anomaly", "robust_zscore"), quiet, timezone="Asia/Dubai")
    assert "The strongest began 21 Nov 2026 19:45 UTC+04" in dubai.summary, dubai.summary
    unknown = run_standard(spike, RunSpec("anomaly", "robust_zscore"), quiet, timezone="Mars/Olympus")
    assert "The strongest began 21 Nov 2026 15:45 UTC" in unknown.summary
    assert any("time zone 'Mars/Olympus' is unknown" in w for w in unknown.warnings)


def test_calendar_features_follow_the_factory_clock() -> None:
    """Hour, weekday, weekend and shift are the plant's: Friday 16:00 UTC is Saturday 01:00 in Seoul."""
    friday = pd.DatetimeIndex([pd.Timestamp("2026-03-06 16:00", tz="UTC")])
    seoul = calendar_features(friday, "Asia/Seoul").iloc[0]
    assert (seoul.cal_hour, seoul.cal_weekday, seoul.cal_weekend, seoul.cal_shift) == (1.0, 5.0, 1.0, 2.0)
    utc = calendar_features(friday).iloc[0]
    assert (utc.cal_hour, utc.cal_weekday, utc.cal_weekend, utc.cal_shift) == (16.0, 4.0, 0.0, 1.0)


def test_a_local_shift_plan_is_known_ahead_across_daylight_saving_time() -> None:
    """A line that runs 06:00-22:00 on weekdays by the Berlin clock: across the change to summer time
    (29 Mar 2026) it is a function of the local clock, not of UTC, so a forecast may use it."""
    idx = pd.date_range("2026-03-09", "2026-04-12 23:45", freq="15min", tz="UTC", name="ts")
    local = idx.tz_convert("Europe/Berlin")
    running = ((local.day_of_week < 5) & (local.hour >= 6) & (local.hour < 22)).astype(float)
    noise = np.random.default_rng(1).normal(0, 0.3, len(idx))
    frame = pd.DataFrame({TARGET: 20 + 60 * running + noise, "meter-1/line_on": running}, index=idx)
    assert is_calendar_determined(frame["meter-1/line_on"], "Europe/Berlin")
    assert not is_calendar_determined(frame["meter-1/line_on"])  # in UTC it moves by an hour on 29 Mar
    spec = RunSpec("forecast", "gradient_boosting", target="Usage_kWh", features=["line_on"], params={"max_iter": 60})
    berlin = run_standard(frame, spec, quiet, timezone="Europe/Berlin")
    assert berlin.model.exog == ["meter-1/line_on"] and berlin.model.timezone == "Europe/Berlin"
    utc = run_standard(frame, spec, quiet)
    assert utc.model.exog == [] and any("line_on was not used: it is not known ahead" in w for w in utc.warnings)
    saved = reload(berlin.model)
    assert saved.timezone == "Europe/Berlin"  # type: ignore[attr-defined]
    assert berlin.metrics["mae"] < utc.metrics["mae"]  # knowing the plan ahead makes a better forecast
    # a calendar-only baseline fitted in winter time expects the line at the right hour in summer time
    load = frame[[TARGET]]
    savings_from = pd.Timestamp("2026-03-30", tz="UTC").to_pydatetime()
    spec = RunSpec("baseline", "gradient_boosting", target="Usage_kWh", savings_from=savings_from)
    errors = {}
    for zone in ("Europe/Berlin", "UTC"):
        out = run_standard(load, spec, quiet, timezone=zone)
        assert out.model.timezone == zone
        report = out.predictions.loc["2026-03-30":]
        errors[zone] = float((report["actual"] - report["predicted"]).abs().mean())
    assert errors["Europe/Berlin"] < 0.5 < 2.0 < errors["UTC"], errors  # noise is 0.3; an hour off is 60 kWh


def test_load_profile_days_are_the_plants_days() -> None:
    """A Seoul plant runs 08:00-18:00 on its weekdays: with local days the day types are exactly its
    weekdays and its weekend; UTC days (09:00 KST to 09:00 KST) would mix Friday and Saturday."""
    idx = pd.date_range("2026-11-01 15:00", "2026-11-29 14:45", freq="15min", tz="UTC", name="ts")
    local = idx.tz_convert("Asia/Seoul")
    running = (local.day_of_week < 5) & (local.hour >= 8) & (local.hour < 18)
    noise = np.random.default_rng(3).normal(0, 1.0, len(idx))
    load = pd.DataFrame({TARGET: 20 + 80 * running + noise}, index=idx)
    spec = RunSpec("profile", "kmeans", target="Usage_kWh", params={"n_clusters": 2})
    seoul = run_standard(load, spec, quiet, timezone="Asia/Seoul")
    days = {date: cluster for date, cluster in seoul.charts["calendar"]}
    assert len(days) == 28 and min(days) == "2026-11-02" and max(days) == "2026-11-29"
    labels = {c["cluster"]: c["label"] for c in seoul.charts["curves"]}
    weekend = {d for d, c in days.items() if labels[c].startswith("weekend")}
    assert weekend == {d for d in days if pd.Timestamp(d).day_of_week >= 5}, sorted(weekend)
    assert {labels[c] for c in days.values()} == {"weekday high load", "weekend low load"}
    assert "peak around" in seoul.summary and "KST" in seoul.summary
    weekday_curve = next(c for c in seoul.charts["curves"] if c["label"] == "weekday high load")["values"]
    hours = seoul.charts["x"]
    assert [h for h, v in zip(hours, weekday_curve, strict=True) if v > 60] == [h + 0.0 for h in range(8, 18)]
    assert str(seoul.predictions.index.tz) == "UTC"  # predictions keep UTC stamps: local midnights
    assert seoul.predictions.index[0] == pd.Timestamp("2026-11-01 15:00", tz="UTC")
    saved = reload(seoul.model)
    again = apply_model(saved, load, quiet, timezone="Asia/Seoul")
    assert again.charts["calendar"] == seoul.charts["calendar"]  # the saved model keeps the plant's days
    utc = run_standard(load, spec, quiet)
    utc_labels = {c["cluster"]: c["label"] for c in utc.charts["curves"]}
    utc_weekend = {d for d, c in utc.charts["calendar"] if utc_labels[c].startswith("weekend")}
    assert utc_weekend != weekend  # what UTC days got wrong


# ----- co-pilot ------------------------------------------------------------------------------------


def test_copilot_forecast_within_budget_with_reasons(steel: pd.DataFrame) -> None:
    budget = 12.0
    seen: list[tuple[float, int, str]] = []
    started = time.monotonic()
    out = run_copilot(
        three_weeks(steel),
        RunSpec("forecast", None, target="Usage_kWh"),
        budget,
        lambda p, m: seen.append((time.monotonic(), p, m)),
    )
    elapsed = time.monotonic() - started
    assert elapsed < budget + 4, elapsed
    assert len(out.leaderboard) >= 2 and [r["rank"] for r in out.leaderboard] == list(
        range(1, len(out.leaderboard) + 1)
    )
    assert out.leaderboard[0]["model"] == out.model_name
    assert {"model", "params", "cv_mae", "fit_seconds", "rank"} <= set(out.leaderboard[0])
    reasons = {r["name"]: r for r in out.feature_report}
    assert "leaks the target" in reasons["meter-1/CO2(tCO2)"]["reason"] and not reasons["meter-1/CO2(tCO2)"]["kept"]
    assert "not known ahead" in reasons["meter-1/Lagging_Current_Reactive_Power_kVarh"]["reason"]
    assert any(r["kept"] and "importance" in r["reason"] for r in out.feature_report)
    assert "chose" in out.summary and "previous day" in out.summary
    assert np.isfinite(out.metrics["mae_seasonal_naive"]) and out.model is not None
    assert any(m.startswith("trying") for _, _, m in seen) and seen[-1][1] == 100
    gaps = np.diff([t for t, _, _ in seen])
    assert gaps.max() < 8, gaps.max()


def test_copilot_is_deterministic_for_a_seed(steel: pd.DataFrame) -> None:
    data = steel.iloc[7 * DAY : 17 * DAY]
    spec = RunSpec("baseline", None, target="Usage_kWh", params={"max_trials": 2})
    first = run_copilot(data, spec, 30, quiet, seed=3)
    second = run_copilot(data, spec, 30, quiet, seed=3)
    strip = [{k: v for k, v in r.items() if k != "fit_seconds"} for r in first.leaderboard]
    assert strip == [{k: v for k, v in r.items() if k != "fit_seconds"} for r in second.leaderboard]
    assert first.model_name == second.model_name and first.metrics["savings_kwh"] == second.metrics["savings_kwh"]
    assert all(r["trials"] <= 2 for r in first.leaderboard)
    assert any(r["name"] == "meter-1/CO2(tCO2)" and not r["kept"] for r in first.feature_report)
