"""The platform's health in one answer: dependencies, processes, queue, telemetry, alerts.

Read by the platform root's health page. Everything here is platform-wide: process names and
hosts, counts and rates; no factory id, device or alert content.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from factoryops.core.db import Database, utcnow
from factoryops.core.health import check_all
from factoryops.core.settings import Settings
from factoryops.observability import schemas
from factoryops.observability.heartbeats import HISTORY
from factoryops.observability.models import ServiceHeartbeat
from factoryops.observability.platform import job_queue, open_alerts, open_system_alerts

log = logging.getLogger(__name__)

SHOWN_FOR = timedelta(hours=24)  # processes silent longer than this are no longer listed
QUEUE_WAIT_WARNING_SECONDS = 300.0
NAMES = {
    "database": "metadata database",
    "mqtt": "MQTT broker",
    "timeseries": "time-series store",
    "objectstore": "object store",
}


def _status(row: ServiceHeartbeat, now: datetime) -> str:
    if row.stopped_at is not None:
        return "stopped"
    silent_after = 3 * row.interval_seconds + 5
    return "up" if (now - row.last_seen_at).total_seconds() <= silent_after else "silent"


def _points(row: ServiceHeartbeat) -> list[schemas.ServicePointOut]:
    """The row's samples, with the ingest rate between each and the one before (None after a restart)."""
    points: list[schemas.ServicePointOut] = []
    previous: dict[str, Any] | None = None
    for sample in row.history or []:
        try:
            at = datetime.fromisoformat(sample["at"])
        except (KeyError, TypeError, ValueError):
            continue
        rate = None
        received = sample.get("received")
        if previous is not None and received is not None and previous.get("received") is not None:
            seconds = (at - datetime.fromisoformat(previous["at"])).total_seconds()
            delta = received - previous["received"]
            if seconds > 0 and delta >= 0:
                rate = round(delta / seconds, 3)
        points.append(
            schemas.ServicePointOut(
                at=at, ingest_rate=rate, spool_points=sample.get("spool_points"), queue_depth=sample.get("queue_depth")
            )
        )
        previous = sample
    return points


