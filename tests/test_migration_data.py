"""Data migrations, on a database of their own (SQLite or MariaDB, as the run says): built up to the
revision before, filled through the models (the schema is the same), then upgraded."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, create_engine, select, text

from factoryops.alerts.models import Alert, AlertEvent
from factoryops.core.db import Database, UTCDateTime, utcnow
from factoryops.core.migrate import current, upgrade
from factoryops.rules.models import Rule
from factoryops.tenancy.models import Factory
from support import MYSQL_SERVER, TEST_DB


@pytest.fixture()
def fresh(tmp_path: Path) -> Iterator[Database]:
    if TEST_DB == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield db
        db.engine.dispose()
        return
    name = f"factoryops_migration_{secrets.token_hex(4)}"
    server = create_engine(MYSQL_SERVER)
    with server.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    db = Database(f"{MYSQL_SERVER}/{name}?charset=utf8mb4")
    try:
        yield db
    finally:
        db.engine.dispose()
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


def insert_old_device(
    conn: Connection, factory_id: str, device_id: str, enabled: bool = True, last_seen: datetime | None = None
) -> None:
    """A device row with the columns of revision 0013/0014 only, through Core: the Device model has
    columns of later revisions, which an older schema lacks."""
    when = UTCDateTime()
    devices = sa.table(
        "devices",
        *(sa.column(n, sa.String) for n in ("id", "factory_id", "device_id", "name", "type", "location")),
        *(sa.column(n, sa.String) for n in ("mqtt_username", "mqtt_password_hash")),
        sa.column("enabled", sa.Boolean),
        *(sa.column(n, when) for n in ("last_seen", "created_at", "updated_at")),
    )
    conn.execute(
        devices.insert().values(
            id=device_id,
            factory_id=factory_id,
            device_id=device_id,
            name=device_id,
            type="",
            location="",
            enabled=enabled,
            mqtt_username=device_id,
            mqtt_password_hash="x",
            last_seen=last_seen,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
    )


def test_0014_resolves_the_open_alerts_of_disabled_rules_and_devices(fresh: Database) -> None:
    upgrade(fresh.engine, "0013")
    definition = {"scope": {"kind": "factory"}, "condition": {"property": "power_kw", "operator": ">", "value": 1}}
    with fresh.unscoped_session() as s:  # ESCAPE HATCH (test set-up): rows of one factory, each naming it
        factory = Factory(slug="plant", name="Plant", timezone="UTC")
        s.add(factory)
        s.flush()
        fid = factory.id
        on, off = (
            Rule(factory_id=fid, name="on", definition=definition),
            Rule(factory_id=fid, name="off", enabled=False, definition=definition),
        )
        s.add_all([on, off])
        for device_id, enabled in (("live-1", True), ("dead-1", False)):
            insert_old_device(s.connection(), fid, device_id, enabled=enabled)
        s.flush()
        rows = {
            "kept": Alert(factory_id=fid, rule_id=on.id, device_id="live-1", severity="warning"),
            "rule off": Alert(factory_id=fid, rule_id=off.id, device_id="live-1", severity="warning"),
            "device off": Alert(
                factory_id=fid, rule_id=on.id, device_id="dead-1", severity="critical", state="acknowledged"
            ),
        }
        s.add_all(rows.values())
        s.flush()
        ids = {label: alert.id for label, alert in rows.items()}

    upgrade(fresh.engine, "0014")
    assert current(fresh.engine) == "0014"
    with fresh.unscoped_session() as s:
        alerts = {a.id: a for a in s.execute(select(Alert)).scalars()}
        # the columns of 0014 (the model has those of the head revision)
        events = {e.alert_id: e for e in s.execute(select(AlertEvent.alert_id, AlertEvent.kind, AlertEvent.note)).all()}
    assert alerts[ids["kept"]].state == "open" and alerts[ids["kept"]].open_key == "open"
    assert ids["kept"] not in events
    for label, why in (("rule off", "the rule is disabled"), ("device off", "the device is disabled")):
        alert = alerts[ids[label]]
        assert alert.state == "resolved" and alert.open_key is None and alert.resolved_at is not None, label
        assert alert.resolved_by == "system" and why in alert.resolution_note, label
        assert events[ids[label]].kind == "resolved" and events[ids[label]].note == alert.resolution_note

    upgrade(fresh.engine, "0016")  # events from before the outbox flag count as announced: no sweep sends them
    with fresh.unscoped_session() as s:
        flags = s.execute(select(AlertEvent.kind, AlertEvent.announced)).all()
    assert sorted(flags) == [("resolved", True), ("resolved", True)]
