"""Broker-side isolation on the embedded broker: a device publishes only on its own topic."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient

from factoryops.devices.mqtt_auth import DeviceAuth
from factoryops.ports.mqtt.broker import MqttBroker
from support import auth

SERVICE_USER, SERVICE_PASSWORD = "factoryops-service", "service-secret-123"


def _device(client: TestClient, world: Any, device_id: str) -> dict[str, Any]:
    r = client.post("/api/v1/devices", headers=auth(world.super_token), json={"device_id": device_id})
    assert r.status_code == 201, r.text
    return dict(r.json()["mqtt"])


def _connect(port: int, username: str, password: str, client_id: str) -> tuple[mqtt.Client, Any]:
    result: dict[str, Any] = {}
    done = threading.Event()

    def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        result["reason"] = reason
        done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(username, password)
    c.on_connect = on_connect
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert done.wait(10)
    return c, result["reason"]


def _publish(c: mqtt.Client, topic: str) -> int:
    reasons: dict[int, Any] = {}
    got = threading.Event()

    def on_publish(client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        reasons[mid] = reason
        got.set()

    c.on_publish = on_publish
    info = c.publish(topic, b'{"power_kw": 1.5}', qos=1)
    assert got.wait(10)
    return int(reasons[info.mid].value)


def test_device_publishes_only_on_its_own_topic(client: TestClient, make_factory) -> None:
    a = make_factory(with_admins=False)
    b = make_factory(with_admins=False)
    creds_a = _device(client, a, "press-1")
    creds_b = _device(client, b, "press-1")
    platform = client.app.state.platform  # type: ignore[attr-defined]
    broker = MqttBroker("127.0.0.1", 0, auth=DeviceAuth(platform.db, SERVICE_USER, SERVICE_PASSWORD))
    broker.start_in_thread()
    try:
        received: list[str] = []
        service, reason = _connect(broker.port, SERVICE_USER, SERVICE_PASSWORD, "svc")
        assert not reason.is_failure
        service.on_message = lambda c, u, m: received.append(m.topic)
        service.subscribe("$share/factoryops/factories/+/devices/+/telemetry", qos=1)
        time.sleep(0.3)
        device, reason = _connect(broker.port, creds_a["username"], creds_a["password"], creds_a["client_id"])
        assert not reason.is_failure
        assert _publish(device, creds_a["topic"]) == 0
        assert _publish(device, creds_b["topic"]) == 135  # factory B's topic: Not authorized
        assert _publish(device, f"factories/{a.id}/devices/other/telemetry") == 135
        time.sleep(0.3)
        assert received == [creds_a["topic"]]
        # a wrong password, B's password with A's username, and a device that is disabled
        _, reason = _connect(broker.port, creds_a["username"], "wrong", "x1")
        assert reason.value == 134
        _, reason = _connect(broker.port, creds_a["username"], creds_b["password"], "x2")
        assert reason.value == 134
        client.patch("/api/v1/devices/press-1", headers=auth(a.super_token), json={"enabled": False})
        _, reason = _connect(broker.port, creds_a["username"], creds_a["password"], "x3")
        assert reason.value == 134
        # a device cannot subscribe to other devices' telemetry
        sub_reasons: list[Any] = []
        done = threading.Event()
        eve, reason = _connect(broker.port, creds_b["username"], creds_b["password"], "eve")

        def on_subscribe(c: Any, u: Any, mid: int, reasons: Any, props: Any) -> None:
            sub_reasons.extend(reasons)
            done.set()

        eve.on_subscribe = on_subscribe
        eve.subscribe("factories/+/devices/+/telemetry", qos=1)
        assert done.wait(10) and sub_reasons[0].value == 135
    finally:
        broker.stop_in_thread()
