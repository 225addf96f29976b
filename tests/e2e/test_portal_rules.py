"""Rules journeys through the portal: the builder, the list in words, permissions and the backtest.

Everything happens in Echo Plastics, a factory of these journeys' own (see portal_support). The
properties a rule may name are the ones the factory's devices have reported, so each journey
first has its devices publish over MQTT to the platform's embedded broker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from playwright.sync_api import Locator, Page, expect
from portal_support import ECHO, ECHO_READER, ECHO_RULES, ApiHelper, create_device, publish_values, sign_in

pytestmark = pytest.mark.e2e


class Platform(Protocol):
    base_url: str
    mqtt_port: int


def open_rules(page: Page) -> None:
    page.get_by_role("navigation", name="Factory navigation").get_by_role("link", name="Rules").click()
    expect(page.get_by_role("heading", name="Rules", exact=True)).to_be_visible()


def rule_row(page: Page, name: str) -> Locator:
    return page.get_by_role("table", name="Rules").locator(f'tr[data-rule="{name}"]')


def super_headers(api: ApiHelper) -> dict[str, str]:
    return api.auth(api.login(ECHO.slug, ECHO.super_admin))


def find_rule(api: ApiHelper, name: str) -> dict[str, Any] | None:
    page = api._ok(api.client.get("/rules", headers=super_headers(api), params={"q": name}))
    return next((r for r in page["items"] if r["name"] == name), None)


def ensure_extruder(api: ApiHelper, platform: Platform) -> None:
    """A device of type "extruder" that has reported power_kw and temp_c."""
    api.ensure_factory(ECHO)
    headers = super_headers(api)
    if api.client.get("/devices/extruder-1", headers=headers).status_code != 200:
        create_device(api, ECHO, "extruder-1", name="Extruder 1", type="extruder")
        publish_values(api, ECHO, platform.mqtt_port, "extruder-1", [{"power_kw": 80.0, "temp_c": 180.0}])


def condition(scope: Locator, number: str) -> Locator:
    return scope.get_by_role("group", name=f"Condition, {number}", exact=True)


def test_rules_admin_builds_a_nested_scheduled_rule_fixes_a_bad_range_and_disables_it(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_user(ECHO, ECHO_RULES, permissions=["rules"])
    ensure_extruder(api, platform)

    sign_in(page, ECHO.slug, ECHO_RULES)
    open_rules(page)
    expect(page.get_by_text("You can make changes")).to_be_visible()
    page.get_by_role("link", name="New rule").click()
    expect(page).to_have_url(re.compile(rf"/f/{ECHO.slug}/rules/new$"))
    form = page.get_by_role("form", name="New rule")

    form.get_by_label("Name", exact=True).fill("Extruder overload")
    form.get_by_label("Severity").select_option("critical")
    form.get_by_role("group", name="Applies to").get_by_role("button", name="Device type").click()
    form.get_by_label("Device type").fill("extruder")

    # Root: power_kw > 100 holding for 5 minutes ...
    first = condition(form, "condition 1")
    first.get_by_label("Property", exact=True).fill("power_kw")
    first.get_by_label("Operator", exact=True).select_option(">")
    first.get_by_label("Value", exact=True).fill("100")
    first.get_by_label("Holds for", exact=True).fill("5")
    first.get_by_label("Holds for unit").select_option(label="min")
    # ... AND a nested OR group: temp_c between 200 and 150 (an impossible range) OR temp_c > 250.
    root = form.get_by_role("group", name="Condition", exact=True)
    root.get_by_role("button", name="+ Group").first.click()
    nested = form.get_by_role("group", name="Condition, group 2", exact=True)
    expect(nested.get_by_role("button", name="Any of (OR)")).to_have_attribute("aria-pressed", "true")
    bad = condition(nested, "group 2, condition 1")
    bad.get_by_label("Property", exact=True).fill("temp_c")
    bad.get_by_label("Operator", exact=True).select_option("between")
    bad.get_by_label("From", exact=True).fill("200")
    bad.get_by_label("To", exact=True).fill("150")
    nested.get_by_role("button", name="+ Condition").click()
    hot = condition(nested, "group 2, condition 2")
    hot.get_by_label("Property", exact=True).fill("temp_f")  # no device reports this one
    hot.get_by_label("Operator", exact=True).select_option(">")
    hot.get_by_label("Value", exact=True).fill("250")
    expect(form.get_by_test_id("condition-words")).to_contain_text(
        "power_kw > 100 for 5 min AND (temp_c between 200 and 150 OR temp_f > 250)"
    )
    expect(hot).to_contain_text("No device of this factory has reported “temp_f” yet.")

    # Weekdays, 22:00-06:00: a window across midnight.
    form.get_by_role("group", name="Schedule").get_by_role("button", name="Only at set times").click()
    days = form.get_by_role("group", name="Days")
    days.get_by_label("Sat").uncheck()
    days.get_by_label("Sun").uncheck()
    form.get_by_role("button", name="+ Time window").click()
    window = form.get_by_role("group", name="Time window 1")
    window.get_by_label("Start", exact=True).fill("22:00")
    window.get_by_label("End", exact=True).fill("06:00")
    expect(window).to_contain_text("runs past midnight")
    expect(form).to_contain_text("Europe/Berlin")

    form.get_by_label("Emails", exact=True).fill("shift-lead@echo.example")
    form.get_by_label("Emails", exact=True).press("Enter")
    form.get_by_label("WhatsApp numbers", exact=True).fill("12345")
    form.get_by_label("WhatsApp numbers", exact=True).press("Enter")
    expect(form).to_contain_text("is not an E.164 number")
    form.get_by_label("WhatsApp numbers", exact=True).fill("+4915112345678")
    form.get_by_label("WhatsApp numbers", exact=True).press("Enter")
    expect(form.get_by_role("list", name="WhatsApp numbers added")).to_contain_text("+4915112345678")

    # The JSON preview shows the definition as it will be sent.
    form.get_by_role("button", name="Show the JSON definition").click()
    preview = form.get_by_test_id("rule-json")
    expect(preview).to_contain_text('"op": "or"')
    expect(preview).to_contain_text('"start": "22:00"')

    # Saving: the API refuses the impossible range, and the portal says so at that condition.
    form.get_by_role("button", name="Create rule").click()
    top = form.get_by_role("alert").first
    expect(top).to_contain_text("The rule was not saved")
    expect(top).to_contain_text(re.compile("Condition, group 2, condition 1: impossible range", re.I))
    expect(bad).to_contain_text(re.compile("impossible range", re.I))
    expect(bad.get_by_label("To", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(first).not_to_contain_text(re.compile("impossible range", re.I))
    expect(hot).not_to_contain_text(re.compile("impossible range", re.I))
    screenshot("rule-builder-422")
    assert find_rule(api, "Extruder overload") is None

    bad.get_by_label("To", exact=True).fill("250")
    form.get_by_role("button", name="Create rule").click()
    # Next the API checks the rule against the factory: temp_f is unknown, said at its condition.
    expect(hot.locator(".field-error")).to_contain_text(re.compile("unknown property 'temp_f'", re.I))
    expect(bad).not_to_contain_text(re.compile("impossible range", re.I))
    expect(bad.locator(".field-error")).to_have_count(0)
    expect(form.get_by_role("alert").first).to_contain_text("temp_f")
    hot.get_by_label("Property", exact=True).fill("temp_c")
    form.get_by_role("button", name="Create rule").click()
    expect(page).to_have_url(re.compile(rf"/f/{ECHO.slug}/rules$"))
    expect(page.get_by_text("Rule “Extruder overload” created.")).to_be_visible()
    page.reload()  # the flash came with the navigation and does not outlive a reload
    expect(rule_row(page, "Extruder overload")).to_be_visible()
    expect(page.get_by_text("Rule “Extruder overload” created.")).to_have_count(0)

    # The list tells the rule in words.
    row = rule_row(page, "Extruder overload")
    expect(row.get_by_test_id("rule-condition")).to_have_text(
        "power_kw > 100 for 5 min AND (temp_c between 200 and 250 OR temp_c > 250)"
    )
    expect(row).to_contain_text("Devices of type extruder")
    expect(row).to_contain_text("Mon, Tue, Wed, Thu, Fri, 22:00\u201306:00 (past midnight)")
    expect(row).to_contain_text("Critical")
    switch = row.get_by_role("switch", name="Enabled: Extruder overload")
    expect(switch).to_be_checked()
    expect(row.locator("td.num")).to_have_text("1")
    screenshot("rules-list")

    stored = find_rule(api, "Extruder overload")
    assert stored is not None
    definition = stored["definition"]
    assert definition["schedule"] == {"days": [0, 1, 2, 3, 4], "windows": [{"start": "22:00", "end": "06:00"}]}
    assert definition["condition"]["op"] == "and"
    assert definition["condition"]["conditions"][0] == {
        **definition["condition"]["conditions"][0],
        "property": "power_kw",
        "operator": ">",
        "value": 100,
        "for_seconds": 300,
    }
    nested_group = definition["condition"]["conditions"][1]
    assert nested_group["op"] == "or" and len(nested_group["conditions"]) == 2
    assert definition["notify"]["emails"] == ["shift-lead@echo.example"]
    assert definition["notify"]["whatsapp"] == ["+4915112345678"]
    assert definition["severity"] == "critical" and stored["enabled"] is True

    # Disabling it from the list.
    switch.click()
    expect(page.get_by_text("Rule “Extruder overload” disabled.")).to_be_visible()
    expect(switch).not_to_be_checked()
    expect(row.locator("td.num")).to_have_text("2")
    stored = find_rule(api, "Extruder overload")
    assert stored is not None and stored["enabled"] is False and stored["version"] == 2
    page.reload()
    expect(rule_row(page, "Extruder overload").get_by_role("switch")).not_to_be_checked()

    # The list's filters: a disabled rule is not among the enabled ones; search by name.
    page.get_by_label("Filter by enabled").select_option("true")
    expect(page.get_by_role("table", name="Rules")).to_contain_text("No rules match these filters.")
    page.get_by_label("Filter by enabled").select_option("false")
    expect(rule_row(page, "Extruder overload")).to_be_visible()
    page.get_by_label("Search rules").fill("no such rule")
    expect(page.get_by_role("table", name="Rules")).to_contain_text("No rules match these filters.")
    page.get_by_label("Search rules").fill("overload")
    expect(rule_row(page, "Extruder overload")).to_be_visible()

    # The builder shows the saved rule again.
    rule_row(page, "Extruder overload").get_by_role("link", name="Extruder overload").click()
    edit = page.get_by_role("form", name="Edit rule")
    expect(edit.get_by_label("Name", exact=True)).to_have_value("Extruder overload")
    expect(edit.get_by_role("group", name="Time window 1").get_by_label("Start", exact=True)).to_have_value("22:00")
    expect(condition(edit, "group 2, condition 1").get_by_label("To", exact=True)).to_have_value("250")
    expect(edit.get_by_label("Enabled", exact=True)).not_to_be_checked()


def test_reader_sees_rules_without_edit_controls(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_user(ECHO, ECHO_READER, permissions=[])
    ensure_extruder(api, platform)
    if find_rule(api, "Cold extruder") is None:
        api._ok(
            api.client.post(
                "/rules",
                headers=super_headers(api),
                json={
                    "name": "Cold extruder",
                    "definition": {
                        "scope": {"kind": "device", "device_ids": ["extruder-1"]},
                        "condition": {"property": "temp_c", "operator": "<", "value": 120},
                        "severity": "info",
                    },
                },
            )
        )

    sign_in(page, ECHO.slug, ECHO_READER)
    open_rules(page)
    expect(page.get_by_text("Read only")).to_be_visible()
    expect(page.get_by_role("link", name="New rule")).to_have_count(0)
    row = rule_row(page, "Cold extruder")
    expect(row.get_by_test_id("rule-condition")).to_have_text("temp_c < 120")
    expect(row).to_contain_text("Device extruder-1")
    expect(row).to_contain_text("Info")
    expect(row).to_contain_text("Enabled")
    expect(page.get_by_role("switch")).to_have_count(0)

    row.get_by_role("link", name="Cold extruder").click()
    expect(page.get_by_test_id("rule-words")).to_contain_text("temp_c < 120")
    form = page.get_by_role("form", name="Edit rule")
    expect(form.get_by_label("Name", exact=True)).to_be_disabled()
    expect(form.get_by_label("Property", exact=True)).to_be_disabled()
    expect(form.get_by_role("button", name="Save rule")).to_have_count(0)
    expect(form.get_by_role("button", name="+ Condition")).to_have_count(0)
    expect(page.get_by_role("button", name="Run backtest")).to_have_count(0)
    screenshot("rule-read-only")

    # Typing the builder's address does not give a way to create one either.
    page.goto(f"/f/{ECHO.slug}/rules/new")
    expect(page.get_by_text("Creating rules needs the rules permission")).to_be_visible()
    expect(page.get_by_role("form", name="New rule")).to_have_count(0)
    expect(page.get_by_role("button", name="Create rule")).to_have_count(0)


def test_backtest_of_an_unsaved_rule_counts_the_alerts_it_would_have_opened(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_user(ECHO, ECHO_RULES, permissions=["rules"])
    # Two mixers cross 100 kW: mixer-1 twice, mixer-2 once; mixer-3 never does.
    publish_values(api, ECHO, platform.mqtt_port, "mixer-1", [{"power_kw": v} for v in (50, 120, 130, 60, 140, 40)])
    publish_values(api, ECHO, platform.mqtt_port, "mixer-2", [{"power_kw": v} for v in (50, 150, 30)])
    publish_values(api, ECHO, platform.mqtt_port, "mixer-3", [{"power_kw": v} for v in (20, 30, 40)])

    sign_in(page, ECHO.slug, ECHO_RULES)
    page.goto(f"/f/{ECHO.slug}/rules/new")
    form = page.get_by_role("form", name="New rule")
    form.get_by_label("Name", exact=True).fill("Mixer overload")
    form.get_by_role("group", name="Applies to").get_by_role("button", name="List of devices").click()
    picker = form.get_by_test_id("device-picker")
    for device_id in ("mixer-1", "mixer-2", "mixer-3"):
        picker.get_by_label("Search devices").fill(device_id)
        picker.get_by_role("button", name=f"Add {device_id}").click()
    expect(picker.get_by_role("list", name="Chosen devices")).to_contain_text("mixer-3")
    first = condition(form, "condition 1")
    first.get_by_label("Property", exact=True).fill("power_kw")
    first.get_by_label("Operator", exact=True).select_option(">")
    first.get_by_label("Value", exact=True).fill("100")
    form.get_by_label("Cooldown", exact=True).fill("0")

    panel = page.locator(".rule-backtest")
    expect(panel.get_by_role("button", name="Last 24 hours")).to_have_attribute("aria-pressed", "true")
    panel.get_by_role("button", name="Run backtest").click()
    result = panel.get_by_test_id("backtest-result")
    expect(result).to_be_visible(timeout=30_000)
    expect(result.get_by_test_id("backtest-alert-count")).to_have_text("3")
    expect(result.get_by_test_id("backtest-devices")).to_have_text("3")
    expect(result.get_by_test_id("backtest-devices-affected")).to_have_text("2")
    per_device = result.get_by_role("table", name="Backtest alerts per device")
    expect(per_device.locator('tr[data-device="mixer-1"] td.num')).to_have_text("2")
    expect(per_device.locator('tr[data-device="mixer-2"] td.num')).to_have_text("1")
    expect(per_device.locator('tr[data-device="mixer-3"]')).to_have_count(0)
    timeline = result.get_by_role("img", name="Backtest timeline")
    expect(timeline.locator('g[data-device="mixer-1"] rect.rule-timeline-bar')).to_have_count(2)
    expect(timeline.locator('g[data-device="mixer-2"] rect.rule-timeline-bar')).to_have_count(1)
    # Seconds of alerts in a day: the timeline zooms to them, and mixer-1's two bars stand apart.
    result.get_by_role("group", name="Timeline range").get_by_role("button", name="Around the alerts").click()
    bars = timeline.locator('g[data-device="mixer-1"] rect.rule-timeline-bar')
    expect(bars).to_have_count(2)
    first_bar, second_bar = (bars.nth(i).bounding_box() for i in range(2))
    assert first_bar and second_bar and first_bar["x"] + first_bar["width"] < second_bar["x"], (first_bar, second_bar)
    assert first_bar["width"] > 10, first_bar
    intervals = result.get_by_role("table", name="Backtest alert intervals")
    expect(intervals.locator("tbody tr")).to_have_count(3)
    expect(intervals.locator('tr[data-device="mixer-1"]').first).to_contain_text("power_kw = 120")
    expect(intervals.locator('tr[data-device="mixer-2"]')).to_contain_text("power_kw = 150")
    screenshot("rule-backtest")

    # A stricter threshold, backtested again without saving: only mixer-2's 150 crosses it.
    first.get_by_label("Value", exact=True).fill("145")
    panel.get_by_role("button", name="Run backtest").click()
    expect(result.get_by_test_id("backtest-alert-count")).to_have_text("1", timeout=30_000)
    expect(result.get_by_role("table", name="Backtest alert intervals").locator("tbody tr")).to_have_count(1)

    # A custom period that ends before it starts is refused at the period's fields.
    panel.get_by_role("button", name="Custom").click()
    custom = panel.get_by_role("group", name="Backtest custom period")
    custom.get_by_label("From", exact=True).fill("2026-03-02T10:00")
    custom.get_by_label("To", exact=True).fill("2026-03-01T10:00")
    panel.get_by_role("button", name="Run backtest").click()
    expect(panel.get_by_role("alert").first).to_contain_text("The backtest did not run")
    expect(custom.locator(".field-error")).to_contain_text("after")

    # Nothing was saved.
    assert find_rule(api, "Mixer overload") is None
