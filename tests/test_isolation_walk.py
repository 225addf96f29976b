"""Walks EVERY route of the OpenAPI document with every kind of caller.

New routes are picked up by themselves: a route missing from ACCESS, or with a path parameter
the walk cannot fill, fails the walk until someone says who may call it. For each route the
walk checks the status code each caller gets, that a token of factory A reaching for factory B's
resources gets 404, that no answer to factory A contains anything of factory B, and that B is
unchanged afterwards.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from sqlalchemy import select

from factoryops.alerts.models import Alert
from factoryops.jobs.queue import JobQueue
from factoryops.rules.models import Rule
from factoryops.tenancy.deps import factory_user, tenancy
from factoryops.tenancy.models import User
from factoryops.tenancy.service import Principal, TenancyService
from support import PASSWORD, FactoryWorld, auth

# Who may call each route: public (anyone), any (any signed-in caller), factory (any factory
# user), super_admin, root, perm:<flag> (super admin or an admin with the flag), or broker (only the
# MQTT broker with its hook secret; user tokens are refused).
ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/public/factories"): "public",
    ("GET", "/api/v1/meta/permissions"): "public",
    ("POST", "/api/v1/auth/login"): "public",
    ("POST", "/api/v1/auth/root/login"): "public",
    ("POST", "/api/v1/auth/refresh"): "public",
    ("POST", "/api/v1/auth/logout"): "public",
    ("GET", "/api/v1/auth/me"): "any",
    ("POST", "/api/v1/auth/change-password"): "any",
    ("GET", "/api/v1/factory"): "factory",
    ("PATCH", "/api/v1/factory"): "super_admin",
    ("GET", "/api/v1/audit-events"): "super_admin",
    ("GET", "/api/v1/users"): "super_admin",
    ("POST", "/api/v1/users"): "super_admin",
    ("GET", "/api/v1/users/{user_id}"): "super_admin",
    ("PATCH", "/api/v1/users/{user_id}"): "super_admin",
    ("POST", "/api/v1/users/{user_id}/reset-password"): "super_admin",
    ("GET", "/api/v1/platform/factories"): "root",
    ("POST", "/api/v1/platform/factories"): "root",
    ("GET", "/api/v1/platform/factories/{factory_id}"): "root",
    ("POST", "/api/v1/platform/factories/{factory_id}/super-admins"): "root",
    ("GET", "/api/v1/devices"): "factory",
    ("GET", "/api/v1/devices/summary"): "factory",
    ("POST", "/api/v1/devices"): "perm:devices",
    ("POST", "/api/v1/devices/import"): "perm:devices",
    ("GET", "/api/v1/devices/{device_id}"): "factory",
    ("PATCH", "/api/v1/devices/{device_id}"): "perm:devices",
    ("POST", "/api/v1/devices/{device_id}/rotate-credentials"): "perm:devices",
    ("GET", "/api/v1/devices/{device_id}/properties"): "factory",
    ("GET", "/api/v1/properties"): "factory",
    ("PATCH", "/api/v1/properties/{property_name}"): "super_admin",
    ("GET", "/api/v1/devices/{device_id}/latest"): "factory",
    ("GET", "/api/v1/devices/{device_id}/live"): "factory",
    ("GET", "/api/v1/telemetry/history"): "factory",
    ("GET", "/api/v1/telemetry/rejects"): "super_admin",
    ("GET", "/api/v1/telemetry/reject-counts"): "super_admin",
    ("GET", "/api/v1/rules"): "factory",
    ("POST", "/api/v1/rules"): "perm:rules",
    ("GET", "/api/v1/rules/{rule_id}"): "factory",
    ("PATCH", "/api/v1/rules/{rule_id}"): "perm:rules",
    ("POST", "/api/v1/rules/backtest"): "perm:rules",
    ("POST", "/api/v1/rules/{rule_id}/backtest"): "perm:rules",
    ("GET", "/api/v1/alerts"): "factory",
    ("GET", "/api/v1/alerts/counts"): "factory",
    ("GET", "/api/v1/alerts/{alert_id}"): "factory",
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): "perm:alerts",
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): "perm:alerts",
    ("POST", "/api/v1/alerts/bulk"): "perm:alerts",
    ("GET", "/api/v1/notifications/deliveries"): "factory",
    ("GET", "/api/v1/me/notification-preferences"): "factory",
    ("PUT", "/api/v1/me/notification-preferences"): "factory",
    ("GET", "/api/v1/system-alerts"): "factory",
    ("GET", "/api/v1/root/system-alerts"): "root",
    ("GET", "/api/v1/root/health"): "root",
    ("GET", "/api/v1/jobs"): "factory",
    ("GET", "/api/v1/jobs/{job_id}"): "factory",
    ("POST", "/api/v1/jobs/{job_id}/cancel"): "factory",
    ("POST", "/api/v1/jobs/{job_id}/retry"): "factory",
    ("GET", "/api/v1/analytics/status"): "factory",
    ("GET", "/api/v1/analytics/catalogue"): "factory",
    ("GET", "/api/v1/analytics/datasets"): "factory",
    ("POST", "/api/v1/analytics/datasets"): "perm:analytics",
    ("GET", "/api/v1/analytics/datasets/{dataset_id}"): "factory",
    ("GET", "/api/v1/analytics/datasets/{dataset_id}/preview"): "factory",
    ("GET", "/api/v1/analytics/datasets/{dataset_id}/download"): "factory",
    ("GET", "/api/v1/analytics/runs"): "factory",
    ("POST", "/api/v1/analytics/runs"): "perm:analytics",
    ("GET", "/api/v1/analytics/runs/{run_id}"): "factory",
    ("GET", "/api/v1/analytics/runs/{run_id}/charts"): "factory",
    ("GET", "/api/v1/analytics/runs/{run_id}/predictions"): "factory",
    ("POST", "/api/v1/analytics/runs/{run_id}/retry"): "perm:analytics",
    ("POST", "/api/v1/analytics/runs/{run_id}/cancel"): "perm:analytics",
    ("GET", "/api/v1/analytics/model-versions"): "factory",
    ("GET", "/api/v1/analytics/model-versions/{version_id}"): "factory",
    ("POST", "/api/v1/analytics/model-versions/{version_id}/score"): "perm:analytics",
    ("GET", "/api/v1/reports"): "factory",
    ("POST", "/api/v1/reports"): "perm:reports",
    ("GET", "/api/v1/reports/settings"): "factory",
    ("PUT", "/api/v1/reports/settings"): "perm:reports",
    ("GET", "/api/v1/reports/schedules"): "factory",
    ("POST", "/api/v1/reports/schedules"): "perm:reports",
    ("PUT", "/api/v1/reports/schedules/{schedule_id}"): "perm:reports",
    ("DELETE", "/api/v1/reports/schedules/{schedule_id}"): "perm:reports",
    ("POST", "/api/v1/reports/schedules/{schedule_id}/run"): "perm:reports",
    ("GET", "/api/v1/reports/{report_id}"): "factory",
    ("GET", "/api/v1/reports/{report_id}/download"): "factory",
    ("POST", "/api/v1/reports/{report_id}/retry"): "perm:reports",
    ("GET", "/api/v1/telemetry/retention"): "factory",
    ("PUT", "/api/v1/telemetry/retention"): "super_admin",
    ("POST", "/api/v1/mqtt/emqx/authenticate"): "broker",
    ("POST", "/api/v1/mqtt/emqx/authorize"): "broker",
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public",
}
# Public routes whose answers name other factories by design (the sign-in dropdown).
NAMES_FACTORIES = {("GET", "/api/v1/public/factories")}
PLATFORM_PREFIX = "/api/v1/platform/"


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def example_body(spec: dict[str, Any], schema: dict[str, Any], name: str = "") -> Any:
    """A valid body from a JSON schema, so that a request gets past validation to the resource."""
    schema = _resolve(spec, schema)
    if schema.get("examples"):
        return schema["examples"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return example_body(spec, options[0], name)
    if "enum" in schema:
        return schema["enum"][-1]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example_body(spec, v, k) for k, v in props.items() if k in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if schema.get("format") == "email" or "email" in name:
        return "walker@walk.example"
    if "password" in name:
        return "Walk-Over-2026x"
    if name == "slug" or name == "factory":
        return "walk-slug"
    if name == "timezone":
        return "UTC"
    return "walk"


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method.upper(), path, op))
    return ops


def request(
    client: TestClient,
    spec: dict[str, Any],
    method: str,
    path: str,
    op: dict[str, Any],
    params: dict[str, str],
    token: str | None,
) -> Any:
    url = path
    for name in re.findall(r"{(\w+)}", path):
        if name not in params:
            pytest.fail(f"{method} {path}: the walk does not know the path parameter {name!r}; add it to the walk")
        url = url.replace("{" + name + "}", params[name])
    query = {}
    for p in op.get("parameters", []):
        if p["in"] == "query" and p.get("required"):
            if p["name"] not in params:
                pytest.fail(f"{method} {path}: the walk does not know the query parameter {p['name']!r}")
            query[p["name"]] = params[p["name"]]
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    headers = auth(token) if token else {}
    content = op.get("requestBody", {}).get("content", {})
    if "text/csv" in content:
        examples = content["text/csv"]["schema"].get("examples") or ["device_id\nwalk-1\n"]
        return client.request(method, url, headers={**headers, "content-type": "text/csv"}, content=examples[0])
    body = example_body(spec, content["application/json"]["schema"]) if content else None
    return client.request(method, url, headers=headers, json=body)


def populate(client: TestClient, world: FactoryWorld) -> dict[str, str]:
    """Gives a factory a device and a discovered property with names no other factory uses."""
    from factoryops.devices.models import DeviceProperty, Property

    device_id = f"dev-{world.slug}"
    r = client.post("/api/v1/devices", headers=auth(world.super_token), json={"device_id": device_id, "name": "Secret"})
    assert r.status_code == 201, r.text
    prop = f"metric_{world.slug.replace('-', '_')}"
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:
        s.add(Property(name=prop))
        s.add(DeviceProperty(device_id=device_id, property_name=prop, last_value=1.5))
        job = JobQueue(platform.db).enqueue(s, "reports.walk", {"secret": prop}, created_by=world.super_admin["email"])
        job.state = "failed"  # finished, so that cancel answers 409 and retry 200 for its own factory
        rule = Rule(
            name=f"rule of {world.slug}",
            definition={"scope": {"kind": "factory"}, "condition": {"property": prop, "operator": ">", "value": 1}},
        )
        s.add(rule)
        s.flush()
        alert = Alert(
            rule_id=rule.id, rule_name=rule.name, device_id=device_id, severity="warning", trigger_values={prop: 2.0}
        )
        s.add(alert)
        s.flush()
    return {
        "device_id": device_id,
        "property_name": prop,
        "job_id": job.id,
        "rule_id": rule.id,
        "alert_id": alert.id,
        **populate_analytics(platform, world, device_id, prop),
        **populate_reports(platform, world, prop),
        **populate_health(platform, world, prop),
        **populate_retention(platform, world),
    }


def populate_retention(platform: Any, world: FactoryWorld) -> dict[str, str]:
    """A retention of the factory's own, last changed by its super admin (a marker of the factory)."""
    from factoryops.telemetry.models import TelemetryRetention

    with platform.db.factory_session(world.id) as s:
        s.add(TelemetryRetention(raw_days=7, rollup_1m_days=90, updated_by=world.super_admin["email"]))
    return {}


