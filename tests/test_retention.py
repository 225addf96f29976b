"""A factory's own, shorter telemetry retention: the API that sets it, and the sweep that enforces it.

The store is the platform's own (the embedded one of the test settings: raw 30 days, 1-minute
rollups 365, 1-hour rollups forever); the InfluxDB side of ``delete_before`` is in the port's
contract suite.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from factoryops.core.db import utcnow
from factoryops.entrypoints.services import WorkerService
from factoryops.ports.timeseries.base import (
    ALL_FACTORIES,
    FactoryScope,
    Point,
    Resolution,
    Retention,
    TimeseriesStore,
)
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore
from factoryops.telemetry.models import TelemetryRetention
from factoryops.telemetry.retention import RetentionSweep
from factoryops.wiring import Platform, worker_sweeps
from support import FactoryWorld, auth

DAY = timedelta(days=1)
URL = "/api/v1/telemetry/retention"
# Hours of minute points at these ages, in days: beyond every tier of the factory below, beyond
# its 1-minute and raw tiers, beyond its raw tier only, and inside all three.
AGES = (12, 7.5, 4.5, 1)
OWN = {"raw_days": 3, "rollup_1m_days": 6, "rollup_1h_days": 9}


def _store(platform: Platform) -> TimeseriesStore:
    assert platform.timeseries is not None
    return platform.timeseries


def _hour(days_ago: float) -> datetime:
    return (datetime.now(UTC) - timedelta(days=days_ago)).replace(minute=0, second=0, microsecond=0)


def _fill(store: TimeseriesStore, factory_id: str) -> None:
    points = [
        Point("meter-1", "power_kw", _hour(age) + i * timedelta(minutes=1), 1.0) for age in AGES for i in range(60)
    ]
    assert store.write(FactoryScope(factory_id), points) == len(points)
    store.compact()  # the rollups hold every point before anything is deleted


def _ages_in(store: TimeseriesStore, factory_id: str, resolution: Resolution) -> list[float]:
    """The ages (in AGES) whose hour still has values in one resolution."""
    found = []
    for age in AGES:
        start = _hour(age)
        if resolution is Resolution.RAW:
            result = store.query(FactoryScope(factory_id), ["meter-1"], None, start, start + timedelta(hours=1))
        else:
            result = store.query(
                FactoryScope(factory_id),
                ["meter-1"],
                None,
                start,
                start + timedelta(hours=1),
                aggregate="count",
                interval=resolution.period,
            )
            assert result.resolution is resolution
        if result.series:
            found.append(age)
    return found


def _row(platform: Platform, factory_id: str) -> TelemetryRetention | None:
    with platform.db.factory_session(factory_id) as s:
        row = s.execute(select(TelemetryRetention)).scalar_one_or_none()
        if row is not None:
            s.expunge(row)
        return row


# -- the API ------------------------------------------------------------------------------------------


def test_a_factory_keeps_its_data_less_long_than_the_platform(
    client: TestClient, platform: Platform, make_factory
) -> None:
    a: FactoryWorld = make_factory()
    b: FactoryWorld = make_factory(with_admins=False)
    h = auth(a.super_token)
    body = client.get(URL, headers=auth(a.admin_plain_token)).json()  # factory admins read it
    assert body | {"updated_at": None} == {
        "raw_days": 30,
        "rollup_1m_days": 365,
        "rollup_1h_days": None,
        "own_raw_days": None,
        "own_rollup_1m_days": None,
        "own_rollup_1h_days": None,
        "platform_raw_days": 30,
        "platform_rollup_1m_days": 365,
        "platform_rollup_1h_days": None,
        "own": False,
        "updated_by": "",
        "updated_at": None,
        "swept_at": None,
    }

    r = client.put(URL, headers=h, json={"raw_days": 7, "rollup_1h_days": 400})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["raw_days"], body["rollup_1m_days"], body["rollup_1h_days"]) == (7, 365, 400)
    assert (body["own_raw_days"], body["own_rollup_1m_days"], body["own_rollup_1h_days"]) == (7, None, 400)
    assert body["own"] is True and body["updated_by"] == a.super_admin["email"] and body["updated_at"]
    assert client.get(URL, headers=h).json() == body
    assert client.get(URL, headers=auth(b.super_token)).json()["raw_days"] == 30  # B keeps the platform's
    # The store was told at once: it drops points older than a week from now on.
    day = timedelta(days=1)
    assert _store(platform).retention(FactoryScope(a.id)) == Retention(raw=7 * day, minute=365 * day, hour=400 * day)
    assert _store(platform).retention(FactoryScope(b.id)) == _store(platform).retention(ALL_FACTORIES)

    events = client.get("/api/v1/audit-events?action=retention_changed", headers=h).json()["items"]
    assert len(events) == 1
    assert events[0]["details"]["before"] == {"raw_days": None, "rollup_1m_days": None, "rollup_1h_days": None}
    assert events[0]["details"]["after"] == {"raw_days": 7, "rollup_1m_days": None, "rollup_1h_days": 400}
    client.put(URL, headers=h, json={"raw_days": 7, "rollup_1h_days": 400})  # no change: nothing to audit
    assert len(client.get("/api/v1/audit-events?action=retention_changed", headers=h).json()["items"]) == 1

    r = client.put(URL, headers=h, json={"reset": True, "raw_days": 3})
    assert r.status_code == 200 and r.json()["raw_days"] == 30 and r.json()["own"] is False
    assert _store(platform).retention(FactoryScope(a.id)) == _store(platform).retention(ALL_FACTORIES)
    assert len(client.get("/api/v1/audit-events?action=retention_changed", headers=h).json()["items"]) == 2


def test_a_retention_longer_than_the_platform_or_out_of_order_is_refused_clearly(
    client: TestClient, make_factory
) -> None:
    a: FactoryWorld = make_factory()
    h = auth(a.super_token)

    r = client.put(URL, headers=h, json={"raw_days": 45})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_retention"
    message = r.json()["error"]["message"]
    assert message.startswith("Raw points can be kept at most 30 days on this platform")
    assert "FACTORYOPS_TIMESERIES__RAW_RETENTION_DAYS" in message and "enter 30 or fewer" in message
    assert [d["field"] for d in r.json()["error"]["details"]] == ["body.raw_days"]

    r = client.put(URL, headers=h, json={"raw_days": 40, "rollup_1m_days": 400})
    assert {d["field"] for d in r.json()["error"]["details"]} == {"body.raw_days", "body.rollup_1m_days"}

    # Raw points (the platform's 30 days) would outlive 1-minute rollups kept a week.
    r = client.put(URL, headers=h, json={"rollup_1m_days": 7})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.rollup_1m_days"
    assert r.json()["error"]["message"].startswith("Raw points would be kept 30 days but 1-minute rollups only 7 days")
    r = client.put(URL, headers=h, json={"raw_days": 10, "rollup_1m_days": 20, "rollup_1h_days": 15})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.rollup_1m_days"

    for bad in ({"raw_days": 0}, {"rollup_1h_days": -3}, {"raw_days": "a week"}, {"raw": 7}):
        r = client.put(URL, headers=h, json=bad)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", bad

    assert client.put(URL, headers=auth(a.admin_all_token), json={"raw_days": 3}).status_code == 403
    assert client.get(URL, headers=h).json()["own"] is False  # nothing was saved
    assert client.get("/api/v1/audit-events?action=retention_changed", headers=h).json()["items"] == []


# -- the sweep ----------------------------------------------------------------------------------------


def test_the_sweep_deletes_what_each_factory_no_longer_keeps_tier_by_tier(
    client: TestClient, platform: Platform, make_factory, caplog: pytest.LogCaptureFixture
) -> None:
    a: FactoryWorld = make_factory(with_admins=False)
    b: FactoryWorld = make_factory(with_admins=False)
    store = _store(platform)
    _fill(store, a.id)
    _fill(store, b.id)
    assert client.put(URL, headers=auth(a.super_token), json=OWN).status_code == 200
    assert client.put(URL, headers=auth(b.super_token), json={}).status_code == 200  # B: the platform's, as a row

    sweep = RetentionSweep(platform.db, store, platform.settings.timeseries)
    with caplog.at_level(logging.INFO, logger="factoryops.telemetry.retention"):
        sweep.run()
    # raw kept 3 days, 1-minute rollups 6, 1-hour rollups 9.
    assert _ages_in(store, a.id, Resolution.RAW) == [1]
    assert _ages_in(store, a.id, Resolution.MINUTE) == [4.5, 1]
    assert _ages_in(store, a.id, Resolution.HOUR) == [7.5, 4.5, 1]
    for resolution in Resolution:  # another factory keeps everything the platform keeps
        assert _ages_in(store, b.id, resolution) == list(AGES)
    logged = [r.getMessage() for r in caplog.records if a.id in r.getMessage()]
    assert len(logged) == 1, logged
    # Counted: three hours of raw points, two of minute rollups, one hourly rollup.
    assert "deleted raw points before" in logged[0] and "UTC (180)" in logged[0]
    assert "1-minute rollups before" in logged[0] and "1-hour rollups before" in logged[0]
    assert logged[0].endswith("UTC (1)")
    assert not any(b.id in r.getMessage() for r in caplog.records)  # nothing of B's to delete
    swept_at = _row(platform, a.id).swept_at  # type: ignore[union-attr]
    assert swept_at is not None

    # Claimed for an hour: a second sweep now, by this worker or another, does not touch it.
    other = RetentionSweep(platform.db, store, platform.settings.timeseries)
    assert sweep.run() == 0 and other.run() == 0
    assert _row(platform, a.id).swept_at == swept_at  # type: ignore[union-attr]
    # An hour later it is due again, and exactly one of two workers takes it.
    later = utcnow() + timedelta(hours=1, minutes=1)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="factoryops.telemetry.retention"):
        assert sweep.run(later) >= 1
        other.run(later)
    assert len([r for r in caplog.records if a.id in r.getMessage()]) == 1
    assert _row(platform, a.id).swept_at == later  # type: ignore[union-attr]
    assert _ages_in(store, a.id, Resolution.RAW) == [1]


def test_a_changed_setting_is_swept_at_once(client: TestClient, platform: Platform, make_factory) -> None:
    a: FactoryWorld = make_factory(with_admins=False)
    store = _store(platform)
    _fill(store, a.id)
    sweep = RetentionSweep(platform.db, store, platform.settings.timeseries)
    assert client.put(URL, headers=auth(a.super_token), json={"raw_days": 10}).status_code == 200
    sweep.run()
    assert _ages_in(store, a.id, Resolution.RAW) == [7.5, 4.5, 1]
    assert client.put(URL, headers=auth(a.super_token), json={"raw_days": 5}).status_code == 200
    assert _row(platform, a.id).swept_at is None  # type: ignore[union-attr]  # due now, not in an hour
    sweep.run()
    assert _ages_in(store, a.id, Resolution.RAW) == [4.5, 1]


def test_a_store_that_is_down_is_swept_again_a_few_minutes_later(
    client: TestClient, platform: Platform, make_factory, tmp_path
) -> None:
    a: FactoryWorld = make_factory(with_admins=False)
    assert client.put(URL, headers=auth(a.super_token), json={"raw_days": 5}).status_code == 200
    down = EmbeddedTimeseriesStore(tmp_path)
    down.close()
    now = utcnow()
    sweep = RetentionSweep(platform.db, down, platform.settings.timeseries, retry_after=timedelta(minutes=5))
    assert sweep.run(now) == 0
    swept_at = _row(platform, a.id).swept_at  # type: ignore[union-attr]
    assert swept_at is not None
    assert abs(swept_at - (now - timedelta(minutes=55))) < timedelta(seconds=1)


def test_a_copy_of_the_retention_left_in_the_store_alone_is_dropped(platform: Platform, make_factory) -> None:
    """Before the setting lived in the metadata database it lived in the store; the portal would not show it."""
    a: FactoryWorld = make_factory(with_admins=False)
    store = _store(platform)
    store.configure_retention(FactoryScope(a.id), Retention(raw=2 * DAY, minute=30 * DAY, hour=None))
    RetentionSweep(platform.db, store, platform.settings.timeseries).run()
    assert store.retention(FactoryScope(a.id)) == store.retention(ALL_FACTORIES)


def test_the_worker_runs_the_sweep(client: TestClient, platform: Platform, make_factory) -> None:
    a: FactoryWorld = make_factory(with_admins=False)
    store = _store(platform)
    _fill(store, a.id)
    assert client.put(URL, headers=auth(a.super_token), json={"raw_days": 2}).status_code == 200
    worker = WorkerService(
        platform.db,
        heartbeat_seconds=0.2,
        job_handlers={},
        notifications=platform.settings.notifications,
        sweeps=worker_sweeps(platform),
    )
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _row(platform, a.id).swept_at is None:  # type: ignore[union-attr]
            time.sleep(0.2)
    finally:
        worker.stop()
    assert _ages_in(store, a.id, Resolution.RAW) == [1]
