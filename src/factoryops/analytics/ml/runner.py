"""Entry points: a standard run and a scoring run of a saved model (the co-pilot lives in copilot.py).

Every computation runs with native thread pools limited to one thread: the analytics worker shares two
cores with the platform, and OpenMP spinning on a busy machine made gradient boosting 10-40 x slower.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from factoryops.analytics.ml.anomaly import AnomalyModel, apply_anomaly, run_anomaly
from factoryops.analytics.ml.baseline import BaselineModel, apply_baseline, run_baseline
from factoryops.analytics.ml.catalogue import model_info, validate_params
from factoryops.analytics.ml.core import TASKS, AnalyticsInputError, ProgressFn, RunOutput, RunSpec, Stage
from factoryops.analytics.ml.forecast import ForecastModel, apply_forecast, run_forecast
from factoryops.analytics.ml.prep import prepare_frame
from factoryops.analytics.ml.profile import ProfileModel, apply_profile, run_profile


def run_standard(frame: pd.DataFrame, spec: RunSpec, progress: ProgressFn, timezone: str = "UTC") -> RunOutput:
    """Fit the chosen model on the data, evaluate it on the most recent part, return results and charts.

    ``timezone``: the factory's IANA zone, in which the summary and messages write times and dates.
    """
    if spec.task not in TASKS:
        raise AnalyticsInputError(f"unknown analysis type {spec.task!r}; choose one of {', '.join(TASKS)}")
    if spec.model is None:
        raise AnalyticsInputError("choose a model for a standard run, or start the co-pilot to choose one")
    info = model_info(spec.task, spec.model)
    params = validate_params(info, spec.params)
    progress(0, "checking the data")
    label_column = spec.params.get("label_column") if spec.task == "anomaly" else None
    prep = prepare_frame(frame, label_column=label_column, timezone=timezone)
    if spec.task != "anomaly" and prep.labels is not None:
        prep.warnings.append("the label column is only used by anomaly detection and was left out")
    stage = Stage(progress, 5, 99)
    with threadpool_limits(limits=1):
        if spec.task == "forecast":
            out = run_forecast(prep, spec, spec.model, params, stage)
        elif spec.task == "anomaly":
            out = run_anomaly(prep, spec, spec.model, params, stage)
        elif spec.task == "baseline":
            out = run_baseline(prep, spec, spec.model, params, stage)
        else:
            out = run_profile(prep, spec, params, stage)
    progress(100, "done")
    return out


def apply_model(model: Any, frame: pd.DataFrame, progress: ProgressFn, timezone: str = "UTC") -> RunOutput:
    """Scoring run: a saved fitted model (RunOutput.model) applied to a new data set with the same columns."""
    progress(0, "checking the data")
    stage = Stage(progress, 5, 99)
    with threadpool_limits(limits=1):
        if isinstance(model, ForecastModel):
            out = apply_forecast(model, prepare_frame(frame, timezone=timezone), stage)
        elif isinstance(model, AnomalyModel):
            out = apply_anomaly(model, prepare_frame(frame, label_column=model.label_column, timezone=timezone), stage)
        elif isinstance(model, BaselineModel):
            out = apply_baseline(model, prepare_frame(frame, timezone=timezone), stage)
        elif isinstance(model, ProfileModel):
            out = apply_profile(model, prepare_frame(frame, timezone=timezone), stage)
        else:
            raise AnalyticsInputError("this is not a saved analytics model; pick a model version from a finished run")
    progress(100, "done")
    return out
