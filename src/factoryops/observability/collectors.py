"""Prometheus gauges read from the metadata database at scrape time (open alerts, system alerts, jobs).

They are platform-wide: no factory id is ever a label (it would multiply the series by the
number of factories and tell anyone who can scrape which factories exist). The API process
exports them (``factoryops api`` and ``factoryops up``); every API replica gives the same
values, so alert rules take ``max()`` over instances. Results are kept for a few seconds, so
several scrapers cost one round of queries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from factoryops.core.db import Database, utcnow
from factoryops.notifications.system_alerts import KINDS as SYSTEM_ALERT_KINDS
from factoryops.observability.platform import SEVERITIES, job_queue, open_alerts, open_system_alerts

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        "up": GaugeMetricFamily(
            "factoryops_platform_metrics_up",
            "1 if the platform-wide figures below could be read from the metadata database at this scrape, else 0.",
        ),
        "alerts": GaugeMetricFamily(
            "factoryops_alerts_open",
            "Alerts not yet resolved (open or acknowledged) in all factories, by severity.",
            labels=["severity"],
        ),
        "system": GaugeMetricFamily(
            "factoryops_system_alerts_open",
            "Open system-health alerts in all factories, by kind.",
            labels=["kind"],
        ),
        "queued": GaugeMetricFamily(
            "factoryops_jobs_queued",
            "Jobs waiting in the queue (including retries scheduled for later), by kind.",
            labels=["kind"],
        ),
        "running": GaugeMetricFamily("factoryops_jobs_running", "Jobs running now, by kind.", labels=["kind"]),
        "age": GaugeMetricFamily(
            "factoryops_jobs_oldest_queued_age_seconds",
            "How long the oldest job that is due has been waiting for a worker, by kind (0: none waiting).",
            labels=["kind"],
        ),
    }


class PlatformCollector(Collector):
    def __init__(self, cache_seconds: float = CACHE_SECONDS) -> None:
        self.db: Database | None = None
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._cached_at = float("-inf")
        self._kinds: set[str] = set()  # job kinds seen: they stay, at 0, once their queue is empty

    def describe(self) -> Iterable[Metric]:
        return list(_families().values())  # no database round trip at registration

    def collect(self) -> Iterable[Metric]:
        if self.db is None:
            return []
        with self._lock:
            if time.monotonic() - self._cached_at < self.cache_seconds:
                return self._cached
            self._cached = self._read(self.db)
            self._cached_at = time.monotonic()
            return self._cached

    def _read(self, db: Database) -> list[Metric]:
        families = _families()
        try:
            alerts = open_alerts(db)
            system = open_system_alerts(db)
            now = utcnow()
            queue = job_queue(db, now)
        except Exception as exc:  # a scrape must not fail because the database is away
            log.warning("platform metrics: cannot read the metadata database: %s", exc)
            families["up"].add_metric([], 0)
            return [families["up"]]
        families["up"].add_metric([], 1)
        for severity in sorted(set(SEVERITIES) | set(alerts)):
            families["alerts"].add_metric([severity], alerts.get(severity, 0))
        for kind in sorted(set(SYSTEM_ALERT_KINDS) | set(system)):
            families["system"].add_metric([kind], system.get(kind, 0))
        by_kind = {figures.kind: figures for figures in queue}
        self._kinds |= set(by_kind)
        for kind in sorted(self._kinds):
            figures = by_kind.get(kind)
            families["queued"].add_metric([kind], figures.queued if figures else 0)
            families["running"].add_metric([kind], figures.running if figures else 0)
            families["age"].add_metric([kind], figures.oldest_age_seconds(now) if figures else 0.0)
        return list(families.values())


_collector = PlatformCollector()
_registered = False
_install_lock = threading.Lock()


def install(db: Database) -> PlatformCollector:
    """Exports the platform-wide gauges of ``db`` from this process's default registry (idempotent)."""
    global _registered
    with _install_lock:
        _collector.db = db
        _collector._cached_at = float("-inf")
        if not _registered:
            REGISTRY.register(_collector)
            _registered = True
    return _collector
