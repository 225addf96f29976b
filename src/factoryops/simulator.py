"""A simulated fleet that publishes telemetry over MQTT, for the demo, tests and trying things out.

Devices run several firmware versions with different metric vocabularies; some get a firmware
upgrade mid-run that adds metrics (so auto-discovery shows them). One device can replay the steel
mill's real 15-minute energy readings. ``bad_rate`` mixes in malformed messages of every kind
the platform must reject.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

FIRMWARES = ("1.4.2", "2.0.1")


@dataclass
class SimDevice:
    device_id: str
    username: str
    password: str
    client_id: str
    topic: str
    firmware: str = FIRMWARES[0]
    energy_kwh: float = field(default_factory=lambda: random.uniform(1_000, 50_000))
    base_kw: float = field(default_factory=lambda: random.uniform(5, 120))
    phase: float = field(default_factory=lambda: random.uniform(0, math.tau))


def meter_payload(device: SimDevice, now: float, interval: float) -> dict[str, Any]:
    """A plausible three-phase meter reading; firmware 2.x adds harmonics, temperature and a nested group."""
    daily = 0.6 + 0.4 * math.sin(now / 86_400 * math.tau + device.phase)
    power = max(0.0, device.base_kw * daily * random.uniform(0.9, 1.1))
    device.energy_kwh += power * interval / 3600
    voltages = [random.gauss(230, 1.5) for _ in range(3)]
    body: dict[str, Any] = {
        "power_kw": round(power, 3),
        "energy_kwh": round(device.energy_kwh, 3),
        "voltage_l1": round(voltages[0], 2),
        "voltage_l2": round(voltages[1], 2),
        "voltage_l3": round(voltages[2], 2),
        "current_l1": round(power * 1000 / 3 / voltages[0], 2),
        "power_factor": round(random.uniform(0.85, 0.98), 3),
        "running": power > device.base_kw * 0.3,
        "fw": device.firmware,
        "ts": int(now * 1000),
    }
    if device.firmware.startswith("2."):
        body["thd_pct"] = round(random.uniform(2, 6), 2)
        body["temperature_c"] = round(random.gauss(45, 3), 1)
        body["phase_a"] = {"voltage": body["voltage_l1"], "current": body["current_l1"]}
    return body


def steel_rows(path: Path, repeat: bool = True) -> Iterator[dict[str, Any]]:
    """The steel mill data set as meter readings, forever (it starts over at the end) unless not ``repeat``."""
    energy = 0.0
    first = True
    while first or repeat:
        first = False
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                usage = float(row["Usage_kWh"])
                energy += usage
                yield {
                    "energy_kwh": round(energy, 3),
                    "power_kw": round(usage * 4, 3),  # 15-minute energy as average power
                    "reactive_lagging_kvarh": float(row["Lagging_Current_Reactive_Power_kVarh"]),
                    "reactive_leading_kvarh": float(row["Leading_Current_Reactive_Power_kVarh"]),
                    "co2_tco2": float(row["CO2(tCO2)"]),
                    "power_factor_lagging": float(row["Lagging_Current_Power_Factor"]),
                    "load_level": {"Light_Load": 0, "Medium_Load": 1, "Maximum_Load": 2}.get(row["Load_Type"], 0),
                    "fw": "steel-1.0",
                }


def bad_message() -> bytes:
    kind = random.choice(["json", "text", "nan", "name", "oversize", "array"])
    return {
        "json": b'{"power_kw": 12.5,',
        "text": b'{"power_kw": "twelve"}',
        "nan": b'{"power_kw": NaN}',
        "name": b'{"bad metric!": 1}',
        "oversize": json.dumps({"blob": "x" * 100_000}).encode(),
        "array": b"[1, 2, 3]",
    }[kind]


class Simulator:
    def __init__(
        self,
        host: str,
        port: int,
        devices: list[SimDevice],
        interval: float = 5.0,
        bad_rate: float = 0.0,
        upgrade_after: float | None = 60.0,
        steel_device: SimDevice | None = None,
        steel_csv: Path | None = None,
        steel_interval: float = 1.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.devices = devices
        self.interval = interval
        self.bad_rate = bad_rate
        self.upgrade_after = upgrade_after
        self.steel_device = steel_device
        self.steel_csv = steel_csv
        self.steel_interval = steel_interval
        self.tls = tls  # None: plain MQTT; else every device connects over TLS with this context
        self.sent = 0
        self.bad_sent = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: list[mqtt.Client] = []

    def _client(self, device: SimDevice) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device.client_id, protocol=mqtt.MQTTv5)
        client.username_pw_set(device.username, device.password)
        if self.tls is not None:
            client.tls_set_context(self.tls)
        client.reconnect_delay_set(1, 30)
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()
        self._clients.append(client)
        return client

    def _publish(self, client: mqtt.Client, device: SimDevice, body: bytes) -> None:
        client.publish(device.topic, body, qos=1)
        self.sent += 1

    def _run_fleet(self) -> None:
        clients = {d.device_id: self._client(d) for d in self.devices}
        started = time.monotonic()
        upgraded = False
        while not self._stop.is_set():
            tick = time.monotonic()
            if self.upgrade_after is not None and not upgraded and tick - started >= self.upgrade_after:
                for device in self.devices[::2]:
                    device.firmware = FIRMWARES[1]
                upgraded = True
                log.info("simulator: firmware %s rolled out to %d devices", FIRMWARES[1], len(self.devices[::2]))
            for device in self.devices:
                if self.bad_rate and random.random() < self.bad_rate:
                    self._publish(clients[device.device_id], device, bad_message())
                    self.bad_sent += 1
                    continue
                body = json.dumps(meter_payload(device, time.time(), self.interval)).encode()
                self._publish(clients[device.device_id], device, body)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - tick)))

    def _run_steel(self) -> None:
        assert self.steel_device is not None and self.steel_csv is not None
        client = self._client(self.steel_device)
        for row in steel_rows(self.steel_csv):
            if self._stop.wait(self.steel_interval):
                return
            self._publish(client, self.steel_device, json.dumps(row).encode())

    def start(self) -> None:
        if self.devices:
            self._threads.append(threading.Thread(target=self._run_fleet, name="sim-fleet", daemon=True))
        if self.steel_device is not None and self.steel_csv is not None:
            self._threads.append(threading.Thread(target=self._run_steel, name="sim-steel", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        for client in self._clients:
            client.loop_stop()
            client.disconnect()
