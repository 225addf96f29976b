"""API shapes of telemetry: latest values, history, rejects, retention."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LatestValue(BaseModel):
    property: str
    ts: datetime
    value: float
    unit: str = ""
    display_name: str = ""


class DeviceLatest(BaseModel):
    device_id: str
    values: list[LatestValue]


class SeriesOut(BaseModel):
    device_id: str
    property: str
    points: list[tuple[datetime, float]]


class HistoryOut(BaseModel):
    resolution: Literal["raw", "1m", "1h"]
    aggregate: str | None
    interval_seconds: int | None
    start: datetime
    end: datetime
    series: list[SeriesOut]


class RejectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    device_id: str
    reason: str
    metric: str
    detail: str
    excerpt: str


class RejectCountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    device_id: str
    reason: str
    count: int
    last_at: datetime


class RetentionOut(BaseModel):
    """How long this factory's telemetry is kept, in days per resolution (None: forever).

    ``*_days`` is what is in force: the factory's own setting (``own_*_days``; None follows the
    platform) capped by the platform's maximum (``platform_*_days``).
    """

    raw_days: int | None = Field(description="Days raw points are kept (None: forever).")
    rollup_1m_days: int | None = Field(description="Days the 1-minute rollups are kept (None: forever).")
    rollup_1h_days: int | None = Field(description="Days the 1-hour rollups are kept (None: forever).")
    own_raw_days: int | None = Field(description="The factory's own setting for raw points (None: the platform's).")
    own_rollup_1m_days: int | None = Field(description="The factory's own setting for 1-minute rollups.")
    own_rollup_1h_days: int | None = Field(description="The factory's own setting for 1-hour rollups.")
    platform_raw_days: int | None = Field(description="The platform's maximum for raw points (None: forever).")
    platform_rollup_1m_days: int | None = Field(description="The platform's maximum for 1-minute rollups.")
    platform_rollup_1h_days: int | None = Field(description="The platform's maximum for 1-hour rollups.")
    own: bool = Field(description="True when the factory keeps some resolution less long than the platform.")
    updated_by: str = Field("", description="Who last changed the setting (empty: never changed).")
    updated_at: datetime | None = Field(None, description="When the setting was last changed.")
    swept_at: datetime | None = Field(None, description="When a worker last deleted what the setting no longer keeps.")


class RetentionUpdate(BaseModel):
    """Days to keep each resolution, at most the platform's; None keeps it as long as the platform does.

    ``reset: true`` is the same as three nulls: the factory follows the platform again.
    """

    model_config = ConfigDict(extra="forbid")
    raw_days: int | None = Field(None, ge=1, le=36_500, description="Days to keep raw points (None: the platform's).")
    rollup_1m_days: int | None = Field(None, ge=1, le=36_500, description="Days to keep the 1-minute rollups.")
    rollup_1h_days: int | None = Field(None, ge=1, le=36_500, description="Days to keep the 1-hour rollups.")
    reset: bool = Field(False, description="Follow the platform for all three (ignores the days given).")
