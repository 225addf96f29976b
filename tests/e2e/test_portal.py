"""User journeys through the web portal shell, in a real browser against the real platform.

The journeys build on each other in file order (root creates Acme Steel, its super admin
creates admins, ...), but each one also sets up through the API whatever it needs, so any
test can run on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from portal_support import (
    ACME,
    ACME_DEVICES,
    ACME_READER,
    BOREALIS,
    ROOT_EMAIL,
    ROOT_PASSWORD,
    Account,
    ApiHelper,
)
from portal_support import sign_in as sign_in_factory

pytestmark = pytest.mark.e2e


def nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Factory navigation")


def sign_in(page: Page, slug: str, account: Account) -> None:
    """Signs in on a factory's login page and waits for the overview."""
    sign_in_factory(page, slug, account)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def user_row(page: Page, email: str) -> Locator:
    return page.get_by_role("table", name="Users").get_by_role("row").filter(has_text=email)


def test_root_creates_factory_with_super_admin(page: Page, api: ApiHelper, screenshot: Callable[[str], Path]) -> None:
    if api.factory_exists(ACME.slug):
        pytest.fail("Acme Steel already exists; this journey must run before anything creates it")

    page.goto("/")
    page.get_by_role("link", name="Platform administration").click()
    expect(page).to_have_url(re.compile(r"/root/login$"))
    expect(page.get_by_role("heading", name="Root console")).to_be_visible()
    form = page.get_by_role("form", name="Sign in")
    form.get_by_label("Email").fill(ROOT_EMAIL)
    form.get_by_label("Password").fill(ROOT_PASSWORD)
    form.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/root$"))
    expect(page.get_by_role("heading", name="Factories")).to_be_visible()
    expect(page.get_by_test_id("user-email")).to_have_text(ROOT_EMAIL)

    page.get_by_role("button", name="Create factory").click()
    create = page.get_by_role("form", name="Create factory")
    create.get_by_label("Name", exact=True).fill(ACME.name)
    expect(create.get_by_label("Slug")).to_have_value(ACME.slug)  # derived from the name
    create.get_by_label("Time zone").select_option(ACME.timezone)
    create.get_by_label("Description").fill(ACME.description)
    admin = ACME.super_admin
    create.get_by_label("Email").fill(admin.email)
    create.get_by_label("Full name").fill(admin.full_name)

    # The password policy is checked before anything is sent, next to the field.
    create.get_by_label("Initial password").fill("short")
    create.get_by_role("button", name="Create factory").click()
    expect(create.get_by_text("Use at least 10 characters.")).to_be_visible()

    create.get_by_label("Initial password").fill(admin.password)
    create.get_by_role("button", name="Create factory").click()

    expect(page.get_by_role("status").filter(has_text=f"Factory {ACME.name} created")).to_be_visible()
    row = page.get_by_role("table", name="Factories").get_by_role("row").filter(has_text=ACME.name)
    expect(row).to_contain_text(ACME.slug)
    expect(row).to_contain_text(ACME.timezone)
    expect(row.get_by_role("cell").nth(3)).to_have_text("1")  # its super admin

    # The same slug again: the API's answer appears next to the slug field.
    page.get_by_role("button", name="Create factory").click()
    create = page.get_by_role("form", name="Create factory")
    create.get_by_label("Name", exact=True).fill(ACME.name)
    create.get_by_label("Email").fill("someone@acme.example")
    create.get_by_label("Initial password").fill("Another-2026x")
    create.get_by_role("button", name="Create factory").click()
    expect(create.get_by_role("alert")).to_contain_text(ACME.slug)
    expect(create.locator(".field-invalid").filter(has_text="Slug")).to_contain_text("taken")
    create.get_by_role("button", name="Cancel").click()

    # Root adds a second super admin to the factory.
    row.get_by_role("button", name="Add super admin").click()
    dialog = page.get_by_role("dialog", name=f"Add a super admin to {ACME.name}")
    dialog.get_by_label("Email").fill("lee.deputy@acme.example")
    dialog.get_by_label("Full name").fill("Lee Deputy")
    dialog.get_by_label("Initial password").fill("Deputy-2026x")
    dialog.get_by_role("button", name="Add super admin").click()
    expect(page.get_by_role("status").filter(has_text="lee.deputy@acme.example is now a super admin")).to_be_visible()
    expect(row.get_by_role("cell").nth(3)).to_have_text("2")

    screenshot("root-console")


