"""API shapes of telemetry: latest values, history, rejects."""

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
    """How long this factory's telemetry is kept, in days (None: forever), and the platform's ceiling."""

    raw_days: float | None
    rollup_1m_days: float | None
    rollup_1h_days: float | None
    platform_raw_days: float | None
    platform_rollup_1m_days: float | None
    platform_rollup_1h_days: float | None
    own: bool


class RetentionUpdate(BaseModel):
    """Days to keep each resolution (None: as long as the platform keeps it); reset=true drops the factory's own."""

    raw_days: int | None = Field(None, ge=1, le=36_500)
    rollup_1m_days: int | None = Field(None, ge=1, le=36_500)
    rollup_1h_days: int | None = Field(None, ge=1, le=36_500)
    reset: bool = False
