"""Analytics quality on real data (issue 5 item 9): printed figures, not a test.

1. NAB machine temperature (whole file, 22,695 readings at 5 minutes, 4 labelled failure windows): each
   anomaly model with its default settings. NAB-style window recall (a labelled window counts as detected
   if any flag falls inside it), false positives (flagged episodes that touch no labelled window), point
   precision and recall, wall time.
2. Steel mill, day-ahead ``Usage_kWh``: the last ``--holdout-weeks`` weeks are held out. Seasonal naive
   (same time yesterday) against the co-pilot, which sees only the data before the holdout (budget
   ``--budget`` seconds); its chosen model is then applied to the whole year and scored on the holdout,
   each day forecast from the readings before it. Also the co-pilot's wall time, the longest silence
   between its progress messages, and the peak RSS of this process.

    .venv/bin/python bench/analytics_quality.py                 # budget 300 s, as in the issue
    .venv/bin/python bench/analytics_quality.py --budget 60     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from factoryops.analytics.ml import RunSpec, apply_model, run_copilot, run_standard  # noqa: E402

DAY = 96


def datasets_dir() -> Path:
    env = os.environ.get("FACTORYOPS_DATASETS")
    for c in [Path(env)] if env else [ROOT.parent / "shared" / "datasets", Path("/work/shared/datasets")]:
        if c.exists():
            return c
    raise SystemExit("data sets not found: set FACTORYOPS_DATASETS")


def load_nab(d: Path) -> tuple[pd.DataFrame, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    df = pd.read_csv(d / "nab" / "machine_temperature_system_failure.csv")
    df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("timestamp")), tz="UTC", name="ts")
    df.columns = ["machine/temperature"]
    windows = [
        (pd.Timestamp(a, tz="UTC"), pd.Timestamp(b, tz="UTC"))
        for a, b in json.loads((d / "nab" / "machine_temperature_system_failure.labels.json").read_text())[
            "anomaly_windows"
        ]
    ]
    df["label"] = 0
    df = df.sort_index()
    for a, b in windows:
        df.loc[a:b, "label"] = 1
    return df, windows


def load_steel(d: Path) -> pd.DataFrame:
    df = pd.read_csv(d / "steel_industry_energy_2018.csv")
    ts = pd.to_datetime(df.pop("date"), format="%d/%m/%Y %H:%M")
    ts = ts.where(~((ts.dt.hour == 0) & (ts.dt.minute == 0)), ts + pd.Timedelta(days=1))
    df.index = pd.DatetimeIndex(ts, tz="UTC", name="ts")
    return df.select_dtypes("number").astype(float)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def anomaly_table(nab: pd.DataFrame) -> list[str]:
    rows = [
        "| model | windows detected | false-positive episodes | flagged points | point precision | point recall "
        "| wall time |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("isolation_forest", "local_outlier_factor", "robust_zscore"):
        t = time.monotonic()
        out = run_standard(nab, RunSpec("anomaly", name), lambda p, m: None)
        took = time.monotonic() - t
        m = out.metrics
        rows.append(
            f"| {name} | {m['window_recall'] * m['label_windows']:.0f} / {m['label_windows']:.0f} "
            f"| {m['false_positive_windows']:.0f} | {m['n_anomalies']:.0f} | {m['precision'] * 100:.0f} % "
            f"| {m['recall'] * 100:.0f} % | {took:.1f} s |"
        )
    return rows


def forecast_table(steel: pd.DataFrame, budget: float, holdout_weeks: int, seed: int) -> list[str]:
    cut = len(steel) - holdout_weeks * 7 * DAY
    train = steel.iloc[:cut]
    y = steel["Usage_kWh"]
    test = y.iloc[cut:]
    naive = y.shift(DAY).iloc[cut:]
    naive_mae = float(np.mean(np.abs(test - naive)))

    stamps: list[float] = []
    started = time.monotonic()

    def progress(percent: int, message: str) -> None:
        stamps.append(time.monotonic())
        print(f"  [{time.monotonic() - started:6.1f} s] {percent:3d} % {message}", flush=True)

    out = run_copilot(train, RunSpec("forecast", None, target="Usage_kWh"), budget, progress, seed=seed)
    wall = time.monotonic() - started
    scored = apply_model(out.model, steel, lambda p, m: None)
    pred = scored.predictions.loc[test.index, "predicted"]
    co_mae = float(np.mean(np.abs(test - pred)))
    gaps = np.diff([started, *stamps])
    top = ", ".join([r["name"] for r in out.feature_report if r.get("importance") is not None][:3])
    lines = [
        "| holdout | seasonal naive MAE | co-pilot MAE | improvement | co-pilot choice | budget | wall time "
        "| longest progress gap | peak RSS |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| last {holdout_weeks} weeks ({len(test):,} readings) | {naive_mae:.2f} kWh | {co_mae:.2f} kWh "
        f"| {(1 - co_mae / naive_mae) * 100:.1f} % | {out.model_name} {json.dumps(out.hyperparameters)} "
        f"| {budget:.0f} s | {wall:.1f} s | {gaps.max():.1f} s | {peak_rss_mb():.0f} MB |",
        "",
        "Leaderboard (cross-validated on the training part):",
        "",
        "| rank | model | cv MAE | trials | fit s | params |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in out.leaderboard:
        lines.append(
            f"| {r['rank']} | {r['model']} | {r['cv_mae']:.2f} | {r['trials']} | {r['fit_seconds']:.2f} "
            f"| {json.dumps(r['params'])} |"
        )
    lines += ["", f"Top inputs: {top}", "", f"Summary: {out.summary}"]
    if out.warnings:
        lines.append(f"Warnings: {out.warnings}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=300.0, help="co-pilot time budget in seconds")
    parser.add_argument("--holdout-weeks", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-anomaly", action="store_true")
    args = parser.parse_args()
    d = datasets_dir()
    if not args.skip_anomaly:
        nab, _ = load_nab(d)
        print("## Anomaly detection: NAB machine_temperature_system_failure (whole file)\n")
        print("\n".join(anomaly_table(nab)), flush=True)
        print()
    print(f"## Day-ahead forecast of Usage_kWh, steel mill 2018 (co-pilot budget {args.budget:.0f} s)\n", flush=True)
    lines = forecast_table(load_steel(d), args.budget, args.holdout_weeks, args.seed)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
