"""Alert notifications through the outbox: a real SMTP server (aiosmtpd) and a local HTTP server
that answers as Twilio's Messages API does; a dead channel is retried, then failed and logged."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from channels import drain, open_channels
from factoryops.alerts.models import AlertEvent
from factoryops.core.db import utcnow
from factoryops.core.settings import NotificationSettings
from factoryops.devices.models import Property
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import JobWorker
from factoryops.notifications.channels import template_variable
from factoryops.notifications.models import Delivery
from factoryops.notifications.service import ANNOUNCED_LATE, AnnounceSweep, Outbox, handlers
from factoryops.rules.engine import RuleEngine, Transition
from factoryops.tenancy.models import Factory
from support import FactoryWorld, auth, free_port, register_device


def test_email_and_whatsapp_on_open_and_resolve(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    register_device(client, world, "press-1")
    overload_rule(client, world, {"emails": ["energy@plant.example"], "whatsapp": ["+4915112345678"]})
    platform = client.app.state.platform  # type: ignore[attr-defined]
    h = auth(world.super_token)
    with open_channels() as channels:
        outbox = Outbox(platform.db, channels.settings)
        engine = RuleEngine(platform.db, on_transition=outbox.on_transition)
        worker = JobWorker(JobQueue(platform.db), handlers(platform.db, channels.settings), name="n1")
        engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 140.0})
        drain(worker)
        mailbox = channels.mailbox
        assert len(mailbox.messages) == 1
        mail = mailbox.messages[0]
        assert mail.rcpt_tos == ["energy@plant.example"]
        text = mail.content.decode()
        assert "[CRITICAL] Overload on press-1" in text and "power_kw = 140" in text
        assert len(channels.whatsapp) == 1
        sent = channels.whatsapp[0]
        assert sent["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
        assert sent["form"]["To"] == "whatsapp:+4915112345678" and sent["form"]["From"] == "whatsapp:+14155238886"
        assert sent["auth"].startswith("Basic ")
        engine.on_event(world.id, "press-1", "", utcnow() + timedelta(seconds=1), {"power_kw": 10.0})
        drain(worker)
        assert len(mailbox.messages) == 2 and "[RESOLVED]" in mailbox.messages[1].content.decode()
        log = client.get("/api/v1/notifications/deliveries", headers=h).json()
        assert log["total"] == 4 and {d["state"] for d in log["items"]} == {"sent"}


def test_dead_channel_is_retried_then_failed_and_logged(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    register_device(client, world, "press-1")
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:
        s.add(Property(name="power_kw"))
    h = auth(world.super_token)
    client.post(
        "/api/v1/rules",
        headers=h,
        json={
            "name": "Overload",
            "definition": {
                "scope": {"kind": "factory"},
                "condition": {"property": "power_kw", "operator": ">", "value": 100},
                "notify": {"emails": ["energy@plant.example"], "whatsapp": ["+4915112345678"]},
            },
        },
    )
    settings = NotificationSettings(smtp_host="127.0.0.1", smtp_port=free_port(), max_attempts=2, timeout_seconds=2)
    outbox = Outbox(platform.db, settings)
    engine = RuleEngine(platform.db, on_transition=outbox.on_transition)
    queue = JobQueue(platform.db, retry_base_seconds=0.0)
    worker = JobWorker(queue, handlers(platform.db, settings), name="n2")
    engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 140.0})
    drain(worker)
    log = {d["channel"]: d for d in client.get("/api/v1/notifications/deliveries", headers=h).json()["items"]}
    assert log["email"]["state"] == "failed" and log["email"]["attempts"] == 2
    assert "ConnectionRefusedError" in log["email"]["error"]
    assert log["whatsapp"]["state"] == "failed" and "not configured" in log["whatsapp"]["error"]
    jobs = client.get("/api/v1/jobs?kind=alerts.notify", headers=h).json()["items"]
    assert {j["state"] for j in jobs} == {"failed", "succeeded"}  # a channel that is off fails without retries


def overload_rule(client: TestClient, world: FactoryWorld, notify: dict[str, list[str]]) -> None:
    """power_kw (in kW) above 100 opens a critical "Overload" alert, notifying ``notify``."""
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:
        s.add(Property(name="power_kw", unit="kW"))
    rule = {
        "name": "Overload",
        "definition": {
            "scope": {"kind": "factory"},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "severity": "critical",
            "cooldown_seconds": 0,
            "notify": notify,
        },
    }
    assert client.post("/api/v1/rules", headers=auth(world.super_token), json=rule).status_code == 201


def test_a_notification_reads_well_away_from_the_portal(client: TestClient, make_factory) -> None:
    """The plant's local time (UTC beside it), the factory, the device's name and place, the values'
    units and a link to the alert: a person reading it on a phone knows what and where."""
    world = make_factory(with_admins=False)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    h = auth(world.super_token)
    r = client.post(
        "/api/v1/devices",
        headers=h,
        json={"device_id": "press-1", "name": "Hydraulic press 1", "location": "Hall B"},
    )
    assert r.status_code == 201, r.text
    with platform.db.unscoped_session() as s:
        factory = s.get(Factory, world.id)
        assert factory is not None
        factory.timezone, name, slug = "Europe/Berlin", factory.name, factory.slug
    overload_rule(client, world, {"emails": ["energy@plant.example"]})
    with open_channels(portal_url="https://ops.plant.example/") as channels:
        outbox = Outbox(platform.db, channels.settings)
        engine = RuleEngine(platform.db, on_transition=outbox.on_transition)
        worker = JobWorker(JobQueue(platform.db), handlers(platform.db, channels.settings), name="n1")
        at = datetime(2026, 1, 15, 9, 30, 5, tzinfo=UTC)  # 10:30:05 in Berlin (CET)
        engine.on_event(world.id, "press-1", "", at, {"power_kw": 140.0})
        drain(worker)
        [mail] = channels.mailbox.messages
        message = email.message_from_bytes(mail.content, policy=email.policy.default)
        body = message.get_body()
        assert isinstance(message, EmailMessage) and body is not None
        text = f"{message['Subject']}\n{body.get_content()}"  # decoded: long lines come quoted-printable
    [alert] = client.get("/api/v1/alerts", headers=h).json()["items"]
    assert f"[CRITICAL] Overload on press-1 (Hydraulic press 1) - {name}" in text
    assert "Alert opened at 2026-01-15 10:30:05 CET (09:30:05 UTC)" in text
    assert f"Factory: {name}" in text and "Location: Hall B" in text
    assert "Values: power_kw = 140 kW" in text
    assert f"Open in FactoryOps: https://ops.plant.example/f/{slug}/alerts/{alert['id']}" in text


def test_whatsapp_goes_out_as_the_approved_template_when_one_is_set(client: TestClient, make_factory) -> None:
    """Outside a 24-hour conversation WhatsApp takes a business-initiated message only as an approved
    template: with a Content SID set, Twilio gets ContentSid and the two variables, each one line."""
    world = make_factory(with_admins=False)
    register_device(client, world, "press-1")
    platform = client.app.state.platform  # type: ignore[attr-defined]
    overload_rule(client, world, {"whatsapp": ["+4915112345678"]})
    with open_channels(twilio_whatsapp_content_sid="HX0123456789abcdef0123456789abcdef") as channels:
        outbox = Outbox(platform.db, channels.settings)
        engine = RuleEngine(platform.db, on_transition=outbox.on_transition)
        worker = JobWorker(JobQueue(platform.db), handlers(platform.db, channels.settings), name="n1")
        engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 140.0})
        drain(worker)
        [sent] = channels.whatsapp
    form = sent["form"]
    assert "Body" not in form and form["ContentSid"] == "HX0123456789abcdef0123456789abcdef"
    variables = json.loads(form["ContentVariables"])
    assert variables["1"].startswith("[CRITICAL] Overload on press-1")
    assert "Values: power_kw = 140 kW" in variables["2"] and " | Rule: Overload | " in variables["2"]
    assert all("\n" not in v and "\t" not in v and "     " not in v for v in variables.values())


def test_a_template_variable_is_one_bounded_line() -> None:
    assert template_variable("a\n  b\tc      d\r\n") == "a | b | c | d"
    long = template_variable("x" * 5000)
    assert len(long) == 1000 and long.endswith("\u2026")


def _unannounced(platform, world: FactoryWorld) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with platform.db.factory_session(world.id) as s:
        return [
            (e.alert_id, e.kind) for e in s.execute(select(AlertEvent).where(AlertEvent.announced.is_(False))).scalars()
        ]


def test_a_transition_left_unannounced_is_announced_once_by_the_sweep(client: TestClient, make_factory) -> None:
    """The alert's row and its notifications are two transactions: a telemetry process that dies (or
    loses the database) between them leaves the transition unannounced, and a worker's sweep sends it."""
    world = make_factory(with_admins=False)
    register_device(client, world, "press-1")
    overload_rule(client, world, {"emails": ["energy@plant.example"]})
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with open_channels() as channels:
        outbox = Outbox(platform.db, channels.settings)
        dying = RuleEngine(platform.db)  # opens the alert, then its process dies before announcing
        dying.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 140.0})
        [(alert_id, kind)] = _unannounced(platform, world)
        assert kind == "opened"
        worker = JobWorker(JobQueue(platform.db), handlers(platform.db, channels.settings), name="n5")
        # (the sweeps are platform-wide: other tests' engines without an outbox leave transitions too)
        AnnounceSweep(outbox, grace_seconds=30).run()
        assert _unannounced(platform, world) == [(alert_id, "opened")]  # too recent: the live path may still come
        later = Outbox(platform.db, channels.settings, clock=lambda: utcnow() + timedelta(seconds=31))
        before = ANNOUNCED_LATE._value.get()
        assert AnnounceSweep(later, grace_seconds=30).run() >= 1
        assert ANNOUNCED_LATE._value.get() >= before + 1
        assert _unannounced(platform, world) == []
        AnnounceSweep(later, grace_seconds=30).run()
        with platform.db.factory_session(world.id) as s:
            assert s.execute(select(func.count(Delivery.id))).scalar_one() == 1  # announced once
        rule_id = client.get("/api/v1/rules", headers=auth(world.super_token)).json()["items"][0]["id"]
        late_live = Transition("opened", alert_id, rule_id, "press-1")
        assert outbox.on_transition(world.id, late_live) == 0  # the live path, arriving after, sends nothing
        drain(worker)

        def ours() -> list[str]:  # the queue is the platform's: other tests' deliveries may go out too
            return [m for m in (m.content.decode() for m in channels.mailbox.messages) if world.name in m]

        assert len(ours()) == 1 and "[CRITICAL] Overload on press-1" in ours()[0]
        # the normal path: the resolve is announced by the process that made it, and claimed
        live = RuleEngine(platform.db, on_transition=outbox.on_transition)
        live.on_event(world.id, "press-1", "", utcnow() + timedelta(seconds=1), {"power_kw": 10.0})
        assert _unannounced(platform, world) == []
        drain(worker)
        assert len(ours()) == 2 and "[RESOLVED]" in ours()[1]
        AnnounceSweep(later, grace_seconds=30).run()
        with platform.db.factory_session(world.id) as s:
            assert s.execute(select(func.count(Delivery.id))).scalar_one() == 2  # open, resolve: once each


