"""Retention journey through the portal: the super admin of Hotel Hydraulics keeps raw points a week
instead of the platform's 30 days, is warned before it deletes anything, is told the platform's
maximum when asking for more, and the worker of the running platform then deletes the older raw
points (the 1-minute rollups of those days stay). An admin sees the same page read-only.

History is written with its own timestamps straight into the platform's embedded time-series
store, as the reports journey does (an MQTT message is stamped with its arrival time).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest
from playwright.sync_api import Page, expect
from portal_support import Account, ApiHelper, FactorySpec, open_from_nav, sign_in

from factoryops.ports.timeseries.base import FactoryScope, Point
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore

pytestmark = pytest.mark.e2e

HOTEL = FactorySpec(
    name="Hotel Hydraulics",
    slug="hotel-hydraulics",
    timezone="Europe/Vienna",
    description="Hydraulic presses",
    super_admin=Account("hanna.keep@hotel.example", "Hanna Keep", "Pressure-2026x"),
)
HOTEL_READER = Account("ivo.look@hotel.example", "Ivo Look", "Justlook-2026x")
SWEEP_TIMEOUT_S = 120.0  # the worker looks for due factories every minute


class Platform(Protocol):
    base_url: str
    data_dir: Path


def seed_history(api: ApiHelper, platform: Platform) -> tuple[str, datetime, datetime]:
    """An hour of minute readings 12 days ago and one 2 days ago; answers the factory id and both hours."""
    api.ensure_factory(HOTEL)
    headers = api.auth(api.login(HOTEL.slug, HOTEL.super_admin))
    factory_id = str(api._ok(api.client.get("/factory", headers=headers))["id"])
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    old, recent = now - timedelta(days=12), now - timedelta(days=2)
    points = [
        Point("press-1", "pressure_bar", hour + i * timedelta(minutes=1), 200.0)
        for hour in (old, recent)
        for i in range(60)
    ]
    store = EmbeddedTimeseriesStore(platform.data_dir / "timeseries")
    try:
        assert store.write(FactoryScope(factory_id), points) == 120
        store.compact()
    finally:
        store.close()
    return factory_id, old, recent


def stored(platform: Platform, factory_id: str, start: datetime, resolution: str) -> int:
    """How many raw points (or 1-minute rollup rows) the store holds in the hour from ``start``."""
    store = EmbeddedTimeseriesStore(platform.data_dir / "timeseries")
    try:
        scope, end = FactoryScope(factory_id), start + timedelta(hours=1)
        if resolution == "raw":
            result = store.query(scope, ["press-1"], None, start, end)
        else:
            result = store.query(scope, ["press-1"], None, start, end, aggregate="count", interval=timedelta(minutes=1))
        return sum(len(s) for s in result.series.values())
    finally:
        store.close()


def test_retention_is_shortened_with_a_warning_enforced_by_the_worker_and_read_only_for_admins(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    factory_id, old, recent = seed_history(api, platform)
    api.ensure_user(HOTEL, HOTEL_READER, permissions=[])
    assert stored(platform, factory_id, old, "raw") == 60

    sign_in(page, HOTEL.slug, HOTEL.super_admin)
    open_from_nav(page, "Data retention")
    expect(page).to_have_url(re.compile(rf"/f/{HOTEL.slug}/retention$"))
    expect(page.get_by_role("heading", name="Data retention")).to_be_visible()
    table = page.get_by_role("table", name="Retention")
    raw_row = table.get_by_role("row").filter(has_text="Raw points")
    expect(raw_row).to_contain_text("30 days")
    expect(table.get_by_role("row").filter(has_text="1-hour rollups")).to_contain_text("forever")

    form = page.get_by_role("form", name="Data retention")
    raw = form.get_by_label("Raw points (days)")
    expect(raw).to_have_attribute("placeholder", "30")

    # More than the platform keeps: refused at the field, nothing saved.
    raw.fill("45")
    form.get_by_role("button", name="Save retention").click()
    expect(raw).to_have_attribute("aria-invalid", "true")
    expect(form).to_contain_text("At most 30 days, the platform's maximum")

    # Out of order: the API's answer is shown at the 1-minute field.
    raw.fill("")
    form.get_by_label("1-minute rollups (days)").fill("7")
    form.get_by_role("button", name="Save retention").click()
    expect(form.get_by_label("1-minute rollups (days)")).to_have_attribute("aria-invalid", "true")
    expect(form).to_contain_text("Raw points would be kept 30 days but 1-minute rollups only 7 days")

    # A week of raw points: warned first, then saved.
    form.get_by_label("1-minute rollups (days)").fill("")
    raw.fill("7")
    form.get_by_role("button", name="Save retention").click()
    dialog = page.get_by_role("dialog", name="Delete older telemetry?")
    expect(dialog).to_contain_text("Raw points older than 7 days (kept 30 days until now)")
    screenshot("retention-confirm")
    dialog.get_by_role("button", name="Delete and save").click()
    expect(page.get_by_text("Saved. Older data is deleted within a few minutes.")).to_be_visible()
    expect(raw_row).to_contain_text("7 days")
    expect(raw_row).to_contain_text("own")
    expect(page.get_by_text(f"Last changed by {HOTEL.super_admin.email}")).to_be_visible()

    # The platform's worker deletes the raw points older than a week; their minute rollups stay.
    deadline = time.monotonic() + SWEEP_TIMEOUT_S
    while time.monotonic() < deadline and stored(platform, factory_id, old, "raw"):
        time.sleep(1)
    assert stored(platform, factory_id, old, "raw") == 0
    assert stored(platform, factory_id, old, "1m") == 60
    assert stored(platform, factory_id, recent, "raw") == 60
    page.reload()
    expect(page.get_by_text("Older data last deleted")).to_be_visible()
    screenshot("retention-page")

    # An admin reads the same page but cannot change it.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, HOTEL.slug, HOTEL_READER)
    open_from_nav(page, "Data retention")
    expect(page.get_by_text("Read only: super admin")).to_be_visible()
    expect(
        page.get_by_role("table", name="Retention").get_by_role("row").filter(has_text="Raw points")
    ).to_contain_text("7 days")
    expect(page.get_by_role("form", name="Data retention").get_by_label("Raw points (days)")).to_be_disabled()
    expect(page.get_by_role("button", name="Save retention")).to_have_count(0)
