"""The telemetry service assembled: MQTT ingest, pipeline, registry, rejects and the batch writer.

Start order: writer, flusher, then MQTT. Stop order (SIGTERM): stop taking messages, write
or spool everything taken and send its acknowledgements, flush registry activity, disconnect.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import zlib
from datetime import datetime

from sqlalchemy import select

from factoryops.core.db import Database
from factoryops.core.settings import Settings
from factoryops.devices.discovery import Registry
from factoryops.notifications.service import Outbox
from factoryops.observability.heartbeats import HeartbeatPublisher
from factoryops.ports.timeseries.base import FactoryScope, TimeseriesError, TimeseriesStore
from factoryops.rules.engine import RuleEngine, Transition
from factoryops.telemetry.mqtt_ingest import MqttIngest
from factoryops.telemetry.pipeline import IngestPipeline
from factoryops.telemetry.rejects import RejectLog
from factoryops.telemetry.spool import Spool
from factoryops.telemetry.writer import BatchWriter
from factoryops.tenancy.models import Factory

log = logging.getLogger(__name__)
STAMP_SLOTS = 64  # telemetry processes stamp disjoint microseconds: crc32(name) % 64 (see IngestPipeline)


class FactoryDirectory:
    """Which factory ids exist (platform-level, for storing rejects of topics naming no factory)."""

    def __init__(self, db: Database, ttl: float = 30.0) -> None:
        self.db = db
        self.ttl = ttl
        self._ids: set[str] = set()
        self._at = 0.0

    def exists(self, factory_id: str) -> bool:
        if factory_id in self._ids:
            return True
        if time.monotonic() - self._at > self.ttl or factory_id not in self._ids:
            with self.db.unscoped_session() as s:  # platform-wide list of factory ids only
                self._ids = set(s.execute(select(Factory.id)).scalars())
            self._at = time.monotonic()
        return factory_id in self._ids


class TelemetryService:
    def __init__(self, settings: Settings, db: Database, store: TimeseriesStore, name: str | None = None) -> None:
        self.settings = settings
        # A stable name: a restarted process resumes its broker session and its spool.
        self.name = name or settings.telemetry_name or socket.gethostname()
        self.store = store
        self.registry = Registry(
            db,
            max_per_device=settings.mqtt.max_properties_per_device,
            max_per_factory=settings.mqtt.max_properties_per_factory,
        )
        self.factories = FactoryDirectory(db)
        self.rejects = RejectLog(db, self.factories.exists)
        self.spool = Spool(settings.data_dir / "spool" / f"telemetry-{self.name}.db")
        self.writer = BatchWriter(store, self.spool, health_after=settings.telemetry_health_after_seconds)
        outbox = Outbox(db, settings.notifications)

        def notify(factory_id: str, transition: Transition) -> None:
            try:
                outbox.on_transition(factory_id, transition)
            except Exception:  # a notification that cannot be queued must not stop ingestion or rules
                log.exception(
                    "could not queue the notifications of alert %s",
                    transition.alert_id,
                    extra={"alert_id": transition.alert_id},
                )

        def last_value_at(factory_id: str, device_id: str, prop: str) -> datetime | None:
            found = store.latest(FactoryScope(factory_id), [device_id], [prop])
            return max((sample.ts for sample in found.values()), default=None)

        self.engine = RuleEngine(db, on_transition=notify, last_value_at=last_value_at)
        self.pipeline = IngestPipeline(
            self.registry,
            self.writer,
            self.rejects,
            max_payload_bytes=settings.mqtt.max_payload_bytes,
            engine=self.engine,
            stamp_slot=zlib.crc32(self.name.encode()),
            stamp_slots=STAMP_SLOTS,
        )
        self.ingest = MqttIngest(settings.mqtt, self.pipeline, client_id=f"factoryops-telemetry-{self.name}")
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self.heartbeat = HeartbeatPublisher(
            db, "telemetry", self.name, self.stats, self.sample, every=settings.service_heartbeat_seconds
        )

    def stats(self) -> dict[str, object]:
        """This process's figures for the platform health page (platform-wide counts, no factory's data)."""
        return {
            "messages_received": self.ingest.received,
            "messages_accepted": self.pipeline.accepted,
            "messages_rejected": self.pipeline.rejected,
            "points_written": self.writer.points_written,
            "spool_batches": self.spool.depth,
            "spool_points": self.spool.points,
            "mqtt_connected": self.ingest.connected.is_set(),
            "timeseries_ok": self.writer.health.store_ok,
        }

    def sample(self) -> dict[str, object]:
        return {"received": self.ingest.received, "spool_points": self.spool.points}

    @property
    def connected(self) -> threading.Event:
        return self.ingest.connected

    def flush(self) -> None:
        try:
            self.registry.flush()
            self.rejects.flush()
        except Exception as exc:  # the database may be restarting; activity is retried next round
            log.warning("could not write device activity: %s", exc)
        if self.writer.health.store_ok:
            try:
                self.store.compact()  # rollups of late points, so other processes' queries see them soon
            except TimeseriesError as exc:
                log.warning("could not bring the rollups up to date: %s", exc)

    def _flush_loop(self) -> None:
        while not self._stop.wait(2.0):
            self.flush()

    def start(self) -> None:
        self.writer.start()
        self._flusher = threading.Thread(target=self._flush_loop, name="telemetry-flush", daemon=True)
        self._flusher.start()
        self.engine.start()  # staleness timers
        self.ingest.start()
        self.heartbeat.start()

    def stop(self) -> None:
        self.ingest.pause()
        self.writer.drain()
        self.ingest.stop()
        self.engine.stop()
        self.writer.stop()
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(10)
        self.flush()
        self.heartbeat.stop()
        self.spool.close()
        log.info("telemetry service stopped")
