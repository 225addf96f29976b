"""Rule behaviours against the real pipeline: schedule in the factory's time zone across midnight,
duration, rate, windowed aggregate, staleness driven by the engine's timers, and the whole path
over real MQTT (device credentials, the embedded broker, the telemetry service, alert rows).

Race, cooldown, hysteresis and auto-resolve on the pipeline are in test_rule_engine.py. Messages
go through IngestPipeline with an injected clock, so each one is stamped at a chosen moment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from factoryops.alerts.models import Alert
from factoryops.devices.discovery import Registry
from factoryops.devices.models import DeviceProperty
from factoryops.devices.mqtt_auth import DeviceAuth
from factoryops.ports.mqtt.broker import MqttBroker
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore
from factoryops.rules.engine import RuleEngine
from factoryops.telemetry.pipeline import IngestPipeline
from factoryops.telemetry.rejects import RejectLog
from factoryops.telemetry.service import TelemetryService
from factoryops.telemetry.spool import Spool
from factoryops.telemetry.writer import BatchWriter
from support import FactoryWorld, auth, make_settings, mqtt_connect, mqtt_publish, register_device, setup_rule

BERLIN = ZoneInfo("Europe/Berlin")  # the time zone make_factory gives every test factory


class Clock:
    """The injected clock of the pipeline and the engine."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class Live:
    world: FactoryWorld
    engine: RuleEngine
    pipeline: IngestPipeline
    clock: Clock
    platform: Any
    rule_id: str

    def send(self, device_id: str, at: datetime | None = None, **values: float) -> str:
        if at is not None:
            self.clock.now = at
        topic = f"factories/{self.world.id}/devices/{device_id}/telemetry"
        return self.pipeline.handle(topic, json.dumps(values).encode(), lambda: None)

    def alerts(self, device_id: str | None = None) -> list[tuple[str, datetime, datetime | None]]:
        with self.platform.db.factory_session(self.world.id) as s:
            stmt = select(Alert).order_by(Alert.opened_at)
            if device_id:
                stmt = stmt.where(Alert.device_id == device_id)
            return [(a.device_id, a.opened_at, a.resolved_at) for a in s.execute(stmt).scalars()]


@pytest.fixture()
def live(client: TestClient, make_factory, tmp_path: Path) -> Iterator[Callable[..., Live]]:  # type: ignore[no-untyped-def]
    """A factory with a rule, and the real pipeline (registry, batch writer, time-series store,
    rule engine) stamping messages with a clock the test moves."""
    platform = client.app.state.platform  # type: ignore[attr-defined]
    store = EmbeddedTimeseriesStore(tmp_path / "ts")
    writer = BatchWriter(store, Spool(tmp_path / "spool.db"), max_delay=0.01)
    writer.start()

    def make(definition: dict[str, Any], start: datetime, **kwargs: Any) -> Live:
        world = make_factory(with_admins=False)
        rule_id = setup_rule(client, world, definition, **kwargs)
        clock = Clock(start)
        engine = RuleEngine(platform.db, clock=clock)
        pipeline = IngestPipeline(
            Registry(platform.db), writer, RejectLog(platform.db, lambda f: True), clock=clock, engine=engine
        )
        return Live(world, engine, pipeline, clock, platform, rule_id)

    yield make
    writer.stop()
    store.close()


def _recent(weekday: int) -> datetime:
    """Midnight (Berlin) of the latest given weekday at least a week ago."""
    day = datetime.now(BERLIN).date() - timedelta(days=7)
    while day.weekday() != weekday:
        day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=BERLIN)


def test_schedule_in_the_factory_timezone_with_a_window_across_midnight(live: Callable[..., Live]) -> None:
    """Friday 22:00-06:00 in Berlin: Saturday 03:00 belongs to Friday's window, Saturday night does not."""
    friday = _recent(4)

    def at(days: int, hh: int, mm: int = 0) -> datetime:
        local = friday + timedelta(days=days)
        return datetime(local.year, local.month, local.day, hh, mm, tzinfo=BERLIN).astimezone(UTC)

    w = live(
        {
            "scope": {"kind": "factory"},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "schedule": {"days": [4], "windows": [{"start": "22:00", "end": "06:00"}]},
            "cooldown_seconds": 0,
        },
        at(0, 12),
    )
    assert w.send("press-1", at(0, 21, 59), power_kw=150) == "accepted"  # Friday before the window
    # 22:00 in Berlin is 20:00 or 21:00 UTC: an engine reading the window in UTC would not open here
    w.send("press-1", at(0, 22, 0), power_kw=150)  # opens
    w.send("press-1", at(0, 23, 0), power_kw=50)  # resolves
    w.send("press-1", at(1, 3, 0), power_kw=150)  # Saturday 03:00: Friday's window, opens
    w.send("press-1", at(1, 5, 59), power_kw=50)  # resolves
    w.send("press-1", at(1, 6, 0), power_kw=150)  # the window has ended
    w.send("press-1", at(1, 22, 30), power_kw=150)  # Saturday's own night: not scheduled
    w.send("press-1", at(2, 3, 0), power_kw=150)  # Sunday 03:00 belongs to Saturday's window
    assert w.alerts() == [
        ("press-1", at(0, 22, 0), at(0, 23, 0)),
        ("press-1", at(1, 3, 0), at(1, 5, 59)),
    ]


T = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday; rules without a schedule do not care


def _seconds(n: float) -> datetime:
    return T + timedelta(seconds=n)


def test_duration_holds_for_the_whole_time_before_opening(live: Callable[..., Live]) -> None:
    w = live(
        {
            "scope": {"kind": "factory"},
            "condition": {"property": "power_kw", "operator": ">", "value": 100, "for_seconds": 300},
            "cooldown_seconds": 0,
        },
        T,
    )
    for t in (0, 120, 240, 299):
        w.send("press-1", _seconds(t), power_kw=150)
    assert w.alerts() == []
    w.send("press-1", _seconds(300), power_kw=150)  # above since t=0 for 300 s
    w.send("press-1", _seconds(310), power_kw=90)  # drops: resolves, and the count starts over
    for t in (320, 500):
        w.send("press-1", _seconds(t), power_kw=150)
    assert w.alerts() == [("press-1", _seconds(300), _seconds(310))]
    w.send("press-1", _seconds(620), power_kw=150)  # 300 s since 320
    assert w.alerts() == [("press-1", _seconds(300), _seconds(310)), ("press-1", _seconds(620), None)]


def test_rate_of_change_per_minute(live: Callable[..., Live]) -> None:
    w = live(
        {
            "scope": {"kind": "factory"},
            "condition": {"property": "temp_c", "operator": ">", "value": 10, "rate": {"per_seconds": 60}},
            "cooldown_seconds": 0,
        },
        T,
        properties=("temp_c",),
    )
    w.send("press-1", _seconds(0), temp_c=20)  # no previous value: unknown
    w.send("press-1", _seconds(30), temp_c=24)  # +8 per minute
    assert w.alerts() == []
    w.send("press-1", _seconds(60), temp_c=31)  # +14 per minute: opens
    w.send("press-1", _seconds(90), temp_c=32)  # +2 per minute: resolves
    w.send("press-1", _seconds(120), temp_c=20)  # falling fast is not rising
    assert w.alerts() == [("press-1", _seconds(60), _seconds(90))]


def test_window_mean_over_fifteen_minutes(live: Callable[..., Live]) -> None:
    w = live(
        {
            "scope": {"kind": "factory"},
            "condition": {
                "property": "power_kw",
                "operator": ">",
                "value": 80,
                "window": {"fn": "mean", "seconds": 900},
            },
            "cooldown_seconds": 0,
        },
        T,
    )
    w.send("press-1", _seconds(0), power_kw=60)
    w.send("press-1", _seconds(300), power_kw=90)  # mean 75
    assert w.alerts() == []
    w.send("press-1", _seconds(600), power_kw=100)  # mean 83.3: opens
    w.send("press-1", _seconds(899), power_kw=80)  # mean 82.5: still open
    w.send("press-1", _seconds(900), power_kw=40)  # the 60 at t=0 left the window: mean 77.5, resolves
    assert w.alerts() == [("press-1", _seconds(600), _seconds(900))]


STALE = {
    "scope": {"kind": "factory"},
    "condition": {"property": "power_kw", "operator": "stale", "stale_seconds": 600},
    "cooldown_seconds": 0,
    "severity": "critical",
}


