"""Broker-side isolation for the embedded broker: each device may publish only on its own topic.

The device's MQTT username is ``{factory_id}/{device_id}`` and its password is checked against
the hash stored when the device was created or its credentials rotated. The platform's own
telemetry service signs in with a service account and may subscribe to the telemetry topics.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

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
    def __init__(self, db: Database, service_username: str, service_password: str) -> None:
        self.db = db
        self.service_username = service_username
        self.service_password = service_password

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
        return MqttIdentity("device", factory_id, device_id)

    def may_publish(self, identity: MqttIdentity, topic: str) -> bool:
        return device_may_publish(identity, topic)

    def may_subscribe(self, identity: MqttIdentity, topic_filter: str) -> bool:
        return service_may_subscribe(identity, topic_filter)
