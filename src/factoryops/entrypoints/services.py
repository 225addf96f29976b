"""The telemetry and worker services' process shells: connect, report ready, stop cleanly.

Both run as their own processes (`factoryops telemetry`, `factoryops worker`) or inside
`factoryops up`. The ingest pipeline and the jobs loop plug into these shells.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import paho.mqtt.client as mqtt
from sqlalchemy import text

from factoryops.core.db import Database
from factoryops.core.settings import Settings

log = logging.getLogger(__name__)


class TelemetryService:
    """Holds the MQTT connection of the telemetry service, reconnecting with backoff."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connected = threading.Event()
        client_id = f"factoryops-telemetry-{socket.gethostname()}-{os.getpid()}"
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False
        )
        if settings.mqtt.username:
            password = settings.mqtt.password.get_secret_value() if settings.mqtt.password else None
            self.client.username_pw_set(settings.mqtt.username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT broker refused the telemetry service: %s", reason)
            return
        self.connected.set()
        log.info("telemetry service connected to MQTT %s:%s", self.settings.mqtt.host, self.settings.mqtt.port)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self.connected.clear()
        log.warning("telemetry service lost the MQTT connection (%s); reconnecting", reason)

    def start(self) -> None:
        self.client.connect_async(self.settings.mqtt.host, self.settings.mqtt.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        log.info("telemetry service stopped")


class WorkerService:
    """The jobs worker's shell: keeps its database connection checked while it runs."""

    def __init__(self, db: Database, heartbeat_seconds: float = 5.0) -> None:
        self.db = db
        self.heartbeat_seconds = heartbeat_seconds
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                with self.db.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                if not self.ready.is_set():
                    log.info("worker connected to the metadata database")
                self.ready.set()
                backoff = 1.0
                self._stop.wait(self.heartbeat_seconds)
            except Exception as exc:  # the database may be restarting: wait and try again
                self.ready.clear()
                log.warning("worker cannot reach the database (%s); retrying in %.0fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        log.info("worker stopped")


def wait_until(event: threading.Event, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if event.wait(0.1):
            return True
    return False
