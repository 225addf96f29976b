"""System-health alerts: the time-series store going down (a real InfluxDB, stopped and started
again), property registration refused by the database, a notification channel failing; who may
see them; and the recorder's promise never to block or break its caller."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import text

from channels import Channels, Mailbox, drain, open_channels
from factoryops.core.db import Database, utcnow
from factoryops.core.settings import NotificationSettings
from factoryops.devices.discovery import Registry
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import JobWorker
from factoryops.notifications.service import Outbox, handlers
from factoryops.notifications.system_alerts import SystemAlertRecorder, install
from factoryops.ports.timeseries.base import Point
from factoryops.ports.timeseries.influx import InfluxTimeseriesStore
from factoryops.rules.engine import RuleEngine
from factoryops.telemetry.spool import Spool
from factoryops.telemetry.writer import BatchWriter
from influx import _free_ports, influxdb
from support import TEST_DB, auth, free_port, register_device, setup_rule
from test_notification_prefs import DEFAULTS


@pytest.fixture()
def channels() -> Iterator[Channels]:
    with open_channels() as opened:
        yield opened


@contextmanager
def recording(platform: Any, settings: NotificationSettings) -> Iterator[SystemAlertRecorder]:
    recorder = SystemAlertRecorder(platform.db, settings)
    previous = install(recorder)
    try:
        yield recorder
    finally:
        recorder.stop()
        install(previous)


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def system_alerts(client: TestClient, token: str, query: str = "") -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/system-alerts{query}", headers=auth(token))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


# ---------------------------------------------------------------------- time-series store down
def test_timeseries_outage_opens_a_system_alert_and_resolves_it(
    client: TestClient, make_factory, root_token: str, channels: Channels, tmp_path: Path
) -> None:
    world = make_factory(with_admins=False)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    settings = channels.settings.model_copy(update={"system_alert_write_seconds": 0.5})
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    seq = 0

    def submit(writer: BatchWriter) -> None:
        nonlocal seq
        writer.submit(world.id, [Point("meter-1", "seq", start + timedelta(seconds=seq), float(seq))])
        seq += 1

    ports = tuple(_free_ports(2))
    folder = tmp_path / "influx"
    worker = JobWorker(JobQueue(platform.db), handlers(platform.db, settings), name="sys-1")
    with recording(platform, settings):
        with influxdb(folder, ports=ports) as server:  # type: ignore[arg-type]
            store = InfluxTimeseriesStore(server.url, "sysalerts", timeout=2.0)
            writer = BatchWriter(store, Spool(tmp_path / "spool.db"), max_delay=0.02, retry_for=0.3, health_after=1.0)
            writer.start()
            for _ in range(20):
                submit(writer)
            assert writer.drain(30)
        # InfluxDB is stopped: points go to the spool, and after health_after a system alert opens
        for _ in range(20):
            submit(writer)
        assert writer.drain(30)
        time.sleep(1.2)
        submit(writer)
        assert writer.drain(30)
        opened = wait_for(lambda: system_alerts(client, world.super_token, "?state=open"))
        assert [(a["kind"], a["state"]) for a in opened] == [("timeseries_down", "open")], opened
        assert "unreachable" in opened[0]["message"] and opened[0]["occurrences"] >= 1
        r = client.get("/api/v1/root/system-alerts?state=open&limit=200", headers=auth(root_token))
        mine = [a for a in r.json()["items"] if a["factory_id"] == world.id]
        assert [(a["kind"], a["factory_name"]) for a in mine] == [("timeseries_down", world.name)]
        # the super admins hear of it, through the outbox
        drain(worker)
        mails = channels.mails_to(world.super_admin["email"])
        assert len(mails) == 1 and "[SYSTEM] The time-series store is down" in mails[0]
        # the same failure goes on: the one row counts it, no new alert, no new email
        for _ in range(5):
            submit(writer)
            assert writer.drain(30)
            time.sleep(0.3)
        again = wait_for(
            lambda: [a for a in system_alerts(client, world.super_token) if a["occurrences"] > opened[0]["occurrences"]]
        )
        assert len(again) == 1 and again[0]["id"] == opened[0]["id"]
        with influxdb(folder, ports=ports):  # type: ignore[arg-type]
            submit(writer)
            assert wait_for(lambda: writer.health.store_ok and not writer.spool.depth, 60)
            resolved = wait_for(lambda: system_alerts(client, world.super_token, "?state=resolved"))
            writer.stop()
            store.close()
        assert [a["id"] for a in resolved] == [opened[0]["id"]] and resolved[0]["resolved_at"]
        assert system_alerts(client, world.super_token, "?state=open") == []
        drain(worker)
        assert len(channels.mails_to(world.super_admin["email"])) == 1


# ---------------------------------------------------------------------- property registration
@contextmanager
def refusing_properties(platform: Any, factory_id: str) -> Iterator[None]:
    """A real database failure: a trigger that refuses new properties of one factory."""
    name = f"refuse_props_{factory_id.replace('-', '')[:12]}"
    if TEST_DB == "sqlite":
        create = (
            f"CREATE TRIGGER {name} BEFORE INSERT ON properties WHEN NEW.factory_id = '{factory_id}' "
            "BEGIN SELECT RAISE(ABORT, 'the database refuses new properties'); END"
        )
    else:
        create = (
            f"CREATE TRIGGER {name} BEFORE INSERT ON properties FOR EACH ROW BEGIN "
            f"IF NEW.factory_id = '{factory_id}' THEN "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the database refuses new properties'; END IF; END"
        )
    with platform.db.engine.begin() as conn:
        conn.execute(text(create))
    try:
        yield
    finally:
        with platform.db.engine.begin() as conn:
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))


def test_failing_property_registration_opens_a_system_alert(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    register_device(client, world, "meter-1")
    platform = client.app.state.platform  # type: ignore[attr-defined]
    registry = Registry(platform.db)
    settings = NotificationSettings(system_alert_write_seconds=0.2)
    with recording(platform, settings) as recorder:
        with refusing_properties(platform, world.id):
            with pytest.raises(Exception, match="refuses new properties"):
                registry.ensure_properties(world.id, "meter-1", ["voltage_v"], utcnow())
            recorder.flush()
            (alert,) = system_alerts(client, world.super_token)
            assert alert["kind"] == "registration_failing" and alert["state"] == "open"
            assert "voltage_v" in alert["message"] and "meter-1" in alert["message"]
        assert registry.ensure_properties(world.id, "meter-1", ["voltage_v"], utcnow()) == ["voltage_v"]
        recorder.flush()
        (alert,) = system_alerts(client, world.super_token)
        assert alert["state"] == "resolved"


# ---------------------------------------------------------------------- a channel failing
def test_a_failed_delivery_opens_channel_failing_without_feeding_on_itself(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    h = auth(world.super_token)
    # the super admin wants email and WhatsApp; WhatsApp is not configured on this platform
    r = client.put(
        "/api/v1/me/notification-preferences",
        headers=h,
        json={**DEFAULTS, "whatsapp": True, "whatsapp_number": "+4915100000001"},
    )
    assert r.status_code == 200, r.text
    setup_rule(
        client,
        world,
        {
            "scope": {"kind": "factory"},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "cooldown_seconds": 0,
            "notify": {"emails": ["ops@plant.example"]},
        },
    )
    smtp_port = free_port()  # nothing listens there yet
    settings = NotificationSettings(
        smtp_host="127.0.0.1", smtp_port=smtp_port, max_attempts=1, timeout_seconds=2, system_alert_write_seconds=0.2
    )
    engine = RuleEngine(platform.db, on_transition=Outbox(platform.db, settings).on_transition)
    worker = JobWorker(JobQueue(platform.db), handlers(platform.db, settings), name="sys-3")
    with recording(platform, settings) as recorder:
        engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 150.0})
        drain(worker)
        recorder.flush()
        drain(worker)  # the super admin's notification of it: WhatsApp only (email is what fails) - fails too
        recorder.flush(force=True)
        (alert,) = system_alerts(client, world.super_token)
        assert alert["kind"] == "channel_failing" and alert["state"] == "open" and alert["occurrences"] == 1
        assert alert["message"].startswith("email: a notification to ops@plant.example failed after 1 attempt")
        system = client.get("/api/v1/notifications/deliveries?event=system", headers=h).json()["items"]
        assert [(d["channel"], d["state"]) for d in system] == [("whatsapp", "failed")]
        assert "not configured" in system[0]["error"]
        # SMTP comes up: the next email goes out and the alert resolves
        mailbox = Mailbox()
        smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        try:
            engine.on_event(world.id, "press-1", "", utcnow() + timedelta(seconds=1), {"power_kw": 10.0})
            drain(worker)
        finally:
            smtp.stop()
        assert len(mailbox.messages) == 1
        recorder.flush()
        (alert,) = system_alerts(client, world.super_token)
        assert alert["state"] == "resolved" and alert["occurrences"] == 1


# ---------------------------------------------------------------------- who sees them
def test_super_admins_see_their_factory_and_the_root_sees_all(
    client: TestClient, make_factory, root_token: str
) -> None:
    a, b = make_factory(), make_factory()
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with recording(platform, NotificationSettings(system_alert_write_seconds=60)) as recorder:
        recorder.report(a.id, "timeseries_down", "down for a test")
        recorder.report(b.id, "registration_failing", "refused for a test")
        recorder.flush()
        for _ in range(49):
            recorder.report(a.id, "timeseries_down", "down for a test")
        recorder.flush()
        (first,) = system_alerts(client, a.super_token)
        assert first["occurrences"] == 1  # opened at once; the repeats wait for the throttle
        recorder.flush(force=True)
        (alert,) = system_alerts(client, a.super_token)
        assert alert["id"] == first["id"] and alert["occurrences"] == 50 and alert["kind"] == "timeseries_down"
        recorder.resolve(a.id, "timeseries_down")
        recorder.flush()
    assert system_alerts(client, a.super_token, "?state=open") == []
    assert [x["id"] for x in system_alerts(client, a.super_token, "?state=resolved")] == [alert["id"]]
    assert [x["kind"] for x in system_alerts(client, b.super_token)] == ["registration_failing"]
    # Every user of the factory reads its system alerts (spec 3.2: admins have read access); the root
    # reads them through the root route only.
    for token in (a.admin_plain_token, a.admin_all_token):
        assert [x["kind"] for x in system_alerts(client, token)] == [alert["kind"]]
    assert client.get("/api/v1/system-alerts", headers=auth(root_token)).status_code == 403
    for token in (a.super_token, a.admin_all_token):
        assert client.get("/api/v1/root/system-alerts", headers=auth(token)).status_code == 403
    r = client.get("/api/v1/root/system-alerts?limit=200", headers=auth(root_token))
    assert r.status_code == 200, r.text
    seen = {(x["factory_id"], x["factory_name"], x["kind"], x["state"]) for x in r.json()["items"]}
    assert {(a.id, a.name, "timeseries_down", "resolved"), (b.id, b.name, "registration_failing", "open")} <= seen
    opened = client.get("/api/v1/root/system-alerts?state=open&limit=200", headers=auth(root_token)).json()
    assert all(x["state"] == "open" for x in opened["items"]) and b.id in {x["factory_id"] for x in opened["items"]}


def test_recording_never_blocks_or_raises_when_the_database_is_gone(tmp_path: Path) -> None:
    dead = Database(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    recorder = SystemAlertRecorder(dead, NotificationSettings())
    began = time.monotonic()
    for _ in range(1000):
        recorder.report("some-factory", "timeseries_down", "down")
        recorder.resolve("some-factory", "registration_failing")
    assert time.monotonic() - began < 1.0
    assert recorder.flush(force=True) == 0  # logged, kept for the next round, not raised
    recorder.stop()
