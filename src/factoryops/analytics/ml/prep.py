"""Turning a data set into a regular, numeric time grid the models can trust, with warnings a person reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from factoryops.analytics.ml.core import AnalyticsInputError, describe_span, known_zone

SHORT_GAP = pd.Timedelta(hours=1)  # gaps up to this long are interpolated; longer ones stay missing


@dataclass
class Prepared:
    """The cleaned frame: regular step, float columns only, short gaps filled, labels split off.

    ``timezone`` is the factory's IANA time zone: the frame stays in UTC (features, grids and
    predictions too); only the times and dates a person reads (summaries, messages) are written in it.
    """

    frame: pd.DataFrame
    step: pd.Timedelta
    labels: pd.Series | None = None
    warnings: list[str] = field(default_factory=list)
    timezone: str = "UTC"

    @property
    def steps_per_day(self) -> int:
        return max(1, round(pd.Timedelta(days=1) / self.step))

    def span(self) -> pd.Timedelta:
        return self.frame.index[-1] - self.frame.index[0] + self.step


def prepare_frame(frame: pd.DataFrame, label_column: str | None = None, timezone: str = "UTC") -> Prepared:
    """Validate and regularise the input frame (see the package docstring for what it may look like).

    ``timezone`` (the factory's, e.g. ``Asia/Seoul``) is the zone of the times a person reads.
    """
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise AnalyticsInputError("the data set is empty: there is nothing to analyse")
    warnings: list[str] = []
    if not known_zone(timezone):
        warnings.append(f"the time zone {timezone!r} is unknown: the summary gives times in UTC")
        timezone = "UTC"
    frame = frame.copy()
    if not isinstance(frame.index, pd.DatetimeIndex):
        for ts_name in ("ts", "time", "timestamp"):
            if ts_name in frame.columns:
                frame = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame.pop(ts_name), utc=True)))
                break
        else:
            raise AnalyticsInputError("the data set has no time stamps (a time index or a 'ts' column)")
    index = pd.DatetimeIndex(frame.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    index = index.as_unit("ns")
    frame.index = index
    frame = frame[~np.asarray(frame.index.isna())].sort_index()
    duplicated = np.asarray(frame.index.duplicated(keep="last"))
    if duplicated.any():
        warnings.append(f"{int(duplicated.sum())} repeated time stamps were merged (the last reading kept)")
        frame = frame[~duplicated]

    labels: pd.Series | None = None
    name = label_column or ("label" if "label" in frame.columns else None)
    if label_column and label_column not in frame.columns:
        raise AnalyticsInputError(f"the label column {label_column!r} is not in the data set")
    if name is not None:
        raw = frame.pop(name)
        numeric = pd.to_numeric(raw.astype("object").replace({True: 1, False: 0}), errors="coerce")
        if not numeric.dropna().isin([0, 1]).all():
            raise AnalyticsInputError(f"the label column {name!r} must hold 0/1 or true/false values")
        labels = numeric.fillna(0).astype(bool)

    numeric_cols: dict[str, pd.Series] = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            numeric_cols[str(col)] = s.astype("float64")
        else:
            warnings.append(f"{col} is not numeric and was left out")
    if not numeric_cols:
        raise AnalyticsInputError("the data set has no numeric columns to analyse")
    frame = pd.DataFrame(numeric_cols, index=frame.index)
    if len(frame) < 3:
        raise AnalyticsInputError(f"the data set has only {len(frame)} rows; at least a few dozen are needed")

    diffs = np.diff(pd.DatetimeIndex(frame.index).asi8)
    step = pd.Timedelta(int(np.median(diffs)), unit="ns")
    if step <= pd.Timedelta(0):
        raise AnalyticsInputError("the time stamps do not advance; cannot tell the data's resolution")
    step = step.round("s") if step >= pd.Timedelta(seconds=1) else step
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=step)
    if frame.index.isin(grid).all():
        frame = frame.reindex(grid)
        if labels is not None:
            labels = labels.reindex(grid, fill_value=False)
    else:
        warnings.append("the time stamps are irregular; readings were averaged onto a regular grid")
        frame = frame.resample(step, origin=frame.index[0]).mean()
        if labels is not None:
            labels = labels.resample(step, origin=labels.index[0]).max().reindex(frame.index, fill_value=False)
    frame.index.name = "ts"

    max_gap = max(1, int(SHORT_GAP / step))
    for col in list(frame.columns):
        s = frame[col]
        if s.notna().sum() == 0:
            warnings.append(f"{col} has no values at all and was left out")
            del frame[col]
            continue
        filled, long_runs, long_missing = fill_short_gaps(s, max_gap)
        frame[col] = filled
        if long_runs:
            warnings.append(
                f"{col} has {long_runs} gap{'s' if long_runs > 1 else ''} longer than {describe_span(SHORT_GAP)} "
                f"(together {describe_span(long_missing * step)}); those periods are left out"
            )
    if frame.empty or frame.shape[1] == 0:
        raise AnalyticsInputError("the data set has no numeric values to analyse")
    if labels is not None:
        labels = labels.astype(bool)
        labels.index.name = "ts"
    return Prepared(frame=frame, step=step, labels=labels, warnings=warnings, timezone=timezone)


def fill_short_gaps(s: pd.Series, max_gap: int) -> tuple[pd.Series, int, int]:
    """Interpolate runs of at most ``max_gap`` missing steps inside the series; count the longer runs."""
    missing = s.isna().to_numpy()
    if not missing.any():
        return s, 0, 0
    run_id = np.cumsum(np.r_[True, missing[1:] != missing[:-1]])
    run_len = pd.Series(run_id).map(pd.Series(run_id).value_counts()).to_numpy()
    inside = np.zeros(len(s), dtype=bool)
    valid = np.flatnonzero(~missing)
    if len(valid):
        inside[valid[0] : valid[-1] + 1] = True
    short = missing & (run_len <= max_gap) & inside
    interpolated = s.interpolate(method="time", limit_area="inside")
    out = s.where(~short, interpolated)
    long_mask = missing & ~short
    long_runs = len(np.unique(run_id[long_mask]))
    return out, long_runs, int(long_mask.sum())


def resolve_column(frame: pd.DataFrame, name: str, what: str = "target") -> str:
    """The column called ``name``, or the only one ending in ``/name`` (device/property names)."""
    if name in frame.columns:
        return name
    matches = [c for c in frame.columns if str(c).endswith("/" + name)]
    if len(matches) == 1:
        return str(matches[0])
    if len(matches) > 1:
        raise AnalyticsInputError(f"the {what} {name!r} is ambiguous: {', '.join(matches)}; name one of them")
    available = ", ".join(str(c) for c in frame.columns[:20])
    raise AnalyticsInputError(f"the {what} {name!r} is not in the data set; its columns are {available}")


def constant_columns(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns if frame[c].nunique(dropna=True) <= 1]


def local_index(index: pd.DatetimeIndex, timezone: str = "UTC") -> pd.DatetimeIndex:
    """``index`` (UTC, or naive meaning UTC) on the factory's clock: a plant's day, weekend and shifts
    follow its wall clock, daylight saving time included, not UTC."""
    utc = index.tz_localize("UTC") if index.tz is None else index
    try:
        return utc.tz_convert(timezone)
    except Exception:  # an unknown zone (prepare_frame has warned): UTC
        return utc.tz_convert("UTC")


def calendar_features(index: pd.DatetimeIndex, timezone: str = "UTC", shift_start_hour: int = 6) -> pd.DataFrame:
    """Hour of day, weekday, weekend and shift (three 8-hour shifts from 06:00) on the factory's clock
    (``timezone``): known for any future time. The frame keeps ``index``."""
    local = local_index(index, timezone)
    hour = local.hour + local.minute / 60.0
    dow = local.day_of_week
    shift = ((local.hour - shift_start_hour) % 24) // 8
    return pd.DataFrame(
        {
            "cal_hour": np.asarray(hour, dtype=float),
            "cal_weekday": np.asarray(dow, dtype=float),
            "cal_weekend": np.asarray(dow >= 5, dtype=float),
            "cal_shift": np.asarray(shift, dtype=float),
        },
        index=index,
    )


def is_calendar_determined(s: pd.Series, timezone: str = "UTC") -> bool:
    """True if the column is a function of the factory's time of day and weekday (so it is known for
    tomorrow too): a shift plan follows the local clock, across daylight saving time changes too."""
    idx = local_index(pd.DatetimeIndex(s.index), timezone)
    valid = s.notna().to_numpy()
    if valid.sum() < 2:
        return False
    key = pd.Series(idx.day_of_week * 86400 + idx.hour * 3600 + idx.minute * 60 + idx.second)[valid]
    values = s.to_numpy()[valid]
    counts = pd.Series(values).groupby(key.to_numpy()).nunique()
    return bool((counts <= 1).all())
