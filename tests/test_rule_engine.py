"""The rule engine on the real pipeline and database: alerts open, resolve, respect cooldown,
and exactly one is open per rule and device even when two engines race."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from factoryops.alerts.models import Alert, AlertEvent
from factoryops.core.db import utcnow
from factoryops.devices.discovery import Registry
from factoryops.devices.models import Property
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore
from factoryops.rules.engine import RuleEngine
from factoryops.telemetry.pipeline import IngestPipeline
from factoryops.telemetry.rejects import RejectLog
from factoryops.telemetry.spool import Spool
from factoryops.telemetry.writer import BatchWriter
from support import auth, register_device


def _setup(client: TestClient, make_factory, definition: dict[str, Any]) -> tuple[Any, str]:  # type: ignore[no-untyped-def]
    world = make_factory(with_admins=False)
    register_device(client, world, "press-1")
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:
        s.add(Property(name="power_kw"))
    r = client.post(
        "/api/v1/rules", headers=auth(world.super_token), json={"name": "Overload", "definition": definition}
    )
    assert r.status_code == 201, r.text
    return world, r.json()["id"]


def _alerts(platform: Any, factory_id: str) -> list[Alert]:
    with platform.db.factory_session(factory_id) as s:
        return list(s.execute(select(Alert).order_by(Alert.opened_at)).scalars())


def test_alert_opens_once_resolves_and_respects_cooldown(client: TestClient, make_factory, tmp_path: Path) -> None:
    world, rule_id = _setup(
        client,
        make_factory,
        {
            "scope": {"kind": "factory"},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "clear": {"property": "power_kw", "operator": "<", "value": 90},
            "cooldown_seconds": 3600,
            "severity": "critical",
        },
    )
    platform = client.app.state.platform  # type: ignore[attr-defined]
    store = EmbeddedTimeseriesStore(tmp_path / "ts")
    writer = BatchWriter(store, Spool(tmp_path / "spool.db"), max_delay=0.01)
    writer.start()
    engine = RuleEngine(platform.db)
    pipe = IngestPipeline(Registry(platform.db), writer, RejectLog(platform.db, lambda f: True), engine=engine)
    topic = f"factories/{world.id}/devices/press-1/telemetry"

    def send(kw: float) -> None:
        pipe.handle(topic, json.dumps({"power_kw": kw}).encode(), lambda: None)

    try:
        for kw in (50, 120, 130, 95):  # 95: below the trigger, above the clear threshold (hysteresis)
            send(kw)
        alerts = _alerts(platform, world.id)
        assert len(alerts) == 1 and alerts[0].state == "open" and alerts[0].severity == "critical"
        assert alerts[0].trigger_values == {"power_kw": 120.0} and alerts[0].rule_id == rule_id
        send(85)
        alerts = _alerts(platform, world.id)
        assert alerts[0].state == "resolved" and alerts[0].resolved_by == "auto-resolve"
        assert alerts[0].clear_values == {"power_kw": 85.0}
        send(150)  # within the cooldown: no new alert
        assert len(_alerts(platform, world.id)) == 1
        engine._last_opened[(world.id, rule_id, "press-1")] = utcnow() - timedelta(hours=2)
        send(150)
        alerts = _alerts(platform, world.id)
        assert [a.state for a in alerts] == ["resolved", "open"]
        with platform.db.factory_session(world.id) as s:
            kinds = [e.kind for e in s.execute(select(AlertEvent).order_by(AlertEvent.at)).scalars()]
        assert kinds == ["opened", "resolved", "opened"]
    finally:
        writer.stop()
        store.close()


def test_two_engines_racing_open_one_alert(client: TestClient, make_factory) -> None:
    world, _ = _setup(
        client,
        make_factory,
        {
            "scope": {"kind": "device", "device_ids": ["press-1"]},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "cooldown_seconds": 0,
        },
    )
    platform = client.app.state.platform  # type: ignore[attr-defined]
    engines = [RuleEngine(platform.db) for _ in range(4)]
    start = threading.Barrier(len(engines))
    opened: list[int] = []

    def run(engine: RuleEngine) -> None:
        start.wait()
        opened.append(len(engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 200.0})))

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(opened) == 1
    assert len([a for a in _alerts(platform, world.id) if a.state == "open"]) == 1


def test_rule_changes_reach_a_running_engine(client: TestClient, make_factory) -> None:
    world, rule_id = _setup(
        client,
        make_factory,
        {
            "scope": {"kind": "factory"},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "cooldown_seconds": 0,
        },
    )
    platform = client.app.state.platform  # type: ignore[attr-defined]
    engine = RuleEngine(platform.db, refresh_seconds=0.0)
    assert engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 50.0}) == []
    r = client.patch(
        f"/api/v1/rules/{rule_id}",
        headers=auth(world.super_token),
        json={
            "definition": {
                "scope": {"kind": "factory"},
                "condition": {"property": "power_kw", "operator": ">", "value": 10},
                "cooldown_seconds": 0,
            }
        },
    )
    assert r.status_code == 200
    assert [t.kind for t in engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 50.0})] == ["opened"]
    client.patch(f"/api/v1/rules/{rule_id}", headers=auth(world.super_token), json={"enabled": False})
    assert engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 1.0}) == []


def test_a_new_factory_time_zone_moves_the_schedules_of_a_running_engine(client: TestClient, make_factory) -> None:
    # Nights only, 22:00 to 06:00 on the factory's clock. 13:30 UTC is 14:30 in Berlin (the
    # factory's zone) and 22:30 in Seoul.
    world, _ = _setup(
        client,
        make_factory,
        {
            "scope": {"kind": "factory"},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "schedule": {"days": [0, 1, 2, 3, 4, 5, 6], "windows": [{"start": "22:00", "end": "06:00"}]},
            "cooldown_seconds": 0,
        },
    )
    platform = client.app.state.platform  # type: ignore[attr-defined]
    engine = RuleEngine(platform.db, refresh_seconds=0.0)
    afternoon_in_berlin = datetime(2026, 11, 27, 13, 30, tzinfo=UTC)
    assert engine.on_event(world.id, "press-1", "", afternoon_in_berlin, {"power_kw": 500.0}) == []
    r = client.patch("/api/v1/factory", headers=auth(world.super_token), json={"timezone": "Asia/Seoul"})
    assert r.status_code == 200, r.text
    later = afternoon_in_berlin + timedelta(seconds=1)  # 22:30:01 in Seoul: inside the window
    assert [t.kind for t in engine.on_event(world.id, "press-1", "", later, {"power_kw": 500.0})] == ["opened"]


def test_alert_lifecycle_through_the_api(client: TestClient, make_factory) -> None:
    world = make_factory()
    register_device(client, world, "press-1")
    register_device(client, world, "press-2")
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:
        s.add(Property(name="power_kw"))
    h = auth(world.super_token)
    rule = client.post(
        "/api/v1/rules",
        headers=h,
        json={
            "name": "Overload",
            "definition": {
                "scope": {"kind": "factory"},
                "condition": {"property": "power_kw", "operator": ">", "value": 100},
                "severity": "critical",
                "cooldown_seconds": 0,
            },
        },
    ).json()
    engine = RuleEngine(platform.db)
    for device in ("press-1", "press-2"):
        engine.on_event(world.id, device, "", utcnow(), {"power_kw": 150.0})
    listed = client.get("/api/v1/alerts?state=open&severity=critical", headers=h).json()
    assert listed["total"] == 2
    first, second = (a["id"] for a in listed["items"])
    assert client.get("/api/v1/alerts/counts", headers=h).json() == {
        "by_state": {"open": 2},
        "open_by_severity": {"critical": 2},
    }
    # an admin without the alerts permission reads but cannot act
    assert client.get(f"/api/v1/alerts/{first}", headers=auth(world.admin_plain_token)).status_code == 200
    r = client.post(f"/api/v1/alerts/{first}/acknowledge", headers=auth(world.admin_plain_token), json={})
    assert r.status_code == 403
    r = client.post(f"/api/v1/alerts/{first}/acknowledge", headers=auth(world.admin_all_token), json={"note": "on it"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert client.post(f"/api/v1/alerts/{first}/acknowledge", headers=h, json={}).status_code == 409
    r = client.post(f"/api/v1/alerts/{first}/resolve", headers=h, json={"note": "belt replaced"})
    detail = r.json()
    assert detail["state"] == "resolved" and detail["resolution_note"] == "belt replaced"
    assert [e["kind"] for e in detail["timeline"]] == ["opened", "acknowledged", "resolved"]
    assert detail["timeline"][0]["values"] == {"power_kw": 150.0}
    assert detail["timeline"][1]["actor"] == world.admin_all["email"]
    r = client.post("/api/v1/alerts/bulk", headers=h, json={"ids": [first, second, "nope"], "action": "resolve"})
    assert r.json() == {
        "changed": [second],
        "unchanged": [{"id": first, "reason": "already resolved"}, {"id": "nope", "reason": "not found"}],
    }
    assert client.get("/api/v1/alerts?state=unresolved", headers=h).json()["total"] == 0
    # resolved by a person: the rule may open a new one for the same device (cooldown 0)
    engine2 = RuleEngine(platform.db)
    assert [t.kind for t in engine2.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 170.0})] == ["opened"]
    assert client.get(f"/api/v1/alerts?rule_id={rule['id']}&device_id=press-1", headers=h).json()["total"] == 2
