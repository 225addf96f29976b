"""Device and telemetry journeys through the portal, with real devices publishing over MQTT.

The platform (`python -m factoryops up`) embeds an MQTT broker; the tests publish to it with
paho-mqtt (MQTT 5) as the devices themselves, using the credentials the portal showed or the
API returned, and then look at what the browser shows. Everything happens in Delta Foundry, a
factory of these journeys' own (see portal_support), so that the order of test files does not
matter.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Locator, Page, expect
from portal_support import (
    DELTA,
    DELTA_DEVICES,
    DELTA_READER,
    ApiHelper,
    DevicePublisher,
    create_device,
    sign_in,
)
from portal_support import wait_for as poll

pytestmark = pytest.mark.e2e


class Platform(Protocol):
    """What these journeys use of conftest's `platform` fixture."""

    base_url: str
    mqtt_port: int


# Ingested values reach the store and the registry within a couple of seconds (batch writer and
# a 2-second registry flush); the portal's live stream polls four times a second.
ARRIVAL_TIMEOUT_MS = 12_000


def nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Factory navigation")


def device_row(page: Page, device_id: str) -> Locator:
    return page.get_by_role("table", name="Devices").locator(f'tr[data-device="{device_id}"]')


def property_row(page: Page, name: str) -> Locator:
    return page.get_by_role("table", name="Properties").locator(f'tr[data-property="{name}"]')


def legend_item(page: Page, prop: str) -> Locator:
    return page.get_by_test_id("chart-legend").locator(f'[data-series="{prop}"]')


def legend_points(page: Page, prop: str) -> int:
    return int(legend_item(page, prop).get_attribute("data-points") or "0")


def local_input(epoch: float) -> str:
    """An instant as a datetime-local value in the factory's zone, to the second."""
    return datetime.fromtimestamp(epoch, ZoneInfo(DELTA.timezone)).strftime("%Y-%m-%dT%H:%M:%S")


