"""The platform root's health page, in a real browser against `factoryops up` (telemetry and worker in-process)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from portal_support import open_from_nav, sign_in_root

pytestmark = pytest.mark.e2e


def test_root_sees_platform_health(page: Page, screenshot: Callable[[str], Path]) -> None:
    sign_in_root(page)

    open_from_nav(page, "Platform health", navigation="Platform navigation")
    expect(page).to_have_url(re.compile(r"/root/health$"))
    expect(page.get_by_role("heading", name="Platform health")).to_be_visible()

    # `factoryops up` runs everything on the embedded defaults: every dependency answers.
    dependencies = page.get_by_role("table", name="Dependencies")
    for name in ("Metadata database", "MQTT broker", "Time-series store", "Object store"):
        row = dependencies.get_by_role("row").filter(has_text=name)
        expect(row).to_have_attribute("data-status", "ok")
        expect(row.get_by_text("Reachable")).to_be_visible()

    # The in-process telemetry service and worker send heartbeats.
    processes = page.get_by_role("table", name="Processes")
    for kind in ("telemetry", "worker"):
        row = processes.locator(f"tr[data-service^='{kind}:']").first
        expect(row).to_have_attribute("data-status", "up")
        expect(row.get_by_text("Up", exact=True)).to_be_visible()
    expect(page.get_by_role("status", name="Platform status")).to_have_attribute(
        "data-status", re.compile("ok|degraded")
    )
    screenshot("platform-health")
