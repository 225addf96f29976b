"""The durable local spool: batches the time-series store could not take, kept on disk in order.

A SQLite file with ``synchronous=FULL``: once :meth:`Spool.append` returns, the batch survives
a crash of the process or of the machine, so the MQTT message behind it may be acknowledged.
Batches are replayed oldest first and deleted only after the store has taken them; replay is
idempotent in the store (same device, property and time), so a crash mid-replay duplicates
nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from factoryops.ports.timeseries.base import Point, from_ns, to_ns


class Spool:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, factory_id TEXT NOT NULL,"
            " points TEXT NOT NULL)"
        )
        self._depth, self._points = self._conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(json_array_length(points)), 0) FROM spool"
        ).fetchone()

    @property
    def depth(self) -> int:
        """Batches waiting."""
        return int(self._depth)

    @property
    def points(self) -> int:
        """Points waiting (in all batches)."""
        return int(self._points)

    def append(self, batches: list[tuple[str, list[Point]]]) -> None:
        rows = [
            (factory_id, json.dumps([[p.device_id, p.property, to_ns(p.ts), p.value] for p in points]))
            for factory_id, points in batches
            if points
        ]
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT INTO spool (factory_id, points) VALUES (?, ?)", rows)
            self._conn.execute("COMMIT")
            self._depth += len(rows)
            self._points += sum(len(points) for _, points in batches)

    def oldest(self, limit: int) -> list[tuple[int, str, list[Point]]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, factory_id, points FROM spool ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [
            (seq, factory_id, [Point(d, p, from_ns(ns), v) for d, p, ns, v in json.loads(raw)])
            for seq, factory_id, raw in rows
        ]

    def remove_through(self, seq: int) -> None:
        with self._lock:
            removed = self._conn.execute(
                "SELECT COALESCE(SUM(json_array_length(points)), 0) FROM spool WHERE seq <= ?", (seq,)
            ).fetchone()[0]
            self._conn.execute("DELETE FROM spool WHERE seq <= ?", (seq,))
            self._points = max(0, self._points - int(removed))
            self._depth = self._conn.execute("SELECT COUNT(*) FROM spool").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
