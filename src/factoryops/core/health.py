"""Readiness probes of each dependency: reachable or not, with a reason a person can act on."""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from factoryops.core.db import Database
from factoryops.core.settings import Settings
from factoryops.core.tls import mqtt_client_context


def _timed(check: Any) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        detail = check()
        state: dict[str, Any] = {"status": "ok"}
        if detail:
            state["detail"] = detail
    except Exception as exc:  # a probe reports every failure, whatever it is
        state = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    state["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
    return state


def _writable(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / ".probe"
    probe.write_text("ok")
    probe.unlink()
    if not os.access(path, os.W_OK):
        raise PermissionError(f"{path} is not writable")
    return str(path)


def _mqtt_string(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def mqtt_ping(
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    timeout: float = 2.0,
    tls: ssl.SSLContext | None = None,
) -> None:
    """A real MQTT 3.1.1 CONNECT/CONNACK/DISCONNECT round trip (a bare TCP probe proves little).

    With ``tls`` the socket is wrapped first and the broker's certificate verified with that context,
    so a certificate the telemetry service would refuse makes the probe fail too.
    """
    flags = 0x02  # clean session
    payload = _mqtt_string(f"factoryops-readyz-{os.getpid()}")
    if username:
        flags |= 0x80
        payload += _mqtt_string(username)
        if password is not None:
            flags |= 0x40
            payload += _mqtt_string(password)
    body = _mqtt_string("MQTT") + bytes([4, flags]) + (10).to_bytes(2, "big") + payload
    if len(body) > 127:
        raise ValueError("credentials too long for the readiness probe")
    # wrap_socket takes the descriptor over: the wrapped socket is the one that must be closed
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        tls.wrap_socket(raw, server_hostname=host) if tls is not None else raw as sock,
    ):
        sock.sendall(bytes([0x10, len(body)]) + body)
        answer = sock.recv(4)
        if len(answer) < 4 or answer[0] != 0x20:
            raise ConnectionError("the server did not answer like an MQTT broker")
        if answer[3] != 0:
            raise ConnectionError(f"the broker refused the connection (CONNACK code {answer[3]})")
        sock.sendall(bytes([0xE0, 0x00]))


def check_all(settings: Settings, db: Database) -> dict[str, dict[str, Any]]:
    def database() -> str:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return db.engine.dialect.name

    def mqtt() -> str:
        password = settings.mqtt.password.get_secret_value() if settings.mqtt.password else None
        tls = mqtt_client_context(settings.mqtt)
        mqtt_ping(settings.mqtt.host, settings.mqtt.port, settings.mqtt.username, password, tls=tls)
        return f"{settings.mqtt.host}:{settings.mqtt.port}"

    def timeseries() -> str:
        if settings.timeseries.backend == "influxdb":
            httpx.get(settings.timeseries.influx_url.rstrip("/") + "/ping", timeout=2).raise_for_status()
            return settings.timeseries.influx_url
        return _writable(settings.data_dir / "timeseries")

    def objectstore() -> str:
        if settings.objectstore.backend == "s3":
            if not settings.objectstore.s3_endpoint:
                raise ValueError("FACTORYOPS_OBJECTSTORE__S3_ENDPOINT is not set")
            from factoryops.ports.objectstore import build_objectstore

            # The port's own check: endpoint, credentials and bucket, within a few seconds.
            build_objectstore(settings.objectstore, settings.data_dir).ping()
            return settings.objectstore.s3_endpoint
        return _writable(settings.data_dir / "objects")

    return {
        "database": _timed(database),
        "mqtt": _timed(mqtt),
        "timeseries": _timed(timeseries),
        "objectstore": _timed(objectstore),
    }
