"""Each telemetry and worker process records that it is alive, with a few figures, every few seconds.

A :class:`HeartbeatPublisher` upserts the process's row in ``service_heartbeats`` at start, every
``every`` seconds, and once more when the process stops (``stopped_at``), so the root's health
page can tell a process that is running from one that stopped and one that went silent (crashed,
hung, or cut off from the database). The row keeps the last :data:`HISTORY` samples for the
page's small charts. A beat that cannot be written (the database is restarting) is skipped and
logged once per outage; the process goes on.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from factoryops import __version__
from factoryops.core.db import Database, utcnow
from factoryops.observability.models import ServiceHeartbeat

log = logging.getLogger(__name__)

HISTORY = 60  # samples kept per process (10 minutes at the default 10 s)
FORGET_AFTER = timedelta(days=7)  # rows of processes silent this long are deleted


def heartbeat_id(kind: str, name: str) -> str:
    return f"{kind}:{name}"[:160]


class HeartbeatPublisher:
    """Writes one process's heartbeat row; ``stats`` gives its latest figures, ``sample`` one chart point."""

    def __init__(
        self,
        db: Database,
        kind: str,
        name: str,
        stats: Callable[[], dict[str, Any]],
        sample: Callable[[], dict[str, Any]] | None = None,
        every: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.kind = kind
        self.name = name[:140]
        self.id = heartbeat_id(kind, self.name)
        self.stats = stats
        self.sample = sample
        self.every = every
        self.clock = clock
        self.host = socket.gethostname()[:255]
        self.pid = os.getpid()
        self.started_at = clock()
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.beats = 0
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, stopped: bool = False) -> bool:
        """Records one heartbeat now; False if the database did not take it."""
        now = self.clock()
        try:
            stats = self.stats()
            if self.sample is not None:
                self.history.append({"at": now.isoformat(), **self.sample()})
            self._upsert(now, stats, stopped)
        except Exception as exc:  # the database may be restarting: the next beat tries again
            if not self._failing:
                log.warning("could not record the %s heartbeat of %s: %s", self.kind, self.name, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("%s heartbeat of %s recorded again", self.kind, self.name)
        self._failing = False
        self.beats += 1
        return True

    def _upsert(self, now: datetime, stats: dict[str, Any], stopped: bool) -> None:
        values: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "version": __version__,
            "started_at": self.started_at,
            "last_seen_at": now,
            "stopped_at": now if stopped else None,
            "interval_seconds": float(self.every),
            "stats": stats,
            "history": list(self.history),
        }
        for attempt in range(2):  # a row another process inserted at the same moment: update it
            with self.db.plain_session() as s:  # a platform table; no factory's data
                row = s.get(ServiceHeartbeat, self.id)
                if row is None:
                    s.add(ServiceHeartbeat(id=self.id, **values))
                else:
                    for key, value in values.items():
                        setattr(row, key, value)
                try:
                    s.commit()
                    return
                except IntegrityError:
                    s.rollback()
                    if attempt:
                        raise

    def forget_silent(self) -> int:
        """Deletes the rows of processes silent for :data:`FORGET_AFTER`; returns how many."""
        with self.db.plain_session() as s:
            result = s.execute(
                delete(ServiceHeartbeat)
                .where(ServiceHeartbeat.last_seen_at < self.clock() - FORGET_AFTER)
                .execution_options(synchronize_session=False)
            )
            s.commit()
            return int(getattr(result, "rowcount", 0) or 0)

    def _run(self) -> None:
        self.beat()
        try:
            self.forget_silent()
        except Exception as exc:  # housekeeping only
            log.debug("could not forget silent processes: %s", exc)
        while not self._stop.wait(self.every):
            self.beat()

    def start(self) -> None:
        """Beats now and every ``every`` seconds, in a thread (a slow database never holds up the caller)."""
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.beat(stopped=True)
