"""Who gets a notification, on which channel, and when: rule recipients and people's preferences.

A rule names raw addresses (``notify.emails``, ``notify.whatsapp``) and users (``notify.users``).
A user hears on the channels their preferences enable (email to their account address, WhatsApp
to their number), only about alerts at or above their minimum severity, and - unless the alert
is critical - not during their quiet hours: such a notification is queued with its job's run-at
at the end of the quiet hours (in the factory's time zone; a window may run past midnight).
Disabled or deleted users are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from factoryops.core.db import utcnow
from factoryops.core.settings import NotificationSettings
from factoryops.jobs.queue import JobQueue
from factoryops.notifications.models import Delivery, NotificationPreference
from factoryops.tenancy.models import Factory, Role, User

SEVERITIES = ("info", "warning", "critical")
KIND = "alerts.notify"  # the job that sends one delivery
SYSTEM_KIND = "system.notify"  # the same, for system alerts (managed by super admins)


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1


@dataclass(frozen=True)
class Preferences:
    email: bool = True
    whatsapp: bool = False
    whatsapp_number: str | None = None
    min_severity: str = "info"
    quiet_start: str | None = None
    quiet_end: str | None = None


DEFAULTS = Preferences()


@dataclass(frozen=True)
class Target:
    channel: str  # email | whatsapp
    recipient: str
    user_id: str | None = None
    not_before: datetime | None = None  # quiet hours: send no earlier than this


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, timezone: str, start: str | None, end: str | None) -> datetime | None:
    """The end of the quiet hours ``now`` falls in (UTC), or None when ``now`` is not in them."""
    if not start or not end or start == end:
        return None
    tz = ZoneInfo(timezone or "UTC")
    local = now.astimezone(tz)
    t = local.time().replace(second=0, microsecond=0)
    s, e = _hhmm(start), _hhmm(end)
    if s < e:
        if not (s <= t < e):
            return None
        day = local.date()
    else:  # runs past midnight
        if t >= s:
            day = local.date() + timedelta(days=1)
        elif t < e:
            day = local.date()
        else:
            return None
    return datetime.combine(day, e, tzinfo=tz).astimezone(UTC)


def preferences_of(s: Session, user_ids: Iterable[str]) -> dict[str, Preferences]:
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = s.execute(select(NotificationPreference).where(NotificationPreference.user_id.in_(ids))).scalars()
    return {
        p.user_id: Preferences(p.email, p.whatsapp, p.whatsapp_number, p.min_severity, p.quiet_start, p.quiet_end)
        for p in rows
    }


def factory_timezone(s: Session, factory_id: str) -> str:
    tz = s.execute(select(Factory.timezone).where(Factory.id == factory_id)).scalar_one_or_none()
    return tz or "UTC"


def user_targets(
    s: Session, user_ids: Iterable[str], severity: str, now: datetime, timezone: str, skip_channel: str = ""
) -> list[Target]:
    """The channels of these users that want an alert of ``severity`` now (or after quiet hours)."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return []
    users = {u.id: u for u in s.execute(select(User).where(User.id.in_(ids), User.is_active.is_(True))).scalars()}
    prefs = preferences_of(s, users)
    targets: list[Target] = []
    for user_id in ids:
        user = users.get(user_id)
        if user is None:  # deleted, disabled, or not of this factory
            continue
        pref = prefs.get(user_id, DEFAULTS)
        if severity_rank(severity) < severity_rank(pref.min_severity):
            continue
        later = None if severity == "critical" else quiet_until(now, timezone, pref.quiet_start, pref.quiet_end)
        if pref.email and skip_channel != "email":
            targets.append(Target("email", user.email, user_id, later))
        if pref.whatsapp and pref.whatsapp_number and skip_channel != "whatsapp":
            targets.append(Target("whatsapp", pref.whatsapp_number, user_id, later))
    return targets


def rule_targets(s: Session, notify: Any, severity: str, now: datetime, timezone: str) -> list[Target]:
    """A rule's raw addresses, then its users by their preferences; each address once."""
    targets = [Target("email", e) for e in notify.emails] + [Target("whatsapp", p) for p in notify.whatsapp]
    targets += user_targets(s, getattr(notify, "users", []) or [], severity, now, timezone)
    return dedupe(targets)


def super_admin_targets(
    s: Session, severity: str, now: datetime, timezone: str, skip_channel: str = ""
) -> list[Target]:
    ids = list(
        s.execute(
            select(User.id).where(User.role == Role.super_admin, User.is_active.is_(True)).order_by(User.created_at)
        ).scalars()
    )
    return dedupe(user_targets(s, ids, severity, now, timezone, skip_channel))


def dedupe(targets: list[Target]) -> list[Target]:
    seen: set[tuple[str, str]] = set()
    unique: list[Target] = []
    for t in targets:
        key = (t.channel, t.recipient.lower())
        if key not in seen:
            seen.add(key)
            unique.append(t)
    return unique


def queue_delivery(
    s: Session,
    queue: JobQueue,
    settings: NotificationSettings,
    alert_id: str,
    event: str,
    target: Target,
    *,
    state: str = "queued",
    detail: dict[str, Any] | None = None,
    kind: str = KIND,
    created_by: str = "rule engine",
    at: datetime | None = None,
) -> Delivery:
    """A delivery row and, unless it is suppressed, the job that sends it (after quiet hours)."""
    delivery = Delivery(
        alert_id=alert_id,
        event=event,
        channel=target.channel,
        recipient=target.recipient,
        user_id=target.user_id,
        state=state,
        detail=detail,
        created_at=at or utcnow(),
    )
    s.add(delivery)
    s.flush()
    if state == "queued":
        queue.enqueue(
            s,
            kind,
            {"delivery_id": delivery.id},
            created_by=created_by,
            max_attempts=settings.max_attempts,
            priority=10,
            run_after=target.not_before,
        )
    return delivery
