"""API shapes of devices and properties."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from factoryops.core.text import Line
from factoryops.devices.models import DEFAULT_ONLINE_WINDOW, MAX_REPORT_INTERVAL_SECONDS

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEVICE_ID_RULE = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"

DeviceStatus = Literal["online", "offline", "never_seen", "disabled"]
REPORT_INTERVAL_RULE = f"a whole number of seconds from 1 to {MAX_REPORT_INTERVAL_SECONDS}"
REPORT_INTERVAL_DESCRIPTION = (
    "How often the device reports, in seconds (null: unknown). The device is online while its last "
    "message is within max(5 min, 3 x this + 60 s)."
)
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
    report_interval_seconds: int | None = Field(description=REPORT_INTERVAL_DESCRIPTION)
    online_window_seconds: int = Field(
        int(DEFAULT_ONLINE_WINDOW.total_seconds()),
        description="The device is online while its last_seen is at most this many seconds old.",
    )
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
    name: Line = Field("", max_length=200)
    type: Line = Field("", max_length=100)
    location: Line = Field("", max_length=200)
    report_interval_seconds: int | None = Field(
        None, ge=1, le=MAX_REPORT_INTERVAL_SECONDS, description=REPORT_INTERVAL_DESCRIPTION
    )

    _id = field_validator("device_id")(check_device_id)


class DeviceUpdate(BaseModel):
    name: Line | None = Field(None, max_length=200)
    type: Line | None = Field(None, max_length=100)
    location: Line | None = Field(None, max_length=200)
    enabled: bool | None = None
    report_interval_seconds: int | None = Field(
        None,
        ge=1,
        le=MAX_REPORT_INTERVAL_SECONDS,
        description=REPORT_INTERVAL_DESCRIPTION + " Sent as null, it is cleared; left out, it is kept.",
    )


class DeviceSummary(BaseModel):
    total: int
    online: int
    offline: int
    never_seen: int
    disabled: int
    online_window_seconds: int = Field(
        ..., description="The default online window (devices without a report interval); see each device's own."
    )


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
    display_name: Line | None = Field(None, max_length=200)
    unit: Line | None = Field(None, max_length=32)
    kind: PropertyKind | None = None


class DevicePropertyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    property_name: str
    first_seen: datetime
    last_seen: datetime
    last_value: float | None
