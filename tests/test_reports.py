"""Reports: the numbers in all three formats against values computed here from the same stored data.

History is written into a throwaway InfluxDB with explicit timestamps: a 1-minute kWh counter
that is reset to zero half-way and has a two-hour gap, a power-only device, a device without
energy. Alerts with known open/acknowledge/resolve times are inserted. The report is generated
through the API by a real job worker, stored in the object store, downloaded, and its PDF text,
Excel cells and JSON compared with the expected values computed below independently of the
report code (straight from the raw points).
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import update

from channels import open_channels
from factoryops.alerts.models import Alert
from factoryops.devices.discovery import Registry
from factoryops.entrypoints.api import create_app
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import JobWorker
from factoryops.ports.objectstore.local import LocalObjectStore
from factoryops.ports.timeseries.base import DEFAULT_RETENTION, FactoryScope, Point
from factoryops.ports.timeseries.influx import InfluxTimeseriesStore
from factoryops.reports.models import ReportSchedule
from factoryops.reports.render import validate
from factoryops.reports.service import ReportService, next_run, period_for
from factoryops.wiring import Platform, job_handlers
from influx import influxdb
from support import FactoryWorld, auth, register_device

TZ = ZoneInfo("Europe/Berlin")  # the factory's zone in make_factory


@pytest.fixture(scope="module")
def stack(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    folder = tmp_path_factory.mktemp("reports")
    with influxdb(folder / "influx") as influx:
        store = InfluxTimeseriesStore(influx.url, f"reports_{secrets.token_hex(4)}", retention=DEFAULT_RETENTION)
        settings = platform.settings.model_copy(update={"data_dir": folder / "data"})
        yield replace(platform, settings=settings, timeseries=store, objects=LocalObjectStore(folder / "objects"))
        store.close()


@pytest.fixture()
def client(stack: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(stack), raise_server_exceptions=False) as c:
        yield c


def _worker(platform: Platform) -> JobWorker:
    w = JobWorker(
        JobQueue(platform.db, retry_base_seconds=0.05),
        job_handlers(platform),
        name=f"reports-{secrets.token_hex(3)}",
        poll_seconds=0.05,
        heartbeat_seconds=0.2,
    )
    w.start()
    return w


def _period() -> tuple[datetime, datetime]:
    """Yesterday in the factory's zone, as the preset computes it."""
    start, end, _ = period_for("yesterday", TZ, datetime.now(UTC))
    return start, end


def _history(platform: Platform, world: FactoryWorld, start: datetime, end: datetime) -> dict[str, list[Point]]:
    """Writes the plant's history (also 26 hours before the period) and returns the raw points."""
    lead = start - timedelta(hours=26)
    minutes = int((end - lead) / timedelta(minutes=1))
    reset_at = start + timedelta(hours=11, minutes=17)
    gap = (start + timedelta(hours=4), start + timedelta(hours=6))
    counter: list[Point] = []
    value = 5000.0
    for i in range(minutes):
        ts = lead + timedelta(minutes=i)
        if gap[0] <= ts < gap[1]:
            value += 0.7  # the meter keeps counting while nothing arrives
            continue
        if ts == reset_at:
            value = 0.4  # replaced meter: counts from zero
        else:
            value += 0.5 + (0.3 if 8 <= ts.astimezone(TZ).hour < 18 else 0.0)
        counter.append(Point("press-1", "energy_kwh", ts, round(value, 3)))
    power = [
        Point("oven-2", "power_kw", lead + timedelta(minutes=i), 50.0 + (40.0 if i % 60 < 15 else 0.0))
        for i in range(0, minutes, 1)
    ]
    temperature = [
        Point("sensor-3", "temperature_c", lead + timedelta(minutes=i), 20.0 + i % 7) for i in range(0, minutes, 5)
    ]
    store = platform.timeseries
    assert store is not None
    scope = FactoryScope(world.id)
    for points in (counter, power, temperature):
        store.write(scope, points)
    registry = Registry(platform.db)
    registry.ensure_properties(world.id, "press-1", ["energy_kwh"], lead)
    registry.ensure_properties(world.id, "oven-2", ["power_kw"], lead)
    registry.ensure_properties(world.id, "sensor-3", ["temperature_c"], lead)
    return {"press-1": counter, "oven-2": power, "sensor-3": temperature}


