"""Issue 4's "Done when", in a real browser against `factoryops up --demo`.

In the demo factory, the energy manager creates a rule in the portal's rule builder; the demo's
simulator crosses it; the alert appears live on the overview; an email arrives at a real SMTP
server (aiosmtpd) and a WhatsApp request at a local HTTP server that answers as Twilio's Messages
API does; the manager acknowledges the alert; when the values return the alert resolves itself,
and the portal shows it.

The platform runs as a process of this module's own (its own data folder, free ports, the embedded
broker), with the notification settings pointing at the two test servers. The demo's steel mill
replays real readings of the steel data set; here it replays one real Tuesday morning of it (2 Jan
2018, 06:15 to 13:00: idle, the morning shift at 116-578 kW, the lunch break at ~33 kW) on a loop,
so the mill crosses 100 kW within about twenty seconds, stays above for about half a minute and
comes back below 50 kW by itself, every 56 seconds (the simulator publishes a row every 2 s).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, expect
from portal_support import (
    Account,
    browser_tab,
    free_port,
    open_from_nav,
    platform_env,
    running_platform,
    screenshot_taker,
    sign_in,
    wait_for,
)

from channels import FakeTwilio, Mailbox

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
STEEL_SAMPLE = REPO / "src" / "factoryops" / "data" / "steel_industry_energy_2018_sample.csv"
DEMO_SLUG = "demo-steel"
MANAGER = "manager@demo-steel.example"
PASSWORD = "Demo-Plant-2026"
MANAGER_ACCOUNT = Account(MANAGER, "Demo Energy Manager", PASSWORD)
STEEL = "steel-mill"
RULE = "Mill load above 100 kW"
ENERGY_EMAIL = "energy@demo-steel.example"
SHIFT_PHONE = "+821012345678"
TWILIO_SID = "ACdemo0000000000000000000000000000"
TWILIO_FROM = "+14155238886"
TRIGGER_KW, CLEAR_KW = 100.0, 50.0
# The replayed morning: 06:15 .. 13:00 of Tuesday 2 January 2018.
FIRST_ROW, LAST_ROW = "02/01/2018 06:15", "02/01/2018 13:00"
STARTUP_TIMEOUT_S = 90.0
# One loop of the replay is 28 rows x 2 s; every wait below stays within two loops.
LOOP_S = 56.0


def steel_morning_csv(folder: Path) -> Path:
    """The real rows of 2 Jan 2018, 06:15-13:00, from the data set's sample shipped in the package."""
    with STEEL_SAMPLE.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        fields = reader.fieldnames
    start = next(i for i, r in enumerate(rows) if r["date"] == FIRST_ROW)
    end = next(i for i, r in enumerate(rows) if r["date"] == LAST_ROW)
    morning = rows[start : end + 1]
    kw = [float(r["Usage_kWh"]) * 4 for r in morning]
    # What the journey relies on: idle, a shift above the trigger, a return below the clear level.
    assert kw[0] < CLEAR_KW and max(kw) > TRIGGER_KW and kw[-1] < CLEAR_KW, kw
    path = folder / "steel-tuesday-morning.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=fields or [])
        writer.writeheader()
        writer.writerows(morning)
    return path


def nab_csv() -> Path:
    """The NAB machine temperature series (the demo's furnace fan history), from the shared data sets."""
    for folder in (
        os.environ.get("FACTORYOPS_DATASETS"),
        str(REPO.parent / "shared" / "datasets"),
        "/work/shared/datasets",
    ):
        if folder and (path := Path(folder) / "nab" / "machine_temperature_system_failure.csv").is_file():
            return path
    pytest.fail("the shared data sets are missing (set FACTORYOPS_DATASETS)", pytrace=False)


