"""The telemetry service's MQTT side: a persistent QoS 1 subscription, acknowledged only when safe.

- Subscribes to ``$share/<group>/factories/+/devices/+/telemetry`` (MQTT 5 shared subscription),
  so several telemetry processes split the load; one device's messages may go to any of them.
- Persistent session (clean start off, a long session expiry): messages published while the
  service is away wait in the broker.
- Manual acknowledgement: PUBACK is sent only from the pipeline's ``on_safe`` callback, i.e.
  once the points are written or in the durable spool. Killing the process loses nothing that
  was acknowledged; anything not yet acknowledged is delivered again.
- Bounded in-flight window: MQTT 5 Receive Maximum tells the broker how many unacknowledged
  messages it may have out to us at once (paho's 16-bit message ids never wrap over live ones).
- Reconnects with exponential backoff and full jitter.
- Over TLS when ``FACTORYOPS_MQTT__TLS`` is set (the context comes from ``core.tls``).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import Counter, Gauge

from factoryops.core.db import DatabaseUnavailable
from factoryops.core.settings import MqttSettings
from factoryops.core.tls import mqtt_client_context
from factoryops.telemetry.pipeline import IngestPipeline

log = logging.getLogger(__name__)

TELEMETRY_FILTER = "factories/+/devices/+/telemetry"
CONNECTED = Gauge("factoryops_mqtt_connected", "1 while the telemetry service is connected to the MQTT broker, else 0.")
DISCONNECTS = Counter("factoryops_mqtt_disconnects_total", "Times the telemetry service lost the broker connection.")
HELD = Gauge(
    "factoryops_telemetry_held_messages", "Messages held unacknowledged while the metadata database is unavailable."
)


@dataclass(frozen=True)
class _Held:
    topic: str
    payload: bytes
    ack: Callable[[], None]
    received_at: datetime


class MqttIngest:
    def __init__(self, settings: MqttSettings, pipeline: IngestPipeline, client_id: str | None = None) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.client_id = client_id or f"factoryops-telemetry-{socket.gethostname()}-{os.getpid()}"
        self.connected = threading.Event()
        self.received = 0
        self.late_acks_dropped = 0
        self._stop = threading.Event()
        self._paused = False
        self._thread: threading.Thread | None = None
        # Messages waiting for the metadata database (a restart): not acknowledged, so nothing is lost
        # if this process dies meanwhile; bounded by Receive Maximum, as the broker sends no more.
        self._held: deque[_Held] = deque()
        self._held_lock = threading.Lock()
        self._held_wake = threading.Event()
        # A message is acknowledged only on the connection it came in on. After a reconnect the
        # broker sends the unacknowledged ones again (same session); a late PUBACK from the old
        # connection could then acknowledge whatever message holds that packet id by now, before it
        # is written, and a second drop would lose it. So late acks are dropped: the redelivered
        # copy is written and acknowledged again (at least once, never lost). Only paho's network
        # thread changes the generation; no lock is taken around paho's calls (its own locks and
        # callbacks would deadlock with one).
        self._generation = 0
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        if settings.username:
            self.client.username_pw_set(
                settings.username, settings.password.get_secret_value() if settings.password else None
            )
        tls = mqtt_client_context(settings)
        if tls is not None:
            self.client.tls_set_context(tls)
            # paho checks the host name itself unless told the context does (or that nobody should).
            self.client.tls_insecure_set(settings.tls_insecure)
        self.client.max_inflight_messages_set(settings.receive_maximum)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    @property
    def topic_filter(self) -> str:
        group = self.settings.shared_group
        return f"$share/{group}/{TELEMETRY_FILTER}" if group else TELEMETRY_FILTER

    # ------------------------------------------------------------------ callbacks (paho's network thread)
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("the MQTT broker refused the telemetry service: %s", reason)
            return
        session_present = bool(getattr(flags, "session_present", False))
        self.connected.set()
        CONNECTED.set(1)
        log.info(
            "telemetry service connected to MQTT %s:%s (session %s), subscribing to %s",
            self.settings.host,
            self.settings.port,
            "resumed" if session_present else "new",
            self.topic_filter,
        )
        # Always subscribe, also in a resumed session: Mosquitto (2.0.11 and 2.0.21, tested) does not
        # restore *shared* subscriptions after a restart although it reports the session present.
        client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        for reason in reasons:
            if reason.is_failure:
                log.error("the broker refused the telemetry subscription %s: %s", self.topic_filter, reason)
            else:
                log.info("telemetry subscription %s confirmed by the broker", self.topic_filter)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._generation += 1
        self.connected.clear()
        CONNECTED.set(0)
        if not self._stop.is_set():
            DISCONNECTS.inc()
            log.warning("telemetry service lost the MQTT connection (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._paused:
            return
        self.received += 1
        mid, qos, generation = message.mid, message.qos, self._generation

        def ack() -> None:
            if qos > 0:
                if generation == self._generation:
                    client.ack(mid, qos)
                else:
                    self.late_acks_dropped += 1

        item = _Held(message.topic, bytes(message.payload), ack, self.pipeline.clock())
        with self._held_lock:
            if self._held:  # older messages wait for the database: this one queues behind them, in order
                self._held.append(item)
                HELD.set(len(self._held))
                return
        self._handle(item, hold_if_unavailable=True)

    def _handle(self, item: _Held, hold_if_unavailable: bool) -> bool:
        """Hands one message to the pipeline; False when the metadata database is away."""
        try:
            self.pipeline.handle(item.topic, item.payload, item.ack, item.received_at)
        except DatabaseUnavailable as exc:
            if hold_if_unavailable:
                with self._held_lock:
                    self._held.append(item)
                    HELD.set(len(self._held))
                log.warning(
                    "metadata database unavailable (%s): holding telemetry unacknowledged until it is back", exc
                )
                self._held_wake.set()
            return False
        except Exception:  # the pipeline must never stop; an unexpected failure is not acknowledged
            log.exception("unexpected failure handling a message on %s", item.topic)
        return True

    def _retry_held(self) -> None:
        """Hands the held messages in again, oldest first, once the database answers."""
        delay = 0.5
        done = 0
        while not self._stop.is_set():
            with self._held_lock:
                item = self._held[0] if self._held else None
            if item is None:
                if done:
                    log.info("metadata database is back: %d held messages processed", done)
                    done = 0
                self._held_wake.wait(1.0)
                self._held_wake.clear()
                continue
            if not self._handle(item, hold_if_unavailable=False):
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.5
            done += 1
            with self._held_lock:
                self._held.popleft()
                HELD.set(len(self._held))

    # ------------------------------------------------------------------ network loop with backoff
    def _connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_seconds
        props.ReceiveMaximum = self.settings.receive_maximum
        self.client.connect(self.settings.host, self.settings.port, keepalive=30, clean_start=False, properties=props)

    def _run(self) -> None:
        backoff = 0.5
        outage_since: float | None = None
        while not self._stop.is_set():
            try:
                self._connect()
                disconnecting = False
                while True:
                    rc = self.client.loop(timeout=0.2)
                    if rc != mqtt.MQTT_ERR_SUCCESS:
                        break
                    if self.connected.is_set():
                        backoff = 0.5
                        outage_since = None
                    if self._stop.is_set() and not disconnecting:
                        # DISCONNECT is queued after every PUBACK already queued, so those go out first.
                        self.client.disconnect()
                        disconnecting = True
            except ssl.SSLCertVerificationError as exc:
                log.error(
                    "the MQTT broker's TLS certificate at %s:%s is not trusted: %s; set FACTORYOPS_MQTT__TLS_CA_FILE "
                    "to the CA that signed it (and check the host name is in the certificate)",
                    self.settings.host,
                    self.settings.port,
                    exc.verify_message or exc,
                )
            except ssl.SSLError as exc:
                log.error(
                    "TLS handshake with the MQTT broker at %s:%s failed: %s (is it a TLS port? "
                    "FACTORYOPS_MQTT__TLS=%s)",
                    self.settings.host,
                    self.settings.port,
                    exc.reason or exc,
                    str(self.settings.tls).lower(),
                )
            except (OSError, ValueError) as exc:
                log.warning("cannot reach the MQTT broker at %s:%s: %s", self.settings.host, self.settings.port, exc)
            self.connected.clear()
            if self._stop.is_set():
                break
            delay = random.uniform(0, backoff)  # full jitter: many processes do not reconnect in step
            self._stop.wait(delay)
            # A broker restart takes seconds: for the first minute of an outage try at least every 2 s
            # (what is published before the shared subscription is back may have no subscriber), then
            # back off up to reconnect_max_seconds.
            outage_since = outage_since if outage_since is not None else time.monotonic()
            early = time.monotonic() - outage_since < 60
            backoff = min(
                backoff * 2,
                min(2.0, self.settings.reconnect_max_seconds) if early else self.settings.reconnect_max_seconds,
            )

    @property
    def held(self) -> int:
        return len(self._held)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-ingest", daemon=True)
        self._thread.start()
        threading.Thread(target=self._retry_held, name="mqtt-held", daemon=True).start()

    def pause(self) -> None:
        """Stop handing messages to the pipeline; what arrives now is not acknowledged, so it comes again."""
        self._paused = True

    def stop(self, timeout: float = 10.0) -> None:
        """Send the acknowledgements already queued, disconnect, and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
