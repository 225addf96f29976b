"""Changes that leave alerts nothing can judge any more, and rules that notify nobody.

A disabled rule is not evaluated, a rule only judges the devices in its scope, and a disabled
device's messages are refused: the open alerts such a change strands are resolved by the change,
with a note naming it and its author, and audited. A running engine forgets the rule's state,
and opens no alert for a rule or device changed in the seconds before it learns of the change.
A rule without recipients is valid, and every answer about it carries a no_recipients warning.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from factoryops.alerts.models import Alert
from factoryops.core.db import utcnow
from factoryops.rules.engine import RuleEngine
from factoryops.rules.models import Rule
from support import FactoryWorld, auth, setup_rule

OVERLOAD: dict[str, Any] = {
    "scope": {"kind": "factory"},
    "condition": {"property": "power_kw", "operator": ">", "value": 100},
    "cooldown_seconds": 0,
}
NO_RECIPIENTS = {
    "code": "no_recipients",
    "message": "This rule opens alerts but notifies nobody: add users or channels under Notify.",
}


def _platform(client: TestClient) -> Any:
    return client.app.state.platform  # type: ignore[attr-defined]


def _rule(client: TestClient, world: FactoryWorld, definition: dict[str, Any], name: str) -> str:
    r = client.post("/api/v1/rules", headers=auth(world.super_token), json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _alerts(client: TestClient, world: FactoryWorld, **filters: str) -> list[dict[str, Any]]:
    page = client.get("/api/v1/alerts", headers=auth(world.super_token), params={"limit": 200, **filters}).json()
    return list(page["items"])


def _audit(client: TestClient, world: FactoryWorld, action: str) -> list[dict[str, Any]]:
    page = client.get("/api/v1/audit-events?limit=200", headers=auth(world.super_token)).json()
    return [e for e in page["items"] if e["action"] == action]


def _open_for(engine: RuleEngine, world: FactoryWorld, devices: list[str], at: datetime | None = None) -> None:
    for device in devices:
        kinds = [t.kind for t in engine.on_event(world.id, device, "", at or utcnow(), {"power_kw": 150.0})]
        assert kinds == ["opened"], (device, kinds)


def test_disabling_a_rule_resolves_its_open_alerts_and_the_engine_forgets_it(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    rule_id = setup_rule(client, world, OVERLOAD, devices={"press-1": "", "press-2": ""})
    other_id = _rule(client, world, OVERLOAD, "Other rule")
    h = auth(world.super_token)
    engine = RuleEngine(_platform(client).db, refresh_seconds=0.0)
    for device in ("press-1", "press-2"):
        kinds = sorted(t.kind for t in engine.on_event(world.id, device, "", utcnow(), {"power_kw": 150.0}))
        assert kinds == ["opened", "opened"]  # one per rule
    mine = {a["device_id"]: a["id"] for a in _alerts(client, world, rule_id=rule_id)}
    acknowledged = client.post(f"/api/v1/alerts/{mine['press-2']}/acknowledge", headers=h, json={})
    assert acknowledged.status_code == 200
    assert (rule_id, "press-1") in engine._states

    r = client.patch(f"/api/v1/rules/{rule_id}", headers=h, json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    email = world.super_admin["email"]
    for alert_id in mine.values():  # open and acknowledged alike
        detail = client.get(f"/api/v1/alerts/{alert_id}", headers=h).json()
        assert detail["state"] == "resolved" and detail["resolved_by"] == email
        assert detail["resolution_note"] == f"Resolved: the rule was disabled by {email}."
        assert detail["timeline"][-1]["kind"] == "resolved"
        assert detail["timeline"][-1]["note"] == detail["resolution_note"]
        assert detail["timeline"][-1]["actor"] == email
    # the other rule's alerts stay open, and are all the open count has left
    assert {a["rule_id"] for a in _alerts(client, world, state="unresolved")} == {other_id}
    assert client.get("/api/v1/alerts/counts", headers=h).json()["open_by_severity"] == {"warning": 2}
    (event,) = _audit(client, world, "alerts_resolved")
    assert event["target_type"] == "rule" and event["target_id"] == rule_id and event["actor_email"] == email
    assert event["details"]["reason"] == "rule_disabled" and sorted(event["details"]["ids"]) == sorted(mine.values())

    # the running engine drops the rule's state and opens nothing for it
    assert [t.rule_id for t in engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 10.0})] == [other_id]
    assert not [key for key in engine._states if key[0] == rule_id]
    # saving a disabled rule again resolves nothing more (and fails on nothing)
    assert client.patch(f"/api/v1/rules/{rule_id}", headers=h, json={"name": "Renamed"}).status_code == 200
    assert len(_audit(client, world, "alerts_resolved")) == 1
    # enabled again, it starts afresh: the next overload opens a new alert
    assert client.patch(f"/api/v1/rules/{rule_id}", headers=h, json={"enabled": True}).status_code == 200
    opened = engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 150.0})
    assert sorted((t.kind, t.rule_id) for t in opened) == sorted([("opened", rule_id), ("opened", other_id)])


def test_a_narrowed_scope_resolves_the_alerts_of_devices_it_leaves(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    definition = {**OVERLOAD, "scope": {"kind": "devices", "device_ids": ["press-1", "press-2", "press-3"]}}
    rule_id = setup_rule(client, world, definition, devices={"press-1": "", "press-2": "", "press-3": "press"})
    engine = RuleEngine(_platform(client).db, refresh_seconds=0.0)
    _open_for(engine, world, ["press-1", "press-2", "press-3"])
    h = auth(world.super_token)

    # a change of the condition only: every alert can still be judged, none is resolved
    changed = {**definition, "condition": {"property": "power_kw", "operator": ">", "value": 120}}
    r = client.patch(f"/api/v1/rules/{rule_id}", headers=h, json={"definition": changed})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert len(_alerts(client, world, state="open")) == 3

    narrowed = {**changed, "scope": {"kind": "type", "device_type": "press"}}
    r = client.patch(f"/api/v1/rules/{rule_id}", headers=h, json={"definition": narrowed})
    assert r.status_code == 200 and r.json()["version"] == 3
    by_device = {a["device_id"]: a for a in _alerts(client, world)}
    assert by_device["press-3"]["state"] == "open"  # still in scope (its type)
    email = world.super_admin["email"]
    for device in ("press-1", "press-2"):
        assert by_device[device]["state"] == "resolved" and by_device[device]["resolved_by"] == email
        assert by_device[device]["resolution_note"] == (
            f"Resolved: the rule was changed by {email} (version 3) and no longer applies to this device."
        )
    (event,) = _audit(client, world, "alerts_resolved")
    assert event["details"]["reason"] == "device_out_of_scope" and event["details"]["version"] == 3
    assert sorted(event["details"]["ids"]) == sorted(by_device[d]["id"] for d in ("press-1", "press-2"))
    # the engine judges press-3 by the new definition: 110 is under the new threshold, so it resolves
    resolved = engine.on_event(world.id, "press-3", "press", utcnow(), {"power_kw": 110.0})
    assert [(t.kind, t.device_id) for t in resolved] == [("resolved", "press-3")]


def test_a_changed_definition_starts_its_durations_afresh(client: TestClient, make_factory) -> None:
    """A duration is kept by the condition's place in the tree: after a change that place may be
    another condition, which must not inherit the old one's time."""
    world = make_factory(with_admins=False)
    held = {
        **OVERLOAD,
        "condition": {"property": "power_kw", "operator": ">", "value": 100, "for_seconds": 300},
    }
    rule_id = setup_rule(client, world, held, properties=("power_kw", "temp_c"))
    engine = RuleEngine(_platform(client).db, refresh_seconds=0.0)
    t0 = utcnow()
    assert engine.on_event(world.id, "press-1", "", t0, {"power_kw": 150.0}) == []  # holds from t0
    hot = {**OVERLOAD, "condition": {"property": "temp_c", "operator": ">", "value": 50, "for_seconds": 300}}
    r = client.patch(f"/api/v1/rules/{rule_id}", headers=auth(world.super_token), json={"definition": hot})
    assert r.status_code == 200
    # temp_c holds from t0+400 on: not five minutes yet, whatever power_kw did before the change
    assert engine.on_event(world.id, "press-1", "", t0 + timedelta(seconds=400), {"temp_c": 60.0}) == []
    opened = engine.on_event(world.id, "press-1", "", t0 + timedelta(seconds=700), {"temp_c": 61.0})
    assert [t.kind for t in opened] == ["opened"]


