"""The notification outbox: alert transitions become delivery rows and jobs; workers deliver them.

Enqueueing is a few small writes in the telemetry process; the sending happens in workers, so a
dead SMTP server or a Twilio outage never slows ingestion or rules. Each delivery is retried with
the job queue's backoff; after the last attempt it is marked failed with its error, visible in
the delivery log (``GET /api/v1/notifications/deliveries``), and a ``channel_failing`` system
alert opens.

Recipients: a rule's raw addresses and its users by their preferences
(:mod:`factoryops.notifications.recipients`). Flood cap: at most ``flood_max_per_window``
notifications per rule and device in one window of ``flood_window_seconds``; further transitions
in the window are logged as ``suppressed`` deliveries (no job), and when the window ends one
``digest`` delivery per recipient sums them up. Reminders: while an alert stays open and
unacknowledged, :class:`ReminderSweep` (run by the workers) sends a ``reminder`` to the same
recipients every ``remind_after_minutes``, at most ``reminder_max`` times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from factoryops.alerts.models import Alert, AlertEvent, AlertState
from factoryops.core import logs
from factoryops.core.db import Database, utcnow
from factoryops.core.settings import NotificationSettings
from factoryops.devices.models import Device, Property
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import Handler, JobContext
from factoryops.notifications import system_alerts
from factoryops.notifications.channels import ChannelOff, send_email, send_whatsapp
from factoryops.notifications.models import Delivery, FloodWindow, Reminder, SystemAlert
from factoryops.notifications.recipients import (
    KIND,
    SYSTEM_KIND,
    Target,
    factory_timezone,
    preferences_of,
    queue_delivery,
    quiet_until,
    rule_targets,
)
from factoryops.rules.definition import Notify, RuleDefinition
from factoryops.rules.engine import Transition
from factoryops.rules.models import Rule
from factoryops.tenancy.models import Factory

log = logging.getLogger(__name__)

DIGEST_KIND = "alerts.digest"
DELIVERIES = Counter(
    "factoryops_notification_deliveries_total",
    "Notification delivery attempts, by channel (email, whatsapp) and outcome: sent, retrying (failed, tried "
    "again later), failed (for good), skipped (no longer needed).",
    ["channel", "outcome"],
)
ANNOUNCED_LATE = Counter(
    "factoryops_alert_announcements_late_total",
    "Alert transitions whose notifications the telemetry process could not queue and a worker's sweep "
    "queued later (nothing is lost; a rising count means the database was unreachable at alert time).",
)
__all__ = ["DIGEST_KIND", "KIND", "SYSTEM_KIND", "AnnounceSweep", "Outbox", "ReminderSweep", "handlers"]


@dataclass(frozen=True)
class Context:
    """What makes a notification readable away from the portal: the plant, its local time, the
    device's name and place, the units of the values, and a link to the alert."""

    factory_name: str = ""
    factory_slug: str = ""
    timezone: str = "UTC"
    device_name: str = ""
    location: str = ""
    units: dict[str, str] = field(default_factory=dict)
    portal_url: str = ""

    def when(self, moment: datetime) -> str:
        """A stored (UTC) moment in the factory's time, with UTC beside it when they differ."""
        utc = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        local = utc.astimezone(zone)
        text = f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or self.timezone}"
        return text if local.utcoffset() == timedelta(0) else f"{text} ({utc:%H:%M:%S} UTC)"

    def device(self, device_id: str) -> str:
        return f"{device_id} ({self.device_name})" if self.device_name and self.device_name != device_id else device_id

    def link(self, alert_id: str) -> str:
        if not self.portal_url or not self.factory_slug:
            return ""
        return f"Open in FactoryOps: {self.portal_url.rstrip('/')}/f/{self.factory_slug}/alerts/{alert_id}\n"

    def values(self, values: dict[str, Any]) -> str:
        def one(name: str, value: Any) -> str:
            unit = f" {self.units[name]}" if self.units.get(name) else ""
            return f"{name} = {value:g}{unit}" if isinstance(value, int | float) else f"{name} = {value}{unit}"

        return ", ".join(one(k, v) for k, v in sorted(values.items()))


