"""Analytics journey through the portal: export a dataset, a standard anomaly run, a co-pilot
forecast, a failed run retried, scoring with a saved model version, comparing runs, the banner
when the object store is unreachable, and what a read-only user sees.

Everything happens in Foxtrot Metals, a factory of this journey's own (see portal_support for
why). Its meter has three weeks of 15-minute history: the steel mill's real readings from
``../shared/datasets``, written with their own timestamps (ending half an hour ago) straight into
the platform's embedded time-series store, the SQLite file in the platform's data folder (a
device's MQTT message is stamped with its arrival time, so MQTT cannot bring history). The
meter's properties are discovered the ordinary way, by one MQTT message.
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Locator, Page, expect
from portal_support import Account, ApiHelper, FactorySpec, create_device, publish_values, sign_in

from factoryops.ports.timeseries.base import FactoryScope, Point
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore

pytestmark = pytest.mark.e2e

FOXTROT = FactorySpec(
    name="Foxtrot Metals",
    slug="foxtrot-metals",
    timezone="Europe/Berlin",
    description="Electric arc furnace and rolling",
    super_admin=Account("lena.chief@foxtrot.example", "Lena Chief", "Smelting-2026x"),
)
FOXTROT_ANALYST = Account("omar.models@foxtrot.example", "Omar Models", "Forecasts-2026x")
FOXTROT_READER = Account("ines.views@foxtrot.example", "Ines Views", "Readings-2026x")

DEVICE = "mill-meter"
STEEL_COLUMNS = {
    "Usage_kWh": "usage_kwh",
    "Lagging_Current_Reactive_Power_kVarh": "reactive_kvarh",
    "CO2(tCO2)": "co2_tco2",
    "Lagging_Current_Power_Factor": "power_factor",
}
STEP = timedelta(minutes=15)
DAYS = 21
ROWS = DAYS * 96
NEWER_ROWS = 2 * 96  # two more days of the meter, for a newer dataset to score a saved model on
RUN_TIMEOUT_MS = 90_000
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class Platform(Protocol):
    base_url: str
    mqtt_port: int
    data_dir: Path


def datasets_dir() -> Path:
    for candidate in (
        os.environ.get("FACTORYOPS_DATASETS"),
        str(Path(__file__).resolve().parents[3] / "shared" / "datasets"),
        "/work/shared/datasets",
    ):
        if candidate and (Path(candidate) / "steel_industry_energy_2018.csv").exists():
            return Path(candidate)
    pytest.fail("the shared data sets are missing (set FACTORYOPS_DATASETS)", pytrace=False)


def steel_rows(n: int) -> list[dict[str, float]]:
    """The first ``n`` rows of the steel mill's meter, under this journey's property names."""
    out: list[dict[str, float]] = []
    with (datasets_dir() / "steel_industry_energy_2018.csv").open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            out.append({name: float(row[col]) for col, name in STEEL_COLUMNS.items()})
            if len(out) == n:
                break
    return out


def local_input(ts: datetime, zone: str) -> str:
    """The value a datetime-local input shows for ``ts`` in the factory's zone."""
    return ts.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def seed_history(api: ApiHelper, platform: Platform) -> tuple[datetime, datetime, datetime]:
    """The meter, its discovered properties, three weeks of history and two days after them; answers
    the start, the end of the three weeks and the end of the two days."""
    api.ensure_factory(FOXTROT)
    headers = api.auth(api.login(FOXTROT.slug, FOXTROT.super_admin))
    factory_id = api._ok(api.client.get("/factory", headers=headers))["id"]
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    end = end - timedelta(minutes=end.minute % 15) - timedelta(minutes=30)
    start = end - STEP * (ROWS + NEWER_ROWS)
    if api.client.get(f"/devices/{DEVICE}", headers=headers).status_code != 200:
        create_device(api, FOXTROT, DEVICE, name="Mill main meter", type="energy-meter")
        # One live message makes the platform discover the four properties (stamped now, after `end`).
        publish_values(api, FOXTROT, platform.mqtt_port, DEVICE, [dict.fromkeys(STEEL_COLUMNS.values(), 1.0)], gap_s=0)
    store = EmbeddedTimeseriesStore(platform.data_dir / "timeseries")
    try:
        points = [
            Point(DEVICE, name, start + STEP * i, value)
            for i, row in enumerate(steel_rows(ROWS + NEWER_ROWS))
            for name, value in row.items()
        ]
        assert store.write(FactoryScope(factory_id), points) == len(points)
    finally:
        store.close()
    return start, start + STEP * ROWS, end