# ------------------------------------------------------------------------------ the demo platform
@dataclass
class Demo:
    base_url: str
    log_path: Path
    mailbox: Mailbox
    twilio: FakeTwilio


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`factoryops up --demo` with SMTP at aiosmtpd and Twilio's base URL at the fake Twilio."""
    webui = REPO / "src" / "factoryops" / "webui" / "index.html"
    if not webui.is_file():
        pytest.fail(f"The web portal is not built ({webui} is missing). Run `npm ci && npm run build` in web/.")
    data_dir = tmp_path_factory.mktemp("factoryops-demo")
    log_path = data_dir / "platform.log"
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    twilio = FakeTwilio()
    twilio_url = twilio.start()
    http_port = free_port()
    env = {
        **platform_env(data_dir, http_port, free_port()),
        "FACTORYOPS_DEMO_STEEL_CSV": str(steel_morning_csv(data_dir)),
        "FACTORYOPS_DEMO_NAB_CSV": str(nab_csv()),
        "FACTORYOPS_NOTIFICATIONS__SMTP_HOST": "127.0.0.1",
        "FACTORYOPS_NOTIFICATIONS__SMTP_PORT": str(smtp_port),
        "FACTORYOPS_NOTIFICATIONS__SMTP_FROM": "alerts@demo-steel.example",
        "FACTORYOPS_NOTIFICATIONS__TWILIO_BASE_URL": twilio_url,
        "FACTORYOPS_NOTIFICATIONS__TWILIO_ACCOUNT_SID": TWILIO_SID,
        "FACTORYOPS_NOTIFICATIONS__TWILIO_AUTH_TOKEN": "demo-token",
        "FACTORYOPS_NOTIFICATIONS__TWILIO_WHATSAPP_FROM": TWILIO_FROM,
        "FACTORYOPS_NOTIFICATIONS__TIMEOUT_SECONDS": "5",
    }
    try:
        with running_platform(
            ["up", "--demo"], env, data_dir, log_path, http_port, STARTUP_TIMEOUT_S, strict_stop=False, tail_lines=60
        ) as base_url:
            yield Demo(base_url=base_url, log_path=log_path, mailbox=mailbox, twilio=twilio)
    finally:
        smtp.stop()
        twilio.stop()


@pytest.fixture
def demo_screenshot(demo_page: Page, tmp_path: Path) -> Callable[[str], Path]:
    """`demo_screenshot("name")` saves a full-page PNG of the demo page into the test's tmp folder."""
    return screenshot_taker(demo_page, tmp_path)


@pytest.fixture
def demo_page(browser: Browser, demo: Demo) -> Iterator[Page]:
    with browser_tab(browser, demo.base_url) as tab:
        yield tab


class DemoApi:
    """The manager's view through the API, to know where the replay is and to check the outcome."""

    def __init__(self, demo: Demo) -> None:
        self.client = httpx.Client(base_url=f"{demo.base_url}/api/v1", timeout=15)
        login = self.client.post("/auth/login", json={"factory": DEMO_SLUG, "email": MANAGER, "password": PASSWORD})
        assert login.status_code == 200, login.text
        self.client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        assert response.is_success, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def steel_kw(self) -> float | None:
        """The steel mill's latest power (the replay moves on every 2 s)."""
        response = self.client.get(f"/devices/{STEEL}/latest")
        if response.status_code != 200:
            return None
        for value in response.json().get("values", []):
            if value.get("property") == "power_kw":
                return float(value["value"])
        return None

    def alerts_of(self, rule_id: str) -> list[dict[str, Any]]:
        return list(self.get("/alerts", rule_id=rule_id, limit=50)["items"])


