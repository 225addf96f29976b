"""The one place that turns settings into adapters and services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from factoryops.core.db import Database
from factoryops.core.migrate import upgrade
from factoryops.core.settings import Settings
from factoryops.jobs.worker import Handler
from factoryops.models import import_all_models
from factoryops.ports.objectstore.base import ObjectStore
from factoryops.ports.timeseries.base import Retention, TimeseriesStore
from factoryops.tenancy.service import TenancyService


@dataclass
class Platform:
    settings: Settings
    db: Database
    tenancy: TenancyService
    timeseries: TimeseriesStore | None = None
    objects: ObjectStore | None = None


def _days(n: int) -> timedelta | None:
    return timedelta(days=n) if n > 0 else None


def build_timeseries(settings: Settings) -> TimeseriesStore:
    ts = settings.timeseries
    retention = Retention(
        raw=_days(ts.raw_retention_days),
        minute=_days(ts.rollup_1m_retention_days),
        hour=_days(ts.rollup_1h_retention_days),
    )
    if ts.backend == "influxdb":
        from factoryops.ports.timeseries.influx import InfluxTimeseriesStore

        return InfluxTimeseriesStore(
            ts.influx_url,
            ts.influx_database,
            username=ts.influx_username,
            password=ts.influx_password.get_secret_value() if ts.influx_password else None,
            retention=retention,
        )
    if ts.backend != "embedded":
        raise ValueError(f"FACTORYOPS_TIMESERIES__BACKEND must be embedded or influxdb, not {ts.backend!r}")
    from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore

    return EmbeddedTimeseriesStore(settings.data_dir / "timeseries", retention=retention)


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
    # This process's system-health recorder (spec 10): the writer, the registry and the outbox report to it.
    from factoryops.notifications.system_alerts import SystemAlertRecorder, install

    previous = install(SystemAlertRecorder(db, settings.notifications))
    if previous is not None:
        previous.stop()
    from factoryops.ports.objectstore import build_objectstore

    return Platform(
        settings=settings,
        db=db,
        tenancy=TenancyService(db, settings),
        timeseries=build_timeseries(settings),
        objects=build_objectstore(settings.objectstore, settings.data_dir),
    )


def job_handlers(platform: Platform) -> dict[str, Handler]:
    """Every job kind this installation runs, bound to its services."""
    from factoryops.analytics.api import services as analytics_services
    from factoryops.analytics.datasets import handlers as dataset_handlers
    from factoryops.analytics.runs import handlers as run_handlers
    from factoryops.jobs.registry import handlers
    from factoryops.notifications.service import handlers as notification_handlers
    from factoryops.reports.service import ReportService
    from factoryops.reports.service import handlers as report_handlers
    from factoryops.rules.backtest import handlers as rule_handlers

    datasets, runs = analytics_services(platform)
    return {
        **handlers(),
        **notification_handlers(platform.db, platform.settings.notifications),
        **rule_handlers(platform.db, platform.timeseries),
        **dataset_handlers(datasets),
        **run_handlers(runs),
        **report_handlers(
            ReportService(platform.db, platform.timeseries, platform.objects, platform.settings.notifications)
        ),
    }


def worker_sweeps(platform: Platform) -> list[Any]:
    """The periodic duties of a worker process beyond jobs: scheduled reports, each factory's retention."""
    from factoryops.reports.service import ReportService, ScheduleSweep
    from factoryops.telemetry.retention import RetentionSweep

    reports = ReportService(platform.db, platform.timeseries, platform.objects, platform.settings.notifications)
    retention = RetentionSweep(platform.db, platform.timeseries, platform.settings.timeseries)
    return [ScheduleSweep(reports).maybe_run, retention.maybe_run]
