"""devices: an optional report interval (report_interval_seconds) and the stored end of their online window

A device is online while last_seen is within max(5 min, 3 x report_interval_seconds + 60 s);
online_until (last_seen + that window) is stored so that the status filter and counts are one
comparison in SQL. Existing devices have no interval: online_until = last_seen + 5 minutes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import factoryops.core.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

DEFAULT_ONLINE_WINDOW = timedelta(minutes=5)  # as devices/models.py had it at this revision
BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report_interval_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("online_until", factoryops.core.db.UTCDateTime(), nullable=True))
        batch_op.create_index("ix_devices_factory_id_online_until", ["factory_id", "online_until"], unique=False)

    when = factoryops.core.db.UTCDateTime()
    devices = sa.table(
        "devices", sa.column("id", sa.String), sa.column("last_seen", when), sa.column("online_until", when)
    )
    bind = op.get_bind()
    seen = bind.execute(
        sa.select(devices.c.id, devices.c.last_seen).where(devices.c.last_seen.is_not(None)).order_by(devices.c.id)
    ).all()
    stmt = (
        devices.update()
        .where(devices.c.id == sa.bindparam("row_id"))
        .values(online_until=sa.bindparam("until", type_=when))
    )
    for start in range(0, len(seen), BATCH):
        bind.execute(
            stmt,
            [
                {"row_id": row_id, "until": last_seen + DEFAULT_ONLINE_WINDOW}
                for row_id, last_seen in seen[start : start + BATCH]
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_factory_id_online_until")
        batch_op.drop_column("online_until")
        batch_op.drop_column("report_interval_seconds")