def _context(s: Session, factory_id: str, device_id: str, names: Iterable[str], portal_url: str) -> Context:
    factory = s.execute(
        select(Factory.name, Factory.slug, Factory.timezone).where(Factory.id == factory_id)
    ).one_or_none()
    device = s.execute(select(Device.name, Device.location).where(Device.device_id == device_id)).one_or_none()
    wanted = sorted(set(names))
    units = (
        {n: u for n, u in s.execute(select(Property.name, Property.unit).where(Property.name.in_(wanted))) if u}
        if wanted
        else {}
    )
    return Context(
        factory_name=factory.name if factory else "",
        factory_slug=factory.slug if factory else "",
        timezone=(factory.timezone if factory else "") or "UTC",
        device_name=device.name if device else "",
        location=device.location if device else "",
        units=units,
        portal_url=portal_url,
    )


def _text(
    alert: Alert, event: str, detail: dict[str, Any] | None = None, ctx: Context | None = None
) -> tuple[str, str]:
    detail = detail or {}
    ctx = ctx or Context()
    values = ctx.values(alert.trigger_values)
    plant = f" - {ctx.factory_name}" if ctx.factory_name else ""
    device = ctx.device(alert.device_id)
    where = (
        (f"Factory: {ctx.factory_name}\n" if ctx.factory_name else "")
        + f"Device: {device}\n"
        + (f"Location: {ctx.location}\n" if ctx.location else "")
    )
    if event == "opened":
        subject = f"[{alert.severity.upper()}] {alert.rule_name} on {device}{plant}"
        body = (
            f"Alert opened at {ctx.when(alert.opened_at)}\n"
            f"Rule: {alert.rule_name}\n{where}Severity: {alert.severity}\nValues: {values}\n"
        )
    elif event == "reminder":
        number, of = detail.get("number", 1), detail.get("of", 1)
        subject = f"[REMINDER {number}/{of}] [{alert.severity.upper()}] {alert.rule_name} on {device}{plant}"
        body = (
            f"This alert is still open and nobody has acknowledged it.\n"
            f"Opened at {ctx.when(alert.opened_at)}\n"
            f"Rule: {alert.rule_name}\n{where}Severity: {alert.severity}\nValues: {values}\n"
        )
    elif event == "digest":
        subject = f"[DIGEST] {alert.rule_name} on {device}: {detail.get('count', 0)} notification(s) held back{plant}"
        body = (
            f"The rule {alert.rule_name!r} changed state on {device} more often than the flood cap allows "
            f"({detail.get('cap', '?')} notifications per {detail.get('window_seconds', '?')} s).\n"
            f"Held back: {detail.get('count', 0)} ({detail.get('opened', 0)} opened, "
            f"{detail.get('resolved', 0)} resolved)\n"
            f"First: {detail.get('first_at', '-')}\nLast: {detail.get('last_at', '-')}\n"
            f"Peak values: {ctx.values(detail.get('peak', {})) or '-'}\n{where}"
        )
    else:
        cleared = ctx.values(alert.clear_values)
        subject = f"[RESOLVED] {alert.rule_name} on {device}{plant}"
        body = (
            f"Alert resolved at {ctx.when(alert.resolved_at or utcnow())} by {alert.resolved_by}\n"
            f"Rule: {alert.rule_name}\n{where}Values now: {cleared or '-'}\n"
        )
    return subject, body + ctx.link(alert.id)


