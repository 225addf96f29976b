"""Moving alerts by hand or on behalf of a change: acknowledge and resolve.

The routes (a person acknowledges or resolves) and the changes that leave an alert that nothing
can judge any more (a rule disabled, a rule whose scope no longer takes in the device, a device
disabled) resolve through these functions, so every resolution has the same fields, a timeline
event and a note. The rule engine's own auto-resolve stays in the engine (a conditional update
on the telemetry path).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from factoryops.alerts.models import Alert, AlertEvent, AlertState
from factoryops.core.db import utcnow


def apply(s: Session, alert: Alert, action: str, actor: str, note: str, now: datetime | None = None) -> str | None:
    """Moves one alert (``acknowledge`` or ``resolve``) on behalf of ``actor``; returns why not when it cannot move."""
    now = now or utcnow()
    if alert.state == AlertState.resolved:
        return "already resolved"
    if action == "acknowledge":
        if alert.state == AlertState.acknowledged:
            return "already acknowledged"
        alert.state = AlertState.acknowledged
        alert.acknowledged_at = now
        alert.acknowledged_by = actor
    else:
        alert.state = AlertState.resolved
        alert.open_key = None
        alert.resolved_at = now
        alert.resolved_by = actor
        alert.resolution_note = note
    s.add(
        AlertEvent(
            alert_id=alert.id,
            at=now,
            kind="acknowledged" if action == "acknowledge" else "resolved",
            actor=actor,
            note=note,
        )
    )
    return None


def unresolved(
    s: Session, rule_id: str | None = None, device_ids: Collection[str] | None = None, lock: bool = False
) -> list[Alert]:
    """The open and acknowledged alerts of a rule and/or some devices, oldest first.

    ``lock``: a locking read (MariaDB: FOR UPDATE; SQLite holds the database's write lock once the
    transaction has written), so an alert a telemetry process opened a moment ago is seen, and one
    it is about to open waits for this transaction (the engine reads the rule and the device
    under a shared lock before it opens one).
    """
    stmt = select(Alert).where(Alert.open_key == "open")
    if rule_id is not None:
        stmt = stmt.where(Alert.rule_id == rule_id)
    if device_ids is not None:
        if not device_ids:
            return []
        stmt = stmt.where(Alert.device_id.in_(sorted(set(device_ids))))
    if lock:
        stmt = stmt.with_for_update()
    return list(s.execute(stmt.order_by(Alert.opened_at, Alert.id)).scalars())


def resolve_all(s: Session, alerts: Collection[Alert], actor: str, note: str) -> list[str]:
    """Resolves each alert that is not resolved yet, with the note; returns the ids resolved."""
    now = utcnow()
    return [alert.id for alert in alerts if apply(s, alert, "resolve", actor, note, now) is None]
