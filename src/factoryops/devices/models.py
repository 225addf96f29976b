"""Tables of devices, the factory's property vocabulary and each device's properties."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from factoryops.core.db import Base, TenantMixin, new_id, utcnow


class Device(TenantMixin, Base):
    """A machine of a factory. ``device_id`` is its name in MQTT topics; constant attributes only."""

    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("factory_id", "device_id"),
        UniqueConstraint("mqtt_username"),
        Index("ix_devices_factory_id_name", "factory_id", "name"),
        Index("ix_devices_factory_id_type", "factory_id", "type"),
        Index("ix_devices_factory_id_last_seen", "factory_id", "last_seen"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    device_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    type: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    location: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    firmware_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(nullable=True)
    # The device's own clock in its last written activity (payload "ts"/"timestamp"), kept as
    # metadata: points are stamped with the ingestion time (spec 5.2); this shows clock skew.
    last_device_time: Mapped[datetime | None] = mapped_column(nullable=True)
    mqtt_username: Mapped[str] = mapped_column(String(120), nullable=False)
    mqtt_password_hash: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)


class Property(TenantMixin, Base):
    """A metric name of the factory's vocabulary, learnt from telemetry. Never deleted."""

    __tablename__ = "properties"
    __table_args__ = (UniqueConstraint("factory_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    unit: Mapped[str] = mapped_column(String(32), nullable=False, default="")
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="gauge")  # gauge | counter
    unit_inferred: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    kind_inferred: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    first_seen: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class DeviceProperty(TenantMixin, Base):
    """That a device reports a property, since when and until when. Never deleted."""

    __tablename__ = "device_properties"
    __table_args__ = (UniqueConstraint("factory_id", "device_id", "property_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    device_id: Mapped[str] = mapped_column(String(64), nullable=False)
    property_name: Mapped[str] = mapped_column(String(128), nullable=False)
    first_seen: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    last_value: Mapped[float | None] = mapped_column(nullable=True)
