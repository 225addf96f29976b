"""API shapes of telemetry: latest values, history, rejects."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


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
