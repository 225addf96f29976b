"""resolve the alerts that nothing could judge any more: open alerts of disabled rules and devices

Since this version, disabling a rule or a device resolves its open alerts (alerts/service.py). Alerts
left open by such a change before it would stay open for ever: this resolves them once, with a
note and a timeline event, as the change would have. Data only; no schema change.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import factoryops.core.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ACTOR = "system"


def upgrade() -> None:
    when = factoryops.core.db.UTCDateTime()
    alerts = sa.table(
        "alerts",
        sa.column("id", sa.String),
        sa.column("factory_id", sa.String),
        sa.column("rule_id", sa.String),
        sa.column("device_id", sa.String),
        sa.column("state", sa.String),
        sa.column("open_key", sa.String),
        sa.column("resolved_at", when),
        sa.column("resolved_by", sa.String),
        sa.column("resolution_note", sa.Text),
    )
    rules = sa.table(
        "rules", sa.column("id", sa.String), sa.column("factory_id", sa.String), sa.column("enabled", sa.Boolean)
    )
    devices = sa.table(
        "devices",
        sa.column("factory_id", sa.String),
        sa.column("device_id", sa.String),
        sa.column("enabled", sa.Boolean),
    )
    events = sa.table(
        "alert_events",
        sa.column("id", sa.String),
        sa.column("factory_id", sa.String),
        sa.column("alert_id", sa.String),
        sa.column("at", when),
        sa.column("kind", sa.String),
        sa.column("actor", sa.String),
        sa.column("note", sa.Text),
        sa.column("values", sa.JSON),
    )
    bind = op.get_bind()
    found = bind.execute(
        sa.select(alerts.c.id, alerts.c.factory_id, rules.c.enabled, devices.c.enabled)
        .select_from(
            alerts.outerjoin(
                rules, sa.and_(rules.c.id == alerts.c.rule_id, rules.c.factory_id == alerts.c.factory_id)
            ).outerjoin(
                devices, sa.and_(devices.c.factory_id == alerts.c.factory_id, devices.c.device_id == alerts.c.device_id)
            )
        )
        .where(alerts.c.open_key == "open")
    ).all()
    now = datetime.now(UTC)
    for alert_id, factory_id, rule_enabled, device_enabled in found:
        if rule_enabled is False or rule_enabled == 0:
            note = "Resolved: the rule is disabled (resolved by the upgrade that resolves such alerts)."
        elif device_enabled is False or device_enabled == 0:
            note = "Resolved: the device is disabled (resolved by the upgrade that resolves such alerts)."
        else:
            continue
        bind.execute(
            alerts.update()
            .where(alerts.c.id == alert_id, alerts.c.open_key == "open")
            .values(state="resolved", open_key=None, resolved_at=now, resolved_by=ACTOR, resolution_note=note)
        )
        bind.execute(
            events.insert().values(
                id=str(uuid.uuid4()),
                factory_id=factory_id,
                alert_id=alert_id,
                at=now,
                kind="resolved",
                actor=ACTOR,
                note=note,
                values={},
            )
        )


def downgrade() -> None:
    pass  # the alerts stay resolved: there is nothing to put back
