"""The Alembic migrations build exactly the schema the models describe, on SQLite and MariaDB."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from factoryops.core.db import Base, TenantMixin
from factoryops.core.migrate import current
from factoryops.wiring import Platform


def test_migrations_match_models(platform: Platform) -> None:
    with platform.db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diffs == []
    assert current(platform.db.engine) is not None


def test_every_tenant_table_has_an_indexed_factory_id(platform: Platform) -> None:
    insp = inspect(platform.db.engine)
    tenant_tables = [m.local_table.name for m in Base.registry.mappers if issubclass(m.class_, TenantMixin)]
    assert tenant_tables
    for table in tenant_tables:
        columns = {c["name"]: c for c in insp.get_columns(table)}
        assert columns["factory_id"]["nullable"] is False, table
        indexed_first = [ix["column_names"][0] for ix in insp.get_indexes(table)]
        assert "factory_id" in indexed_first, table
