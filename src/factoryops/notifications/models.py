"""Tables of notifications: the delivery log, people's preferences, flood windows, reminders and
the system-health alerts.

At most one open system alert per factory and kind is enforced by the database, the way alerts
do it: ``open_key`` is ``"open"`` while the alert is open and NULL once it is resolved, and
(factory, kind, open_key) is unique.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from factoryops.core.db import Base, TenantMixin, new_id, utcnow


class Delivery(TenantMixin, Base):
    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_factory_id_created_at", "factory_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # The alert, or the system alert for event "system".
    alert_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    event: Mapped[str] = mapped_column(String(16), nullable=False)  # opened | resolved | reminder | digest | system
    channel: Mapped[str] = mapped_column(String(16), nullable=False)  # email | whatsapp
    recipient: Mapped[str] = mapped_column(String(254), nullable=False)
    # queued | sent | failed | suppressed (flood cap, or a reminder whose alert was handled first)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # a recipient that is a user
    detail: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)  # reminder number, digest summary


class NotificationPreference(TenantMixin, Base):
    """One user's own choices: channels, minimum severity, quiet hours. No row: the defaults."""

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("factory_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    email: Mapped[bool] = mapped_column(nullable=False, default=True)
    whatsapp: Mapped[bool] = mapped_column(nullable=False, default=False)
    whatsapp_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    min_severity: Mapped[str] = mapped_column(String(16), nullable=False, default="info")
    quiet_start: Mapped[str | None] = mapped_column(String(5), nullable=True)  # HH:MM, factory time zone
    quiet_end: Mapped[str | None] = mapped_column(String(5), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class FloodWindow(TenantMixin, Base):
    """The current flood window of one rule and device: how many notifications went out in it."""

    __tablename__ = "notification_flood_windows"
    __table_args__ = (UniqueConstraint("factory_id", "rule_id", "device_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    rule_id: Mapped[str] = mapped_column(String(36), nullable=False)
    device_id: Mapped[str] = mapped_column(String(64), nullable=False)
    window_start: Mapped[datetime] = mapped_column(nullable=False)
    window_end: Mapped[datetime] = mapped_column(nullable=False)
    sent: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    suppressed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Reminder(TenantMixin, Base):
    """The reminders of one alert: when the next is due and how many went out."""

    __tablename__ = "notification_reminders"
    __table_args__ = (
        UniqueConstraint("factory_id", "alert_id"),
        Index("ix_notification_reminders_done_next_at", "done", "next_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    alert_id: Mapped[str] = mapped_column(String(36), ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False)
    rule_id: Mapped[str] = mapped_column(String(36), nullable=False)
    next_at: Mapped[datetime] = mapped_column(nullable=False)
    sent: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    done: Mapped[bool] = mapped_column(nullable=False, default=False)


class SystemAlert(TenantMixin, Base):
    """A failure of the platform itself that a factory's super admins and the platform root see."""

    __tablename__ = "system_alerts"
    __table_args__ = (
        UniqueConstraint("factory_id", "kind", "open_key"),
        Index("ix_system_alerts_factory_id_opened_at", "factory_id", "opened_at"),
        Index("ix_system_alerts_state_opened_at", "state", "opened_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)  # timeseries_down | registration_failing | ...
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="open")  # open | resolved
    open_key: Mapped[str | None] = mapped_column(String(8), nullable=True, default="open")
    opened_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    occurrences: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
