"""Reminders of alerts left open and unacknowledged (an injected clock; several sweeping workers
send each reminder once), and the flood cap: a flapping device gives N notifications, suppressed
rows in the delivery log and one digest per recipient - through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from channels import Channels, drain, open_channels
from factoryops.core.db import utcnow
from factoryops.core.settings import NotificationSettings
from factoryops.jobs.models import Job
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import JobWorker
from factoryops.notifications.models import Delivery, Reminder
from factoryops.notifications.service import Outbox, ReminderSweep, handlers
from factoryops.rules.engine import RuleEngine
from support import auth, setup_rule
from test_notification_prefs import DEFAULTS


@pytest.fixture()
def channels() -> Iterator[Channels]:
    with open_channels() as opened:
        yield opened


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def _rule(client: TestClient, world: Any, notify: dict[str, Any], severity: str = "warning") -> str:
    return setup_rule(
        client,
        world,
        {
            "scope": {"kind": "factory"},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "severity": severity,
            "cooldown_seconds": 0,
            "notify": notify,
        },
    )


def _deliveries(platform: Any, world: Any, event: str) -> list[Delivery]:
    with platform.db.factory_session(world.id) as s:
        return list(s.execute(select(Delivery).where(Delivery.event == event).order_by(Delivery.created_at)).scalars())


def _setup(
    client: TestClient, settings: NotificationSettings, clock: Callable[[], datetime], name: str
) -> tuple[Any, RuleEngine, JobWorker, ReminderSweep]:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    outbox = Outbox(platform.db, settings, clock=clock)
    engine = RuleEngine(platform.db, on_transition=outbox.on_transition)
    worker = JobWorker(JobQueue(platform.db), handlers(platform.db, settings), name=name)
    return platform, engine, worker, ReminderSweep(platform.db, settings, clock=clock)


# ---------------------------------------------------------------------- reminders
def test_reminders_every_interval_until_the_cap(client: TestClient, make_factory, channels: Channels) -> None:
    world = make_factory(with_admins=False)
    _rule(
        client,
        world,
        {"emails": ["ops@plant.example"], "users": [world.super_admin["user_id"]], "remind_after_minutes": 10},
    )
    clock = Clock()
    platform, engine, worker, sweep = _setup(client, channels.settings, clock, "rem-1")
    t0 = clock.now
    engine.on_event(world.id, "press-1", "", t0, {"power_kw": 150.0})
    drain(worker)
    assert len(channels.mails_to("ops@plant.example")) == 1
    expected = 0
    for minutes, due in (
        (5, False),
        (10, True),
        (10, False),
        (21, True),
        (29, False),
        (30, True),
        (45, False),
        (90, False),
    ):
        clock.now = t0 + timedelta(minutes=minutes)
        sweep.run()
        expected += due
        assert len(_deliveries(platform, world, "reminder")) == 2 * expected, f"at +{minutes} min"
    drain(worker)
    ops = channels.mails_to("ops@plant.example")
    boss = channels.mails_to(world.super_admin["email"])
    assert len(ops) == len(boss) == 4  # the alert and three reminders (the cap)
    for n in (1, 2, 3):
        assert f"[REMINDER {n}/3] [WARNING] Rule under test on press-1" in ops[n]
        assert "nobody has acknowledged it" in boss[n]
    with platform.db.factory_session(world.id) as s:
        reminder = s.execute(select(Reminder)).scalar_one()
        assert reminder.sent == 3 and reminder.done


def test_the_cap_is_a_setting_and_acknowledging_stops_reminders(
    client: TestClient, make_factory, channels: Channels
) -> None:
    world = make_factory(with_admins=False)
    _rule(client, world, {"emails": ["ops@plant.example"], "remind_after_minutes": 1})
    clock = Clock()
    settings = channels.settings.model_copy(update={"reminder_max": 1})
    platform, engine, _, sweep = _setup(client, settings, clock, "rem-2")
    t0 = clock.now
    register = client.post("/api/v1/devices", headers=auth(world.super_token), json={"device_id": "press-2"})
    assert register.status_code == 201
    engine.on_event(world.id, "press-1", "", t0, {"power_kw": 150.0})
    engine.on_event(world.id, "press-2", "", t0, {"power_kw": 150.0})
    alerts = client.get("/api/v1/alerts?state=open", headers=auth(world.super_token)).json()["items"]
    by_device = {a["device_id"]: a["id"] for a in alerts}
    r = client.post(f"/api/v1/alerts/{by_device['press-2']}/acknowledge", headers=auth(world.super_token), json={})
    assert r.status_code == 200, r.text
    for minutes in (1, 2, 3, 4):
        clock.now = t0 + timedelta(minutes=minutes)
        sweep.run()
    reminders = _deliveries(platform, world, "reminder")
    assert [d.alert_id for d in reminders] == [by_device["press-1"]]  # one (the cap), none for the acknowledged
    with platform.db.factory_session(world.id) as s:
        assert all(r.done for r in s.execute(select(Reminder)).scalars())


def test_several_workers_send_each_reminder_once(client: TestClient, make_factory, channels: Channels) -> None:
    world = make_factory(with_admins=False)
    _rule(client, world, {"emails": ["ops@plant.example", "shift@plant.example"], "remind_after_minutes": 5})
    clock = Clock()
    platform, engine, _, _ = _setup(client, channels.settings, clock, "rem-3")
    t0 = clock.now
    engine.on_event(world.id, "press-1", "", t0, {"power_kw": 150.0})
    clock.now = t0 + timedelta(minutes=5)
    sweeps = [ReminderSweep(platform.db, channels.settings, clock=clock) for _ in range(4)]
    start = threading.Barrier(len(sweeps))

    def run(sweep: ReminderSweep) -> None:
        start.wait()
        sweep.run()

    threads = [threading.Thread(target=run, args=(s,)) for s in sweeps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(d.recipient for d in _deliveries(platform, world, "reminder")) == [
        "ops@plant.example",
        "shift@plant.example",
    ]


def test_a_deferred_reminder_is_dropped_once_the_alert_is_acknowledged(
    client: TestClient, make_factory, channels: Channels
) -> None:
    world = make_factory()
    berlin = utcnow().astimezone(ZoneInfo("Europe/Berlin"))
    quiet = {
        "start": (berlin - timedelta(hours=1)).strftime("%H:%M"),
        "end": (berlin + timedelta(hours=3)).strftime("%H:%M"),
    }
    r = client.put(
        "/api/v1/me/notification-preferences",
        headers=auth(world.admin_plain_token),
        json={**DEFAULTS, "quiet_hours": quiet},
    )
    assert r.status_code == 200, r.text
    _rule(client, world, {"users": [world.admin_plain["id"]], "remind_after_minutes": 10})
    clock = Clock()
    platform, engine, worker, sweep = _setup(client, channels.settings, clock, "rem-4")
    t0 = clock.now
    engine.on_event(world.id, "press-1", "", t0, {"power_kw": 150.0})
    clock.now = t0 + timedelta(minutes=10)
    sweep.run()
    drain(worker)
    assert channels.mails_to(world.admin_plain["email"]) == []  # quiet hours: both wait
    (reminder,) = _deliveries(platform, world, "reminder")
    assert reminder.state == "queued"
    alert_id = reminder.alert_id
    r = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=auth(world.super_token), json={})
    assert r.status_code == 200, r.text
    with platform.db.factory_session(world.id) as s:  # the quiet hours end
        s.execute(update(Job).where(Job.kind == "alerts.notify").values(run_after=utcnow()))
    drain(worker)
    mails = channels.mails_to(world.admin_plain["email"])
    assert len(mails) == 1 and "[WARNING]" in mails[0] and "REMINDER" not in mails[0]
    (reminder,) = _deliveries(platform, world, "reminder")
    assert reminder.state == "suppressed" and "acknowledged" in reminder.error


# ---------------------------------------------------------------------- flood cap and digest
def test_a_flapping_device_gets_n_notifications_then_one_digest(
    client: TestClient, make_factory, channels: Channels
) -> None:
    world = make_factory(with_admins=False)
    _rule(client, world, {"emails": ["ops@plant.example"], "users": [world.super_admin["user_id"]]})
    settings = channels.settings.model_copy(update={"flood_max_per_window": 3, "flood_window_seconds": 4})
    platform, engine, worker, _ = _setup(client, settings, utcnow, "flood-1")
    h = auth(world.super_token)
    t0 = utcnow()
    for i in range(5):  # ten transitions: opened, resolved, opened, ...
        engine.on_event(world.id, "press-1", "", t0 + timedelta(seconds=2 * i), {"power_kw": 150.0 + 10 * i})
        engine.on_event(world.id, "press-1", "", t0 + timedelta(seconds=2 * i + 1), {"power_kw": 10.0})
    drain(worker)
    ops = channels.mails_to("ops@plant.example")
    assert len(ops) == 3 and len(channels.mails_to(world.super_admin["email"])) == 3
    assert ["[WARNING]" in ops[0], "[RESOLVED]" in ops[1], "[WARNING]" in ops[2]] == [True, True, True]
    log = client.get("/api/v1/notifications/deliveries?state=suppressed&limit=200", headers=h).json()
    assert log["total"] == 14  # seven transitions held back, for each of the two recipients
    assert {(d["recipient"], d["event"]) for d in log["items"]} == {
        ("ops@plant.example", "opened"),
        ("ops@plant.example", "resolved"),
        (world.super_admin["email"], "opened"),
        (world.super_admin["email"], "resolved"),
    }
    with platform.db.factory_session(world.id) as s:
        notify_jobs = s.execute(select(Job.kind).where(Job.kind == "alerts.notify")).scalars().all()
        assert len(notify_jobs) == 6  # suppressed deliveries have no job
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(channels.mails_to("ops@plant.example")) < 4:
        time.sleep(0.5)
        drain(worker)
    ops = channels.mails_to("ops@plant.example")
    assert len(ops) == 4, "no digest after the window"
    digest = ops[3]
    assert "[DIGEST] Rule under test on press-1: 7 notification(s) held back" in digest
    assert "3 opened, 4 resolved" in digest and "power_kw = 190" in digest
    assert len(channels.mails_to(world.super_admin["email"])) == 4
    digests = client.get("/api/v1/notifications/deliveries?event=digest", headers=h).json()["items"]
    assert sorted(d["recipient"] for d in digests) == sorted(["ops@plant.example", world.super_admin["email"]])
    assert {d["state"] for d in digests} == {"sent"}
    # a new window: notifications go out again
    engine.on_event(world.id, "press-1", "", utcnow() + timedelta(seconds=30), {"power_kw": 150.0})
    drain(worker)
    assert len(channels.mails_to("ops@plant.example")) == 5


def test_the_worker_service_sends_due_reminders(client: TestClient, make_factory, channels: Channels) -> None:
    from factoryops.entrypoints.services import WorkerService

    world = make_factory(with_admins=False)
    _rule(client, world, {"emails": ["ops@plant.example"], "remind_after_minutes": 1})
    settings = channels.settings.model_copy(update={"sweep_seconds": 0.2})
    opened_at = utcnow() - timedelta(minutes=2)  # the alert has been open for two minutes
    platform, engine, _, _ = _setup(client, settings, lambda: opened_at, "rem-5")
    engine.on_event(world.id, "press-1", "", opened_at, {"power_kw": 150.0})
    service = WorkerService(
        platform.db, heartbeat_seconds=0.2, job_handlers=handlers(platform.db, settings), notifications=settings
    )
    service.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(channels.mails_to("ops@plant.example")) < 2:
            time.sleep(0.2)
    finally:
        service.stop()
    mails = channels.mails_to("ops@plant.example")
    assert len(mails) == 2 and "[REMINDER 1/3]" in mails[1]