def test_super_admin_picks_factory_and_creates_admins(
    page: Page, api: ApiHelper, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_factory(ACME)

    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to your factory")).to_be_visible()
    page.get_by_label("Factory").select_option(label=ACME.name)
    page.get_by_role("button", name="Continue").click()

    expect(page).to_have_url(re.compile(rf"/f/{ACME.slug}/login$"))
    expect(page.get_by_test_id("login-factory-name")).to_have_text(ACME.name)
    form = page.get_by_role("form", name="Sign in")
    form.get_by_label("Email").fill(ACME.super_admin.email)
    form.get_by_label("Password").fill(ACME.super_admin.password)
    form.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(rf"/f/{ACME.slug}/overview$"))
    expect(page.get_by_test_id("factory-name")).to_have_text(ACME.name)
    expect(page.get_by_test_id("user-email")).to_have_text(ACME.super_admin.email)
    expect(page.get_by_test_id("user-role")).to_have_text("Super admin")
    expect(page.get_by_text("Welcome, Dana.")).to_be_visible()
    for area in ("Overview", "Devices", "Rules", "Alerts", "Analytics", "Reports", "Users", "Audit log"):
        expect(nav(page).get_by_role("link", name=area)).to_be_visible()

    nav(page).get_by_role("link", name="Users").click()
    expect(page).to_have_url(re.compile(rf"/f/{ACME.slug}/users$"))
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    expect(user_row(page, ACME.super_admin.email)).to_contain_text("(you)")

    # An admin without any permission flag: may read everything, change nothing.
    page.get_by_role("button", name="Add user").click()
    create = page.get_by_role("form", name="Add user")
    create.get_by_label("Email").fill(ACME_READER.email)
    create.get_by_label("Full name").fill(ACME_READER.full_name)
    create.get_by_label("Role").select_option("admin")
    create.get_by_label("Initial password").fill(ACME_READER.password)
    create.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status").filter(has_text=f"User {ACME_READER.email} created")).to_be_visible()
    reader = user_row(page, ACME_READER.email)
    expect(reader).to_contain_text("Admin")
    expect(reader).to_contain_text("Read only")
    expect(reader).to_contain_text("Active")

    # An admin who may change devices.
    page.get_by_role("button", name="Add user").click()
    create = page.get_by_role("form", name="Add user")
    create.get_by_label("Email").fill(ACME_DEVICES.email)
    create.get_by_label("Full name").fill(ACME_DEVICES.full_name)
    create.get_by_label("Initial password").fill(ACME_DEVICES.password)
    create.get_by_label("Devices").check()
    create.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status").filter(has_text=f"User {ACME_DEVICES.email} created")).to_be_visible()
    devices_admin = user_row(page, ACME_DEVICES.email)
    expect(devices_admin).to_contain_text("Admin")
    expect(devices_admin).to_contain_text("Devices")
    expect(devices_admin).not_to_contain_text("Read only")

    # The same email again: the API's refusal shows next to the email field.
    page.get_by_role("button", name="Add user").click()
    create = page.get_by_role("form", name="Add user")
    create.get_by_label("Email").fill(ACME_READER.email)
    create.get_by_label("Initial password").fill("Whatever-2026x")
    create.get_by_role("button", name="Create user").click()
    expect(create.get_by_role("alert")).to_contain_text("already exists")
    expect(create.locator(".field-invalid").filter(has_text="Email")).to_contain_text("taken")
    create.get_by_role("button", name="Cancel").click()

    # Server-side search.
    page.get_by_label("Search users").fill("ivan")
    expect(page.get_by_role("table", name="Users").get_by_role("row")).to_have_count(2)  # header + Ivan
    expect(user_row(page, ACME_DEVICES.email)).to_be_visible()
    page.get_by_label("Search users").fill("")
    expect(user_row(page, ACME_READER.email)).to_be_visible()

    screenshot("users-page")