def test_a_rule_made_in_the_portal_alerts_notifies_is_acknowledged_and_resolves_itself(
    demo_page: Page, demo: Demo, demo_screenshot: Callable[[str], Path]
) -> None:
    page, screenshot = demo_page, demo_screenshot
    api = DemoApi(demo)
    # The demo's devices report from the start; power_kw is a discovered property within seconds.
    wait_for(lambda: api.steel_kw() is not None, "the steel mill's first readings", timeout=60)

    # ---- The manager signs in and builds the rule in the portal.
    sign_in(page, DEMO_SLUG, MANAGER_ACCOUNT)

    open_from_nav(page, "Rules")
    page.get_by_role("link", name="New rule").click()
    rule_form = page.get_by_role("form", name="New rule")
    rule_form.get_by_label("Name", exact=True).fill(RULE)
    rule_form.get_by_label("Severity").select_option("critical")
    rule_form.get_by_role("group", name="Applies to").get_by_role("button", name="One device").click()
    rule_form.get_by_label("Search devices").fill(STEEL)
    rule_form.get_by_role("button", name=f"Choose {STEEL}").click()
    expect(rule_form.get_by_role("list", name="Chosen devices")).to_contain_text(STEEL)
    trigger = rule_form.get_by_role("group", name="Condition, condition 1", exact=True)
    trigger.get_by_label("Property", exact=True).fill("power_kw")
    trigger.get_by_label("Operator", exact=True).select_option(">")
    trigger.get_by_label("Value", exact=True).fill(f"{TRIGGER_KW:g}")
    # Hysteresis: the alert resolves when the mill is back below 50 kW (its lunch break).
    rule_form.get_by_label("Resolve only when a different condition holds (hysteresis)").check()
    clear = rule_form.get_by_role("group", name="Resolve only when, condition 1", exact=True)
    clear.get_by_label("Property", exact=True).fill("power_kw")
    clear.get_by_label("Operator", exact=True).select_option("<")
    clear.get_by_label("Value", exact=True).fill(f"{CLEAR_KW:g}")
    rule_form.get_by_label("Emails", exact=True).fill(ENERGY_EMAIL)
    rule_form.get_by_label("Emails", exact=True).press("Enter")
    rule_form.get_by_label("WhatsApp numbers", exact=True).fill(SHIFT_PHONE)
    rule_form.get_by_label("WhatsApp numbers", exact=True).press("Enter")
    expect(rule_form.get_by_role("list", name="WhatsApp numbers added")).to_contain_text(SHIFT_PHONE)

    # Saved while the mill is idle, at the start of its idle spell, so the whole life of the alert
    # (crossing, notifications, acknowledgement, return) is seen from the first second.
    wait_for(lambda: (api.steel_kw() or 0) > TRIGGER_KW, "the mill's shift (above 100 kW)", timeout=2 * LOOP_S)
    wait_for(
        lambda: (api.steel_kw() or 1e9) < CLEAR_KW, "the mill's break (below 50 kW)", timeout=2 * LOOP_S, every=0.3
    )
    rule_form.get_by_role("button", name="Create rule").click()
    expect(page).to_have_url(re.compile(rf"/f/{DEMO_SLUG}/rules$"))
    rules = api.get("/rules", q=RULE)["items"]
    assert len(rules) == 1, rules
    rule = rules[0]
    definition = rule["definition"]
    assert definition["scope"] == {**definition["scope"], "kind": "device", "device_ids": [STEEL]}
    assert definition["condition"]["property"] == "power_kw" and definition["condition"]["value"] == TRIGGER_KW
    assert definition["clear"]["operator"] == "<" and definition["clear"]["value"] == CLEAR_KW
    assert definition["notify"]["emails"] == [ENERGY_EMAIL] and definition["notify"]["whatsapp"] == [SHIFT_PHONE]

    # ---- The overview, open before the crossing, shows the alert by itself.
    open_from_nav(page, "Overview")
    panel = page.locator(".open-alerts")
    item = panel.locator(f'li[data-rule="{RULE}"]')
    expect(page.get_by_test_id("open-alerts-total")).to_have_text(re.compile(r"^\d+$"))
    assert api.alerts_of(rule["id"]) == [], "the alert opened before the overview was shown"
    expect(item).to_have_count(0)
    expect(item).to_be_visible(timeout=int(LOOP_S * 1000))
    expect(item).to_contain_text(STEEL)
    expect(item).to_contain_text("Critical")
    expect(item).to_have_attribute("data-state", "open")
    [alert] = api.alerts_of(rule["id"])
    assert alert["trigger_values"]["power_kw"] > TRIGGER_KW, alert
    expect(item.locator('.alert-value[data-property="power_kw"]')).to_be_visible()
    screenshot("demo-overview-alert")

    # ---- An email at the SMTP server and a WhatsApp request at the fake Twilio.
    subject = f"[CRITICAL] {RULE} on {STEEL}"
    mail = wait_for(
        lambda: next((m for m in demo.mailbox.messages if subject in m.content.decode(errors="replace")), None),
        "the alert's email at the SMTP server",
        timeout=20,
    )
    assert mail.rcpt_tos == [ENERGY_EMAIL]
    assert mail.mail_from == "alerts@demo-steel.example"
    assert "power_kw" in mail.content.decode(errors="replace")
    whatsapp = wait_for(
        lambda: next((r for r in demo.twilio.requests if subject in r["form"].get("Body", "")), None),
        "the alert's WhatsApp message at the fake Twilio",
        timeout=20,
    )
    assert whatsapp["path"] == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert whatsapp["form"]["To"] == f"whatsapp:{SHIFT_PHONE}"
    assert whatsapp["form"]["From"] == f"whatsapp:{TWILIO_FROM}"
    assert whatsapp["auth"].startswith("Basic ")

    # ---- The manager acknowledges it in the portal, while it is still open.
    item.get_by_role("link", name=re.compile(RULE)).click()
    expect(page).to_have_url(re.compile(rf"/alerts/{alert['id']}$"))
    expect(page.get_by_test_id("alert-state")).to_contain_text("Open")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_test_id("alert-state")).to_contain_text("Acknowledged")
    timeline = page.get_by_role("list", name="Timeline")
    expect(timeline.locator('li[data-kind="acknowledged"]')).to_contain_text(f"Acknowledged by {MANAGER}")
    assert api.get(f"/alerts/{alert['id']}")["state"] == "acknowledged"
    notices = page.get_by_role("table", name="Notifications of this alert")
    expect(notices.locator('tr[data-state="sent"]')).to_have_count(2, timeout=15_000)
    screenshot("demo-alert-acknowledged")

    # ---- The mill goes to lunch: values return below 50 kW and the alert resolves itself,
    # seen on the open page without a reload.
    expect(page.get_by_test_id("alert-state")).to_contain_text("Resolved", timeout=int(LOOP_S * 1000))
    resolved = timeline.locator('li[data-kind="resolved"]')
    expect(resolved).to_contain_text("Resolved by auto-resolve")
    expect(resolved.locator('.alert-value[data-property="power_kw"]')).to_be_visible()
    expect(page.get_by_test_id("clear-values")).to_contain_text("power_kw")
    expect(page.get_by_role("button", name="Resolve…")).to_have_count(0)
    done = api.get(f"/alerts/{alert['id']}")
    assert done["state"] == "resolved" and done["resolved_by"] == "auto-resolve", done
    assert done["clear_values"]["power_kw"] < CLEAR_KW, done
    assert [e["kind"] for e in done["timeline"]] == ["opened", "acknowledged", "resolved"], done["timeline"]
    screenshot("demo-alert-resolved")

    # The resolution is told on both channels too, and the overview no longer lists the alert.
    resolved_subject = f"[RESOLVED] {RULE} on {STEEL}"
    wait_for(lambda: any(resolved_subject in t for t in demo.mailbox.texts()), "the resolved email", timeout=20)
    wait_for(
        lambda: any(resolved_subject in r["form"].get("Body", "") for r in demo.twilio.requests),
        "the resolved WhatsApp message",
        timeout=20,
    )
    expect(notices.locator('tr[data-state="sent"]')).to_have_count(4, timeout=15_000)
    open_from_nav(page, "Overview")
    expect(page.locator(".open-alerts").locator(f'li[data-alert="{alert["id"]}"]')).to_have_count(0)


