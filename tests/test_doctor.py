"""`factoryops doctor` against real services: all OK on a running setup, and each broken dependency
named with its fix and exit code 1."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from alembic.script import ScriptDirectory

from channels import Mailbox
from factoryops.core.db import Database
from factoryops.core.migrate import alembic_config, upgrade
from factoryops.core.settings import Settings
from factoryops.entrypoints.doctor import FAIL, OK, WARN, Check, exit_code, render_text, run_checks
from factoryops.ports.timeseries.base import FactoryScope, Point
from factoryops.telemetry.spool import Spool
from factoryops.wiring import build_timeseries
from influx import influxdb
from s3 import ACCESS_KEY, SECRET_KEY, MotoServer, moto_server
from services import factoryops, mosquitto
from support import TEST_DB, free_port, make_settings


@dataclass
class Setup:
    mqtt_port: int
    influx_url: str
    moto: MotoServer
    smtp_port: int
    sqlite_url: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Our own Mosquitto, InfluxDB, S3 (moto) and SMTP server, and a migrated SQLite database."""
    root = tmp_path_factory.mktemp("doctor-services")
    port = free_port()
    smtp_port = free_port()
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    sqlite_url = f"sqlite:///{root / 'migrated.db'}"
    db = Database(sqlite_url)
    upgrade(db.engine)
    db.dispose()
    try:
        with mosquitto(root / "broker", port), influxdb(root / "influx") as influx, moto_server(root / "s3") as moto:
            yield Setup(port, influx.url, moto, smtp_port, sqlite_url)
    finally:
        smtp.stop()


