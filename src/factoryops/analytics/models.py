"""Tables of analytics: datasets (immutable snapshots), runs, and the versioned model registry.

A dataset row describes a snapshot in the object store; once ``ready`` its content never changes
(the Parquet file and the manifest are written once, and the row keeps their content hash). The
same request (devices, properties, range, resolution, aggregate) has one snapshot per factory,
enforced by the unique ``request_hash``. A run reads one dataset and records what spec 8.3 asks
of every run: model name and version, dataset reference, hyperparameters, metrics, timestamp and
status; a run that fits a model adds a :class:`ModelVersion` (version numbers per factory and
model name, unique).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from factoryops.core.db import Base, TenantMixin, new_id, utcnow


class DatasetState(StrEnum):
    pending = "pending"
    ready = "ready"
    failed = "failed"


class Dataset(TenantMixin, Base):
    __tablename__ = "analytics_datasets"
    __table_args__ = (
        UniqueConstraint("factory_id", "request_hash"),
        Index("ix_analytics_datasets_factory_id_created_at", "factory_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    request: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=DatasetState.pending)
    job_id: Mapped[str] = mapped_column(String(36), nullable=False, default="")
    row_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    columns: Mapped[list[str]] = mapped_column(nullable=False, default=list)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    object_key: Mapped[str] = mapped_column(String(400), nullable=False, default="")
    manifest_key: Mapped[str] = mapped_column(String(400), nullable=False, default="")
    error: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RunMode(StrEnum):
    standard = "standard"
    copilot = "copilot"
    scoring = "scoring"


class RunState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class Run(TenantMixin, Base):
    __tablename__ = "analytics_runs"
    __table_args__ = (
        Index("ix_analytics_runs_factory_id_created_at", "factory_id", "created_at"),
        Index("ix_analytics_runs_factory_id_dataset_id", "factory_id", "dataset_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(String(36), nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    task: Mapped[str] = mapped_column(String(16), nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=RunState.queued)
    job_id: Mapped[str] = mapped_column(String(36), nullable=False, default="")
    model_name: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    registry_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source_model_id: Mapped[str] = mapped_column(String(36), nullable=False, default="")
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    summary: Mapped[str] = mapped_column(Text, nullable=False, default="")
    leaderboard: Mapped[list[dict[str, Any]]] = mapped_column(nullable=False, default=list)
    feature_report: Mapped[list[dict[str, Any]]] = mapped_column(nullable=False, default=list)
    warnings: Mapped[list[str]] = mapped_column(nullable=False, default=list)
    artifacts: Mapped[dict[str, str]] = mapped_column(nullable=False, default=dict)
    error: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ModelVersion(TenantMixin, Base):
    __tablename__ = "analytics_model_versions"
    __table_args__ = (
        UniqueConstraint("factory_id", "name", "version"),
        Index("ix_analytics_model_versions_factory_id_created_at", "factory_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    run_id: Mapped[str] = mapped_column(String(36), nullable=False)
    dataset_id: Mapped[str] = mapped_column(String(36), nullable=False)
    task: Mapped[str] = mapped_column(String(16), nullable=False)
    model_name: Mapped[str] = mapped_column(String(64), nullable=False)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    columns: Mapped[list[str]] = mapped_column(nullable=False, default=list)
    target: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    artifact_key: Mapped[str] = mapped_column(String(400), nullable=False)
    created_by: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
