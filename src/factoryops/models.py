"""Imports every domain's tables so that the metadata is complete (migrations, tests)."""

from __future__ import annotations


def import_all_models() -> None:
    import factoryops.alerts.models
    import factoryops.analytics.models
    import factoryops.devices.models
    import factoryops.jobs.models
    import factoryops.notifications.models
    import factoryops.observability.models
    import factoryops.reports.models
    import factoryops.rules.models
    import factoryops.telemetry.models
    import factoryops.tenancy.models  # noqa: F401
