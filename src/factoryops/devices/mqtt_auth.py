"""Broker-side isolation for the embedded broker: each device may publish only on its own topic.

The device's MQTT username is ``{factory_id}/{device_id}`` and its password is checked against
the hash stored when the device was created or its credentials rotated. The platform's own
telemetry service signs in with a service account and may subscribe to the telemetry topics.
"""

from __future__ import annotations

import hmac
import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from factoryops.core.db import Database
from factoryops.core.mqtt_password import verify_mqtt_password
from factoryops.devices.models import Device
from factoryops.devices.service import telemetry_topic

log = logging.getLogger(__name__)

SERVICE_FILTERS = ("factories/+/devices/+/telemetry",)


@dataclass(frozen=True)
class MqttIdentity:
    kind: str  # device | service
    factory_id: str = ""
    device_id: str = ""


def device_may_publish(identity: MqttIdentity, topic: str) -> bool:
    return identity.kind == "device" and topic == telemetry_topic(identity.factory_id, identity.device_id)


def service_may_subscribe(identity: MqttIdentity, topic_filter: str) -> bool:
    if identity.kind != "service":
        return False
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        topic_filter = parts[2] if len(parts) == 3 else ""
    return topic_filter in SERVICE_FILTERS


class DeviceAuth:
    """The embedded broker's auth hook: devices by their registry credentials, the telemetry service
    by its account. :meth:`revoked` lets the broker disconnect a device that was disabled, removed or
    given new credentials while connected (checked every few seconds)."""

    def __init__(self, db: Database, service_username: str, service_password: str) -> None:
        self.db = db
        self.service_username = service_username
        self.service_password = service_password
        self._lock = threading.Lock()
        self._signed_in: dict[str, str] = {}  # client id -> the password hash its connection proved

    def authenticate(self, client_id: str, username: str | None, password: str | None) -> MqttIdentity | None:
        if not username or password is None:
            return None
        if hmac.compare_digest(username, self.service_username):
            ok = hmac.compare_digest(password.encode(), self.service_password.encode())
            return MqttIdentity("service") if ok else None
        factory_id, _, device_id = username.partition("/")
        if not factory_id or not device_id:
            return None
        try:
            with self.db.factory_session(factory_id) as s:
                row = s.execute(
                    select(Device.mqtt_password_hash, Device.enabled).where(Device.device_id == device_id)
                ).first()
        except Exception:  # a database hiccup refuses the connection; the device retries
            log.exception("MQTT authentication could not read the device registry")
            return None
        if row is None or not row[1] or not verify_mqtt_password(password, row[0]):
            return None
        with self._lock:
            self._signed_in[client_id] = row[0]
        return MqttIdentity("device", factory_id, device_id)

    def revoked(self, clients: dict[str, Any]) -> set[str]:
        """Of the connected clients, the devices now disabled, removed, or holding old credentials."""
        with self._lock:
            for gone in set(self._signed_in) - set(clients):
                del self._signed_in[gone]  # disconnected meanwhile
            proved = dict(self._signed_in)
        by_factory: dict[str, dict[str, list[str]]] = {}
        for client_id, identity in clients.items():
            if isinstance(identity, MqttIdentity) and identity.kind == "device":
                by_factory.setdefault(identity.factory_id, {}).setdefault(identity.device_id, []).append(client_id)
        out: set[str] = set()
        for factory_id, devices in by_factory.items():
            rows: dict[str, tuple[str, bool]] = {}
            ids = sorted(devices)
            with self.db.factory_session(factory_id) as s:
                for start in range(0, len(ids), 1000):
                    chunk = ids[start : start + 1000]
                    query = select(Device.device_id, Device.mqtt_password_hash, Device.enabled).where(
                        Device.device_id.in_(chunk)
                    )
                    rows.update({d: (h, bool(e)) for d, h, e in s.execute(query)})
            for device_id, client_ids in devices.items():
                row = rows.get(device_id)
                for client_id in client_ids:
                    if row is None or not row[1] or proved.get(client_id, row[0]) != row[0]:
                        out.add(client_id)
        return out

    def may_publish(self, identity: MqttIdentity, topic: str) -> bool:
        return device_may_publish(identity, topic)

    def may_subscribe(self, identity: MqttIdentity, topic_filter: str) -> bool:
        return service_may_subscribe(identity, topic_filter)
