"""The ingest pipeline: one MQTT message in, points handed to the batch writer, or a reason why not.

The factory and the device come from the topic only (the broker has already checked that the
device's credential may publish there). Every path ends by calling ``on_safe`` exactly once:
after the points are written or spooled, or at once for a message that is rejected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import Counter

from factoryops.core import logs
from factoryops.core.db import DatabaseUnavailable, utcnow
from factoryops.devices.discovery import Registry
from factoryops.notifications import system_alerts
from factoryops.ports.timeseries.base import Point
from factoryops.rules.engine import RuleEngine
from factoryops.telemetry.payload import PayloadRejected, Reason, parse_payload, parse_topic
from factoryops.telemetry.rejects import RejectLog
from factoryops.telemetry.writer import BatchWriter

log = logging.getLogger(__name__)

MESSAGES = Counter("factoryops_telemetry_messages_total", "Telemetry messages received, by outcome.", ["outcome"])


class IngestPipeline:
    def __init__(
        self,
        registry: Registry,
        writer: BatchWriter,
        rejects: RejectLog,
        max_payload_bytes: int = 65_536,
        clock: Callable[[], datetime] = utcnow,
        engine: RuleEngine | None = None,
        stamp_slot: int = 0,
        stamp_slots: int = 1,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.writer = writer
        self.rejects = rejects
        self.max_payload_bytes = max_payload_bytes
        self.clock = clock
        self._last_ts: dict[tuple[str, str], datetime] = {}
        # Several telemetry processes may take messages of one device (a broker that deals shared
        # subscriptions round-robin): each stamps only microseconds of its own residue class, so two
        # processes never give two messages of one device the same time (which would be one point).
        self._slot = timedelta(microseconds=stamp_slot % stamp_slots)
        self._slots = stamp_slots
        self._step = timedelta(microseconds=stamp_slots)
        self._lock = threading.Lock()
        self.accepted = 0
        self.rejected = 0

    def _stamp(self, factory_id: str, device_id: str, received_at: datetime | None = None) -> datetime:
        """Ingestion time (spec 5.2), strictly increasing per device so no two messages share a point."""
        now = received_at or self.clock()
        if self._slots > 1:
            now = now - timedelta(microseconds=now.microsecond % self._slots) + self._slot
        key = (factory_id, device_id)
        with self._lock:
            last = self._last_ts.get(key)
            if last is not None and now <= last:
                now = last + self._step
            self._last_ts[key] = now
        return now

    def _drop_over_limit(self, factory_id: str, device_id: str, metrics: dict[str, float], payload: bytes) -> None:
        """Drops (and logs as rejects) the new metric names past the device's or the factory's property
        limit; rejects the message if nothing is left. Known names always pass."""
        refused = self.registry.over_limit(factory_id, device_id, list(metrics))
        if not refused:
            return
        limits = f"{self.registry.max_per_device} per device, {self.registry.max_per_factory} per factory"
        for name in refused:
            del metrics[name]
            self.rejects.add(
                factory_id,
                device_id,
                Reason.too_many_properties,
                f"new property {name!r} is past the property limit ({limits})",
                metric=name,
                excerpt=payload,
            )
        system_alerts.report(
            factory_id,
            "property_limit",
            f"device {device_id!r} sends new properties past the limit ({limits}), e.g. {sorted(refused)[:5]}: "
            "they are dropped. A firmware that puts changing values in metric names does this.",
        )
        if not metrics:
            raise PayloadRejected(Reason.too_many_properties, f"every new property is past the limit ({limits})")

    @logs.unit_of_work  # log lines of one message name its factory and device
    def handle(
        self, topic: str, payload: bytes, on_safe: Callable[[], None], received_at: datetime | None = None
    ) -> str:
        """Process one message; returns ``accepted`` or the reason it was rejected.

        Raises :class:`DatabaseUnavailable` (without calling ``on_safe``) when the metadata database
        is needed and away: the caller keeps the message and hands it in again later, with the
        time it was received (``received_at``) so its points keep their ingestion time.
        """
        factory_id = device_id = ""
        try:
            factory_id, device_id = parse_topic(topic)
            logs.annotate(factory_id=factory_id, device_id=device_id)
            try:
                device = self.registry.device(factory_id, device_id)
            except DatabaseUnavailable:
                raise  # not the message's fault: it waits, unacknowledged, for the database
            except Exception as exc:
                raise PayloadRejected(Reason.registration_failed, f"device registry unavailable: {exc}") from exc
            if device is None:
                raise PayloadRejected(Reason.unknown_device, f"device {device_id!r} is not registered in this factory")
            if not device.enabled:
                raise PayloadRejected(Reason.device_disabled, f"device {device_id!r} is disabled")
            parsed = parse_payload(payload, self.max_payload_bytes)
            for reason, metric, detail in parsed.dropped:
                self.rejects.add(factory_id, device_id, reason, detail, metric=metric, excerpt=payload)
            if not parsed.metrics:
                raise PayloadRejected(parsed.dropped[0][0], "no valid metric in the message")
            self._drop_over_limit(factory_id, device_id, parsed.metrics, payload)
            ts = self._stamp(factory_id, device_id, received_at)
            try:
                self.registry.ensure_properties(factory_id, device_id, list(parsed.metrics), ts)
            except DatabaseUnavailable:
                raise
            except Exception as exc:
                # Spec 10.3: reject the message, log the error, tell the system admin.
                log.error("SYSTEM HEALTH: property registration failed for %s/%s: %s", factory_id, device_id, exc)
                raise PayloadRejected(Reason.registration_failed, str(exc)[:200]) from exc
        except PayloadRejected as rejected:
            self.rejects.add(factory_id, device_id, rejected.reason, rejected.detail, excerpt=payload)
            MESSAGES.labels("rejected").inc()
            self.rejected += 1
            on_safe()
            return rejected.reason
        points = [Point.trusted(device_id, name, ts, value) for name, value in parsed.metrics.items()]
        self.registry.record(factory_id, device_id, ts, parsed.metrics, parsed.firmware, parsed.device_time)
        self.writer.submit(factory_id, points, on_safe)
        MESSAGES.labels("accepted").inc()
        self.accepted += 1
        if self.engine is not None:
            try:
                self.engine.on_event(factory_id, device_id, device.type, ts, parsed.metrics)
            except Exception:  # a rule that fails must not stop ingestion; the points are already queued
                log.exception("rule evaluation failed for %s/%s", factory_id, device_id)
        return "accepted"
