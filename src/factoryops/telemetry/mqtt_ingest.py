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
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from factoryops.core.settings import MqttSettings
from factoryops.telemetry.pipeline import IngestPipeline

log = logging.getLogger(__name__)

TELEMETRY_FILTER = "factories/+/devices/+/telemetry"


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
        client.subscribe(self.topic_filter, qos=1)
        self.connected.set()
        log.info(
            "telemetry service connected to MQTT %s:%s (session %s), subscribing to %s",
            self.settings.host,
            self.settings.port,
            "resumed" if session_present else "new",
            self.topic_filter,
        )

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        for reason in reasons:
            if reason.is_failure:
                log.error("the broker refused the telemetry subscription %s: %s", self.topic_filter, reason)
            else:
                log.info("telemetry subscription %s confirmed by the broker", self.topic_filter)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._generation += 1
        self.connected.clear()
        if not self._stop.is_set():
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

        try:
            self.pipeline.handle(message.topic, bytes(message.payload), ack)
        except Exception:  # the pipeline must never stop; an unexpected failure is not acknowledged
            log.exception("unexpected failure handling a message on %s", message.topic)

    # ------------------------------------------------------------------ network loop with backoff
    def _connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_seconds
        props.ReceiveMaximum = self.settings.receive_maximum
        self.client.connect(self.settings.host, self.settings.port, keepalive=30, clean_start=False, properties=props)

    def _run(self) -> None:
        backoff = 0.5
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
                    if self._stop.is_set() and not disconnecting:
                        # DISCONNECT is queued after every PUBACK already queued, so those go out first.
                        self.client.disconnect()
                        disconnecting = True
            except (OSError, ValueError) as exc:
                log.warning("cannot reach the MQTT broker at %s:%s: %s", self.settings.host, self.settings.port, exc)
            self.connected.clear()
            if self._stop.is_set():
                break
            delay = random.uniform(0, backoff)  # full jitter: many processes do not reconnect in step
            self._stop.wait(delay)
            backoff = min(backoff * 2, self.settings.reconnect_max_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-ingest", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Stop handing messages to the pipeline; what arrives now is not acknowledged, so it comes again."""
        self._paused = True

    def stop(self, timeout: float = 10.0) -> None:
        """Send the acknowledgements already queued, disconnect, and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