def test_staleness_is_driven_by_timers(live: Callable[..., Live]) -> None:
    """Deadlines armed at start (for devices that never send) and by every value; a deadline that
    passes in silence opens an alert at that moment, the next value resolves it, and a value that
    another telemetry process received (seen in the registry) postpones it."""
    w = live(STALE, T, devices={"press-1": "", "press-2": ""})
    w.engine.watch_factory(w.world.id)  # what the timer thread does at start: arms both devices from now
    assert w.send("press-1", _seconds(10), power_kw=5) == "accepted"  # re-arms press-1 until t=610
    assert w.engine.check_deadlines(_seconds(599)) == []
    opened = w.engine.check_deadlines(_seconds(600))
    assert [(t.kind, t.device_id) for t in opened] == [("opened", "press-2")]  # never said anything
    assert w.alerts() == [("press-2", _seconds(600), None)]
    assert [(t.kind, t.device_id) for t in w.engine.check_deadlines(_seconds(611))] == [("opened", "press-1")]
    with w.platform.db.factory_session(w.world.id) as s:
        opened_at = s.execute(select(Alert.opened_at).where(Alert.device_id == "press-1")).scalar_one()
    assert opened_at == _seconds(611)  # evaluated when the timer fired: no message was needed
    w.send("press-1", _seconds(700), power_kw=6)  # the value is back: auto-resolves
    assert w.alerts("press-1") == [("press-1", _seconds(611), _seconds(700))]
    assert w.engine.check_deadlines(_seconds(1000)) == []  # press-2 stays open: no duplicate

    # Another telemetry process received a value of press-1 at t=1000 (its registry wrote it):
    # the deadline of t=1300 is moved to t=1600 instead of opening an alert.
    with w.platform.db.factory_session(w.world.id) as s:
        s.execute(
            update(DeviceProperty)
            .where(DeviceProperty.device_id == "press-1", DeviceProperty.property_name == "power_kw")
            .values(last_seen=_seconds(1000))
        )
    assert w.engine.check_deadlines(_seconds(1300)) == []
    key = (w.world.id, w.rule_id, "press-1", "power_kw", 600)
    assert w.engine.pending_deadlines()[key] == _seconds(1600)
    assert [t.kind for t in w.engine.check_deadlines(_seconds(1600))] == ["opened"]
    assert w.alerts("press-1")[-1] == ("press-1", _seconds(1600), None)


def test_staleness_timers_follow_new_devices_and_rule_changes(client: TestClient, live: Callable[..., Live]) -> None:
    """A device registered later is armed from when the engine notices it; a disabled rule's
    deadlines do not fire, and disabling it resolves its open alerts; enabling it again arms its
    whole scope afresh, as a new rule."""
    w = live(STALE, T, devices={"press-1": ""})
    w.engine.watch_factory(w.world.id)  # press-1 silent from T
    w.clock.advance(100)
    register_device(client, w.world, "press-2")
    w.engine.watch_factory(w.world.id, reload=False, rescan=True)  # the timer thread's minutely rescan
    assert [t.device_id for t in w.engine.check_deadlines(_seconds(600))] == ["press-1"]
    h = auth(w.world.super_token)
    assert client.patch(f"/api/v1/rules/{w.rule_id}", headers=h, json={"enabled": False}).status_code == 200
    w.engine.watch_factory(w.world.id)
    assert w.engine.check_deadlines(_seconds(700)) == []  # press-2's deadline: the rule is off
    assert client.patch(f"/api/v1/rules/{w.rule_id}", headers=h, json={"enabled": True}).status_code == 200
    w.engine.watch_factory(w.world.id)
    # press-1's alert was resolved when the rule was disabled: both devices are silent, both open afresh
    assert sorted(t.device_id for t in w.engine.check_deadlines(_seconds(701))) == ["press-1", "press-2"]
    alerts = sorted(w.alerts(), key=lambda a: (a[1], a[0]))
    assert [(d, o) for d, o, _ in alerts] == [
        ("press-1", _seconds(600)),
        ("press-1", _seconds(701)),
        ("press-2", _seconds(701)),
    ]
    assert alerts[0][2] is not None and alerts[1][2] is None and alerts[2][2] is None


def test_staleness_respects_schedule_and_cooldown(live: Callable[..., Live]) -> None:
    """A deadline outside the schedule waits for the schedule to start; one in the cooldown of the
    last alert waits for the cooldown to end."""
    wednesday = _recent(2)
    nine = wednesday.replace(hour=9).astimezone(UTC)  # 09:00 Berlin
    w = live(
        {**STALE, "schedule": {"days": [2], "windows": [{"start": "10:00", "end": "18:00"}]}, "cooldown_seconds": 3600},
        nine,
    )
    w.send("press-1", nine, power_kw=1)  # silent from 09:00: deadline 09:10, outside the window
    assert w.engine.check_deadlines(nine + timedelta(minutes=10)) == []
    ten = nine + timedelta(hours=1)
    assert w.engine.check_deadlines(ten - timedelta(seconds=1)) == []
    assert [t.kind for t in w.engine.check_deadlines(ten)] == ["opened"]  # the window opened
    w.send("press-1", ten + timedelta(minutes=5), power_kw=1)  # resolves; silent again from 10:05
    assert w.alerts() == [("press-1", ten, ten + timedelta(minutes=5))]
    # deadline 10:15 falls in the cooldown of the 10:00 alert (one hour): it opens at 11:00
    assert w.engine.check_deadlines(ten + timedelta(minutes=15)) == []
    assert w.engine.check_deadlines(ten + timedelta(minutes=59)) == []
    assert [t.kind for t in w.engine.check_deadlines(ten + timedelta(hours=1))] == ["opened"]
    assert w.alerts()[-1] == ("press-1", ten + timedelta(hours=1), None)