def test_the_demo_factorys_history_is_exported_and_scanned_for_anomalies_in_the_portal(
    demo_page: Page, demo: Demo, demo_screenshot: Callable[[str], Path]
) -> None:
    """The demo factory comes with weeks of history: a dataset of the furnace fan's last week and a
    standard anomaly scan of it, from the portal."""
    page, screenshot = demo_page, demo_screenshot
    sign_in(page, DEMO_SLUG, MANAGER_ACCOUNT)
    open_from_nav(page, "Analytics")
    page.get_by_role("button", name="+ New dataset").click()
    form = page.get_by_role("form", name="New dataset")
    form.get_by_label("Name", exact=True).fill("Furnace fan, last week")
    form.get_by_label("Search devices").fill("furnace-fan-7")
    form.get_by_role("button", name="Add furnace-fan-7").click()
    expect(form.get_by_role("group", name="Properties").get_by_label("temperature_f", exact=True)).to_be_visible()
    form.get_by_role("button", name="Export dataset").click()
    expect(page.locator('.page-header .analytics-state[data-state="ready"]')).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("dataset-rows")).to_contain_text("values")
    screenshot("demo-dataset")

    page.get_by_role("button", name="New run on this dataset").click()
    form = page.get_by_role("form", name="New run")
    form.get_by_label("Model", exact=True).select_option("robust_zscore")
    form.get_by_label("Target column").select_option("temperature_f")
    form.get_by_role("button", name="Start run").click()
    expect(page.locator('.page-header .analytics-state[data-state="succeeded"]')).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("analytics-chart").locator("path[data-series]").first).to_be_attached()
    expect(page.get_by_test_id("run-metrics").locator('[data-metric="n_anomalies"]')).to_be_visible()
    expect(page.get_by_test_id("run-summary")).not_to_be_empty()
    screenshot("demo-anomaly-run")