def _system_text(alert: SystemAlert, ctx: Context | None = None) -> tuple[str, str]:
    ctx = ctx or Context()
    title = system_alerts.TITLES.get(alert.kind, alert.kind)
    subject = f"[SYSTEM] {title}" + (f" - {ctx.factory_name}" if ctx.factory_name else "")
    body = (
        f"{title} (opened at {ctx.when(alert.opened_at)}).\n{alert.message}\n"
        "See the system alerts of your factory in FactoryOps.\n"
    )
    return subject, body


def _collided(exc: DBAPIError) -> bool:
    """A duplicate key, or MySQL's deadlock / lock wait timeout between two inserting processes."""
    if isinstance(exc, IntegrityError):
        return True
    code = getattr(exc.orig, "args", [None])[0]
    return code in (1213, 1205)


class Outbox:
    def __init__(self, db: Database, settings: NotificationSettings, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.queue = JobQueue(db)
        self.clock = clock

    # ------------------------------------------------------------------ telemetry process
    def on_transition(self, factory_id: str, transition: Transition) -> int:
        """Creates the deliveries of one alert transition; returns how many (suppressed ones too)."""
        return self.announce(factory_id, transition) or 0

    def announce(self, factory_id: str, transition: Transition) -> int | None:
        """Creates the deliveries of one alert transition, once: the transition's event is claimed
        (``announced`` set) in the transaction that queues them. Returns how many deliveries (suppressed
        ones too), or None when the transition was announced already (by another process, or the sweep).
        """
        for attempt in range(3):
            try:
                return self._on_transition(factory_id, transition, self.clock())
            except DBAPIError as exc:  # two processes opened the same flood window at once: count again
                if attempt == 2 or not _collided(exc):
                    raise
        return 0

    def _on_transition(self, factory_id: str, transition: Transition, now: datetime) -> int | None:
        if transition.kind not in ("opened", "resolved"):
            return 0
        with self.db.factory_session(factory_id) as s:
            claimed = s.execute(
                update(AlertEvent)
                .where(
                    AlertEvent.alert_id == transition.alert_id,
                    AlertEvent.kind == transition.kind,
                    AlertEvent.announced.is_(False),
                )
                .values(announced=True)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            rule = s.get(Rule, transition.rule_id)
            alert = s.get(Alert, transition.alert_id)
            if rule is None or alert is None:
                return 0
            notify = RuleDefinition.model_validate(rule.definition).notify
            if transition.kind == "opened" and notify.remind_after_minutes > 0 and self.settings.reminder_max > 0:
                s.add(
                    Reminder(
                        alert_id=alert.id,
                        rule_id=rule.id,
                        next_at=now + timedelta(minutes=notify.remind_after_minutes),
                    )
                )
            if transition.kind == "resolved" and not notify.on_resolve:
                return 0
            targets = rule_targets(s, notify, alert.severity, now, factory_timezone(s, factory_id))
            if not targets:
                return 0
            state = "queued" if self._within_cap(s, transition, now) else "suppressed"
            for target in targets:
                queue_delivery(s, self.queue, self.settings, alert.id, transition.kind, target, state=state, at=now)
            return len(targets)

    def _within_cap(self, s: Session, transition: Transition, now: datetime) -> bool:
        """Counts this transition in its rule and device's flood window; False when over the cap."""
        cap = self.settings.flood_max_per_window
        if cap <= 0:
            return True
        length = timedelta(seconds=self.settings.flood_window_seconds)
        mine = (FloodWindow.rule_id == transition.rule_id, FloodWindow.device_id == transition.device_id)
        # Take the row's write lock before reading it (SQLite ignores FOR UPDATE; a no-op update
        # starts its write transaction), so two transitions never count from the same value.
        s.execute(
            update(FloodWindow).where(*mine).values(sent=FloodWindow.sent).execution_options(synchronize_session=False)
        )
        window = s.execute(select(FloodWindow).where(*mine).with_for_update()).scalar_one_or_none()
        if window is None:
            window = FloodWindow(
                rule_id=transition.rule_id,
                device_id=transition.device_id,
                window_start=now,
                window_end=now + length,
                sent=0,
                suppressed=0,
            )
            s.add(window)
            s.flush()
        elif window.window_end <= now:
            window.window_start, window.window_end, window.sent, window.suppressed = now, now + length, 0, 0
        if window.sent < cap:
            window.sent += 1
            return True
        window.suppressed += 1
        if window.suppressed == 1:  # the window's digest, when it ends
            self.queue.enqueue(
                s,
                DIGEST_KIND,
                {
                    "rule_id": transition.rule_id,
                    "device_id": transition.device_id,
                    "start": window.window_start.isoformat(),
                    "end": window.window_end.isoformat(),
                },
                created_by="flood cap",
                max_attempts=self.settings.max_attempts,
                priority=10,
                run_after=window.window_end,
            )
        return False

    # ------------------------------------------------------------------ workers
    def digest(self, ctx: JobContext) -> dict[str, Any]:
        """One digest delivery per recipient of the notifications a flood window held back."""
        p = ctx.payload
        start, end = datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"])
        now = self.clock()
        with self.db.factory_session(ctx.factory_id) as s:
            rows = s.execute(
                select(Delivery, Alert)
                .join(Alert, Alert.id == Delivery.alert_id)
                .where(
                    Alert.rule_id == p["rule_id"],
                    Alert.device_id == p["device_id"],
                    Delivery.state == "suppressed",
                    Delivery.event.in_(("opened", "resolved")),
                    Delivery.created_at >= start,
                    Delivery.created_at <= end,
                )
                .order_by(Delivery.created_at)
            ).all()
            if not rows:
                return {"digests": 0}
            by_recipient: dict[tuple[str, str, str | None], list[tuple[Delivery, Alert]]] = {}
            for delivery, alert in rows:
                key = (delivery.channel, delivery.recipient, delivery.user_id)
                by_recipient.setdefault(key, []).append((delivery, alert))
            timezone = factory_timezone(s, ctx.factory_id)
            prefs = preferences_of(s, [k[2] for k in by_recipient if k[2]])
            for (channel, recipient, user_id), items in by_recipient.items():
                peak: dict[str, float] = {}
                for delivery, alert in items:
                    if delivery.event != "opened":
                        continue
                    for name, value in alert.trigger_values.items():
                        if isinstance(value, int | float):
                            peak[name] = max(peak.get(name, value), value)
                last_alert = items[-1][1]
                detail = {
                    "rule_id": p["rule_id"],
                    "device_id": p["device_id"],
                    "count": len(items),
                    "opened": sum(1 for d, _ in items if d.event == "opened"),
                    "resolved": sum(1 for d, _ in items if d.event == "resolved"),
                    "first_at": items[0][0].created_at.isoformat(),
                    "last_at": items[-1][0].created_at.isoformat(),
                    "peak": peak,
                    "window_start": p["start"],
                    "window_end": p["end"],
                    "cap": self.settings.flood_max_per_window,
                    "window_seconds": self.settings.flood_window_seconds,
                }
                later = None
                if user_id and user_id in prefs and last_alert.severity != "critical":
                    later = quiet_until(now, timezone, prefs[user_id].quiet_start, prefs[user_id].quiet_end)
                target = Target(channel, recipient, user_id, later)
                queue_delivery(s, self.queue, self.settings, last_alert.id, "digest", target, detail=detail)
            return {"digests": len(by_recipient), "held_back": len(rows)}

    def deliver(self, ctx: JobContext) -> dict[str, Any]:
        delivery_id = ctx.payload["delivery_id"]
        with self.db.factory_session(ctx.factory_id) as s:
            delivery = s.get(Delivery, delivery_id)
            if delivery is None or delivery.state in ("sent", "suppressed"):
                return {"skipped": True}
            logs.annotate(alert_id=delivery.alert_id)
            if delivery.event == "system":
                system_alert = s.get(SystemAlert, delivery.alert_id)
                if system_alert is None:
                    delivery.state, delivery.error = "failed", "the system alert no longer exists"
                    DELIVERIES.labels(delivery.channel, "failed").inc()
                    return {"failed": delivery.error}
                about = _context(s, ctx.factory_id, "", (), self.settings.portal_url)
                subject, body = _system_text(system_alert, about)
            else:
                alert = s.get(Alert, delivery.alert_id)
                if alert is None:
                    delivery.state, delivery.error = "failed", "the alert no longer exists"
                    DELIVERIES.labels(delivery.channel, "failed").inc()
                    return {"failed": delivery.error}
                if delivery.event == "reminder" and alert.state != AlertState.open:
                    delivery.state = "suppressed"
                    delivery.error = f"the alert was {alert.state} before the reminder went out"
                    DELIVERIES.labels(delivery.channel, "skipped").inc()
                    return {"skipped": delivery.error}
                names = [*alert.trigger_values, *alert.clear_values, *(delivery.detail or {}).get("peak", {})]
                about = _context(s, ctx.factory_id, alert.device_id, names, self.settings.portal_url)
                subject, body = _text(alert, delivery.event, delivery.detail, about)
            channel, recipient, event = delivery.channel, delivery.recipient, delivery.event
        error = ""
        detail: dict[str, Any] = {}
        try:
            if channel == "email":
                send_email(self.settings, recipient, subject, body)
            else:
                detail["sid"] = send_whatsapp(self.settings, recipient, subject, body)
        except Exception as exc:  # every failure is recorded on the delivery, then retried by the queue
            error = f"{type(exc).__name__}: {exc}"
        channel_off = error.startswith(ChannelOff.__name__)
        final = bool(error) and (ctx.job.attempts >= ctx.job.max_attempts or channel_off)
        with self.db.factory_session(ctx.factory_id) as s:
            delivery = s.get(Delivery, delivery_id)
            assert delivery is not None
            delivery.attempts = ctx.job.attempts
            delivery.error = error
            if not error:
                delivery.state, delivery.sent_at = "sent", utcnow()
            elif final:
                delivery.state = "failed"
        DELIVERIES.labels(channel, "sent" if not error else "failed" if final or channel_off else "retrying").inc()
        if not error:
            system_alerts.resolve(ctx.factory_id, "channel_failing", prefix=f"{channel}:")
            return {"sent": recipient, **detail}
        if final and event != "system":  # a failing notification about a system alert raises nothing more
            system_alerts.report(
                ctx.factory_id,
                "channel_failing",
                f"{channel}: a notification to {recipient} failed after {ctx.job.attempts} attempt(s): {error[:500]}",
            )
        if channel_off:
            return {"failed": error}  # retrying cannot help until someone configures the channel
        raise RuntimeError(error)


class AnnounceSweep:
    """Queues the notifications of alert transitions that were never announced; run by every worker.

    The telemetry process announces a transition right after the transaction that opened or resolved
    the alert. When that second step fails (the database restarted in between, the process died),
    the transition's event stays ``announced = false`` and this sweep, ``grace_seconds`` later,
    announces it: late, but not lost. The claim in :meth:`Outbox.announce` makes each transition go
    out once, whoever gets there first.
    """

    def __init__(self, outbox: Outbox, grace_seconds: float = 30.0) -> None:
        self.outbox = outbox
        self.grace = timedelta(seconds=grace_seconds)

    def run(self, limit: int = 200) -> int:
        """Returns how many transitions this sweep announced."""
        now = self.outbox.clock()
        with self.outbox.db.unscoped_session() as s:  # housekeeping of every factory: ids only
            pending = s.execute(
                select(AlertEvent.factory_id, AlertEvent.alert_id, AlertEvent.kind, Alert.rule_id, Alert.device_id)
                .join(Alert, Alert.id == AlertEvent.alert_id)
                .where(AlertEvent.announced.is_(False), AlertEvent.at <= now - self.grace)
                .order_by(AlertEvent.at)
                .limit(limit)
            ).all()
        done = 0
        for factory_id, alert_id, kind, rule_id, device_id in pending:
            try:
                queued = self.outbox.announce(factory_id, Transition(kind, alert_id, rule_id, device_id))
            except Exception:  # one bad transition must not stop the others; the next sweep retries it
                log.exception("announcing alert %s (%s) failed", alert_id, kind, extra={"alert_id": alert_id})
                continue
            if queued is not None:
                done += 1
                ANNOUNCED_LATE.inc()
                log.warning(
                    "alert %s %s was announced late by the sweep (%d notifications queued)",
                    alert_id,
                    kind,
                    queued,
                    extra={"alert_id": alert_id, "factory_id": factory_id},
                )
        return done


class ReminderSweep:
    """Sends the reminders that are due; run periodically by every worker.

    Several workers may sweep at once: a reminder is claimed with a conditional update on its
    counter (``sent``) in the same transaction that queues its deliveries, so each reminder goes
    out once.
    """

    def __init__(self, db: Database, settings: NotificationSettings, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.queue = JobQueue(db)
        self.clock = clock

    def run(self, limit: int = 200) -> int:
        """Returns how many reminders went out."""
        now = self.clock()
        with self.db.unscoped_session() as s:  # housekeeping of every factory: due reminder ids only
            due = s.execute(
                select(Reminder.id, Reminder.factory_id)
                .where(Reminder.done.is_(False), Reminder.next_at <= now)
                .order_by(Reminder.next_at)
                .limit(limit)
            ).all()
        sent = 0
        for reminder_id, factory_id in due:
            try:
                sent += self._one(factory_id, reminder_id, now)
            except Exception:  # one bad reminder must not stop the others
                log.exception("reminder %s of factory %s failed", reminder_id, factory_id)
        return sent

    def _one(self, factory_id: str, reminder_id: str, now: datetime) -> int:
        with self.db.factory_session(factory_id) as s:
            reminder = s.get(Reminder, reminder_id)
            if reminder is None or reminder.done or reminder.next_at > now:
                return 0
            alert = s.get(Alert, reminder.alert_id)
            rule = s.get(Rule, reminder.rule_id)
            notify: Notify | None = RuleDefinition.model_validate(rule.definition).notify if rule else None
            cap = self.settings.reminder_max
            finished = (
                alert is None
                or alert.state != AlertState.open
                or rule is None
                or not rule.enabled
                or notify is None
                or notify.remind_after_minutes <= 0
                or reminder.sent >= cap
            )
            number = reminder.sent + 1
            values: dict[str, Any] = {"done": True}
            if not finished:
                assert notify is not None
                step = timedelta(minutes=notify.remind_after_minutes)
                following = reminder.next_at + step
                values = {"sent": number, "next_at": following if following > now else now + step}
                values["done"] = number >= cap
            claimed = s.execute(
                update(Reminder)
                .where(Reminder.id == reminder_id, Reminder.sent == reminder.sent, Reminder.done.is_(False))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1 or finished:  # type: ignore[attr-defined]
                return 0  # another worker took it, or it is over
            assert alert is not None and notify is not None
            targets = rule_targets(s, notify, alert.severity, now, factory_timezone(s, factory_id))
            for target in targets:
                queue_delivery(
                    s,
                    self.queue,
                    self.settings,
                    alert.id,
                    "reminder",
                    target,
                    detail={"number": number, "of": cap},
                    created_by="reminders",
                )
            return 1


def handlers(db: Database, settings: NotificationSettings) -> dict[str, Handler]:
    outbox = Outbox(db, settings)
    return {KIND: outbox.deliver, SYSTEM_KIND: outbox.deliver, DIGEST_KIND: outbox.digest}