def test_an_engine_that_has_not_seen_a_change_yet_opens_no_alert(client: TestClient, make_factory) -> None:
    """Rules reach the engine within seconds; an alert it opened meanwhile for a disabled rule or
    device, or a device out of scope, would stay open for ever: it withdraws the opening."""
    world = make_factory(with_admins=False)
    typed = {**OVERLOAD, "scope": {"kind": "type", "device_type": "press"}}
    devices = {"press-1": "press", "press-2": "press", "press-3": "press", "press-4": "press"}
    rule_id = setup_rule(client, world, typed, devices=devices)
    h = auth(world.super_token)
    slow = RuleEngine(_platform(client).db, refresh_seconds=3600.0)  # loads once, then trusts its memory
    assert slow.on_event(world.id, "press-1", "press", utcnow(), {"power_kw": 50.0}) == []

    assert client.patch("/api/v1/devices/press-1", headers=h, json={"enabled": False}).status_code == 200
    assert client.patch("/api/v1/devices/press-2", headers=h, json={"type": "oven"}).status_code == 200
    assert slow.on_event(world.id, "press-1", "press", utcnow(), {"power_kw": 150.0}) == []
    assert slow.on_event(world.id, "press-2", "press", utcnow(), {"power_kw": 150.0}) == []
    assert _alerts(client, world) == []
    assert [t.kind for t in slow.on_event(world.id, "press-3", "press", utcnow(), {"power_kw": 150.0})] == ["opened"]

    assert client.patch(f"/api/v1/rules/{rule_id}", headers=h, json={"enabled": False}).status_code == 200
    (alert,) = _alerts(client, world)
    assert alert["device_id"] == "press-3" and alert["state"] == "resolved"
    assert slow.on_event(world.id, "press-3", "press", utcnow(), {"power_kw": 10.0}) == []  # nothing to resolve
    assert slow.on_event(world.id, "press-3", "press", utcnow(), {"power_kw": 150.0}) == []  # nor to open
    assert [a["state"] for a in _alerts(client, world)] == ["resolved"]
    # the withdrawn opening made the engine reload its rules: enabled again, the rule opens at once
    assert client.patch(f"/api/v1/rules/{rule_id}", headers=h, json={"enabled": True}).status_code == 200
    assert [t.kind for t in slow.on_event(world.id, "press-3", "press", utcnow(), {"power_kw": 150.0})] == ["opened"]
    # any new version (here a new name) is reloaded before the engine opens for the rule again
    assert client.patch(f"/api/v1/rules/{rule_id}", headers=h, json={"name": "Renamed"}).status_code == 200
    assert slow.on_event(world.id, "press-4", "press", utcnow(), {"power_kw": 150.0}) == []  # withdrawn, reloaded
    opened = slow.on_event(world.id, "press-4", "press", utcnow(), {"power_kw": 151.0})
    assert [t.kind for t in opened] == ["opened"]
    assert {a["rule_name"] for a in _alerts(client, world, device_id="press-4")} == {"Renamed"}


