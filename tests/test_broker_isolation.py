"""Broker-side isolation on the embedded broker: a device publishes only on its own topic."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi.testclient import TestClient

from factoryops.devices.mqtt_auth import DeviceAuth
from factoryops.ports.mqtt.broker import MqttBroker
from support import auth, mqtt_connect, mqtt_publish, register_device

SERVICE_USER, SERVICE_PASSWORD = "factoryops-service", "service-secret-123"


def test_device_publishes_only_on_its_own_topic(client: TestClient, make_factory) -> None:
    a = make_factory(with_admins=False)
    b = make_factory(with_admins=False)
    creds_a = register_device(client, a, "press-1")
    creds_b = register_device(client, b, "press-1")
    platform = client.app.state.platform  # type: ignore[attr-defined]
    broker = MqttBroker("127.0.0.1", 0, auth=DeviceAuth(platform.db, SERVICE_USER, SERVICE_PASSWORD))
    broker.start_in_thread()
    try:
        received: list[str] = []
        service, reason = mqtt_connect(broker.port, SERVICE_USER, SERVICE_PASSWORD, "svc")
        assert reason == 0
        service.on_message = lambda c, u, m: received.append(m.topic)
        service.subscribe("$share/factoryops/factories/+/devices/+/telemetry", qos=1)
        time.sleep(0.3)
        device, reason = mqtt_connect(broker.port, creds_a["username"], creds_a["password"], creds_a["client_id"])
        assert reason == 0
        assert mqtt_publish(device, creds_a["topic"]) == 0
        assert mqtt_publish(device, creds_b["topic"]) == 135  # factory B's topic: Not authorized
        assert mqtt_publish(device, f"factories/{a.id}/devices/other/telemetry") == 135
        time.sleep(0.3)
        assert received == [creds_a["topic"]]
        # a wrong password, B's password with A's username, and a device that is disabled
        _, reason = mqtt_connect(broker.port, creds_a["username"], "wrong", "x1")
        assert reason == 134
        _, reason = mqtt_connect(broker.port, creds_a["username"], creds_b["password"], "x2")
        assert reason == 134
        client.patch("/api/v1/devices/press-1", headers=auth(a.super_token), json={"enabled": False})
        _, reason = mqtt_connect(broker.port, creds_a["username"], creds_a["password"], "x3")
        assert reason == 134
        # a device cannot subscribe to other devices' telemetry
        sub_reasons: list[Any] = []
        done = threading.Event()
        eve, reason = mqtt_connect(broker.port, creds_b["username"], creds_b["password"], "eve")

        def on_subscribe(c: Any, u: Any, mid: int, reasons: Any, props: Any) -> None:
            sub_reasons.extend(reasons)
            done.set()

        eve.on_subscribe = on_subscribe
        eve.subscribe("factories/+/devices/+/telemetry", qos=1)
        assert done.wait(10) and sub_reasons[0].value == 135
    finally:
        broker.stop_in_thread()