def production_settings(setup: Setup, data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """The production shape: external broker, InfluxDB, S3, SMTP, all pointing at the test's services."""
    values: dict[str, Any] = {
        "mqtt": {"port": setup.mqtt_port, "embedded": False},
        "timeseries": {"backend": "influxdb", "influx_url": setup.influx_url, "influx_database": "doctor"},
        "objectstore": {
            "backend": "s3",
            "s3_endpoint": setup.moto.url,
            "s3_bucket": "doctor-bucket",
            "s3_access_key": ACCESS_KEY,
            "s3_secret_key": SECRET_KEY,
        },
        "notifications": {"smtp_host": "127.0.0.1", "smtp_port": setup.smtp_port},
    }
    for key, value in overrides.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return make_settings(data_dir, database_url, **values)


def create_influx_schema(settings: Settings) -> None:
    """What the telemetry service does on its first write: database, retention policies, continuous queries."""
    store = build_timeseries(settings)
    try:
        store.write(FactoryScope("doctor-probe"), [Point("d1", "p", datetime.now(UTC), 1.0)])
    finally:
        store.close()


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_all_ok_against_a_running_setup_as_a_subprocess(setup: Setup, tmp_path: Path, database_url: str) -> None:
    url = database_url if TEST_DB == "mysql" else f"sqlite:///{tmp_path / 'factoryops.db'}"
    db = Database(url)
    upgrade(db.engine)
    db.dispose()
    settings = production_settings(setup, tmp_path / "data", url)
    create_influx_schema(settings)
    env = {
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_DATABASE__URL": url,
        "FACTORYOPS_MQTT__EMBEDDED": "false",
        "FACTORYOPS_MQTT__PORT": str(setup.mqtt_port),
        "FACTORYOPS_TIMESERIES__BACKEND": "influxdb",
        "FACTORYOPS_TIMESERIES__INFLUX_URL": setup.influx_url,
        "FACTORYOPS_TIMESERIES__INFLUX_DATABASE": "doctor",
        "FACTORYOPS_OBJECTSTORE__BACKEND": "s3",
        "FACTORYOPS_OBJECTSTORE__S3_ENDPOINT": setup.moto.url,
        "FACTORYOPS_OBJECTSTORE__S3_BUCKET": "doctor-bucket",
        "FACTORYOPS_OBJECTSTORE__S3_ACCESS_KEY": ACCESS_KEY,
        "FACTORYOPS_OBJECTSTORE__S3_SECRET_KEY": SECRET_KEY,
        "FACTORYOPS_NOTIFICATIONS__SMTP_HOST": "127.0.0.1",
        "FACTORYOPS_NOTIFICATIONS__SMTP_PORT": str(setup.smtp_port),
        "FACTORYOPS_ENV": "production",
        "FACTORYOPS_AUTH__JWT_SECRET": "p" * 40,
    }
    proc = factoryops(["doctor", "--json"], env, tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    report = json.loads(out)
    assert report["ok"] is True
    checks = {c["name"]: c for c in report["checks"]}
    for name in (
        "settings",
        "data folder",
        "database",
        "migrations",
        "timeseries",
        "timeseries schema",
        "mqtt",
        "object store",
        "smtp",
        "web portal",
        "telemetry spool",
    ):
        assert checks[name]["status"] == OK, checks[name]
    # production without TLS files: a warning with the fix, which leaves the exit code at 0
    assert checks["tls"]["status"] == WARN and "FACTORYOPS_HTTP__TLS_CERT_FILE" in checks["tls"]["fix"]
    assert "production" in checks["settings"]["detail"]
    assert "doctor-bucket" in checks["object store"]["detail"]
    assert "rollup continuous queries present" in checks["timeseries schema"]["detail"]


def test_text_output_and_exit_code_when_the_broker_is_down_as_a_subprocess(setup: Setup, tmp_path: Path) -> None:
    env = {
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_DATABASE__URL": setup.sqlite_url,
        "FACTORYOPS_MQTT__EMBEDDED": "false",
        "FACTORYOPS_MQTT__PORT": str(free_port()),  # nothing listens there
    }
    proc = factoryops(["doctor"], env, tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    mqtt_line = next(line for line in out.splitlines() if " mqtt " in line)
    assert mqtt_line.lstrip().startswith("FAIL"), out
    assert "cannot reach the MQTT broker" in mqtt_line
    assert "fix: check FACTORYOPS_MQTT__HOST/__PORT" in out
    assert "1 problem(s)" in out
    for line in out.splitlines():  # everything else is fine on the embedded defaults
        if line.lstrip().startswith(("FAIL", "WARN")):
            assert " mqtt " in line, out


def test_invalid_settings_are_reported_not_a_crash(tmp_path: Path) -> None:
    proc = factoryops(["doctor", "--json"], {"FACTORYOPS_ENV": "production"}, tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    checks = json.loads(out)["checks"]
    assert [c["name"] for c in checks] == ["settings"] and checks[0]["status"] == FAIL
    assert "FACTORYOPS_AUTH__JWT_SECRET" in checks[0]["detail"]
    assert "fix the FACTORYOPS_* environment variables" in checks[0]["fix"]


def test_broker_down(setup: Setup, tmp_path: Path) -> None:
    settings = production_settings(setup, tmp_path, setup.sqlite_url, mqtt={"port": free_port()})
    create_influx_schema(settings)
    checks = run_checks(settings)
    mqtt = by_name(checks)["mqtt"]
    assert mqtt.status == FAIL and "cannot reach the MQTT broker" in mqtt.detail
    assert "FACTORYOPS_MQTT__HOST/__PORT" in mqtt.fix
    assert [c.name for c in checks if c.status == FAIL] == ["mqtt"]
    assert exit_code(checks) == 1
    text = render_text(checks, settings)
    assert "FAIL  mqtt" in text and "fix: check FACTORYOPS_MQTT__HOST/__PORT" in text


def test_embedded_broker_down_says_it_runs_inside_up(setup: Setup, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, setup.sqlite_url, mqtt={"port": free_port(), "embedded": True})
    mqtt = by_name(run_checks(settings))["mqtt"]
    assert mqtt.status == FAIL and "runs inside `factoryops up`" in mqtt.fix


def test_wrong_influxdb_url(setup: Setup, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = production_settings(setup, tmp_path, setup.sqlite_url, timeseries={"influx_url": url})
    checks = run_checks(settings)
    ts = by_name(checks)["timeseries"]
    assert ts.status == FAIL and "timeseries schema" not in by_name(checks)
    assert "FACTORYOPS_TIMESERIES__INFLUX_URL" in ts.fix and "ping" in ts.fix
    assert exit_code(checks) == 1


def test_influxdb_without_the_schema_says_to_start_the_telemetry_service(setup: Setup, tmp_path: Path) -> None:
    settings = production_settings(setup, tmp_path, setup.sqlite_url, timeseries={"influx_database": "never_used"})
    schema = by_name(run_checks(settings))["timeseries schema"]
    assert schema.status == FAIL and "no database 'never_used'" in schema.detail
    assert "start the telemetry service" in schema.fix


def test_influxdb_retention_other_than_the_settings_is_a_warning(setup: Setup, tmp_path: Path) -> None:
    created = production_settings(setup, tmp_path, setup.sqlite_url, timeseries={"influx_database": "doctor_rp"})
    create_influx_schema(created)
    now = production_settings(
        setup, tmp_path, setup.sqlite_url, timeseries={"influx_database": "doctor_rp", "raw_retention_days": 7}
    )
    checks = run_checks(now)
    schema = by_name(checks)["timeseries schema"]
    assert schema.status == WARN and "raw keeps 30d, settings say 7d" in schema.detail
    assert "restart the telemetry service" in schema.fix
    assert exit_code(checks) == 0 and exit_code(checks, strict=True) == 1


def test_s3_endpoint_down(setup: Setup, tmp_path: Path) -> None:
    settings = production_settings(setup, tmp_path, setup.sqlite_url)
    create_influx_schema(settings)
    with setup.moto.stopped():
        checks = run_checks(settings)
    store = by_name(checks)["object store"]
    assert store.status == FAIL and "cannot be reached" in store.detail
    assert "FACTORYOPS_OBJECTSTORE__S3_ENDPOINT" in store.fix
    assert [c.name for c in checks if c.status == FAIL] == ["object store"]
    assert exit_code(checks) == 1


def test_database_not_migrated(setup: Setup, tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = [r.revision for r in script.walk_revisions()]  # newest first
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    upgrade(db.engine, revisions[1])
    db.dispose()
    checks = run_checks(make_settings(tmp_path, url, mqtt={"port": setup.mqtt_port}))
    migrations = by_name(checks)["migrations"]
    assert migrations.status == FAIL
    assert f"at revision {revisions[1]}; this version needs {revisions[0]}" in migrations.detail
    assert "`factoryops migrate`" in migrations.fix
    assert exit_code(checks) == 1

    sqlite3.connect(tmp_path / "empty.db").close()  # a database file without any schema
    checks = run_checks(make_settings(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}"))
    migrations = by_name(checks)["migrations"]
    assert migrations.status == FAIL and "never migrated" in migrations.detail
    assert "`factoryops migrate`" in migrations.fix


def test_missing_sqlite_file_is_reported_not_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "factoryops.db"
    checks = run_checks(make_settings(tmp_path / "data", f"sqlite:///{path}"))
    database = by_name(checks)["database"]
    assert database.status == FAIL and str(path) in database.detail and "factoryops migrate" in database.fix
    assert "migrations" not in by_name(checks)
    assert not path.exists()


def test_unbuilt_web_portal_and_missing_tls_file(setup: Setup, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        setup.sqlite_url,
        mqtt={"port": setup.mqtt_port},
        web_dir=tmp_path / "no-portal",
        http={"tls_cert_file": tmp_path / "missing.pem", "tls_key_file": tmp_path / "missing.key"},
    )
    checks = by_name(run_checks(settings))
    assert checks["web portal"].status == FAIL and "npm run build" in checks["web portal"].fix
    assert checks["tls"].status == FAIL and "FACTORYOPS_HTTP__TLS_CERT_FILE" in checks["tls"].detail


def test_smtp_server_down(setup: Setup, tmp_path: Path) -> None:
    port = free_port()
    settings = production_settings(setup, tmp_path, setup.sqlite_url, notifications={"smtp_port": port})
    smtp = by_name(run_checks(settings))["smtp"]
    assert smtp.status == FAIL and f"127.0.0.1:{port}" in smtp.detail
    assert "FACTORYOPS_NOTIFICATIONS__SMTP_HOST" in smtp.fix


def test_spool_with_unsent_points_is_reported(setup: Setup, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, setup.sqlite_url, mqtt={"port": setup.mqtt_port}, telemetry_name="line-7")
    spool = Spool(tmp_path / "spool" / "telemetry-line-7.db")
    now = datetime.now(UTC)
    spool.append(
        [("f1", [Point("d1", "p", now, 1.0), Point("d1", "q", now, 2.0)]), ("f2", [Point("d2", "p", now, 3.0)])]
    )
    spool.close()
    Spool(tmp_path / "spool" / "telemetry-empty.db").close()
    checks = run_checks(settings)
    found = by_name(checks)["telemetry spool"]
    assert found.status == WARN
    assert "telemetry-line-7.db: 3 points in 2 batches" in found.detail and "empty" not in found.detail
    assert "FACTORYOPS_TELEMETRY_NAME=line-7" in found.fix
    assert exit_code(checks) == 0 and exit_code(checks, strict=True) == 1