SERVICE_USER, SERVICE_PASSWORD = "factoryops-service", "service-secret-behaviours"


def test_over_mqtt_alerts_open_resolve_and_go_stale_by_the_timer_thread(
    client: TestClient, make_factory, tmp_path: Path
) -> None:
    """Device credentials, the embedded broker, the telemetry service with its real timer thread and
    the real clock: a threshold alert opens and auto-resolves; a stale rule (10 s) opens for a
    device that never sends and for one that stops, and the next value resolves the latter."""
    platform = client.app.state.platform  # type: ignore[attr-defined]
    world = make_factory()
    creds = register_device(client, world, "press-1")
    register_device(client, world, "press-2")
    h = auth(world.super_token)
    threshold = setup_rule(
        client,
        world,
        {
            "scope": {"kind": "device", "device_ids": ["press-1"]},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "clear": {"property": "power_kw", "operator": "<", "value": 90},
            "cooldown_seconds": 0,
        },
        devices={},
        name="Overload",
    )
    stale = client.post(
        "/api/v1/rules",
        headers=h,
        json={
            "name": "Silent",
            "definition": {
                "scope": {"kind": "devices", "device_ids": ["press-1", "press-2"]},
                "condition": {"property": "power_kw", "operator": "stale", "stale_seconds": 10},
                "cooldown_seconds": 0,
            },
        },
    ).json()["id"]
    broker = MqttBroker("127.0.0.1", 0, auth=DeviceAuth(platform.db, SERVICE_USER, SERVICE_PASSWORD))
    broker.start_in_thread()
    settings = make_settings(
        tmp_path,
        platform.settings.database_url,
        mqtt={"port": broker.port, "username": SERVICE_USER, "password": SERVICE_PASSWORD},
        telemetry_name="behaviours",
    )
    store = EmbeddedTimeseriesStore(tmp_path / "ts")
    service = TelemetryService(settings, platform.db, store)

    def alerts(rule_id: str, device_id: str, want: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        items: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            r = client.get(f"/api/v1/alerts?rule_id={rule_id}&device_id={device_id}", headers=h)
            items = sorted(r.json()["items"], key=lambda a: a["opened_at"])
            if want(items):
                return items
            time.sleep(0.1)
        raise AssertionError(f"alerts of {device_id} never got there: {items}")

    try:
        started = time.monotonic()
        service.start()
        assert service.connected.wait(10)
        time.sleep(0.3)  # the subscription is in place
        device, reason = mqtt_connect(broker.port, creds["username"], creds["password"], creds["client_id"])
        assert reason == 0
        assert mqtt_publish(device, creds["topic"], b'{"power_kw": 150}') == 0
        opened = alerts(threshold, "press-1", lambda a: len(a) == 1)
        assert opened[0]["state"] == "open" and opened[0]["trigger_values"] == {"power_kw": 150.0}
        assert mqtt_publish(device, creds["topic"], b'{"power_kw": 95}') == 0  # hysteresis: stays open
        last_value = time.monotonic()
        assert mqtt_publish(device, creds["topic"], b'{"power_kw": 50}') == 0
        resolved = alerts(threshold, "press-1", lambda a: a[0]["state"] == "resolved")
        assert resolved[0]["resolved_by"] == "auto-resolve"
        # No message at all: the timer thread opens the stale alerts after 10 s of silence.
        silent = alerts(stale, "press-2", lambda a: len(a) == 1)
        assert time.monotonic() - started >= 9.5 and silent[0]["state"] == "open"
        stopped = alerts(stale, "press-1", lambda a: len(a) == 1)
        assert time.monotonic() - last_value >= 9.5 and stopped[0]["state"] == "open"
        assert mqtt_publish(device, creds["topic"], b'{"power_kw": 60}') == 0
        back = alerts(stale, "press-1", lambda a: a[0]["state"] == "resolved")
        assert back[0]["resolved_by"] == "auto-resolve"
        assert alerts(stale, "press-2", lambda a: True)[0]["state"] == "open"
        assert len(alerts(threshold, "press-1", lambda a: True)) == 1  # 60 is below the threshold
        device.loop_stop()
        device.disconnect()
    finally:
        service.stop()
        broker.stop_in_thread()
        store.close()
