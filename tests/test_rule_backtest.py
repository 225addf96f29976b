"""Backtests: stored history replayed through the live engine's rule code, as a job, writing no alert.

History is written with explicit timestamps into a real time-series store (the platform's
embedded one, and a throwaway InfluxDB), the backtest runs through the API and a real job
worker, and the result must list exactly the alerts the engine would have opened and resolved.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from factoryops.alerts.models import Alert
from factoryops.devices.models import Device
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import Handler, JobCancelled, JobWorker
from factoryops.ports.timeseries.base import DEFAULT_RETENTION, FactoryScope, Point, TimeseriesStore
from factoryops.rules.backtest import KIND, Backtester
from factoryops.rules.definition import RuleDefinition
from factoryops.wiring import job_handlers
from influx import influxdb
from support import FactoryWorld, auth, setup_rule


def _t0() -> datetime:
    """A whole hour two days ago: inside the raw retention, far enough from now."""
    return (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def _write(
    store: TimeseriesStore, factory_id: str, device_id: str, t0: datetime, series: list[tuple[int, float]]
) -> None:
    points = [Point(device_id, "power_kw", t0 + timedelta(seconds=t), v) for t, v in series]
    assert store.write(FactoryScope(factory_id), points) == len(points)


def _run(client: TestClient, world: FactoryWorld, handler: Handler, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """Starts a backtest through the API and lets a real worker run it; returns the finished job."""
    platform = client.app.state.platform  # type: ignore[attr-defined]
    h = auth(world.admin_all_token)
    r = client.post(url, headers=h, json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    worker = JobWorker(JobQueue(platform.db), {KIND: handler}, name=f"bt-{secrets.token_hex(3)}", poll_seconds=0.05)
    worker.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            job = client.get(f"/api/v1/jobs/{job_id}", headers=h).json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.1)
    finally:
        worker.stop()
    assert job["kind"] == KIND and job["state"] == "succeeded", job
    assert job["progress"] == 100
    return dict(job)


def _alerts(result: dict[str, Any]) -> list[tuple[str, datetime, datetime | None, dict[str, float]]]:
    return [
        (
            a["device_id"],
            datetime.fromisoformat(a["opened_at"]),
            datetime.fromisoformat(a["resolved_at"]) if a["resolved_at"] else None,
            a["trigger_values"],
        )
        for a in result["alerts"]
    ]


@pytest.fixture(params=["embedded", "influxdb"])
def history(
    request: pytest.FixtureRequest, client: TestClient, tmp_path: Path
) -> Iterator[tuple[TimeseriesStore, Handler]]:
    """The store the history goes into, and the backtest handler reading it: the platform's own
    embedded store through the installation's job handlers, or a throwaway InfluxDB."""
    platform = client.app.state.platform  # type: ignore[attr-defined]
    if request.param == "embedded":
        yield platform.timeseries, job_handlers(platform)[KIND]
        return
    from factoryops.ports.timeseries.influx import InfluxTimeseriesStore

    with influxdb(tmp_path / "influx") as server:
        store = InfluxTimeseriesStore(server.url, database="backtest", retention=DEFAULT_RETENTION, timeout=60)
        try:
            yield store, Backtester(platform.db, store).handle
        finally:
            httpx.post(f"{server.url}/query", data={"q": 'DROP DATABASE "backtest"'}, timeout=30)
            store.close()


OVERLOAD = {
    "scope": {"kind": "type", "device_type": "press"},
    "condition": {"property": "power_kw", "operator": ">", "value": 100, "for_seconds": 60},
    "clear": {"property": "power_kw", "operator": "<", "value": 80},
    "cooldown_seconds": 0,
    "severity": "critical",
}