def _expected_energy(points: dict[str, list[Point]], start: datetime, end: datetime) -> dict[str, Any]:
    """Independently: walk the raw counter (rises add, a drop adds the new reading), integrate power."""
    hourly: dict[str, dict[datetime, float]] = {"press-1": defaultdict(float), "oven-2": defaultdict(float)}
    last = None
    for p in points["press-1"]:
        if p.ts < start:
            last = p.value
            continue
        if p.ts >= end:
            break
        hour = p.ts.replace(minute=0, second=0, microsecond=0)
        assert last is not None
        hourly["press-1"][hour] += p.value - last if p.value >= last else p.value
        last = p.value
    sums: dict[datetime, list[float]] = defaultdict(list)
    for p in points["oven-2"]:
        if start <= p.ts < end:
            sums[p.ts.replace(minute=0, second=0, microsecond=0)].append(p.value)
    for hour, values in sums.items():
        hourly["oven-2"][hour] = sum(values) / len(values)
    totals = {d: sum(h.values()) for d, h in hourly.items()}
    factory: dict[datetime, float] = defaultdict(float)
    for h in hourly.values():
        for hour, kwh in h.items():
            factory[hour] += kwh
    peak_hour = max(factory, key=factory.__getitem__)
    return {"totals": totals, "total": sum(totals.values()), "peak_kw": factory[peak_hour], "peak_hour": peak_hour}


def _alerts(platform: Platform, world: FactoryWorld, start: datetime) -> dict[str, float]:
    spec = [  # (opened after start, acknowledged after, resolved after) in minutes
        ("critical", 30, 5, 65),
        ("warning", 200, 15, None),
        ("warning", 400, None, 20),
        ("info", 900, 45, 300),
    ]
    with platform.db.factory_session(world.id) as s:
        for i, (severity, opened, ack, res) in enumerate(spec):
            at = start + timedelta(minutes=opened)
            s.add(
                Alert(
                    rule_id=f"rule-{i}",
                    rule_name=f"Rule {i % 2}",
                    device_id="press-1",
                    severity=severity,
                    state="resolved" if res else ("acknowledged" if ack else "open"),
                    open_key=None if res else "open",
                    opened_at=at,
                    acknowledged_at=at + timedelta(minutes=ack) if ack else None,
                    resolved_at=at + timedelta(minutes=res) if res else None,
                )
            )
    acks = [a for _, _, a, _ in spec if a]
    ress = [r for _, _, _, r in spec if r]
    return {"mtta": sum(acks) / len(acks) * 60, "mttr": sum(ress) / len(ress) * 60, "total": len(spec), "open": 1}


@pytest.fixture()
def plant(client: TestClient, make_factory, stack: Platform) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    world = make_factory()
    for device in ("press-1", "oven-2", "sensor-3"):
        register_device(client, world, device)
    start, end = _period()
    points = _history(stack, world, start, end)
    return {
        "world": world,
        "start": start,
        "end": end,
        "energy": _expected_energy(points, start, end),
        "alerts": _alerts(stack, world, start),
    }


def _generate(client: TestClient, token: str, body: dict[str, Any]) -> dict[str, Any]:
    h = auth(token)
    r = client.post("/api/v1/reports", headers=h, json=body)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        report = client.get(f"/api/v1/reports/{r.json()['id']}", headers=h).json()
        if report["state"] in ("succeeded", "failed"):
            return dict(report)
        time.sleep(0.1)
    raise AssertionError(f"report did not finish: {report}")


