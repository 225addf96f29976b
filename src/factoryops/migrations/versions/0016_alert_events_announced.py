"""alert_events: announced, the outbox flag of an alert transition

The rule engine writes an alert's "opened" and "resolved" events with announced = false in the
transaction that opens or resolves the alert; the notification outbox sets it true in the
transaction that queues the deliveries. A transition whose notifications were never queued (the
process died in between, or the database refused the second transaction) is found by the
workers' sweep and announced then. Existing events were handled when they happened: true.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("announced", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_index("ix_alert_events_announced_at", ["announced", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_events_announced_at")
        batch_op.drop_column("announced")
