"""The heartbeats of the platform's own processes (a platform table: no factory owns it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from factoryops.core.db import Base, PlatformOnly


class ServiceHeartbeat(PlatformOnly, Base):
    """One row per telemetry or worker process, upserted every few seconds while it runs.

    ``stats`` holds the process's latest figures (messages received, spool depth, jobs done...);
    ``history`` its last few minutes of samples, for the health page's small charts. Neither
    holds anything of a factory: only platform-wide counts.
    """

    __tablename__ = "service_heartbeats"

    id: Mapped[str] = mapped_column(String(160), primary_key=True)  # "<kind>:<name>"
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # telemetry | worker
    name: Mapped[str] = mapped_column(String(140), nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    pid: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    version: Mapped[str] = mapped_column(String(32), nullable=False, default="")
    started_at: Mapped[datetime] = mapped_column(nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(nullable=False)
    stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)
    interval_seconds: Mapped[float] = mapped_column(nullable=False)
    stats: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    history: Mapped[list[dict[str, Any]]] = mapped_column(nullable=False, default=list)
