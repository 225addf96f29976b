"""Backup and restore of one factory: every row and object back as it was, the other factories untouched,
a damaged backup refused. Runs on SQLite and MariaDB (``database_url``), objects on a folder and on S3."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete, select

from factoryops.alerts.models import Alert, AlertEvent
from factoryops.analytics.models import Dataset
from factoryops.core.db import Base, Database, PlatformOnly, utcnow
from factoryops.core.settings import ObjectStoreSettings
from factoryops.devices.models import DeviceProperty, Property
from factoryops.notifications.models import NotificationPreference
from factoryops.ports.objectstore import FactoryScope, Key, ObjectStore, build_objectstore
from factoryops.reports.models import Report, ReportSettings
from factoryops.tenancy.backup import (
    FACTORIES,
    BackupError,
    backup_factory,
    factory_tables,
    platform_tables,
    restore_factory,
)
from factoryops.tenancy.models import AuthSession, Factory, PlatformAdmin, User
from factoryops.wiring import Platform
from s3 import ACCESS_KEY, SECRET_KEY, MotoServer, moto_server
from services import factoryops
from support import PASSWORD, ROOT_EMAIL, FactoryWorld, auth, login, setup_rule


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with moto_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


def make_store(kind: str, folder: Path, moto: MotoServer | None) -> ObjectStore:
    if kind == "local":
        return build_objectstore(ObjectStoreSettings(backend="local"), folder)
    assert moto is not None
    settings = ObjectStoreSettings(
        backend="s3",
        s3_endpoint=moto.url,
        s3_bucket=f"backup-{secrets.token_hex(4)}",
        s3_access_key=SecretStr(ACCESS_KEY),
        s3_secret_key=SecretStr(SECRET_KEY),
    )
    return build_objectstore(settings, folder)


def rows_of(db: Database, factory_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the factory, read independently of the code under test: the factory row and every
    table with a factory_id column, except platform-only ones (sign-in sessions)."""
    platform = {m.local_table.name for m in Base.registry.mappers if issubclass(m.class_, PlatformOnly)}
    found: dict[str, list[dict[str, Any]]] = {}
    with db.unscoped_session() as s:
        for table in Base.metadata.sorted_tables:
            if table.name == FACTORIES:
                column = table.c.id
            elif "factory_id" in table.c and table.name not in platform:
                column = table.c.factory_id
            else:
                continue
            stmt = select(table).where(column == factory_id).order_by(*table.primary_key.columns)
            found[table.name] = [dict(row) for row in s.execute(stmt).mappings()]
    return found


def objects_of(store: ObjectStore, factory_id: str) -> dict[str, bytes]:
    scope = FactoryScope(factory_id)
    return {str(info.key): store.get_bytes(scope, info.key) for info in store.list(scope)}


def populate(client: TestClient, platform: Platform, world: FactoryWorld, store: ObjectStore) -> None:
    """Devices, properties, a rule, an alert with its timeline, preferences, report settings, a report
    and a dataset with their objects (users and audit events come from make_factory and the API)."""
    rule_id = setup_rule(
        client,
        world,
        {
            "scope": {"kind": "device", "device_ids": ["press-1"]},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "cooldown_seconds": 0,
        },
        devices={"press-1": "press", "meter-2": ""},
    )
    scope = FactoryScope(world.id)
    pdf = b"%PDF-1.7 report of " + world.slug.encode() + secrets.token_bytes(2000)
    parquet = b"PAR1" + secrets.token_bytes(5000)
    now = utcnow()
    with platform.db.factory_session(world.id) as s:
        s.add(DeviceProperty(device_id="press-1", property_name="power_kw", last_value=120.5))
        alert = Alert(
            rule_id=rule_id,
            rule_name="Rule under test",
            device_id="press-1",
            severity="critical",
            trigger_values={"power_kw": 120.5, "note": "ünïcode ✓"},
        )
        s.add(alert)
        s.flush()
        s.add(AlertEvent(alert_id=alert.id, kind="opened", values={"power_kw": 120.5}))
        s.add(
            NotificationPreference(
                user_id=world.admin_plain["id"],
                whatsapp=True,
                whatsapp_number="+4915112345678",
                quiet_start="22:00",
                quiet_end="06:00",
            )
        )
        s.add(
            ReportSettings(
                currency="EUR",
                emission_factor_kg_per_kwh=0.4,
                tariff={"kind": "flat", "price_per_kwh": 0.21},
                shifts=[{"name": "early", "start": "06:00", "end": "14:00"}],
            )
        )
        report = Report(title="March energy", format="pdf", state="ready", emailed_to=["boss@plant.example"])
        dataset = Dataset(name="Press data", request={"device_ids": ["press-1"]}, request_hash=secrets.token_hex(32))
        s.add_all([report, dataset])
        s.flush()
        report_key = Key("reports", report.id, "report.pdf")
        data_key = Key("analytics", "datasets", dataset.id, "data-abc.parquet")
        report.object_key, report.size_bytes = str(report_key), len(pdf)
        report.content_hash, report.finished_at = hashlib.sha256(pdf).hexdigest(), now + timedelta(microseconds=7)
        dataset.state, dataset.object_key, dataset.ready_at = "ready", str(data_key), now
    store.put_bytes(scope, report_key, pdf, content_type="application/pdf")
    store.put_bytes(scope, data_key, parquet)