def test_disabling_or_retyping_a_device_resolves_the_alerts_it_strands(client: TestClient, make_factory) -> None:
    world = make_factory(with_admins=False)
    devices = {"press-1": "press", "press-2": "press", "press-3": "press"}
    everywhere = setup_rule(client, world, OVERLOAD, devices=devices, name="Everywhere")
    presses = _rule(client, world, {**OVERLOAD, "scope": {"kind": "type", "device_type": "press"}}, "Presses")
    engine = RuleEngine(_platform(client).db, refresh_seconds=0.0)
    for device in devices:
        assert len(engine.on_event(world.id, device, "press", utcnow(), {"power_kw": 150.0})) == 2
    h = auth(world.super_token)
    email = world.super_admin["email"]

    r = client.patch("/api/v1/devices/press-1", headers=h, json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    gone = _alerts(client, world, device_id="press-1")
    assert len(gone) == 2 and {a["state"] for a in gone} == {"resolved"}
    assert {a["resolution_note"] for a in gone} == {f"Resolved: the device was disabled by {email}."}
    assert {a["resolved_by"] for a in gone} == {email}
    (event,) = _audit(client, world, "alerts_resolved")
    assert (event["target_type"], event["target_id"], event["details"]["reason"]) == (
        "device",
        "press-1",
        "device_disabled",
    )
    assert sorted(event["details"]["ids"]) == sorted(a["id"] for a in gone)

    # a new type takes press-2 out of the "Presses" rule, not out of the factory-wide one
    assert client.patch("/api/v1/devices/press-2", headers=h, json={"type": "oven"}).status_code == 200
    states = {a["rule_id"]: a for a in _alerts(client, world, device_id="press-2")}
    assert states[everywhere]["state"] == "open"
    assert states[presses]["state"] == "resolved"
    assert states[presses]["resolution_note"] == (
        f"Resolved: {email} changed the device's type from 'press' to 'oven'; the rule no longer applies to it."
    )
    # the same through a CSV import
    r = client.post(
        "/api/v1/devices/import",
        headers={**h, "content-type": "text/csv"},
        content="device_id,type\npress-3,kiln\n",
    )
    assert r.status_code == 200 and r.json()["updated"] == 1
    states = {a["rule_id"]: a["state"] for a in _alerts(client, world, device_id="press-3")}
    assert states == {everywhere: "open", presses: "resolved"}
    reasons = [(e["target_id"], e["details"]["reason"]) for e in _audit(client, world, "alerts_resolved")]
    assert sorted(reasons) == [
        ("press-1", "device_disabled"),
        ("press-2", "device_out_of_scope"),
        ("press-3", "device_out_of_scope"),
    ]
    # enabling the device again resolves nothing and opens nothing by itself
    assert client.patch("/api/v1/devices/press-1", headers=h, json={"enabled": True}).status_code == 200
    assert len(_alerts(client, world, state="unresolved")) == 2
    with _platform(client).db.factory_session(world.id) as s:
        assert len(s.execute(select(Alert).where(Alert.open_key == "open")).all()) == 2


def test_a_stale_alert_of_a_rule_disabled_and_enabled_again_is_raised_afresh(client: TestClient, make_factory) -> None:
    """Disabling resolved the silent device's alert; enabled again, the rule watches every device
    in scope from then, as a new rule does, and raises it again after the silence."""
    world = make_factory(with_admins=False)
    stale = {**OVERLOAD, "condition": {"property": "power_kw", "operator": "stale", "stale_seconds": 600}}
    rule_id = setup_rule(client, world, stale)
    t0 = utcnow()
    clock = [t0]
    engine = RuleEngine(_platform(client).db, clock=lambda: clock[0])
    engine.watch_factory(world.id)
    assert [t.kind for t in engine.check_deadlines(t0 + timedelta(seconds=600))] == ["opened"]
    h = auth(world.super_token)
    clock[0] = t0 + timedelta(seconds=650)
    assert client.patch(f"/api/v1/rules/{rule_id}", headers=h, json={"enabled": False}).status_code == 200
    engine.watch_factory(world.id)
    assert engine.pending_deadlines() == {}
    assert client.patch(f"/api/v1/rules/{rule_id}", headers=h, json={"enabled": True}).status_code == 200
    engine.watch_factory(world.id)
    assert engine.check_deadlines(t0 + timedelta(seconds=1249)) == []
    assert [t.kind for t in engine.check_deadlines(t0 + timedelta(seconds=1250))] == ["opened"]
    assert [a["state"] for a in _alerts(client, world)] == ["open", "resolved"]  # newest first


def test_a_rule_that_notifies_nobody_is_saved_with_a_warning(client: TestClient, make_factory) -> None:
    world = make_factory()
    setup_rule(client, world, OVERLOAD, name="Placeholder")  # registers press-1 and power_kw
    h = auth(world.admin_all_token)
    r = client.post("/api/v1/rules", headers=h, json={"name": "Silent", "definition": OVERLOAD})
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["warnings"] == [NO_RECIPIENTS]
    assert client.get(f"/api/v1/rules/{rule['id']}", headers=h).json()["warnings"] == [NO_RECIPIENTS]
    listed = client.get("/api/v1/rules?q=Silent", headers=h).json()["items"]
    assert [r["warnings"] for r in listed] == [[NO_RECIPIENTS]]

    for notify in (
        {"emails": ["ops@plant.example"]},
        {"whatsapp": ["+4915112345678"]},
        {"users": [world.admin_all["id"]]},
    ):
        definition = {**OVERLOAD, "notify": notify}
        r = client.patch(f"/api/v1/rules/{rule['id']}", headers=h, json={"definition": definition})
        assert r.status_code == 200 and r.json()["warnings"] == [], (notify, r.text)
    # on_resolve and reminders alone notify nobody
    quiet = {**OVERLOAD, "notify": {"on_resolve": True, "remind_after_minutes": 30}}
    r = client.patch(f"/api/v1/rules/{rule['id']}", headers=h, json={"definition": quiet})
    assert r.status_code == 200 and r.json()["warnings"] == [NO_RECIPIENTS]
    r = client.post(
        "/api/v1/rules",
        headers=h,
        json={"name": "Loud", "definition": {**OVERLOAD, "notify": {"emails": ["ops@plant.example"]}}},
    )
    assert r.status_code == 201 and r.json()["warnings"] == []
    # the warning is documented in the API's own description
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    out = next(v for k, v in schema.items() if k.startswith("RuleOut"))
    assert "warnings" in out["required"]


def test_an_opening_waits_for_a_change_being_saved_and_then_withdraws(client: TestClient, make_factory) -> None:
    """The change's transaction holds the rule's row; an engine opening an alert meanwhile waits
    for it (a shared lock on MariaDB, the write lock on SQLite) and then sees the rule disabled."""
    world = make_factory(with_admins=False)
    rule_id = setup_rule(client, world, OVERLOAD)
    db = _platform(client).db
    engine = RuleEngine(db, refresh_seconds=3600.0)
    assert engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 50.0}) == []  # rules loaded
    results: list[list[Any]] = []
    worker = threading.Thread(
        target=lambda: results.append(engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 150.0}))
    )
    with db.factory_session(world.id) as s:
        s.execute(update(Rule).where(Rule.id == rule_id).values(enabled=False, version=Rule.version + 1))
        worker.start()
        worker.join(1.0)
        assert worker.is_alive()  # waiting for the change
    worker.join(30)
    assert results == [[]]
    assert _alerts(client, world) == []


