"""Parsing of telemetry topics and payloads. Pure logic: no I/O.

A payload is a JSON object of metric name to number. Nested objects are flattened with dots
(``{"phase_a": {"voltage": 229.8}}`` gives ``phase_a.voltage``), booleans become 0/1. A few
reserved keys carry metadata rather than metrics: the device's own timestamp (``ts``,
``timestamp`` or ``time``, kept as metadata; the point's time is the ingestion time) and the
firmware version (``firmware``, ``fw``, ``firmware_version``). Whole-message problems reject
the message; a bad metric is dropped with its reason while the good ones in the same message
are kept.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TOPIC_RE = re.compile(r"^factories/([^/+#]{1,64})/devices/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})/telemetry$")
METRIC_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
TIMESTAMP_KEYS = ("ts", "timestamp", "time")
FIRMWARE_KEYS = ("firmware", "fw", "firmware_version", "fw_version")
MAX_DEPTH = 5
MAX_METRICS = 1000


class Reason:
    """Reject reasons: stable strings used in counters, logs and the portal's reject log."""

    bad_topic = "bad_topic"
    oversize = "oversize"
    invalid_json = "invalid_json"
    not_an_object = "not_an_object"
    no_metrics = "no_metrics"
    too_many_metrics = "too_many_metrics"
    unknown_device = "unknown_device"
    device_disabled = "device_disabled"
    non_numeric = "non_numeric"
    non_finite = "non_finite"
    invalid_metric_name = "invalid_metric_name"
    too_deep = "too_deep"
    registration_failed = "registration_failed"
    too_many_properties = "too_many_properties"


class PayloadRejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class ParsedPayload:
    metrics: dict[str, float]
    device_time: Any = None  # as sent (epoch s/ms or ISO 8601); parse_device_time() reads it when written
    firmware: str | None = None
    dropped: list[tuple[str, str, str]] = field(default_factory=list)  # (reason, metric, detail)


_TOPICS: dict[str, tuple[str, str]] = {}  # topics seen, parsed: a fleet repeats the same ones
_TOPICS_MAX = 200_000


def parse_topic(topic: str) -> tuple[str, str]:
    """(factory_id, device_id) from ``factories/{factory_id}/devices/{device_id}/telemetry``."""
    found = _TOPICS.get(topic)
    if found is not None:
        return found
    match = TOPIC_RE.match(topic)
    if not match:
        raise PayloadRejected(
            Reason.bad_topic, f"topic {topic[:200]!r} is not factories/<factory>/devices/<device>/telemetry"
        )
    if len(_TOPICS) >= _TOPICS_MAX:
        _TOPICS.clear()
    found = _TOPICS[topic] = (match.group(1), match.group(2))
    return found


def parse_device_time(value: Any) -> datetime | None:
    """The device's timestamp as an aware datetime; None when it is not one."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            seconds = value / 1000 if value > 1e11 else value  # milliseconds or seconds since the epoch
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def parse_payload(raw: bytes, max_bytes: int) -> ParsedPayload:
    if len(raw) > max_bytes:
        raise PayloadRejected(Reason.oversize, f"{len(raw)} bytes, the limit is {max_bytes}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadRejected(Reason.invalid_json, str(exc)[:200]) from exc
    if not isinstance(data, dict):
        raise PayloadRejected(Reason.not_an_object, f"the payload is a JSON {type(data).__name__}, not an object")
    result = ParsedPayload(metrics={})
    for key in TIMESTAMP_KEYS:
        if key in data and not isinstance(data[key], dict):
            result.device_time = data.pop(key)
            break
    for key in FIRMWARE_KEYS:
        if key in data and isinstance(data[key], str | int | float) and not isinstance(data[key], bool):
            result.firmware = str(data.pop(key))[:64]
            break
    _flatten(data, "", 1, result)
    if len(result.metrics) > MAX_METRICS:
        raise PayloadRejected(Reason.too_many_metrics, f"{len(result.metrics)} metrics, the limit is {MAX_METRICS}")
    if not result.metrics and not result.dropped:
        raise PayloadRejected(Reason.no_metrics, "the payload holds no metrics")
    return result


def _flatten(obj: dict[str, Any], prefix: str, depth: int, result: ParsedPayload) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if depth >= MAX_DEPTH:
                result.dropped.append((Reason.too_deep, name[:128], f"nested deeper than {MAX_DEPTH} levels"))
            else:
                _flatten(value, f"{name}.", depth + 1, result)
            continue
        if not METRIC_RE.match(name):
            result.dropped.append((Reason.invalid_metric_name, name[:128], "use letters, digits, '_', '-', '.'"))
            continue
        if isinstance(value, bool):
            result.metrics[name] = 1.0 if value else 0.0
        elif isinstance(value, int | float):
            number = float(value)
            if math.isfinite(number):
                result.metrics[name] = number
            else:
                result.dropped.append((Reason.non_finite, name, repr(value)))
        else:
            result.dropped.append((Reason.non_numeric, name, f"{type(value).__name__} value"))