def test_admin_without_permissions_gets_no_user_page(
    page: Page, api: ApiHelper, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_user(ACME, ACME_READER, permissions=[])

    sign_in(page, ACME.slug, ACME_READER)
    expect(page.get_by_test_id("user-role")).to_have_text("Admin")
    expect(nav(page).get_by_role("link", name="Overview")).to_be_visible()
    expect(nav(page).get_by_role("link", name="Devices")).to_be_visible()
    expect(nav(page).get_by_role("link", name="Users")).to_have_count(0)
    expect(nav(page).get_by_role("link", name="Audit log")).to_have_count(0)

    nav(page).get_by_role("link", name="Devices").click()
    expect(page.get_by_role("heading", name="Devices", exact=True)).to_be_visible()
    expect(page.get_by_text("Read only")).to_be_visible()

    page.goto(f"/f/{ACME.slug}/users")
    expect(page.get_by_text("You don't have access to user management")).to_be_visible()
    expect(page.get_by_role("table", name="Users")).to_have_count(0)
    expect(page.get_by_text(ACME.super_admin.email)).to_have_count(0)
    screenshot("no-access")

    page.goto(f"/f/{ACME.slug}/audit")
    expect(page.get_by_text("You don't have access to the audit log")).to_be_visible()


def test_admin_with_devices_flag_may_change_devices(page: Page, api: ApiHelper) -> None:
    api.ensure_user(ACME, ACME_DEVICES, permissions=["devices"])

    sign_in(page, ACME.slug, ACME_DEVICES)
    expect(nav(page).get_by_role("link", name="Users")).to_have_count(0)
    nav(page).get_by_role("link", name="Devices").click()
    expect(page.get_by_text("You can make changes")).to_be_visible()
    nav(page).get_by_role("link", name="Rules").click()
    expect(page.get_by_role("heading", name="Rules", exact=True)).to_be_visible()
    expect(page.get_by_text("Read only")).to_be_visible()


def test_wrong_password_shows_clear_error(page: Page, api: ApiHelper, screenshot: Callable[[str], Path]) -> None:
    api.ensure_factory(ACME)

    page.goto(f"/f/{ACME.slug}/login")
    form = page.get_by_role("form", name="Sign in")
    form.get_by_label("Email").fill(ACME.super_admin.email)
    form.get_by_label("Password").fill("Not-the-password-1")
    form.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
    expect(page).to_have_url(re.compile(rf"/f/{ACME.slug}/login$"))
    expect(form.get_by_label("Password")).to_have_value("")
    screenshot("wrong-password")

    # Empty fields are caught before anything is sent.
    form.get_by_label("Email").fill("")
    form.get_by_role("button", name="Sign in").click()
    expect(form.get_by_text("Enter your email address.")).to_be_visible()
    expect(form.get_by_text("Enter your password.")).to_be_visible()

    # The right password still works afterwards.
    form.get_by_label("Email").fill(ACME.super_admin.email)
    form.get_by_label("Password").fill(ACME.super_admin.password)
    form.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/f/{ACME.slug}/overview$"))


def test_repeated_wrong_passwords_lock_the_account(page: Page, api: ApiHelper) -> None:
    victim = Account("max.locked@acme.example", "Max Locked", "Original-2026x")
    api.ensure_user(ACME, victim, permissions=[])

    page.goto(f"/f/{ACME.slug}/login")
    form = page.get_by_role("form", name="Sign in")
    form.get_by_label("Email").fill(victim.email)
    for attempt in range(1, 7):
        form.get_by_label("Password").fill(f"Wrong-guess-{attempt}")
        form.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text(re.compile("Wrong email or password|Account locked"))
        expect(form.get_by_role("button", name="Sign in")).to_be_enabled()
    expect(page.get_by_role("alert")).to_contain_text("Account locked")

    # Even the right password is refused while locked, with the same clear message.
    form.get_by_label("Password").fill(victim.password)
    form.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Account locked")
    expect(page).to_have_url(re.compile(rf"/f/{ACME.slug}/login$"))


def test_other_factory_super_admin_does_not_see_acme_users(
    page: Page, api: ApiHelper, screenshot: Callable[[str], Path]
) -> None:
    acme_reader = api.ensure_user(ACME, ACME_READER, permissions=[])
    api.ensure_factory(BOREALIS)

    sign_in(page, BOREALIS.slug, BOREALIS.super_admin)
    expect(page.get_by_test_id("factory-name")).to_have_text(BOREALIS.name)
    nav(page).get_by_role("link", name="Users").click()

    table = page.get_by_role("table", name="Users")
    expect(user_row(page, BOREALIS.super_admin.email)).to_be_visible()
    expect(table).not_to_contain_text("acme.example")
    expect(page.get_by_role("navigation", name="Pagination")).to_contain_text("of 1 users")

    page.get_by_label("Search users").fill("acme")
    expect(page.get_by_text("No users match “acme”.")).to_be_visible()
    screenshot("other-factory-users")

    # Acme's pages are not Borealis's: the portal asks for an Acme sign-in instead.
    page.goto(f"/f/{ACME.slug}/users")
    expect(page).to_have_url(re.compile(rf"/f/{ACME.slug}/login$"))
    expect(page.get_by_test_id("login-factory-name")).to_have_text(ACME.name)
    expect(page.get_by_role("table", name="Users")).to_have_count(0)

    # And the API answers 404 for Acme's user with a Borealis token.
    token = api.login(BOREALIS.slug, BOREALIS.super_admin)
    response = api.client.get(f"/users/{acme_reader['id']}", headers=api.auth(token))
    assert response.status_code == 404, response.text


def test_super_admin_resets_password_and_reads_audit_log(
    page: Page, api: ApiHelper, screenshot: Callable[[str], Path]
) -> None:
    api.ensure_user(ACME, ACME_DEVICES, permissions=["devices"])
    sign_in(page, ACME.slug, ACME.super_admin)
    nav(page).get_by_role("link", name="Users").click()

    user_row(page, ACME_DEVICES.email).get_by_role("button", name="Reset password").click()
    dialog = page.get_by_role("dialog", name=f"Reset password of {ACME_DEVICES.email}")
    dialog.get_by_label("Temporary password").fill("Temporary-2026x")
    dialog.get_by_role("button", name="Reset password").click()
    expect(dialog.get_by_test_id("temporary-password")).to_contain_text("Temporary-2026x")
    dialog.get_by_role("button", name="Done").click()
    expect(user_row(page, ACME_DEVICES.email)).to_contain_text("Must change password")

    nav(page).get_by_role("link", name="Audit log").click()
    events = page.get_by_role("table", name="Audit events")
    expect(events).to_contain_text("login_succeeded")
    expect(events).to_contain_text(ACME.super_admin.email)
    screenshot("audit-log")

    # The user signs in with the temporary password and must choose a new one first.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(rf"/f/{ACME.slug}/login$"))
    form = page.get_by_role("form", name="Sign in")
    form.get_by_label("Email").fill(ACME_DEVICES.email)
    form.get_by_label("Password").fill("Temporary-2026x")
    form.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(ACME_DEVICES.password)
    page.get_by_label("Repeat new password").fill(ACME_DEVICES.password)
    page.get_by_role("button", name="Set password and continue").click()
    expect(page).to_have_url(re.compile(rf"/f/{ACME.slug}/overview$"))
    expect(page.get_by_test_id("user-email")).to_have_text(ACME_DEVICES.email)


def test_expired_access_token_is_renewed_and_dead_session_returns_to_sign_in(page: Page, api: ApiHelper) -> None:
    api.ensure_factory(ACME)
    sign_in(page, ACME.slug, ACME.super_admin)

    # A rejected access token is renewed once with the refresh token, invisibly to the user.
    page.evaluate(
        """() => {
            const s = JSON.parse(sessionStorage.getItem("factoryops.session"));
            s.accessToken = "expired.or.forged";
            sessionStorage.setItem("factoryops.session", JSON.stringify(s));
        }"""
    )
    nav(page).get_by_role("link", name="Users").click()
    expect(user_row(page, ACME.super_admin.email)).to_be_visible()
    renewed = page.evaluate("() => JSON.parse(sessionStorage.getItem('factoryops.session')).accessToken")
    assert renewed != "expired.or.forged"

    # When the session itself is gone, the user is sent back to sign in, with a reason.
    page.evaluate(
        """() => {
            const s = JSON.parse(sessionStorage.getItem("factoryops.session"));
            s.accessToken = "expired.or.forged";
            s.refreshToken = "revoked";
            sessionStorage.setItem("factoryops.session", JSON.stringify(s));
        }"""
    )
    nav(page).get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(re.compile(rf"/f/{ACME.slug}/login$"))
    expect(page.get_by_role("status")).to_contain_text("Your session has expired")

    # Signing in again returns to the page the session was on.
    form = page.get_by_role("form", name="Sign in")
    form.get_by_label("Email").fill(ACME.super_admin.email)
    form.get_by_label("Password").fill(ACME.super_admin.password)
    form.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/f/{ACME.slug}/audit$"))
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