def populate_health(platform: Any, world: FactoryWorld, prop: str) -> dict[str, str]:
    """A job waiting in the queue: the root's platform health counts it, naming no factory."""
    with platform.db.factory_session(world.id) as s:
        queue = JobQueue(platform.db)
        queued = queue.enqueue(s, "reports.walk", {"secret": prop}, created_by=world.super_admin["email"])
        return {"queued_job_id": queued.id}


def populate_reports(platform: Any, world: FactoryWorld, prop: str) -> dict[str, str]:
    """A finished report with its file in the object store, and a schedule."""
    from datetime import UTC, datetime

    from factoryops.ports.objectstore.base import Key
    from factoryops.ports.timeseries.base import FactoryScope
    from factoryops.reports.models import Report, ReportSchedule

    with platform.db.factory_session(world.id) as s:
        report = Report(title=f"report of {prop}", format="json", params={"label": prop}, state="succeeded")
        s.add(report)
        s.flush()
        key = Key("reports", report.id, "report.json")
        platform.objects.put_bytes(FactoryScope(world.id), key, json.dumps({"secret": prop}).encode())
        report.object_key = str(key)
        schedule = ReportSchedule(
            name=f"schedule of {prop}",
            cadence="daily",
            format="pdf",
            recipients=[f"{prop}@walk.example"],
            next_run_at=datetime(2099, 1, 1, tzinfo=UTC),
        )
        s.add(schedule)
        s.flush()
        return {"report_id": report.id, "schedule_id": schedule.id}


