"""System-health alerts (spec 10): failures of the platform itself, one open row per factory and kind.

Raised by the time-series writer (the store is down and a factory's points go to the spool), by
property registration (the database refused a new property), by the outbox (a delivery failed
for good) and by analytics (the object store cannot be reached); the factory's super admins see
them in ``GET /api/v1/system-alerts`` and the platform root in ``GET /api/v1/root/system-alerts``.
When one opens, the factory's super admins are notified through the outbox, by their preferences.

Recording never blocks or breaks the caller: :func:`report` and :func:`resolve` only touch
memory, and a background thread writes the rows. A repeating failure updates its row (last seen,
occurrences) at most every ``system_alert_write_seconds`` per factory and kind. A notification
about a system alert that fails does not raise another system alert, and a ``channel_failing``
alert is not sent over the channel that is failing, so a dead channel cannot feed on itself.

Each process installs one recorder (:func:`install`, done by ``build_platform``); the writer,
the registry and the outbox reach it through the module functions.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from factoryops.core.db import Database, utcnow
from factoryops.core.settings import NotificationSettings
from factoryops.jobs.queue import JobQueue
from factoryops.notifications.models import SystemAlert
from factoryops.notifications.recipients import SYSTEM_KIND, factory_timezone, queue_delivery, super_admin_targets

log = logging.getLogger(__name__)

Kind = Literal["timeseries_down", "registration_failing", "channel_failing", "objectstore_down"]
KINDS: tuple[str, ...] = ("timeseries_down", "registration_failing", "channel_failing", "objectstore_down")
SEVERITY = {
    "timeseries_down": "critical",
    "registration_failing": "critical",
    "channel_failing": "warning",
    "objectstore_down": "warning",
}
TITLES = {
    "timeseries_down": "The time-series store is down",
    "registration_failing": "Property registration is failing",
    "channel_failing": "A notification channel is failing",
    "objectstore_down": "The object store is unreachable: analytics is paused",
    "property_limit": "A device sends more properties than the limit allows",
}
KNOWN_SECONDS = 60.0  # how long this process trusts what it last learnt about an alert's state
GIVE_UP_AFTER = 20  # failed writes of one key in a row (e.g. the factory is gone)


@dataclass
class _Key:
    pending: int = 0  # reports not yet written
    message: str = ""
    resolve: bool = False
    resolve_prefix: str = ""
    open: bool | None = None  # what this process last knew of the row; None: unknown
    known_at: float = 0.0
    written_at: float = float("-inf")
    resolve_tried_at: float = float("-inf")
    reported_at: float = float("-inf")
    failures: int = 0


class SystemAlertRecorder:
    def __init__(self, db: Database, settings: NotificationSettings) -> None:
        self.db = db
        self.settings = settings
        self.queue = JobQueue(db)
        self.throttle = settings.system_alert_write_seconds
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], _Key] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()

    # ------------------------------------------------------------------ callers (never block)
    def report(self, factory_id: str, kind: str, message: str) -> None:
        try:
            now = time.monotonic()
            with self._lock:
                key = self._keys.setdefault((factory_id, kind), _Key())
                key.pending += 1
                key.message = message[:2000]
                key.reported_at = now
                due = key.open is not True or now - key.written_at >= self.throttle
            if due:
                self._kick()
        except Exception:  # recording must never break the caller
            log.exception("could not record a system alert")

    def resolve(self, factory_id: str, kind: str, prefix: str = "") -> None:
        """Resolves the open alert (only one whose message starts with ``prefix``, if given)."""
        try:
            now = time.monotonic()
            with self._lock:
                key = self._keys.setdefault((factory_id, kind), _Key())
                known_closed = key.open is False and now - key.known_at < KNOWN_SECONDS
                tried_lately = (
                    not key.resolve
                    and key.resolve_tried_at > key.reported_at
                    and now - key.resolve_tried_at < max(self.throttle, 1.0)
                )
                if key.pending:
                    key.pending = 0  # the failure is over before it was written
                elif known_closed or tried_lately:
                    return
                key.resolve, key.resolve_prefix = True, prefix
            self._kick()
        except Exception:
            log.exception("could not record a system alert")

    def _kick(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if (self._thread is None or not self._thread.is_alive()) and not self._stopping.is_set():
                    self._thread = threading.Thread(target=self._run, name="system-alerts", daemon=True)
                    self._thread.start()
        self._wake.set()

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                log.exception("system alerts: flush failed")

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.flush(force=True)
        except Exception as exc:
            log.warning("system alerts not written at shutdown: %s", exc)

    def flush(self, force: bool = False) -> int:
        """Writes what is due (everything with ``force``); returns how many rows it touched."""
        with self._flush_lock:
            now = time.monotonic()
            due: list[tuple[tuple[str, str], bool, str, int, str]] = []
            with self._lock:
                for key_id, key in self._keys.items():
                    write_pending = key.pending and (
                        force or key.open is not True or now - key.written_at >= self.throttle
                    )
                    if key.resolve or write_pending:
                        pending = key.pending if write_pending else 0
                        due.append((key_id, key.resolve, key.resolve_prefix, pending, key.message))
                        key.resolve = False
                        key.pending -= pending
                        if due[-1][1]:
                            key.resolve_tried_at = now
            touched = 0
            for (factory_id, kind), resolve, prefix, pending, message in due:
                try:
                    try:
                        state = self._write(factory_id, kind, resolve, prefix, pending, message)
                    except IntegrityError:  # another process opened it a moment ago: update that one
                        state = self._write(factory_id, kind, False, "", pending, message)
                except Exception as exc:
                    with self._lock:
                        key = self._keys[(factory_id, kind)]
                        key.failures += 1
                        if key.failures < GIVE_UP_AFTER:
                            key.pending += pending
                            key.resolve = key.resolve or resolve
                            if resolve:
                                key.resolve_prefix = prefix
                        else:
                            log.error("system alert %s of factory %s dropped: %s", kind, factory_id, exc)
                            key.failures = 0
                    log.warning("system alert %s of factory %s not written yet: %s", kind, factory_id, exc)
                    continue
                touched += 1
                with self._lock:
                    key = self._keys[(factory_id, kind)]
                    key.failures = 0
                    key.known_at = time.monotonic()
                    if state is not None:
                        key.open = state
                    if pending:
                        key.written_at = key.known_at
            return touched

    def _write(self, factory_id: str, kind: str, resolve: bool, prefix: str, pending: int, message: str) -> bool | None:
        """Returns whether an alert is open afterwards (None when that is not known)."""
        now = utcnow()
        state: bool | None = None
        with self.db.factory_session(factory_id) as s:
            if resolve:
                stmt = update(SystemAlert).where(SystemAlert.kind == kind, SystemAlert.open_key == "open")
                if prefix:
                    stmt = stmt.where(SystemAlert.message.like(f"{prefix}%"))
                done = s.execute(
                    stmt.values(state="resolved", open_key=None, resolved_at=now).execution_options(
                        synchronize_session=False
                    )
                )
                if done.rowcount:  # type: ignore[attr-defined]
                    log.info("system alert %s of factory %s resolved", kind, factory_id)
                state = False if (done.rowcount or not prefix) else None  # type: ignore[attr-defined]
            if pending:
                done = s.execute(
                    update(SystemAlert)
                    .where(SystemAlert.kind == kind, SystemAlert.open_key == "open")
                    .values(last_seen_at=now, occurrences=SystemAlert.occurrences + pending, message=message)
                    .execution_options(synchronize_session=False)
                )
                if not done.rowcount:  # type: ignore[attr-defined]
                    alert = SystemAlert(
                        kind=kind, message=message, opened_at=now, last_seen_at=now, occurrences=pending
                    )
                    s.add(alert)
                    s.flush()
                    log.error("SYSTEM ALERT opened for factory %s: %s: %s", factory_id, kind, message)
                    self._notify(s, factory_id, alert)
                state = True
        return state

    def _notify(self, s: Session, factory_id: str, alert: SystemAlert) -> None:
        failing = alert.message.split(":", 1)[0] if alert.kind == "channel_failing" else ""
        targets = super_admin_targets(
            s, SEVERITY.get(alert.kind, "critical"), utcnow(), factory_timezone(s, factory_id), skip_channel=failing
        )
        for target in targets:
            queue_delivery(
                s, self.queue, self.settings, alert.id, "system", target, kind=SYSTEM_KIND, created_by="system health"
            )


_installed: SystemAlertRecorder | None = None


def install(recorder: SystemAlertRecorder | None) -> SystemAlertRecorder | None:
    """Makes ``recorder`` this process's recorder; returns the one it replaces (not stopped)."""
    global _installed
    previous, _installed = _installed, recorder
    return previous


def installed() -> SystemAlertRecorder | None:
    return _installed


def report(factory_id: str, kind: str, message: str) -> None:
    """Records one occurrence of a failure; never raises, never waits on the database."""
    recorder = _installed
    if recorder is not None and factory_id:
        recorder.report(factory_id, kind, message)


def resolve(factory_id: str, kind: str, prefix: str = "") -> None:
    """The failure is over; never raises, never waits on the database."""
    recorder = _installed
    if recorder is not None and factory_id:
        recorder.resolve(factory_id, kind, prefix)
