"""Rejected telemetry: counted per factory, device and reason, logged once per burst, kept for the portal.

Counting and logging happen in memory on the hot path; the database rows (the newest rejects
and the running counts per device and reason) are written in batches by :meth:`flush`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from factoryops.core.db import Database, utcnow
from factoryops.telemetry.models import RejectCount, TelemetryReject

log = logging.getLogger(__name__)

REJECTS = Counter(
    "factoryops_telemetry_rejects_total", "Rejected telemetry messages and metrics, by reason.", ["reason"]
)
KEEP_PER_FACTORY = 500
ROWS_PER_FLUSH = 100
BURST_SECONDS = 60.0


@dataclass
class _Reject:
    at: datetime
    factory_id: str
    device_id: str
    reason: str
    metric: str
    detail: str
    excerpt: str


class RejectLog:
    def __init__(self, db: Database, factory_exists: Callable[[str], bool]) -> None:
        self.db = db
        self.factory_exists = factory_exists
        self._lock = threading.Lock()
        self._pending: list[_Reject] = []
        self._counts: dict[tuple[str, str, str], int] = defaultdict(int)
        self._bursts: dict[tuple[str, str], tuple[float, int]] = {}
        self.total = 0

    def add(
        self, factory_id: str, device_id: str, reason: str, detail: str, metric: str = "", excerpt: bytes = b""
    ) -> None:
        REJECTS.labels(reason).inc()
        now = time.monotonic()
        with self._lock:
            self.total += 1
            self._counts[(factory_id, device_id, reason)] += 1
            if len(self._pending) < 10_000:
                self._pending.append(
                    _Reject(
                        utcnow(),
                        factory_id,
                        device_id,
                        reason,
                        metric[:128],
                        detail[:300],
                        excerpt[:300].decode("utf-8", "replace"),
                    )
                )
            started, suppressed = self._bursts.get((factory_id, reason), (0.0, 0))
            if now - started >= BURST_SECONDS:
                self._bursts[(factory_id, reason)] = (now, 0)
                more = f" (and {suppressed} more in the last minute)" if suppressed else ""
                log.warning(
                    "telemetry rejected: factory %s device %s: %s: %s%s", factory_id, device_id, reason, detail, more
                )
            else:
                self._bursts[(factory_id, reason)] = (started, suppressed + 1)

    @staticmethod
    def _add_counts(s: Session, factory_id: str, counts: dict[tuple[str, str], int]) -> None:
        """Adds to the per-device, per-reason counters: one read per 500 devices and one executemany,
        not a query per counter (bad messages spread over thousands of devices stay cheap)."""
        if not counts:
            return
        devices = sorted({device_id for device_id, _ in counts})
        existing: dict[tuple[str, str], str] = {}
        for start in range(0, len(devices), 500):
            rows = s.execute(
                select(RejectCount.id, RejectCount.device_id, RejectCount.reason).where(
                    RejectCount.device_id.in_(devices[start : start + 500])
                )
            ).all()
            existing.update({(device_id, reason): row_id for row_id, device_id, reason in rows})
        now = utcnow()
        table: Any = RejectCount.__table__
        changes = [{"row_id": existing[key], "n": n, "at": now} for key, n in counts.items() if key in existing]
        if changes:
            s.connection().execute(
                update(table)
                .where(table.c.id == bindparam("row_id"), table.c.factory_id == factory_id)
                .values(count=table.c.count + bindparam("n"), last_at=bindparam("at")),
                changes,
            )
        for (device_id, reason), n in counts.items():
            if (device_id, reason) not in existing:
                s.add(RejectCount(device_id=device_id, reason=reason, count=n, last_at=now))

    def flush(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, []
            counts, self._counts = self._counts, defaultdict(int)
        by_factory: dict[str, list[_Reject]] = defaultdict(list)
        for item in pending:
            by_factory[item.factory_id].append(item)
        count_by_factory: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
        for (factory_id, device_id, reason), n in counts.items():
            count_by_factory[factory_id][(device_id, reason)] = n
        written = 0
        for factory_id in set(by_factory) | set(count_by_factory):
            if not factory_id or not self.factory_exists(factory_id):
                continue  # a topic naming no factory: counted in metrics only
            with self.db.factory_session(factory_id) as s:
                for item in by_factory.get(factory_id, [])[-ROWS_PER_FLUSH:]:
                    s.add(
                        TelemetryReject(
                            at=item.at,
                            device_id=item.device_id,
                            reason=item.reason,
                            metric=item.metric,
                            detail=item.detail,
                            excerpt=item.excerpt,
                        )
                    )
                    written += 1
                self._add_counts(s, factory_id, count_by_factory.get(factory_id, {}))
                s.flush()
                cutoff = s.execute(
                    select(TelemetryReject.at).order_by(TelemetryReject.at.desc()).offset(KEEP_PER_FACTORY).limit(1)
                ).scalar_one_or_none()
                if cutoff is not None:
                    s.execute(
                        delete(TelemetryReject)
                        .where(TelemetryReject.at <= cutoff)
                        .execution_options(synchronize_session=False)
                    )
        return written
