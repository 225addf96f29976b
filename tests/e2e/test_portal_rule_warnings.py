"""A rule that notifies nobody, and a rule disabled with its alert open, through the portal.

The builder warns before saving that nobody will be notified (and stops once a recipient is
added); the list repeats the API's warning after the save and marks the rule, also when the only
user it notifies has been disabled. Disabling the rule
from the list resolves its open alert, whose page says why and who. Everything happens in Kilo
Kilns, a factory of this journey's own (see portal_support for why).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from playwright.sync_api import Page, expect
from portal_support import (
    Account,
    ApiHelper,
    DevicePublisher,
    FactorySpec,
    create_device,
    open_from_nav,
    publish_values,
    sign_in,
    wait_for,
)

pytestmark = pytest.mark.e2e

KILO = FactorySpec(
    name="Kilo Kilns",
    slug="kilo-kilns",
    timezone="Europe/Lisbon",
    description="Ceramic kilns and dryers",
    super_admin=Account("ines.chief@kilo.example", "Ines Chief", "Ceramics-2026x"),
)
KILO_RULES = Account("joao.rules@kilo.example", "Joao Rules", "Glazing-2026xy")
KILO_NIGHT = Account("rita.night@kilo.example", "Rita Night", "Firing-2026xyz")
WARNING = "This rule opens alerts but notifies nobody: add users or channels under Notify."
NAME = "Kiln overheating"


class Platform(Protocol):
    base_url: str
    mqtt_port: int


def test_rules_warn_when_nobody_is_notified_and_disabling_resolves_the_open_alert(
    page: Page, api: ApiHelper, platform: Platform, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_user(KILO, KILO_RULES, permissions=["rules", "alerts"])
    headers = api.auth(api.login(KILO.slug, KILO.super_admin))
    if api.client.get("/devices/kiln-1", headers=headers).status_code != 200:
        create_device(api, KILO, "kiln-1", name="Kiln 1", type="kiln")
    publish_values(api, KILO, platform.mqtt_port, "kiln-1", [{"temp_c": 800.0}])  # temp_c is discovered
    rules = api._ok(api.client.get("/rules", headers=headers, params={"q": NAME}))
    for rule in [r for r in rules["items"] if r["name"] == NAME]:  # a rerun on the same platform starts afresh
        api._ok(api.client.patch(f"/rules/{rule['id']}", headers=headers, json={"name": f"{NAME} (old {rule['id']})"}))

    sign_in(page, KILO.slug, KILO_RULES)
    open_from_nav(page, "Rules")
    page.get_by_role("link", name="New rule").click()
    form = page.get_by_role("form", name="New rule")
    form.get_by_label("Name", exact=True).fill(NAME)
    condition = form.get_by_role("group", name="Condition, condition 1", exact=True)
    condition.get_by_label("Property", exact=True).fill("temp_c")
    condition.get_by_label("Operator", exact=True).select_option(">")
    condition.get_by_label("Value", exact=True).fill("1000")

    # before saving: the builder says nobody will be notified, until a recipient is added
    warnings = form.get_by_test_id("rule-warnings")
    expect(warnings).to_contain_text("Nobody will be notified")
    expect(warnings).to_contain_text(WARNING)
    screenshot("rule-builder-warns-nobody-notified")
    form.get_by_label("Emails", exact=True).fill("kiln-lead@kilo.example")
    form.get_by_label("Emails", exact=True).press("Enter")
    expect(form.get_by_role("list", name="Emails added")).to_contain_text("kiln-lead@kilo.example")
    expect(warnings).to_have_count(0)
    form.get_by_role("button", name="Remove kiln-lead@kilo.example").click()
    expect(warnings).to_contain_text(WARNING)

    # saved all the same; the list repeats the API's warning and marks the rule
    form.get_by_role("button", name="Create rule").click()
    expect(page).to_have_url(re.compile(rf"/f/{KILO.slug}/rules$"))
    expect(page.get_by_text(f"Rule “{NAME}” created.")).to_be_visible()
    expect(page.get_by_test_id("rule-warnings")).to_contain_text(WARNING)
    row = page.get_by_role("table", name="Rules").locator(f'tr[data-rule="{NAME}"]')
    expect(row.get_by_test_id("rule-warning-badge")).to_have_text("Notifies nobody")
    screenshot("rules-list-warns-nobody-notified")
    rule = next(r for r in api._ok(api.client.get("/rules", headers=headers, params={"q": NAME}))["items"])
    assert rule["name"] == NAME and rule["warnings"] == [{"code": "no_recipients", "message": WARNING}]

    # the kiln overheats: an alert opens (the telemetry process learns of the rule within seconds)
    kiln = create_device(api, KILO, "kiln-1")
    with DevicePublisher(platform.mqtt_port, kiln["mqtt"]) as publisher:

        def opened() -> Any:
            publisher.publish({"temp_c": 1200.0})
            found = api._ok(api.client.get("/alerts", headers=headers, params={"rule_id": rule["id"]}))
            return found["items"][0] if found["items"] else None

        alert = wait_for(opened, "the kiln's alert")
    assert alert["state"] == "open"

    # disabled from the list: the open alert resolves, and its page says why and who
    switch = row.get_by_role("switch", name=f"Enabled: {NAME}")
    switch.click()
    expect(page.get_by_text(f"Rule “{NAME}” disabled.")).to_be_visible()
    expect(switch).not_to_be_checked()
    page.goto(f"/f/{KILO.slug}/alerts/{alert['id']}")
    note = f"Resolved: the rule was disabled by {KILO_RULES.email}."
    expect(page.get_by_text(note).first).to_be_visible()
    expect(page.get_by_text(f"by {KILO_RULES.email}").first).to_be_visible()
    screenshot("alert-resolved-by-disabling-its-rule")

    # a recipient added: saved without a warning, and the mark is gone
    page.goto(f"/f/{KILO.slug}/rules/{rule['id']}")
    edit = page.get_by_role("form", name="Edit rule")
    expect(edit.get_by_test_id("rule-warnings")).to_contain_text(WARNING)
    edit.get_by_label("Emails", exact=True).fill("kiln-lead@kilo.example")
    edit.get_by_label("Emails", exact=True).press("Enter")
    expect(edit.get_by_test_id("rule-warnings")).to_have_count(0)
    edit.get_by_role("button", name="Save rule").click()
    expect(page.get_by_text(re.compile(rf"Rule “{NAME}” saved \(version \d+\)\."))).to_be_visible()
    expect(page.get_by_test_id("rule-warnings")).to_have_count(0)
    expect(row.get_by_test_id("rule-warning-badge")).to_have_count(0)

    # a rule that notifies only a user who is then disabled: the list marks it as notifying nobody
    night = api.ensure_user(KILO, KILO_NIGHT, permissions=["alerts"])
    api._ok(api.client.patch(f"/users/{night['id']}", headers=headers, json={"is_active": True}))
    only_night = {**rule["definition"], "notify": {"users": [night["id"]]}}
    api._ok(api.client.patch(f"/rules/{rule['id']}", headers=headers, json={"definition": only_night}))
    api._ok(api.client.patch(f"/users/{night['id']}", headers=headers, json={"is_active": False}))
    try:
        page.goto(f"/f/{KILO.slug}/rules")  # a fresh load: the change came through the API
        row = page.get_by_role("table", name="Rules").locator(f'tr[data-rule="{NAME}"]')
        badge = row.get_by_test_id("rule-warning-badge")
        expect(badge).to_have_text("Notifies nobody")
        gone = re.compile(rf"every user it names is disabled or gone \({re.escape(KILO_NIGHT.email)}\)")
        expect(badge).to_have_attribute("title", gone)
        screenshot("rules-list-warns-only-disabled-users")
    finally:
        api._ok(api.client.patch(f"/users/{night['id']}", headers=headers, json={"is_active": True}))
