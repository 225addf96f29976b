"""Alembic environment: the same migrations on SQLite (embedded) and MySQL/MariaDB (production)."""

from __future__ import annotations

from alembic import context

from factoryops.core.db import Base
from factoryops.models import import_all_models

import_all_models()
config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through factoryops.core.migrate.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