def populate_analytics(platform: Any, world: FactoryWorld, device_id: str, prop: str) -> dict[str, str]:
    """A ready dataset, a finished run and a model version, with their objects in the object store."""
    import hashlib
    import io
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    from factoryops.analytics.datasets import SCHEMA
    from factoryops.analytics.models import Dataset, ModelVersion, Run
    from factoryops.ports.objectstore.base import Key
    from factoryops.ports.timeseries.base import FactoryScope

    scope = FactoryScope(world.id)
    buffer = io.BytesIO()
    ts = pa.array([datetime(2026, 1, 1, tzinfo=UTC)], type=pa.timestamp("us", tz="UTC"))
    names = [pa.DictionaryArray.from_arrays(pa.array([0], type=pa.int32()), pa.array([n])) for n in (device_id, prop)]
    pq.write_table(pa.Table.from_arrays([ts, *names, pa.array([1.5])], schema=SCHEMA), buffer)
    data = buffer.getvalue()
    request = {
        "device_ids": [device_id],
        "properties": [prop],
        "start": "2026-01-01T00:00:00+00:00",
        "end": "2026-01-02T00:00:00+00:00",
        "resolution": "raw",
        "aggregate": None,
    }
    with platform.db.factory_session(world.id) as s:
        dataset = Dataset(name=f"dataset of {prop}", request=request, request_hash=hashlib.sha256(data).hexdigest())
        s.add(dataset)
        s.flush()
        folder = Key("analytics", "datasets", dataset.id)
        platform.objects.put_bytes(scope, folder.child("data.parquet"), data)
        platform.objects.put_bytes(scope, folder.child("manifest.json"), json.dumps({"query": request}).encode())
        dataset.state = "ready"
        dataset.row_count = 1
        dataset.columns = [prop]
        dataset.content_hash = hashlib.sha256(data).hexdigest()
        dataset.object_key = str(folder.child("data.parquet"))
        dataset.manifest_key = str(folder.child("manifest.json"))
        run = Run(dataset_id=dataset.id, mode="standard", task="anomaly", model_name="robust_zscore", state="succeeded")
        s.add(run)
        s.flush()
        runs = Key("analytics", "runs", run.id)
        platform.objects.put_bytes(scope, runs.child("charts.json"), json.dumps({"kind": prop}).encode())
        platform.objects.put_bytes(scope, runs.child("predictions.parquet"), data)
        run.artifacts = {
            "charts": str(runs.child("charts.json")),
            "predictions": str(runs.child("predictions.parquet")),
        }
        version = ModelVersion(
            name=f"model of {prop}",
            version=1,
            run_id=run.id,
            dataset_id=dataset.id,
            task="anomaly",
            model_name="robust_zscore",
            columns=[prop],
            artifact_key=str(runs.child("model.joblib")),
        )
        s.add(version)
        s.flush()
        return {"dataset_id": dataset.id, "run_id": run.id, "version_id": version.id}


