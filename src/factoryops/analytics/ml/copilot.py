"""The AI co-pilot: chooses features, tunes candidate models with Optuna inside a time budget, compares them
by time-aware cross-validation, picks the best and explains the choice.

Time: the budget is split across candidates; every cross-validation fold checks the clock, so a run
overshoots by at most one fold fit, and the final refit is reserved for up front. Determinism: the
samplers are seeded and the default settings are always tried first, so the same seed and the same
number of completed trials give the same choice (a slower machine may complete fewer trials).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.feature_selection import mutual_info_regression
from sklearn.inspection import permutation_importance
from threadpoolctl import threadpool_limits

from factoryops.analytics.ml import anomaly, baseline, forecast, profile
from factoryops.analytics.ml.catalogue import MODELS, validate_params
from factoryops.analytics.ml.core import (
    AnalyticsInputError,
    ParamInfo,
    ProgressFn,
    RunOutput,
    RunSpec,
    Stage,
    describe_span,
)
from factoryops.analytics.ml.prep import (
    Prepared,
    constant_columns,
    is_calendar_determined,
    prepare_frame,
    resolve_column,
)
from factoryops.analytics.ml.scoring import fmt, mae, unit_of

MOSTLY_MISSING = 0.5
DUPLICATE_CORR = 0.98
MIN_MI = 0.01
MI_SAMPLE = 4000
REPORT_EVERY = 2.0  # seconds between progress messages at most, while the clock allows
optuna.logging.set_verbosity(optuna.logging.WARNING)


class _Clock:
    """Deadline bookkeeping and throttled progress for one co-pilot run."""

    def __init__(self, budget: float, progress: ProgressFn) -> None:
        self.start = time.monotonic()
        self.budget = budget
        self.deadline = self.start + budget
        self.progress = progress

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def say(self, message: str) -> None:
        self.progress(min(95, round(100 * self.elapsed() / max(self.budget, 1e-6))), message)


@dataclass
class Candidate:
    name: str
    share: float  # of the tuning time
    tune: bool = True
    best_params: dict[str, Any] = field(default_factory=dict)
    best_score: float = float("inf")
    trials: int = 0
    fit_seconds: float = 0.0
    fold_seconds: float = 0.0  # slowest fit of one fold so far, per training row
    extra: dict[str, float] = field(default_factory=dict)
    best_estimator: Any = None


def suggest(trial: optuna.Trial, name: str, p: ParamInfo) -> Any:
    if p.type == "choice":
        assert p.choices is not None
        return trial.suggest_categorical(name, list(p.choices))
    assert p.low is not None and p.high is not None
    if p.type == "int":
        return trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
    return trial.suggest_float(name, float(p.low), float(p.high), log=p.log and p.low > 0)


def defaults(task: str, name: str) -> dict[str, Any]:
    return {k: p.default for k, p in MODELS[task][name].params.items()}  # type: ignore[index]


def tune(
    cand: Candidate,
    task: str,
    evaluate: Callable[[dict[str, Any], Callable[[float], bool]], tuple[float, float, Any]],
    clock: _Clock,
    until: Callable[[], float],
    seed: int,
    max_trials: int | None,
    space: dict[str, ParamInfo] | None = None,
) -> None:
    """Optuna search for one candidate until ``until()`` (monotonic) or ``max_trials``; defaults first.

    ``evaluate`` gets ``out_of_time(expected_seconds)`` to check before each fold; a trial that cannot finish
    all its folds returns NaN and is dropped, so every recorded score covers the same folds.
    """
    info = MODELS[task][cand.name]  # type: ignore[index]
    space = info.params if space is None else space
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.enqueue_trial({k: info.params[k].default for k in space})
    seen: dict[tuple[Any, ...], float] = {}
    durations: list[float] = []

    def out_of_time(expected: float = 0.0) -> bool:
        return time.monotonic() + expected > until()

    def objective(trial: optuna.Trial) -> float:
        params = dict(defaults(task, cand.name))
        params.update({k: suggest(trial, k, p) for k, p in space.items()})
        key = tuple(sorted(params.items()))
        if key in seen:
            return seen[key]
        clock.say(f"trying {cand.name.replace('_', ' ')} (trial {trial.number + 1})")
        t = time.monotonic()
        score, fit_seconds, est = evaluate(params, out_of_time)
        durations.append(time.monotonic() - t)
        if not np.isfinite(score):
            raise optuna.TrialPruned()
        seen[key] = score
        cand.trials += 1
        if score < cand.best_score:
            cand.best_score, cand.best_params, cand.fit_seconds, cand.best_estimator = score, params, fit_seconds, est
        return score

    def stopper(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        expected = max(durations[-3:]) if durations else 0.0
        if time.monotonic() + expected > until() or (max_trials and cand.trials >= max_trials):
            study.stop()

    if not space:
        objective(study.ask())
        return
    if until() <= time.monotonic():
        return
    n_combos = None
    if all(p.type == "choice" for p in space.values()):
        n_combos = int(np.prod([len(p.choices or ()) for p in space.values()]))
    study.optimize(
        objective,
        n_trials=min(x for x in (max_trials, n_combos, 500) if x),
        timeout=max(0.0, until() - time.monotonic()),
        callbacks=[stopper],
        catch=(),
    )


def mutual_info(x: pd.DataFrame, y: pd.Series, seed: int) -> dict[str, float]:
    ok = y.notna().to_numpy()
    xs, ys = x[ok], y[ok]
    if len(xs) > MI_SAMPLE:
        pos = np.linspace(0, len(xs) - 1, MI_SAMPLE).astype(int)
        xs, ys = xs.iloc[pos], ys.iloc[pos]
    filled = xs.fillna(xs.median()).fillna(0.0)
    mi = mutual_info_regression(filled.to_numpy(), ys.to_numpy(), random_state=seed)
    return {str(c): float(v) for c, v in zip(xs.columns, mi, strict=True)}


def screen_columns(
    prep: Prepared, target: str, candidates: list[str], seed: int, known_ahead_needed: bool
) -> tuple[list[str], list[dict[str, Any]]]:
    """Drop constant, mostly missing, leaking, duplicate and unrelated columns, with the reason for each."""
    frame, report = prep.frame, []
    y = frame[target]
    kept: list[str] = []
    constant = set(constant_columns(frame))
    for col in candidates:
        s = frame[col]
        if col in constant:
            report.append({"name": col, "kept": False, "reason": "constant: it never changes"})
        elif s.isna().mean() > MOSTLY_MISSING:
            report.append(
                {"name": col, "kept": False, "reason": f"mostly missing ({s.isna().mean() * 100:.0f} % of readings)"}
            )
        elif abs(float(s.corr(y))) > DUPLICATE_CORR:
            report.append(
                {
                    "name": col,
                    "kept": False,
                    "reason": f"leaks the target: moves in lockstep with {target} (correlation {s.corr(y):.3f}), "
                    "so it is computed from it or measured with it",
                }
            )
        elif known_ahead_needed and not is_calendar_determined(s, prep.timezone):
            report.append(
                {
                    "name": col,
                    "kept": False,
                    "reason": "not known ahead: its future values are not available when the forecast is made",
                }
            )
        else:
            kept.append(col)
    if not kept:
        return kept, report
    mi = mutual_info(frame[kept], y, seed)
    order = sorted(kept, key=lambda c: -mi[c])
    chosen: list[str] = []
    for col in order:
        twin = next((c for c in chosen if abs(float(frame[col].corr(frame[c]))) > DUPLICATE_CORR), None)
        if twin is not None:
            report.append(
                {
                    "name": col,
                    "kept": False,
                    "reason": f"near-duplicate of {twin} (correlation {frame[col].corr(frame[twin]):.3f}), "
                    "which relates more strongly to the target",
                }
            )
        elif mi[col] < MIN_MI:
            report.append(
                {
                    "name": col,
                    "kept": False,
                    "reason": f"no relationship with {target} (mutual information {mi[col]:.3f})",
                }
            )
        else:
            chosen.append(col)
            report.append(
                {
                    "name": col,
                    "kept": True,
                    "reason": f"relationship with {target} (mutual information {mi[col]:.2f})",
                    "mutual_information": mi[col],
                }
            )
    return chosen, report


def importance_rows(
    est: Any, x: pd.DataFrame, y: pd.Series, describe: Callable[[str], str], seed: int
) -> list[dict[str, Any]]:
    """Permutation importance on held-out rows, as shares of the total: what the model really relies on."""
    ok = y.notna().to_numpy() & x.notna().any(axis=1).to_numpy()
    xs, ys = x[ok], y[ok]
    if len(xs) > 1000:
        pos = np.linspace(0, len(xs) - 1, 1000).astype(int)
        xs, ys = xs.iloc[pos], ys.iloc[pos]
    if len(xs) < 10:
        return []
    r = permutation_importance(est, xs, ys, n_repeats=2, random_state=seed, scoring="neg_mean_absolute_error", n_jobs=1)
    imp = np.clip(r.importances_mean, 0, None)
    total = float(imp.sum()) or 1.0
    rows = []
    for name, v in sorted(zip(xs.columns, imp, strict=True), key=lambda t: -t[1]):
        share = float(v) / total
        strength = "strong" if share >= 0.1 else "moderate" if share >= 0.02 else "weak"
        rows.append(
            {
                "name": describe(str(name)),
                "column": str(name),
                "kept": True,
                "reason": f"{strength} relationship (importance {share:.2f})",
                "importance": share,
            }
        )
    return rows


def leaderboard(cands: list[Candidate], metric: str, higher_is_better: bool = False) -> list[dict[str, Any]]:
    done = [c for c in cands if c.trials and np.isfinite(c.best_score)]
    done.sort(key=lambda c: c.best_score)
    rows = []
    for rank, c in enumerate(done, 1):
        value = -c.best_score if higher_is_better else c.best_score
        rows.append(
            {
                "rank": rank,
                "model": c.name,
                "params": c.best_params,
                metric: float(value),
                "fit_seconds": round(c.fit_seconds, 3),
                "trials": c.trials,
                **c.extra,
            }
        )
    return rows


# ----- forecast ----------------------------------------------------------------------------------------


def folds(n: int, horizon: int, min_train: int, k: int = 3) -> list[int]:
    """Rolling-origin fold starts (each fold = the next block of horizons; train on all before)."""
    size = horizon * max(1, round(0.08 * n / horizon))
    starts = [n - size * (i + 1) for i in range(k)]
    return sorted(s for s in starts if s >= min_train)


def copilot_forecast(prep: Prepared, spec: RunSpec, clock: _Clock, seed: int, max_trials: int | None) -> RunOutput:
    assert spec.target
    target = resolve_column(prep.frame, spec.target)
    others = [c for c in (spec.features or list(prep.frame.columns)) if c != target]
    others = [resolve_column(prep.frame, c, "feature") for c in others]
    clock.say("choosing features")
    kept, report = screen_columns(prep, target, others, seed, known_ahead_needed=True)
    fs = forecast.setup(prep, RunSpec("forecast", None, target=target, features=kept, horizon=spec.horizon))
    y, exog, h = fs.y, fs.exog, fs.horizon
    n = len(y)
    probe = forecast.new_model("gradient_boosting", defaults("forecast", "gradient_boosting"), fs, prep, seed)
    naive_probe = forecast.new_model("seasonal_naive", {"season": "day"}, fs, prep, seed)
    forecast.check_length(naive_probe, n, prep)
    n_test = forecast.holdout_size(n, h, naive_probe.min_train() + h)
    dev_end = n - n_test
    y_dev, ex_dev = y.iloc[:dev_end], exog.iloc[:dev_end]

    # engineered features with no relationship to the target are dropped before tuning
    probe.lags = forecast.choose_lags(h, prep.steps_per_day, dev_end)
    x_dev = probe.features(y_dev, ex_dev)
    mi = mutual_info(x_dev.loc[x_dev[f"lag_{h}"].notna()], y_dev[x_dev[f"lag_{h}"].notna()], seed)
    weak = [c for c in x_dev.columns if mi.get(c, 1.0) < MIN_MI and c != f"lag_{h}" and not c.startswith("exog:")]
    weak_rows = [
        {
            "name": forecast.describe_feature(c, prep.step),
            "column": c,
            "kept": False,
            "reason": f"no relationship with {target} (mutual information {mi[c]:.3f})",
        }
        for c in weak
    ]

    def evaluate_factory(name: str) -> Callable[[dict[str, Any], Callable[[float], bool]], tuple[float, float, Any]]:
        def evaluate(params: dict[str, Any], out_of_time: Callable[[float], bool]) -> tuple[float, float, Any]:
            model = forecast.new_model(name, params, fs, prep, seed)
            model.lags = [lag for lag in probe.lags if f"lag_{lag}" not in weak] or [h]
            model.drop = weak
            starts = folds(dev_end, h, model.min_train())
            if not starts:
                return float("nan"), 0.0, None
            errors, fit_time = [], 0.0
            cand = by_name[name]
            for i, s in enumerate(starts):
                if out_of_time(cand.fold_seconds * s * 1.2):
                    return float("nan"), 0.0, None
                if i:
                    clock.say(f"{name.replace('_', ' ')}: cross-validation fold {i + 1} of {len(starts)}")
                t = time.monotonic()
                model.fit(y_dev.iloc[:s], ex_dev.iloc[:s])
                took = time.monotonic() - t
                fit_time += took
                cand.fold_seconds = max(cand.fold_seconds, took / max(1, s))
                end = starts[i + 1] if i + 1 < len(starts) else dev_end
                pred = model.predict_from(y_dev.iloc[:end], ex_dev.iloc[:end], s)
                errors.append(mae(y_dev.to_numpy()[s:end], pred))
            return float(np.mean(errors)), fit_time / len(errors), model

        return evaluate

    cands = [
        Candidate("seasonal_naive", 0.0),
        Candidate("gradient_boosting", 0.65),
        Candidate("holt_winters", 0.35),
    ]
    naive_space = {
        "season": ParamInfo(
            "choice", "day", choices=("day", "week") if dev_end > 3 * 7 * prep.steps_per_day else ("day",)
        )
    }
    by_name = {c.name: c for c in cands}

    def tuning_until() -> float:
        # keep time for the finish: the slowest candidate refitted on the development data and on all data
        finish = max([2.5 * c.fold_seconds * n for c in cands if c.trials] + [0.0])
        return clock.deadline - 0.1 * clock.budget - finish

    for cand in cands:
        if cand.name == "seasonal_naive":
            tune(cand, "forecast", evaluate_factory(cand.name), clock, tuning_until, seed, None, naive_space)
            continue
        if cand.name == "holt_winters" and dev_end < 3 * prep.steps_per_day + h:
            continue
        began = time.monotonic()
        remaining = max(0.0, tuning_until() - began)
        share_total = sum(c.share for c in cands if c.trials == 0 and c.share > 0) or 1.0
        share_end = began + remaining * cand.share / share_total
        tune(
            cand,
            "forecast",
            evaluate_factory(cand.name),
            clock,
            lambda e=share_end: min(e, tuning_until()),  # type: ignore[misc]
            seed,
            max_trials,
        )

    board = leaderboard(cands, "cv_mae")
    if not board:
        raise AnalyticsInputError("the co-pilot could not evaluate any model on this data set; it is too short")
    best = next(c for c in cands if c.name == board[0]["model"])
    clock.say(f"testing the winner, {best.name.replace('_', ' ')}, on the last {describe_span(n_test * prep.step)}")
    model = forecast.new_model(best.name, best.best_params, fs, prep, seed)
    model.lags = best.best_estimator.lags if best.best_estimator is not None else []
    model.drop = weak
    if model.model_name != "seasonal_naive":
        model.fit(y_dev, ex_dev)
    predicted = model.predict_from(y, exog, dev_end)
    naive = naive_probe.predict_from(y, exog, dev_end)
    test_mae = mae(y.to_numpy()[dev_end:], predicted)
    board[0]["holdout_mae"] = test_mae

    feature_rows = list(report)
    gb = next(c for c in cands if c.name == "gradient_boosting")
    if gb.trials:
        gbm = forecast.new_model("gradient_boosting", gb.best_params, fs, prep, seed)
        gbm.lags, gbm.drop = gb.best_estimator.lags, weak
        if best.name == "gradient_boosting":
            gbm = model
        elif clock.left() > 4 * gb.fold_seconds * n:
            gbm.fit(y_dev, ex_dev)
        else:
            gbm = None  # type: ignore[assignment]
        if gbm is not None and gbm.estimator is not None and clock.left() > 1.2 * best.fold_seconds * n + 1:
            clock.say("measuring which inputs matter")
            x_test = gbm.features(y, exog).iloc[dev_end:]
            feature_rows += importance_rows(
                gbm.estimator, x_test, y.iloc[dev_end:], lambda c: forecast.describe_feature(c, prep.step), seed
            )
    if not any(r.get("importance") is not None for r in feature_rows):
        # no time left to measure importance on held-out data: rank by mutual information instead
        strong = sorted((c for c in x_dev.columns if c not in weak), key=lambda c: -mi.get(c, 0.0))
        total = sum(mi.get(c, 0.0) for c in strong) or 1.0
        feature_rows += [
            {
                "name": forecast.describe_feature(c, prep.step),
                "column": c,
                "kept": True,
                "reason": f"relationship (importance by mutual information {mi.get(c, 0.0) / total:.2f})",
                "importance": mi.get(c, 0.0) / total,
            }
            for c in strong
        ]
    feature_rows += weak_rows

    clock.say("refitting the winner on all data")
    final = model
    warnings = list(prep.warnings) + fs.warnings
    if best.name != "seasonal_naive" and clock.left() < 1.2 * best.fold_seconds * n:
        warnings.append(
            "the time budget ran out before the final refit: the forecast uses the model fitted before "
            f"the last {describe_span(n_test * prep.step)}; allow more time for a fresher model"
        )
    elif best.name != "seasonal_naive":
        final = forecast.new_model(best.name, best.best_params, fs, prep, seed)
        final.lags, final.drop = model.lags, weak
        final.fit(y, exog)
    out = forecast.finish(final, fs, prep, dev_end, predicted, naive, lambda p, m: clock.say(m), warnings)
    out.leaderboard, out.feature_report = board, feature_rows
    naive_mae = out.metrics["mae_seasonal_naive"]
    unit = unit_of(target)
    top = [r["name"] for r in feature_rows if r.get("importance") is not None][:3]
    gain = (1 - test_mae / naive_mae) * 100 if naive_mae else float("nan")
    parts = [
        f"The co-pilot compared {len(board)} model families on {describe_span(dev_end * prep.step)} of history "
        f"with rolling-origin cross-validation ({sum(c.trials for c in cands)} trials in {clock.elapsed():.0f} s) "
        f"and chose {MODELS['forecast'][best.name].title.lower()} (cross-validated MAE {fmt(best.best_score, unit)})."
    ]
    if best.name != "seasonal_naive" and np.isfinite(gain):
        verdict = "better" if gain > 0 else "worse"
        parts.append(
            f"On the last {describe_span(n_test * prep.step)}, never used for choosing, its MAE is "
            f"{fmt(test_mae, unit)}: {abs(gain):.0f} % {verdict} than repeating the previous day "
            f"({fmt(naive_mae, unit)})."
        )
    else:
        parts.append("No model beat repeating the previous day by enough to justify it, so that simple rule is kept.")
    if top:
        parts.append(f"The inputs that matter most: {', '.join(top)}.")
    dropped = [r["name"] for r in report if not r["kept"]]
    if dropped:
        parts.append(
            f"Left out: {', '.join(dropped[:4])}{' and others' if len(dropped) > 4 else ''} (see the reasons)."
        )
    out.summary = " ".join(parts)
    out.metrics["cv_mae"] = best.best_score
    out.metrics["budget_seconds"] = clock.budget
    out.metrics["elapsed_seconds"] = clock.elapsed()
    return out


# ----- baseline ----------------------------------------------------------------------------------------


def copilot_baseline(prep: Prepared, spec: RunSpec, clock: _Clock, seed: int, max_trials: int | None) -> RunOutput:
    assert spec.target
    target = resolve_column(prep.frame, spec.target)
    others = [c for c in (spec.features or list(prep.frame.columns)) if c != target]
    others = [resolve_column(prep.frame, c, "feature") for c in others]
    clock.say("choosing features")
    kept, report = screen_columns(prep, target, others, seed, known_ahead_needed=False)
    bs = baseline.setup(prep, RunSpec("baseline", None, target=target, features=kept, savings_from=spec.savings_from))
    fit_part = prep.frame[prep.frame.index < bs.split]
    n_fit = len(fit_part)
    if n_fit < baseline.MIN_FIT_ROWS * 2:
        raise AnalyticsInputError(
            f"the fit period has only {describe_span(n_fit * prep.step)} of data; a baseline needs more history"
        )
    size = max(1, n_fit // 5)
    starts = [n_fit - size * (i + 1) for i in range(3)][::-1]
    starts = [s for s in starts if s >= baseline.MIN_FIT_ROWS]

    def evaluate_factory(name: str) -> Callable[[dict[str, Any], Callable[[float], bool]], tuple[float, float, Any]]:
        def evaluate(params: dict[str, Any], out_of_time: Callable[[float], bool]) -> tuple[float, float, Any]:
            model = baseline.BaselineModel(name, params, target, kept, prep.step, seed=seed, timezone=prep.timezone)
            errors, fit_time = [], 0.0
            cand = by_name[name]
            for i, s in enumerate(starts):
                if out_of_time(cand.fold_seconds * s * 1.2):
                    return float("nan"), 0.0, None
                if i:
                    clock.say(f"{name.replace('_', ' ')}: cross-validation fold {i + 1} of {len(starts)}")
                t = time.monotonic()
                model.fit(fit_part.iloc[:s])
                took = time.monotonic() - t
                fit_time += took
                cand.fold_seconds = max(cand.fold_seconds, took / max(1, s))
                part = fit_part.iloc[s : s + size]
                errors.append(mae(part[target].to_numpy(), model.predict(part).to_numpy()))
            return float(np.mean(errors)) if errors else float("nan"), fit_time / max(1, len(errors)), model

        return evaluate

    cands = [
        Candidate("linear_regression", 0.15),
        Candidate("gradient_boosting", 0.5),
        Candidate("random_forest", 0.35),
    ]
    by_name = {c.name: c for c in cands}

    def tuning_until() -> float:
        finish = max([3.0 * c.fold_seconds * n_fit for c in cands if c.trials] + [0.0])
        return clock.deadline - 0.1 * clock.budget - finish

    for i, cand in enumerate(cands):
        began = time.monotonic()
        remaining = max(0.0, tuning_until() - began)
        share_end = began + remaining * cand.share / sum(c.share for c in cands[i:])
        tune(
            cand,
            "baseline",
            evaluate_factory(cand.name),
            clock,
            lambda e=share_end: min(e, tuning_until()),  # type: ignore[misc]
            seed,
            max_trials,
        )
    board = leaderboard(cands, "cv_mae")
    if not board:
        raise AnalyticsInputError(
            "the co-pilot could not evaluate any baseline model in the time given; allow more time"
        )
    best = next(c for c in cands if c.name == board[0]["model"])
    clock.say(f"fitting the winner, {best.name.replace('_', ' ')}, and measuring savings")
    out = baseline.run_baseline(
        prep,
        RunSpec("baseline", best.name, target=target, features=kept, savings_from=bs.split.to_pydatetime()),
        best.name,
        best.best_params,
        lambda p, m: clock.say(m),
        seed,
    )
    held = fit_part.iloc[int(n_fit * 0.8) :]
    feature_rows = [r for r in report if not r["kept"]]
    imp = (
        importance_rows(out.model.estimator, out.model.design(held), held[target], lambda c: c, seed)
        if clock.left() > 2 * best.fold_seconds * n_fit
        else []
    )
    feature_rows += imp or [r for r in report if r["kept"]]
    out.leaderboard, out.feature_report = board, feature_rows
    unit = unit_of(target)
    top = [r["name"] for r in imp[:3]] or [r["name"] for r in report if r["kept"]][:3]
    worst = board[-1]
    parts = [
        f"The co-pilot compared {len(board)} model families by time-ordered cross-validation on the fit period "
        f"and chose {MODELS['baseline'][best.name].title.lower()} (MAE {fmt(best.best_score, unit)} against "
        f"{fmt(worst['cv_mae'], unit)} for {worst['model'].replace('_', ' ')})."
    ]
    if top:
        parts.append(f"The inputs that matter most: {', '.join(top)}.")
    parts.append(out.summary.split(". ", 1)[-1])
    out.summary = " ".join(parts)
    out.metrics["cv_mae"] = best.best_score
    out.metrics["elapsed_seconds"] = clock.elapsed()
    return out


# ----- profile and anomaly -----------------------------------------------------------------------------


def copilot_profile(prep: Prepared, spec: RunSpec, clock: _Clock, seed: int) -> RunOutput:
    clock.say("comparing numbers of day types")
    params = validate_params(MODELS["profile"]["kmeans"], {})
    out = profile.run_profile(prep, spec, params, lambda p, m: clock.say(m), seed)
    out.leaderboard = [
        {"rank": 0, "model": "kmeans", "params": {"n_clusters": int(k[len("silhouette_k") :])}, "silhouette": v}
        for k, v in out.metrics.items()
        if k.startswith("silhouette_k")
    ]
    out.leaderboard.sort(key=lambda r: -r["silhouette"] if np.isfinite(r["silhouette"]) else 1)
    for i, row in enumerate(out.leaderboard, 1):
        row["rank"] = i
    out.feature_report = [
        {"name": out.model.target, "kept": True, "reason": "the load whose daily curves are compared"}
    ]
    return out


def copilot_anomaly(prep: Prepared, spec: RunSpec, clock: _Clock, seed: int, max_trials: int | None) -> RunOutput:
    cols, warnings = anomaly.scan_columns(prep, spec)
    report = [{"name": c, "kept": True, "reason": "scanned"} for c in cols]
    report += [{"name": c, "kept": False, "reason": "constant: it never changes"} for c in constant_columns(prep.frame)]
    labelled = prep.labels is not None and bool(prep.labels.any())
    names = list(MODELS["anomaly"])
    cands = [Candidate(n, 1 / len(names)) for n in names]
    tuning_end = clock.deadline - 0.3 * clock.budget

    def evaluate_factory(name: str) -> Callable[[dict[str, Any], Callable[[float], bool]], tuple[float, float, Any]]:
        def evaluate(params: dict[str, Any], out_of_time: Callable[[float], bool]) -> tuple[float, float, Any]:
            model = anomaly.AnomalyModel(name, params, cols, prep.step, seed=seed)
            t = time.monotonic()
            score, flags = model.score(prep.frame, refit=True)
            elapsed = time.monotonic() - t
            if labelled:
                assert prep.labels is not None
                windows = anomaly.group_windows(flags, score, prep.frame[cols], prep.step)
                m = anomaly.label_metrics(flags, prep.labels, windows)
                return -m["f1"], elapsed, model
            return 0.0, elapsed, (flags, model)

        return evaluate

    for i, cand in enumerate(cands):
        remaining = max(0.0, tuning_end - time.monotonic())
        until = time.monotonic() + remaining / (len(cands) - i)
        tune(
            cand,
            "anomaly",
            evaluate_factory(cand.name),
            clock,
            lambda u=until: u,  # type: ignore[misc]
            seed,
            max_trials if labelled else 1,
            None if labelled else {},
        )
    if not labelled:
        # no labels: prefer the detector that agrees most with the others (a consensus, not a ground truth)
        flags = {c.name: c.best_estimator[0].to_numpy() for c in cands if c.best_estimator is not None}
        for c in cands:
            if c.name not in flags:
                continue
            others = [f for n, f in flags.items() if n != c.name]
            agree = [float((flags[c.name] & f).sum() / max(1, (flags[c.name] | f).sum())) for f in others]
            c.best_score = -float(np.mean(agree)) if agree else 0.0
            c.extra = {"agreement": -c.best_score}
    board = leaderboard(cands, "f1" if labelled else "agreement", higher_is_better=True)
    best = next(c for c in cands if c.name == board[0]["model"])
    params = dict(best.best_params or defaults("anomaly", best.name))
    out = anomaly.run_anomaly(
        prep,
        RunSpec("anomaly", best.name, target=spec.target, params=params),
        best.name,
        params,
        lambda p, m: clock.say(m),
        seed,
    )
    out.leaderboard, out.feature_report = board, report
    how = (
        "the best F1 against the labels"
        if labelled
        else "the most agreement with the other detectors (there are no labels to check against)"
    )
    out.summary = (
        f"The co-pilot tried {len(board)} detectors and chose {anomaly.TITLES[best.name].lower()} for {how}. "
        + out.summary
    )
    out.warnings = warnings + out.warnings
    return out


def run_copilot(
    frame: pd.DataFrame,
    spec: RunSpec,
    budget_seconds: float,
    progress: ProgressFn,
    seed: int = 0,
    timezone: str = "UTC",
) -> RunOutput:
    """Choose features and model, tune within ``budget_seconds``, and return the best model's run.

    ``timezone``: the factory's IANA zone, in which the summary and messages write times and dates.
    """
    if budget_seconds <= 0:
        raise AnalyticsInputError("the co-pilot needs a time budget of at least a few seconds")
    if spec.task in ("forecast", "baseline") and not spec.target:
        raise AnalyticsInputError(f"the co-pilot needs a target for a {spec.task}: the column to model")
    max_trials = spec.params.get("max_trials")
    clock = _Clock(float(budget_seconds), progress)
    progress(0, "checking the data")
    label_column = spec.params.get("label_column") if spec.task == "anomaly" else None
    prep = prepare_frame(frame, label_column=label_column, timezone=timezone)
    stage = Stage(progress, 2, 98)
    clock.progress = stage
    with threadpool_limits(limits=1):
        if spec.task == "forecast":
            out = copilot_forecast(prep, spec, clock, seed, max_trials)
        elif spec.task == "baseline":
            out = copilot_baseline(prep, spec, clock, seed, max_trials)
        elif spec.task == "profile":
            out = copilot_profile(prep, spec, clock, seed)
        elif spec.task == "anomaly":
            out = copilot_anomaly(prep, spec, clock, seed, max_trials)
        else:
            raise AnalyticsInputError(f"unknown analysis type {spec.task!r}")
    out.metrics["elapsed_seconds"] = clock.elapsed()
    progress(100, "done")
    return out
