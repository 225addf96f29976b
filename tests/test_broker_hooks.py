"""Broker-side isolation on the production brokers: Mosquitto's generated ACL, EMQX's HTTP hooks."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from factoryops.devices.broker_config import MosquittoSync
from services import mosquitto
from support import auth, free_port, mqtt_connect, mqtt_publish, register_device

SERVICE_USER, SERVICE_PASSWORD = "factoryops-service", "service-secret-123"
REFUSED = {134, 135}  # Mosquitto 2.0 answers a bad password with 135 (Not authorized), others with 134
HOOK = {"Authorization": "Bearer emqx-hook-secret-for-tests"}


def test_emqx_hooks_follow_emqx_format(client: TestClient, make_factory) -> None:
    a = make_factory(with_admins=False)
    b = make_factory(with_admins=False)
    creds = register_device(client, a, "meter-1")
    other = register_device(client, b, "meter-1")
    platform = client.app.state.platform  # type: ignore[attr-defined]
    settings = platform.settings
    settings.mqtt.username, settings.mqtt.password = SERVICE_USER, None
    url = "/api/v1/mqtt/emqx"

    def authn(username: str, password: str) -> str:
        r = client.post(
            f"{url}/authenticate", headers=HOOK, json={"username": username, "password": password, "clientid": "c"}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["result"])

    def authz(username: str, topic: str, action: str) -> str:
        r = client.post(f"{url}/authorize", headers=HOOK, json={"username": username, "topic": topic, "action": action})
        assert r.status_code == 200, r.text
        return str(r.json()["result"])

    assert authn(creds["username"], creds["password"]) == "allow"
    assert authn(creds["username"], other["password"]) == "deny"
    assert authn(creds["username"], "") == "deny"
    assert authn("nobody/none", "x") == "deny"
    assert authz(creds["username"], creds["topic"], "publish") == "allow"
    assert authz(creds["username"], other["topic"], "publish") == "deny"
    assert authz(creds["username"], "factories/+/devices/+/telemetry", "subscribe") == "deny"
    assert authz(SERVICE_USER, "$share/factoryops/factories/+/devices/+/telemetry", "subscribe") == "allow"
    assert authz(SERVICE_USER, "factories/x/devices/y/telemetry", "publish") == "deny"
    for headers in ({}, {"Authorization": "Bearer wrong"}, auth(a.super_token)):
        r = client.post(f"{url}/authenticate", headers=headers, json={"username": "u", "password": "p"})
        assert r.status_code == 401


def test_mosquitto_acl_from_the_registry(client: TestClient, make_factory, tmp_path: Path) -> None:
    a = make_factory(with_admins=False)
    b = make_factory(with_admins=False)
    creds_a = register_device(client, a, "press-1")
    creds_b = register_device(client, b, "press-1")
    platform = client.app.state.platform  # type: ignore[attr-defined]
    conf_dir = tmp_path / "mosq"
    pid_file = tmp_path / "mosquitto.pid"
    sync = MosquittoSync(platform.db, conf_dir, SERVICE_USER, SERVICE_PASSWORD, pid_file)
    assert sync.sync() is True and sync.sync() is False
    port = free_port()
    extra = f"password_file {conf_dir / 'passwords'}\nacl_file {conf_dir / 'acl'}\npid_file {pid_file}\n"
    with mosquitto(tmp_path / "broker", port, extra=extra, anonymous=False):
        received: list[str] = []
        service, reason = mqtt_connect(port, SERVICE_USER, SERVICE_PASSWORD, "svc")
        assert reason == 0
        service.on_message = lambda c, u, m: received.append(m.topic)
        service.subscribe("$share/factoryops/factories/+/devices/+/telemetry", qos=1)
        time.sleep(0.3)
        device, reason = mqtt_connect(port, creds_a["username"], creds_a["password"], creds_a["client_id"])
        assert reason == 0
        assert mqtt_publish(device, creds_a["topic"]) == 0
        assert mqtt_publish(device, creds_b["topic"]) == 135  # MQTT 5: Not authorized
        time.sleep(0.3)
        assert received == [creds_a["topic"]]
        _, reason = mqtt_connect(port, creds_a["username"], "wrong-password", "x1")
        assert reason in REFUSED
        _, reason = mqtt_connect(port, "anonymous-guess", "x", "x2")
        assert reason in REFUSED
        # a device registered now can connect once the files are regenerated and Mosquitto reloads
        creds_new = register_device(client, a, "press-2")
        assert sync.sync() is True
        time.sleep(0.5)
        fresh, reason = mqtt_connect(port, creds_new["username"], creds_new["password"], creds_new["client_id"])
        assert reason == 0 and mqtt_publish(fresh, creds_new["topic"]) == 0
        # and a disabled device cannot, after the next sync
        client.patch("/api/v1/devices/press-2", headers=auth(a.super_token), json={"enabled": False})
        assert sync.sync() is True
        time.sleep(0.5)
        _, reason = mqtt_connect(port, creds_new["username"], creds_new["password"], "x3")
        assert reason in REFUSED
