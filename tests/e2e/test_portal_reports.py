"""Reports journey through the portal: the tariff in the report settings, a PDF report of
yesterday whose KPI cards match the seeded meter, its download, an Excel report of the last seven
days, a schedule (recipients checked) run now, and what a user without the reports permission sees.

Everything happens in Golf Galvanising, a factory of this journey's own (see portal_support for
why). Its main meter is a cumulative kWh counter rising 2.5 kWh every 5 minutes (30 kWh an hour)
for the last nine days, with a meter replacement (a reset to zero) yesterday at 13:00 local time.
The history is written with its own timestamps straight into the platform's embedded time-series
store (an MQTT message is stamped with its arrival time, so MQTT cannot bring history); the
meter's ``energy_kwh`` property is discovered the ordinary way, by one MQTT message.

The platform of the browser tests has no SMTP server, so a scheduled report, which is emailed
to its recipients, is made and stays downloadable while the page says it could not be emailed
and why. (The emailing itself is tested with a real SMTP server in tests/test_reports.py.)
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from playwright.sync_api import Page, expect
from portal_support import Account, ApiHelper, FactorySpec, create_device, publish_values, sign_in

from factoryops.ports.timeseries.base import FactoryScope, Point
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore

pytestmark = pytest.mark.e2e

GOLF = FactorySpec(
    name="Golf Galvanising",
    slug="golf-galvanising",
    timezone="Europe/Berlin",
    description="Hot-dip galvanising line",
    super_admin=Account("greta.head@golf.example", "Greta Head", "Zinc-bath-2026x"),
)
GOLF_READER = Account("hugo.sees@golf.example", "Hugo Sees", "Lookonly-2026x")

TZ = ZoneInfo(GOLF.timezone)
DEVICE = "main-meter"
STEP = timedelta(minutes=5)
KWH_PER_STEP = 2.5  # 30 kWh an hour
HISTORY_DAYS = 9  # last 7 days, the 7 before them in part, and a day of lookback
PRICE = 0.20  # EUR per kWh, flat
CO2_FACTOR = 0.4  # kg per kWh
REPORT_TIMEOUT_MS = 60_000
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class Platform(Protocol):
    base_url: str
    mqtt_port: int
    data_dir: Path


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=TZ)


def settled_today() -> date:
    """Today (local), once the clock is clear of midnight: the journey takes minutes and the
    platform's "yesterday" must be the day it was seeded for, so a run that starts in the quarter
    of an hour before midnight, or in the first ten minutes after it, waits until 00:10."""
    now = datetime.now(TZ)
    since_midnight = now - local_midnight(now.date())
    if since_midnight >= timedelta(hours=23, minutes=45) or since_midnight < timedelta(minutes=10):
        day = now.date() + timedelta(days=1) if since_midnight >= timedelta(hours=12) else now.date()
        time.sleep(max(0.0, (local_midnight(day) + timedelta(minutes=10, seconds=5) - now).total_seconds()))
    return datetime.now(TZ).date()


def seed_meter(api: ApiHelper, platform: Platform) -> date:
    """The meter, its discovered counter, and nine days of 5-minute readings; answers today (local)."""
    api.ensure_factory(GOLF)
    headers = api.auth(api.login(GOLF.slug, GOLF.super_admin))
    factory_id = api._ok(api.client.get("/factory", headers=headers))["id"]
    today = settled_today()
    if api.client.get(f"/devices/{DEVICE}", headers=headers).status_code != 200:
        create_device(api, GOLF, DEVICE, name="Main meter", type="energy-meter")
        # One live message makes the platform discover energy_kwh as a kWh counter (stamped now).
        publish_values(api, GOLF, platform.mqtt_port, DEVICE, [{"energy_kwh": 1.0}], gap_s=0)
    start = local_midnight(today - timedelta(days=HISTORY_DAYS)).astimezone(UTC)
    # Up to half an hour ago, and at least a few readings into today, so that yesterday is whole
    # even when the run starts just after local midnight (the platform's "yesterday" ends there).
    end = max(datetime.now(UTC) - timedelta(minutes=30), local_midnight(today).astimezone(UTC) + 2 * STEP)
    reset_at = local_midnight(today - timedelta(days=1)).replace(hour=13).astimezone(UTC)
    points: list[Point] = []
    value = 5000.0
    ts = start
    while ts < end:
        # The replaced meter counts from zero: its first reading is what it counted since.
        value = KWH_PER_STEP if ts == reset_at else value + KWH_PER_STEP
        points.append(Point(DEVICE, "energy_kwh", ts, value))
        ts += STEP
    store = EmbeddedTimeseriesStore(platform.data_dir / "timeseries")
    try:
        assert store.write(FactoryScope(factory_id), points) == len(points)
    finally:
        store.close()
    return today


def wait_for_state(page: Page, state: str, timeout: float = REPORT_TIMEOUT_MS) -> None:
    expect(page.locator(f'.page-header .report-state[data-state="{state}"]')).to_be_visible(timeout=timeout)


def number(value: float, digits: int = 0) -> str:
    """How the portal writes a KPI value (en-GB grouping, trailing zeros dropped)."""
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def test_reports_tariff_pdf_and_excel_reports_download_schedule_and_read_only(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    began = time.monotonic()
    api.ensure_user(GOLF, GOLF_READER, permissions=[])
    today = seed_meter(api, platform)
    yesterday = today - timedelta(days=1)
    hours = (local_midnight(today) - local_midnight(yesterday)) / timedelta(hours=1)  # 23 or 25 on a DST day
    kwh = hours * 30

    sign_in(page, GOLF.slug, GOLF.super_admin)
    page.get_by_role("navigation", name="Factory navigation").get_by_role("link", name="Reports").click()
    expect(page).to_have_url(re.compile(rf"/f/{GOLF.slug}/reports/history$"))
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    expect(page.get_by_role("table", name="Reports")).to_contain_text("No reports yet")
    tabs = page.get_by_role("navigation", name="Reports sections")

    # ---- settings: a flat tariff and a CO2 factor
    tabs.get_by_role("link", name="Settings").click()
    form = page.get_by_role("form", name="Report settings")
    expect(form.get_by_label("Currency")).to_have_value("EUR")
    form.get_by_label("Tariff", exact=True).select_option("flat")
    form.get_by_role("button", name="Save settings").click()
    expect(form.get_by_label("Price per kWh")).to_have_attribute("aria-invalid", "true")
    expect(form).to_contain_text("Enter the price per kWh")
    form.get_by_label("Price per kWh").fill(str(PRICE))
    form.get_by_label("CO2 emission factor (kg/kWh)").fill(str(CO2_FACTOR))
    form.get_by_role("button", name="Save settings").click()
    expect(form).to_contain_text("Settings saved")
    screenshot("report-settings")
    saved = api._ok(api.client.get("/reports/settings", headers=api.auth(api.login(GOLF.slug, GOLF.super_admin))))
    assert saved["tariff"] == {"kind": "flat", "flat_price": PRICE, "default_price": None, "bands": []}
    assert saved["emission_factor_kg_per_kwh"] == CO2_FACTOR

    # ---- a PDF report of yesterday for the meter, with the properties section on energy_kwh
    tabs.get_by_role("link", name="New report").click()
    form = page.get_by_role("form", name="New report")
    form.get_by_label("Title", exact=True).fill("Daily energy")
    form.get_by_label("Period").select_option("yesterday")
    form.get_by_label("Search devices").fill(DEVICE)
    form.get_by_role("button", name=f"Add {DEVICE}").click()
    expect(form.get_by_role("list", name="Chosen devices")).to_contain_text(DEVICE)
    form.get_by_role("group", name="Properties").get_by_label("energy_kwh").check()
    form.get_by_role("group", name="Format").get_by_label("PDF", exact=True).check()
    screenshot("report-builder")
    form.get_by_role("button", name="Generate report").click()
    expect(page).to_have_url(re.compile(rf"/reports/{UUID}$"))
    pdf_url = page.url
    wait_for_state(page, "succeeded")
    expect(page.get_by_test_id("report-period")).to_have_text(yesterday.strftime("%A %d %B %Y"))
    kpis = page.get_by_test_id("report-kpis")
    expect(kpis.locator('[data-kpi="total_kwh"]')).to_contain_text(f"{number(kwh)} kWh")
    expect(kpis.locator('[data-kpi="cost"]')).to_contain_text(f"{number(kwh * PRICE, 2)} EUR")
    expect(kpis.locator('[data-kpi="co2_kg"]')).to_contain_text(f"{number(kwh * CO2_FACTOR)} kg")
    expect(kpis.locator('[data-kpi="peak_kw"]')).to_contain_text("30 kW")
    highlights = page.get_by_role("list", name="Highlights")
    expect(highlights).to_contain_text(f"The plant consumed {number(kwh)} kWh")
    expect(highlights).to_contain_text("1 meter counter reset(s) were detected and accounted for.")
    screenshot("report-pdf-ready")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download PDF").click()
    download = download_info.value
    assert re.fullmatch(r"Daily-energy-[0-9a-f]{12}\.pdf", download.suggested_filename), download.suggested_filename
    pdf = Path(download.path()).read_bytes()
    assert pdf.startswith(b"%PDF"), f"the download is not a PDF: {pdf[:20]!r}"
    expect(page.get_by_text(f"Downloaded {download.suggested_filename}.")).to_be_visible()

    # ---- an Excel report of the last 7 days (every device, the default sections)
    tabs.get_by_role("link", name="New report").click()
    form = page.get_by_role("form", name="New report")
    form.get_by_label("Title", exact=True).fill("Weekly energy")
    form.get_by_label("Period").select_option("last_7_days")
    form.get_by_role("group", name="Format").get_by_label("Excel", exact=True).check()
    form.get_by_role("button", name="Generate report").click()
    expect(page).to_have_url(re.compile(rf"/reports/{UUID}$"))
    wait_for_state(page, "succeeded")
    expect(page.get_by_test_id("report-kpis").locator('[data-kpi="total_kwh"]')).to_contain_text(" kWh")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download Excel").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx"), download.suggested_filename
    xlsx = Path(download.path()).read_bytes()
    assert xlsx.startswith(b"PK"), "the download is not an Excel (zip) file"
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert "Summary" in workbook.sheetnames, workbook.sheetnames

    # Both are in the history, ready, with their periods.
    tabs.get_by_role("link", name="History").click()
    table = page.get_by_role("table", name="Reports")
    expect(table.locator('tbody tr[data-state="succeeded"]')).to_have_count(2)
    expect(table).to_contain_text("Daily energy")
    expect(table).to_contain_text(yesterday.strftime("%A %d %B %Y"))
    expect(table).to_contain_text("Weekly energy")
    expect(table).to_contain_text("Excel")

    # ---- a weekly schedule: the recipients are checked, then it is created and run now
    tabs.get_by_role("link", name="Schedules").click()
    expect(page.get_by_role("table", name="Schedules")).to_contain_text("No scheduled reports yet")
    page.get_by_role("link", name="+ New schedule").click()
    form = page.get_by_role("form", name="New schedule")
    form.get_by_label("Name", exact=True).fill("Director weekly")
    form.get_by_label("Cadence").select_option("weekly")
    form.get_by_label("Recipients").fill("director@golf.example, not-an-email")
    form.get_by_role("button", name="Create schedule").click()
    expect(form).to_contain_text("Not an email address: not-an-email.")
    expect(form.get_by_label("Recipients")).to_have_attribute("aria-invalid", "true")
    form.get_by_label("Recipients").fill("director@golf.example\nenergy@golf.example")
    form.get_by_role("button", name="Create schedule").click()
    expect(page).to_have_url(re.compile(rf"/f/{GOLF.slug}/reports/schedules$"))
    row = page.get_by_role("table", name="Schedules").locator('tr[data-schedule="Director weekly"]')
    expect(row.locator(".report-recipients div")).to_have_text(["director@golf.example", "energy@golf.example"])
    expect(row).to_contain_text("Weekly")
    monday = today + timedelta(days=7 - today.weekday())
    expect(row).to_contain_text(f"{monday.day} {monday:%b} {monday.year}, 01:00")  # an hour after the week ends
    expect(row).to_contain_text("Not run yet")
    screenshot("report-schedules")
    row.get_by_role("button", name="Run Director weekly now").click()
    expect(page).to_have_url(re.compile(rf"/reports/{UUID}$"))
    scheduled_url = page.url
    expect(page.locator(".page-header")).to_contain_text("Director weekly")
    # This platform has no SMTP server: the report is made and stays downloadable; that it could
    # not be emailed is said on the report (and a system alert tells the super admins).
    wait_for_state(page, "succeeded")
    expect(page.get_by_test_id("report-email-error")).to_contain_text("email is not configured")
    screenshot("report-scheduled-not-emailed")
    tabs.get_by_role("link", name="History").click()
    scheduled = page.get_by_role("table", name="Reports").locator("tbody tr").filter(has_text="Director weekly")
    expect(scheduled).to_contain_text("Scheduled")
    expect(scheduled).to_have_attribute("data-state", "succeeded")
    screenshot("report-history")
    tabs.get_by_role("link", name="Schedules").click()
    row = page.get_by_role("table", name="Schedules").locator('tr[data-schedule="Director weekly"]')
    expect(row).not_to_contain_text("Not run yet")
    row.get_by_role("link", name=re.compile(r"\d{4}, \d\d:\d\d")).click()
    expect(page).to_have_url(scheduled_url)

    # ---- a user without the reports permission reads the history and downloads (spec 3.2: admins
    # read everything), but cannot request a report or change the settings
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, GOLF.slug, GOLF_READER)
    page.goto(pdf_url)
    wait_for_state(page, "succeeded")
    tabs = page.get_by_role("navigation", name="Reports sections")
    expect(tabs.get_by_role("link", name="New report")).to_have_count(0)
    with page.expect_download() as reader_download:
        page.get_by_role("button", name="Download PDF").click()
    assert Path(reader_download.value.path()).read_bytes().startswith(b"%PDF")
    tabs.get_by_role("link", name="Settings").click()
    expect(page.get_by_text("Read only: needs the reports permission")).to_be_visible()
    expect(page.get_by_label("Price per kWh")).to_be_disabled()
    expect(page.get_by_role("button", name="Save settings")).to_have_count(0)
    report_id = pdf_url.rsplit("/", 1)[1]
    reader = api.auth(api.login(GOLF.slug, GOLF_READER))
    assert api.client.get(f"/reports/{report_id}/download", headers=reader).status_code == 200
    assert api.client.post("/reports", headers=reader, json={"preset": "last_7_days"}).status_code == 403
    print(f"reports journey: {time.monotonic() - began:.1f} s")