def markers_of(client: TestClient, world: FactoryWorld, extra: dict[str, str]) -> set[str]:
    users = client.get("/api/v1/users?limit=200", headers=auth(world.super_token)).json()["items"]
    found = {world.id, *extra.values()}
    for u in users:
        found.update({u["id"], u["email"]})
    return found


def snapshot(client: TestClient, world: FactoryWorld) -> Any:
    users = client.get("/api/v1/users?limit=200", headers=auth(world.super_token)).json()["items"]
    factory = client.get("/api/v1/factory", headers=auth(world.super_token)).json()
    devices = client.get("/api/v1/devices?limit=200", headers=auth(world.super_token)).json()["items"]
    properties = client.get("/api/v1/properties?limit=200", headers=auth(world.super_token)).json()["items"]
    retention = client.get("/api/v1/telemetry/retention", headers=auth(world.super_token)).json()
    return (
        factory,
        devices,
        properties,
        retention,
        [
            {
                k: u[k]
                for k in (
                    "id",
                    "email",
                    "role",
                    "permissions",
                    "is_active",
                    "is_locked",
                    "must_change_password",
                    "full_name",
                )
            }
            for u in users
        ],
    )


def allowed(rule: str, caller: str) -> bool:
    if rule == "broker":
        return False  # only the broker, with its hook secret (tests/test_broker_hooks.py)
    if rule == "public":
        return True
    if caller == "anonymous":
        return False
    if rule == "any":
        return True
    if rule == "root":
        return caller == "root"
    if caller == "root":
        return False
    if rule == "factory":
        return True
    if rule == "super_admin":
        return caller == "super_admin"
    if rule.startswith("perm:"):
        return caller in ("super_admin", "admin_all")
    raise AssertionError(f"unknown access rule {rule}")