def wait_for_run(page: Page, state: str = "succeeded") -> None:
    expect(page.locator(f'.page-header .analytics-state[data-state="{state}"]')).to_be_visible(timeout=RUN_TIMEOUT_MS)


def run_id_of(page: Page) -> str:
    match = re.search(rf"/analytics/runs/({UUID})$", page.url)
    assert match, page.url
    return match.group(1)


def fill_dataset_form(page: Page, name: str, start: datetime, end: datetime) -> Locator:
    form = page.get_by_role("form", name="New dataset")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Search devices").fill(DEVICE)
    form.get_by_role("button", name=f"Add {DEVICE}").click()
    expect(form.get_by_role("list", name="Chosen devices")).to_contain_text(DEVICE)
    props = form.get_by_role("group", name="Properties")
    for prop in STEEL_COLUMNS.values():
        expect(props.get_by_label(prop, exact=True)).to_be_visible()
    form.get_by_label("Start", exact=True).fill(local_input(start, FOXTROT.timezone))
    form.get_by_label("End", exact=True).fill(local_input(end, FOXTROT.timezone))
    expect(form.get_by_label("Resolution")).to_have_value("15m")
    return form


def test_analytics_export_runs_copilot_scoring_and_compare(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_user(FOXTROT, FOXTROT_ANALYST, permissions=["analytics"])
    api.ensure_user(FOXTROT, FOXTROT_READER, permissions=[])
    start, end, newest = seed_history(api, platform)

    sign_in(page, FOXTROT.slug, FOXTROT_ANALYST)
    page.get_by_role("navigation", name="Factory navigation").get_by_role("link", name="Analytics").click()
    expect(page).to_have_url(re.compile(rf"/f/{FOXTROT.slug}/analytics/datasets$"))
    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible()
    expect(page.get_by_test_id("analytics-unavailable")).to_have_count(0)

    # ---- a dataset: three weeks of the meter at 15 minutes, every property it reports
    page.get_by_role("button", name="+ New dataset").click()
    form = fill_dataset_form(page, "Mill, three weeks", start, end)
    form.get_by_role("button", name="Export dataset").click()
    expect(page).to_have_url(re.compile(rf"/f/{FOXTROT.slug}/analytics/datasets/{UUID}$"))
    dataset_url = page.url
    expect(page.locator('.page-header .analytics-state[data-state="ready"]')).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("dataset-rows")).to_contain_text(f"{ROWS * len(STEEL_COLUMNS):,} values")
    manifest = page.get_by_test_id("dataset-manifest")
    expect(manifest).to_contain_text(DEVICE)
    expect(manifest.locator(".analytics-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    stats = page.get_by_role("table", name="Series statistics")
    expect(stats.locator("tbody tr")).to_have_count(len(STEEL_COLUMNS))
    expect(stats).to_contain_text("usage_kwh")
    preview = page.get_by_role("table", name="Dataset preview")
    expect(preview.locator("tbody tr")).to_have_count(50)
    expect(preview.locator("thead")).to_contain_text("usage_kwh")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download Parquet").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".parquet")
    data = Path(download.path()).read_bytes()
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1", "the download is not a Parquet file"
    screenshot("analytics-dataset")

    # The same request again is answered by the existing snapshot.
    page.get_by_role("navigation", name="Analytics sections").get_by_role("link", name="Datasets").click()
    listed = page.get_by_role("table", name="Datasets").locator('tr[data-dataset="Mill, three weeks"]')
    expect(listed).to_contain_text("Ready")
    page.get_by_role("button", name="+ New dataset").click()
    form = fill_dataset_form(page, "Mill again", start, end)
    form.get_by_role("button", name="Export dataset").click()
    expect(page.get_by_text("Reused existing snapshot")).to_be_visible()
    expect(page).to_have_url(dataset_url)

    # ---- a standard anomaly run: isolation forest on usage_kwh
    page.get_by_role("button", name="New run on this dataset").click()
    form = page.get_by_role("form", name="New run")
    expect(form.get_by_role("button", name="Standard")).to_have_attribute("aria-pressed", "true")
    expect(form.get_by_role("button", name="Anomaly detection")).to_have_attribute("aria-pressed", "true")
    form.get_by_label("Model", exact=True).select_option("isolation_forest")
    params = form.get_by_role("group", name="Hyperparameters")
    expect(params.get_by_label("contamination")).to_have_attribute("placeholder", "0.01")
    form.get_by_label("Target column").select_option("usage_kwh")
    form.get_by_label("Registry name").fill("mill-anomaly")
    # A value outside the catalogue's range is refused next to its input, before anything starts.
    params.get_by_label("n_estimators").fill("5")
    form.get_by_role("button", name="Start run").click()
    expect(params).to_contain_text("At least 50.")
    params.get_by_label("n_estimators").fill("100")
    form.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(rf"/analytics/runs/{UUID}$"))
    anomaly_run = run_id_of(page)
    wait_for_run(page)
    expect(page.get_by_role("progressbar", name="Run progress")).to_have_attribute("aria-valuenow", "100")
    chart = page.get_by_test_id("analytics-chart")
    expect(chart).to_be_visible()
    markers = chart.get_by_test_id("anomaly-marker")
    expect(markers.first).to_be_visible()
    assert markers.count() >= 5, f"only {markers.count()} anomaly markers on 2,016 points at 1 % contamination"
    expect(page.get_by_test_id("run-metrics").locator('[data-metric="n_anomalies"]')).to_be_visible()
    expect(page.get_by_test_id("run-summary")).not_to_be_empty()
    expect(page.get_by_role("button", name="Score a newer dataset")).to_be_visible()
    expect(page.locator(".page-header")).to_contain_text("saved as mill-anomaly v1")
    screenshot("analytics-anomaly-run")

    # ---- a run that cannot work fails with its reason, and is retried from its page
    page.get_by_role("navigation", name="Analytics sections").get_by_role("link", name="Runs").click()
    page.get_by_role("button", name="+ New run").click()
    form = page.get_by_role("form", name="New run")
    form.get_by_role("button", name="Forecast").click()
    form.get_by_label("Model", exact=True).select_option("seasonal_naive")
    form.get_by_label("Target column").select_option("usage_kwh")
    form.get_by_label("Horizon (steps ahead)").fill("5000")  # 52 days ahead of 21 days of history
    form.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(rf"/analytics/runs/{UUID}$"))
    failed_run = run_id_of(page)
    wait_for_run(page, "failed")
    expect(page.get_by_test_id("run-error")).to_contain_text("this data set has 21 days")
    analyst = api.auth(api.login(FOXTROT.slug, FOXTROT_ANALYST))
    first_end = api._ok(api.client.get(f"/analytics/runs/{failed_run}", headers=analyst))["finished_at"]
    page.get_by_role("group", name="Run actions").get_by_role("button", name="Retry").click()
    deadline = time.monotonic() + 30
    while True:
        retried = api._ok(api.client.get(f"/analytics/runs/{failed_run}", headers=analyst))
        if retried["state"] == "failed" and retried["finished_at"] != first_end:
            break
        assert time.monotonic() < deadline, f"the retried run did not fail again: {retried['state']}"
        time.sleep(0.3)
    wait_for_run(page, "failed")
    expect(page.get_by_test_id("run-error")).to_contain_text("this data set has 21 days")

    # ---- an AI co-pilot forecast of usage_kwh with a 20 s budget
    page.get_by_role("navigation", name="Analytics sections").get_by_role("link", name="Runs").click()
    page.get_by_role("button", name="+ New run").click()
    form = page.get_by_role("form", name="New run")
    form.get_by_role("button", name="AI co-pilot").click()
    form.get_by_role("button", name="Forecast").click()
    form.get_by_label("Target column").select_option("usage_kwh")
    expect(form.get_by_label("Time budget (seconds)")).to_have_value("300")
    form.get_by_label("Time budget (seconds)").fill("20")
    form.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(rf"/analytics/runs/{UUID}$"))
    copilot_run = run_id_of(page)
    # Live progress while it searches: the bar stands between 0 and 100, with the co-pilot's message.
    expect(page.get_by_role("progressbar", name="Run progress")).to_have_attribute(
        "aria-valuenow", re.compile(r"^[1-9][0-9]?$"), timeout=30_000
    )
    expect(page.get_by_test_id("progress-message")).not_to_be_empty()
    wait_for_run(page)
    leaderboard = page.get_by_role("table", name="Leaderboard")
    expect(leaderboard).to_be_visible()
    assert leaderboard.locator("tbody tr").count() >= 2, "the co-pilot compared fewer than two candidates"
    expect(page.get_by_role("table", name="Feature report")).to_be_visible()
    expect(page.get_by_test_id("run-summary")).not_to_be_empty()
    expect(page.get_by_test_id("beats-naive")).to_contain_text("seasonal naive")
    forecast_chart = page.get_by_test_id("analytics-chart")
    expect(forecast_chart.locator('path[data-series="actual"]')).to_have_count(1)
    expect(forecast_chart.locator("path[data-band]").first).to_be_attached()
    screenshot("analytics-copilot-run")

    # ---- scoring: the saved anomaly model applied to a newer dataset (the two days after)
    page.get_by_role("navigation", name="Analytics sections").get_by_role("link", name="Datasets").click()
    page.get_by_role("button", name="+ New dataset").click()
    form = fill_dataset_form(page, "Mill, the next two days", end, newest)
    form.get_by_role("button", name="Export dataset").click()
    expect(page.locator('.page-header .analytics-state[data-state="ready"]')).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("dataset-rows")).to_contain_text(f"{NEWER_ROWS * len(STEEL_COLUMNS):,} values")
    page.get_by_role("navigation", name="Analytics sections").get_by_role("link", name="Model versions").click()
    version_row = page.get_by_role("table", name="Model versions").locator('tr[data-version="mill-anomaly:1"]')
    expect(version_row.locator('[data-model="isolation_forest"]')).to_have_text("Isolation forest")
    version_row.get_by_role("button", name="Score with mill-anomaly v1").click()
    dialog = page.get_by_role("dialog", name="Score with mill-anomaly v1")
    picker = dialog.get_by_label("Dataset", exact=True)
    expect(picker).to_contain_text("Mill, three weeks")
    expect(picker.locator("option:checked")).to_contain_text("Mill, the next two days")  # newest first
    dialog.get_by_role("button", name="Start scoring run").click()
    expect(page).to_have_url(re.compile(rf"/analytics/runs/{UUID}$"))
    assert run_id_of(page) not in (anomaly_run, copilot_run)
    wait_for_run(page)
    expect(page.locator(".page-header")).to_contain_text("Scoring run")
    expect(page.locator(".page-header")).to_contain_text("applied mill-anomaly v1")
    # Two ordinary days: the chart of the newer data is drawn (anomalies or not).
    expect(page.get_by_test_id("analytics-chart").locator("path[data-series]").first).to_be_attached()

    # ---- compare the anomaly run and the co-pilot forecast
    page.get_by_role("navigation", name="Analytics sections").get_by_role("link", name="Runs").click()
    runs = page.get_by_role("table", name="Runs")
    expect(runs.locator("tbody tr")).to_have_count(4)
    compare = page.get_by_role("button", name="Compare")
    runs.get_by_label(f"Compare run {anomaly_run[:8]}").check()
    expect(compare).to_be_disabled()
    runs.get_by_label(f"Compare run {copilot_run[:8]}").check()
    compare.click()
    table = page.get_by_role("table", name="Run comparison")
    expect(table.locator("thead th[data-run]")).to_have_count(2)
    expect(table.locator('tr[data-metric="n_anomalies"]')).to_be_visible()
    expect(table.locator('tr[data-metric="mae_seasonal_naive"]')).to_be_visible()
    expect(table).to_contain_text("AI co-pilot")
    screenshot("analytics-compare")

    # ---- the object store becomes unreachable: a banner says so, and nothing new can start
    objects = platform.data_dir / "objects"
    away = platform.data_dir / "objects.away"
    objects.rename(away)
    objects.write_text("not a folder any more")  # the store cannot create its folder: unreachable
    try:
        time.sleep(11)  # the API re-checks the store at most every 10 s
        page.goto(f"/f/{FOXTROT.slug}/analytics/datasets")
        expect(page.get_by_test_id("analytics-unavailable")).to_contain_text("object store")
        expect(page.get_by_test_id("analytics-unavailable")).to_contain_text("Telemetry and rules are not affected")
        new_dataset = page.get_by_role("button", name="+ New dataset")
        expect(new_dataset).to_be_disabled()
        expect(new_dataset).to_have_attribute("title", re.compile("object store"))
        screenshot("analytics-paused")
    finally:
        objects.unlink()
        away.rename(objects)

    # ---- a read-only user sees everything and can start nothing
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, FOXTROT.slug, FOXTROT_READER)
    page.goto(f"/f/{FOXTROT.slug}/analytics/datasets")
    expect(page.get_by_text("Read only")).to_be_visible()
    expect(page.get_by_role("button", name="+ New dataset")).to_be_disabled()
    page.goto(f"/f/{FOXTROT.slug}/analytics/runs/{anomaly_run}")
    wait_for_run(page)
    expect(page.get_by_test_id("analytics-chart")).to_be_visible()
    expect(page.get_by_role("group", name="Run actions")).to_have_count(0)
