"""Alert journeys through the portal: devices publish over MQTT past a rule's threshold, and people
watch the alerts arrive live, acknowledge them in bulk, resolve them with a note, and find failed
notifications in the delivery log.

Rules are created through the API (the rule builder has journeys of its own). Everything happens in
Foxtrot Cooling, a factory of these journeys' own, and each journey uses its own devices and rule, so the
journeys do not depend on each other or on the order pytest runs them in. The session's platform has
no SMTP server configured, so every email notification fails at once ("email is not configured"):
that is the failed delivery the log must show.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from playwright.sync_api import Locator, Page, expect
from portal_support import Account, ApiHelper, DevicePublisher, FactorySpec, create_device, sign_in, sign_in_root
from portal_support import wait_for as poll

pytestmark = pytest.mark.e2e

FOXTROT = FactorySpec(
    name="Foxtrot Cooling",
    slug="foxtrot-cooling",
    timezone="Europe/Vienna",
    description="Compressors and chillers",
    super_admin=Account("eva.chief@foxtrot.example", "Eva Chief", "Chiller-2026xy"),
)
FOXTROT_ALERTS = Account("otto.shift@foxtrot.example", "Otto Shift", "Nightwatch-2026x")
FOXTROT_READER = Account("rosa.look@foxtrot.example", "Rosa Look", "Glance-2026xyz")

# A rule change reaches the telemetry process within its 2-second refresh; an alert row reaches
# the portal's next poll (2-3 s). Generous for a loaded machine.
ALERT_TIMEOUT_S = 30.0
UI_TIMEOUT_MS = 15_000


class Platform(Protocol):
    base_url: str
    mqtt_port: int


def wait_for(check: Callable[[], Any], what: str, timeout: float = ALERT_TIMEOUT_S, every: float = 0.5) -> Any:
    return poll(check, what, timeout, every)


class Foxtrot:
    """Foxtrot Cooling through the API: its people, devices publishing over MQTT, rules, alerts."""

    def __init__(self, api: ApiHelper, platform: Platform) -> None:
        self.api = api
        self.platform = platform
        api.ensure_user(FOXTROT, FOXTROT_ALERTS, permissions=["alerts"])
        api.ensure_user(FOXTROT, FOXTROT_READER, permissions=[])
        self.headers = api.auth(api.login(FOXTROT.slug, FOXTROT.super_admin))

    def get(self, path: str, **params: Any) -> Any:
        return self.api._ok(self.api.client.get(path, headers=self.headers, params=params))

    def device(self, device_id: str) -> DevicePublisher:
        created = create_device(self.api, FOXTROT, device_id, name=device_id.title(), type="compressor")
        return DevicePublisher(self.platform.mqtt_port, created["mqtt"])

    def rule(self, name: str, device_ids: list[str], threshold: float, **definition: Any) -> dict[str, Any]:
        """A rule `power_kw > threshold` on the devices; retried until the property is discovered."""
        body = {
            "name": name,
            "definition": {
                "scope": {"kind": "devices", "device_ids": device_ids},
                "condition": {"property": "power_kw", "operator": ">", "value": threshold},
                "severity": "critical",
                "cooldown_seconds": 0,
                **definition,
            },
        }

        def create() -> dict[str, Any] | None:
            response = self.api.client.post("/rules", headers=self.headers, json=body)
            if response.status_code == 422 and "power_kw" in response.text:
                return None  # the first reading is still on its way to the property registry
            return dict(self.api._ok(response))

        return dict(wait_for(create, "the rule to be accepted (power_kw discovered)"))

    def alerts(self, rule_id: str, **params: Any) -> list[dict[str, Any]]:
        return list(self.get("/alerts", rule_id=rule_id, limit=200, **params)["items"])

    def raise_alert(self, device: DevicePublisher, device_id: str, rule_id: str, power: float) -> dict[str, Any]:
        """Publishes `power` once a second (as a meter does) until the rule has opened an alert."""

        def opened() -> dict[str, Any] | None:
            device.publish({"power_kw": power})
            found = [a for a in self.alerts(rule_id) if a["device_id"] == device_id]
            return found[0] if found else None

        return dict(wait_for(opened, f"an alert of rule {rule_id} on {device_id}", every=1.0))


@pytest.fixture(scope="module")
def foxtrot(api: ApiHelper, platform: Platform) -> Foxtrot:
    return Foxtrot(api, platform)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def alert_row(page: Page, rule: str, device_id: str) -> Locator:
    return page.get_by_role("table", name="Alerts").locator(f'tr[data-rule="{rule}"][data-device="{device_id}"]')


def test_alerts_appear_live_on_the_overview_and_the_list(
    page: Page, foxtrot: Foxtrot, screenshot: Callable[[str], Path]
) -> None:
    device_id, rule_name = unique("comp"), unique("Overload")
    with foxtrot.device(device_id) as device:
        device.publish({"power_kw": 40.0})
        rule = foxtrot.rule(rule_name, [device_id], threshold=100)

        sign_in(page, FOXTROT.slug, FOXTROT_ALERTS)
        panel = page.locator(".open-alerts")
        expect(panel.get_by_role("heading", name=re.compile("Open alerts"))).to_be_visible()
        expect(panel.locator(f'li[data-rule="{rule_name}"]')).to_have_count(0)
        critical = page.get_by_test_id("open-critical").locator(".sev-count-value")
        expect(critical).to_have_text(re.compile(r"^\d+$"))
        critical_before = int(critical.inner_text())

        # The device crosses the threshold; the overview shows it without a reload.
        alert = foxtrot.raise_alert(device, device_id, rule["id"], power=142.5)
        item = panel.locator(f'li[data-rule="{rule_name}"]')
        expect(item).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(item).to_contain_text(device_id)
        expect(item).to_contain_text("Critical")
        expect(item).to_contain_text("142.5")
        expect(item).to_have_attribute("data-state", "open")
        expect(critical).to_have_text(str(critical_before + 1))
        screenshot("overview-open-alerts")

        # The alerts list, opened before the next alert, picks that one up by itself too.
        page.get_by_role("navigation", name="Factory navigation").get_by_role("link", name="Alerts", exact=True).click()
        expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
        row = alert_row(page, rule_name, device_id)
        expect(row).to_be_visible()
        expect(row).to_contain_text("Critical")
        expect(row).to_contain_text("Open")
        expect(row).to_contain_text("power_kw")
        expect(row).to_contain_text("142.5")
        expect(page.get_by_test_id("count-open").locator(".alert-count-value")).not_to_have_text("0")

        second_id = unique("comp")
        with foxtrot.device(second_id) as second:
            second.publish({"power_kw": 40.0})
            foxtrot.api._ok(
                foxtrot.api.client.patch(
                    f"/rules/{rule['id']}",
                    headers=foxtrot.headers,
                    json={
                        "definition": {
                            **rule["definition"],
                            "scope": {"kind": "devices", "device_ids": [device_id, second_id]},
                        }
                    },
                )
            )
            foxtrot.raise_alert(second, second_id, rule["id"], power=155.0)
            expect(alert_row(page, rule_name, second_id)).to_be_visible(timeout=UI_TIMEOUT_MS)

        # Filters narrow the list, and the address keeps them.
        page.get_by_label("Filter by device").fill(second_id)
        expect(page).to_have_url(re.compile(rf"device={second_id}"))
        expect(alert_row(page, rule_name, second_id)).to_be_visible()
        expect(alert_row(page, rule_name, device_id)).to_have_count(0)
        page.get_by_role("button", name="Clear filters").click()
        page.get_by_label("Filter by state").select_option("resolved")
        expect(alert_row(page, rule_name, device_id)).to_have_count(0)
        page.get_by_label("Filter by state").select_option("unresolved")
        expect(alert_row(page, rule_name, device_id)).to_be_visible()

        # The row leads to the alert, whose device link leads to the device.
        alert_row(page, rule_name, device_id).get_by_role("link", name=rule_name).click()
        expect(page).to_have_url(re.compile(rf"/alerts/{alert['id']}$"))
        expect(page.get_by_test_id("trigger-values")).to_contain_text("142.5")
        expect(page.get_by_role("list", name="Timeline").locator("li")).to_have_count(1)
        expect(page.get_by_role("list", name="Timeline")).to_contain_text("Opened by rule engine")


def test_bulk_acknowledge_then_resolve_with_a_note_in_the_timeline(
    page: Page, foxtrot: Foxtrot, screenshot: Callable[[str], Path]
) -> None:
    rule_name = unique("Hot")
    ids = [unique("chiller") for _ in range(3)]
    devices = [foxtrot.device(d) for d in ids]
    try:
        for device in devices:
            device.publish({"power_kw": 10.0})
        rule = foxtrot.rule(rule_name, ids, threshold=50)
        for device, device_id in zip(devices, ids, strict=True):
            foxtrot.raise_alert(device, device_id, rule["id"], power=75.0)
    finally:
        for device in devices:
            device.close()

    sign_in(page, FOXTROT.slug, FOXTROT_ALERTS)
    page.goto(f"/f/{FOXTROT.slug}/alerts?rule={rule['id']}")
    for device_id in ids:
        expect(alert_row(page, rule_name, device_id)).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id("selected-count")).to_have_text("Select alerts to act on several at once")

    # Two of the three, acknowledged at once.
    for device_id in ids[:2]:
        alert_row(page, rule_name, device_id).get_by_role("checkbox").check()
    expect(page.get_by_test_id("selected-count")).to_have_text("2 selected")
    page.get_by_role("button", name="Acknowledge selected").click()
    expect(page.get_by_role("status").filter(has_text="2 alerts acknowledged")).to_be_visible()
    for device_id in ids[:2]:
        expect(alert_row(page, rule_name, device_id)).to_have_attribute("data-state", "acknowledged")
        expect(alert_row(page, rule_name, device_id)).to_contain_text("Acknowledged")
    expect(alert_row(page, rule_name, ids[2])).to_have_attribute("data-state", "open")
    assert {a["state"] for a in foxtrot.alerts(rule["id"]) if a["device_id"] in ids[:2]} == {"acknowledged"}
    screenshot("alerts-bulk-acknowledged")

    # The third one: resolved on its page, with a note that shows in the timeline.
    alert_row(page, rule_name, ids[2]).get_by_role("link", name=rule_name).click()
    expect(page.get_by_test_id("alert-state")).to_contain_text("Open")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_test_id("alert-state")).to_contain_text("Acknowledged")
    page.get_by_role("button", name="Resolve…").click()
    dialog = page.get_by_role("dialog", name="Resolve alert")
    note = "Condenser fan replaced; load back to normal."
    dialog.get_by_label("Resolution note").fill(note)
    dialog.get_by_role("button", name="Resolve", exact=True).click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_test_id("alert-state")).to_contain_text("Resolved")
    timeline = page.get_by_role("list", name="Timeline")
    expect(timeline.locator("li")).to_have_count(3)
    expect(timeline.locator("li").nth(0)).to_contain_text("Opened by rule engine")
    expect(timeline.locator("li").nth(0)).to_contain_text("75")
    expect(timeline.locator("li").nth(1)).to_contain_text(f"Acknowledged by {FOXTROT_ALERTS.email}")
    expect(timeline.locator("li").nth(2)).to_contain_text(f"Resolved by {FOXTROT_ALERTS.email}")
    expect(timeline.locator("li").nth(2)).to_contain_text(note)
    expect(page.get_by_role("button", name="Resolve…")).to_have_count(0)
    screenshot("alert-resolved-timeline")
    resolved = [a for a in foxtrot.alerts(rule["id"]) if a["device_id"] == ids[2]]
    assert resolved[0]["state"] == "resolved" and resolved[0]["resolution_note"] == note

    # Back on the list: the two acknowledged ones resolved together, with one note.
    page.goto(f"/f/{FOXTROT.slug}/alerts?rule={rule['id']}&state=unresolved")
    expect(alert_row(page, rule_name, ids[2])).to_have_count(0)
    page.get_by_role("checkbox", name="Select all on this page").check()
    expect(page.get_by_test_id("selected-count")).to_have_text("2 selected")
    page.get_by_role("button", name="Resolve selected…").click()
    dialog = page.get_by_role("dialog", name="Resolve 2 alerts")
    dialog.get_by_label("Resolution note").fill("Both chillers serviced.")
    dialog.get_by_role("button", name="Resolve 2").click()
    expect(page.get_by_role("status").filter(has_text="2 alerts resolved")).to_be_visible()
    expect(page.get_by_role("table", name="Alerts")).to_contain_text("No alerts match these filters.")
    assert {a["resolution_note"] for a in foxtrot.alerts(rule["id"])} == {note, "Both chillers serviced."}


def test_a_reader_sees_alerts_without_action_buttons(page: Page, foxtrot: Foxtrot) -> None:
    device_id, rule_name = unique("pump"), unique("Surge")
    with foxtrot.device(device_id) as device:
        device.publish({"power_kw": 5.0})
        rule = foxtrot.rule(rule_name, [device_id], threshold=20, severity="warning")
        alert = foxtrot.raise_alert(device, device_id, rule["id"], power=33.0)

    sign_in(page, FOXTROT.slug, FOXTROT_READER)
    page.goto(f"/f/{FOXTROT.slug}/alerts")
    expect(page.get_by_text("Read only")).to_be_visible()
    row = alert_row(page, rule_name, device_id)
    expect(row).to_contain_text("Warning")
    expect(row.get_by_role("checkbox")).to_have_count(0)
    expect(page.get_by_role("group", name="Bulk actions")).to_have_count(0)
    expect(page.get_by_role("button", name="Acknowledge selected")).to_have_count(0)

    row.get_by_role("link", name=rule_name).click()
    expect(page.get_by_test_id("alert-state")).to_contain_text("Open")
    expect(page.get_by_test_id("trigger-values")).to_contain_text("33")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.get_by_role("button", name="Resolve…")).to_have_count(0)
    expect(page.get_by_text("acknowledging and resolving need the Alerts permission")).to_be_visible()

    # The API agrees: the reader may look but not act.
    token = foxtrot.api.login(FOXTROT.slug, FOXTROT_READER)
    response = foxtrot.api.client.post(f"/alerts/{alert['id']}/acknowledge", headers=foxtrot.api.auth(token), json={})
    assert response.status_code == 403, response.text


def failed_email(foxtrot: Foxtrot) -> tuple[dict[str, Any], dict[str, Any], str]:
    """An alert whose email notification failed (the platform has no SMTP server): alert, delivery, recipient."""
    device_id, rule_name = unique("boiler"), unique("Steam")
    recipient = f"{uuid.uuid4().hex[:8]}@foxtrot.example"
    with foxtrot.device(device_id) as device:
        device.publish({"power_kw": 1.0})
        rule = foxtrot.rule(rule_name, [device_id], threshold=2, notify={"emails": [recipient]})
        alert = foxtrot.raise_alert(device, device_id, rule["id"], power=9.0)

    def failed() -> dict[str, Any] | None:
        items = foxtrot.get("/notifications/deliveries", alert_id=alert["id"])["items"]
        return next((d for d in items if d["state"] == "failed"), None)

    delivery = wait_for(failed, "the email delivery to fail (no SMTP server is configured)")
    assert "not configured" in delivery["error"], delivery
    return alert, delivery, recipient


def test_a_failed_delivery_is_red_in_the_delivery_log(
    page: Page, foxtrot: Foxtrot, screenshot: Callable[[str], Path]
) -> None:
    alert, delivery, recipient = failed_email(foxtrot)

    sign_in(page, FOXTROT.slug, FOXTROT_ALERTS)
    page.get_by_role("navigation", name="Factory navigation").get_by_role("link", name="Delivery log").click()
    expect(page.get_by_role("heading", name="Delivery log")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="could not be delivered")).to_be_visible()
    row = page.get_by_role("table", name="Deliveries").locator(f'tr[data-delivery="{delivery["id"]}"]')
    expect(row).to_contain_text(recipient)
    expect(row).to_contain_text("Email")
    expect(row).to_contain_text("Opened")
    expect(row).to_contain_text("Failed")
    expect(row).to_contain_text("email is not configured")
    expect(row).to_have_attribute("data-state", "failed")
    # Failures stand out: a red badge on a red-tinted row, the error in red.
    expect(row.locator(".delivery-state")).to_have_css("background-color", "rgb(220, 38, 38)")
    expect(row.locator("td").first).to_have_css("background-color", "rgb(254, 242, 242)")
    expect(row.locator(".delivery-error .text-bad")).to_have_css("color", "rgb(185, 28, 28)")
    screenshot("delivery-log-failed")

    # The state filter keeps only failures; the alert's own page lists its delivery too.
    page.get_by_role("group", name="Filter by state").get_by_role("button", name=re.compile("^Failed")).click()
    expect(page).to_have_url(re.compile(r"state=failed"))
    rows = page.get_by_role("table", name="Deliveries").locator("tbody tr")
    expect(rows.first).to_have_attribute("data-state", "failed")
    states = rows.evaluate_all("rows => rows.map(r => r.dataset.state)")
    assert set(states) == {"failed"}, states
    page.get_by_role("group", name="Filter by state").get_by_role("button", name="Sent").click()
    expect(page.get_by_role("table", name="Deliveries").locator(f'tr[data-delivery="{delivery["id"]}"]')).to_have_count(
        0
    )

    page.goto(f"/f/{FOXTROT.slug}/alerts/{alert['id']}")
    mine = page.get_by_role("table", name="Notifications of this alert").locator(
        f'tr[data-delivery="{delivery["id"]}"]'
    )
    expect(mine).to_contain_text(recipient)
    expect(mine).to_have_attribute("data-state", "failed")


def test_a_failing_channel_is_a_system_alert_for_the_factory_and_the_root(
    page: Page, foxtrot: Foxtrot, screenshot: Callable[[str], Path]
) -> None:
    failed_email(foxtrot)

    def open_channel_alert() -> dict[str, Any] | None:
        items = foxtrot.get("/system-alerts", state="open")["items"]
        return next((a for a in items if a["kind"] == "channel_failing"), None)

    system_alert = wait_for(open_channel_alert, "the channel_failing system alert")
    assert system_alert["message"].startswith("email:"), system_alert

    # An admin (not super admin) sees the banner too (spec 3.2: admins read everything), and the list.
    sign_in(page, FOXTROT.slug, FOXTROT_ALERTS)
    expect(page.get_by_role("heading", name=re.compile("Open alerts"))).to_be_visible()
    expect(page.get_by_test_id("system-alerts-banner").locator('li[data-kind="channel_failing"]')).to_be_visible()
    token = foxtrot.api.login(FOXTROT.slug, FOXTROT_ALERTS)
    listed = foxtrot.api.client.get("/system-alerts", headers=foxtrot.api.auth(token), params={"state": "open"})
    assert listed.status_code == 200 and system_alert["id"] in {a["id"] for a in listed.json()["items"]}
    page.get_by_role("button", name="Sign out").click()

    # The super admin sees it on every page of the factory.
    sign_in(page, FOXTROT.slug, FOXTROT.super_admin)
    banner = page.get_by_test_id("system-alerts-banner")
    item = banner.locator('li[data-kind="channel_failing"]')
    expect(item).to_contain_text("Notification channel failing")
    expect(item).to_contain_text("email: a notification to")
    expect(item).to_contain_text(re.compile(r"\d+ occurrences?"))
    page.get_by_role("navigation", name="Factory navigation").get_by_role("link", name="Devices").click()
    expect(item).to_be_visible()
    screenshot("system-alert-banner")
    page.get_by_role("button", name="Sign out").click()

    # The platform root sees it in the console, with the factory's name.
    sign_in_root(page)
    table = page.get_by_role("table", name="System alerts of all factories")
    row = table.locator("tr").filter(has_text=FOXTROT.name).filter(has_text="Notification channel failing")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("email: a notification to")
    expect(row).to_have_attribute("data-state", "open")
    screenshot("root-system-alerts")


def test_notification_preferences_are_saved_and_problems_shown_at_their_field(page: Page, foxtrot: Foxtrot) -> None:
    sign_in(page, FOXTROT.slug, FOXTROT_READER)
    page.get_by_role("link", name="Notifications", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/f/{FOXTROT.slug}/notifications$"))
    form = page.get_by_role("form", name="Notification preferences")
    # The defaults of contract 2.
    expect(form.get_by_label(f"Email to {FOXTROT_READER.email}")).to_be_checked()
    expect(form.get_by_label("WhatsApp", exact=True)).not_to_be_checked()
    expect(form.get_by_label("Minimum severity")).to_have_value("info")
    expect(form.get_by_label("No messages during quiet hours")).not_to_be_checked()
    expect(form).to_contain_text(FOXTROT.timezone)

    def field(label: str) -> Locator:
        return form.locator(".field").filter(has=page.get_by_label(label, exact=True))

    # WhatsApp without a number: the server's 422 lands at the number.
    form.get_by_label("WhatsApp", exact=True).check()
    form.get_by_role("button", name="Save preferences").click()
    expect(field("WhatsApp number").locator(".field-error")).to_contain_text("give the number")
    expect(form.get_by_label("WhatsApp number")).to_have_attribute("aria-invalid", "true")
    form.get_by_label("WhatsApp number").fill("0151 1234")
    form.get_by_role("button", name="Save preferences").click()
    expect(field("WhatsApp number").locator(".field-error")).to_contain_text("E.164")

    # Quiet hours that start and end at the same minute: at the quiet hours.
    form.get_by_label("WhatsApp number").fill("+4915112345678")
    form.get_by_label("Minimum severity").select_option("warning")
    form.get_by_label("No messages during quiet hours").check()
    form.get_by_label("From", exact=True).fill("22:00")
    form.get_by_label("Until", exact=True).fill("22:00")
    form.get_by_role("button", name="Save preferences").click()
    expect(form.locator(".prefs-quiet .field-error")).to_contain_text("equal")
    expect(field("WhatsApp number").locator(".field-error")).to_have_count(0)
    form.get_by_label("Until", exact=True).fill("06:30")
    form.get_by_role("button", name="Save preferences").click()
    expect(form.get_by_role("status").filter(has_text="Preferences saved")).to_be_visible()

    token = foxtrot.api.login(FOXTROT.slug, FOXTROT_READER)
    saved = foxtrot.api._ok(foxtrot.api.client.get("/me/notification-preferences", headers=foxtrot.api.auth(token)))
    assert saved == {
        "email": True,
        "whatsapp": True,
        "whatsapp_number": "+4915112345678",
        "min_severity": "warning",
        "quiet_hours": {"start": "22:00", "end": "06:30"},
    }, saved

    # They are still there on the next visit.
    page.reload()
    form = page.get_by_role("form", name="Notification preferences")
    expect(form.get_by_label("WhatsApp", exact=True)).to_be_checked()
    expect(form.get_by_label("WhatsApp number")).to_have_value("+4915112345678")
    expect(form.get_by_label("Minimum severity")).to_have_value("warning")
    expect(form.get_by_label("Until", exact=True)).to_have_value("06:30")