def test_sweeps_running_at_once_announce_each_transition_once(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    devices = [f"press-{i}" for i in range(12)]
    for device in devices:
        register_device(client, world, device)
    overload_rule(client, world, {"emails": ["energy@plant.example"]})
    platform = client.app.state.platform  # type: ignore[attr-defined]
    dying = RuleEngine(platform.db)
    for device in devices:
        dying.on_event(world.id, device, "", utcnow() - timedelta(minutes=5), {"power_kw": 140.0})
    assert len(_unannounced(platform, world)) == 12
    settings = NotificationSettings(smtp_host="127.0.0.1", smtp_port=free_port())
    sweeps = [AnnounceSweep(Outbox(platform.db, settings)) for _ in range(3)]
    start = threading.Barrier(3)

    def sweep(one: AnnounceSweep) -> int:
        start.wait()
        return one.run()

    with ThreadPoolExecutor(3) as pool:
        counts = list(pool.map(sweep, sweeps))
    assert sum(counts) >= 12, counts  # (and any other test's leftovers: the sweep is platform-wide)
    assert _unannounced(platform, world) == []
    with platform.db.factory_session(world.id) as s:
        per_alert = s.execute(select(Delivery.alert_id, func.count()).group_by(Delivery.alert_id)).all()
    assert len(per_alert) == 12 and {n for _, n in per_alert} == {1}


def test_the_worker_service_announces_what_was_left(client: TestClient, make_factory) -> None:
    from factoryops.entrypoints.services import WorkerService

    world = make_factory(with_admins=False)
    register_device(client, world, "press-1")
    overload_rule(client, world, {"emails": ["energy@plant.example"]})
    platform = client.app.state.platform  # type: ignore[attr-defined]
    # Left 10 s ago: within the default grace (30 s), past this platform's (5 s).
    RuleEngine(platform.db).on_event(world.id, "press-1", "", utcnow() - timedelta(seconds=10), {"power_kw": 140.0})
    with open_channels() as channels:
        settings = channels.settings.model_copy(update={"sweep_seconds": 0.2, "announce_grace_seconds": 5.0})
        service = WorkerService(
            platform.db, heartbeat_seconds=0.2, job_handlers=handlers(platform.db, settings), notifications=settings
        )
        service.start()

        def ours() -> list[str]:  # the queue is the platform's: other tests' deliveries may go out too
            return [m for m in (m.content.decode() for m in channels.mailbox.messages) if world.name in m]

        try:
            deadline = time.monotonic() + 12  # with the default grace it would wait 20 s more
            while time.monotonic() < deadline and not ours():
                time.sleep(0.1)
            time.sleep(0.5)  # a second mail would be a duplicate
        finally:
            service.stop()
        assert len(ours()) == 1, "the worker's sweep did not announce the alert"
        assert "[CRITICAL] Overload on press-1" in ours()[0]
    assert _unannounced(platform, world) == []