def test_a_rule_whose_users_are_disabled_warns_that_they_will_not_hear(client: TestClient, make_factory) -> None:
    world = make_factory()
    setup_rule(client, world, OVERLOAD, name="Placeholder")
    h = auth(world.super_token)
    plain, other = world.admin_plain, world.admin_all
    definition = {**OVERLOAD, "notify": {"users": [plain["id"], other["id"]]}}
    rule = _rule(client, world, definition, "Shift lead")
    assert client.get(f"/api/v1/rules/{rule}", headers=h).json()["warnings"] == []

    assert client.patch(f"/api/v1/users/{plain['id']}", headers=h, json={"is_active": False}).status_code == 200
    some = {
        "code": "disabled_recipients",
        "message": f"These users are disabled or gone and will not be notified: {plain['email']}.",
    }
    assert client.get(f"/api/v1/rules/{rule}", headers=h).json()["warnings"] == [some]

    assert client.patch(f"/api/v1/users/{other['id']}", headers=h, json={"is_active": False}).status_code == 200
    [warning] = client.get(f"/api/v1/rules/{rule}", headers=h).json()["warnings"]
    assert warning["code"] == "no_active_recipients"
    assert plain["email"] in warning["message"] and other["email"] in warning["message"]
    listed = client.get("/api/v1/rules?q=Shift", headers=h).json()["items"]
    assert [w["code"] for r in listed for w in r["warnings"]] == ["no_active_recipients"]

    # a raw address still hears: only the disabled users are named
    with_mail = {**OVERLOAD, "notify": {"users": [plain["id"], other["id"]], "emails": ["ops@plant.example"]}}
    r = client.patch(f"/api/v1/rules/{rule}", headers=h, json={"definition": with_mail})
    assert r.status_code == 200 and [w["code"] for w in r.json()["warnings"]] == ["disabled_recipients"]
    assert client.patch(f"/api/v1/users/{plain['id']}", headers=h, json={"is_active": True}).status_code == 200
    assert client.patch(f"/api/v1/users/{other['id']}", headers=h, json={"is_active": True}).status_code == 200
    assert client.get(f"/api/v1/rules/{rule}", headers=h).json()["warnings"] == []