def drop_factory(platform: Platform, store: ObjectStore, factory_id: str) -> None:
    """The factory is lost: its row (and by cascade all its rows) and its objects."""
    with platform.db.unscoped_session() as s:
        s.execute(delete(Factory.__table__).where(Factory.__table__.c.id == factory_id))
    scope = FactoryScope(factory_id)
    for info in store.list(scope):
        store.delete(scope, info.key)
    assert not any(rows_of(platform.db, factory_id).values())


def files_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------- tests
@pytest.mark.nodb
def test_every_table_belongs_to_a_factory_or_to_the_platform() -> None:
    mine = {t.name for t in factory_tables()}
    platform = {t.name for t in platform_tables()}
    assert {"users", "devices", "rules", "alerts", "alert_events", "reports", "analytics_datasets"} <= mine
    assert {"platform_admins", "auth_sessions", "platform_audit_events"} <= platform
    assert mine | platform | {FACTORIES} == {t.name for t in Base.metadata.sorted_tables}
    platform_classes = {m.local_table.name for m in Base.registry.mappers if issubclass(m.class_, PlatformOnly)}
    assert platform == platform_classes, "a table without factory_id would be missing from every factory backup"
    for table in platform_tables():  # nothing the platform keeps may depend on a factory's row
        assert not {fk.column.table.name for fk in table.foreign_keys} & (mine | {FACTORIES}), table.name
    names = [t.name for t in factory_tables()]
    assert names.index("alerts") < names.index("alert_events") and names.index("users") < names.index(
        "notification_preferences"
    )


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_backup_delete_and_restore_brings_back_every_row_and_object(
    kind: str, client: TestClient, make_factory: Any, platform: Platform, tmp_path: Path, request: Any
) -> None:
    store = make_store(kind, tmp_path / "store", request.getfixturevalue("moto") if kind == "s3" else None)
    a, b = make_factory(), make_factory()
    populate(client, platform, a, store)
    populate(client, platform, b, store)
    before_a, before_b = rows_of(platform.db, a.id), rows_of(platform.db, b.id)
    objects_a, objects_b = objects_of(store, a.id), objects_of(store, b.id)
    assert len(before_a["users"]) == 3 and len(objects_a) == 2 and before_a["audit_events"]

    out = tmp_path / "backups" / "a.tar.gz"
    result = backup_factory(platform.db, store, a.slug, out)  # by slug; the id works too
    assert result.factory["id"] == a.id and out.is_file()
    assert result.rows == {name: len(rows) for name, rows in before_a.items()}
    assert result.objects == 2
    unpacked = tmp_path / "unpacked"
    with tarfile.open(out) as tar:
        tar.extractall(unpacked, filter="data")
    manifest = json.loads((unpacked / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["factory"]["slug"] == a.slug
    assert manifest["schema_revision"] and manifest["created_at"]
    assert any("influxd backup -portable" in note for note in manifest["not_included"])
    users = [json.loads(line) for line in (unpacked / "metadata" / "users.jsonl").read_text().splitlines()]
    assert {u["email"] for u in users} == {r["email"] for r in before_a["users"]}
    text = files_text(unpacked)
    with platform.db.unscoped_session() as s:
        root = s.execute(select(PlatformAdmin).where(PlatformAdmin.email == ROOT_EMAIL)).scalar_one()
    # The root account is never in a factory backup (the factory's audit log may name it as the actor).
    assert root.password_hash not in text
    assert not (unpacked / "metadata" / "platform_admins.jsonl").exists()
    assert b.id not in text and b.slug not in text, "another factory's rows or objects leaked into the backup"
    assert not (unpacked / "metadata" / "auth_sessions.jsonl").exists()

    drop_factory(platform, store, a.id)
    restored = restore_factory(platform.db, store, out)
    assert not restored.replaced and restored.objects == 2
    assert rows_of(platform.db, a.id) == before_a
    assert objects_of(store, a.id) == objects_a
    assert rows_of(platform.db, b.id) == before_b and objects_of(store, b.id) == objects_b
    # the restored accounts work
    login(client, a.slug, a.super_admin["email"], PASSWORD)

    with pytest.raises(BackupError, match=r"exists in this platform; nothing was restored. Use --replace"):
        restore_factory(platform.db, store, out)


def test_restore_replace_returns_the_factory_to_the_backup_and_leaves_others_alone(
    client: TestClient, make_factory: Any, platform: Platform, tmp_path: Path
) -> None:
    store = make_store("local", tmp_path / "store", None)
    a, b = make_factory(), make_factory()
    populate(client, platform, a, store)
    populate(client, platform, b, store)
    before_a, objects_a = rows_of(platform.db, a.id), objects_of(store, a.id)
    out = tmp_path / "backup-a"
    backup_factory(platform.db, store, a.id, out)
    assert (out / "manifest.json").is_file() and not list(out.glob(".staging-*"))

    # life goes on in A after the backup: a new device, a renamed rule, a user gone, an object replaced and one added
    h = auth(a.super_token)
    assert client.post("/api/v1/devices", headers=h, json={"device_id": "late-9"}).status_code == 201
    rule_id = before_a["rules"][0]["id"]
    r = client.patch(f"/api/v1/rules/{rule_id}", headers=h, json={"name": "Renamed after the backup"})
    assert r.status_code == 200, r.text
    scope = FactoryScope(a.id)
    first_key = Key.parse(next(iter(objects_a)))
    store.put_bytes(scope, first_key, b"changed after the backup")
    store.put_bytes(scope, Key("reports", "late", "late.pdf"), b"created after the backup")
    with platform.db.factory_session(a.id) as s:
        s.execute(delete(User).where(User.id == a.admin_all["id"]))
    before_b, objects_b = rows_of(platform.db, b.id), objects_of(store, b.id)
    sessions_b = _open_sessions(platform, b.id)
    assert _open_sessions(platform, a.id) and sessions_b

    result = restore_factory(platform.db, store, out, replace=True)
    assert result.replaced and result.objects_removed == 1
    assert rows_of(platform.db, a.id) == before_a
    assert objects_of(store, a.id) == objects_a
    assert rows_of(platform.db, b.id) == before_b and objects_of(store, b.id) == objects_b
    assert _open_sessions(platform, a.id) == [], "sessions of the replaced factory end"
    assert _open_sessions(platform, b.id) == sessions_b
    login(client, a.slug, a.admin_all["email"], PASSWORD)  # the deleted user is back


def test_restore_replace_keeps_the_properties_learnt_since_the_backup(
    client: TestClient, make_factory: Any, platform: Platform, tmp_path: Path
) -> None:
    """Properties are never deleted (spec 5.3): their telemetry stays in the time-series store whatever a
    restore does, so a --replace keeps what was learnt after the backup, for the devices it restores."""
    store = make_store("local", tmp_path / "store", None)
    a = make_factory()
    populate(client, platform, a, store)
    out = tmp_path / "backup-a"
    backup_factory(platform.db, store, a.id, out)
    before = rows_of(platform.db, a.id)

    h = auth(a.super_token)
    assert client.post("/api/v1/devices", headers=h, json={"device_id": "late-9"}).status_code == 201
    with platform.db.factory_session(a.id) as s:  # what discovery records when the devices report new metrics
        s.add(Property(name="oil_temp_c", unit="°C"))
        s.add(DeviceProperty(device_id="press-1", property_name="oil_temp_c", last_value=61.0))
        s.add(DeviceProperty(device_id="late-9", property_name="oil_temp_c", last_value=58.0))
        s.add(DeviceProperty(device_id="meter-2", property_name="power_kw", last_value=3.5))

    result = restore_factory(platform.db, store, out, replace=True)
    assert result.replaced and result.properties_kept == 1
    after = rows_of(platform.db, a.id)
    assert {r["name"] for r in after["properties"]} == {r["name"] for r in before["properties"]} | {"oil_temp_c"}
    assert len(after["properties"]) == len(before["properties"]) + 1
    links = {(r["device_id"], r["property_name"]) for r in after["device_properties"]}
    assert links == {(r["device_id"], r["property_name"]) for r in before["device_properties"]} | {
        ("press-1", "oil_temp_c"),
        ("meter-2", "power_kw"),
    }, "late-9 is not in the backup: it is gone, and its own property rows with it"
    assert "late-9" not in {r["device_id"] for r in after["devices"]}
    unchanged = {name for name in before if name not in ("properties", "device_properties")}
    assert {name: after[name] for name in unchanged} == {name: before[name] for name in unchanged}


def _open_sessions(platform: Platform, factory_id: str) -> list[str]:
    with platform.db.unscoped_session() as s:
        return sorted(
            s.execute(
                select(AuthSession.id).where(AuthSession.factory_id == factory_id, AuthSession.revoked_at.is_(None))
            ).scalars()
        )


def test_a_tampered_backup_is_refused_and_nothing_changes(
    client: TestClient, make_factory: Any, platform: Platform, tmp_path: Path
) -> None:
    store = make_store("local", tmp_path / "store", None)
    a = make_factory()
    populate(client, platform, a, store)
    out = tmp_path / "backup"
    backup_factory(platform.db, store, a.id, out)
    before = rows_of(platform.db, a.id)

    users = out / "metadata" / "users.jsonl"
    original = users.read_text()
    users.write_text(original.replace('"role": "admin"', '"role": "super_admin"', 1))
    with pytest.raises(BackupError) as refused:
        restore_factory(platform.db, store, out, replace=True)
    message = str(refused.value)
    assert "damaged or was changed after it was written, nothing was restored" in message
    assert "metadata/users.jsonl has SHA-256" in message and "Restore from another copy" in message
    assert rows_of(platform.db, a.id) == before

    users.write_text(original)
    victim = next((out / "objects").rglob("*.pdf"))
    victim.write_bytes(victim.read_bytes() + b"!")
    with pytest.raises(BackupError, match=r"object reports/.*/report.pdf does not match its SHA-256"):
        restore_factory(platform.db, store, out, replace=True)

    # the same check on the archive form
    victim.write_bytes(victim.read_bytes()[:-1])
    archive = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(out.rglob("*")):
            data = path.read_bytes() if path.is_file() else b""
            if path.name == "devices.jsonl":
                data = data.replace(b"press-1", b"press-X")
            if path.is_file():
                info = tarfile.TarInfo(str(path.relative_to(out)))
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BackupError, match=r"metadata/devices.jsonl has SHA-256"):
        restore_factory(platform.db, store, archive, replace=True)
    assert rows_of(platform.db, a.id) == before


def test_a_backup_of_another_schema_revision_is_refused(
    client: TestClient, make_factory: Any, platform: Platform, tmp_path: Path
) -> None:
    store = make_store("local", tmp_path / "store", None)
    a = make_factory(with_admins=False)
    out = tmp_path / "backup"
    backup_factory(platform.db, store, a.id, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_revision"] = "0001"
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match=r"made at schema revision 0001, this database is at"):
        restore_factory(platform.db, store, out, replace=True)
    with pytest.raises(BackupError, match=r"no factory with the id or slug 'no-such-plant'"):
        backup_factory(platform.db, store, "no-such-plant", tmp_path / "none")
    with pytest.raises(BackupError, match=r"exists and is not an empty folder"):
        backup_factory(platform.db, store, a.id, out)


def test_cli_backup_then_restore_into_a_fresh_platform(
    client: TestClient, make_factory: Any, platform: Platform, tmp_path: Path
) -> None:
    """The commands end to end: a backup of the test platform restored into a new SQLite platform
    (after `factoryops migrate`), as after losing the database; the second restore needs --replace."""
    store = platform.objects
    assert store is not None
    a = make_factory()
    populate(client, platform, a, store)
    before, objects = rows_of(platform.db, a.id), objects_of(store, a.id)
    source = {
        "FACTORYOPS_DATA_DIR": str(platform.settings.data_dir),
        "FACTORYOPS_DATABASE__URL": platform.settings.database_url,
    }
    out = tmp_path / "a.tar.gz"
    proc = factoryops(["backup", "--factory", a.slug, "--out", str(out)], source, tmp_path)
    text, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, text
    assert f"backup of factory {a.slug} ({a.id}) written to {out}" in text and "2 objects" in text
    assert "Time-series telemetry is not in it" in text

    fresh = {"FACTORYOPS_DATA_DIR": str(tmp_path / "fresh")}
    for args in (["migrate"], ["restore", "--in", str(out)]):
        proc = factoryops(args, fresh, tmp_path)
        text, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, text
    assert f"factory {a.slug} ({a.id}) restored" in text
    db = Database(f"sqlite:///{tmp_path / 'fresh' / 'factoryops.db'}")
    try:
        assert rows_of(db, a.id) == before
    finally:
        db.dispose()
    fresh_store = build_objectstore(ObjectStoreSettings(backend="local"), tmp_path / "fresh")
    assert objects_of(fresh_store, a.id) == objects

    proc = factoryops(["restore", "--in", str(out)], fresh, tmp_path)
    text, _ = proc.communicate(timeout=180)
    assert proc.returncode == 1, text
    assert "exists in this platform; nothing was restored. Use --replace" in text
