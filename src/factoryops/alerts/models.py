"""Tables of alerts and their timeline.

At most one unresolved alert per rule and device, enforced by the database: ``open_key`` is
``"open"`` while the alert is open or acknowledged and NULL once it is resolved, and
(factory, rule, device, open_key) is unique (NULLs never collide), so two telemetry processes
racing on the same event cannot both open one.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from factoryops.core.db import Base, TenantMixin, new_id, utcnow


class AlertState(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Alert(TenantMixin, Base):
    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("factory_id", "rule_id", "device_id", "open_key"),
        Index("ix_alerts_factory_id_state_opened_at", "factory_id", "state", "opened_at"),
        Index("ix_alerts_factory_id_rule_id_device_id_opened_at", "factory_id", "rule_id", "device_id", "opened_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    rule_id: Mapped[str] = mapped_column(String(36), nullable=False)
    rule_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    device_id: Mapped[str] = mapped_column(String(64), nullable=False)
    severity: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=AlertState.open)
    open_key: Mapped[str | None] = mapped_column(String(8), nullable=True, default="open")
    trigger_values: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    clear_values: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    opened_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_by: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    resolution_note: Mapped[str] = mapped_column(Text, nullable=False, default="")


class AlertEvent(TenantMixin, Base):
    """One transition of an alert: who, when, and the values that triggered or cleared it."""

    __tablename__ = "alert_events"
    __table_args__ = (
        Index("ix_alert_events_factory_id_alert_id_at", "factory_id", "alert_id", "at"),
        Index("ix_alert_events_announced_at", "announced", "at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    alert_id: Mapped[str] = mapped_column(String(36), ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)  # opened | acknowledged | resolved
    actor: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    values: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    # The outbox flag: False while the notifications of an "opened"/"resolved" transition of the rule
    # engine are still to be queued (the engine writes it with the alert; the outbox sets it with the
    # deliveries; the workers' AnnounceSweep catches what the telemetry process could not do).
    announced: Mapped[bool] = mapped_column(nullable=False, default=True, server_default=true())
