"""API shapes of the platform health page (root only; platform-wide figures, no factory's data)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class DependencyOut(BaseModel):
    name: str = Field(..., description="database, mqtt, timeseries or objectstore.")
    status: Literal["ok", "down"]
    latency_ms: float = Field(..., description="How long the probe took.")
    detail: str | None = Field(None, description="What was probed (dialect, address, folder).")
    error: str | None = Field(None, description="Why the probe failed.")


class ServiceStatsOut(BaseModel):
    """A process's latest figures; which ones are set depends on its kind."""

    messages_received: int | None = Field(None, description="Telemetry: MQTT messages received since start.")
    messages_accepted: int | None = Field(None, description="Telemetry: messages accepted since start.")
    messages_rejected: int | None = Field(None, description="Telemetry: messages rejected since start.")
    points_written: int | None = Field(None, description="Telemetry: points written to the time-series store.")
    spool_batches: int | None = Field(None, description="Telemetry: batches waiting in the durable spool.")
    spool_points: int | None = Field(None, description="Telemetry: points waiting in the durable spool.")
    mqtt_connected: bool | None = Field(None, description="Telemetry: connected to the MQTT broker.")
    timeseries_ok: bool | None = Field(None, description="Telemetry: the time-series store takes writes.")
    jobs_processed: int | None = Field(None, description="Worker: job attempts finished since start.")
    jobs_failed: int | None = Field(None, description="Worker: job attempts that failed since start.")
    running_job_kind: str | None = Field(
        None,
        description="Worker: the kinds of job running now (main loop, then the notification lane), "
        "comma-separated; empty: idle.",
    )


class ServicePointOut(BaseModel):
    at: datetime
    ingest_rate: float | None = Field(None, description="Telemetry: messages per second since the previous sample.")
    spool_points: int | None = None
    queue_depth: int | None = Field(None, description="Worker: jobs due and waiting, all kinds.")


class ServiceOut(BaseModel):
    id: str
    kind: str = Field(..., description="telemetry or worker.")
    name: str
    host: str
    pid: int
    version: str
    status: Literal["up", "silent", "stopped"] = Field(
        ...,
        description="up: heartbeats arrive; silent: none for three intervals (crashed, hung or cut off from the "
        "database); stopped: it shut down cleanly.",
    )
    started_at: datetime
    last_seen_at: datetime
    seconds_since_seen: float
    stopped_at: datetime | None
    interval_seconds: float
    stats: ServiceStatsOut
    history: list[ServicePointOut]


class QueueKindOut(BaseModel):
    kind: str
    queued: int = Field(..., description="Waiting, including retries scheduled for later.")
    due: int = Field(..., description="Waiting and due now.")
    running: int
    oldest_age_seconds: float = Field(..., description="How long the oldest due job has waited (0: none).")


class TrendPointOut(BaseModel):
    at: datetime
    ingest_rate: float | None = Field(None, description="Messages per second over every telemetry process.")
    queue_depth: int | None = Field(None, description="Jobs due and waiting.")
    spool_points: int | None = Field(None, description="Points in the spools of every telemetry process.")


class TelemetryFiguresOut(BaseModel):
    services_up: int
    ingest_rate: float = Field(..., description="Messages per second over the live telemetry processes (latest).")
    messages_received: int
    messages_rejected: int
    spool_points: int


class QueueFiguresOut(BaseModel):
    workers_up: int
    due: int
    running: int
    oldest_age_seconds: float
    by_kind: list[QueueKindOut]


class PlatformHealthOut(BaseModel):
    status: Literal["ok", "degraded", "down"] = Field(
        ..., description="down: the metadata database is unreachable; degraded: see problems."
    )
    problems: list[str] = Field(..., description="What needs attention, in plain words (empty when all is well).")
    checked_at: datetime
    dependencies: list[DependencyOut]
    services: list[ServiceOut] = Field(..., description="Telemetry and worker processes seen in the last 24 hours.")
    telemetry: TelemetryFiguresOut
    queue: QueueFiguresOut
    trend: list[TrendPointOut] = Field(..., description="The last minutes, from the processes' heartbeats.")
    alerts_open: dict[str, int] = Field(..., description="Alerts not yet resolved, all factories, by severity.")
    system_alerts_open: int = Field(..., description="Open system-health alerts, all factories.")
    system_alerts_by_kind: dict[str, int]