def test_backtest_finds_exactly_the_alerts_of_duration_and_hysteresis(
    client: TestClient, make_factory, history: tuple[TimeseriesStore, Handler]
) -> None:
    store, handler = history
    world = make_factory()
    rule_id = setup_rule(client, world, OVERLOAD, devices={"press-1": "press", "press-2": "press", "pump-1": "pump"})
    t0 = _t0()
    press_1 = (
        [(0, 50.0), (10, 50.0)]
        + [(t, 120.0) for t in range(20, 100, 10)]  # above 100 since t=20: holds 60 s at t=80
        + [(100, 95.0), (110, 85.0)]  # below the trigger, above the clear threshold: stays open
        + [(120, 70.0)]  # below 80: resolves
        + [(t, 150.0) for t in range(130, 210, 10)]  # holds since 130: opens at 190, open at the end
    )
    press_2 = [(t, 50.0) for t in range(0, 210, 10)]
    _write(store, world.id, "press-1", t0, press_1)
    _write(store, world.id, "press-2", t0, press_2)
    _write(store, world.id, "pump-1", t0, [(t, 500.0) for t in range(0, 210, 10)])  # not in scope
    _write(store, world.id, "press-1", t0 + timedelta(hours=2), [(0, 999.0), (60, 999.0), (120, 999.0)])  # after end
    period = {"start": t0.isoformat(), "end": (t0 + timedelta(hours=1)).isoformat()}

    job = _run(client, world, handler, "/api/v1/rules/backtest", {"definition": OVERLOAD, **period})
    result = job["result"]
    assert result["devices"] == 2 and result["points"] == len(press_1) + len(press_2)
    assert result["truncated"] is False
    assert datetime.fromisoformat(result["start"]) == t0
    assert datetime.fromisoformat(result["end"]) == t0 + timedelta(hours=1)
    assert _alerts(result) == [
        ("press-1", t0 + timedelta(seconds=80), t0 + timedelta(seconds=120), {"power_kw": 120.0}),
        ("press-1", t0 + timedelta(seconds=190), None, {"power_kw": 150.0}),
    ]
    # the stored rule gives the same answer; nothing was written as an alert
    stored = _run(client, world, handler, f"/api/v1/rules/{rule_id}/backtest", period)
    assert stored["result"] == result
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:
        assert s.execute(select(Alert.id)).first() is None


def test_backtest_staleness_counts_from_the_lead_in_the_start_or_the_registration(
    client: TestClient, make_factory
) -> None:
    """Staleness in a backtest behaves like the engine's timers: a deadline passing in silence opens
    an alert at that moment, the next value resolves it; silence before the first value counts
    from the last value before the period, else from the start or the device's registration."""
    world = make_factory()
    definition = {
        "scope": {"kind": "factory"},
        "condition": {"property": "power_kw", "operator": "stale", "stale_seconds": 60},
        "cooldown_seconds": 0,
    }
    setup_rule(client, world, definition, devices={"m-1": "", "m-2": "", "m-3": ""})
    t0 = _t0()
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.factory_session(world.id) as s:  # registered long ago, m-3 during the period
        s.execute(update(Device).where(Device.device_id != "m-3").values(created_at=t0 - timedelta(days=1)))
        s.execute(update(Device).where(Device.device_id == "m-3").values(created_at=t0 + timedelta(seconds=200)))
    _write(platform.timeseries, world.id, "m-1", t0, [(-30, 1.0), (50, 1.0), (70, 1.0), (300, 1.0), (320, 1.0)])
    body = {"definition": definition, "start": t0.isoformat(), "end": (t0 + timedelta(seconds=600)).isoformat()}
    job = _run(client, world, job_handlers(platform)[KIND], "/api/v1/rules/backtest", body)
    s = timedelta(seconds=1)
    assert _alerts(job["result"]) == [
        ("m-1", t0 + 30 * s, t0 + 50 * s, {"power_kw": 1.0}),  # the value at -30 s started the count
        ("m-2", t0 + 60 * s, None, {}),  # never said anything: silent from the start
        ("m-1", t0 + 130 * s, t0 + 300 * s, {"power_kw": 1.0}),
        ("m-3", t0 + 260 * s, None, {}),  # silent from its registration at +200 s
        ("m-1", t0 + 380 * s, None, {"power_kw": 1.0}),
    ]
    assert job["result"]["devices"] == 3 and job["result"]["points"] == 4


def test_backtest_schedule_in_the_factory_timezone_across_midnight_with_cooldown(
    client: TestClient, make_factory
) -> None:
    world = make_factory()  # Europe/Berlin
    definition = {
        "scope": {"kind": "device", "device_ids": ["press-1"]},
        "condition": {"property": "power_kw", "operator": ">", "value": 100},
        "schedule": {"days": [0, 1, 2, 3, 4, 5, 6], "windows": [{"start": "22:00", "end": "06:00"}]},
        "cooldown_seconds": 300,
    }
    setup_rule(client, world, definition)
    berlin = ZoneInfo("Europe/Berlin")
    day = (datetime.now(berlin) - timedelta(days=3)).date()

    def local(hh: int, mm: int, next_day: bool = False) -> datetime:
        d = day + timedelta(days=1) if next_day else day
        return datetime(d.year, d.month, d.day, hh, mm, tzinfo=berlin).astimezone(UTC)

    values = [
        (local(21, 58), 150.0),  # before the window: nothing
        (local(22, 0), 150.0),  # opens
        (local(22, 2), 50.0),  # resolves
        (local(22, 3), 150.0),  # within the cooldown of the 22:00 alert: nothing
        (local(22, 5), 150.0),  # 300 s after the last one: opens
        (local(22, 6), 50.0),  # resolves
        (local(0, 30, True), 150.0),  # after midnight, still in the window: opens
        (local(6, 10, True), 50.0),  # the window ended: no evaluation, the alert stays open
    ]
    platform = client.app.state.platform  # type: ignore[attr-defined]
    points = [Point("press-1", "power_kw", ts, v) for ts, v in values]
    platform.timeseries.write(FactoryScope(world.id), points)
    start, end = local(21, 0), local(7, 0, True)
    body = {"definition": definition, "start": start.isoformat(), "end": end.isoformat()}
    job = _run(client, world, job_handlers(platform)[KIND], "/api/v1/rules/backtest", body)
    assert _alerts(job["result"]) == [
        ("press-1", local(22, 0), local(22, 2), {"power_kw": 150.0}),
        ("press-1", local(22, 5), local(22, 6), {"power_kw": 150.0}),
        ("press-1", local(0, 30, True), None, {"power_kw": 150.0}),
    ]


