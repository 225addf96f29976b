"""The `factoryops` command: settings, migrations and each process started and stopped for real."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from services import factoryops, mosquitto, read_until, stop
from support import TEST_DB, free_port


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = factoryops(args, env, cwd)
    out, _ = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def test_config_masks_secrets_and_reads_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FACTORYOPS_HTTP__PORT=9123\n")
    env = {
        "FACTORYOPS_AUTH__JWT_SECRET": "super-secret-value-that-is-long-enough-123",
        "FACTORYOPS_DATABASE__URL": "mysql+pymysql://fo:hunter2pass@db:3306/factoryops",
        "FACTORYOPS_OBJECTSTORE__S3_SECRET_KEY": "s3-secret-key-value",
    }
    result = run(["config"], env, tmp_path)
    assert result.returncode == 0, result.stdout
    data = json.loads(result.stdout)
    assert data["http"]["port"] == 9123
    assert data["auth"]["jwt_secret"] == "********"
    assert data["database"]["url"] == "mysql+pymysql://fo:********@db:3306/factoryops"
    for secret in env.values():
        if "secret" in secret:
            assert secret not in result.stdout
    assert "hunter2pass" not in result.stdout


def test_production_refuses_a_default_secret(tmp_path: Path) -> None:
    result = run(["config"], {"FACTORYOPS_ENV": "production"}, tmp_path)
    assert result.returncode == 2
    assert "FACTORYOPS_AUTH__JWT_SECRET" in result.stdout
    result = run(["api"], {"FACTORYOPS_ENV": "production", "FACTORYOPS_AUTH__JWT_SECRET": "short"}, tmp_path)
    assert result.returncode == 2
    ok = run(["config"], {"FACTORYOPS_ENV": "production", "FACTORYOPS_AUTH__JWT_SECRET": "x" * 40}, tmp_path)
    assert ok.returncode == 0 and json.loads(ok.stdout)["env"] == "production"


def test_migrate_on_a_fresh_database(tmp_path: Path, database_url: str) -> None:
    env = {"FACTORYOPS_DATA_DIR": str(tmp_path / "data")}
    if TEST_DB == "mysql":
        env["FACTORYOPS_DATABASE__URL"] = database_url
    result = run(["migrate"], env, tmp_path)
    assert result.returncode == 0, result.stdout
    from alembic.script import ScriptDirectory

    from factoryops.core.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"database at revision {head}" in result.stdout
    if TEST_DB == "sqlite":
        assert (tmp_path / "data" / "factoryops.db").is_file()


def test_up_creates_root_once_serves_and_stops_cleanly(tmp_path: Path) -> None:
    port, mqtt_port = free_port(), free_port()
    env = {
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_HTTP__PORT": str(port),
        "FACTORYOPS_MQTT__PORT": str(mqtt_port),
        "FACTORYOPS_ROOT_EMAIL": "owner@platform.example",
        "FACTORYOPS_AUTH__BCRYPT_ROUNDS": "4",
    }
    proc = factoryops(["up", "--demo"], env, tmp_path)
    try:
        out = read_until(proc, "web portal on http://")
        password = next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("password:")
        )
        base = f"http://127.0.0.1:{port}"
        ready = httpx.get(f"{base}/readyz", timeout=10).json()
        assert ready["status"] == "ready", ready
        assert ready["checks"]["mqtt"]["status"] == "ok"
        r = httpx.post(f"{base}/api/v1/auth/root/login", json={"email": "owner@platform.example", "password": password})
        assert r.status_code == 200, r.text
        slugs = [f["slug"] for f in httpx.get(f"{base}/api/v1/public/factories").json()["items"]]
        assert "demo-steel" in slugs
        r = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"factory": "demo-steel", "email": "manager@demo-steel.example", "password": "Demo-Plant-2026"},
        )
        assert r.status_code == 200
        # a device publishes to the embedded broker; its value is on the API a moment later
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        creds = httpx.post(f"{base}/api/v1/devices", headers=h, json={"device_id": "press-9"}).json()["mqtt"]
        device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=creds["client_id"], protocol=mqtt.MQTTv5)
        device.username_pw_set(creds["username"], creds["password"])
        device.connect("127.0.0.1", mqtt_port)
        device.loop_start()
        sent = time.monotonic()
        device.publish(creds["topic"], json.dumps({"power_kw": 12.5, "phase_a": {"voltage": 231.0}}), qos=1)
        values: list[Any] = []
        while time.monotonic() - sent < 10 and len(values) < 2:
            values = httpx.get(f"{base}/api/v1/devices/press-9/latest", headers=h).json()["values"]
            time.sleep(0.05)
        device.loop_stop()
        assert {(v["property"], v["value"]) for v in values} == {("power_kw", 12.5), ("phase_a.voltage", 231.0)}
        print(f"publish to latest value on the API: {time.monotonic() - sent:.2f}s")
    finally:
        code, rest = stop(proc)
    assert code == 0, rest
    assert "telemetry service stopped" in rest and "embedded MQTT broker stopped" in rest, rest
    # second start: the root exists, no password is printed again
    proc = factoryops(["up"], env, tmp_path)
    try:
        out = read_until(proc, "web portal on http://")
        assert "password:" not in out
    finally:
        code, _ = stop(proc)
    assert code == 0


def test_telemetry_connects_reconnects_and_stops(tmp_path: Path) -> None:
    mqtt_port = free_port()
    env = {"FACTORYOPS_MQTT__PORT": str(mqtt_port), "FACTORYOPS_DATA_DIR": str(tmp_path / "data")}
    with mosquitto(tmp_path / "broker", mqtt_port):
        proc = factoryops(["telemetry"], env, tmp_path)
        read_until(proc, "telemetry service connected")
    # the broker went away: the service keeps trying and comes back when it does
    read_until(proc, "lost the MQTT connection")
    with mosquitto(tmp_path / "broker", mqtt_port):
        read_until(proc, "telemetry service connected", timeout=60)
        code, out = stop(proc)
    assert code == 0, out
    assert "telemetry service stopped" in out


def test_worker_and_api_processes_start_and_stop(tmp_path: Path, database_url: str) -> None:
    env = {"FACTORYOPS_DATA_DIR": str(tmp_path / "data"), "FACTORYOPS_AUTH__BCRYPT_ROUNDS": "4"}
    if TEST_DB == "mysql":
        env["FACTORYOPS_DATABASE__URL"] = database_url
    assert run(["migrate"], env, tmp_path).returncode == 0
    worker = factoryops(["worker"], env, tmp_path)
    read_until(worker, "worker connected to the metadata database")
    port = free_port()
    api = factoryops(["api"], {**env, "FACTORYOPS_HTTP__PORT": str(port)}, tmp_path)
    try:
        read_until(api, "web portal on http://")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok"
    finally:
        api_code, _ = stop(api)
        worker_code, worker_out = stop(worker)
    assert api_code == 0 and worker_code == 0, worker_out
    assert "worker stopped" in worker_out


@pytest.mark.parametrize("argv", [["--help"], ["nonsense"]])
def test_cli_usage(argv: list[str], tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "factoryops", *argv], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == (0 if argv == ["--help"] else 2)
    assert "factoryops" in (result.stdout + result.stderr)


def test_configuration_reference_is_current(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
    result = run(["config", "--reference"], {}, tmp_path)
    assert result.returncode == 0
    stale = "docs/configuration.md is stale: regenerate it (factoryops config --reference)"
    assert result.stdout in docs.read_text(), stale
    from factoryops.core.settings import Settings

    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"


def test_simulator_fleet_firmware_upgrade_and_bad_messages(tmp_path: Path) -> None:
    port, mqtt_port = free_port(), free_port()
    env = {
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_HTTP__PORT": str(port),
        "FACTORYOPS_MQTT__PORT": str(mqtt_port),
        "FACTORYOPS_AUTH__BCRYPT_ROUNDS": "4",
    }
    up = factoryops(["up", "--demo"], env, tmp_path)
    try:
        read_until(up, "web portal on http://")
        base = f"http://127.0.0.1:{port}"
        steel = Path(__file__).resolve().parent.parent / "src/factoryops/data/steel_industry_energy_2018_sample.csv"
        sim = run(
            [
                "simulate",
                "--api",
                base,
                "--factory",
                "demo-steel",
                "--email",
                "manager@demo-steel.example",
                "--password",
                "Demo-Plant-2026",
                "--mqtt-port",
                str(mqtt_port),
                "--devices",
                "4",
                "--interval",
                "0.5",
                "--bad-rate",
                "0.2",
                "--upgrade-after",
                "2",
                "--steel",
                str(steel),
                "--duration",
                "6",
            ],
            {},
            tmp_path,
        )
        assert sim.returncode == 0, sim.stdout
        assert "published" in sim.stdout
        token = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"factory": "demo-steel", "email": "manager@demo-steel.example", "password": "Demo-Plant-2026"},
        ).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        time.sleep(3)  # activity and rejects are written every 2 s
        names = {p["name"] for p in httpx.get(f"{base}/api/v1/properties?limit=200", headers=h).json()["items"]}
        # firmware 1.x vocabulary, the 2.x upgrade's new metrics, and the steel mill's
        assert {"power_kw", "energy_kwh", "voltage_l1"} <= names
        assert {"thd_pct", "temperature_c", "phase_a.voltage"} <= names
        assert {"co2_tco2", "reactive_lagging_kvarh"} <= names
        sim_devices = httpx.get(f"{base}/api/v1/devices?q=sim-&limit=200", headers=h).json()["items"]
        assert {d["firmware_version"] for d in sim_devices if d["device_id"] != "sim-steel"} == {"1.4.2", "2.0.1"}
        rejects = httpx.get(f"{base}/api/v1/telemetry/rejects?limit=200", headers=h).json()
        assert rejects["total"] > 0
        # the demo's own fleet publishes too
        demo = httpx.get(f"{base}/api/v1/devices/meter-01/latest", headers=h).json()["values"]
        assert any(v["property"] == "power_kw" for v in demo)
        # `up` runs the rule engine: its garbage-collection steward froze the long-lived heap
        frozen = [
            line for line in httpx.get(f"{base}/metrics").text.splitlines() if line.startswith("factoryops_gc_frozen")
        ]
        assert frozen and float(frozen[0].split()[-1]) > 10_000, frozen
    finally:
        code, out = stop(up)
    assert code == 0, out
