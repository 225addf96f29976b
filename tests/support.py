"""Shared test helpers (imported by test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from factoryops.core.settings import Settings

TEST_DB = os.environ.get("FACTORYOPS_TEST_DB", "sqlite")
MYSQL_SERVER = os.environ.get("FACTORYOPS_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
ROOT_EMAIL = "root@platform.example"
ROOT_PASSWORD = "Platform-Key-2026"
PASSWORD = "Strong-Pass-2026"
FACTORY_TIMEZONE = "Europe/Berlin"  # the time zone of the factories make_factory creates


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "root_email": ROOT_EMAIL,
        "root_password": ROOT_PASSWORD,
        "database": {"url": database_url},
        "auth": {"bcrypt_rounds": 4, "login_rate_per_minute": 10_000, "jwt_secret": "t" * 40},
        # tests poll the API with one token in tight loops; the limit itself is tested in test_security.py
        "http": {"rate_limit_per_minute": 100_000},
        "mqtt": {"port": free_port(), "emqx_hook_secret": "emqx-hook-secret-for-tests"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class FactoryWorld:
    """A factory made through the API, with a super admin and two admins."""

    id: str
    slug: str
    name: str
    super_admin: dict[str, Any]
    super_token: str
    admin_plain: dict[str, Any] = field(default_factory=dict)
    admin_plain_token: str = ""
    admin_all: dict[str, Any] = field(default_factory=dict)
    admin_all_token: str = ""


def login(client: TestClient, slug: str, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = client.post("/api/v1/auth/login", json={"factory": slug, "email": email, "password": password})
    assert r.status_code == 200, r.text
    return dict(r.json())


def register_device(client: TestClient, world: FactoryWorld, device_id: str) -> dict[str, Any]:
    """Registers a device through the API; returns its MQTT credentials (shown once)."""
    r = client.post("/api/v1/devices", headers=auth(world.super_token), json={"device_id": device_id})
    assert r.status_code == 201, r.text
    return dict(r.json()["mqtt"])


def mqtt_connect(port: int, username: str, password: str, client_id: str) -> tuple[Any, int]:
    """An MQTT 5 client, connected (or refused): the client and the CONNACK reason code."""
    import threading

    import paho.mqtt.client as mqtt

    result: dict[str, int] = {}
    done = threading.Event()

    def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        result["reason"] = int(reason.value)
        done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(username, password)
    c.on_connect = on_connect
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert done.wait(10), "no CONNACK"
    return c, result["reason"]


def mqtt_publish(c: Any, topic: str, payload: bytes = b'{"power_kw": 1.5}') -> int:
    """Publishes at QoS 1 and returns the PUBACK reason code (MQTT 5)."""
    import threading

    reasons: dict[int, int] = {}
    got = threading.Event()

    def on_publish(client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        reasons[mid] = int(reason.value)
        got.set()

    c.on_publish = on_publish
    info = c.publish(topic, payload, qos=1)
    assert got.wait(10), "no PUBACK"
    return reasons[info.mid]


def setup_rule(
    client: TestClient,
    world: FactoryWorld,
    definition: dict[str, Any],
    devices: dict[str, str] | None = None,
    properties: tuple[str, ...] = ("power_kw",),
    name: str = "Rule under test",
) -> str:
    """Registers devices (device id -> type, "" for none), adds the properties to the factory's
    vocabulary as discovery would, and creates the rule through the API; returns the rule id."""
    from factoryops.devices.models import Property

    for device_id, device_type in (devices if devices is not None else {"press-1": ""}).items():
        register_device(client, world, device_id)
        if device_type:
            h = auth(world.super_token)
            r = client.patch(f"/api/v1/devices/{device_id}", headers=h, json={"type": device_type})
            assert r.status_code == 200, r.text
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:
        for prop in properties:
            s.add(Property(name=prop))
    r = client.post("/api/v1/rules", headers=auth(world.super_token), json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])
