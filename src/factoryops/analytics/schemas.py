"""API shapes of analytics."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from factoryops.core.moments import AwareMoment
from factoryops.core.text import Line

Resolution = Literal["raw", "1m", "5m", "15m", "1h", "1d"]
AggregateName = Literal["mean", "min", "max", "sum", "count"]
TaskName = Literal["anomaly", "forecast", "baseline", "profile"]


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Line = Field(..., min_length=1, max_length=200)
    device_ids: list[str] = Field(..., min_length=1, max_length=5000)
    properties: list[str] | None = Field(None, description="Properties to export; all the devices report when omitted.")
    start: AwareMoment
    end: AwareMoment
    resolution: Resolution = "15m"
    aggregate: AggregateName = Field("mean", description="How values are combined per window (not for raw).")


class DatasetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    request: dict[str, Any]
    state: str
    job_id: str
    row_count: int
    size_bytes: int
    columns: list[str]
    content_hash: str
    error: str
    created_by: str
    created_at: datetime
    ready_at: datetime | None


class DatasetRequested(BaseModel):
    dataset: DatasetOut
    reused: bool = Field(..., description="True when an existing snapshot answers the same request.")


class DatasetPreview(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    manifest: dict[str, Any]


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    dataset_id: str = Field(..., max_length=36)
    mode: Literal["standard", "copilot"] = "standard"
    task: TaskName
    model: str | None = Field(None, max_length=64, description="The model (standard mode); the co-pilot picks its own.")
    target: str | None = Field(None, max_length=300)
    features: list[str] | None = Field(None, max_length=500)
    params: dict[str, Any] = Field(default_factory=dict)
    horizon: int | None = Field(None, ge=1, le=10_000, description="Forecast steps ahead (default: a day).")
    savings_from: AwareMoment | None = None
    budget_seconds: float = Field(300, ge=10, le=3600, description="Co-pilot time budget.")
    name: Line = Field("", max_length=200, description="Model name in the registry (default: task-target).")


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    id: str
    dataset_id: str
    mode: str
    task: str
    spec: dict[str, Any]
    state: str
    job_id: str
    progress: int = 0
    message: str = ""
    model_name: str
    registry_name: str
    model_version: int | None
    source_model_id: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    summary: str
    leaderboard: list[dict[str, Any]]
    feature_report: list[dict[str, Any]]
    warnings: list[str]
    artifacts: list[str]
    error: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ModelVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    id: str
    name: str
    version: int
    run_id: str
    dataset_id: str
    task: str
    model_name: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    columns: list[str]
    target: str
    created_by: str
    created_at: datetime


class ScoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(..., max_length=36)


class ParamOut(BaseModel):
    name: str
    type: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: list[Any] | None = None
    help: str = ""


class ModelInfoOut(BaseModel):
    name: str
    task: str
    title: str
    description: str
    params: list[ParamOut]


class AnalyticsStatus(BaseModel):
    available: bool
    message: str
