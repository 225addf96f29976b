"""The delivery log: one row per notification to one recipient on one channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from factoryops.core.db import Base, TenantMixin, new_id, utcnow


class Delivery(TenantMixin, Base):
    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_factory_id_created_at", "factory_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    alert_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    event: Mapped[str] = mapped_column(String(16), nullable=False)  # opened | resolved
    channel: Mapped[str] = mapped_column(String(16), nullable=False)  # email | whatsapp
    recipient: Mapped[str] = mapped_column(String(254), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
