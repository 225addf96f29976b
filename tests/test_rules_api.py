"""Rules through the API: validated against the factory's own devices and properties on save."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from factoryops.devices.models import Property
from support import auth, register_device


def _plant(client: TestClient, make_factory) -> Any:  # type: ignore[no-untyped-def]
    world = make_factory()
    register_device(client, world, "comp-1")
    client.patch("/api/v1/devices/comp-1", headers=auth(world.super_token), json={"type": "compressor"})
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:
        s.add_all([Property(name="power_kw"), Property(name="temp_c")])
    return world


RULE = {
    "name": "Compressor overload",
    "definition": {
        "scope": {"kind": "type", "device_type": "compressor"},
        "condition": {
            "op": "and",
            "conditions": [
                {"property": "power_kw", "operator": ">", "value": 90, "for_seconds": 300},
                {"property": "temp_c", "operator": "between", "value": 60, "value2": 120},
            ],
        },
        "schedule": {"days": [0, 1, 2, 3, 4], "windows": [{"start": "22:00", "end": "06:00"}]},
        "severity": "critical",
        "clear": {"property": "power_kw", "operator": "<", "value": 80},
    },
}


def test_create_update_and_list_rules(client: TestClient, make_factory) -> None:
    world = _plant(client, make_factory)
    h = auth(world.admin_all_token)
    r = client.post("/api/v1/rules", headers=h, json=RULE)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["version"] == 1 and rule["definition"]["severity"] == "critical"
    assert rule["definition"]["cooldown_seconds"] == 300 and rule["definition"]["auto_resolve"] is True
    r = client.patch(f"/api/v1/rules/{rule['id']}", headers=h, json={"enabled": False})
    assert r.json()["enabled"] is False and r.json()["version"] == 2
    assert client.get("/api/v1/rules?enabled=false", headers=h).json()["total"] == 1
    assert client.get("/api/v1/rules?enabled=true", headers=h).json()["total"] == 0
    events = client.get("/api/v1/audit-events?limit=200", headers=auth(world.super_token)).json()["items"]
    assert {"rule_created", "rule_updated"} <= {e["action"] for e in events}
    # reading needs no permission, writing needs the rules permission
    assert client.get(f"/api/v1/rules/{rule['id']}", headers=auth(world.admin_plain_token)).status_code == 200
    assert client.post("/api/v1/rules", headers=auth(world.admin_plain_token), json=RULE).status_code == 403
    r = client.patch(f"/api/v1/rules/{rule['id']}", headers=auth(world.admin_plain_token), json={"enabled": True})
    assert r.status_code == 403


def test_bad_rules_get_422_naming_the_field(client: TestClient, make_factory) -> None:
    world = _plant(client, make_factory)
    h = auth(world.super_token)

    def with_definition(**changes: Any) -> dict[str, Any]:
        return {**RULE, "definition": {**RULE["definition"], **changes}}  # type: ignore[dict-item]

    cases = [
        (
            with_definition(condition={"property": "pressure_bar", "operator": ">", "value": 1}),
            "invalid_rule",
            "body.definition.condition",
        ),
        (
            with_definition(scope={"kind": "devices", "device_ids": ["comp-1", "ghost-9"]}),
            "invalid_rule",
            "body.definition.scope.device_ids",
        ),
        (
            with_definition(scope={"kind": "type", "device_type": "oven"}),
            "invalid_rule",
            "body.definition.scope.device_type",
        ),
        (
            with_definition(condition={"op": "or", "conditions": []}),
            "validation_error",
            "body.definition.condition.group.conditions",
        ),
        (
            with_definition(condition={"property": "temp_c", "operator": "between", "value": 9, "value2": 3}),
            "validation_error",
            "body.definition.condition.condition",
        ),
        (
            with_definition(schedule={"days": [0], "windows": [{"start": "7am", "end": "09:00"}]}),
            "validation_error",
            "body.definition.schedule.windows.0",
        ),
        (with_definition(severity="apocalyptic"), "validation_error", "body.definition.severity"),
    ]
    for body, code, field in cases:
        r = client.post("/api/v1/rules", headers=h, json=body)
        assert r.status_code == 422, (field, r.text)
        error = r.json()["error"]
        assert error["code"] == code, error
        assert any(d["field"].startswith(field) for d in error["details"]), (field, error["details"])


def test_a_description_is_text_and_a_name_one_line(client: TestClient, make_factory) -> None:
    world = _plant(client, make_factory)
    h = auth(world.admin_all_token)
    r = client.post("/api/v1/rules", headers=h, json={**RULE, "description": "Line one\n\tline two"})
    assert r.status_code == 201, r.text
    rule = r.json()["id"]
    assert r.json()["description"] == "Line one\n\tline two"
    for body, field, message in (
        ({"description": "bell \x07"}, "body.description", "line breaks and tabs are allowed"),
        ({"name": "Two\nlines"}, "body.name", "no line breaks, tabs or escape codes"),
    ):
        r = client.patch(f"/api/v1/rules/{rule}", headers=h, json=body)
        assert r.status_code == 422, r.text
        detail = r.json()["error"]["details"][0]
        assert detail["field"] == field and message in detail["message"], detail
    assert client.get(f"/api/v1/rules/{rule}", headers=h).json()["name"] == RULE["name"]
