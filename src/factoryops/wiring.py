"""The one place that turns settings into adapters and services."""

from __future__ import annotations

from dataclasses import dataclass

from factoryops.core.db import Database
from factoryops.core.migrate import upgrade
from factoryops.core.settings import Settings
from factoryops.models import import_all_models
from factoryops.tenancy.service import TenancyService


@dataclass
class Platform:
    settings: Settings
    db: Database
    tenancy: TenancyService


def prepare_data_dir(settings: Settings) -> None:
    for sub in ("", "timeseries", "objects", "spool", "broker"):
        (settings.data_dir / sub).mkdir(parents=True, exist_ok=True)


def build_platform(settings: Settings, migrate: bool = True) -> Platform:
    import_all_models()
    if settings.database.url is None:
        prepare_data_dir(settings)
    db = Database(settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size)
    if migrate:
        upgrade(db.engine)
    return Platform(settings=settings, db=db, tenancy=TenancyService(db, settings))
