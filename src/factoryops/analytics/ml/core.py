"""Types shared by every analytics model: the run request, its output and the errors a person reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

Task = Literal["anomaly", "forecast", "baseline", "profile"]
TASKS: tuple[Task, ...] = ("anomaly", "forecast", "baseline", "profile")

ProgressFn = Callable[[int, str], None]
"""Percent 0..100 and a message for the portal; it may raise to cancel the run (we let it propagate)."""


class AnalyticsInputError(ValueError):
    """Bad request about the data (target missing, too few rows, ...): the message is for a person."""


@dataclass(frozen=True)
class ParamInfo:
    """One tunable hyperparameter, as the portal shows it and the co-pilot tunes it."""

    type: Literal["int", "float", "choice"]
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""
    log: bool = False  # tune on a log scale (learning rates, regularisation)


@dataclass(frozen=True)
class ModelInfo:
    """A model of the catalogue: what the API lists and the portal offers."""

    name: str
    task: Task
    title: str
    description: str
    params: dict[str, ParamInfo]


@dataclass
class RunSpec:
    """What a person asked for: the task, the model (None for the co-pilot), the target and options."""

    task: Task
    model: str | None
    target: str | None = None
    features: list[str] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    horizon: int | None = None
    savings_from: datetime | None = None


@dataclass
class RunOutput:
    """Everything a run produced; see the package docstring for the shapes of predictions and charts."""

    task: Task
    model_name: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, float]
    predictions: pd.DataFrame
    charts: dict[str, Any]
    summary: str
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    feature_report: list[dict[str, Any]] = field(default_factory=list)
    model: Any = None
    warnings: list[str] = field(default_factory=list)


class Stage:
    """Maps a sub-step's own 0..100 progress into a slice [lo, hi] of the run's progress."""

    def __init__(self, progress: ProgressFn, lo: int, hi: int) -> None:
        self.progress, self.lo, self.hi = progress, lo, hi

    def __call__(self, percent: float, message: str) -> None:
        p = self.lo + (self.hi - self.lo) * max(0.0, min(100.0, percent)) / 100.0
        self.progress(round(p), message)


def describe_span(span: timedelta) -> str:
    """'9 hours', '2 days', '45 minutes': how long a period is, in words."""
    seconds = span.total_seconds()
    if seconds >= 2 * 86400:
        days = seconds / 86400
        return f"{days:.0f} days" if abs(days - round(days)) < 0.05 else f"{days:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    if seconds >= 3600:
        return "1 hour" if seconds < 5400 else f"{seconds / 3600:.1f} hours"
    minutes = seconds / 60
    return "1 minute" if round(minutes) == 1 else f"{minutes:.0f} minutes"


def known_zone(name: str) -> bool:
    """True if ``name`` is an IANA time zone this machine knows (``Asia/Seoul``, ``UTC``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone_name(moment: pd.Timestamp) -> str:
    """The zone's abbreviation at that moment ('KST', 'CEST', 'UTC'), or 'UTC+04' where it has none."""
    name = moment.tzname() or ""
    if name and name[0] not in "+-":
        return name
    offset = moment.utcoffset() or pd.Timedelta(0)
    minutes = round(offset.total_seconds() / 60)
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'-' if minutes < 0 else '+'}{hours:02d}" + (f":{rest:02d}" if rest else "")


def local_moment(ts: Any, timezone: str) -> pd.Timestamp:
    """A stored moment (UTC; naive is taken as UTC) as the clock on the factory's wall shows it."""
    moment = pd.Timestamp(ts)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment
    return moment.tz_convert(ZoneInfo(timezone))


def local_time(ts: Any, timezone: str, pattern: str = "%d %b %Y %H:%M") -> str:
    """'22 Nov 2026 00:45 KST': a moment for a sentence, in the factory's time zone with its abbreviation."""
    moment = local_moment(ts, timezone)
    return f"{moment.strftime(pattern)} {zone_name(moment)}"


def local_date(ts: Any, timezone: str, pattern: str = "%d %b %Y") -> str:
    """'22 Nov 2026': the day a moment falls on at the factory (a date needs no zone beside it)."""
    return local_moment(ts, timezone).strftime(pattern)


def describe_step(step: pd.Timedelta) -> str:
    """'15-minute', 'hourly', 'daily': the resolution of a data set, as an adjective."""
    seconds = step.total_seconds()
    if seconds == 86400:
        return "daily"
    if seconds == 3600:
        return "hourly"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:.0f}-hour"
    if seconds % 60 == 0:
        return f"{seconds / 60:.0f}-minute"
    return f"{seconds:.0f}-second"
