"""Per-user notification preferences: the API, and rules whose recipients are users - channels,
minimum severity, quiet hours in the factory's time zone (deferred unless critical), disabled
users skipped - delivered through a real SMTP server (aiosmtpd) and a local fake of Twilio."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from channels import Channels, drain, open_channels
from factoryops.core.db import utcnow
from factoryops.core.settings import NotificationSettings
from factoryops.jobs.models import Job
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import JobWorker
from factoryops.notifications.models import Delivery
from factoryops.notifications.recipients import quiet_until
from factoryops.notifications.service import Outbox, handlers
from factoryops.rules.engine import RuleEngine
from support import auth, setup_rule

DEFAULTS = {"email": True, "whatsapp": False, "whatsapp_number": None, "min_severity": "info", "quiet_hours": None}


@pytest.fixture()
def channels() -> Iterator[Channels]:
    with open_channels() as opened:
        yield opened


def _put(client: TestClient, token: str, body: dict[str, Any]) -> Any:
    return client.put("/api/v1/me/notification-preferences", headers=auth(token), json=body)


# ---------------------------------------------------------------------- the API
def test_preferences_default_then_saved_per_user(client: TestClient, make_factory) -> None:
    world = make_factory()
    r = client.get("/api/v1/me/notification-preferences", headers=auth(world.admin_plain_token))
    assert r.status_code == 200 and r.json() == DEFAULTS
    mine = {
        "email": False,
        "whatsapp": True,
        "whatsapp_number": "+4915112345678",
        "min_severity": "warning",
        "quiet_hours": {"start": "22:00", "end": "06:30"},
    }
    r = _put(client, world.admin_plain_token, mine)
    assert r.status_code == 200 and r.json() == mine
    assert client.get("/api/v1/me/notification-preferences", headers=auth(world.admin_plain_token)).json() == mine
    # another user of the same factory still has the defaults; a second PUT replaces the first
    assert client.get("/api/v1/me/notification-preferences", headers=auth(world.super_token)).json() == DEFAULTS
    r = _put(client, world.admin_plain_token, {**DEFAULTS, "min_severity": "critical"})
    assert r.status_code == 200 and r.json() == {**DEFAULTS, "min_severity": "critical"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"whatsapp": True, "whatsapp_number": "0151 123"}, "body.whatsapp_number"),
        ({"whatsapp": True}, "body.whatsapp_number"),
        ({"quiet_hours": {"start": "25:00", "end": "06:00"}}, "body.quiet_hours.start"),
        ({"quiet_hours": {"start": "22:00", "end": "6:00"}}, "body.quiet_hours.end"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "body.quiet_hours"),
        ({"min_severity": "urgent"}, "body.min_severity"),
    ],
)
def test_bad_preferences_are_refused_naming_the_field(
    client: TestClient, make_factory, body: dict[str, Any], field: str
) -> None:
    world = make_factory(with_admins=False)
    r = _put(client, world.super_token, {**DEFAULTS, **body})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == field, r.text


def test_the_platform_root_has_no_preferences(client: TestClient, root_token: str) -> None:
    assert client.get("/api/v1/me/notification-preferences", headers=auth(root_token)).status_code == 403
    assert _put(client, root_token, DEFAULTS).status_code == 403


def test_rule_users_must_be_users_of_this_factory(client: TestClient, make_factory) -> None:
    world, other = make_factory(), make_factory()
    definition = {
        "scope": {"kind": "factory"},
        "condition": {"property": "power_kw", "operator": ">", "value": 100},
        "notify": {"users": [other.admin_plain["id"]], "remind_after_minutes": 5},
    }
    setup_rule(client, world, {**definition, "notify": {"users": [world.admin_plain["id"]]}})
    r = client.post("/api/v1/rules", headers=auth(world.super_token), json={"name": "x", "definition": definition})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "body.definition.notify.users"
    assert other.admin_plain["id"] in r.json()["error"]["message"]
    bad = {**definition, "notify": {"remind_after_minutes": -1}}
    r = client.post("/api/v1/rules", headers=auth(world.super_token), json={"name": "x", "definition": bad})
    assert r.status_code == 422 and "remind_after_minutes" in r.json()["error"]["details"][0]["field"]


# ---------------------------------------------------------------------- delivery by preferences
def _pipeline(platform: Any, settings: NotificationSettings, name: str) -> tuple[RuleEngine, JobWorker]:
    outbox = Outbox(platform.db, settings)
    engine = RuleEngine(platform.db, on_transition=outbox.on_transition)
    worker = JobWorker(JobQueue(platform.db), handlers(platform.db, settings), name=name)
    return engine, worker


def test_users_are_notified_by_their_channels_and_minimum_severity(
    client: TestClient, make_factory, channels: Channels
) -> None:
    world = make_factory()
    platform = client.app.state.platform  # type: ignore[attr-defined]
    # admin_plain: WhatsApp only; admin_all: only critical alerts; a disabled user: nothing
    assert (
        _put(
            client,
            world.admin_plain_token,
            {**DEFAULTS, "email": False, "whatsapp": True, "whatsapp_number": "+4915199999999"},
        ).status_code
        == 200
    )
    assert _put(client, world.admin_all_token, {**DEFAULTS, "min_severity": "critical"}).status_code == 200
    r = client.post(
        "/api/v1/users",
        headers=auth(world.super_token),
        json={
            "email": f"gone-{world.slug}@plant.example",
            "full_name": "Gone",
            "role": "admin",
            "permissions": [],
            "password": "Strong-Pass-2026",
        },
    )
    gone = r.json()
    users = [world.super_admin["user_id"], world.admin_plain["id"], world.admin_all["id"], gone["id"]]
    setup_rule(
        client,
        world,
        {
            "scope": {"kind": "factory"},
            "condition": {"property": "power_kw", "operator": ">", "value": 100},
            "severity": "warning",
            "cooldown_seconds": 0,
            "notify": {"users": users, "emails": [world.super_admin["email"]]},
        },
    )
    r = client.patch(f"/api/v1/users/{gone['id']}", headers=auth(world.super_token), json={"is_active": False})
    assert r.status_code == 200, r.text
    engine, worker = _pipeline(platform, channels.settings, "prefs-1")
    engine.on_event(world.id, "press-1", "", utcnow(), {"power_kw": 150.0})
    drain(worker)
    # the super admin's address once, though named twice (raw and as a user)
    assert len(channels.mails_to(world.super_admin["email"])) == 1
    assert channels.mails_to(world.admin_plain["email"]) == []
    assert channels.mails_to(world.admin_all["email"]) == []  # below their minimum severity
    assert channels.mails_to(gone["email"]) == []  # disabled
    assert [w["form"]["To"] for w in channels.whatsapp] == ["whatsapp:+4915199999999"]
    log = client.get("/api/v1/notifications/deliveries", headers=auth(world.super_token)).json()
    assert sorted((d["channel"], d["recipient"], d["state"]) for d in log["items"]) == [
        ("email", world.super_admin["email"], "sent"),
        ("whatsapp", "+4915199999999", "sent"),
    ]


def test_quiet_hours_defer_all_but_critical(client: TestClient, make_factory, channels: Channels) -> None:
    world = make_factory()
    platform = client.app.state.platform  # type: ignore[attr-defined]
    berlin = utcnow().astimezone(ZoneInfo("Europe/Berlin"))  # the factory's time zone
    start = (berlin - timedelta(hours=1)).strftime("%H:%M")
    end = (berlin + timedelta(hours=2)).strftime("%H:%M")
    assert (
        _put(client, world.admin_plain_token, {**DEFAULTS, "quiet_hours": {"start": start, "end": end}}).status_code
        == 200
    )
    for severity, name in (("warning", "Warm"), ("critical", "Hot")):
        setup_rule(
            client,
            world,
            {
                "scope": {"kind": "device", "device_ids": [f"{name.lower()}-1"]},
                "condition": {"property": "power_kw", "operator": ">", "value": 100},
                "severity": severity,
                "notify": {"users": [world.admin_plain["id"]]},
            },
            devices={f"{name.lower()}-1": ""},
            properties=("power_kw",) if severity == "warning" else (),
            name=name,
        )
    engine, worker = _pipeline(platform, channels.settings, "prefs-2")
    now = utcnow()
    engine.on_event(world.id, "warm-1", "", now, {"power_kw": 150.0})
    engine.on_event(world.id, "hot-1", "", now, {"power_kw": 150.0})
    drain(worker)
    mails = channels.mails_to(world.admin_plain["email"])
    assert len(mails) == 1 and "[CRITICAL] Hot on hot-1" in mails[0]
    with platform.db.factory_session(world.id) as s:
        waiting = s.execute(select(Delivery).where(Delivery.state == "queued")).scalar_one()
        job = s.execute(select(Job).where(Job.kind == "alerts.notify", Job.state == "queued")).scalar_one()
        assert job.payload["delivery_id"] == waiting.id and waiting.user_id == world.admin_plain["id"]
        expected = datetime.combine(
            (berlin + timedelta(hours=2)).date(),
            datetime.strptime(end, "%H:%M").time(),
            tzinfo=ZoneInfo("Europe/Berlin"),
        ).astimezone(UTC)
        assert job.run_after == expected


def test_quiet_hours_across_midnight_and_time_zones() -> None:
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text)

    # 22:00-06:00 in Berlin (UTC+1 in January)
    assert quiet_until(at("2026-01-10T21:30:00+00:00"), "Europe/Berlin", "22:00", "06:00") == at(
        "2026-01-11T05:00:00+00:00"
    )
    assert quiet_until(at("2026-01-11T03:00:00+00:00"), "Europe/Berlin", "22:00", "06:00") == at(
        "2026-01-11T05:00:00+00:00"
    )
    assert quiet_until(at("2026-01-11T12:00:00+00:00"), "Europe/Berlin", "22:00", "06:00") is None
    assert quiet_until(at("2026-01-11T20:59:00+00:00"), "Europe/Berlin", "22:00", "06:00") is None
    # a window within one day, in New York (UTC-5)
    assert quiet_until(at("2026-01-11T18:00:00+00:00"), "America/New_York", "12:00", "14:00") == at(
        "2026-01-11T19:00:00+00:00"
    )
    assert quiet_until(at("2026-01-11T19:00:00+00:00"), "America/New_York", "12:00", "14:00") is None
    assert quiet_until(at("2026-01-11T19:00:00+00:00"), "UTC", None, None) is None
