"""The notification outbox: alert transitions become delivery rows and jobs; workers deliver them.

Enqueueing is a couple of inserts in the telemetry process; the sending happens in workers, so a
dead SMTP server or a Twilio outage never slows ingestion or rules. Each delivery is retried with
the job queue's backoff; after the last attempt it is marked failed with its error, visible in
the delivery log (``GET /api/v1/notifications/deliveries``).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from factoryops.alerts.models import Alert
from factoryops.core.db import Database, utcnow
from factoryops.core.settings import NotificationSettings
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import Handler, JobContext
from factoryops.notifications.channels import ChannelOff, send_email, send_whatsapp
from factoryops.notifications.models import Delivery
from factoryops.rules.definition import RuleDefinition
from factoryops.rules.engine import Transition
from factoryops.rules.models import Rule

log = logging.getLogger(__name__)

KIND = "alerts.notify"


def _text(alert: Alert, event: str) -> tuple[str, str]:
    values = ", ".join(f"{k} = {v:g}" for k, v in sorted(alert.trigger_values.items()))
    if event == "opened":
        subject = f"[{alert.severity.upper()}] {alert.rule_name} on {alert.device_id}"
        body = (
            f"Alert opened at {alert.opened_at:%Y-%m-%d %H:%M:%S} UTC\n"
            f"Rule: {alert.rule_name}\nDevice: {alert.device_id}\nSeverity: {alert.severity}\nValues: {values}\n"
        )
    else:
        cleared = ", ".join(f"{k} = {v:g}" for k, v in sorted(alert.clear_values.items()))
        subject = f"[RESOLVED] {alert.rule_name} on {alert.device_id}"
        body = (
            f"Alert resolved at {alert.resolved_at or utcnow():%Y-%m-%d %H:%M:%S} UTC by {alert.resolved_by}\n"
            f"Rule: {alert.rule_name}\nDevice: {alert.device_id}\nValues now: {cleared or '-'}\n"
        )
    return subject, body


class Outbox:
    def __init__(self, db: Database, settings: NotificationSettings) -> None:
        self.db = db
        self.settings = settings
        self.queue = JobQueue(db)

    def on_transition(self, factory_id: str, transition: Transition) -> int:
        """Creates the deliveries of one alert transition; returns how many."""
        with self.db.factory_session(factory_id) as s:
            rule = s.get(Rule, transition.rule_id)
            if rule is None:
                return 0
            notify = RuleDefinition.model_validate(rule.definition).notify
            if transition.kind == "resolved" and not notify.on_resolve:
                return 0
            targets = [("email", e) for e in notify.emails] + [("whatsapp", p) for p in notify.whatsapp]
            for channel, recipient in targets:
                delivery = Delivery(
                    alert_id=transition.alert_id, event=transition.kind, channel=channel, recipient=recipient
                )
                s.add(delivery)
                s.flush()
                self.queue.enqueue(
                    s,
                    KIND,
                    {"delivery_id": delivery.id},
                    created_by="rule engine",
                    max_attempts=self.settings.max_attempts,
                    priority=10,
                )
            return len(targets)

    def deliver(self, ctx: JobContext) -> dict[str, Any]:
        delivery_id = ctx.payload["delivery_id"]
        with self.db.factory_session(ctx.factory_id) as s:
            delivery = s.get(Delivery, delivery_id)
            if delivery is None or delivery.state == "sent":
                return {"skipped": True}
            alert = s.execute(select(Alert).where(Alert.id == delivery.alert_id)).scalar_one()
            subject, body = _text(alert, delivery.event)
            channel, recipient = delivery.channel, delivery.recipient
        error = ""
        detail: dict[str, Any] = {}
        try:
            if channel == "email":
                send_email(self.settings, recipient, subject, body)
            else:
                detail["sid"] = send_whatsapp(self.settings, recipient, f"{subject}\n{body}")
        except Exception as exc:  # every failure is recorded on the delivery, then retried by the queue
            error = f"{type(exc).__name__}: {exc}"
        final = bool(error) and ctx.job.attempts >= ctx.job.max_attempts
        with self.db.factory_session(ctx.factory_id) as s:
            delivery = s.get(Delivery, delivery_id)
            assert delivery is not None
            delivery.attempts = ctx.job.attempts
            delivery.error = error
            if not error:
                delivery.state, delivery.sent_at = "sent", utcnow()
            elif final or error.startswith(ChannelOff.__name__):
                delivery.state = "failed"
        if error:
            if error.startswith(ChannelOff.__name__):
                return {"failed": error}  # retrying cannot help until someone configures the channel
            raise RuntimeError(error)
        return {"sent": recipient, **detail}


def handlers(db: Database, settings: NotificationSettings) -> dict[str, Handler]:
    return {KIND: Outbox(db, settings).deliver}
