"""The worker service: the job worker, plus the platform's periodic housekeeping.

It runs as its own process (`factoryops worker`, any number of them on MySQL) or inside
`factoryops up` (one, on SQLite). Housekeeping: the time-series retention sweep, keeping
Mosquitto's password file and ACL in step with the device registry, and the alert reminders
that are due (safe with several workers: each reminder is claimed by one). The telemetry service is
:mod:`factoryops.telemetry.service`.

The job worker gives the notification deliveries (alerts, reminders, system alerts, digests) a lane
of their own (:func:`notification_kinds`): a long analytics run or export in the main loop never
holds back an alert's email or WhatsApp message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy import text

from factoryops.core.db import Database
from factoryops.core.settings import NotificationSettings, get_settings
from factoryops.devices.broker_config import MosquittoSync
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.registry import handlers
from factoryops.jobs.worker import Handler, JobWorker
from factoryops.observability.heartbeats import HeartbeatPublisher
from factoryops.observability.platform import job_queue
from factoryops.ports.timeseries.base import TimeseriesError, TimeseriesStore

log = logging.getLogger(__name__)


def notification_kinds() -> tuple[str, ...]:
    """The job kinds that deliver notifications: each worker runs them in a lane of their own."""
    from factoryops.notifications.service import DIGEST_KIND, KIND, SYSTEM_KIND

    return (KIND, SYSTEM_KIND, DIGEST_KIND)


class WorkerService:
    """The jobs worker's shell: keeps its database connection checked while it runs."""

    def __init__(
        self,
        db: Database,
        heartbeat_seconds: float = 5.0,
        timeseries: TimeseriesStore | None = None,
        retention_every_seconds: float = 3600.0,
        mosquitto: MosquittoSync | None = None,
        job_handlers: dict[str, Handler] | None = None,
        notifications: NotificationSettings | None = None,
        sweeps: Sequence[Callable[[], object]] = (),
        service_heartbeat_seconds: float | None = None,
    ) -> None:
        from factoryops.notifications.service import AnnounceSweep, Outbox, ReminderSweep

        self.sweeps = list(sweeps)  # more periodic duties (the report schedules), each rate-limited itself
        self.db = db
        self.reminders = ReminderSweep(db, notifications or get_settings().notifications)
        self.announcements = AnnounceSweep(
            Outbox(db, self.reminders.settings), grace_seconds=self.reminders.settings.announce_grace_seconds
        )
        self._next_reminders = 0.0
        self.mosquitto = mosquitto
        self.jobs = JobWorker(
            JobQueue(db),
            job_handlers if job_handlers is not None else handlers(),
            lane_kinds=notification_kinds(),
        )
        self.timeseries = timeseries
        self.retention_every_seconds = retention_every_seconds
        self._next_retention = time.monotonic() + 60.0
        self.heartbeat_seconds = heartbeat_seconds
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        every = service_heartbeat_seconds or get_settings().service_heartbeat_seconds
        self.heartbeat = HeartbeatPublisher(db, "worker", self.jobs.name, self.stats, self.sample, every=every)

    def stats(self) -> dict[str, object]:
        """This process's figures for the platform health page."""
        return {
            "jobs_processed": self.jobs.processed,
            "jobs_failed": self.jobs.failed,
            "running_job_kind": self.jobs.running_kind or None,
        }

    def sample(self) -> dict[str, object]:
        return {"queue_depth": sum(q.due for q in job_queue(self.db))}

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                with self.db.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                if not self.ready.is_set():
                    log.info("worker connected to the metadata database")
                self.ready.set()
                backoff = 1.0
                self._retention_sweep()
                self._reminder_sweep()
                for sweep in self.sweeps:
                    try:
                        sweep()
                    except Exception as exc:  # one duty failing must not stop the others
                        log.warning("worker sweep %s failed: %s", getattr(sweep, "__qualname__", sweep), exc)
                if self.mosquitto is not None:
                    self.mosquitto.sync()
                self._stop.wait(self.heartbeat_seconds)
            except Exception as exc:  # the database may be restarting: wait and try again
                self.ready.clear()
                log.warning("worker cannot reach the database (%s); retrying in %.0fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _retention_sweep(self) -> None:
        """Applies the platform's retention to the time-series store (hourly; a factory's shorter one is
        :class:`~factoryops.telemetry.retention.RetentionSweep`'s, in ``sweeps``)."""
        if self.timeseries is None or time.monotonic() < self._next_retention:
            return
        self._next_retention = time.monotonic() + self.retention_every_seconds
        try:
            self.timeseries.apply_retention()
        except TimeseriesError as exc:
            log.warning("retention sweep of the time-series store failed: %s", exc)

    def _reminder_sweep(self) -> None:
        """Queues the alert reminders that are due and the notifications of alert transitions the
        telemetry process could not queue (every ``sweep_seconds``)."""
        if time.monotonic() < self._next_reminders:
            return
        self._next_reminders = time.monotonic() + self.reminders.settings.sweep_seconds
        try:
            late = self.announcements.run()
            sent = self.reminders.run()
        except Exception as exc:  # the database may be restarting; the next sweep catches up
            log.warning("reminder sweep failed: %s", exc)
            return
        if late:
            log.warning("%d alert transition(s) announced late", late)
        if sent:
            log.info("%d alert reminder(s) queued", sent)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="worker", daemon=True)
        self._thread.start()
        self.jobs.start()
        self.heartbeat.start()
        log.info("job worker %s takes: %s", self.jobs.name, ", ".join(sorted(self.jobs.handlers)) or "(none)")
        if self.jobs.lane_kinds:
            log.info("job worker %s notification lane takes: %s", self.jobs.name, ", ".join(self.jobs.lane_kinds))

    def stop(self) -> None:
        self._stop.set()
        self.jobs.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.heartbeat.stop()
        log.info("worker stopped")


def wait_until(event: threading.Event, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if event.wait(0.1):
            return True
    return False