def _trend(services: list[schemas.ServiceOut], width: float, now: datetime) -> list[schemas.TrendPointOut]:
    """The processes' samples in buckets of ``width`` seconds: rates and spools summed, the queue's depth."""
    start = now - timedelta(seconds=width * HISTORY)
    buckets: dict[int, dict[str, dict[str, Any]]] = {}
    for service in services:
        for point in service.history:
            if point.at < start:
                continue
            bucket = int(point.at.timestamp() // width)
            buckets.setdefault(bucket, {})[service.id] = point.model_dump()  # the latest of a service wins
    trend = []
    for bucket in sorted(buckets):
        points = buckets[bucket].values()
        rates = [p["ingest_rate"] for p in points if p["ingest_rate"] is not None]
        spools = [p["spool_points"] for p in points if p["spool_points"] is not None]
        depths = [p["queue_depth"] for p in points if p["queue_depth"] is not None]
        trend.append(
            schemas.TrendPointOut(
                at=datetime.fromtimestamp(bucket * width, tz=now.tzinfo),
                ingest_rate=round(sum(rates), 3) if rates else None,
                spool_points=sum(spools) if spools else None,
                queue_depth=max(depths) if depths else None,
            )
        )
    return trend


def _service(row: ServiceHeartbeat, now: datetime) -> schemas.ServiceOut:
    known = set(schemas.ServiceStatsOut.model_fields)
    return schemas.ServiceOut(
        id=row.id,
        kind=row.kind,
        name=row.name,
        host=row.host,
        pid=row.pid,
        version=row.version,
        status=_status(row, now),
        started_at=row.started_at,
        last_seen_at=row.last_seen_at,
        seconds_since_seen=round(max(0.0, (now - row.last_seen_at).total_seconds()), 1),
        stopped_at=row.stopped_at,
        interval_seconds=row.interval_seconds,
        stats=schemas.ServiceStatsOut(**{k: v for k, v in (row.stats or {}).items() if k in known}),
        history=_points(row),
    )


def services(db: Database, now: datetime | None = None) -> list[schemas.ServiceOut]:
    """The telemetry and worker processes seen in the last 24 hours."""
    now = now or utcnow()
    with db.plain_session() as s:  # a platform table
        rows = s.execute(
            select(ServiceHeartbeat)
            .where(ServiceHeartbeat.last_seen_at >= now - SHOWN_FOR)
            .order_by(ServiceHeartbeat.kind, ServiceHeartbeat.name)
        ).scalars()
        return [_service(row, now) for row in rows]


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def platform_health(settings: Settings, db: Database) -> schemas.PlatformHealthOut:
    checks = check_all(settings, db)
    dependencies = [
        schemas.DependencyOut(
            name=name,
            status=check["status"],
            latency_ms=check["latency_ms"],
            detail=check.get("detail"),
            error=check.get("error"),
        )
        for name, check in checks.items()
    ]
    problems = [f"The {NAMES.get(d.name, d.name)} is unreachable: {d.error}" for d in dependencies if d.status != "ok"]
    now = utcnow()
    try:
        seen = services(db, now)
        queue = job_queue(db, now)
        alerts = open_alerts(db)
        system = open_system_alerts(db)
    except Exception as exc:  # the database is away: the dependencies say so
        log.warning("platform health: cannot read the metadata database: %s", exc)
        seen, queue, alerts, system = [], [], {}, {}
    telemetry = [s for s in seen if s.kind == "telemetry"]
    workers = [s for s in seen if s.kind == "worker"]
    live_telemetry = [s for s in telemetry if s.status == "up"]
    live_workers = [s for s in workers if s.status == "up"]
    if not live_telemetry:
        problems.append("No telemetry process is sending heartbeats: no telemetry is being ingested.")
    if not live_workers:
        problems.append("No worker is sending heartbeats: notifications, analytics and reports wait.")
    for service in seen:
        if service.status == "silent":
            problems.append(
                f"The {service.kind} process {service.name} on {service.host} has been silent for "
                f"{_ago(service.seconds_since_seen)} (crashed, hung or cut off from the database)."
            )
    for service in live_telemetry:
        starting = (now - service.started_at).total_seconds() < 3 * service.interval_seconds + 5
        if service.stats.mqtt_connected is False and not starting:  # a process just started is still connecting
            problems.append(f"The telemetry process {service.name} is not connected to the MQTT broker.")
        if service.stats.spool_points:
            problems.append(
                f"{service.stats.spool_points} points wait in the spool of {service.name}: the time-series store "
                "is not taking writes."
            )
    by_kind = [
        schemas.QueueKindOut(
            kind=q.kind,
            queued=q.queued,
            due=q.due,
            running=q.running,
            oldest_age_seconds=round(q.oldest_age_seconds(now), 1),
        )
        for q in queue
    ]
    for q in by_kind:
        if q.oldest_age_seconds > QUEUE_WAIT_WARNING_SECONDS:
            problems.append(f"The oldest due {q.kind} job has waited {_ago(q.oldest_age_seconds)} for a worker.")
    system_open = sum(system.values())
    if system_open:
        problems.append(f"{system_open} system alert(s) open (see System alerts).")
    latest_rates = [s.history[-1].ingest_rate for s in live_telemetry if s.history]
    database_down = any(d.name == "database" and d.status != "ok" for d in dependencies)
    return schemas.PlatformHealthOut(
        status="down" if database_down else "degraded" if problems else "ok",
        problems=problems,
        checked_at=now,
        dependencies=dependencies,
        services=seen,
        telemetry=schemas.TelemetryFiguresOut(
            services_up=len(live_telemetry),
            ingest_rate=round(sum(r for r in latest_rates if r is not None), 3),
            messages_received=sum(s.stats.messages_received or 0 for s in live_telemetry),
            messages_rejected=sum(s.stats.messages_rejected or 0 for s in live_telemetry),
            spool_points=sum(s.stats.spool_points or 0 for s in live_telemetry),
        ),
        queue=schemas.QueueFiguresOut(
            workers_up=len(live_workers),
            due=sum(q.due for q in by_kind),
            running=sum(q.running for q in by_kind),
            oldest_age_seconds=max((q.oldest_age_seconds for q in by_kind), default=0.0),
            by_kind=by_kind,
        ),
        trend=_trend(seen, settings.service_heartbeat_seconds, now),
        alerts_open=alerts,
        system_alerts_open=system_open,
        system_alerts_by_kind=system,
    )