def wait_for(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    return poll(check, what, timeout, every=0.3)


def test_devices_admin_registers_a_device_and_it_publishes_with_the_shown_credentials(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_user(DELTA, DELTA_DEVICES, permissions=["devices"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    sign_in(page, DELTA.slug, DELTA_DEVICES)
    nav(page).get_by_role("link", name="Devices").click()
    expect(page.get_by_role("heading", name="Devices", exact=True)).to_be_visible()
    expect(page.get_by_text("You can make changes")).to_be_visible()

    page.get_by_role("button", name="Add device").click()
    form = page.get_by_role("form", name="Add device")
    # A malformed id is caught next to its field before anything is sent.
    form.get_by_label("Device ID").fill("press 01")
    form.get_by_role("button", name="Create device").click()
    expect(form.locator(".field-invalid").filter(has_text="Device ID")).to_contain_text("letters, digits")
    form.get_by_label("Device ID").fill("press-01")
    form.get_by_label("Name").fill("Press 1")
    form.get_by_label("Type").fill("hydraulic-press")
    form.get_by_label("Location").fill("Hall A")
    form.get_by_role("button", name="Create device").click()

    # The credentials, shown once, with copy buttons.
    dialog = page.get_by_role("dialog", name="MQTT credentials for press-01")
    expect(dialog).to_contain_text("shown only once")
    keys = ("username", "password", "client_id", "topic")
    mqtt = {key: dialog.get_by_test_id(f"mqtt-{key}").inner_text() for key in keys}
    assert mqtt["topic"].endswith("/devices/press-01/telemetry"), mqtt
    assert len(mqtt["password"]) >= 16, mqtt
    dialog.get_by_role("button", name="Copy password").click()
    expect(dialog.get_by_role("button", name="Copy password")).to_have_text("Copied ✓")
    assert page.evaluate("() => navigator.clipboard.readText()") == mqtt["password"]
    screenshot("device-credentials")
    dialog.get_by_role("button", name="I have stored them").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_text(mqtt["password"])).to_have_count(0)  # never shown again

    row = device_row(page, "press-01")
    expect(row).to_contain_text("Press 1")
    expect(row).to_contain_text("Never seen")

    # The device publishes with exactly what the screen showed.
    published_from = time.time()
    with DevicePublisher(platform.mqtt_port, mqtt) as device:
        for power, volts in ((40.0, 229.1), (41.0, 229.8), (42.5, 230.4)):
            device.publish({"power_kw": power, "voltage_l1": volts})
            time.sleep(1.0)
    published_to = time.time()

    row.get_by_role("link", name="Press 1").click()
    expect(page).to_have_url(re.compile(rf"/f/{DELTA.slug}/devices/press-01$"))
    expect(page.get_by_role("heading", name="Press 1")).to_be_visible()
    expect(page.get_by_test_id("latest-power_kw")).to_have_text("42.5 kW", timeout=ARRIVAL_TIMEOUT_MS)
    expect(page.get_by_test_id("latest-voltage_l1")).to_have_text("230.4 V")

    # The chart shows both properties with their units and every published point.
    expect(legend_item(page, "power_kw")).to_contain_text("(kW)")
    expect(legend_item(page, "voltage_l1")).to_contain_text("(V)")
    expect(legend_item(page, "power_kw")).to_have_attribute("data-points", "3", timeout=ARRIVAL_TIMEOUT_MS)
    expect(legend_item(page, "power_kw")).to_contain_text("42.5 kW")

    chart = page.get_by_role("img", name="Chart of Press 1")
    # A custom range around the burst spreads its points out; hovering shows exact values and times.
    page.get_by_role("group", name="Time range").get_by_role("button", name="Custom").click()
    custom = page.get_by_role("group", name="Custom range")
    custom.get_by_label("From").fill(local_input(published_from - 2))
    custom.get_by_label("To").fill(local_input(published_to + 2))
    custom.get_by_role("button", name="Show").click()
    dots = chart.locator('g[data-series="power_kw"] circle')
    expect(dots).to_have_count(3)
    dots.first.hover()
    expect(page.get_by_test_id("chart-tooltip")).to_contain_text("40 kW")
    dots.last.hover()
    tooltip = page.get_by_test_id("chart-tooltip")
    expect(tooltip).to_contain_text("42.5 kW")
    expect(tooltip).to_contain_text("230.4 V")
    expect(tooltip).to_contain_text(re.compile(r"\d{2}:\d{2}:\d{2}"))
    screenshot("device-page-chart")
    page.mouse.move(0, 0)

    # The device became online; its attributes can be edited.
    expect(page.locator(".device-title")).to_contain_text("Online", timeout=ARRIVAL_TIMEOUT_MS + 30_000)
    page.get_by_role("button", name="Edit device").click()
    edit = page.get_by_role("form", name="Edit device")
    edit.get_by_label("Location").fill("Hall A, bay 3")
    edit.get_by_role("button", name="Save").click()
    expect(page.get_by_label("Device attributes")).to_contain_text("Hall A, bay 3")

    # Rotating the credentials shows a new password once.
    page.get_by_role("button", name="Rotate credentials").click()
    confirm = page.get_by_role("dialog", name="Rotate credentials of press-01")
    confirm.get_by_role("button", name="Rotate credentials").click()
    rotated = page.get_by_role("dialog", name="New MQTT credentials for press-01")
    new_password = rotated.get_by_test_id("mqtt-password").inner_text()
    assert new_password and new_password != mqtt["password"]
    rotated.get_by_role("button", name="I have stored them").click()
    with DevicePublisher(platform.mqtt_port, {**mqtt, "password": new_password}) as device:
        device.publish({"power_kw": 43.0})
    with pytest.raises(AssertionError, match="could not connect"):
        DevicePublisher(platform.mqtt_port, mqtt, retry_s=0)  # the old password no longer works


def test_live_mode_moves_the_chart_and_a_new_metric_appears_by_itself(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_user(DELTA, DELTA_DEVICES, permissions=["devices"])
    device = create_device(api, DELTA, "compressor-02", name="Compressor 2", type="compressor", location="Utility room")

    with DevicePublisher(platform.mqtt_port, device["mqtt"]) as publisher:
        # A compressor cycling: power and current follow its load.
        for i in range(24):
            load = 0.5 + 0.4 * math.sin(i / 3.0)
            publisher.publish({"power_kw": round(18 + 30 * load, 1), "current_a": round(30 + 52 * load, 1)})
            time.sleep(0.25)
        publisher.publish({"power_kw": 35, "current_a": 55})

        sign_in(page, DELTA.slug, DELTA_DEVICES)
        page.goto(f"/f/{DELTA.slug}/devices/compressor-02")
        expect(page.get_by_test_id("latest-power_kw")).to_have_text("35 kW", timeout=ARRIVAL_TIMEOUT_MS)
        expect(legend_item(page, "power_kw")).to_have_attribute("data-points", "25", timeout=ARRIVAL_TIMEOUT_MS)
        page.evaluate("() => { window.__samePage = true; }")

        page.get_by_role("button", name="Go live").click()
        expect(page.get_by_test_id("live-indicator")).to_have_text("Live")
        before = legend_points(page, "power_kw")

        # The moment the value reaches the screen, taken in the page (same clock as this process).
        page.evaluate(
            """() => {
                const legend = document.querySelector('[data-testid="chart-legend"]');
                new MutationObserver((_, observer) => {
                    if (legend.textContent.includes("77.7 kW")) {
                        window.__shownAt = Date.now();
                        observer.disconnect();
                    }
                }).observe(legend, { subtree: true, childList: true, characterData: true });
            }"""
        )
        publisher.publish({"power_kw": 77.7, "current_a": 61})
        acknowledged = time.time()
        expect(legend_item(page, "power_kw")).to_contain_text("77.7 kW", timeout=5_000)
        latency = page.evaluate("() => window.__shownAt") / 1000 - acknowledged
        print(f"live value on screen {latency:.2f} s after the broker's PUBACK")
        assert legend_points(page, "power_kw") == before + 1
        expect(page.get_by_test_id("latest-power_kw")).to_have_text("77.7 kW")

        # A firmware that starts reporting a new metric: the property list grows by itself.
        expect(property_row(page, "temperature_c")).to_have_count(0)
        publisher.publish({"power_kw": 78.1, "temperature_c": 21.5})
        new_row = property_row(page, "temperature_c")
        expect(new_row).to_be_visible(timeout=ARRIVAL_TIMEOUT_MS)
        expect(new_row).to_contain_text("new")
        expect(page.get_by_test_id("latest-temperature_c")).to_have_text("21.5 °C")
        # ... and can be charted at once.
        page.get_by_role("group", name="Properties on the chart").get_by_text("temperature_c").click()
        expect(legend_item(page, "temperature_c")).to_contain_text("(°C)")
        expect(legend_item(page, "temperature_c")).to_contain_text("21.5 °C")

        # More values keep the chart moving.
        for i in range(3):
            publisher.publish({"power_kw": 80 + i, "temperature_c": 22 + i})
            time.sleep(0.6)
        expect(legend_item(page, "power_kw")).to_contain_text("82 kW", timeout=5_000)
        assert page.evaluate("() => window.__samePage === true"), "the page was reloaded"
        screenshot("device-page-live")

    # Dragging across the newest minute or so zooms in (a custom range; live mode ends).
    plot = page.get_by_role("img", name="Chart of Compressor 2").locator("rect.chart-plot").bounding_box()
    assert plot
    middle = plot["y"] + plot["height"] / 2
    page.mouse.move(plot["x"] + plot["width"] - 10, middle)
    page.mouse.down()
    page.mouse.move(plot["x"] + plot["width"] - 5, middle, steps=4)
    page.mouse.move(plot["x"] + plot["width"] - 1, middle, steps=4)
    page.mouse.up()
    expect(page.get_by_role("group", name="Time range").get_by_role("button", name="Custom")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.get_by_role("button", name="Go live")).to_be_disabled()
    expect(legend_item(page, "power_kw")).to_contain_text("82 kW")  # the newest points stay in
    expect(legend_item(page, "temperature_c")).to_contain_text("24 °C")
    page.mouse.move(0, 0)
    screenshot("device-page-zoomed")

    # The range picker asks the server for a longer span (aggregated means).
    page.get_by_role("group", name="Time range").get_by_role("button", name="24h").click()
    expect(page.get_by_text(re.compile(r"Mean per \d+"))).to_be_visible()
    expect(legend_item(page, "power_kw")).not_to_contain_text("no data")


def test_import_csv_reports_the_bad_line_and_offers_the_credentials(
    page: Page, api: ApiHelper, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_user(DELTA, DELTA_DEVICES, permissions=["devices"])
    sign_in(page, DELTA.slug, DELTA_DEVICES)
    nav(page).get_by_role("link", name="Devices").click()

    page.get_by_role("button", name="Import CSV").click()
    dialog = page.get_by_role("dialog", name="Import devices from CSV")
    lines = [
        "device_id,name,type,location",
        "oven-01,Oven 1,furnace,Hall C",
        "bad id!,Broken,furnace,Hall C",
        "oven-02,Oven 2,furnace,Hall C",
    ]
    dialog.get_by_label("CSV file").set_input_files(
        files=[{"name": "ovens.csv", "mimeType": "text/csv", "buffer": ("\n".join(lines) + "\n").encode()}]
    )
    expect(dialog.get_by_label("Or paste the lines")).to_have_value(re.compile("oven-02"))
    dialog.get_by_role("button", name="Import", exact=True).click()

    result = dialog.get_by_test_id("import-result")
    expect(result).to_contain_text("2created")
    expect(result).to_contain_text("1line refused")
    errors = dialog.get_by_role("table", name="Import errors")
    expect(errors.get_by_role("row")).to_have_count(2)  # header + the bad line
    expect(errors).to_contain_text("3")
    expect(errors).to_contain_text("bad id!")
    expect(errors).to_contain_text("A device id is")  # in words, without Pydantic's prefix
    screenshot("devices-import-result")

    with page.expect_download() as info:
        dialog.get_by_role("button", name="Download credentials (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert [r["device_id"] for r in rows] == ["oven-01", "oven-02"]
    assert all(r["mqtt_password"] and r["mqtt_topic"].endswith(f"/devices/{r['device_id']}/telemetry") for r in rows)
    dialog.get_by_role("button", name="Done").click()

    # The new devices are in the list; the filters and the search run on the server.
    expect(device_row(page, "oven-01")).to_contain_text("Never seen")
    page.get_by_label("Filter by type").fill("furnace")
    expect(page.get_by_role("table", name="Devices").locator("tbody tr")).to_have_count(2)
    page.get_by_label("Search devices").fill("oven-02")
    expect(page.get_by_role("table", name="Devices").locator("tbody tr")).to_have_count(1)
    expect(device_row(page, "oven-02")).to_be_visible()
    page.get_by_role("button", name="Clear filters").click()
    page.get_by_label("Filter by status").select_option("online")
    expect(device_row(page, "oven-01")).to_have_count(0)


def test_super_admin_sets_a_property_unit(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    device = create_device(api, DELTA, "hydraulics-03", name="Hydraulics 3", type="pump")
    with DevicePublisher(platform.mqtt_port, device["mqtt"]) as publisher:
        publisher.publish({"line_pressure_kpa": 412.5})
    token = api.login(DELTA.slug, DELTA.super_admin)

    def discovered() -> bool:
        page_ = api.client.get("/properties", headers=api.auth(token), params={"q": "line_pressure"}).json()
        return any(p["name"] == "line_pressure_kpa" for p in page_["items"])

    wait_for(discovered, "the property to be discovered")

    sign_in(page, DELTA.slug, DELTA.super_admin)
    nav(page).get_by_role("link", name="Properties").click()
    expect(page.get_by_role("heading", name="Properties", exact=True)).to_be_visible()
    page.get_by_label("Search properties").fill("line_pressure")
    row = property_row(page, "line_pressure_kpa")
    expect(page.get_by_test_id("unit-line_pressure_kpa")).to_have_text("kPainferred")
    page.get_by_label("Search properties").fill("")
    expect(page.get_by_role("navigation", name="Pagination")).not_to_contain_text("of 1 properties")
    screenshot("properties")
    page.get_by_label("Search properties").fill("line_pressure")

    row.get_by_role("button", name="Edit line_pressure_kpa").click()
    page.get_by_label("Display name of line_pressure_kpa").fill("Line pressure")
    page.get_by_label("Unit of line_pressure_kpa").fill("bar")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved line_pressure_kpa")).to_be_visible()
    expect(page.get_by_test_id("unit-line_pressure_kpa")).to_have_text("bar")  # no longer "inferred"
    expect(row).to_contain_text("Line pressure")

    # It sticks, and the device page uses the new name and unit.
    page.reload()
    page.get_by_label("Search properties").fill("line_pressure")
    expect(page.get_by_test_id("unit-line_pressure_kpa")).to_have_text("bar")
    page.goto(f"/f/{DELTA.slug}/devices/hydraulics-03")
    expect(page.get_by_test_id("latest-line_pressure_kpa")).to_have_text("412.5 bar", timeout=ARRIVAL_TIMEOUT_MS)
    expect(property_row(page, "line_pressure_kpa")).to_contain_text("Line pressure")


def test_invalid_telemetry_shows_in_the_reject_log(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    device = create_device(api, DELTA, "meter-bad-04", name="Meter 4", type="energy-meter")
    with DevicePublisher(platform.mqtt_port, device["mqtt"]) as publisher:
        publisher.publish(b'{"power_kw": 12.5,')
        publisher.publish({"power_kw": "high", "voltage_l1": 231.0})
    token = api.login(DELTA.slug, DELTA.super_admin)
    wait_for(
        lambda: (
            api.client.get("/telemetry/rejects", headers=api.auth(token), params={"device_id": "meter-bad-04"}).json()[
                "total"
            ]
            >= 2
        ),
        "both rejects to be recorded",
    )

    sign_in(page, DELTA.slug, DELTA.super_admin)
    nav(page).get_by_role("link", name="Telemetry rejects").click()
    expect(page.get_by_role("heading", name="Telemetry rejects")).to_be_visible()

    rejects = page.get_by_role("table", name="Rejects")
    invalid = rejects.locator('tr[data-reason="invalid_json"]').filter(has_text="meter-bad-04")
    expect(invalid).to_contain_text("Invalid JSON")
    expect(invalid).to_contain_text('{"power_kw": 12.5,')
    non_numeric = rejects.locator('tr[data-reason="non_numeric"]').filter(has_text="meter-bad-04")
    expect(non_numeric).to_contain_text("power_kw")

    counts = page.get_by_role("table", name="Reject counts")
    count_row = counts.locator('tr[data-device="meter-bad-04"][data-reason="invalid_json"]')
    expect(count_row).to_contain_text("Invalid JSON")
    expect(count_row.locator(".count-bar-value")).to_have_text("1")
    screenshot("telemetry-rejects")

    # The reason filter narrows the latest rejects.
    page.get_by_label("Filter by reason").select_option("invalid_json")
    expect(rejects.locator('tr[data-reason="non_numeric"]')).to_have_count(0)
    expect(invalid).to_be_visible()

    # The good metric of the half-bad message was still stored.
    page.goto(f"/f/{DELTA.slug}/devices/meter-bad-04")
    expect(page.get_by_test_id("latest-voltage_l1")).to_have_text("231 V", timeout=ARRIVAL_TIMEOUT_MS)


def test_admin_without_devices_permission_sees_no_add_or_import(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_user(DELTA, DELTA_READER, permissions=["rules"])
    device = create_device(api, DELTA, "chiller-05", name="Chiller 5", type="chiller", location="Roof")
    with DevicePublisher(platform.mqtt_port, device["mqtt"]) as publisher:
        publisher.publish({"power_kw": 18.2, "supply_temp_c": 6.5})

    sign_in(page, DELTA.slug, DELTA_READER)
    expect(nav(page).get_by_role("link", name="Properties")).to_be_visible()
    expect(nav(page).get_by_role("link", name="Telemetry rejects")).to_have_count(0)
    nav(page).get_by_role("link", name="Devices").click()
    expect(page.get_by_role("heading", name="Devices", exact=True)).to_be_visible()
    expect(page.get_by_text("Read only")).to_be_visible()
    expect(device_row(page, "chiller-05")).to_be_visible()
    expect(page.get_by_role("button", name="Add device")).to_have_count(0)
    expect(page.get_by_role("button", name="Import CSV")).to_have_count(0)

    # The status counts at the top, and a status tile filters the list.
    summary = page.get_by_test_id("device-summary")
    expect(page.get_by_test_id("summary-online").locator(".summary-value")).to_have_text(re.compile(r"^\d+$"))
    expect(device_row(page, "chiller-05")).to_contain_text("Online", timeout=ARRIVAL_TIMEOUT_MS + 20_000)
    page.reload()
    total = page.get_by_test_id("summary-total").locator(".summary-value")
    expect(total).to_have_text(re.compile(r"^[1-9]\d*$"))
    summary.get_by_role("button", name=re.compile("Online")).click()
    expect(device_row(page, "chiller-05")).to_be_visible()
    expect(page.get_by_role("table", name="Devices").get_by_text("Never seen")).to_have_count(0)
    summary.get_by_role("button", name=re.compile("All devices")).click()
    screenshot("devices-list")

    # The device page: values and chart, but no way to change the device.
    device_row(page, "chiller-05").get_by_role("link", name="Chiller 5").click()
    expect(page.get_by_test_id("latest-power_kw")).to_have_text("18.2 kW", timeout=ARRIVAL_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Edit device")).to_have_count(0)
    expect(page.get_by_role("button", name="Rotate credentials")).to_have_count(0)

    # Property settings and the reject log are the super admin's.
    nav(page).get_by_role("link", name="Properties").click()
    expect(page.get_by_role("table", name="Properties")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Edit "))).to_have_count(0)
    page.goto(f"/f/{DELTA.slug}/telemetry-rejects")
    expect(page.get_by_text("You don't have access to the telemetry reject log")).to_be_visible()
    expect(page.get_by_role("table", name="Rejects")).to_have_count(0)
