"""API shapes of devices and properties."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEVICE_ID_RULE = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"

DeviceStatus = Literal["online", "offline", "never_seen", "disabled"]
PropertyKind = Literal["gauge", "counter"]


def check_device_id(value: str) -> str:
    if not DEVICE_ID_RE.match(value):
        raise ValueError(f"a device id is {DEVICE_ID_RULE}")
    return value


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    device_id: str
    name: str
    type: str
    location: str
    enabled: bool
    status: DeviceStatus = "never_seen"
    firmware_version: str | None
    last_seen: datetime | None
    last_device_time: datetime | None = Field(
        None, description="The device's own clock at its last written activity (payload ts), to show clock skew."
    )
    created_at: datetime
    updated_at: datetime


class MqttCredentials(BaseModel):
    """Shown once, when created or rotated."""

    username: str
    password: str
    client_id: str
    topic: str


class DeviceCreated(DeviceOut):
    mqtt: MqttCredentials


class DeviceCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"device_id": "press-07", "name": "Press 7", "type": "hydraulic-press", "location": "Hall B"}]
        }
    )
    device_id: str = Field(..., description=f"The device's id in MQTT topics: {DEVICE_ID_RULE}.")
    name: str = Field("", max_length=200)
    type: str = Field("", max_length=100)
    location: str = Field("", max_length=200)

    _id = field_validator("device_id")(check_device_id)


class DeviceUpdate(BaseModel):
    name: str | None = Field(None, max_length=200)
    type: str | None = Field(None, max_length=100)
    location: str | None = Field(None, max_length=200)
    enabled: bool | None = None


class DeviceSummary(BaseModel):
    total: int
    online: int
    offline: int
    never_seen: int
    disabled: int
    online_window_seconds: int


class ImportError_(BaseModel):
    line: int
    device_id: str
    message: str


class ImportResult(BaseModel):
    created: list[DeviceCreated]
    updated: int
    errors: list[ImportError_]


class PropertyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    display_name: str
    unit: str
    kind: PropertyKind
    unit_inferred: bool
    kind_inferred: bool
    first_seen: datetime
    last_seen: datetime


class PropertyUpdate(BaseModel):
    display_name: str | None = Field(None, max_length=200)
    unit: str | None = Field(None, max_length=32)
    kind: PropertyKind | None = None


class DevicePropertyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    property_name: str
    first_seen: datetime
    last_seen: datetime
    last_value: float | None
