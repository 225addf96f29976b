"""Tables of reports: the factory's report settings (tariff, CO2 factor, shifts), reports, schedules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from factoryops.core.db import Base, TenantMixin, new_id, utcnow


class ReportSettings(TenantMixin, Base):
    """One row per factory; absent means the defaults (no tariff, no emission factor, three shifts)."""

    __tablename__ = "report_settings"
    __table_args__ = (UniqueConstraint("factory_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="EUR")
    tariff: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    emission_factor_kg_per_kwh: Mapped[float | None] = mapped_column(nullable=True)
    shifts: Mapped[list[dict[str, Any]]] = mapped_column(nullable=False, default=list)
    updated_by: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class Report(TenantMixin, Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_factory_id_created_at", "factory_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    format: Mapped[str] = mapped_column(String(8), nullable=False)  # pdf | xlsx | json
    params: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    job_id: Mapped[str] = mapped_column(String(36), nullable=False, default="")
    schedule_id: Mapped[str] = mapped_column(String(36), nullable=False, default="")
    object_key: Mapped[str] = mapped_column(String(400), nullable=False, default="")
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    summary: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    error: Mapped[str] = mapped_column(Text, nullable=False, default="")
    emailed_to: Mapped[list[str]] = mapped_column(nullable=False, default=list)
    created_by: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ReportSchedule(TenantMixin, Base):
    __tablename__ = "report_schedules"
    __table_args__ = (Index("ix_report_schedules_next_run_at", "next_run_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    cadence: Mapped[str] = mapped_column(String(8), nullable=False)  # daily | weekly | monthly
    format: Mapped[str] = mapped_column(String(8), nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    recipients: Mapped[list[str]] = mapped_column(nullable=False, default=list)
    enabled: Mapped[bool] = mapped_column(nullable=False, default=True)
    next_run_at: Mapped[datetime] = mapped_column(nullable=False)
    last_run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_report_id: Mapped[str] = mapped_column(String(36), nullable=False, default="")
    created_by: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
