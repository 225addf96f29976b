"""Tables of the telemetry domain: the reject log and reject counts a super admin reads, and the retention."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from factoryops.core.db import Base, TenantMixin, new_id, utcnow


class TelemetryReject(TenantMixin, Base):
    """One rejected message or metric, with why (the newest ones per factory are kept)."""

    __tablename__ = "telemetry_rejects"
    __table_args__ = (Index("ix_telemetry_rejects_factory_id_at", "factory_id", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    device_id: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    metric: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    detail: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    excerpt: Mapped[str] = mapped_column(String(300), nullable=False, default="")


class RejectCount(TenantMixin, Base):
    """How many messages or metrics of a device were rejected, per reason, since the beginning."""

    __tablename__ = "telemetry_reject_counts"
    __table_args__ = (UniqueConstraint("factory_id", "device_id", "reason"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    device_id: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class TelemetryRetention(TenantMixin, Base):
    """How long the factory keeps its telemetry, per resolution, when shorter than the platform keeps it.

    Days of raw points, 1-minute and 1-hour rollups; None follows the platform's maximum for that
    resolution (``FACTORYOPS_TIMESERIES__*_RETENTION_DAYS``). No row: the platform's for all three.
    ``swept_at`` is when a worker last claimed the factory's retention sweep (None: due now).
    """

    __tablename__ = "telemetry_retention"
    __table_args__ = (UniqueConstraint("factory_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    raw_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rollup_1m_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rollup_1h_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_by: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    swept_at: Mapped[datetime | None] = mapped_column(nullable=True)