def walk(client: TestClient, make_factory, root_token: str) -> list[str]:
    spec = client.get("/api/v1/openapi.json").json()
    a: FactoryWorld = make_factory("Walker A")
    b: FactoryWorld = make_factory("Walker B")
    b_things = populate(client, b)
    a_things = populate(client, a)
    b_markers = markers_of(client, b, b_things) | {b.super_admin["email"]}
    b_names = {b.name, b.slug}
    before = snapshot(client, b)
    problems: list[str] = []
    ops = operations(spec)
    missing = [f"{m} {p}" for m, p, _ in ops if (m, p) not in ACCESS]
    assert not missing, f"routes without an access rule in the walk: {missing}"
    assert {k for k in ACCESS} <= {(m, p) for m, p, _ in ops}, "ACCESS lists routes that no longer exist"

    callers = {
        "anonymous": None,
        "super_admin": a.super_token,
        "admin_plain": a.admin_plain_token,
        "admin_all": a.admin_all_token,
        "root": root_token,
    }
    b_params = {"user_id": b.admin_plain["id"], "factory_id": b.id, **b_things}
    # The root console legitimately reaches every factory; it works on a third one so that the
    # check that B stays unchanged still means something.
    c: FactoryWorld = make_factory("Walker C")
    c_params = {"user_id": c.admin_plain["id"], "factory_id": c.id, **populate(client, c)}
    for method, path, op in ops:
        rule = ACCESS[(method, path)]
        has_ids = bool(re.findall(r"{(\w+)}", path))
        for caller, token in callers.items():
            # Session-ending routes would end the walker's own sessions; they are covered in test_auth.
            if path in ("/api/v1/auth/logout", "/api/v1/auth/change-password", "/api/v1/auth/refresh"):
                continue
            is_root_console = caller == "root" and path.startswith(PLATFORM_PREFIX)
            r = request(client, spec, method, path, op, c_params if is_root_console else b_params, token)
            where = f"{caller} {method} {path} -> {r.status_code}"
            if r.status_code >= 500 and not (path == "/readyz" and r.status_code == 503):
                problems.append(f"{where}: server error {r.text[:200]}")
                continue
            if not allowed(rule, caller):
                expected = 401 if caller == "anonymous" or rule == "broker" else 403
                if r.status_code != expected:
                    problems.append(f"{where}: expected {expected} for a caller the route does not admit")
                continue
            if has_ids and not is_root_console and r.status_code != 404:
                problems.append(f"{where}: factory B's resource must answer 404")
            text = r.text
            leaked = sorted(m for m in b_markers if m in text)
            if (method, path) not in NAMES_FACTORIES and not is_root_console:
                leaked += sorted(n for n in b_names if n in text)
            if leaked and not is_root_console:
                problems.append(f"{where}: answer contains factory B's data {leaked}")
    after = snapshot(client, b)
    if json.dumps(before, sort_keys=True) != json.dumps(after, sort_keys=True):
        problems.append("factory B changed during the walk")
    b_audit = client.get("/api/v1/audit-events?limit=200", headers=auth(b.super_token)).json()["items"]
    a_actors = {a.super_admin["email"], a.admin_plain["email"], a.admin_all["email"]}
    if any(e["actor_email"] in a_actors for e in b_audit):
        problems.append("factory A's users appear in factory B's audit log")
    # Own resources: each role gets the status its access rule promises.
    a_params = {"user_id": a.admin_plain["id"], "factory_id": a.id, **a_things}
    for method, path, op in ops:
        rule = ACCESS[(method, path)]
        if rule in ("public", "any") or path.startswith(PLATFORM_PREFIX) or method != "GET":
            continue
        if "text/event-stream" in op["responses"].get("200", {}).get("content", {}):
            continue  # a stream of one's own device does not end; covered in the telemetry tests
        for caller in ("super_admin", "admin_plain", "admin_all"):
            r = request(client, spec, method, path, op, a_params, callers[caller])
            ok = allowed(rule, caller)
            if (ok and r.status_code != 200) or (not ok and r.status_code != 403):
                problems.append(f"{caller} {method} {path} on own factory -> {r.status_code} (allowed={ok})")
    return problems