def test_backtest_reports_progress_and_stops_when_cancelled(client: TestClient, make_factory) -> None:
    world = make_factory()
    devices = {f"press-{i:02d}": "press" for i in range(30)}  # two batches of devices
    setup_rule(client, world, OVERLOAD, devices=devices)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    t0 = _t0()
    for device_id in devices:
        _write(platform.timeseries, world.id, device_id, t0, [(t, 50.0) for t in range(0, 600, 30)])
    backtester = Backtester(platform.db, platform.timeseries)
    definition = RuleDefinition.model_validate(OVERLOAD)
    reports: list[tuple[int, str]] = []
    result = backtester.run(
        world.id, definition, t0, t0 + timedelta(days=2), progress=lambda p, m: reports.append((p, m))
    )
    assert result["devices"] == 30 and result["points"] == 30 * 20 and result["alerts"] == []
    percents = [p for p, _ in reports]
    assert percents == sorted(percents) and percents[-1] == 100 and any(0 < p < 100 for p in percents)
    assert any("devices 26-30 of 30" in m for _, m in reports)

    checks = 0

    def cancel_on_third() -> None:
        nonlocal checks
        checks += 1
        if checks == 3:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        backtester.run(world.id, definition, t0, t0 + timedelta(days=2), check=cancel_on_third)
    assert checks == 3


def test_backtest_requests_are_validated(client: TestClient, make_factory) -> None:
    world = make_factory()
    rule_id = setup_rule(client, world, OVERLOAD, devices={"press-1": "press"})
    h = auth(world.admin_all_token)
    t0 = _t0()
    iso: Callable[[timedelta], str] = lambda d: (t0 + d).isoformat()  # noqa: E731

    def fails(url: str, body: dict[str, Any], field: str, code: str = "validation_error") -> str:
        r = client.post(url, headers=h, json=body)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == code and field in [d["field"] for d in error["details"]], error
        return str(error["message"])

    for url, extra in (("/api/v1/rules/backtest", {"definition": OVERLOAD}), (f"/api/v1/rules/{rule_id}/backtest", {})):
        message = fails(url, {**extra, "start": iso(timedelta(0)), "end": iso(timedelta(0))}, "body.end")
        assert "must be after start" in message
        fails(url, {**extra, "start": iso(timedelta(hours=1)), "end": iso(timedelta(0))}, "body.end")
        message = fails(
            url, {**extra, "start": iso(timedelta(0)), "end": iso(timedelta(days=31, seconds=1))}, "body.end"
        )
        assert "at most 31 days" in message
        fails(url, {**extra, "start": "yesterday", "end": iso(timedelta(0))}, "body.start")
    period = {"start": iso(timedelta(0)), "end": iso(timedelta(days=31))}  # exactly 31 days is fine
    bad = {**OVERLOAD, "condition": {"property": "pressure_bar", "operator": ">", "value": 1}}
    fails("/api/v1/rules/backtest", {"definition": bad, **period}, "body.definition.condition", "invalid_rule")
    bad = {**OVERLOAD, "condition": {"property": "power_kw", "operator": "between", "value": 5, "value2": 1}}
    fails("/api/v1/rules/backtest", {"definition": bad, **period}, "body.definition.condition.condition")
    r = client.post("/api/v1/rules/backtest", headers=h, json={"definition": OVERLOAD, **period})
    assert r.status_code == 202
    # the rules permission is needed; another factory's rule does not exist
    plain = auth(world.admin_plain_token)
    assert (
        client.post("/api/v1/rules/backtest", headers=plain, json={"definition": OVERLOAD, **period}).status_code == 403
    )
    assert client.post(f"/api/v1/rules/{rule_id}/backtest", headers=plain, json=period).status_code == 403
    other = make_factory(with_admins=False)
    r = client.post(f"/api/v1/rules/{rule_id}/backtest", headers=auth(other.super_token), json=period)
    assert r.status_code == 404