def test_numbers_in_json_excel_and_pdf_match_the_stored_data(
    client: TestClient, plant: dict[str, Any], stack: Platform
) -> None:
    world: FactoryWorld = plant["world"]
    h = auth(world.super_token)
    r = client.put(
        "/api/v1/reports/settings",
        headers=h,
        json={
            "currency": "EUR",
            "tariff": {
                "kind": "time_of_use",
                "default_price": 0.12,
                "bands": [
                    {"name": "peak", "price": 0.30, "days": [0, 1, 2, 3, 4, 5, 6], "start": "08:00", "end": "20:00"}
                ],
            },
            "emission_factor_kg_per_kwh": 0.4,
        },
    )
    assert r.status_code == 200, r.text
    expected = plant["energy"]
    worker = _worker(stack)
    try:
        reports = {
            fmt: _generate(
                client,
                world.admin_all_token,
                {"title": "Daily energy", "format": fmt, "preset": "yesterday", "properties": ["temperature_c"]},
            )
            for fmt in ("json", "xlsx", "pdf")
        }
    finally:
        worker.stop()
    for fmt, report in reports.items():
        assert report["state"] == "succeeded", (fmt, report)
        assert report["progress"] == 100 and report["content_hash"]

    # JSON: valid against the published schema, numbers equal to the independent computation.
    body = client.get(f"/api/v1/reports/{reports['json']['id']}/download", headers=auth(world.admin_all_token))
    assert body.status_code == 200
    content = json.loads(body.content)
    validate(content)
    energy = content["energy"]
    devices = {d["device_id"]: d for d in energy["devices"]}
    assert devices["press-1"]["kwh"] == pytest.approx(expected["totals"]["press-1"], abs=0.01)
    assert devices["press-1"]["method"] == "counter" and devices["press-1"]["counter_resets"] == 1
    assert devices["press-1"]["gaps"] == 1  # the two hours without data
    assert devices["oven-2"]["kwh"] == pytest.approx(expected["totals"]["oven-2"], abs=0.01)
    assert devices["oven-2"]["method"] == "power"
    assert devices["sensor-3"]["method"] == "none" and devices["sensor-3"]["kwh"] is None
    assert energy["total_kwh"] == pytest.approx(expected["total"], abs=0.02)
    assert energy["peak_kw"] == pytest.approx(expected["peak_kw"], abs=0.01)
    assert datetime.fromisoformat(energy["peak_at"]) == expected["peak_hour"]
    assert energy["co2_kg"] == pytest.approx(expected["total"] * 0.4, abs=0.01)
    assert sum(b["kwh"] for b in energy["by_tariff_band"]) == pytest.approx(expected["total"], abs=0.05)
    assert sum(d["kwh"] for d in energy["by_day"]) == pytest.approx(expected["total"], abs=0.05)
    alerts = content["alerts"]
    assert alerts["total"] == plant["alerts"]["total"]
    assert alerts["mtta_seconds"] == pytest.approx(plant["alerts"]["mtta"])
    assert alerts["mttr_seconds"] == pytest.approx(plant["alerts"]["mttr"])
    assert len(alerts["open"]) == plant["alerts"]["open"]
    temps = content["properties"]["items"]
    assert [(t["device_id"], t["min"], t["max"]) for t in temps] == [("sensor-3", 20.0, 26.0)]

    # Excel: typed cells that hold the same numbers.
    xlsx = client.get(f"/api/v1/reports/{reports['xlsx']['id']}/download", headers=auth(world.admin_all_token))
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    numbers = [
        c.value for ws in book.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, int | float)
    ]
    assert any(abs(n - energy["total_kwh"]) < 0.01 for n in numbers), "the total kWh is not a number cell"
    assert any(abs(n - devices["press-1"]["kwh"]) < 0.01 for n in numbers)
    assert any(isinstance(c.value, datetime) for ws in book.worksheets for row in ws.iter_rows() for c in row)

    # PDF: the text carries the same figures.
    pdf = client.get(f"/api/v1/reports/{reports['pdf']['id']}/download", headers=auth(world.admin_all_token))
    assert pdf.headers["content-type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert world.name in text
    assert f"{energy['total_kwh']:,.0f}" in text or f"{energy['total_kwh']:,.1f}" in text

    # Reading is every factory user's (spec 3.2: an admin has read access): an admin without the
    # reports permission downloads the same file, but may not make a report.
    r = client.get(f"/api/v1/reports/{reports['pdf']['id']}/download", headers=auth(world.admin_plain_token))
    assert r.status_code == 200 and r.content == pdf.content
    r = client.post("/api/v1/reports", headers=auth(world.admin_plain_token), json={"preset": "last_7_days"})
    assert r.status_code == 403, r.text


def test_bad_requests_and_a_failed_report_that_is_retried(
    client: TestClient, plant: dict[str, Any], stack: Platform
) -> None:
    world: FactoryWorld = plant["world"]
    h = auth(world.admin_all_token)
    for body, code in (
        ({"preset": "custom"}, "period_required"),
        ({"devices": ["ghost"]}, "unknown_devices"),
        ({"preset": "custom", "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "invalid_period"),
    ):
        r = client.post("/api/v1/reports", headers=h, json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)
    # Settings belong to the reports permission (spec 3.2: write access where granted).
    r = client.put("/api/v1/reports/settings", headers=auth(world.admin_plain_token), json={"tariff": {"kind": "flat"}})
    assert r.status_code == 403
    r = client.put("/api/v1/reports/settings", headers=h, json={"tariff": {"kind": "flat"}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_tariff"

    # The object store refuses writes: the report fails after its attempts, with the reason; once
    # the store is back, a retry succeeds.
    broken = replace(stack, objects=LocalObjectStore(stack.settings.data_dir / "missing" / "x"))
    blocker = stack.settings.data_dir / "missing"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where a folder should be")
    worker = _worker(broken)
    try:
        failed = _generate(client, world.admin_all_token, {"format": "json", "preset": "yesterday"})
    finally:
        worker.stop()
    assert failed["state"] == "failed" and failed["error"], failed
    r = client.post(f"/api/v1/reports/{failed['id']}/retry", headers=h)
    assert r.status_code == 200, r.text
    worker = _worker(stack)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            again = client.get(f"/api/v1/reports/{failed['id']}", headers=h).json()
            if again["state"] in ("succeeded", "failed") and again["progress"] == 100:
                break
            time.sleep(0.1)
    finally:
        worker.stop()
    assert again["state"] == "succeeded" and again["error"] == "", again


def test_a_scheduled_report_is_generated_and_emailed_with_the_file(
    client: TestClient, plant: dict[str, Any], stack: Platform
) -> None:
    world: FactoryWorld = plant["world"]
    h = auth(world.super_token)
    r = client.post(
        "/api/v1/reports/schedules",
        headers=h,
        json={"name": "Daily energy", "cadence": "daily", "format": "xlsx", "recipients": ["director@plant.example"]},
    )
    assert r.status_code == 201, r.text
    schedule = r.json()
    first = datetime.fromisoformat(schedule["next_run_at"])
    assert first == next_run("daily", TZ, datetime.now(UTC))
    assert first.astimezone(TZ).hour == 1 and first.astimezone(TZ).minute == 0  # an hour after local midnight
    r = client.post(
        "/api/v1/reports/schedules",
        headers=auth(world.admin_plain_token),
        json={"name": "x", "cadence": "weekly", "recipients": ["a@plant.example"]},
    )
    assert r.status_code == 403  # schedules need the reports permission
    r = client.post(
        "/api/v1/reports/schedules",
        headers=auth(world.admin_all_token),
        json={"name": "x", "cadence": "weekly", "recipients": ["a@plant.example"]},
    )
    assert r.status_code == 201, r.text  # an admin granted it schedules
    assert (
        client.delete(f"/api/v1/reports/schedules/{r.json()['id']}", headers=auth(world.admin_all_token)).status_code
        == 204
    )
    with open_channels() as channels:
        platform = replace(stack, settings=stack.settings.model_copy(update={"notifications": channels.settings}))
        service = ReportService(platform.db, platform.timeseries, platform.objects, channels.settings)
        with platform.db.factory_session(world.id) as s:  # it is due
            s.execute(
                update(ReportSchedule)
                .where(ReportSchedule.id == schedule["id"])
                .values(next_run_at=datetime.now(UTC) - timedelta(minutes=1))
            )
        assert service.run_due_schedules() == 1
        assert service.run_due_schedules() == 0  # claimed once
        worker = _worker(platform)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not channels.mailbox.messages:
                time.sleep(0.1)
        finally:
            worker.stop()
        assert len(channels.mailbox.messages) == 1
        envelope = channels.mailbox.messages[0]
        assert envelope.rcpt_tos == ["director@plant.example"]
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        attachments = list(message.iter_attachments())  # type: ignore[attr-defined]
        assert len(attachments) == 1 and attachments[0].get_filename().endswith(".xlsx")
        book = openpyxl.load_workbook(io.BytesIO(attachments[0].get_content()))
        assert book.sheetnames
    listed = client.get("/api/v1/reports/schedules", headers=h).json()
    row = next(x for x in listed if x["id"] == schedule["id"])
    assert row["last_report_id"] and datetime.fromisoformat(row["next_run_at"]) > datetime.now(UTC)
    report = client.get(f"/api/v1/reports/{row['last_report_id']}", headers=h).json()
    assert report["state"] == "succeeded" and report["emailed_to"] == ["director@plant.example"]
    assert report["params"]["preset"] == "yesterday"


def test_a_scheduled_report_that_cannot_be_emailed_stays_downloadable(
    client: TestClient, plant: dict[str, Any], stack: Platform
) -> None:
    """No mail server configured: the report is made and kept; the reason is on the report."""
    world: FactoryWorld = plant["world"]
    h = auth(world.super_token)
    r = client.post(
        "/api/v1/reports/schedules",
        headers=h,
        json={"name": "Weekly", "cadence": "weekly", "format": "json", "recipients": ["director@plant.example"]},
    )
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/reports/schedules/{r.json()['id']}/run", headers=h)
    assert r.status_code == 202, r.text
    assert stack.settings.notifications.smtp_host == ""  # email is off on this platform
    worker = _worker(stack)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            report = client.get(f"/api/v1/reports/{r.json()['id']}", headers=h).json()
            if report["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.1)
    finally:
        worker.stop()
    assert report["state"] == "succeeded", report
    assert report["emailed_to"] == [] and "not configured" in report["summary"]["email_error"]
    assert report["params"]["preset"] == "last_week"
    download = client.get(f"/api/v1/reports/{report['id']}/download", headers=h)
    assert download.status_code == 200 and json.loads(download.content)["report"]["title"] == "Weekly"