def add_route(client: TestClient, path: str, endpoint: Any, **kwargs: Any) -> None:
    app = client.app
    app.add_api_route(path, endpoint, methods=["GET"], **kwargs)  # type: ignore[attr-defined]
    app.router.routes.insert(0, app.router.routes.pop())  # type: ignore[attr-defined]  # before the web UI catch-all
    app.openapi_schema = None  # type: ignore[attr-defined]


def test_every_route_keeps_factories_apart(client: TestClient, make_factory, root_token: str) -> None:
    problems = walk(client, make_factory, root_token)
    assert problems == [], "\n".join(problems)


def test_the_walk_catches_a_leaky_route(client: TestClient, make_factory, root_token: str) -> None:
    """A route that deliberately escapes the factory scope is caught by the walk."""
    from factoryops.tenancy.schemas import UserOut
    from factoryops.tenancy.service import user_out

    def leaky(_: Principal = Depends(factory_user), svc: TenancyService = Depends(tenancy)) -> list[UserOut]:
        with svc.db.unscoped_session() as s:  # the bug under test: everyone's users
            return [user_out(u) for u in s.execute(select(User)).scalars()]

    add_route(client, "/api/v1/leaky-users", leaky, response_model=list[UserOut])
    ACCESS[("GET", "/api/v1/leaky-users")] = "factory"
    try:
        problems = walk(client, make_factory, root_token)
    finally:
        del ACCESS[("GET", "/api/v1/leaky-users")]
    assert any("leaky-users" in p and "factory B's data" in p for p in problems), problems


def test_the_walk_refuses_an_unlisted_route(client: TestClient, make_factory, root_token: str) -> None:
    def orphan() -> dict[str, str]:
        return {"ok": "yes"}

    add_route(client, "/api/v1/orphan", orphan)
    with pytest.raises(AssertionError, match="routes without an access rule"):
        walk(client, make_factory, root_token)


def test_passwords_used_by_the_walk_are_valid() -> None:
    from factoryops.core.security import password_problems

    assert password_problems("Walk-Over-2026x", "walker@walk.example", 10) == []
    assert password_problems(PASSWORD, "boss@plant.example", 10) == []
