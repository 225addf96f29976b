"""Platform-wide figures read from the metadata database: the job queue, open alerts, open system alerts.

These are aggregates over every factory (the platform root's view and Prometheus's), so they
read through the explicit ``unscoped_session`` escape hatch; only counts leave this module,
never a factory id, a device or an alert's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from factoryops.alerts.models import Alert, AlertState
from factoryops.core.db import Database, utcnow
from factoryops.jobs.models import Job, JobState
from factoryops.notifications.models import SystemAlert

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class QueueFigures:
    kind: str
    queued: int  # waiting, including retries scheduled for later
    due: int  # waiting and due now
    running: int
    oldest_due_at: datetime | None  # the longest-waiting job that is due

    def oldest_age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.oldest_due_at).total_seconds()) if self.oldest_due_at else 0.0


def job_queue(db: Database, now: datetime | None = None) -> list[QueueFigures]:
    """Queued, due and running jobs by kind, with the oldest due job's time (kinds with none are left out)."""
    now = now or utcnow()
    with db.unscoped_session() as s:  # platform-wide counts only
        by_state = s.execute(
            select(Job.kind, Job.state, func.count(Job.id))
            .where(Job.state.in_((JobState.queued, JobState.running)))
            .group_by(Job.kind, Job.state)
        ).all()
        due_rows = s.execute(
            select(Job.kind, func.count(Job.id), func.min(Job.run_after))
            .where(Job.state == JobState.queued, Job.run_after <= now)
            .group_by(Job.kind)
        ).all()
    queued = {kind: int(n) for kind, state, n in by_state if state == JobState.queued}
    running = {kind: int(n) for kind, state, n in by_state if state == JobState.running}
    due = {kind: (int(n), first) for kind, n, first in due_rows}
    return [
        QueueFigures(
            kind, queued.get(kind, 0), due.get(kind, (0, None))[0], running.get(kind, 0), due.get(kind, (0, None))[1]
        )
        for kind in sorted(set(queued) | set(running))
    ]


def open_alerts(db: Database) -> dict[str, int]:
    """Open (not yet resolved) alerts of every factory, by severity."""
    counts = dict.fromkeys(SEVERITIES, 0)
    with db.unscoped_session() as s:  # platform-wide counts only
        rows = s.execute(
            select(Alert.severity, func.count(Alert.id))
            .where(Alert.state != AlertState.resolved)
            .group_by(Alert.severity)
        ).all()
    for severity, count in rows:
        counts[str(severity)] = counts.get(str(severity), 0) + int(count)
    return counts


def open_system_alerts(db: Database) -> dict[str, int]:
    """Open system-health alerts of every factory, by kind."""
    with db.unscoped_session() as s:  # platform-wide counts only
        rows = s.execute(
            select(SystemAlert.kind, func.count(SystemAlert.id))
            .where(SystemAlert.state == "open")
            .group_by(SystemAlert.kind)
        ).all()
    return {str(kind): int(count) for kind, count in rows}
