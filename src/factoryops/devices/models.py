"""Tables of devices, the factory's property vocabulary and each device's properties."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from factoryops.core.db import Base, TenantMixin, new_id, utcnow

DEFAULT_ONLINE_WINDOW = timedelta(minutes=5)
# The registry writes a device's last_seen at most this often (devices/discovery.py), so the
# stored last_seen may lag the device's last message by up to this much.
ACTIVITY_SECONDS = 60
MAX_REPORT_INTERVAL_SECONDS = 7 * 86_400


def online_window(report_interval_seconds: int | None) -> timedelta:
    """How long after its last_seen a device counts as online.

    Five minutes; for a device that reports less often (``report_interval_seconds``, None when
    unknown), three of its intervals plus the registry's batching minute, so that one or two
    late or lost messages do not make it "offline".
    """
    if not report_interval_seconds:
        return DEFAULT_ONLINE_WINDOW
    return max(DEFAULT_ONLINE_WINDOW, timedelta(seconds=3 * report_interval_seconds + ACTIVITY_SECONDS))


def online_until(last_seen: datetime | None, report_interval_seconds: int | None) -> datetime | None:
    """The stored ``online_until`` of a device last seen then: last_seen + its online window."""
    return None if last_seen is None else last_seen + online_window(report_interval_seconds)


class Device(TenantMixin, Base):
    """A machine of a factory. ``device_id`` is its name in MQTT topics; constant attributes only.

    ``online_until`` (last_seen + the device's online window) is stored so that the status filter
    and the status counts are one indexed comparison in SQL on every database. It is written with
    last_seen: by the registry's batched activity writes (Core, devices/discovery.py) and, for
    ORM writes of last_seen or report_interval_seconds, by the listeners below.
    """

    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("factory_id", "device_id"),
        UniqueConstraint("mqtt_username"),
        Index("ix_devices_factory_id_name", "factory_id", "name"),
        Index("ix_devices_factory_id_type", "factory_id", "type"),
        Index("ix_devices_factory_id_last_seen", "factory_id", "last_seen"),
        Index("ix_devices_factory_id_online_until", "factory_id", "online_until"),
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
    # How often the device reports, when known: it widens the online window (online_window()).
    report_interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    online_until: Mapped[datetime | None] = mapped_column(nullable=True)
    mqtt_username: Mapped[str] = mapped_column(String(120), nullable=False)
    mqtt_password_hash: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)


@event.listens_for(Device.last_seen, "set")
def _last_seen_set(target: Device, value: datetime | None, _old: Any, _initiator: Any) -> None:
    target.online_until = online_until(value, target.report_interval_seconds)


@event.listens_for(Device.report_interval_seconds, "set")
def _report_interval_set(target: Device, value: int | None, _old: Any, _initiator: Any) -> None:
    target.online_until = online_until(target.last_seen, value)


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
